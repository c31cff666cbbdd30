"""The training phases: the head on a frozen backbone, then fine-tuning.

Phase ``head`` trains only the classification head. With the embedding cache it trains a
small model on the stored features; without it, the whole model runs with the backbone
frozen. Phase ``fine_tune`` unfreezes the backbone (all of it, or its last N blocks),
compiles a new optimizer at a lower learning rate and trains the whole model; BatchNorm
stays in inference mode unless asked (see :class:`~hublayer.layers.BackboneCall`).

What the three reference documents got wrong, and what this does instead:

- ``model.fit(..., learning_rate=...)`` does not exist: each phase compiles its own
  optimizer with its own learning rate.
- ``for layer in model.layers[-3:]: layer.trainable = True`` never reaches a hub layer
  that was frozen; :func:`~hublayer.train._backbone.unfreeze` sets the backbone's own
  variables, and the model is compiled again afterwards.

Each phase keeps early stopping, best weights and checkpoints (see ``_callbacks``). Epoch
numbers run on across phases, so ``history.csv`` reads as one run.

Example:
    >>> run_phase(plan, store, monitor="val_accuracy", patience=3)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer.train._backbone import unfreeze
from hublayer.train._callbacks import Checkpoints, PhaseGuard, PhaseState, Progress
from hublayer.train._data import Classes, Source
from hublayer.train._embeddings import Embeddings
from hublayer.train._model import Parts
from hublayer.train._progress import Mode

__all__ = [
    "Phase",
    "Run",
    "compile_classifier",
    "feature_batches",
    "fine_tune",
    "raw_batches",
    "run_phase",
    "steps_for",
    "train_head",
]


@dataclass(frozen=True)
class Phase:
    """One phase of training.

    Attributes:
        name: ``"head"`` or ``"fine_tune"``.
        model: the Keras model this phase trains.
        train: builds the training batches, given the first epoch this run trains.
        validation: validation batches, or None.
        start: the phase's first epoch (global, 0-based).
        end: one past its last epoch.
        learning_rate: the optimizer's learning rate for this phase.
        steps_per_epoch: batches per epoch when ``train`` yields every epoch in one
            stream (the cached features); None when Keras iterates it once per epoch.
        batches: batches per epoch when known otherwise (for the progress bar).
    """

    name: str
    model: keras.Model
    train: Callable[[int], Any]
    validation: Any
    start: int
    end: int
    learning_rate: float
    steps_per_epoch: int | None = None
    batches: int | None = None


def compile_classifier(model: keras.Model, learning_rate: float) -> None:
    """Compile with a fresh Adam at ``learning_rate``, cross-entropy and accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False,
    )


