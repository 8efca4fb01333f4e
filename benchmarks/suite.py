"""npbigram's benchmark suite: one command, every implementation side by side in one run.

    python benchmarks/suite.py [--quick] [--out benchmarks/results]

Writes results.md (report.py's tables), results.json (every measurement and the machine) and
tokens_per_s.png (plot.py). Each measurement runs in a fresh process with its own thread count,
so its peak memory is its own; benchmarks/README.md says what is measured and how.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from children import CHILD_TIMEOUT_S, ROOT, child_env, default_data, gb, proc_kib, run_child
from compile_times import measure_compilations
from measure_step import IMPLEMENTATIONS, parse_dims
from peers import C_CACHE_VARIABLE, PEERS, c_compiler, install_hint, unavailable_reason
from phases import PHASES, T0_VARIABLE
from plot import render_plot
from report import derive_figures, render_markdown

from npbigram import DatasetError
from npbigram.utils.files import atomic_output, atomic_write_bytes

HERE = Path(__file__).resolve().parent

SIZES = [(32, 8), (512, 64), (4096, 256)]  # (B, T)
VOCABS = [65, 256, 4096]
MEMORY_SIZE = (512, 128, 4096)  # (B, T, V): 65,536 tokens/step, the memory comparison
QUICK_SIZES = [(32, 8), (512, 64)]
QUICK_VOCABS = [65, 256]
TORCH = install_hint("torch") is None
VERSIONS = ("numpy", "numba", "torch", "jax", "jaxlib", "optax", "mlx", "autograd",
            "tinygrad")  # recorded with the machine
# the seed job's last report; its tokens/s has more digits than its seconds
TRAINED_LINE = re.compile(r"^trained (\d+) steps in [0-9.]+ s \(([0-9,]+) tokens/s\)",
                          re.MULTILINE)
SEED_TOKENS_PER_STEP = 32 * 8  # bigram.py's B x T
SEED_JOBS = {  # job -> the flags of its `npbigram train` (None: bigram_torch.py, PyTorch's)
    "torch": None,
    "numpy": ["--backend", "numpy"],
    "numba": ["--backend", "numba"],  # numba's jobs run cold, then warm
    "numba-pair-counts": ["--backend", "numba", "--grad", "pair-counts"],
}
PHASES_JOB = ("numba", "warm")  # the seed job that phases.py times phase by phase
BASELINE = "@baseline"  # the suffix of a seed job run with --baseline's npbigram


# training steps


def step_configs(args):
    """(impl, B, T, V, threads) for every step measurement, implementations side by side."""
    if args.configs:
        return [(impl, b, t, v, args.threads) for b, t, v in args.configs for impl in args.impls]
    configs = [(b, t, v) for v in args.vocabs for b, t in args.sizes]
    if not args.quick and MEMORY_SIZE not in configs:
        configs.append(MEMORY_SIZE)
    runs = [(impl, b, t, v, args.threads) for b, t, v in configs for impl in args.impls]
    if args.threads > 1:  # thread scaling: the threaded implementations again on one thread
        v = 65 if 65 in args.vocabs else args.vocabs[0]
        runs += [(impl, b, t, v, 1) for b, t in args.sizes for impl in args.impls
                 if IMPLEMENTATIONS[impl].threaded]
    return runs


def measure_step(impl, batch_size, block_size, vocab_size, threads, numba_cache, args,
                 tree=None):
    """One step measurement in a child; tree: the checkout whose npbigram it imports (default
    this one)."""
    row = {"impl": impl, "short": IMPLEMENTATIONS[impl].short,
           "label": IMPLEMENTATIONS[impl].label, "batch_size": batch_size,
           "block_size": block_size, "vocab_size": vocab_size,
           "tokens": batch_size * block_size, "threads": threads}
    if impl in PEERS and install_hint(impl):
        return {**row, "status": "not installed", "reason": install_hint(impl)}
    if impl in PEERS and (reason := unavailable_reason(impl)):
        return {**row, "status": "unavailable", "reason": reason}
    if reason := memory_skip_reason(impl, batch_size * block_size * vocab_size, args.mem_cap):
        return {**row, "status": "skipped", "reason": reason}
    cmd = [sys.executable, str(HERE / "measure_step.py"), "--impl", impl,
           "--batch-size", str(batch_size), "--block-size", str(block_size),
           "--vocab", str(vocab_size), "--threads", str(threads), *args.timing]
    # torch.compile starts from an empty inductor cache: its compile_s is a first compilation
    with tempfile.TemporaryDirectory(prefix="npbigram-bench-inductor-") as inductor_cache:
        env = child_env(threads, tree, NUMBA_CACHE_DIR=numba_cache,
                        TORCHINDUCTOR_CACHE_DIR=inductor_cache,
                        **{C_CACHE_VARIABLE: os.path.join(numba_cache, "c-step")})
        child = run_child(cmd, env, args.mem_cap, args.step_timeout)
    if failure := child.failure():
        return {**row, "status": "failed", "reason": failure}
    result = child.result()
    if result["status"] == "ok":
        result["tokens_per_s"] = row["tokens"] / result["median_s"]
        result["process_peak_rss_bytes"] = child.max_rss_bytes
    return {**row, **result}


def measure_floors(args, numba_cache):
    """floors.py's result for every (B, T, V) of the step table, on args.threads threads."""
    configs = sorted({(b, t, v) for _, b, t, v, threads in step_configs(args)
                      if threads == args.threads}, key=lambda c: (c[2], c[0] * c[1]))
    cmd = [sys.executable, str(HERE / "floors.py"), "--configs",
           *(f"{b}x{t}x{v}" for b, t, v in configs)]
    child = run_child(cmd, child_env(args.threads, NUMBA_CACHE_DIR=numba_cache), args.mem_cap)
    if failure := child.failure():
        return {"status": "failed", "reason": failure}
    return child.result()


