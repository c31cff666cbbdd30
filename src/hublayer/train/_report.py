"""Everything a training run leaves in ``out_dir``.

Layout::

    out_dir/
    ├── model.keras        the Keras model: keras.saving.load_model (after import hublayer)
    ├── saved_model/       a SavedModel for serving (signature "serving_default")
    ├── config.json        label, class names, input spec, settings: how to read new data
    ├── metrics.json       accuracy and loss per split, confusion matrix, timings
    ├── history.csv        one row per epoch: phase, loss, accuracy, val_*, learning rate
    ├── curves.png         loss and accuracy per epoch
    ├── confusion.png      the confusion matrix
    └── report.md          all of the above on one page

Each file is written under a temporary name and renamed, so a reader never sees half a
file, and an interrupted export leaves the previous one in place.

Example:
    >>> paths = write_outputs(  # doctest: +SKIP
    ...     Path("run"), model=m, history=h, metrics=mt, settings=s)
    >>> sorted(paths)  # doctest: +SKIP
    ['confusion', 'config', 'curves', 'history', 'metrics', 'model', 'report', 'saved_model']
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras

from hublayer.train._plots import plot_confusion, plot_curves

__all__ = ["FILES", "best_epoch", "render_report", "write_outputs"]

#: Output name -> file or folder name inside ``out_dir``.
FILES: dict[str, str] = {
    "model": "model.keras",
    "saved_model": "saved_model",
    "config": "config.json",
    "metrics": "metrics.json",
    "history": "history.csv",
    "curves": "curves.png",
    "confusion": "confusion.png",
    "report": "report.md",
}


@contextlib.contextmanager
def _atomic(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` on success."""
    temp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.stem}{suffix}")
    try:
        yield temp
        if temp.is_dir() and path.exists():
            old = path.with_name(f".old-{uuid.uuid4().hex[:8]}-{path.name}")
            os.replace(path, old)
            os.replace(temp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, path)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _write_text(path: Path, text: str) -> None:
    with _atomic(path) as temp:
        temp.write_text(text, encoding="utf-8")


def _write_with(path: Path, write: Callable[[Path], None], suffix: str = "") -> None:
    with _atomic(path, suffix) as temp:
        write(temp)


def write_outputs(
    out_dir: Path,
    *,
    model: keras.Model,
    history: dict[str, list[Any]],
    metrics: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Path]:
    """Write the model, its SavedModel, the scores, the plots and the report.

    Args:
        out_dir: the run's folder (created if missing).
        model: the trained classifier.
        history: per-epoch columns.
        metrics: the content of ``metrics.json``; its ``timings`` gain ``export_s``.
        settings: the content of ``config.json``.

    Returns:
        Output name to path, for every entry of :data:`FILES`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in FILES.items()}
    started = time.perf_counter()
    _write_with(paths["model"], model.save, suffix=".keras")
    export_for_serving(model, paths["saved_model"])  # atomic itself
    timings = metrics.setdefault("timings", {})
    timings["export_s"] = time.perf_counter() - started
    if "total_s" in timings:
        timings["total_s"] += timings["export_s"]
    _write_text(paths["config"], json.dumps(settings, indent=2) + "\n")
    _write_text(paths["history"], _csv(history))
    best = best_epoch(metrics)
    _write_with(
        paths["curves"],
        lambda p: plot_curves(
            history,
            p,
            best_epoch=best,
            monitor=metrics["run"]["monitor"],
            classes=metrics["classes"],
        ),
        suffix=".png",
    )
    matrix = metrics["confusion_matrix"]
    _write_with(
        paths["confusion"],
        lambda p: plot_confusion(
            matrix["matrix"], matrix["classes"], p, title=f"confusion matrix ({matrix['split']})"
        ),
        suffix=".png",
    )
    _write_text(paths["metrics"], json.dumps(metrics, indent=2) + "\n")
    _write_text(paths["report"], render_report(metrics, settings, history))
    return paths


def export_for_serving(model: keras.Model, path: Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` returns
    ``{"probabilities": ...}``; ``hublayer.KerasLayer`` can load it back too."""
    from hublayer.models import export_saved_model

    if keras.backend.backend() != "tensorflow":  # JAX: the .keras file is the model
        logging.getLogger(__name__).warning(
            "No SavedModel for serving at %s: export needs the TensorFlow backend.", path
        )
        return
    export_saved_model(model, path, output_name="probabilities", overwrite=True)


