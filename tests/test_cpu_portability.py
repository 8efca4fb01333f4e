"""The same bits on any x86-64 CPU.

The torch stream: its tests run again in a subprocess with NumPy's AVX-512 kernels turned off
(NPY_DISABLE_CPU_FEATURES), as an AVX2 host runs them, so an AVX-512 machine checks both kinds.

Training: every training path of the numba engine (gather-scatter, pair-counts, full batch; serial
and parallel sizes; float32 and float64; AdamW and SGD) trains in one subprocess that stands for
the baseline x86-64 CPU and in one for this host, each with a JIT cache of its own, and the
weights' and losses' bytes must agree, as must AdamW's coefficients of 100,000 steps. The
baseline: numba compiles for NUMBA_CPU_NAME=generic (SSE2: no FMA, no AVX), and glibc's libm runs
its code for CPUs without FMA and AVX2 (GLIBC_TUNABLES; names glibc does not know are ignored).
`python tests/test_cpu_portability.py PATH` prints one path's digests (what the subprocesses
run; one test per path, the JIT caches shared between them).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
AVX512 = re.compile(r"AVX512|X86_V4")  # NumPy's names of its AVX-512 dispatch targets
# the tests that compare the torch stream (npbigram.randomness.torch_rng, --rng torch) with torch
TORCH_STREAM_TESTS = [
    "test_torch_rng.py",
    "test_streams.py::test_torch_stream_trains_evaluates_and_samples_like_bigram_py[numpy]",
    "test_streams.py::test_multinomial_sampler_is_nanogpts_sampling",
    "test_lecture.py::test_walkthrough_matches_torch",
    "test_lecture.py::test_sample_rng_torch_draws_as_torch",
]
NUMPY_TARGETS = """
import json
try:
    from numpy._core import _multiarray_umath as umath
except ImportError:  # numpy 1.x
    from numpy.core import _multiarray_umath as umath
