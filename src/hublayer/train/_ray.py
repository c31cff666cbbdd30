"""``fit_classifier(engine="ray", mode="fine_tune")``: the recipe on Ray Train workers.

::

    driver: resolve the model and the embedding cache folder (paths every worker reaches)
      └─ TensorflowTrainer(num_workers=N)        Ray Train sets TF_CONFIG per worker
           worker k: _ray_finetune.fine_tune_worker: the local recipe, each training
                     step under strategy.run on a twin of the model loaded in
                     MultiWorkerMirroredStrategy's scope, each global batch split
                     among the workers; worker 0 writes out_dir, the others a scratch
                     folder
    driver: the outputs of worker 0, as a local run returns them

Feature extraction on Ray does not come here: its backbone pass runs on Ray Data actors
and the rest on the driver (``_ray_features``).

``metrics.json`` records ``"engine": "ray"`` and ``"workers": N`` (``"local"`` and 1 for
a local run). Ray is imported only when ``engine="ray"`` is asked for.

Example:
    >>> fit_classifier("models/encoder", "data/train-*.tfrecord", out_dir="run",  # doctest: +SKIP
    ...                mode="fine_tune", engine="ray", num_workers=2)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hublayer import config
from hublayer._ray import require_ray, start_ray

__all__ = ["fit_on_ray"]


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
        TrainingError: the run failed on a worker (its error is the cause).
    """
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise ValueError(
            f"Expected num_workers to be a positive int or None. Received: {num_workers!r}."
        )
    from hublayer.errors import TrainingError
    from hublayer.train._ray_finetune import default_workers, fine_tune_worker

    worker: Any = fine_tune_worker  # every step under strategy.run, see _ray_finetune
    ray = start_ray(address)
    require_ray("engine='ray'", "ray.train")
    tensorflow_train = require_ray("engine='ray'", "ray.train.tensorflow")
    import keras

    from hublayer.handles import resolve
    from hublayer.train._result import TrainResult

    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    workers = num_workers or default_workers(ray.cluster_resources())  # not one per CPU
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
