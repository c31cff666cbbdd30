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

The actors and their pass are in ``_ray_actors``; this module decides what to embed, holds
the cache locks, and writes the entries.

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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from hublayer import config
from hublayer._ray import model_workers, require_ray, start_ray
from hublayer.errors import TrainingError
from hublayer.train._data import Source
from hublayer.train._embeddings import Embeddings, _load, _store, entry_key
from hublayer.train._progress import Mode
from hublayer.train._ray_actors import run_pass

__all__ = ["cluster_embedding", "cluster_metrics", "default_workers", "features_on_ray"]

#: Memory one actor is given room for by the default worker count (TensorFlow, the model,
#: a few batches of decoded images).
ACTOR_MEMORY = 2 << 30
#: CPUs per actor by the default worker count; its TensorFlow uses as many threads.
ACTOR_CPUS = 2


def default_workers(cpus: float, memory: float | None = None) -> int:
    """The default number of embedding actors for a cluster of ``cpus`` CPUs and
    ``memory`` bytes: one per :data:`ACTOR_CPUS` CPUs, at most one per
    :data:`ACTOR_MEMORY` bytes, at least 1 (:func:`hublayer._ray.model_workers`).

    Example:
        >>> default_workers(16), default_workers(64, memory=8 * 2**30), default_workers(2)
        (8, 4, 1)
    """
    return model_workers(cpus, memory, cpus_each=ACTOR_CPUS, memory_each=ACTOR_MEMORY)


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
    """``{"engine": "ray", "workers": N, "cluster": ...}`` for ``metrics.json`` inside
    :func:`features_on_ray`, else {}."""
    cluster = _CLUSTER.get()
    if cluster is None:
        return {}
    return {"engine": "ray", "workers": cluster.workers, "cluster": dict(cluster.report)}


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
        by_file = run_pass(
            todo,
            model=cluster.model,
            workers=cluster.workers,
            actor_cpus=cluster.actor_cpus,
            threads=cluster.threads,
            batch_size=batch_size,
            progress=progress,
            report=cluster.report,
        )
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
