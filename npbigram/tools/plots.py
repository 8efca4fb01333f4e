"""PNG plots: the loss curves of training, the table softmax(W) as a heatmap, and the gradient
of a batch's loss (one position's p and p - onehot as bars, dL/dW in the rows read).

matplotlib is optional (the `plot` extra) and imported only when a plot is drawn. Figures are
rendered by Agg without pyplot, so no global backend changes, and written atomically. Token
labels are drawn in a font that has their glyphs (a CJK font for Chinese text, when one is
installed); characters that no installed font has are labelled by their code point.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..utils.files import atomic_output, check_output, file_head
from .optimum import floor_loss

DPI = 130
COLORBAR_TICKS = (0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
MAX_TICK_LABELS = 80  # above this, label every k-th token (V=256: every 4th)
INSTALL_HINT = ("plots need matplotlib: pip install matplotlib (or, in npbigram's source "
                "folder, pip install -e '.[plot]')")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POSITION_HEIGHT = 6.0  # inches of the picture of one position's gradient
# the gradient's colors: negative (the logit goes up in a descent step) blue, as in RdBu_r
TARGET_COLOR, PUSHED_DOWN_COLOR, PROBABILITY_COLOR, REPEATED_COLOR = (
    "tab:blue", "tab:red", "tab:gray", "tab:red")


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
    return file_head(path, len(PNG_SIGNATURE)) == PNG_SIGNATURE


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
    """Train and val loss against step, with the floor (the best any bigram can do) as a line;
    history: [(step, {"train": loss, "val": loss}), ...]."""
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
    _token_ticks(ax.set_xticks, labels, font)
    _token_ticks(ax.set_yticks, labels, font, upright=False)
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


def plot_gradient(explanation, position, labels, path):
    """Both pictures of the gradient (an explain.GradientExplanation) in one PNG: the position's
    bars above, the batch's dL/dW below."""
    rows = np.count_nonzero(explanation.reads)
    fig = _new_figure((12, POSITION_HEIGHT + _batch_height(rows)))
    top, bottom = fig.subfigures(2, 1, height_ratios=[POSITION_HEIGHT, _batch_height(rows)])
    labels, font = _drawable(labels)
    _draw_position_gradient(top, explanation, position, labels, font)
    _draw_batch_gradient(bottom, explanation, labels, font)
    _save(fig, path)


def plot_position_gradient(explanation, position, labels, path):
    """At one position, the bars of p over every next token and of p - onehot(target)."""
    fig = _new_figure((12, POSITION_HEIGHT))
    _draw_position_gradient(fig, explanation, position, *_drawable(labels))
    _save(fig, path)


def plot_batch_gradient(explanation, labels, path):
    """dL/dW of a batch as a heatmap of the rows read only, each row labelled with how many
    positions read it (the repeated ones marked): their gradients were summed into it."""
    fig = _new_figure((12, _batch_height(np.count_nonzero(explanation.reads))))
    _draw_batch_gradient(fig, explanation, *_drawable(labels))
    _save(fig, path)


def _batch_height(rows):
    return 2.5 + 0.28 * rows


def _draw_position_gradient(fig, explanation, position, labels, font):
    target, current = explanation.targets[position], explanation.inputs[position]
    probs, push = explanation.probs[position], explanation.position_gradient(position)
    tokens = np.arange(len(probs))
    is_target = tokens == target
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.bar(tokens, probs, color=np.where(is_target, TARGET_COLOR, PROBABILITY_COLOR))
    top.set_ylabel("p = softmax(z)")
    top.set_title(f"position {position}: reads '{labels[current]}', next is '{labels[target]}' "
                  f"(blue); p('{labels[target]}') = {probs[target]:.3f}", fontproperties=font)
    bottom.bar(tokens, push, color=np.where(is_target, TARGET_COLOR, PUSHED_DOWN_COLOR))
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylim(-1.05, max(0.1, float(push.max()) * 1.15))
    bottom.set_ylabel("p - onehot(next)")
    bottom.set_title("dL/dz x N = p - onehot: the target's logit is pushed up by 1 - p, every "
                     "other down by its p (the row sums to 0)")
    _token_ticks(bottom.set_xticks, labels, font)
    bottom.set_xlabel("next token j")
    for ax in (top, bottom):
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_xlim(-0.6, len(probs) - 0.4)


def _draw_batch_gradient(fig, explanation, labels, font):
    reads, grad = explanation.reads, explanation.grad
    rows = np.flatnonzero(reads)
    scale = float(np.abs(grad[rows]).max()) or 1.0
    ax = fig.subplots()
    image = ax.imshow(grad[rows], cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto",
                      interpolation="nearest")
    _token_ticks(ax.set_xticks, labels, font)
    ax.set_yticks(np.arange(len(rows)), [labels[i] for i in rows], fontproperties=font)
    for tick, i in zip(ax.get_yticklabels(), rows):
        if reads[i] > 1:
            tick.set_color(REPEATED_COLOR)
            tick.set_fontweight("bold")
    for y, i in enumerate(rows):  # drawn in the default font, which has every glyph used
        ax.text(1.005, y, f"read {reads[i]}" + (" times: summed" if reads[i] > 1 else ""),
                transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                color=REPEATED_COLOR if reads[i] > 1 else "black")
    ax.set_xlabel("next token j")
    ax.set_ylabel("row i of W (current token)")
    ax.set_title(f"dL/dW: the {len(rows)} rows the {len(explanation.inputs)} positions read (the "
                 f"other {len(grad) - len(rows)} rows are 0); red rows were read more than once")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.1)
    colorbar.set_label("dL/dW_ij  (blue: W_ij goes up in a descent step)")


def _token_ticks(set_ticks, labels, font, upright=True):
    """Token labels at 0, 1, ... through `set_ticks` (ax.set_xticks), every k-th when many;
    `upright`: turned 90 degrees when some are wide (e.g. \\x80)."""
    ticks = np.arange(0, len(labels), math.ceil(len(labels) / MAX_TICK_LABELS))
    font = font.copy()
    font.set_size(8 if len(ticks) > 40 else 10)
    wide = upright and max(len(labels[i]) for i in ticks) > 2
    set_ticks(ticks, [labels[i] for i in ticks], fontproperties=font, rotation=90 if wide else 0)