def _csv(history: dict[str, list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = list(history)
    writer.writerow(keys)
    rows = zip(*(history[k] for k in keys), strict=True) if keys else iter(())
    for row in rows:
        writer.writerow(
            ["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row]
        )
    return buffer.getvalue()


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cache_state(state: Any) -> str:
    if isinstance(state, dict):
        return ", ".join(f"{split} {how}" for split, how in state.items())
    return str(state)


def best_epoch(metrics: dict[str, Any]) -> int | None:
    """The epoch whose weights the model kept (1-based): the last phase's best, which
    starts from the phase before it, so it is the best of the whole run."""
    phases = list(metrics["run"]["phases"].values())
    return phases[-1]["best_epoch"] if phases else None


def _split_row(name: str, split: dict[str, Any]) -> str:
    accuracy, loss = _number(split["accuracy"]), _number(split["loss"])
    if split.get("from_logs"):
        note = f" (logged at epoch {split['epoch']}, not scored again)"
        accuracy, loss = accuracy + note, loss + note
    return f"| {name} | {split['examples']} | {accuracy} | {loss} |"


def render_report(
    metrics: dict[str, Any], settings: dict[str, Any], history: dict[str, list[Any]]
) -> str:
    """The Markdown page that ties the outputs together."""
    run = metrics["run"]
    lines = [
        "# Training report",
        "",
        f"- Model: `{settings['model']}`",
        f"- Mode: `{run['mode']}`; label feature `{settings['label']}`; "
        f"{len(metrics['classes'])} classes",
        f"- Input: `{settings['input']['dtype']}{settings['input']['shape']}`",
        f"- Early stopping on `{run['monitor']}`; seed {run['seed']}"
        + ("; resumed from a checkpoint" if run["resumed"] else ""),
        f"- Embedding cache: {_cache_state(run['embedding_cache'])}",
    ]
    test = metrics["splits"].get("test")
    if test is not None:
        lines.append(
            f"- **Test accuracy: {_number(test['accuracy'])}** on {test['examples']} held-out "
            "examples (never used to train or to stop)"
        )
    lines += [
        "",
        "## Scores",
        "",
        "| split | examples | accuracy | loss |",
        "|---|---:|---:|---:|",
    ]
    lines += [_split_row(name, split) for name, split in metrics["splits"].items()]
    lines += [
        "",
        "## Phases",
        "",
        "| phase | epochs | best epoch | best | stopped early |",
        "|---|---:|---:|---:|---|",
    ]
    for name, phase in run["phases"].items():
        lines.append(
            f"| {name} | {phase['epochs_trained']} | {phase['best_epoch'] or '-'} | "
            f"{_number(phase['best'])} | {'yes' if phase['stopped_early'] else 'no'} |"
        )
    matrix = metrics["confusion_matrix"]
    lines += [
        "",
        "## Learning curves",
        "",
        f"![loss and accuracy per epoch]({FILES['curves']})",
        "",
        f"Per-epoch values: [`{FILES['history']}`]({FILES['history']}) "
        f"({len(history.get('epoch', []))} epochs). The model keeps the weights of epoch "
        f"{best_epoch(metrics) or '-'}, marked on the curves.",
        "",
        f"## Confusion matrix ({matrix['split']})",
        "",
        f"![confusion matrix]({FILES['confusion']})",
        "",
        "## Timings",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    timings = sorted(metrics["timings"].items(), key=lambda item: item[0] == "total_s")
    lines += [f"| {k.removesuffix('_s')} | {v:.1f} |" for k, v in timings]
    lines += [
        "",
        "## Files",
        "",
        f"- `{FILES['model']}`: the Keras model (`import hublayer` first, then "
        "`keras.saving.load_model`).",
        f"- `{FILES['saved_model']}/`: a SavedModel for serving (`serving_default`).",
        f"- `{FILES['metrics']}`, `{FILES['history']}`, `{FILES['config']}`: scores, "
        "per-epoch values, and the settings used to read data for this model.",
        "",
        "Predict or evaluate on new data:",
        "",
        "```",
        "hublayer predict --model <this folder> --data 'new-*.tfrecord' --output preds.csv",
        "hublayer evaluate --model <this folder> --data 'test-*.tfrecord'",
        "```",
        "",
    ]
    return "\n".join(lines)
