"""PNG plots: the loss curves of training, and the table softmax(W) as a heatmap.

matplotlib is optional (the `plot` extra) and imported only when a plot is drawn. Figures are
rendered by Agg without pyplot, so no global backend changes, and written atomically. Token
labels are drawn in a font that has their glyphs (a CJK font for Chinese text, when one is
installed); characters that no installed font has are labelled by their code point.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..utils.files import atomic_output, check_output
from .optimum import floor_loss

DPI = 130
COLORBAR_TICKS = (0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
MAX_TICK_LABELS = 80  # above this, label every k-th token (V=256: every 4th)
INSTALL_HINT = ("plots need matplotlib: pip install matplotlib (or, in npbigram's source "
                "folder, pip install -e '.[plot]')")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MissingMatplotlib(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


def check_plot_path(path, flag="the plot"):
    """Fail early, before any training, on a destination that is not a .png file, cannot be
    written, or holds a file that is not a PNG image; `flag` names it in the messages."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"plots are PNG files: {flag} {path} should end in .png")
    require_matplotlib()
    check_output(path, flag, "a PNG image", is_png)


def is_png(path):
    try:
        with open(path, "rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingMatplotlib(INSTALL_HINT) from None


def _new_figure(figsize):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    check_plot_path(path)
    with atomic_output(path, "the plot") as f:
        fig.savefig(f, format="png", dpi=DPI)


def plot_losses(history, path, floor=None, title="bigram training"):
    """Train and val loss against step, with the floor (the best any bigram can do) as a line.

    history: [(step, {"train": loss, "val": loss}), ...] as Trainer.evaluate returns them.
    """
    if not history:
        raise ValueError("no evaluations to plot: train for at least one eval interval")
    steps = [step for step, _ in history]
    fig = _new_figure((8, 5))
    ax = fig.add_subplot()
    for split, style in (("train", "o-"), ("val", "s-")):
        ax.plot(steps, [losses[split] for _, losses in history], style, markersize=4,
                label=f"{split} loss")
    if floor is not None:
        ax.axhline(floor, color="black", linestyle="--", linewidth=1,
                   label=f"optimum: best train loss of any bigram ({floor:.4f})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_training(trainer, path):
    """plot_losses for a Trainer: its whole history of evaluations (a resumed run's too), closed
    by one at the current step if the last was earlier, against the floor of its train split."""
    history = [(e["step"], {"train": e["train"], "val": e["val"]}) for e in trainer.history]
    if not history or history[-1][0] != trainer.step:
        history.append((trainer.step, trainer.evaluate()))
    floor = floor_loss(trainer.split_counts()["train"])
    cfg = trainer.config
    title = (f"bigram training: {cfg.optimizer} lr={cfg.lr:g}, batch {cfg.batch_size}x"
             f"{cfg.block_size}, {cfg.eval} loss")
    plot_losses(history, path, floor=floor, title=title)


def plot_heatmap(probs, labels, path, title="softmax(W)", reference=None,
                 reference_title="count-based: C_ij / n_i"):
    """A (V,V) table of next-token probabilities as a heatmap with token labels on both axes;
    with `reference` (V,V), the two side by side on one color scale."""
    panels = [(probs, title)] + ([(reference, reference_title)] if reference is not None else [])
    vocab_size = len(labels)
    for table, name in panels:
        if np.shape(table) != (vocab_size, vocab_size):
            raise ValueError(f"{name}: expected a {vocab_size}x{vocab_size} table, "
                             f"got shape {np.shape(table)}")
    from matplotlib.colors import PowerNorm

    labels, font = _drawable(labels)
    side = 9.5
    fig = _new_figure((side * len(panels) + 1.2, side + 0.6))
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(float(np.max(t)) for t, _ in panels))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (table, name) in zip(axes, panels):
        image = ax.imshow(table, cmap="viridis", norm=norm, interpolation="nearest")
        _label_axes(ax, labels, font)
        ax.set_title(name, fontsize=12)
    colorbar = fig.colorbar(image, ax=list(axes), shrink=0.8,
                            ticks=[t for t in COLORBAR_TICKS if t <= norm.vmax])
    colorbar.set_label("p(next | current)  (square-root color scale)")
    _save(fig, path)


def _label_axes(ax, labels, font):
    every = math.ceil(len(labels) / MAX_TICK_LABELS)
    ticks = np.arange(0, len(labels), every)
    font = font.copy()
    font.set_size(8 if len(ticks) > 40 else 10)
    wide = max(len(labels[i]) for i in ticks) > 2  # e.g. \x80: turn the column labels upright
    ax.set_xticks(ticks, [labels[i] for i in ticks], fontproperties=font,
                  rotation=90 if wide else 0)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontproperties=font)
    ax.tick_params(top=True, labeltop=True, length=2)
    ax.set_xlabel("next character j")
    ax.set_ylabel("current character i (row i of W)")


def _drawable(labels):
    """(labels, font): the monospace font when it has every glyph of the labels, else an
    installed font that does; when none does, the characters the monospace font lacks become
    their code points (U+4E2D), so that no glyph is missing."""
    from matplotlib.font_manager import FontProperties, findfont

    needed = {ch for label in labels for ch in label}
    monospace = findfont(FontProperties(family="monospace"))
    if needed <= _glyphs(monospace):
        return labels, FontProperties(family="monospace")
    for path in installed_fonts():
        if needed <= _glyphs(path):
            return labels, FontProperties(fname=path)
    have = _glyphs(monospace)
    return ["".join(ch if ch in have else f"U+{ord(ch):04X}" for ch in label)
            for label in labels], FontProperties(family="monospace")


def installed_fonts():
    """The paths of the fonts matplotlib knows and those installed since it listed them,
    monospace and regular weights first."""
    from matplotlib.font_manager import findSystemFonts, fontManager

    paths = {font.fname for font in fontManager.ttflist} | set(findSystemFonts())
    return sorted(paths, key=lambda path: ("Mono" not in path, "Regular" not in path, path))


@lru_cache(maxsize=None)
def _glyphs(path):
    """The characters a font file has glyphs for."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(chr(codepoint) for codepoint in FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()
