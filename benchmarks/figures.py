"""The speed targets, computed from one run's rows: each a figure {group, name, target, value,
text, met, note}.

One group compares npbigram with the best peer (the fastest of PyTorch eager, torch.compile and
JAX at each size) and gives each step's distance from the hardware floor (floors.py); the
engine's group compares it with PyTorch eager. All ratios are of medians from the same run.
"""

from peers import PEERS
from results import TORCH, Lookup, format_percent, format_ratio, format_value, ok, why_missing

BEST_PEER = "Against the best peer"
ENGINE = "The engine's targets: against PyTorch eager"

# the best-peer targets' sizes (B, T, V) and the speed-up over the best peer each path must reach there
NO_LOGITS, LOOP, DEFAULT_API = "numba-nologits", "numba-loop", "numba"
TARGET_SIZES = [(32, 8, 65), (512, 64, 65), (4096, 256, 65), (32, 8, 4096)]
FAST_PATHS = [("public API, return_logits=False", NO_LOGITS), ("Trainer loop", LOOP)]
FAST_TARGETS = {(32, 8, 4096): 3}  # else 5
DEFAULT_TARGET = 2
BANDWIDTH_SIZE = (32, 8, 4096)  # the step bound by AdamW's memory traffic
SEED_COLD, SEED_WARM, COLD_LOOP_WITHIN = 2.5, 15, 3
# the engine targets' paths through a training step: (name, gather/scatter impl, pair-counts impl)
ENGINE_PATHS = [("public API", "numba", "numba-pair-counts"),
                ("public API, return_logits=False", "numba-nologits",
                 "numba-pair-counts-nologits"),
                ("Trainer loop", "numba-loop", "numba-loop-pair-counts")]


def derive_figures(results):
    """The figures against the best peer, then the engine's against PyTorch eager."""
    return best_peer_figures(results) + engine_figures(results)


def best_peer_figures(results):
    look = Lookup(results)
    figures = []
    for path, impl in FAST_PATHS:
        for b, t, v in TARGET_SIZES:
            figures.append(versus_best_peer(look, f"{path}, B={b} T={t} V={v}",
                                            FAST_TARGETS.get((b, t, v), 5), impl, b, t, v))
    for b, t, v in TARGET_SIZES:
        figures.append(versus_best_peer(look, f"public API returning the logits, B={b} T={t} "
                                              f"V={v}", DEFAULT_TARGET, DEFAULT_API, b, t, v))
    b, t, v = BANDWIDTH_SIZE
    for path, impl in [*FAST_PATHS, ("public API returning the logits", DEFAULT_API)]:
        figures.append(bandwidth_fraction(look, f"{path}, B={b} T={t} V={v}: fraction of the "
                                                "measured bandwidth", impl, b, t, v))
    torch_seed = look.seed.get((TORCH, "-"))
    cold, warm = look.seed.get(("numba", "cold")), look.seed.get(("numba", "warm"))
    figures += [
        ratio("seed job, first run with an empty JIT cache, whole process: npbigram train vs "
              "PyTorch bigram.py", SEED_COLD, torch_seed, cold, "wall_s"),
        ratio("seed job, warm JIT cache, whole process: npbigram train vs PyTorch bigram.py",
              SEED_WARM, torch_seed, warm, "wall_s"),
        ratio("seed job, training time npbigram train reports: cold run / warm run",
              COLD_LOOP_WITHIN, warm, cold, "loop_s", names=("warm", "cold"), inverse=True),
    ]
    return [{"group": BEST_PEER, **f} for f in figures]


def versus_best_peer(look, name, target, impl, b, t, v):
    """How many times faster than the best peer impl's step is; the note adds the fraction of
    the hardware floor's limit it reaches."""
    peer, row = look.best_peer(b, t, v), look.step(impl, b, t, v)
    peer_name = f"best peer ({peer['short']})" if ok(peer) else "best peer"
    figure = ratio(f"{name}: vs the best peer", target, peer, row, "median_s",
                   names=(peer_name, "npbigram"))
    fraction = look.limit_fraction(row)
    if fraction is not None:
        figure["note"] += f"; npbigram at {format_percent(fraction)} of the hardware limit"
    absent = [r for r in (look.step(p, b, t, v) for p in PEERS) if r is not None and not ok(r)]
    if ok(peer) and absent:  # the best of fewer peers: say which ones are missing
        figure["note"] += "; not compared: " + ", ".join(f"{r['short']} ({r['status']})"
                                                          for r in absent)
    return figure


