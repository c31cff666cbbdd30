"""Feature extraction's embedding cache: run the frozen backbone once, keep its outputs.

A frozen backbone's outputs never change, so feature extraction computes them once per
(model, data) pair and trains the head on the stored arrays. A later run with the same
model and the same files loads them back and never calls the backbone.

Layout (one entry per model and split)::

    <root>/                            default: <hublayer cache dir>/embeddings
    ├── <key>/                         key = sha256(model fingerprint, data fingerprint)
    │   ├── features.npy               float32 [examples, features]
    │   ├── labels.npy                 int64 or unicode [examples], as read from the records
    │   └── meta.json                  shapes, files, seconds; written last
    └── <key>.lock                     held while one process computes the entry

The model fingerprint hashes the backbone's class, config and every weight; the data
fingerprint hashes the files' paths, sizes and modification times, the label key, the
model input spec and the pipeline options. An entry is written into a temporary folder
and renamed into place, so a reader sees a whole entry or none; an entry whose arrays do
not match its ``meta.json`` is computed again.

Example:
    >>> result = embed(backbone, source, model_fingerprint=fp, root=root)  # doctest: +SKIP
    >>> result.features.shape, result.hit  # doctest: +SKIP
    ((5000, 1280), False)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from hublayer.errors import TrainingError
from hublayer.train._data import Source, numpy_labels
from hublayer.train._progress import Mode, Ticker

__all__ = ["Embeddings", "embed", "entry_key"]

_FORMAT = 1


@dataclass(frozen=True)
class Embeddings:
    """One split's backbone outputs and labels.

    Attributes:
        features: float32 ``[examples, features]``.
        labels: the labels as read from the records (int64, or str for string labels).
        path: the cache entry, or None when caching is off.
        hit: True when the entry was loaded, so the backbone did not run.
        seconds: time spent computing or loading.
    """

    features: np.ndarray
    labels: np.ndarray
    path: Path | None
    hit: bool
    seconds: float


def entry_key(model_fingerprint: str, source: Source) -> str:
    """The cache key of one split's embeddings under one model."""
    payload = f"{_FORMAT}\n{model_fingerprint}\n{source.fingerprint()}"
    return hashlib.sha256(payload.encode()).hexdigest()


def embed(
    backbone: Any,
    source: Source,
    *,
    model_fingerprint: str,
    root: Path | None,
    batch_size: int,
    progress: bool | Mode = False,
) -> Embeddings:
    """The backbone's outputs for every example of ``source``, from the cache if there.

    Args:
        backbone: the frozen backbone layer.
        source: the split to embed (read in file order, not shuffled).
        model_fingerprint: from ``fingerprint_model(backbone)``.
        root: the cache folder, or None to compute without caching.
        batch_size: examples per backbone call.
        progress: while computing, True or ``"bars"`` draws a bar, ``"lines"`` prints a
            line per tenth of the split (see ``_progress``), False or ``"off"`` nothing.

    Returns:
        The :class:`Embeddings`.

    Raises:
        TrainingError: the split holds no examples.
        SpecMismatchError, SchemaError: the data cannot feed the model.
    """
    start = time.perf_counter()
    if isinstance(progress, bool):
        progress = "bars" if progress else "off"
    if root is None:
        features, labels = _compute(backbone, source, batch_size=batch_size, progress=progress)
        return Embeddings(features, labels, None, False, time.perf_counter() - start)
    key = entry_key(model_fingerprint, source)
    entry = root / key
    loaded = _load(entry)
    if loaded is None:
        root.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(root / f"{key}.lock")):
            loaded = _load(entry)  # another process may have written it meanwhile
            if loaded is None:
                features, labels = _compute(
                    backbone, source, batch_size=batch_size, progress=progress
                )
                _store(entry, features, labels, source, time.perf_counter() - start)
                return Embeddings(features, labels, entry, False, time.perf_counter() - start)
    features, labels = loaded
    return Embeddings(features, labels, entry, True, time.perf_counter() - start)


def _compute(
    backbone: Any, source: Source, *, batch_size: int, progress: Mode
) -> tuple[np.ndarray, np.ndarray]:
    dataset = source.dataset(batch_size=batch_size, shuffle=False)
    signature = tf.TensorSpec([None, *source.spec.shape[1:]], tf.as_dtype(source.spec.dtype))
    forward: Callable[[Any], Any] = tf.function(
        lambda x: backbone(x, training=False), input_signature=[signature]
    )
    if keras.backend.backend() == "jax":  # the layer runs JAX code: jit it, feed NumPy
        jitted = importlib.import_module("jax").jit(lambda x: backbone(x, training=False))

        def forward(x: Any) -> Any:
            return jitted(np.asarray(x))

    truncation = _truncation(backbone)
    if truncation is not None:  # a text chain: count the sentences that filled its sequence
        chain, count = backbone, truncation.count

        def chained(x: Any) -> Any:
            tokens = chain.tokenize(x)
            return chain.encode(tokens, training=False), count(tokens)

        both = tf.function(chained, input_signature=[signature])

        def forward(x: Any) -> Any:
            output, filled = both(x)
            truncation.add(filled, int(output.shape[0]))
            return output

    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    label = f"embeddings ({source.name})"
    total = source.count_hint
    lines = Ticker(label, total=total, mode=progress)
    with tqdm(
        desc=label,
        total=total if progress == "bars" else None,
        unit="ex",
        disable=progress != "bars",
        leave=False,
    ) as bar:
        for inputs, label_batch in dataset:
            output = np.asarray(forward(inputs), dtype=np.float32)
            features.append(output.reshape(output.shape[0], -1))
            labels.append(numpy_labels(label_batch))
            bar.update(output.shape[0])
            lines.update(output.shape[0])
    if truncation is not None:
        truncation.report(f"embeddings ({source.name})")
    if not features:
        raise TrainingError(
            f"Expected the {source.name} files to hold at least one record. Received: "
            f"{len(source.files)} file(s) with none, e.g. {source.files[0]!r}. Check the glob.",
            stage="embeddings",
        )
    return np.concatenate(features), np.concatenate(labels)


def _truncation(backbone: Any) -> Any:
    """A ``Truncation`` counter when the backbone is a text chain, else None."""
    if not hasattr(backbone, "tokenize"):
        return None
    from hublayer.layers import Truncation

    return Truncation(backbone)


def _load(entry: Path) -> tuple[np.ndarray, np.ndarray] | None:
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        features = np.load(entry / "features.npy", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if (
        meta.get("format") != _FORMAT
        or list(features.shape) != meta.get("features_shape")
        or list(labels.shape) != [meta.get("examples")]
    ):
        return None
    return features, labels


def _store(
    entry: Path, features: np.ndarray, labels: np.ndarray, source: Source, seconds: float
) -> None:
    temp = entry.with_name(f".tmp-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temp.mkdir(parents=True)
    try:
        np.save(temp / "features.npy", features, allow_pickle=False)
        np.save(temp / "labels.npy", labels, allow_pickle=False)
        meta = {
            "format": _FORMAT,
            "examples": int(features.shape[0]),
            "features_shape": list(features.shape),
            "split": source.name,
            "files": list(source.files),
            "label": source.label,
            "seconds": round(seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if entry.exists():  # a damaged entry: replace it
            shutil.rmtree(entry)
        os.replace(temp, entry)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(temp)
