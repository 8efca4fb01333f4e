"""Turn run.py's results into the markdown tables and the plot (the targets: figures.py)."""

from pathlib import Path

from matplotlib.figure import Figure
from peers import COMPILED, PEERS
from results import (
    TORCH,
    Lookup,
    format_mib,
    format_percent,
    format_rate,
    format_ratio,
    format_seconds,
    ok,
)


class Notes:
    """Numbered notes for table cells that cannot hold the whole reason."""

    def __init__(self):
        self.texts = []

    def ref(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def cell(self, row):
        """'skipped [2]' for a row that was not measured; a peer that is not installed says
        how to install it in the cell itself."""
        if not row.get("reason"):
            return row["status"]
        if row["status"] == "not installed":
            return f"not installed (`{row['reason']}`)"
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
    parts = ["# npbigram benchmarks", machine_paragraph(results), "## Targets"]
    for group in dict.fromkeys(f["group"] for f in results["figures"]):
        parts += [f"### {group}",
                  figures_table([f for f in results["figures"] if f["group"] == group])]
    parts += ["## One training step", steps_intro(), steps_table(results, look, notes),
              "## Distance from the hardware floor", floors_intro(look),
              floors_table(results, look, notes), limits_table(results, look, notes)]
    compile_rows = compile_table(results, look, notes)
    if compile_rows:
        parts += ["## Compile times of the peers", compile_intro(), compile_rows]
    parts += ["## Peak memory of one step", memory_intro(), memory_table(results, look, notes)]
    scaling = scaling_table(results, look, notes)
    if scaling:
        parts += ["## Threads", (f"The threaded implementations on 1 thread and on "
                                 f"{look.threads}, same sizes, median step time."), scaling]
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
            f"NumPy {m['numpy']}, numba {m['numba']}, PyTorch {m['torch']}, "
            f"JAX {m.get('jax', 'not recorded')} (jaxlib {m.get('jaxlib', 'not recorded')}), "
            f"optax {m.get('optax', 'not recorded')}; npbigram {m['npbigram_commit']}. Every "
            f"implementation runs with {s['threads']} thread(s) unless a table says otherwise. "
            f"Load average (1 min) at start, end: {load}. Run time "
            f"{results['duration_s']:.0f} s, command `{results['command']}`.{quick}")


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


def size_table(results, look, format_cell, before=(), after=()):
    """One row per size, one column per implementation, cells from format_cell(row); before
    and after: (header, cell(b, t, v)) columns around the implementations'."""
    impls = impl_columns(results)
    rows = []
    for v, b, t in size_keys(results, look.threads):
        rows.append([v, f"{b}×{t}", f"{b * t:,}"]
                    + [cell(b, t, v) for _, cell in before]
                    + [format_cell(look.step(impl, b, t, v)) for impl, _, _ in impls]
                    + [cell(b, t, v) for _, cell in after])
    header = ["V", "B×T", "tokens/step", *(h for h, _ in before),
              *(short for _, short, _ in impls), *(h for h, _ in after)]
    return "\n\n".join([columns_key(impls), table(header, rows)])


def best_peer_cell(look, notes):
    """The 'best peer' column: which peer was fastest at the size, and its step time."""
    def cell(b, t, v):
        peer = look.best_peer(b, t, v)
        if peer is None:
            return "-"
        if not ok(peer):
            return notes.cell(peer)
        return f"{peer['short']} {format_seconds(peer['median_s'])}"

    return "best peer", cell