print(json.dumps([t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]))
"""


def python(*args, env, cwd, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def numpy_targets(env, cwd):
    """The SIMD targets NumPy dispatches to under `env`, or the error that stopped NumPy."""
    probe = python("-c", NUMPY_TARGETS, env=env, cwd=cwd)
    if probe.returncode != 0:
        return None, (probe.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(probe.stdout), None


def test_torch_stream_tests_pass_with_numpys_avx512_dispatch_off(tmp_path):
    targets, error = numpy_targets(dict(os.environ), tmp_path)
    assert error is None, error
    avx512 = [t for t in targets if AVX512.match(t)]
    if not avx512:
        pytest.skip("NumPy runs no AVX-512 kernels on this CPU: the torch-stream tests already "
                    "ran as such hosts run them")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}
    targets_off, error = numpy_targets(env, tmp_path)
    if error is not None:
        pytest.skip(f"numpy {np.__version__} refuses NPY_DISABLE_CPU_FEATURES="
                    f"{env['NPY_DISABLE_CPU_FEATURES']!r}: {error}")
    if any(AVX512.match(t) for t in targets_off):
        pytest.skip(f"NPY_DISABLE_CPU_FEATURES={env['NPY_DISABLE_CPU_FEATURES']!r} leaves numpy "
                    f"{np.__version__} dispatching to {targets_off}")
    result = python("-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *(TESTS / test for test in TORCH_STREAM_TESTS), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# ------------------------------------ training on any CPU ------------------------------------

V_SMALL, V_LARGE = 65, 512  # V * V >= PARALLEL_WORK = 2**17 from V = 363
SMALL_BATCH = {"batch_size": 32, "block_size": 8}  # N + V^2 and N * V below PARALLEL_WORK
LARGE_BATCH = {"batch_size": 512, "block_size": 256}  # N = 2**17: parallel, in 8 chunks
# (vocabulary, config, steps): every way numba_engine.step_plan runs a step, serial and parallel
PATHS = {
    "gather-scatter serial": (V_SMALL, {**SMALL_BATCH, "grad": "gather-scatter"}, 20),
    "gather-scatter parallel sort": (V_SMALL, {**LARGE_BATCH, "grad": "gather-scatter"}, 2),
    "gather-scatter parallel rows": (V_LARGE, {**SMALL_BATCH, "grad": "gather-scatter"}, 3),
    "pair-counts serial sort": (V_SMALL, {**SMALL_BATCH, "grad": "pair-counts"}, 20),
    "pair-counts parallel tables": (V_SMALL, {**LARGE_BATCH, "grad": "pair-counts"}, 2),
    "pair-counts parallel sort": (V_LARGE, {**SMALL_BATCH, "grad": "pair-counts"}, 3),
    "full batch serial": (V_SMALL, {"full_batch": True}, 20),
    "full batch parallel": (V_LARGE, {"full_batch": True}, 3),
}
ADAMW_STEPS = 100_000
OPTIMIZERS = {"adamw": {"optimizer": "adamw"},
              "sgd": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}}


def weight_digests(path, dtype):
    """{path dtype optimizer: SHA-256 of the final weights' bytes, and of the losses'} for one
    training path of PATHS in one dtype; for "adamw coefficients", the digest of AdamW's
    per-step scalars."""
    from npbigram import AdamW, BigramLanguageModel, TrainConfig, Trainer
    from npbigram.engine.numba_engine import update_arguments

    if path == "adamw coefficients":
        # libm's pow differs across CPUs in 0.999^t at t = 3856, 4992, ... (0.9^t: 348, 1903,
        # ...), but 1 - beta^t, so the coefficients, did not in 3 million steps
        update = update_arguments(AdamW(BigramLanguageModel(1, backend="numpy")), ADAMW_STEPS,
                                  first_step=1)
        coefficients = np.concatenate([update.step_size, update.bias_correction2_sqrt])
        return {path: hashlib.sha256(coefficients.tobytes()).hexdigest()}
    digests = {}
    vocab_size, sizes, steps = PATHS[path]
    data = np.random.default_rng(vocab_size).integers(0, vocab_size, 20_000)
    for optimizer, options in OPTIMIZERS.items():
        config = TrainConfig(**sizes, **options, dtype=dtype, backend="numba", lr=0.1,
                             eval="exact")
        trainer = Trainer(config, data, vocab_size)
        losses = trainer.train_steps(steps)
        digest = hashlib.sha256(trainer.model.weight.tobytes())
        digests[f"{path} {dtype} {optimizer}"] = digest.hexdigest()
        digests[f"{path} {dtype} {optimizer} losses"] = hashlib.sha256(
            losses.tobytes()).hexdigest()
    return digests


# glibc's libm without its FMA, FMA4 and AVX2 code (names of glibc >= 2.33, then older ones)
BASELINE_LIBM = "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX2_Usable,-FMA_Usable,-FMA4_Usable"


def start_training(path, dtype, caches, baseline):
    """weight_digests(path, dtype) in a subprocess, for the baseline x86-64 CPU or this host's, each
    with its JIT cache in `caches` (shared by the paths: each kernel compiles once per CPU)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_NAME"}
    env["NUMBA_CACHE_DIR"] = str(caches / ("numba-cache-baseline" if baseline else
                                           "numba-cache-host"))
    if baseline:
        env["NUMBA_CPU_NAME"] = "generic"
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), BASELINE_LIBM]))
    return subprocess.Popen([sys.executable, str(Path(__file__)), path, dtype], env=env,
                            cwd=caches, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def digests_of(process):
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-4000:]
    return json.loads(stdout)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    return tmp_path_factory.mktemp("numba-caches")


@pytest.mark.parametrize("path, dtype", [*((path, dtype) for path in PATHS
                                            for dtype in ("float32", "float64")),
                                          ("adamw coefficients", "-")])
def test_every_training_path_gives_the_same_weights_on_any_x86_64_cpu(path, dtype, caches):
    processes = [start_training(path, dtype, caches, baseline) for baseline in (True, False)]
    baseline, host = (digests_of(process) for process in processes)  # compiled side by side
    assert sorted(baseline) == sorted(host)
    differ = [path for path in host if baseline[path] != host[path]]
    assert not differ, differ


if __name__ == "__main__":
    print(json.dumps(weight_digests(*sys.argv[1:])))
