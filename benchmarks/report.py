"""Turn run.py's results into the done-when figures, the markdown tables and the plot."""

from pathlib import Path

from matplotlib.figure import Figure

TORCH = "torch"
MIB = 2**20


# ----------------------------------------------------------------------------------------------
# looking rows up


class Lookup:
    """The rows of one run, found by implementation and size."""

    def __init__(self, results):
        self.threads = results["settings"]["threads"]
        self.steps = {(r["impl"], r["batch_size"], r["block_size"], r["vocab_size"],
                       r["threads"]): r for r in results["steps"]}
        self.seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}

    def step(self, impl, b, t, v, threads=None):
        return self.steps.get((impl, b, t, v, threads or self.threads))


def ok(row):
    return row is not None and row.get("status") == "ok"


def why_missing(row):
    if row is None:
        return "not measured in this run"
    reason = f" ({row['reason']})" if row.get("reason") else ""
    return f"{row['label']}: {row['status']}{reason}"


# ----------------------------------------------------------------------------------------------
# done-when figures


# npbigram's paths through a training step: (name, gather/scatter impl, pair-counts impl)
PATHS = [("public API", "numba", "numba-pair-counts"),
         ("public API, return_logits=False", "numba-nologits", "numba-pair-counts-nologits"),
         ("Trainer loop", "numba-loop", "numba-loop-pair-counts")]
API_PATHS = PATHS[:2]  # the one-step figures are about the public API


def derive_figures(results):
    """The issue's done-when figures, each {name, target, value, text, met, note}. Where the
    issue does not say which npbigram path, each of PATHS is given; the one-step figures are
    given for the public API with and without the logits."""
    look = Lookup(results)
    n = look.threads
    torch_seed, numba_seed = look.seed.get((TORCH, "-")), look.seed.get(("numba", "warm"))
    figures = []
    for path, gather, _ in API_PATHS:
        figures += [
            ratio(f"one step through the {path}, B=32 T=8 V=65: numba vs PyTorch", 5,
                  look.step(TORCH, 32, 8, 65), look.step(gather, 32, 8, 65), "median_s"),
            ratio(f"one step through the {path}, B=4096 T=256 V=65: numba vs PyTorch", 10,
                  look.step(TORCH, 4096, 256, 65), look.step(gather, 4096, 256, 65),
                  "median_s"),
        ]
    figures += [
        ratio("seed job, whole process, warm JIT cache: npbigram train vs PyTorch bigram.py", 4,
              torch_seed, numba_seed, "wall_s"),
        ratio("seed job, training loop: npbigram train vs PyTorch bigram.py", 25,
              torch_seed, numba_seed, "loop_s"),
        ratio("seed job, cold first run (empty JIT cache) vs PyTorch bigram.py's whole job", 1,
              torch_seed, look.seed.get(("numba", "cold")), "wall_s"),
    ]
    for path, gather, pairs in PATHS:
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
    return figures


def ratio(name, target, base, new, key, names=("PyTorch", "npbigram")):
    """How many times smaller new[key] is than base[key]; met when at least `target`. The
    note gives both values, each after its name in `names` (base's, new's)."""
    figure = {"name": name, "target": f"≥ {target:g}×", "value": None, "met": None}
    if not (ok(base) and ok(new)):
        missing = dict.fromkeys(why_missing(row) for row in (base, new) if not ok(row))
        return {**figure, "text": "n/a", "note": "; ".join(missing)}
    value = base[key] / new[key]
    note = ", ".join(f"{who} {format_value(row[key], key)}"
                     for who, row in zip(names, (base, new), strict=True))
    return {**figure, "value": value, "text": format_ratio(value), "met": value >= target,
            "note": note}


def at_most(name, limit, row, key):
    figure = {"name": name, "target": f"≤ {limit / 1e9:g} GB", "value": None, "met": None}
    if not ok(row):
        return {**figure, "text": "n/a", "note": why_missing(row)}
    return {**figure, "value": row[key], "text": f"{row[key] / 1e9:.2f} GB",
            "met": row[key] <= limit, "note": ""}


# ----------------------------------------------------------------------------------------------
# formatting


def format_seconds(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale or unit == "µs":
            return f"{s / scale:.3g} {unit}"


def format_rate(r):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1)):
        if r >= scale or unit == "":
            return f"{r / scale:.3g}{unit}"


def format_ratio(r):
    return f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def format_mib(n_bytes):
    mib = n_bytes / MIB
    return f"{mib:,.1f}" if mib < 10 else f"{mib:,.0f}"


def format_value(value, key):
    return format_seconds(value) if key.endswith("_s") else f"{format_mib(value)} MiB"


