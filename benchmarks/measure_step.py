"""Time training steps of one implementation at one size; suite.py starts it in a fresh process.

    python benchmarks/measure_step.py --impl numba --threads 2 \\
        --batch-size 512 --block-size 64 --vocab 65

IMPLEMENTATIONS is the table of what can be timed; benchmarks/README.md ("How it is measured")
says how. The last line of stdout is one JSON object: step times, repeats, first-call times,
peak memory (VmHWM over the timed calls minus the resident set before the model), warnings.
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
import peers
from children import proc_kib

SEED, LEARNING_RATE = peers.SEED, peers.LEARNING_RATE  # one seed and lr for every step
STREAM_TOKENS = 1 << 20  # token stream the Trainer samples its batches from
MAX_REPEATS = 2000  # timed calls at most


class Implementation(NamedTuple):
    """One column of the tables. runs: "api" is `model(xb, yb, return_logits=...);
    model.backward(); opt.step()` on a batch in memory, "loop" is the Trainer's compiled
    `train_steps(k)` as `npbigram train` runs it, "peer" is peers.build's step."""

    short: str  # the table header
    label: str
    runs: str
    backend: str = "numba"
    grad: str = "auto"  # the Trainer's default; a checkout without "auto" runs its own default
    return_logits: bool = True
    # peak bytes of a step per logit (N x V) where it holds them whole, 0 where it does not: a
    # size needing more than the memory cap is skipped rather than started
    bytes_per_logit: int = 0
    threaded: bool = True  # it takes the thread setting (the Threads table times it on 1 too)


def _npbigram(short, label, runs, grad="auto", return_logits=True):
    return Implementation(short, f"npbigram numba, {label}", runs, grad=grad,
                          return_logits=return_logits)


IMPLEMENTATIONS = {  # name -> Implementation, in table order
    "numba": _npbigram("numba", "public API, gather/scatter (the model's default)", "api",
                       grad="gather-scatter"),
    "numba-nologits": _npbigram("numba no-logits", "public API with return_logits=False, "
                                "gather/scatter", "api", grad="gather-scatter",
                                return_logits=False),
    "numba-pair-counts": _npbigram("numba pair-counts", "public API, pair-counts", "api",
                                   grad="pair-counts"),
    "numba-pair-counts-nologits": _npbigram(
        "numba pair-counts no-logits", "public API with return_logits=False, pair-counts",
        "api", grad="pair-counts", return_logits=False),
    "numba-loop": _npbigram("numba loop", "Trainer's compiled loop, the default gradient",
                            "loop"),
    "numba-loop-gather-scatter": _npbigram("numba loop gather/scatter",
                                           "Trainer's compiled loop, gather/scatter", "loop",
                                           grad="gather-scatter"),
    "numba-loop-pair-counts": _npbigram("numba loop pair-counts",
                                        "Trainer's compiled loop, pair-counts", "loop",
                                        grad="pair-counts"),
    "numpy": Implementation("NumPy", "npbigram NumPy reference, public API", "api",
                            backend="numpy", bytes_per_logit=18, threaded=False),
    **{impl: Implementation(spec.short, spec.label, "peer", backend=impl,
                            bytes_per_logit=spec.bytes_per_logit, threaded=spec.threaded)
       for impl, spec in peers.PEERS.items()},
}


def make_inputs(impl, batch_size, block_size, vocab_size, stream_tokens=STREAM_TOKENS):
    """A batch (xb, yb) of uniform random ids; for the Trainer, a token stream to sample."""
    rng = np.random.default_rng(SEED)
    if IMPLEMENTATIONS[impl].runs == "loop":
        return rng.integers(0, vocab_size, size=max(stream_tokens, 20 * block_size))
    return tuple(rng.integers(0, vocab_size, size=(batch_size, block_size)) for _ in range(2))


def make_step(impl, batch_size, block_size, vocab_size, threads, inputs):
    """(call, steps per call): call() runs that many training steps."""
    spec = IMPLEMENTATIONS[impl]
    if spec.runs == "peer":
        return peers.build(impl, vocab_size, threads, *inputs).step, 1
    from npbigram import AdamW, BigramLanguageModel, TrainConfig, Trainer  # not in JAX's process
    from npbigram.engine import GRAD_METHODS

    grad = spec.grad if spec.grad in GRAD_METHODS else GRAD_METHODS[0]  # an older checkout's

    if spec.runs == "loop":
        config = TrainConfig(batch_size=batch_size, block_size=block_size, lr=LEARNING_RATE,
                             seed=SEED, backend=spec.backend, grad=grad)
        trainer = Trainer(config, inputs, vocab_size)
        steps = trainer.chunk_steps()
        return (lambda: trainer.train_steps(steps)), steps
    model = BigramLanguageModel(vocab_size, seed=SEED, backend=spec.backend, grad=grad)
    opt = AdamW(model, lr=LEARNING_RATE)
    xb, yb = inputs

    def step():
        model(xb, yb, return_logits=spec.return_logits)
        model.backward()
        opt.step()

    return step, 1


def timed(call):
    """Seconds of one call()."""
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def reset_peak_rss():
    """Set VmHWM back to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(args):
    inputs = make_inputs(args.impl, args.batch_size, args.block_size, args.vocab)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a tiny model first, so imports and one-time initialisation precede the baseline
        tiny, _ = make_step(args.impl, 1, 1, 2, args.threads,
                            make_inputs(args.impl, 1, 1, 2, stream_tokens=64))
        tiny_first = timed(tiny)
        baseline_kib = proc_kib("/proc/self/status", "VmRSS")
        call, steps = make_step(args.impl, args.batch_size, args.block_size, args.vocab,
                                args.threads, inputs)
        first = timed(call)  # first allocations, kernel variants the tiny model did not need
        warm_until = time.perf_counter() + args.warmup
        while time.perf_counter() < warm_until:
            call()
        hwm_reset = reset_peak_rss()  # compilation's transient memory is not the training's
        times = []  # at least min_repeats calls, then until the budget or MAX_REPEATS
        while len(times) < args.min_repeats or (sum(times) < args.budget
                                                 and len(times) < MAX_REPEATS):
            times.append(timed(call))
    times = [t / steps for t in times]
    peak_kib = proc_kib("/proc/self/status", "VmHWM") - baseline_kib
    compiled = {"compile_s": first} if args.impl in peers.COMPILED else {}
    return {"status": "ok", "median_s": statistics.median(times), "min_s": min(times),
            "repeats": len(times), "steps_per_call": steps, "first_call_s": first,
            "tiny_first_call_s": tiny_first, **compiled, "peak_mem_bytes": peak_kib * 1024,
            "peak_mem_exact": hwm_reset, "warnings": sorted({str(w.message) for w in caught})}


def parse_dims(example):
    """An argparse type: ints joined by x, as many as in `example` ("32x8": B x T)."""
    n = example.count("x") + 1

    def parse(text):
        try:
            dims = tuple(int(d) for d in text.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) != n:
            raise argparse.ArgumentTypeError(
                f"expected {'x'.join('BTV'[:n])} such as {example}, got {text!r}")
        return dims

    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", required=True, choices=IMPLEMENTATIONS)
    for flag in ("--batch-size", "--block-size", "--vocab", "--threads"):
        parser.add_argument(flag, type=int, required=True)
    parser.add_argument("--warmup", type=float, default=0.2, help="seconds after the first call")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls")
    parser.add_argument("--min-repeats", type=int, default=3)
    print(json.dumps(measure(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