def bandwidth_fraction(look, name, impl, b, t, v):
    """AdamW's bytes at the streaming kernel's measured bandwidth / impl's step time: the
    fraction of the machine's bandwidth the step reaches if it moved only those bytes."""
    figure = {"name": name, "target": "reported", "value": None, "met": None}
    row, floor = look.step(impl, b, t, v), look.floor(b, t, v)
    if not ok(row) or floor is None:
        return {**figure, "text": "n/a",
                "note": why_missing(row) if not ok(row) else "no hardware floor in this run"}
    fraction = floor["memory_s"] / row["median_s"]
    return {**figure, "value": fraction, "text": format_percent(fraction),
            "note": f"{floor['memory_bytes'] / 1e6:,.0f} MB at "
                    f"{floor['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s = "
                    f"{format_value(floor['memory_s'], 'memory_s')}; step "
                    f"{format_value(row['median_s'], 'median_s')}"}


def engine_figures(results):
    """The engine's targets, against PyTorch eager. Where a target does not say which
    npbigram path, each of ENGINE_PATHS is given; the one-step figures are given for
    the public API with and without the logits."""
    look = Lookup(results)
    n = look.threads
    torch_seed, numba_seed = look.seed.get((TORCH, "-")), look.seed.get(("numba", "warm"))
    figures = []
    for path, gather, _ in ENGINE_PATHS[:2]:
        for b, t, target in [(32, 8, 5), (4096, 256, 10)]:
            figures.append(ratio(f"one step through the {path}, B={b} T={t} V=65: numba vs "
                                 "PyTorch", target, look.step(TORCH, b, t, 65),
                                 look.step(gather, b, t, 65), "median_s"))
    figures += [
        ratio("seed job, whole process, warm JIT cache: npbigram train vs PyTorch bigram.py", 4,
              torch_seed, numba_seed, "wall_s"),
        ratio("seed job, training loop: npbigram train vs PyTorch bigram.py", 25,
              torch_seed, numba_seed, "loop_s"),
        ratio("seed job, cold first run (empty JIT cache) vs PyTorch bigram.py's whole job", 1,
              torch_seed, look.seed.get(("numba", "cold")), "wall_s"),
    ]
    for path, gather, pairs in ENGINE_PATHS:
        figures += [
            ratio(f"pair-counts step at 2^20 tokens (B=4096 T=256 V=65), {path}: vs PyTorch",
                  200, look.step(TORCH, 4096, 256, 65), look.step(pairs, 4096, 256, 65),
                  "median_s"),
            ratio(f"gather/scatter at 2^20 tokens, V=65, {path}: {n} threads vs 1", 1.7,
                  look.step(gather, 4096, 256, 65, 1) if n > 1 else None,
                  look.step(gather, 4096, 256, 65), "median_s",
                  names=("1 thread", f"{n} threads")),
            ratio(f"peak memory, V=4096, 65,536 tokens/step, gather/scatter, {path}: "
                  "PyTorch's / npbigram's", 10, look.step(TORCH, 512, 128, 4096),
                  look.step(gather, 512, 128, 4096), "peak_mem_bytes"),
            at_most(f"whole-process peak RSS, V=4096, 2^20 tokens/step, gather/scatter, {path}",
                    2e9, look.step(gather, 4096, 256, 4096), "process_peak_rss_bytes"),
        ]
    return [{"group": ENGINE, **f} for f in figures]



def ratio(name, target, base, new, key, names=("PyTorch", "npbigram"), inverse=False):
    """How many times smaller new[key] is than base[key]; met when at least `target` (with
    inverse, how many times larger, met when at most `target`). The note gives both values,
    each after its name in `names` (base's, new's)."""
    figure = {"name": name, "target": f"{'≤' if inverse else '≥'} {target:g}×", "value": None,
              "met": None}
    if not (ok(base) and ok(new)):
        missing = dict.fromkeys(why_missing(row) for row in (base, new) if not ok(row))
        return {**figure, "text": "n/a", "note": "; ".join(missing)}
    value = new[key] / base[key] if inverse else base[key] / new[key]
    note = ", ".join(f"{who} {format_value(row[key], key)}"
                     for who, row in zip(names, (base, new), strict=True))
    return {**figure, "value": value, "text": format_ratio(value),
            "met": value <= target if inverse else value >= target, "note": note}


def at_most(name, limit, row, key):
    figure = {"name": name, "target": f"≤ {limit / 1e9:g} GB", "value": None, "met": None}
    if not ok(row):
        return {**figure, "text": "n/a", "note": why_missing(row)}
    return {**figure, "value": row[key], "text": f"{row[key] / 1e9:.2f} GB",
            "met": row[key] <= limit, "note": ""}
