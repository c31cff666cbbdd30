"""``fit_classifier(engine="ray", mode="feature_extraction")``: the backbone pass on Ray.

Feature extraction has one heavy part, the frozen backbone over every record, and one
small part, the head trained on the stored features. On Ray the heavy part runs as the
Ray ``embed`` engine runs (Ray Data reads, a pool of model actors embeds, each record
once); the small part runs once, here, as in a local run::

    driver: fit_classifier's local recipe (load, check the data, classes, head, scores,
            outputs), with this module's hook on its embedding step
      embedding step: every split whose cache entry is missing, in one Ray Data pass
        records.ray_dataset(the splits' files, + serialized record, + file)
          ─▶ map_batches(_Embedder, ActorPoolStrategy(size=N))  backbone loaded once per
          ─▶ driver: rows grouped by file, splits put together    actor; each record
             in file order, written into the embedding cache      embedded once
      head: trained once, on the driver (it is small); each split scored once
      outputs: model.keras, saved_model, metrics.json, report... as a local run writes them

The embedding cache is the one ``engine="local"`` uses (same keys, same entries), so a
later local run, or another Ray run, loads it instead of computing it again. With
``embedding_cache=False`` the features are computed on Ray and kept in memory only.

**Worker count.** Each actor holds the backbone and runs TensorFlow, so the default is not
the cluster's CPU count: one actor per 2 CPUs (each actor's TensorFlow gets the CPUs it is
given, 2 by default), and no more actors than the cluster has 2 GiB units of memory; at
least 1. ``num_workers`` overrides it.

``metrics.json`` records ``"engine": "ray"``, ``"workers"`` (the actors), and under
``"cluster"`` how the pass went: the records each actor embedded, its start-up (seconds
from the start of the pass until it was ready: its process, TensorFlow, the model) and
the seconds it spent embedding, and the wall time of the pass.

The model and the data must be at paths every node reaches (a shared file system or a
URL), as for ``hublayer.embed(engine="ray")``.

Example:
    >>> fit_classifier("models/encoder", "data/train-*.tfrecord", out_dir="run",  # doctest: +SKIP
    ...                engine="ray", num_workers=2)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from hublayer import config, records
from hublayer._ray import require_ray, start_ray
from hublayer.errors import HublayerError, TrainingError
from hublayer.train._data import Source
from hublayer.train._embeddings import Embeddings, _load, _store, entry_key
from hublayer.train._progress import Mode, Ticker

__all__ = ["cluster_embedding", "cluster_metrics", "default_workers", "features_on_ray"]

#: Memory one actor is given room for by the default worker count (TensorFlow, the model,
#: a few batches of decoded images).
ACTOR_MEMORY = 2 << 30
#: CPUs per actor by the default worker count; its TensorFlow uses as many threads.
ACTOR_CPUS = 2

_RAW = "__hublayer_record"
_FILE = "__hublayer_file"
_FEATURES = "__hublayer_features"
_ACTOR = "__hublayer_actor"
_SECONDS = "__hublayer_seconds"
_READY = "__hublayer_ready"


def default_workers(cpus: float, memory: float | None = None) -> int:
    """The default number of embedding actors for a cluster of ``cpus`` CPUs and
    ``memory`` bytes: one per :data:`ACTOR_CPUS` CPUs, at most one per
    :data:`ACTOR_MEMORY` bytes, at least 1.

    Example:
        >>> default_workers(16), default_workers(64, memory=8 * 2**30), default_workers(2)
        (8, 4, 1)
    """
    workers = int(cpus) // ACTOR_CPUS
    if memory:
        workers = min(workers, int(memory // ACTOR_MEMORY))
    return max(workers, 1)


@dataclass
class _Cluster:
    """How the embedding pass runs on Ray, and what it recorded."""

    model: Any  # a folder every actor loads, or the Keras layer itself
    workers: int
    actor_cpus: float
    threads: int
    report: dict[str, Any] = field(default_factory=dict)


_CLUSTER: contextvars.ContextVar[_Cluster | None] = contextvars.ContextVar(
    "hublayer_train_cluster", default=None
)


def _check_workers(num_workers: int | None) -> None:
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise ValueError(
            f"Expected num_workers to be a positive int or None. Received: {num_workers!r}."
        )


@contextlib.contextmanager
def features_on_ray(model: Any, *, num_workers: int | None, address: str | None) -> Iterator[None]:
    """Within it, ``fit_classifier(engine="local")`` computes its missing embeddings on
    Ray actors and records ``"engine": "ray"`` in its metrics.

    Args:
        model: the ``model`` argument of ``fit_classifier`` (a handle is resolved here
            once, so the actors load its folder without a download).
        num_workers: embedding actors; None for :func:`default_workers`.
        address: the Ray cluster to join; None starts a local Ray.

    Raises:
        MissingExtraError: Ray or Ray Data is not installed.
        ValueError: a bad ``num_workers``.
    """
    _check_workers(num_workers)
    ray = start_ray(address)
    require_ray("engine='ray'", "ray.data")
    from hublayer.train._ray import _on_ray

    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1.0))
    workers = num_workers or default_workers(cpus, resources.get("memory"))
    if isinstance(model, str | os.PathLike):
        from hublayer.handles import resolve

        model = str(resolve(os.fspath(model)))
    # Actors that took every CPU would leave none to the read tasks, which ask for one
    # each (a deadlock): the share is a scheduling label; the threads are what
    # TensorFlow uses in the actor.
    actor_cpus = min(float(ACTOR_CPUS), max(cpus - 1.0, 0.5) / workers)
    threads = max(1, round(cpus / workers))
    cluster = _Cluster(model, workers, actor_cpus, threads)
    token = _CLUSTER.set(cluster)
    try:
        with _on_ray(workers):
            yield
    finally:
        _CLUSTER.reset(token)


#: The embedding step: ``(backbone, sources, model_fingerprint, embedding_cache,
#: batch_size, progress) -> {split: Embeddings}``.
EmbeddingStep = Callable[
    [Any, dict[str, Source], str, "bool | str | os.PathLike[str]", int, Mode],
    dict[str, Embeddings],
]


def cluster_embedding() -> EmbeddingStep | None:
    """The embedding step on Ray inside :func:`features_on_ray`, else None.

    It is called as ``step(backbone, sources, model_fingerprint, embedding_cache,
    batch_size, progress)`` and returns ``{split: Embeddings}``, as the local step does.
    """
    cluster = _CLUSTER.get()
    if cluster is None:
        return None

    def step(
        backbone: Any,
        sources: dict[str, Source],
        model_fingerprint: str,
        embedding_cache: bool | str | os.PathLike[str],
        batch_size: int,
        progress: Mode,
    ) -> dict[str, Embeddings]:
        root = None
        if embedding_cache is True:
            root = config.cache_dir() / "embeddings"
        elif embedding_cache is not False:
            root = Path(os.fspath(embedding_cache))
        return _embed_splits(cluster, sources, model_fingerprint, root, batch_size, progress)

    return step


def cluster_metrics() -> dict[str, Any]:
    """``{"cluster": ...}`` for ``metrics.json`` inside :func:`features_on_ray`, else {}."""
    cluster = _CLUSTER.get()
    return {} if cluster is None else {"cluster": dict(cluster.report)}


def _embed_splits(
    cluster: _Cluster,
    sources: dict[str, Source],
    model_fingerprint: str,
    root: Path | None,
    batch_size: int,
    progress: Mode,
) -> dict[str, Embeddings]:
    """Every split's embeddings: the cached ones loaded, the others computed in one Ray
    pass while their cache locks are held (so no other process computes them too)."""
    start = time.perf_counter()
    done: dict[str, Embeddings] = {}
    keys = {name: entry_key(model_fingerprint, source) for name, source in sources.items()}
    if root is not None:
        for name, key in keys.items():
            loaded = _load(root / key)
            if loaded is not None:
                seconds = time.perf_counter() - start
                done[name] = Embeddings(*loaded, root / key, True, seconds)
    missing = [name for name in sources if name not in done]
    cluster.report.update(
        actors=cluster.workers,
        threads_per_actor=cluster.threads,
        splits_embedded=[],
        records_per_actor={},
        startup_s={},
        compute_s={},
        wall_s=0.0,
    )
    if not missing:
        return done
    with contextlib.ExitStack() as locks:
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
            for name in sorted(missing, key=lambda n: keys[n]):
                locks.enter_context(filelock.FileLock(str(root / f"{keys[name]}.lock")))
            for name in list(missing):  # another process may have written it meanwhile
                loaded = _load(root / keys[name])
                if loaded is not None:
                    seconds = time.perf_counter() - start
                    done[name] = Embeddings(*loaded, root / keys[name], True, seconds)
                    missing.remove(name)
        if not missing:
            return done
        tick = time.perf_counter()
        todo = {name: sources[name] for name in missing}
        by_file = _run_pass(cluster, todo, batch_size, progress)
        wall = time.perf_counter() - tick
        total = sum(sum(len(a) for a in by_file.get(f, [])) for s in todo.values() for f in s.files)
        for name, source in todo.items():
            features, labels = _assemble(source, by_file)
            share = wall * len(features) / max(total, 1)  # the pass's time, by records
            entry = None
            if root is not None:
                entry = root / keys[name]
                _store(entry, features, labels, source, share)
            done[name] = Embeddings(features, labels, entry, False, share)
        cluster.report.update(splits_embedded=missing, wall_s=round(wall, 3))
    return {name: done[name] for name in sources}


def _assemble(source: Source, by_file: dict[str, list[np.ndarray]]) -> tuple[Any, Any]:
    """One split's features in file order, and its labels read here, as a local run
    reads them; a count that differs means records were lost or doubled."""
    parts = [part for file in source.files for part in by_file.get(file, [])]
    if not parts:
        raise TrainingError(
            f"Expected the {source.name} files to hold at least one record. Received: "
            f"{len(source.files)} file(s) with none, e.g. {source.files[0]!r}. Check the glob.",
            stage="embeddings",
        )
    features = np.concatenate(parts)
    labels = source.labels()
    if len(labels) != len(features):
        raise TrainingError(
            f"Expected one embedding per {source.name} record from the Ray actors. "
            f"Received: {len(features)} embeddings for {len(labels)} records. Run again; "
            'engine="local" computes the same cache entry on this machine.',
            stage="embeddings",
        )
    return features, labels


def _runs(files: np.ndarray) -> list[tuple[str, int, int]]:
    """Contiguous runs of one file name: ``(file, start, stop)``."""
    if not len(files):
        return []
    change = np.flatnonzero(files[1:] != files[:-1]) + 1
    starts = [0, *change.tolist()]
    stops = [*change.tolist(), len(files)]
    return [(str(files[a]), a, b) for a, b in zip(starts, stops, strict=True)]


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
        for file, start, stop in _runs(files):
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


def _unwrap(error: BaseException) -> BaseException:
    """The hublayer error inside a Ray task error, when there is one."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, HublayerError):
            return seen
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return error


def _run_pass(
    cluster: _Cluster, todo: dict[str, Source], batch_size: int, progress: Mode
) -> dict[str, list[np.ndarray]]:
    """One Ray Data pass over every file of ``todo`` (a file two splits share, once):
    the embeddings of each file, in record order."""
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
            "model": cluster.model,
            "plans": plans,
            "split_of": split_of,
            "threads": cluster.threads,
        },
        compute=data.ActorPoolStrategy(size=cluster.workers),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=cluster.actor_cpus,
    )
    counts = [s.count_hint for s in todo.values()]
    total = sum(c for c in counts if c) if all(counts) else None
    ticker = Ticker(f"embeddings ({', '.join(todo)}) on Ray", total=total, mode=progress)
    by_file: dict[str, list[np.ndarray]] = {}
    report = cluster.report
    per_actor: dict[str, int] = report["records_per_actor"]
    try:
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            features = batch[_FEATURES]
            for file, start, stop in _runs(batch[_FILE]):
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
        cause = _unwrap(error)
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
