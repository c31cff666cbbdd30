"""The Ray Data pass of feature extraction on Ray: a pool of actors, each record once.

::

    records.ray_dataset(files, + serialized record, + file)      each file once
      ─▶ map_batches(_Embedder, ActorPoolStrategy(size=N))       backbone loaded once per
      ─▶ driver: rows grouped by file, in record order           actor; rows tagged with
                                                                 the actor and its seconds

The actors apply :func:`records.parser` with the split's schema and the model's input
spec: the same preprocessing as ``records.dataset``, so the features equal a local run's.
``preserve_order`` keeps each file's rows in order. A hublayer error raised in an actor
reaches the caller as itself, not wrapped by Ray.

Example:
    >>> by_file = run_pass(todo, model=path, workers=2, actor_cpus=0.5, threads=1,  # doctest: +SKIP
    ...                    batch_size=32, progress="off", report={})
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import numpy as np

from hublayer import records
from hublayer._ray import file_runs, hublayer_error, require_ray
from hublayer.errors import TrainingError
from hublayer.train._data import Source
from hublayer.train._progress import Mode, Ticker

__all__ = ["run_pass"]

_RAW = "__hublayer_record"
_FILE = "__hublayer_file"
_FEATURES = "__hublayer_features"
_ACTOR = "__hublayer_actor"
_SECONDS = "__hublayer_seconds"
_READY = "__hublayer_ready"


class _Embedder:
    """A Ray actor: loads the backbone once, then embeds batches of serialized Examples
    with the preprocessing of the split each record's file belongs to."""

    def __init__(
        self,
        model: Any,
        plans: dict[str, tuple[Any, Any, dict[str, Any]]],
        split_of: dict[str, str],
        threads: int,
    ) -> None:
        started = time.perf_counter()
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # TensorFlow already started here
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        from hublayer.train._backbone import load_backbone

        backbone = load_backbone(model, trainable=False)
        self.tf = tf
        self.parsers = {
            split: records.parser(schema, for_model=(spec,), **options)
            for split, (schema, spec, options) in plans.items()
        }
        self.split_of = split_of
        if keras.backend.backend() == "jax":  # as the local step: jit it, feed NumPy
            import jax

            jitted = jax.jit(lambda x: backbone(x, training=False))
            self.forward: Any = lambda x: jitted(np.asarray(x))
        else:
            self.forward = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.load = time.perf_counter() - started  # TensorFlow, the model, the parsers
        self.ready = time.time()  # the driver counts the start-up from its own clock

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tick = time.perf_counter()
        files = batch[_FILE]
        raw = batch[_RAW]
        outputs = []
        for file, start, stop in file_runs(files):
            parse = self.parsers[self.split_of[file]]
            inputs = parse(self.tf.constant([bytes(r) for r in raw[start:stop]]))
            output = np.asarray(self.forward(inputs), dtype=np.float32)
            outputs.append(output.reshape(stop - start, -1))
        rows = len(files)
        seconds = time.perf_counter() - tick
        return {
            _FILE: files,
            _FEATURES: np.concatenate(outputs),
            _ACTOR: np.full(rows, self.name),
            _SECONDS: np.full(rows, seconds / max(rows, 1)),
            _READY: np.full(rows, self.ready),
        }


def run_pass(
    todo: dict[str, Source],
    *,
    model: Any,
    workers: int,
    actor_cpus: float,
    threads: int,
    batch_size: int,
    progress: Mode,
    report: dict[str, Any],
) -> dict[str, list[np.ndarray]]:
    """One Ray Data pass over every file of ``todo`` (a file two splits share, once) on
    ``workers`` actors of ``actor_cpus`` CPUs (a scheduling label) and ``threads``
    TensorFlow threads each.

    Returns:
        The embeddings of each file, in record order. ``report`` gets, per actor, the
        records it embedded (``records_per_actor``), its start-up (``startup_s``: from
        the start of the pass until it was ready) and its embedding seconds
        (``compute_s``).
    """
    data = require_ray("engine='ray'", "ray.data")
    began = time.time()
    split_of: dict[str, str] = {}
    for name, source in todo.items():
        for file in source.files:
            split_of.setdefault(file, name)
    files = list(split_of)
    plans = {
        name: (source.schema, source.spec, _parser_options(source)) for name, source in todo.items()
    }
    first = next(iter(todo.values()))
    dataset = records.ray_dataset(
        files, first.schema, columns=[], raw_column=_RAW, file_column=_FILE
    )
    dataset.context.execution_options.preserve_order = True  # each file's rows in order
    embedded = dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "model": model,
            "plans": plans,
            "split_of": split_of,
            "threads": threads,
        },
        compute=data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=actor_cpus,
    )
    counts = [s.count_hint for s in todo.values()]
    total = sum(c for c in counts if c) if all(counts) else None
    ticker = Ticker(f"embeddings ({', '.join(todo)}) on Ray", total=total, mode=progress)
    by_file: dict[str, list[np.ndarray]] = {}
    per_actor: dict[str, int] = report["records_per_actor"]
    try:
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            features = batch[_FEATURES]
            for file, start, stop in file_runs(batch[_FILE]):
                by_file.setdefault(file, []).append(features[start:stop])
            for actor in np.unique(batch[_ACTOR]):
                mine = batch[_ACTOR] == actor
                name = str(actor)
                per_actor[name] = per_actor.get(name, 0) + int(mine.sum())
                seconds = float(batch[_SECONDS][mine].sum())
                report["compute_s"][name] = round(report["compute_s"].get(name, 0.0) + seconds, 4)
                ready = float(batch[_READY][mine][0])
                report["startup_s"][name] = round(max(ready - began, 0.0), 3)
            ticker.update(len(features))
    except BaseException as error:
        cause = hublayer_error(error)
        if cause is not error:
            raise cause.with_traceback(None) from None
        raise
    return by_file


def _parser_options(source: Source) -> dict[str, Any]:
    """The options of ``records.dataset`` that change the inputs (``image``, ``text``);
    any other option that would change which records are read is refused."""
    options = {k: v for k, v in source.options.items() if k != "schema"}
    unknown = sorted(set(options) - {"image", "text", "deterministic", "cache"})
    if unknown:
        raise TrainingError(
            "Expected pipeline options that engine='ray' can apply on its actors (image, "
            f"text, deterministic, cache). Received: {unknown}. Run with engine='local', "
            "or leave those options out.",
            stage="embeddings",
        )
    return {k: options[k] for k in ("image", "text") if k in options}
