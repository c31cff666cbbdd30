"""``fit_classifier(mode="fine_tune", engine="ray")``: fine-tuning on Ray Train workers.

::

    driver: fit_on_ray (``_ray``) starts TensorflowTrainer(num_workers=N) with this worker
    worker k (rank k of N), MultiWorkerMirroredStrategy over all of them:
      1. resume: rank 0 reads <out_dir>/checkpoints/state.json and broadcasts it (an
         all-reduce); every rank resumes from that phase and epoch
      2. the local recipe (``fit_classifier(engine="local")``), every ``Model.fit`` of
         it replaced by :class:`DistributedFit`:
           - a twin of the model is built in the strategy's scope: its SavedModel is
             loaded again there, and the model is built symbolically (Keras Inputs)
           - each global batch of B examples is read on every worker in the same
             order; rank k keeps rows [k*B/N, (k+1)*B/N): the model's forward and
             backward pass (the heavy part) is split
           - every call of the twin runs in replica context, inside ``strategy.run``;
             gradients are all-reduced (summed) and every rank applies the same update
           - after each epoch the weights and optimizer state go back into the plain
             model, which the callbacks (checkpoints, early stopping) then see
      3. rank 0 adds the examples each worker computed to metrics.json

Why not ``Model.fit`` under the strategy: a restored function raises "Trying to access a
placeholder" in cross-replica context (an eager call, a build on real data, a callback
that calls the model; tensorflow/tensorflow#56852), and Keras 3's support for
MultiWorkerMirroredStrategy has open bugs (keras-team/keras#20585, #20329). TF Model
Garden fine-tunes hub models with a step of its own under ``strategy.run`` too.

The loss of a batch of ``m`` rows is ``sum(cross-entropy of my rows) / m`` plus the
regularization divided by N: summed over the workers, that is exactly the loss and
gradient of one worker on the whole batch, whatever the split (a last, smaller batch
included). So N workers reach the weights one worker reaches with the same global batch.

Example:
    >>> fit_classifier("models/encoder", "train-*.tfrecord", mode="fine_tune",  # doctest: +SKIP
    ...                out_dir="run", engine="ray", num_workers=2)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DistributedFit", "default_workers", "fine_tune_worker", "share_checkpoint"]

_STATE = "state.json"
#: What one fine-tuning worker needs at least: TensorFlow's op threads on 2 cores, and
#: memory for the model twice (the plain copy and the one in the strategy's scope), its
#: gradients and Adam's two slots, plus a batch of activations.
CPUS_PER_WORKER = 2
MEMORY_PER_WORKER = 4 * 2**30


def default_workers(resources: dict[str, float]) -> int:
    """The default ``num_workers`` for fine-tuning on a cluster with ``resources``
    (``ray.cluster_resources()``): one worker per 2 CPUs, no more than the cluster has
    4 GiB units of memory, at least 1. Not one per CPU: each worker holds the model."""
    from hublayer._ray import model_workers

    return model_workers(
        resources.get("CPU", 1.0),
        resources.get("memory"),
        cpus_each=CPUS_PER_WORKER,
        memory_each=MEMORY_PER_WORKER,
    )


def all_reduce_sum(strategy: Any, value: np.ndarray) -> np.ndarray:
    """``value`` summed over every worker (each worker passes its own)."""
    import tensorflow as tf

    own = strategy.experimental_distribute_values_from_function(lambda _: tf.constant(value))
    return np.asarray(strategy.reduce("SUM", own, axis=None))


def broadcast_bytes(strategy: Any, payload: bytes, *, rank: int) -> bytes:
    """Rank 0's ``payload`` on every rank (the others pass anything)."""
    own = payload if rank == 0 else b""
    size = int(all_reduce_sum(strategy, np.asarray([len(own)], np.int64))[0])
    if size == 0:
        return b""
    buffer = np.zeros([size], np.int32)
    if rank == 0:
        buffer[:] = np.frombuffer(own, np.uint8)
    return all_reduce_sum(strategy, buffer).astype(np.uint8).tobytes()


def share_checkpoint(strategy: Any, *, rank: int, source: Path, target: Path) -> dict[str, Any]:
    """Make every rank resume from the checkpoint rank 0 reads.

    Rank 0 reads ``source/state.json`` (the commit point of ``_callbacks.Checkpoints``)
    and broadcasts it; the other ranks write it into their own checkpoint folder
    ``target`` with the weight files it names, copied from ``source`` (the out_dir every
    worker reaches). The files a state names are never rewritten, and rank 0 deletes
    them only at its next commit, after an epoch that needs every rank: they are there
    while the others copy them.

    Returns:
        The state every rank now resumes from (empty when there is none).
    """
    payload = b""
    if rank == 0:
        try:
            payload = (source / _STATE).read_bytes()
            json.loads(payload)
        except (OSError, ValueError):
            payload = b""
    shared = broadcast_bytes(strategy, payload, rank=rank)
    if not shared:
        return {}
    state: dict[str, Any] = json.loads(shared)
    if rank != 0:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for phase in state.get("phases", {}).values():
            for name in (phase.get("best_file"), phase.get("last_file")):
                if name:
                    shutil.copyfile(source / name, target / name)
        (target / _STATE).write_bytes(shared)
    return state