def steps_intro():
    return ("npbigram's public API: `model(xb, yb); model.backward(); opt.step()` on a batch "
            "already in memory; no-logits: the same with `model(xb, yb, return_logits=False)`, "
            "which returns (None, loss) and never writes the (B·T, V) logits. Trainer loop: "
            "`Trainer.train_steps(k)` as `npbigram train` runs it, batch sampling included, k "
            "steps per compiled call. The peers (`benchmarks/peers.py`), each on a batch "
            "already in memory: PyTorch eager runs bigram.py's "
            "`model(xb, yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()`; "
            "torch.compile the same with the model and the optimizer step compiled; JAX one "
            "`jax.jit`ted function: `value_and_grad` of the loss, `optax.adamw`'s update. "
            "AdamW (lr 1e-2, β 0.9/0.999, ε 1e-8, weight decay 0.01), float32, uniform "
            "random token ids. A cell is the median time of one step after warm-up "
            "(compilation excluded), tokens/s, and for npbigram how many times faster than "
            "the best peer at the same size (the fastest of the peers, named in the last "
            "column). *floor*: the hardware floor of the step (next section).")


def steps_table(results, look, notes):
    def cell(row):
        if not ok(row):
            return notes.cell(row)
        peer = look.best_peer(row["batch_size"], row["block_size"], row["vocab_size"])
        versus = (f" · {format_ratio(peer['median_s'] / row['median_s'])}"
                  if ok(peer) and row["impl"] not in PEERS else "")
        return (f"{format_seconds(row['median_s'])} · {format_rate(row['tokens_per_s'])}/s"
                f"{versus}{notes.warned(row)}")

    def floor_cell(b, t, v):
        floor = look.floor(b, t, v)
        return f"{format_seconds(floor['floor_s'])} ({floor['bound']})" if floor else "-"

    return size_table(results, look, cell, before=[("floor", floor_cell)],
                      after=[best_peer_cell(look, notes)])


def floors_intro(look):
    status = look.floors_status
    reason = status.get("reason", "no floors in the results")
    missing = "" if status.get("status") == "ok" else f" **Not measured in this run**: {reason}."
    return ("What any step must at least do, timed on this machine in the same run "
            "(`benchmarks/floors.py`). *Exponentials*: one softmax row for each distinct input "
            "id of the batch (W does not change within a step), E = distinct ids × V, timed as "
            f"a vectorized loop of npbigram's float32 exp (`{status.get('exp', 'exp_f32')}`). "
            "*AdamW bytes*: AdamW reads W, g, m, v and writes W, m, v, 7 × 4·V² bytes, timed as "
            "a streaming kernel with that pattern (at small V the arrays fit in the caches). "
            "*Batch bytes*: reading the B·T int64 ids and targets, timed as a loop summing them. "
            "Each is the faster of a serial and a parallel loop, the minimum over timed calls; "
            "the step's floor is the largest of the three. The second table gives, for each "
            "implementation, floor / median step time: the fraction of the limit it reaches "
            f"(100% is the hardware's limit).{missing}")


def floors_table(results, look, notes):
    rows = []
    for v, b, t in size_keys(results, look.threads):
        f = look.floor(b, t, v)
        if f is None:
            continue
        rows.append([v, f"{b}×{t}", f"{f['distinct_rows']:,} × {v:,} = {f['exp_count']:,}",
                     format_seconds(f["exp_s"]), f"{f['memory_bytes'] / 1e6:,.3g} MB",
                     format_seconds(f["memory_s"]),
                     f"{f['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s",
                     f"{f['batch_bytes'] / 1e6:,.3g} MB", format_seconds(f["batch_s"]),
                     f"{format_seconds(f['floor_s'])} ({f['bound']})"])
    return table(["V", "B×T", "exponentials E", "exp floor", "AdamW bytes", "AdamW floor",
                  "AdamW bandwidth", "batch bytes", "batch floor", "floor"], rows)


def limits_table(results, look, notes):
    def cell(row):
        fraction = look.limit_fraction(row)
        if fraction is not None:
            return format_percent(fraction)
        return notes.cell(row) if row is not None and not ok(row) else "-"

    return size_table(results, look, cell)


def compile_intro():
    return ("The compiled peers' first call at each size, a compilation from scratch (an empty "
            "inductor cache for torch.compile; JAX's persistent cache is off): *compile* is "
            "that call, in a process where a tiny model (V = 2) already compiled once; "
            "*first compile in the process* is the tiny model's, which also pays the "
            "compiler's imports and one-time setup. *steps to repay* is compile / the step's "
            "median: how many steps the compilation costs.")