def memory_skip_reason(impl, logits, mem_cap):
    per_logit = IMPLEMENTATIONS[impl].bytes_per_logit
    need = per_logit * logits
    if need <= mem_cap:
        return None
    return (f"would need ~{gb(need)} (~{per_logit} bytes for each of the "
            f"{logits:,} logits of a step: logits, softmax and gradients held whole), "
            f"over the memory cap of {gb(mem_cap)}")


# the seed job: bigram.py's whole training run as a process


def seed_jobs(args, checkpoint):
    """(job, cache, command) in run order for one repeat; with --baseline, each numba job also
    as "JOB@baseline", run with the baseline's npbigram."""
    common = ["--data", str(args.data), "--max-iters", str(args.seed_iters)]
    train = [sys.executable, "-m", "npbigram", "train", *common, "--out", str(checkpoint),
             "--force"]  # each job replaces the last one's checkpoint
    torch = [sys.executable, str(HERE / "bigram_torch.py"), *common, "--threads", str(args.threads)]
    return [(job + suffix, cache, torch if flags is None else [*train, *flags])
            for job, flags in SEED_JOBS.items()
            if job in args.seed_jobs and (flags is not None or TORCH)
            for suffix in ("", *[BASELINE] * bool(args.baseline and flags and "numba" in flags))
            for cache in (("cold", "warm") if flags and "numba" in flags else ("-",))]


def run_seed_jobs(args):
    """Each job `args.seed_repeats` times, interleaved; each cold run starts from an empty
    numba cache folder and the warm run after it reuses that folder."""
    phase_runs = []
    rows = [] if TORCH or "torch" not in args.seed_jobs else [
        seed_row("torch", "-", args.threads, status="not installed", reason=install_hint("torch"))]
    with tempfile.TemporaryDirectory(prefix="npbigram-bench-") as tmp:
        jobs = seed_jobs(args, Path(tmp) / "ckpt.npz")
        runs = {(impl, cache): [] for impl, cache, _ in jobs}
        for repeat in range(args.seed_repeats):
            cache_dirs = {}
            for impl, cache, cmd in jobs:
                if cache == "cold":
                    cache_dirs[impl] = tempfile.mkdtemp(dir=tmp, prefix=f"numba-cache-{impl}-")
                extra = {"NUMBA_CACHE_DIR": cache_dirs[impl]} if impl in cache_dirs else {}
                print(f"  seed job {repeat + 1}/{args.seed_repeats}: {impl} ({cache})",
                      file=sys.stderr, flush=True)
                tree = args.baseline if impl.endswith(BASELINE) else None
                runs[impl, cache].append(run_child(cmd, child_env(args.threads, tree, **extra),
                                                   args.mem_cap))
                if (impl, cache) == PHASES_JOB and args.phases:
                    phase_runs.append(run_phases(cmd, args, cache_dirs[impl]))
            for path in cache_dirs.values():
                shutil.rmtree(path)
    seed = [summarize_seed_job(impl, cache, children, args.threads)
            for (impl, cache), children in runs.items()] + rows
    return seed, summarize_phases(phase_runs) if args.phases else None


