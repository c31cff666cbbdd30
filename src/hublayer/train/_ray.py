"""``fit_classifier(engine="ray")``: the same recipe on Ray Train's ``TensorflowTrainer``.

::

    driver: resolve the model and the embedding cache folder (paths every worker reaches)
      └─ TensorflowTrainer(num_workers=N)        Ray Train sets TF_CONFIG per worker
           worker k: fit_classifier(engine="local"), each Keras ``fit`` under
                     MultiWorkerMirroredStrategy (batches sharded among the workers,
                     gradients summed); the embedding cache entry is computed once (its
                     file lock) and read by the others; worker 0 writes out_dir, the
                     others a scratch folder
    driver: the outputs of worker 0, as a local run returns them

Only ``mode="feature_extraction"`` runs on Ray for now: fine-tuning would put the
SavedModel's own functions under the strategy.

``metrics.json`` records ``"engine": "ray"`` and ``"workers": N`` (``"local"`` and 1 for
a local run). Ray is imported only when ``engine="ray"`` is asked for.

Example:
    >>> fit_classifier("models/encoder", "data/train-*.tfrecord", out_dir="run",  # doctest: +SKIP
    ...                engine="ray", num_workers=2)
"""

from __future__ import annotations

import contextvars
import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hublayer import config
from hublayer._ray import require_ray, start_ray

__all__ = ["distribution", "fit_on_ray", "run_engine"]

_ENGINE: contextvars.ContextVar[tuple[str, int]] = contextvars.ContextVar(
    "hublayer_train_engine", default=("local", 1)
)
_STRATEGY: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "hublayer_train_strategy", default=None
)


@contextmanager
def distribution() -> Iterator[None]:
    """The strategy's scope on a Ray Train worker (the model's variables are made in
    it); nothing in a local run."""
    strategy = _STRATEGY.get()
    if strategy is None:
        yield
        return
    with strategy.scope():
        yield


def run_engine() -> dict[str, Any]:
    """``{"engine": ..., "workers": ...}`` of the run in progress, for ``metrics.json``."""
    engine, workers = _ENGINE.get()
    return {"engine": engine, "workers": workers}


@contextmanager
def _on_ray(workers: int) -> Iterator[None]:
    token = _ENGINE.set(("ray", workers))
    try:
        yield
    finally:
        _ENGINE.reset(token)


def _keras_multi_worker_fixes(tf: Any) -> None:
    """Two fixes Keras 3 (3.15) needs to train under a multi-worker strategy.

    Measured on 2 Ray Train workers: ``fit`` builds the model from a batch reduced with
    ``strategy.reduce("MEAN", (x, y))``, which MultiWorkerMirroredStrategy refuses
    ("Attempt to convert a value (PerReplica...) to a Tensor"); and it averages the
    scalar logs with ``axis=0`` ("Invalid reduction dimension 0 for input with 0
    dimensions"). The first builds from this worker's part of the batch instead; the
    second averages the scalars with ``axis=None``. Both only run inside a Ray Train
    worker process.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def local_part(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return tf.distribute.get_strategy().experimental_local_results(value)[0]
        return value

    def symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local_part, next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    trainer.reduce_per_replica = reduce_per_replica


def _worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the local recipe, its ``fit`` calls under the strategy.

    Embeddings, scoring and export run as in a local run (the same on every worker,
    whose weights are kept equal); only training is distributed: each ``fit`` runs
    under MultiWorkerMirroredStrategy, which shards the batches among the workers and
    sums their gradients.
    """
    import keras
    import tensorflow as tf
    from ray import train as ray_train

    from hublayer.train._fit import fit_classifier

    context = ray_train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _keras_multi_worker_fixes(tf)
    fit = keras.Model.fit

    def distributed_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The optimizer was made before the strategy scope: its slots must be made
        # under it (Keras reads the strategy it keeps from its construction).
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "_distribution_strategy"):
            optimizer._distribution_strategy = strategy
        with strategy.scope():
            return fit(self, *args, **kwargs)

    keras.Model.fit = distributed_fit  # this worker process only
    arguments = dict(loop_config["arguments"])
    scratch = tempfile.mkdtemp(prefix=f"hublayer-worker-{rank}-")
    try:
        if rank != 0:
            arguments["out_dir"] = scratch
        arguments["progress"] = False
        token = _STRATEGY.set(strategy)
        try:
            with _on_ray(size):
                result = fit_classifier(**arguments)
        finally:
            _STRATEGY.reset(token)
        ray_train.report({"rank": rank, "accuracy": _accuracy(result.metrics)})
    finally:
        keras.Model.fit = fit
        shutil.rmtree(scratch, ignore_errors=True)


