"""Time training steps of one implementation at one size; run.py starts it in a fresh process.

    python benchmarks/measure_step.py --impl numba --batch-size 512 --block-size 64 --vocab 65

What a step is, per implementation (all AdamW, lr 1e-2, float32, uniform random token ids):
- npbigram's public API on a batch already in memory:
  `model(xb, yb); model.backward(); opt.step()`; the no-logits variants call
  `model(xb, yb, return_logits=False)`, which returns (None, loss) and on the numba backend never
  writes the (B*T, V) logits;
- npbigram's Trainer on the numba backend, as `npbigram train` runs it: `train_steps(k)`, k
  steps (batch sampling included) in one compiled call, k = trainer.chunk_steps(); a step's
  time is the call's divided by k;
- the peers (peers.py): PyTorch eager, bigram.py's step on a batch already in memory,
  `model(xb, yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()`; the same step
  under torch.compile; JAX, jax.jit of the loss's value_and_grad and optax.adamw's update.

One step of a tiny model runs first (imports, JIT compilation, a compiler's one-time setup) and
is timed (tiny_first_call_s). At the measured size the first call (first allocations, any kernel
variant the tiny model did not need; for the compiled peers, compiling the step for this size:
compile_s) is timed on its own,
more calls warm up for --warmup seconds, then calls are timed one by one until both
--min-repeats and --budget seconds are reached (or --max-repeats). The thread count comes from
the environment run.py sets (NUMBA_NUM_THREADS, OMP_NUM_THREADS, PJRT_NPROC) and
torch.set_num_threads. run.py gives each torch.compile child an empty inductor cache
(TORCHINDUCTOR_CACHE_DIR); JAX's persistent compilation cache is off by default, so every
compile_s is a compilation from scratch.

Peak memory is the training's own: the resident-set high-water mark (VmHWM) over the timed
calls minus the resident set just before the model is built, after the imports, the batch (or
token stream) and the tiny model's step. The mark is reset through /proc/self/clear_refs after
the warm-up, so transient JIT-compilation memory does not count, while the model, its gradient,
the optimizer state and every step's temporaries do.

The last line of stdout is one JSON object: median and minimum step time, repeats, steps per
call, first-call times (and compile_s for the compiled peers), peak memory and any warnings the
implementation raised.
"""

import argparse
import dataclasses
import inspect
import json
import statistics
import sys
import time
import warnings

import numpy as np
import peers

# name -> (short name for table headers, full label); run.py and report.py read this table
IMPLEMENTATIONS = {
    "numba": ("numba", "npbigram numba, public API, gather/scatter"),
    "numba-nologits": ("numba no-logits",
                       "npbigram numba, public API with return_logits=False, gather/scatter"),
    "numba-pair-counts": ("numba pair-counts", "npbigram numba, public API, pair-counts"),
    "numba-pair-counts-nologits": ("numba pair-counts no-logits",
                                   "npbigram numba, public API with return_logits=False, "
                                   "pair-counts"),
    "numba-loop": ("numba loop", "npbigram numba, Trainer's compiled loop, gather/scatter"),
    "numba-loop-pair-counts": ("numba loop pair-counts",
                               "npbigram numba, Trainer's compiled loop, pair-counts"),
    "numpy": ("NumPy", "npbigram NumPy reference, public API"),
    **{impl: (short, label) for impl, (short, label, _, _) in peers.PEERS.items()},
}
THREADED = ("numba", "numba-nologits", "numba-pair-counts", "numba-pair-counts-nologits",
            "numba-loop", "numba-loop-pair-counts", *peers.PEERS)
PAIR_COUNTS = ("numba-pair-counts", "numba-pair-counts-nologits", "numba-loop-pair-counts")
LOOPS = ("numba-loop", "numba-loop-pair-counts")
NO_LOGITS = ("numba-nologits", "numba-pair-counts-nologits")  # model(xb, yb, return_logits=False)

# The pair-counts gradient: the keyword that BigramLanguageModel and TrainConfig take to select
# it. Where they lack it, the pair-counts rows say "unavailable" instead of timing another path.
PAIR_COUNTS_OPTION = {"grad": "pair-counts"}
SEED, LEARNING_RATE = peers.SEED, peers.LEARNING_RATE  # one seed and lr for every step
STREAM_TOKENS = 1 << 20  # token stream the Trainer samples its batches from


class Unavailable(Exception):
    """This npbigram has no such implementation yet."""