class DistributedFit:
    """``Model.fit`` for the recipe's phases, each step under ``strategy.run``.

    Takes the arguments ``_phases.run_phase`` passes (``x``, ``validation_data``,
    ``epochs``, ``initial_epoch``, ``steps_per_epoch``, ``callbacks``), trains a twin of
    the model made in the strategy's scope, and copies its weights and optimizer state
    back into the model after every epoch, before the callbacks run.

    Attributes:
        examples: per phase, the training examples this worker computed.
    """

    def __init__(self, strategy: Any, *, rank: int, size: int) -> None:
        self.strategy = strategy
        self.rank = rank
        self.size = size
        self.examples: dict[str, int] = {}

    def __call__(
        self,
        model: Any,
        x: Any = None,
        *,
        validation_data: Any = None,
        epochs: int = 1,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        callbacks: Sequence[Any] = (),
        **_: Any,
    ) -> None:
        twin, optimizer = self._twin(model)
        train_step, test_step = self._steps(twin, optimizer)
        phase = next((c.phase for c in callbacks if isinstance(getattr(c, "phase", None), str)), "")
        for callback in callbacks:
            callback.set_model(model)
        model.stop_training = False
        for callback in callbacks:
            callback.on_train_begin()
        stream = iter(x) if steps_per_epoch is not None else None
        computed = 0
        for epoch in range(initial_epoch, epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            batches = stream if stream is not None else iter(x)
            totals = np.zeros([4])  # cross-entropy sum, correct, examples, loss sum
            for step in range(steps_per_epoch or np.iinfo(np.int64).max):
                batch = next(batches, None)
                if batch is None:
                    break
                features, labels = batch
                result = train_step(features, labels)
                values = np.asarray(self.strategy.experimental_local_results(result)[0])
                totals += values[:4]
                computed += int(values[4])
                for callback in callbacks:
                    callback.on_train_batch_end(step)
                if stream is None and _cardinality(x) == step + 1:
                    # As Keras' epoch iterator does (keras/src/trainers/epoch_iterator.py):
                    # it opens an iterator when an epoch ends, then another when the next
                    # begins. Each opening reshuffles: this keeps a local run's data order.
                    iter(x)
            logs = _logs(totals)
            if validation_data is not None:
                held = np.zeros([4])
                for features, labels in validation_data:
                    result = test_step(features, labels)
                    held += np.asarray(self.strategy.experimental_local_results(result)[0])[:4]
                logs.update({f"val_{k}": v for k, v in _logs(held).items()})
            _copy_back(twin, optimizer, model)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        self.examples[phase] = self.examples.get(phase, 0) + computed

    def _twin(self, model: Any) -> tuple[Any, Any]:
        """The model again, made in the strategy's scope, with the same weights,
        trainable variables and optimizer state."""
        import keras

        from hublayer.train._backbone import load_cloned_models

        source = model.optimizer
        with self.strategy.scope():  # SavedModels load again in it; no call runs yet
            twin = keras.models.clone_model(model)
            load_cloned_models(twin)
            twin.set_weights(model.get_weights())
            optimizer = type(source).from_config(source.get_config())
            optimizer.build(twin.trainable_variables)
        mine = [v.path for v in model.trainable_variables]
        theirs = [v.path for v in twin.trainable_variables]
        if len(mine) != len(theirs):
            raise RuntimeError(
                "Expected the model's copy in the strategy scope to train the same "
                f"variables. Received: {len(mine)} trainable variables, and {len(theirs)} "
                "in the copy."
            )
        if source.built:
            for own, copy in zip(source.variables, optimizer.variables, strict=True):
                copy.assign(own.numpy())
        return twin, optimizer

    def _steps(self, twin: Any, optimizer: Any) -> tuple[Any, Any]:
        import keras
        import tensorflow as tf

        strategy, rank, size = self.strategy, self.rank, self.size

        def rows(features: Any, labels: Any) -> tuple[Any, Any, Any]:
            count = tf.shape(labels)[0]
            low, high = rank * count // size, (rank + 1) * count // size
            mine = tf.nest.map_structure(lambda t: t[low:high], features)
            return mine, labels[low:high], tf.cast(count, tf.float32)

        def regularization() -> Any:
            losses = list(twin.losses)
            return tf.add_n([tf.cast(v, tf.float32) for v in losses]) if losses else 0.0

        def sums(probabilities: Any, labels: Any) -> Any:
            labels = tf.cast(labels, tf.int64)
            entropy = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            hits = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1), labels), tf.float32)
            part = tf.cast(tf.shape(labels)[0], tf.float32)
            return entropy, hits, part

        def train(features: Any, labels: Any) -> Any:
            mine, own, count = rows(features, labels)

            def replica(x: Any, y: Any) -> Any:
                with tf.GradientTape() as tape:
                    probabilities = twin(x, training=True)
                    reg = regularization()
                    entropy, hits, part = sums(probabilities, y)
                    loss = tf.reduce_sum(entropy) / count + reg / size
                grads = tape.gradient(loss, twin.trainable_variables)
                optimizer.apply(grads, twin.trainable_variables)
                # reg is the same on every rank: share it out so the sum counts it once
                local = tf.stack(
                    [
                        tf.reduce_sum(entropy),
                        tf.reduce_sum(hits),
                        part,
                        tf.reduce_sum(entropy) + reg * count / size,
                    ]
                )
                total = tf.distribute.get_replica_context().all_reduce("SUM", local)
                return tf.concat([total, [part]], axis=0)

            return strategy.run(replica, args=(mine, own))

        def test(features: Any, labels: Any) -> Any:
            mine, own, count = rows(features, labels)

            def replica(x: Any, y: Any) -> Any:
                probabilities = twin(x, training=False)
                reg = regularization()
                entropy, hits, part = sums(probabilities, y)
                local = tf.stack(
                    [
                        tf.reduce_sum(entropy),
                        tf.reduce_sum(hits),
                        part,
                        tf.reduce_sum(entropy) + reg * count / size,
                    ]
                )
                total = tf.distribute.get_replica_context().all_reduce("SUM", local)
                return tf.concat([total, [part]], axis=0)

            return strategy.run(replica, args=(mine, own))

        return tf.function(train), tf.function(test)