def _accuracy(metrics: dict[str, Any]) -> float:
    splits = metrics.get("splits", {})
    split = splits.get("validation") or splits.get("train") or {}
    return float(split.get("accuracy", float("nan")))


def _history(path: Path) -> dict[str, list[Any]]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    columns: dict[str, list[Any]] = {name: [] for name in (rows[0] if rows else {})}
    for row in rows:
        for name, value in row.items():
            try:
                columns[name].append(float(value) if "." in value or "e" in value else int(value))
            except ValueError:
                columns[name].append(value)
    return columns


def fit_on_ray(arguments: dict[str, Any], *, num_workers: int | None, address: str | None) -> Any:
    """Run ``fit_classifier(**arguments)`` on ``num_workers`` Ray Train workers.

    Returns:
        A ``TrainResult`` read back from the outputs worker 0 wrote.

    Raises:
        MissingExtraError: Ray or Ray Train is not installed.
        ValueError: a bad ``num_workers``.
        TrainingError: ``mode="fine_tune"`` (not supported on Ray yet), or the run
            failed on a worker (its error is the cause).
    """
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise ValueError(
            f"Expected num_workers to be a positive int or None. Received: {num_workers!r}."
        )
    from hublayer.errors import TrainingError

    worker: Any = _worker
    fine_tuning = arguments.get("mode") == "fine_tune"
    if fine_tuning:  # every step under strategy.run, see _ray_finetune
        from hublayer.train._ray_finetune import default_workers, fine_tune_worker

        worker = fine_tune_worker
    ray = start_ray(address)
    require_ray("engine='ray'", "ray.train")
    tensorflow_train = require_ray("engine='ray'", "ray.train.tensorflow")
    import keras

    from hublayer.handles import resolve
    from hublayer.train._fit import TrainResult

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    if fine_tuning:  # each worker holds the model: not one per CPU
        workers = num_workers or default_workers(ray.cluster_resources())
    else:
        workers = num_workers or max(int(cpus), 1)
    arguments = dict(arguments)
    model = arguments["model"]
    if isinstance(model, str | os.PathLike):  # every worker loads the same local folder
        arguments["model"] = str(resolve(os.fspath(model)))
    cache = arguments.get("embedding_cache", True)
    if cache is True:  # a folder every worker reaches, not each one's default
        arguments["embedding_cache"] = str(config.cache_dir() / "embeddings")
    scratch = None
    if arguments.get("out_dir") is None:
        scratch = tempfile.mkdtemp(prefix="hublayer-ray-run-")
        arguments["out_dir"] = scratch
    out_dir = Path(arguments["out_dir"]).resolve()
    arguments["out_dir"] = str(out_dir)
    storage = tempfile.mkdtemp(prefix="hublayer-ray-train-")  # Ray Train's own files
    trainer = tensorflow_train.TensorflowTrainer(
        worker,
        train_loop_config={"arguments": arguments},
        scaling_config=_scaling(workers, cpus),
        run_config=_run_config(Path(storage)),
    )
    try:
        trainer.fit()
    except Exception as error:  # Ray wraps the worker's error
        raise TrainingError(
            f"Expected the training run on {workers} Ray worker(s) to finish. Received: "
            f"{type(error).__name__}: {_last_line(error)}. "
            "See the worker log above; the same run with engine='local' shows the error "
            "directly.",
            stage="ray",
        ) from error
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
        classes = tuple(metrics.get("classes", ()))
        paths = {
            name: out_dir / file
            for name, file in (
                ("model", "model.keras"),
                ("saved_model", "saved_model"),
                ("metrics", "metrics.json"),
                ("history", "history.csv"),
                ("curves", "curves.png"),
                ("confusion", "confusion.png"),
                ("report", "report.md"),
                ("config", "config.json"),
            )
            if (out_dir / file).exists()
        }
        classifier = keras.models.load_model(out_dir / "model.keras")
        history = _history(out_dir / "history.csv")
        return TrainResult(classifier, history, metrics, {} if scratch else paths, classes)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _last_line(error: BaseException) -> str:
    """The worker's own error: Ray puts it on the last line of its message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _scaling(workers: int, cpus: float) -> Any:
    from ray.train import ScalingConfig

    share = min(1.0, cpus / workers)  # a scheduling label; TF uses the cores it finds
    return ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": share})


def _run_config(storage: Path) -> Any:
    from ray.train import RunConfig

    return RunConfig(name="hublayer-train", storage_path=str(storage))
