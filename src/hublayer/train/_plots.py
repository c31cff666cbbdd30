"""The two figures of a training report: learning curves and the confusion matrix.

Figures are drawn with matplotlib's object API on the Agg canvas: no ``pyplot``, no
global backend switch, nothing shown on screen, safe in threads and on servers.

Example:
    >>> plot_curves({"epoch": [1, 2], "phase": ["head"] * 2, "loss": [0.9, 0.5]},
    ...             "curves.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["plot_confusion", "plot_curves"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_curves(history: dict[str, list[Any]], path: str | os.PathLike[str]) -> None:
    """Loss and accuracy per epoch, training and validation, phases marked.

    Args:
        history: columns as in ``history.csv`` (``epoch``, ``phase``, ``loss``...).
        path: the PNG to write.
    """
    figure = _figure(10, 4)
    axes = figure.subplots(1, 2)
    epochs = history.get("epoch", [])
    phases = history.get("phase", [])
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = history.get(key)
            if values and any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=key)
        for index in range(1, len(phases)):
            if phases[index] != phases[index - 1]:
                ax.axvline(epochs[index] - 0.5, color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    phases[index],
                    (epochs[index] - 0.5, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -3),
                    textcoords="offset points",
                    fontsize=8,
                    color="grey",
                    ha="left",
                    va="top",
                )
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    figure.savefig(os.fspath(path), format="png")


def plot_confusion(
    matrix: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "confusion matrix",
) -> None:
    """The confusion matrix as a heat map, counts written in the cells.

    Args:
        matrix: rows are true classes, columns predicted classes.
        classes: the class names.
        path: the PNG to write.
        title: the figure's title.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=np.int64)
    size = max(4.0, min(0.5 * len(classes) + 2.0, 16.0))
    figure = _figure(size, size)
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = list(range(len(classes)))
    ax.set_xticks(ticks, labels=list(classes), rotation=45 if len(classes) > 10 else 0)
    ax.set_yticks(ticks, labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(classes) <= 30:
        threshold = counts.max() / 2 if counts.size else 0
        for (row, column), value in np.ndenumerate(counts):
            color = "white" if value > threshold else "black"
            ax.text(column, row, str(value), ha="center", va="center", color=color, fontsize=8)
    figure.savefig(os.fspath(path), format="png")
