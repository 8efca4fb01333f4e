"""PNG plots: the loss curves of training, and the table softmax(W) as a heatmap.

matplotlib is optional (the `plot` extra) and imported only when a plot is drawn. Figures are
rendered by Agg without pyplot, so no global backend changes, and written atomically.
"""

import math
from pathlib import Path

import numpy as np

from .files import atomic_output
from .optimum import floor_loss

DPI = 130
COLORBAR_TICKS = (0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
MAX_TICK_LABELS = 80  # above this, label every k-th token (V=256: every 4th)
INSTALL_HINT = "plots need matplotlib, the optional 'plot' extra: pip install 'npbigram[plot]'"


class MissingMatplotlib(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


def check_plot_path(path):
    """Fail early, before any training, on a destination that is not a .png file."""
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"plots are PNG files: {path} should end in .png")
    require_matplotlib()


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
    with atomic_output(path) as f:
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


def plot_training(trainer, history, path):
    """plot_losses for a Trainer: its evaluations, closed by one at the current step if the last
    was earlier, against the floor of its train split."""
    if not history or history[-1][0] != trainer.step:
        history = [*history, (trainer.step, trainer.evaluate())]
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

    side = 9.5
    fig = _new_figure((side * len(panels) + 1.2, side + 0.6))
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(float(np.max(t)) for t, _ in panels))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (table, name) in zip(axes, panels):
        image = ax.imshow(table, cmap="viridis", norm=norm, interpolation="nearest")
        _label_axes(ax, labels)
        ax.set_title(name, fontsize=12)
    colorbar = fig.colorbar(image, ax=list(axes), shrink=0.8,
                            ticks=[t for t in COLORBAR_TICKS if t <= norm.vmax])
    colorbar.set_label("p(next | current)  (square-root color scale)")
    _save(fig, path)


def _label_axes(ax, labels):
    every = math.ceil(len(labels) / MAX_TICK_LABELS)
    ticks = np.arange(0, len(labels), every)
    fontsize = 8 if len(ticks) > 40 else 10
    wide = max(len(labels[i]) for i in ticks) > 2  # e.g. \x80: turn the column labels upright
    ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=fontsize, fontfamily="monospace",
                  rotation=90 if wide else 0)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=fontsize, fontfamily="monospace")
    ax.tick_params(top=True, labeltop=True, length=2)
    ax.set_xlabel("next character j")
    ax.set_ylabel("current character i (row i of W)")
