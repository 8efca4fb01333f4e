"""tokens_per_s.png: one run's training tokens/s against tokens per step."""

from matplotlib.figure import Figure
from peers import C_STEP, TOOLS
from report import Lookup, impl_columns, ok, size_keys

OUR_COLORS = ["tab:blue", "tab:cyan", "tab:green", "tab:olive", "tab:orange", "tab:pink",
              "tab:gray"]
PEER_COLORS = ["tab:red", "tab:purple", "tab:brown", "gold", "darkgreen", "navy"]
C_STEP_STYLE = {"color": "black", "linestyle": "-", "marker": "s"}  # the hand-written limit


def render_plot(results, file):
    """tokens/s against tokens per step, log-log, one panel per vocabulary size: every
    implementation (the peers dash-dotted, the C step black with squares), the best peer at
    each size (thick dashed) and the hardware floor (dotted)."""
    look = Lookup(results)
    rows = [r for r in results["steps"] if r["threads"] == look.threads and ok(r)]
    vocabs = sorted({r["vocab_size"] for r in results["steps"]})
    fig = Figure(figsize=(max(11.5, 4.2 * len(vocabs)), 6.4), layout="constrained")
    axes = fig.subplots(1, len(vocabs), sharey=True, squeeze=False)[0]
    impls = [impl for impl, _, _ in impl_columns(results)]
    ours = [impl for impl in impls if impl not in TOOLS and impl != C_STEP]
    styles = {**{impl: {"color": color, "linestyle": "-", "marker": "o"}
                 for impl, color in zip(ours, OUR_COLORS * 2)},
              **{impl: {"color": color, "linestyle": "-.", "marker": "o"}
                 for impl, color in zip([i for i in impls if i in TOOLS], PEER_COLORS * 2)},
              C_STEP: C_STEP_STYLE}
    legend = {}
    for ax, v in zip(axes, vocabs, strict=True):
        sizes = sorted((b * t, b, t) for vv, b, t in size_keys(results, look.threads) if vv == v)
        for impl, _, label in impl_columns(results):
            points = sorted((r["tokens"], r["tokens_per_s"]) for r in rows
                            if r["impl"] == impl and r["vocab_size"] == v)
            if points:
                legend[label], = ax.plot(*zip(*points, strict=True), **styles[impl])
        best = [(tokens, tokens / peer["median_s"]) for tokens, b, t in sizes
                if ok(peer := look.best_peer(b, t, v))]
        floor = [(tokens, tokens / f["floor_s"]) for tokens, b, t in sizes
                 if (f := look.floors.get((b, t, v)))]
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