def run_phase(
    phase: Phase,
    store: Checkpoints,
    *,
    monitor: str,
    patience: int,
    progress: Mode | bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> PhaseState:
    """Train one phase, resuming from its checkpoint, and leave its best weights in place.

    Args:
        phase: what to train.
        store: the run's checkpoints; a finished phase is restored, not trained again.
        monitor: the logged value early stopping watches.
        patience: epochs without improvement before the phase stops.
        progress: ``"bars"``, ``"lines"`` or ``"off"`` (see ``_progress``); a bool
            means bars or nothing.
        callbacks: more Keras callbacks, called after the checkpoint is written.

    Returns:
        The phase's final state (epochs trained, best value and epoch).
    """
    state = store.phase(phase.name)
    compile_classifier(phase.model, phase.learning_rate)
    if not state.done:
        store.load_last(phase.model, phase.name)
        initial = max(state.next_epoch, phase.start)
        if initial < phase.end and not state.stopped_early:
            bar = Progress(
                phase.name,
                epochs=phase.end - phase.start,
                initial_epoch=initial - phase.start,
                steps=phase.steps_per_epoch or phase.batches,
                mode=progress,
                first=phase.start,
            )
            guard = PhaseGuard(store, phase.name, monitor=monitor, patience=patience)
            try:
                phase.model.fit(
                    phase.train(initial),
                    validation_data=phase.validation,
                    epochs=phase.end,
                    initial_epoch=initial,
                    steps_per_epoch=phase.steps_per_epoch,
                    shuffle=False,  # the batches are already shuffled, per epoch
                    callbacks=[guard, bar, *callbacks],
                    verbose=0,
                )
            finally:
                bar.close()
        state.done = True
        store.commit()
    store.restore_best(phase.model, phase.name)
    return state


def feature_batches(
    features: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, start: int, end: int
) -> Any:
    """Shuffled batches of cached features for epochs ``start..end-1``, in one stream.

    Epoch ``e`` is ordered by a stateless shuffle seeded with ``(seed, e)``, so a run
    resumed at epoch ``e`` sees exactly the batches an uninterrupted run would have.
    Use with ``steps_per_epoch=ceil(len(features) / batch_size)``.
    """
    count = int(features.shape[0])
    x = tf.constant(features)
    y = tf.constant(labels)

    def one_epoch(epoch: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(start, max(end, start + 1)).flat_map(one_epoch)
    return batches.map(
        lambda index: (tf.gather(x, index), tf.gather(y, index)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def steps_for(count: int, batch_size: int) -> int:
    """Batches per epoch for ``count`` examples."""
    return max(1, math.ceil(count / batch_size))


@dataclass(frozen=True)
class Run:
    """Everything the phases share.

    Attributes:
        parts: the head and the models around it.
        sources: the splits' data, by name (``"train"``, ``"validation"``).
        embedded: the splits' cached features, by name; empty when caching is off.
        labels: the splits' class indices, by name.
        classes: the class names and label mapping.
        store: the checkpoints.
        batch_size, seed, monitor, patience, progress, callbacks: as given to
            ``fit_classifier``.
    """

    parts: Parts
    sources: dict[str, Source]
    embedded: dict[str, Embeddings]
    labels: dict[str, np.ndarray]
    classes: Classes
    store: Checkpoints
    batch_size: int
    seed: int
    monitor: str
    patience: int
    progress: Mode | bool = False
    callbacks: Sequence[keras.callbacks.Callback] = ()

    def run(self, phase: Phase) -> PhaseState:
        """:func:`run_phase` with this run's settings."""
        return run_phase(
            phase,
            self.store,
            monitor=self.monitor,
            patience=self.patience,
            progress=self.progress,
            callbacks=self.callbacks,
        )


def raw_batches(run: Run, split: str, *, shuffle: bool, batch_size: int | None = None) -> Any:
    """Batches of ``(inputs, class index)`` read from the records of ``split``.

    The number of batches is known from the labels read earlier; telling tf.data spares
    Keras' "ran out of data" warning on the first epoch and sizes the progress bar.
    """
    size = batch_size or run.batch_size
    encode = run.classes.tensor_encoder()
    dataset = run.sources[split].dataset(batch_size=size, shuffle=shuffle, seed=run.seed)
    dataset = dataset.map(lambda x, y: (x, encode(y)))
    count = steps_for(int(run.labels[split].shape[0]), size)
    return dataset.apply(tf.data.experimental.assert_cardinality(count))


def train_head(run: Run, *, epochs: int, learning_rate: float) -> PhaseState:
    """Phase 1: train the head with the backbone frozen, on cached features if any."""
    if run.embedded:
        features = run.embedded["train"].features
        val = run.embedded.get("validation")
        validation = None
        if val is not None:
            validation = tf.data.Dataset.from_tensor_slices(
                (val.features, run.labels["validation"])
            ).batch(max(run.batch_size, 256))
        phase = Phase(
            "head",
            run.parts.head_model,
            train=lambda start: feature_batches(
                features,
                run.labels["train"],
                batch_size=run.batch_size,
                seed=run.seed,
                start=start,
                end=epochs,
            ),
            validation=validation,
            start=0,
            end=epochs,
            learning_rate=learning_rate,
            steps_per_epoch=steps_for(features.shape[0], run.batch_size),
        )
        return run.run(phase)
    backbone = run.parts.backbone
    backbone.trainable = False
    phase = Phase(
        "head",
        run.parts.classifier,
        train=lambda start: raw_batches(run, "train", shuffle=True),
        validation=raw_batches(run, "validation", shuffle=False)
        if "validation" in run.sources
        else None,
        start=0,
        end=epochs,
        learning_rate=learning_rate,
        batches=steps_for(int(run.labels["train"].shape[0]), run.batch_size),
    )
    return run.run(phase)


def fine_tune(
    run: Run,
    head: PhaseState,
    *,
    start: int,
    epochs: int,
    learning_rate: float,
    blocks: int | None,
) -> tuple[PhaseState, int]:
    """Phase 2: unfreeze the backbone (or its last ``blocks`` blocks) and train it all.

    The phase starts from the head phase's best weights and value, so if no fine-tuning
    epoch beats them, the head phase's model is what remains.

    Returns:
        The phase's state and how many backbone variables trained.
    """
    backbone = run.parts.backbone
    count = unfreeze(backbone, blocks)
    state = run.store.phase("fine_tune")
    if state.best is None and not state.done:
        state.best, state.best_loss, state.best_epoch = head.best, head.best_loss, head.best_epoch
        state.best_file = run.store.save_best(run.parts.classifier, "fine_tune", start - 1)
        state.next_epoch = start
        run.store.commit()
    phase = Phase(
        "fine_tune",
        run.parts.classifier,
        train=lambda first: raw_batches(run, "train", shuffle=True),
        validation=raw_batches(run, "validation", shuffle=False)
        if "validation" in run.sources
        else None,
        start=start,
        end=start + epochs,
        learning_rate=learning_rate,
        batches=steps_for(int(run.labels["train"].shape[0]), run.batch_size),
    )
    return run.run(phase), count
