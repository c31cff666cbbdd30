"""The two figures of a training report: learning curves and the confusion matrix.

Figures are drawn with matplotlib's object API on the Agg canvas: no ``pyplot``, no
global backend switch, nothing shown on screen, safe in threads and on servers.

Example:
    >>> history = {"epoch": [1, 2], "phase": ["head"] * 2, "loss": [0.9, 0.5]}
    >>> plot_curves(history, "curves.png", best_epoch=2, monitor="loss",
    ...             classes=["cat", "dog"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["confusion_figure", "curves_figure", "plot_confusion", "plot_curves"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _classes_title(classes: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(classes[:limit]) + (
        f", ... ({len(classes)} in all)" if len(classes) > limit else ""
    )
    return f"{len(classes)} classes: {shown}"


def plot_curves(
    history: dict[str, list[Any]],
    path: str | os.PathLike[str],
    *,
    best_epoch: int | None = None,
    monitor: str | None = None,
    classes: Sequence[str] = (),
) -> None:
    """Write :func:`curves_figure` as a PNG at ``path``."""
    figure = curves_figure(history, best_epoch=best_epoch, monitor=monitor, classes=classes)
    figure.savefig(os.fspath(path), format="png")


def curves_figure(
    history: dict[str, list[Any]],
    *,
    best_epoch: int | None = None,
    monitor: str | None = None,
    classes: Sequence[str] = (),
) -> Any:
    """Loss and accuracy per epoch, training and validation, phases and best epoch marked.

    Args:
        history: columns as in ``history.csv`` (``epoch``, ``phase``, ``loss``...).
        best_epoch: the epoch whose weights were kept (1-based, as in ``history.csv``);
            marked by a line on both plots and a star on the ``monitor`` curve.
        monitor: the value early stopping watched, e.g. ``"val_accuracy"``.
        classes: the class names, shown in the figure's title.
    """
    figure = _figure(10, 4.4 if classes else 4)
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
        if best_epoch is not None and best_epoch in epochs:
            ax.axvline(best_epoch, color="tab:green", linestyle="--", linewidth=1, alpha=0.7)
            values = history.get(monitor or "")
            if monitor in (metric, f"val_{metric}") and values is not None:
                value = values[epochs.index(best_epoch)]
                if value is not None:
                    ax.plot([best_epoch], [value], "*", color="tab:green", markersize=12)
            ax.annotate(
                f"best: epoch {best_epoch}",
                (best_epoch, 0.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=8,
                color="tab:green",
                ha="left",
                va="bottom",
            )
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if classes:
        figure.suptitle(_classes_title(list(classes)), fontsize=9)
    return figure


def plot_confusion(
    matrix: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "confusion matrix",
) -> None:
    """Write :func:`confusion_figure` as a PNG at ``path``."""
    confusion_figure(matrix, classes, title=title).savefig(os.fspath(path), format="png")


def confusion_figure(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], *, title: str = "confusion matrix"
) -> Any:
    """The confusion matrix as a heat map, counts written in the cells, classes by name.

    Args:
        matrix: rows are true classes, columns predicted classes.
        classes: the class names.
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
    return figure