def run_phases(cmd, args, cache_dir):
    """The warm seed job `cmd` (`python -m npbigram train ...`) again under phases.py, in the
    same numba cache; the child's phase seconds with the interpreter's exit added."""
    print("  seed job phase by phase: numba (warm)", file=sys.stderr, flush=True)
    started = time.monotonic()
    env = child_env(args.threads, NUMBA_CACHE_DIR=cache_dir, **{T0_VARIABLE: repr(started)})
    child = run_child([sys.executable, str(HERE / "phases.py"), *cmd[4:]], env, args.mem_cap)
    if failure := child.failure():
        return failure
    result = child.result()
    return {**result["phases_s"], "interpreter exit": started + child.wall_s - result["ended"],
            "whole process": child.wall_s}


def summarize_phases(phase_runs):
    """Each phase's median over the runs (and every run's seconds), in PHASES order."""
    if failure := next((run for run in phase_runs if isinstance(run, str)), None):
        return {"status": "failed", "reason": failure}
    return {"status": "ok", "runs": len(phase_runs), "job": " ".join(SEED_JOBS[PHASES_JOB[0]]),
            "phases": [{"phase": phase, "what": PHASES.get(phase, "from exec to exit"),
                        "median_s": statistics.median(run[phase] for run in phase_runs),
                        "all_s": [run[phase] for run in phase_runs]}
                       for phase in [*PHASES, "whole process"]]}


def measure_compile_times(args):
    """compile_times.py's table for the numba seed job (fresh JIT caches, args.seed_repeats
    processes), or the reason it failed."""
    print("  seed job compile times: numba (empty JIT cache)", file=sys.stderr, flush=True)
    train_args = ["--data", str(args.data), "--max-iters", str(args.seed_iters),
                  *SEED_JOBS[PHASES_JOB[0]]]
    try:
        return {"status": "ok", "job": " ".join(SEED_JOBS[PHASES_JOB[0]]),
                **measure_compilations(train_args, args.seed_repeats)}
    except SystemExit as failure:
        return {"status": "failed", "reason": str(failure)}


def seed_row(job, cache, threads, **fields):
    flags = SEED_JOBS[job.removesuffix(BASELINE)]
    label = ("PyTorch bigram.py (benchmarks/bigram_torch.py)" if flags is None
             else " ".join(["npbigram train", *flags]))
    if job.endswith(BASELINE):
        label += " (the baseline's npbigram)"
    return {"impl": job, "label": label, "cache": cache, "threads": threads, **fields}


def summarize_seed_job(impl, cache, children, threads):
    """Medians of the whole-process wall time and of the training loop the job reports."""
    for child in children:
        failure = child.failure() or (None if TRAINED_LINE.search(child.stdout)
                                      else "no 'trained N steps in X s (Y tokens/s)' line")
        if failure:
            return seed_row(impl, cache, threads, status="failed", reason=failure)
    trained = [TRAINED_LINE.search(c.stdout) for c in children]
    steps = int(trained[0].group(1))
    loops = [steps * SEED_TOKENS_PER_STEP / float(m.group(2).replace(",", "")) for m in trained]
    walls = [c.wall_s for c in children]
    return seed_row(impl, cache, threads, status="ok", runs=len(children), steps=steps,
                    wall_s=statistics.median(walls), wall_s_all=walls,
                    loop_s=statistics.median(loops), loop_s_all=loops,
                    loop_tokens_per_s=steps * SEED_TOKENS_PER_STEP / statistics.median(loops),
                    peak_rss_bytes=max(c.max_rss_bytes for c in children))