def _cardinality(dataset: Any) -> int | None:
    count = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else -1
    return count if count >= 0 else None


def _logs(totals: np.ndarray) -> dict[str, float]:
    count = max(float(totals[2]), 1.0)
    return {"loss": float(totals[3]) / count, "accuracy": float(totals[1]) / count}


def _copy_back(twin: Any, optimizer: Any, model: Any) -> None:
    model.set_weights(twin.get_weights())
    target = model.optimizer
    if not target.built:
        target.build(model.trainable_variables)
    for own, copy in zip(target.variables, optimizer.variables, strict=True):
        own.assign(np.asarray(copy.numpy()))


@contextmanager
def _fit_replaced(fit: DistributedFit) -> Iterator[None]:
    import keras

    original = keras.Model.fit

    def distributed(self: Any, *args: Any, **kwargs: Any) -> Any:
        return fit(self, *args, **kwargs)

    keras.Model.fit = distributed  # this worker process only
    try:
        yield
    finally:
        keras.Model.fit = original


def examples_per_worker(
    strategy: Any, fit: DistributedFit, *, rank: int, size: int
) -> dict[str, list[int]]:
    """Per phase, the training examples each rank computed (known to every rank)."""
    phases = ("head", "fine_tune")
    own = np.zeros([len(phases), size], np.int64)
    for row, phase in enumerate(phases):
        own[row, rank] = fit.examples.get(phase, 0)
    every = all_reduce_sum(strategy, own)
    return {phase: [int(v) for v in every[row]] for row, phase in enumerate(phases)}


def _add_to_metrics(out_dir: Path, shares: dict[str, list[int]], size: int) -> None:
    path = out_dir / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics["distributed"] = {
        "strategy": "MultiWorkerMirroredStrategy",
        "workers": size,
        "examples_per_worker": shares,
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    os.replace(temp, path)


def fine_tune_worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker of ``mode="fine_tune"`` (see the module docstring)."""
    import tensorflow as tf
    from ray import train as ray_train

    from hublayer.train._fit_local import FitArgs, run_fit
    from hublayer.train._run_engine import on_ray

    context = ray_train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    arguments = dict(loop_config["arguments"])
    out_dir = Path(arguments["out_dir"])
    scratch = Path(tempfile.mkdtemp(prefix=f"hublayer-worker-{rank}-"))
    try:
        if rank != 0:
            arguments["out_dir"] = str(scratch)
        arguments["progress"] = False
        if arguments.get("resume", True):
            share_checkpoint(
                strategy,
                rank=rank,
                source=out_dir / "checkpoints",
                target=scratch / "checkpoints",
            )
        fit = DistributedFit(strategy, rank=rank, size=size)
        with _fit_replaced(fit), on_ray(size):
            result = run_fit(FitArgs(**arguments))
        shares = examples_per_worker(strategy, fit, rank=rank, size=size)
        if rank == 0:
            _add_to_metrics(out_dir, shares, size)
        splits = result.metrics.get("splits", {})
        split = splits.get("validation") or splits.get("train") or {}
        ray_train.report({"rank": rank, "accuracy": float(split.get("accuracy", float("nan")))})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
