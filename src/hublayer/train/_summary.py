"""What a run reports: per-split scores, ``metrics.json`` and ``config.json`` contents.

Example:
    >>> columns([{"epoch": 1, "phase": "head", "loss": 0.5}])
    {'epoch': [1], 'phase': ['head'], 'loss': [0.5]}
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from hublayer._specs import TensorInfo
from hublayer.train._backbone import ModelLike
from hublayer.train._metrics import predict_batches, score
from hublayer.train._phases import Run, raw_batches

__all__ = ["columns", "metrics_of", "plain", "score_splits", "settings_of"]

#: Batch size to score cached features (a small head: large batches are cheapest).
_EVAL_BATCH = 256
#: Batch size to score through the backbone: there the backbone's activations, not the
#: head's, set the peak memory, so the batches are smaller (``peak_memory_after_mb`` in a
#: demo's ``demo.json`` shows the peak after each step).
_RAW_EVAL_BATCH = 64


def score_splits(
    run: Run, *, fine_tuned: bool, rescore_train: bool = True
) -> dict[str, dict[str, Any]]:
    """Score every split from one pass of predictions (cached features when the
    backbone did not change).

    After fine-tuning, ``rescore_train=False`` spares the pass over the train split: its
    scores are the loss and accuracy logged at the best epoch (``from_logs`` is True, and
    there is no confusion matrix for it).
    """
    count = len(run.classes.names)
    scores: dict[str, dict[str, Any]] = {}
    for name in run.sources:
        if name == "train" and fine_tuned and not rescore_train and len(run.sources) > 1:
            scores[name] = _logged_train_scores(run)
            continue
        if name in run.embedded and not fine_tuned:
            features = run.embedded[name].features
            probabilities = np.asarray(
                run.parts.head_model.predict(features, batch_size=_EVAL_BATCH, verbose=0)
            )
            labels: np.ndarray | None = run.labels[name]
        else:
            batches = raw_batches(run, name, shuffle=False, batch_size=_RAW_EVAL_BATCH)
            probabilities, labels = predict_batches(run.parts.classifier, batches)
            labels = labels if labels is not None else np.zeros([0], np.int64)
        scores[name] = score(probabilities, np.asarray(labels), num_classes=count)
    return scores


def _logged_train_scores(run: Run) -> dict[str, Any]:
    """The train loss and accuracy logged at the best epoch of the last phase."""
    state = run.store.phase("fine_tune")
    best = None if state.best_epoch is None else state.best_epoch + 1
    row = next((r for r in run.store.history if r["epoch"] == best), {})
    return {
        "examples": int(run.labels["train"].shape[0]),
        "accuracy": row.get("accuracy"),
        "loss": row.get("loss"),
        "from_logs": True,
        "epoch": best,
    }


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = ["epoch", "phase", *sorted({k for row in rows for k in row} - {"epoch", "phase"})]
    return {key: [row.get(key) for row in rows] for key in keys}


def metrics_of(
    run: Run,
    scores: dict[str, dict[str, Any]],
    timings: dict[str, float],
    *,
    mode: str,
    trained_variables: int,
) -> dict[str, Any]:
    shown = next(n for n in ("validation", "test", "train") if n in scores)
    phases = {
        name: {
            "epochs_trained": sum(1 for row in run.store.history if row["phase"] == name),
            "best_epoch": None if state.best_epoch is None else state.best_epoch + 1,
            "best": state.best,
            "stopped_early": state.stopped_early,
        }
        for name, state in run.store.phases.items()
    }
    return {
        "splits": {
            name: {k: v for k, v in s.items() if k != "confusion_matrix"}
            for name, s in scores.items()
        },
        "confusion_matrix": {
            "split": shown,
            "classes": list(run.classes.names),
            "matrix": scores[shown]["confusion_matrix"],
        },
        "classes": list(run.classes.names),
        "run": {
            "mode": mode,
            "monitor": run.monitor,
            "seed": run.seed,
            "resumed": run.store.resumed,
            "phases": phases,
            "embedding_cache": {n: "hit" if e.hit else "computed" for n, e in run.embedded.items()}
            or "off",
            "trainable_backbone_variables": trained_variables,
        },
        "timings": timings,
    }


def plain(value: Any) -> Any:
    """A pipeline option as JSON data (``records.dataset`` takes an ``ImageOptions`` as
    the dict of its fields); other objects as their ``repr``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _describe_model(model: ModelLike) -> str:
    if isinstance(model, str | os.PathLike):
        return os.fspath(model)
    return f"<{type(model).__name__} {getattr(model, 'name', '')}>"


def settings_of(
    model: ModelLike, run: Run, spec: TensorInfo, options: dict[str, Any], **hyper: Any
) -> dict[str, Any]:
    """What ``config.json`` records: enough to read new data for this model again."""
    return {
        "format": 1,
        "model": _describe_model(model),
        "label": run.sources["train"].label,
        "class_names": list(run.classes.names),
        "labels_are_strings": run.classes.strings,
        "input": {
            "name": spec.name,
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "value_range": None if spec.value_range is None else list(spec.value_range),
            "range_source": spec.range_source,
        },
        "pipeline": {k: plain(v) for k, v in options.items()},
        "batch_size": run.batch_size,
        "seed": run.seed,
        **hyper,
        "files": {name: list(source.files) for name, source in run.sources.items()},
    }