# the machine


def machine_info():
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), "unknown")
    versions = {}
    for package in VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True, cwd=ROOT)
    versions["cc"] = compiler_version(c_compiler())
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": proc_kib("/proc/meminfo", "MemTotal") * 1024,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), **versions,
            "npbigram_commit": commit.stdout.strip() if commit.returncode == 0 else "unknown"}


def baseline_commit(tree):
    """`git describe` of the --baseline checkout, or None without one."""
    if tree is None:
        return None
    commit = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True, cwd=tree)
    return commit.stdout.strip() if commit.returncode == 0 else str(tree)


def compiler_version(compiler):
    """The first line of `compiler --version` (the C step's compiler), or "not installed"."""
    try:
        proc = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                              check=False)
    except OSError:
        return "not installed"
    return proc.stdout.partition("\n")[0].strip() or "unknown"


def default_mem_cap():
    """Half the machine's memory, and no more than 85% of what is available now."""
    return min(0.5 * proc_kib("/proc/meminfo", "MemTotal"),
               0.85 * proc_kib("/proc/meminfo", "MemAvailable")) * 1024


# command line


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes, short timing, one seed-job run: checks the harness in "
                        "a minute or two; the numbers are rough")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder for results.md, results.json, tokens_per_s.png "
                        "(default: benchmarks/results)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for every implementation (default: 2); with more than one, "
                        "the threaded implementations are also timed on 1 thread")
    p.add_argument("--data", type=Path, default=None,
                   help="text of the seed job (default: $NPBIGRAM_DATA, else "
                        "tinyshakespeare, shipped in the package)")
    p.add_argument("--impls", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS),
                   metavar="IMPL",
                   help=f"implementations whose steps are measured: {', '.join(IMPLEMENTATIONS)}"
                        " (default: all; the seed job always runs npbigram train and PyTorch's "
                        "bigram.py)")
    p.add_argument("--sizes", nargs="+", type=parse_dims("32x8"), default=None, metavar="BxT",
                   help="batch shapes (default: 32x8 512x64 4096x256; quick: 32x8 512x64)")
    p.add_argument("--vocabs", nargs="+", type=int, default=None, metavar="V",
                   help="vocabulary sizes (default: 65 256 4096; quick: 65 256)")
    p.add_argument("--configs", nargs="+", type=parse_dims("32x8x65"), default=None,
                   metavar="BxTxV",
                   help="exactly these (B, T, V) step sizes, instead of --sizes x --vocabs, "
                        "the memory size and the 1-thread runs")
    p.add_argument("--seed-iters", type=int, default=3000,
                   help="training steps of the seed job (default: bigram.py's 3000)")
    p.add_argument("--seed-jobs", nargs="+", choices=SEED_JOBS, default=list(SEED_JOBS),
                   metavar="JOB", help=f"seed jobs to run: {', '.join(SEED_JOBS)} (default: all)")
    p.add_argument("--no-seed-job", action="store_true", help="skip the seed-job comparison")
    p.add_argument("--no-phases", action="store_true",
                   help="skip timing the warm numba seed job phase by phase (phases.py)")
    p.add_argument("--no-compile-times", action="store_true",
                   help="skip the numba seed job's compile time per kernel (compile_times.py)")
    p.add_argument("--no-floors", action="store_true", help="skip the hardware floors")
    p.add_argument("--step-timeout", type=float, default=CHILD_TIMEOUT_S, metavar="S",
                   help="stop one implementation's measurement at one size after S seconds "
                        f"(its cell then says so; default: {CHILD_TIMEOUT_S:g})")
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="also time npbigram's steps and numba seed jobs with the npbigram of "
                        "DIR (another checkout, e.g. a git worktree of an older commit), each "
                        "beside this checkout's, for the 'Before and after' table")
    p.add_argument("--mem-cap-gb", type=float, default=None,
                   help="skip or stop a measurement above this much memory "
                        "(default: half the machine's memory, at most 85%% of what is "
                        "available at the start)")
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 1 or args.seed_iters < 1:
        parser.error("--threads and --seed-iters must be at least 1")
    if not args.step_timeout > 0:
        parser.error(f"--step-timeout must be positive, got {args.step_timeout:g}")
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    args.vocabs = args.vocabs or (QUICK_VOCABS if args.quick else VOCABS)
    args.impls = [impl for impl in IMPLEMENTATIONS if impl in args.impls]  # table order
    args.seed_jobs = [] if args.no_seed_job else [job for job in SEED_JOBS
                                                  if job in args.seed_jobs]  # run order
    args.phases = PHASES_JOB[0] in args.seed_jobs and not args.no_phases
    args.compile_times = PHASES_JOB[0] in args.seed_jobs and not args.no_compile_times
    args.mem_cap = args.mem_cap_gb * 1e9 if args.mem_cap_gb is not None else default_mem_cap()
    # (warmup s, budget s, min repeats) of the step timer; run counts of the seed job
    warmup, budget, min_repeats, args.seed_repeats = ((0.05, 0.3, 3, 1) if args.quick
                                                      else (0.2, 1.0, 3, 3))
    args.timing = ["--warmup", str(warmup), "--budget", str(budget),
                   "--min-repeats", str(min_repeats)]
    if args.data is None and args.seed_jobs:
        try:
            args.data = default_data()
        except DatasetError as e:
            parser.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/suite.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "settings": {"quick": args.quick, "threads": args.threads,
                     "sizes": [list(s) for s in args.sizes], "vocabs": args.vocabs,
                     "impls": args.impls, "step_timer": args.timing,
                     "seed_data": args.data and str(args.data), "seed_iters": args.seed_iters,
                     "seed_jobs": args.seed_jobs, "seed_repeats": args.seed_repeats,
                     "mem_cap_bytes": args.mem_cap, "baseline": baseline_commit(args.baseline)},
        "load_average_start": os.getloadavg(),
    }
    configs = step_configs(args)
    results["steps"], results["baseline_steps"] = [], []
    # the step children share one new numba cache (and the C step's build): kernels compile
    # once per run, never loaded from a stale cache of another version
    with tempfile.TemporaryDirectory(prefix="npbigram-bench-numba-") as numba_cache:
        for i, config in enumerate(configs):
            impl, b, t, v, threads = config
            print(f"[{i + 1}/{len(configs)}] {impl} B={b} T={t} V={v} threads={threads}",
                  file=sys.stderr, flush=True)
            results["steps"].append(measure_step(*config, numba_cache, args))
            if args.baseline and IMPLEMENTATIONS[impl].runs != "peer" and threads == args.threads:
                print(f"[{i + 1}/{len(configs)}] {impl} B={b} T={t} V={v} threads={threads}, "
                      f"baseline", file=sys.stderr, flush=True)
                results["baseline_steps"].append(measure_step(*config, numba_cache, args,
                                                              args.baseline))
        if args.no_floors:
            results["floors"] = {"status": "skipped", "reason": "--no-floors"}
        else:
            print("hardware floors", file=sys.stderr, flush=True)
            results["floors"] = measure_floors(args, numba_cache)
    results["seed_job"], results["phases"], results["compile_times"] = [], None, None
    if args.seed_jobs:
        results["seed_job"], results["phases"] = run_seed_jobs(args)
    if args.compile_times:
        results["compile_times"] = measure_compile_times(args)
    results["load_average_end"] = os.getloadavg()
    results["duration_s"] = time.time() - started
    results["figures"] = derive_figures(results)

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    atomic_write_bytes(args.out / "results.md", render_markdown(results).encode())
    with atomic_output(args.out / "tokens_per_s.png") as f:
        render_plot(results, f)
    print(f"wrote {args.out}/results.md, results.json, tokens_per_s.png "
          f"in {results['duration_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