def compile_table(results, look, notes):
    rows = []
    for row in results["steps"]:
        if row["impl"] not in COMPILED or row["threads"] != look.threads:
            continue
        size = [row["short"], row["vocab_size"], f"{row['batch_size']}×{row['block_size']}"]
        if not ok(row):
            rows.append([*size, notes.cell(row), "-", "-", "-"])
            continue
        rows.append([*size, format_seconds(row["compile_s"]),
                     format_seconds(row["tiny_first_call_s"]), format_seconds(row["median_s"]),
                     f"{row['compile_s'] / row['median_s']:,.0f}"])
    if not rows:
        return None
    return table(["peer", "V", "B×T", "compile", "first compile in the process", "step",
                  "steps to repay"], rows)


def memory_intro():
    return ("MiB the training needs: the peak resident set over the timed steps minus the "
            "resident set before the model was built (after the interpreter, the libraries, "
            "the batch or token stream, and a tiny model's step, so compilers are loaded). The "
            "model, its gradient, the optimizer state and each step's temporaries count; JIT "
            "compilation's transient memory does not.")


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

OUR_COLORS = ["tab:blue", "tab:cyan", "tab:green", "tab:olive", "tab:orange", "tab:pink",
              "tab:gray"]
PEER_COLORS = ["tab:red", "tab:purple", "tab:brown"]


def render_plot(results, file):
    """tokens/s against tokens per step, log-log, one panel per vocabulary size: every
    implementation (the peers dash-dotted), the best peer at each size (thick dashed) and the
    hardware floor (dotted)."""
    look = Lookup(results)
    rows = [r for r in results["steps"] if r["threads"] == look.threads and ok(r)]
    vocabs = sorted({r["vocab_size"] for r in results["steps"]})
    fig = Figure(figsize=(max(11.5, 4.2 * len(vocabs)), 6.4), layout="constrained")
    axes = fig.subplots(1, len(vocabs), sharey=True, squeeze=False)[0]
    impls = [impl for impl, _, _ in impl_columns(results)]
    ours = [impl for impl in impls if impl not in PEERS]
    colors = {**dict(zip(ours, OUR_COLORS * 2)),
              **dict(zip([impl for impl in impls if impl in PEERS], PEER_COLORS * 2))}
    legend = {}
    for ax, v in zip(axes, vocabs, strict=True):
        sizes = sorted((b * t, b, t) for vv, b, t in size_keys(results, look.threads) if vv == v)
        for impl, _, label in impl_columns(results):
            points = sorted((r["tokens"], r["tokens_per_s"]) for r in rows
                            if r["impl"] == impl and r["vocab_size"] == v)
            if points:
                legend[label], = ax.plot(*zip(*points, strict=True), marker="o",
                                         color=colors[impl],
                                         linestyle="-." if impl in PEERS else "-")
        best = [(tokens, tokens / peer["median_s"]) for tokens, b, t in sizes
                if ok(peer := look.best_peer(b, t, v))]
        floor = [(tokens, tokens / f["floor_s"]) for tokens, b, t in sizes
                 if (f := look.floor(b, t, v))]
        for label, points, style in [
                ("best peer at each size", best,
                 {"color": "black", "linestyle": "--", "linewidth": 2.5, "alpha": 0.4}),
                ("hardware floor (floors.py)", floor,
                 {"color": "black", "linestyle": ":", "linewidth": 1.5})]:
            if points:
                legend[label], = ax.plot(*zip(*points, strict=True), **style)
        ax.set(xscale="log", yscale="log", title=f"V = {v}", xlabel="tokens per step (B×T)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("training tokens per second")
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=2,
               fontsize="small")
    m = results["machine"]
    fig.suptitle(f"npbigram training step, {look.threads} thread(s): {m['cpu']}, "
                 f"{m['cores']} cores")
    fig.savefig(file, format="png", dpi=110)
