"""Case 6: feature-extraction training for 10 epochs, with and without the embedding cache.

Ours is :func:`hublayer.train.fit_classifier` with its embedding cache: each image goes
through the frozen backbone once and the head trains on cached embeddings. The cache
folder is emptied before every run (untimed), so every run computes its embeddings.
Early stopping is off (``patience`` = ``epochs``), so it trains every epoch.

The peer is the best way to recompute: the frozen backbone runs on every batch of every
epoch (what the TF Hub tutorials do with ``hub.KerasLayer(trainable=False)``), but the
decoded, resized images are kept in memory after the first epoch (``cache()``), as the
tutorials' pipeline does, so no epoch after the first decodes a JPEG. It is written with
Keras 3, ``hublayer.KerasLayer`` and ``records.dataset``, the same head (Dropout 0.2,
Dense softmax), Adam 1e-3, batch 32 and seed. In the full suite the tutorials' code itself
(``tf_keras`` + ``hub.KerasLayer`` + ``model.fit``) runs too, in its own process.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._data import factory_model, jpeg_records
from benchmarks._harness import CaseSpec, Contender, InProcess, Plan, Ratio, require
from benchmarks._subprocess import LEGACY_ENV, Worker
from benchmarks._suites import Suite

__all__ = ["CASES"]

CACHED = "fit_classifier, embedding cache"
RECOMPUTE = "KerasLayer + fit, decoded images cached"
TUTORIAL = "tf_keras + hub.KerasLayer, model.fit"
SHARDS, VAL_SHARDS, SEED = 10, 2, 0


def _fit(
    model: str,
    train: Sequence[str],
    validation: Sequence[str],
    epochs: int,
    cache: str | bool,
) -> Callable[[], Any]:
    train_api = require("hublayer.train", "fit_classifier")
    require("hublayer.records", "dataset")  # fit_classifier reads through it

    def run() -> dict[str, Any]:
        result = train_api.fit_classifier(
            model,
            list(train),
            validation=list(validation),
            epochs=epochs,
            patience=epochs,
            seed=SEED,
            embedding_cache=cache,
            progress=False,
        )
        splits = result.metrics.get("splits", {})
        return {
            "val_accuracy": float(splits.get("validation", {}).get("accuracy", float("nan"))),
            "epochs_run": len(result.history.get("epoch", [])),
        }

    return run


def _fit_recompute(
    model: str,
    train: Sequence[str],
    validation: Sequence[str],
    epochs: int,
    size: int,
    classes: int = 10,
) -> Callable[[], Any]:
    """Backbone every epoch, on decoded images cached in memory after the first epoch."""
    records = require("hublayer.records", "dataset")
    layers = require("hublayer.layers", "KerasLayer")
    import keras
    import tensorflow as tf

    image = {"feature": "image", "size": size, "channels": 3}

    def pipeline(files: Sequence[str], shuffle: bool) -> Any:
        ds = records.dataset(
            list(files), batch_size=32, label="label", image=image, shuffle=False
        ).unbatch()
        ds = ds.map(lambda features, label: (features["image"], label)).cache()
        if shuffle:
            ds = ds.shuffle(1024, seed=SEED)
        return ds.batch(32).prefetch(tf.data.AUTOTUNE)

    def run() -> dict[str, Any]:
        keras.utils.set_random_seed(SEED)
        net = keras.Sequential(
            [
                keras.Input(shape=(size, size, 3)),
                layers.KerasLayer(model, trainable=False),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(classes, activation="softmax"),
            ]
        )
        net.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        history = net.fit(pipeline(train, shuffle=True), epochs=epochs, verbose=0)
        _, accuracy = net.evaluate(pipeline(validation, shuffle=False), verbose=0)
        return {"val_accuracy": float(accuracy), "epochs_run": len(history.history["loss"])}

    return run


def _emptied(folder: str) -> Callable[[], None]:
    return lambda: shutil.rmtree(folder, ignore_errors=True)


def train(suite: Suite) -> Plan:
    model = str(factory_model(image_size=suite.train_size))
    data = jpeg_records(suite.train_images, shards=SHARDS, seed=5)
    fit_files, val_files = data.files[:-VAL_SHARDS], data.files[-VAL_SHARDS:]
    root = tempfile.mkdtemp(prefix="hublayer-bench-embeddings-")
    cache = f"{root}/embeddings"
    epochs = suite.epochs
    n_train = data.count * (SHARDS - VAL_SHARDS) // SHARDS
    contenders: list[Contender] = [
        InProcess(
            CACHED,
            lambda: _fit(model, fit_files, val_files, epochs, cache),
            before=_emptied(cache),
        ),
        InProcess(
            RECOMPUTE,
            lambda: _fit_recompute(model, fit_files, val_files, epochs, suite.train_size),
            role="peer",
        ),
    ]
    ratios = [Ratio(CACHED, RECOMPUTE, "speed", ">= 5")]
    if suite.full:
        tutorial: dict[str, Any] = {"model": model, "size": suite.train_size, "seed": SEED}
        tutorial.update(train=list(fit_files), validation=list(val_files), epochs=epochs)
        contenders.append(
            Worker(
                TUTORIAL, "benchmarks.peers._legacy:fit_hub", tutorial, env=LEGACY_ENV, role="peer"
            )
        )
        ratios.append(Ratio(CACHED, TUTORIAL, "speed"))
    return Plan(
        contenders,
        ratios,
        # A run is a whole training, compiling included, so no warm-up; a full-suite run
        # lasts minutes, so one round is enough once 10 minutes are spent.
        warmup=0,
        reps=3,
        min_reps=suite.pick(2, 1),
        budget_s=suite.pick(60.0, 600.0),
        notes=[
            f"{epochs} epochs, batch 32, Adam 1e-3, dropout 0.2 + softmax head, seed {SEED}; "
            f"{n_train:,} training and {data.count - n_train:,} validation JPEGs (256 px, 10 "
            f"colour-coded classes) resized to {suite.train_size} px for the MobileNetV2-sized "
            "factory model. Every run trains from scratch and reports its validation accuracy.",
            f"{RECOMPUTE}: the best way to recompute the backbone each epoch that we know of: "
            "hublayer.KerasLayer(trainable=False) + Dropout + Dense in Keras 3, fit on "
            "records.dataset batches whose decoded images are cached in memory after the first "
            "epoch (unbatch, cache, shuffle 1024, batch 32), as the tutorials' pipeline does.",
            "Quick suite: fewer and smaller images than the full suite (2,000 at 224 px), no "
            "warm-up run (each run is a whole training, compiling included), rounds stop "
            "once 60 s are spent (after at least two), and the tf_keras tutorial peer runs "
            "only in the full suite."
            if not suite.full
            else "Full suite: no warm-up, and rounds stop once 10 minutes are spent (after at "
            "least one), since each run trains for minutes. The tf_keras tutorial code "
            "(hub.KerasLayer(trainable=False), Dropout, Dense softmax, model.fit on a cached "
            "tf.data pipeline) is a third "
            "contender.",
        ],
        cleanup=[lambda: shutil.rmtree(root, ignore_errors=True)],
    )


CASES = (
    CaseSpec("train", "Feature-extraction training, 10 epochs", train, (600.0, 3600.0), issue="#6"),
)