class Notes:
    """Numbered notes for table cells that cannot hold the whole reason."""

    def __init__(self):
        self.texts = []

    def ref(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def cell(self, row):
        """'skipped [2]' for a row that was not measured."""
        if not row.get("reason"):
            return row["status"]
        return f"{row['status']} " + self.ref(f"{row['label']}: {row['reason']}")

    def warned(self, row):
        """' [3]' after a measured cell, for each warning its implementation raised."""
        return "".join(" " + self.ref(f"{row['label']} warned: {w}")
                       for w in row.get("warnings", []))

    def markdown(self):
        return "\n".join(f"{i}. {text}" for i, text in enumerate(self.texts, 1))


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# markdown


def render_markdown(results):
    look = Lookup(results)
    notes = Notes()
    parts = ["# npbigram benchmarks", machine_paragraph(results),
             "## Done-when figures", figures_table(results["figures"]),
             "## One training step", steps_intro(), steps_table(results, look, notes),
             "## Peak memory of one step", memory_intro(), memory_table(results, look, notes)]
    scaling = scaling_table(results, look, notes)
    if scaling:
        parts += ["## Threads", "The threaded implementations on 1 thread and on "
                  f"{look.threads}, same sizes, median step time.", scaling]
    if results["seed_job"]:
        parts += ["## Seed job", seed_intro(results), seed_table(results, look, notes)]
    if notes.texts:
        parts += ["## Notes", notes.markdown()]
    return "\n\n".join(parts) + "\n"


def machine_paragraph(results):
    m, s = results["machine"], results["settings"]
    load = ", ".join(f"{x:.2f}" for x in results["load_average_start"][:1]
                     + results["load_average_end"][:1])
    quick = (" **Quick run** (`--quick`): small sizes and short timings, for checking the "
             "harness; its numbers are rough." if s["quick"] else "")
    return (f"Measured {results['created']} on {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_bytes'] / 2**30:.1f} GiB RAM, {m['os']}; Python {m['python']}, "
            f"NumPy {m['numpy']}, numba {m['numba']}, PyTorch {m['torch']}; "
            f"npbigram {m['npbigram_commit']}. Every implementation runs with {s['threads']} "
            f"thread(s) unless a table says otherwise. Load average (1 min) at start, end: "
            f"{load}. Run time {results['duration_s']:.0f} s, command "
            f"`{results['command']}`.{quick}")


def figures_table(figures):
    rows = [(f["name"], f["target"], f["text"],
             {True: "yes", False: "**no**", None: "-"}[f["met"]], f["note"]) for f in figures]
    return table(["figure", "target", "measured", "met", "detail"], rows)


def impl_columns(results):
    """(impl, short name, label) of the implementations in this run, in table order."""
    seen = {}
    for row in results["steps"]:
        seen.setdefault(row["impl"], (row["impl"], row["short"], row["label"]))
    return list(seen.values())


def columns_key(impls):
    return "Columns: " + "; ".join(f"**{short}**: {label}" for _, short, label in impls) + "."


def size_keys(results, threads):
    keys = {(r["vocab_size"], r["batch_size"], r["block_size"]) for r in results["steps"]
            if r["threads"] == threads}
    return sorted(keys, key=lambda k: (k[0], k[1] * k[2]))


def size_table(results, look, format_cell):
    """One row per size, one column per implementation, cells from format_cell(row)."""
    impls = impl_columns(results)
    rows = []
    for v, b, t in size_keys(results, look.threads):
        rows.append([v, f"{b}×{t}", f"{b * t:,}"]
                    + [format_cell(look.step(impl, b, t, v)) for impl, _, _ in impls])
    return "\n\n".join([columns_key(impls),
                         table(["V", "B×T", "tokens/step", *(short for _, short, _ in impls)],
                               rows)])


def steps_intro():
    return ("Public API: npbigram's `model(xb, yb); model.backward(); opt.step()` on a batch "
            "already in memory; no-logits: the same with `model(xb, yb, return_logits=False)`, "
            "which returns (None, loss) and never writes the (B·T, V) logits. Trainer loop: "
            "`Trainer.train_steps(k)` as `npbigram train` runs it, batch sampling included, k "
            "steps per compiled call. PyTorch: bigram.py's "
            "`model(xb, yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()` on "
            "a batch already in memory. AdamW, float32, uniform random token ids. A cell is the "
            "median time of one step after warm-up (JIT compilation excluded), tokens/s, and "
            "how many times faster than PyTorch at the same size.")


def steps_table(results, look, notes):
    def cell(row):
        if not ok(row):
            return notes.cell(row)
        torch_row = look.step(TORCH, row["batch_size"], row["block_size"], row["vocab_size"])
        versus = (f" · {format_ratio(torch_row['median_s'] / row['median_s'])}"
                  if ok(torch_row) and row["impl"] != TORCH else "")
        return (f"{format_seconds(row['median_s'])} · {format_rate(row['tokens_per_s'])}/s"
                f"{versus}{notes.warned(row)}")

    return size_table(results, look, cell)


def memory_intro():
    return ("MiB the training needs: the peak resident set over the timed steps minus the "
            "resident set before the model was built (after the interpreter, the libraries and "
            "the batch or token stream). The model, its gradient, the optimizer state and each "
            "step's temporaries count; JIT compilation's transient memory does not.")


def memory_table(results, look, notes):
    def cell(row):
        return format_mib(row["peak_mem_bytes"]) if ok(row) else notes.cell(row)

    return size_table(results, look, cell)


def scaling_table(results, look, notes):
    """Rows of the implementations timed on 1 thread, beside the same size on look.threads."""
    rows = []
    for one in results["steps"]:
        if one["threads"] != 1 or look.threads == 1:
            continue
        many = look.step(one["impl"], one["batch_size"], one["block_size"], one["vocab_size"])
        cells = [one["short"], f"{one['batch_size']}×{one['block_size']}", one["vocab_size"]]
        cells += [format_seconds(row["median_s"]) if ok(row) else notes.cell(row)
                  for row in (one, many)]
        cells.append(format_ratio(one["median_s"] / many["median_s"]) if ok(one) and ok(many)
                     else "-")
        rows.append(cells)
    if not rows:
        return None
    return table(["implementation", "B×T", "V", "1 thread", f"{look.threads} threads",
                  "speed-up"], rows)


def seed_intro(results):
    s = results["settings"]
    return (f"bigram.py's whole job ({s['seed_iters']} steps of B=32, T=8 on "
            f"`{Path(s['seed_data']).name}`, an evaluation every 300 steps, a 500-character "
            "sample) as one process: "
            "`python -m npbigram train` against `benchmarks/bigram_torch.py`. Whole process: "
            "wall time from start to exit, interpreter and imports included. Training loop: the "
            "time the job itself reports for its training steps. A cold run starts with an "
            "empty numba cache (NUMBA_CACHE_DIR), the warm run after it reuses it. Median of "
            f"{s['seed_repeats']} run(s).")


def seed_table(results, look, notes):
    torch_row = look.seed.get((TORCH, "-"))
    rows = []
    for row in results["seed_job"]:
        if not ok(row):
            rows.append([row["label"], row["cache"], notes.cell(row)] + ["-"] * 5)
            continue
        versus = [format_ratio(torch_row[key] / row[key]) if ok(torch_row) else "-"
                  for key in ("wall_s", "loop_s")]
        rows.append([row["label"], row["cache"], format_seconds(row["wall_s"]),
                     format_seconds(row["loop_s"]), format_rate(row["loop_tokens_per_s"]),
                     format_mib(row["peak_rss_bytes"]), *versus])
    return table(["implementation", "JIT cache", "whole process", "training loop",
                  "loop tokens/s", "peak RSS MiB", "whole process vs PyTorch",
                  "loop vs PyTorch"], rows)


# ----------------------------------------------------------------------------------------------
# plot


def render_plot(results, file):
    """tokens/s against tokens per step, log-log, one panel per vocabulary size."""
    look = Lookup(results)
    rows = [r for r in results["steps"] if r["threads"] == look.threads and ok(r)]
    vocabs = sorted({r["vocab_size"] for r in results["steps"]})
    fig = Figure(figsize=(max(11.5, 4.2 * len(vocabs)), 5.0), layout="constrained")
    axes = fig.subplots(1, len(vocabs), sharey=True, squeeze=False)[0]
    colors = {impl: f"C{i}" for i, (impl, _, _) in enumerate(impl_columns(results))}
    legend = {}
    for ax, v in zip(axes, vocabs, strict=True):
        for impl, _, label in impl_columns(results):
            points = sorted((r["tokens"], r["tokens_per_s"]) for r in rows
                            if r["impl"] == impl and r["vocab_size"] == v)
            if points:
                legend[label], = ax.plot(*zip(*points, strict=True), marker="o",
                                         color=colors[impl])
        ax.set(xscale="log", yscale="log", title=f"V = {v}", xlabel="tokens per step (B×T)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("training tokens per second")
    fig.legend(legend.values(), legend.keys(), loc="outside lower center",
               ncol=2)
    m = results["machine"]
    fig.suptitle(f"npbigram training step, {look.threads} thread(s): {m['cpu']}, "
                 f"{m['cores']} cores")
    fig.savefig(file, format="png", dpi=110)