def pair_counts_option():
    """PAIR_COUNTS_OPTION if this npbigram's model and TrainConfig take it, else Unavailable."""
    from npbigram import BigramLanguageModel, TrainConfig

    takes = set(inspect.signature(BigramLanguageModel).parameters)
    takes &= {f.name for f in dataclasses.fields(TrainConfig)}
    missing = [f"{k}={v!r}" for k, v in PAIR_COUNTS_OPTION.items() if k not in takes]
    if missing:
        raise Unavailable(f"this npbigram's BigramLanguageModel and TrainConfig do not both "
                          f"take {', '.join(missing)}")
    return PAIR_COUNTS_OPTION


def make_inputs(impl, batch_size, block_size, vocab_size, stream_tokens=STREAM_TOKENS):
    """A batch (xb, yb) of uniform random ids; for the Trainer, a token stream to sample."""
    rng = np.random.default_rng(SEED)
    if impl in LOOPS:
        return rng.integers(0, vocab_size, size=max(stream_tokens, 20 * block_size))
    return tuple(rng.integers(0, vocab_size, size=(batch_size, block_size)) for _ in range(2))


def make_step(impl, batch_size, block_size, vocab_size, threads, inputs):
    """(call, steps per call): call() runs that many training steps."""
    options = pair_counts_option() if impl in PAIR_COUNTS else {}
    if impl in peers.PEERS:
        return peers.build(impl, vocab_size, threads, *inputs).step, 1
    if impl in LOOPS:
        return trainer_steps(batch_size, block_size, vocab_size, inputs, options)
    backend = "numpy" if impl == "numpy" else "numba"
    return api_step(vocab_size, backend, options, impl not in NO_LOGITS, *inputs), 1


def api_step(vocab_size, backend, options, return_logits, xb, yb):
    from npbigram import AdamW, BigramLanguageModel

    model = BigramLanguageModel(vocab_size, seed=SEED, backend=backend, **options)
    opt = AdamW(model, lr=LEARNING_RATE)

    def step():
        model(xb, yb, return_logits=return_logits)
        model.backward()
        opt.step()

    return step


def trainer_steps(batch_size, block_size, vocab_size, stream, options):
    from npbigram import TrainConfig, Trainer

    config = TrainConfig(batch_size=batch_size, block_size=block_size, lr=LEARNING_RATE,
                         seed=SEED, backend="numba", **options)
    trainer = Trainer(config, stream, vocab_size)
    steps = trainer.chunk_steps()
    return (lambda: trainer.train_steps(steps)), steps


def warm_up(call, seconds):
    """Run the first call (JIT compilation, first allocations), then more for `seconds`;
    returns the first call's time."""
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    warm_until = time.perf_counter() + seconds
    while time.perf_counter() < warm_until:
        call()
    return first


def time_calls(call, budget, min_repeats, max_repeats):
    """Seconds of each call, timed one by one: at least min_repeats, then until `budget`
    seconds in all or max_repeats."""
    times = []
    while len(times) < min_repeats or (sum(times) < budget and len(times) < max_repeats):
        t0 = time.perf_counter()
        call()
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
    inputs = make_inputs(args.impl, args.batch_size, args.block_size, args.vocab)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a tiny model first, so imports and one-time initialisation precede the baseline
        tiny, _ = make_step(args.impl, 1, 1, 2, args.threads,
                            make_inputs(args.impl, 1, 1, 2, stream_tokens=64))
        t0 = time.perf_counter()
        tiny()
        tiny_first = time.perf_counter() - t0
        baseline_kib = proc_status_kib("VmRSS")
        call, steps = make_step(args.impl, args.batch_size, args.block_size, args.vocab,
                                args.threads, inputs)
        first = warm_up(call, args.warmup)
        hwm_reset = reset_peak_rss()  # compilation's transient memory is not the training's
        times = [t / steps for t in time_calls(call, args.budget, args.min_repeats,
                                               args.max_repeats)]
    peak_kib = proc_status_kib("VmHWM") - baseline_kib
    compiled = {"compile_s": first} if args.impl in peers.COMPILED else {}
    return {
        "status": "ok",
        "median_s": statistics.median(times),
        "min_s": min(times),
        "repeats": len(times),
        "steps_per_call": steps,
        "first_call_s": first,
        "tiny_first_call_s": tiny_first,
        **compiled,
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
    parser.add_argument("--warmup", type=float, default=0.2, help="seconds after the first call")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timed calls")
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
