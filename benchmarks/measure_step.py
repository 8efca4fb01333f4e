"""Time one training step of one implementation at one size; run.py starts it in a fresh process.

    python benchmarks/measure_step.py --impl numba --batch-size 512 --block-size 64 --vocab 65

A step is what a training loop repeats, on a batch already in memory: for npbigram
`model(xb, yb); model.backward(); opt.step()` through the public API, for PyTorch bigram.py's
`model(xb, yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()`, both with AdamW
(lr 1e-2). The batch holds uniform random token ids. The first step (JIT compilation, first
allocations) is timed on its own, more steps warm up, then steps are timed one by one until both
--min-repeats and --budget seconds are reached (or --max-repeats). The thread count comes from
the environment run.py sets (NUMBA_NUM_THREADS, OMP_NUM_THREADS) and torch.set_num_threads.

Peak memory is the training's own: the resident-set high-water mark (VmHWM) over the timed
steps, minus the resident set just before the model is built. Before that baseline come the
imports, the batch and one step of a tiny model (so the libraries are loaded and initialised);
the mark is reset through /proc/self/clear_refs after the warm-up, so transient JIT-compilation
memory does not count, while the model, its gradient and optimizer state, and every step's
temporaries do.

The last line of stdout is one JSON object: the median and minimum step time, repeats,
first-step time, peak memory and any warnings the implementation raised.
"""

import argparse
import inspect
import json
import statistics
import sys
import time
import warnings

import numpy as np

# name -> label; run.py reads this table too
IMPLEMENTATIONS = {
    "numba": "npbigram numba (gather/scatter)",
    "numba-pair-counts": "npbigram numba (pair-counts)",
    "numpy": "npbigram NumPy reference",
    "torch": "PyTorch eager CPU",
}
THREADED = ("numba", "numba-pair-counts", "torch")  # the NumPy reference runs on one thread

# The pair-counts gradient: the keyword BigramLanguageModel takes to select it. A model without
# this keyword reports its row as unavailable instead of timing something else.
PAIR_COUNTS_OPTION = {"grad_method": "pair-counts"}
SEED = 1337
LEARNING_RATE = 1e-2


class Unavailable(Exception):
    """This npbigram has no such implementation yet."""


def pair_counts_supported():
    from npbigram import BigramLanguageModel

    params = inspect.signature(BigramLanguageModel).parameters
    return all(name in params for name in PAIR_COUNTS_OPTION)


def npbigram_step(vocab_size, backend, options):
    from npbigram import AdamW, BigramLanguageModel

    model = BigramLanguageModel(vocab_size, seed=SEED, backend=backend, **options)
    opt = AdamW(model, lr=LEARNING_RATE)

    def step(xb, yb):
        model(xb, yb)
        model.backward()
        opt.step()

    return step


def torch_step(vocab_size, threads):
    import torch
    from bigram_torch import BigramLanguageModel

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = BigramLanguageModel(vocab_size)
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)

    def step(xb, yb):
        _, loss = model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def make_step(impl, vocab_size, threads):
    if impl == "torch":
        return torch_step(vocab_size, threads)
    if impl == "numpy":
        return npbigram_step(vocab_size, "numpy", {})
    if impl == "numba":
        return npbigram_step(vocab_size, "numba", {})
    if impl == "numba-pair-counts":
        if not pair_counts_supported():
            raise Unavailable("this npbigram's BigramLanguageModel takes no "
                              + ", ".join(f"{k}={v!r}" for k, v in PAIR_COUNTS_OPTION.items()))
        return npbigram_step(vocab_size, "numba", PAIR_COUNTS_OPTION)
    raise ValueError(f"unknown implementation {impl!r}")


def make_batch(impl, batch_size, block_size, vocab_size):
    rng = np.random.default_rng(SEED)
    xb, yb = (rng.integers(0, vocab_size, size=(batch_size, block_size)) for _ in range(2))
    if impl == "torch":
        import torch

        return torch.from_numpy(xb), torch.from_numpy(yb)
    return xb, yb


def warm_up(step, batch, seconds):
    """Run the first step (JIT compilation, first allocations), then more for `seconds`;
    returns the first step's time."""
    t0 = time.perf_counter()
    step(*batch)
    first = time.perf_counter() - t0
    warm_until = time.perf_counter() + seconds
    while time.perf_counter() < warm_until:
        step(*batch)
    return first


def time_steps(step, batch, budget, min_repeats, max_repeats):
    """Seconds of each step, timed one by one: at least min_repeats, then until `budget`
    seconds in all or max_repeats."""
    times = []
    while len(times) < min_repeats or (sum(times) < budget and len(times) < max_repeats):
        t0 = time.perf_counter()
        step(*batch)
        times.append(time.perf_counter() - t0)
    return times


def proc_status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss():
    """Set VmHWM back to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(args):
    batch = make_batch(args.impl, args.batch_size, args.block_size, args.vocab)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a tiny model first, so imports and one-time initialisation precede the baseline
        make_step(args.impl, 2, args.threads)(*make_batch(args.impl, 1, 1, 2))
        baseline_kib = proc_status_kib("VmRSS")
        step = make_step(args.impl, args.vocab, args.threads)
        first = warm_up(step, batch, args.warmup)
        hwm_reset = reset_peak_rss()  # compilation's transient memory is not the step's
        times = time_steps(step, batch, args.budget, args.min_repeats, args.max_repeats)
    peak_kib = proc_status_kib("VmHWM") - baseline_kib
    return {
        "status": "ok",
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeats": len(times),
        "first_step_s": first,
        "peak_mem_bytes": peak_kib * 1024,
        "peak_mem_exact": hwm_reset,
        "warnings": sorted({str(w.message) for w in caught}),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", required=True, choices=IMPLEMENTATIONS)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--block-size", type=int, required=True)
    parser.add_argument("--vocab", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=0.2, help="seconds after the first step")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timed steps")
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=2000)
    args = parser.parse_args(argv)
    try:
        result = measure(args)
    except Unavailable as e:
        result = {"status": "unavailable", "reason": str(e)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
