"""Case 6: feature-extraction training for 10 epochs, with and without the embedding cache.

Both contenders call :func:`hublayer.train.fit_classifier` with the same backbone, files,
head, seed and epochs; only ``embedding_cache`` differs. Without it, the frozen backbone
runs on every batch of every epoch (what the TF Hub tutorials do with
``hub.KerasLayer(trainable=False)``); with it, each image goes through the backbone once
and the head trains on cached embeddings. The cache folder is emptied before every run
(untimed), so every run computes its embeddings. Early stopping is off (``patience`` =
``epochs``), so both train every epoch. In the full suite a third contender is the
tutorials' code itself: ``tf_keras`` + ``hub.KerasLayer`` + ``model.fit`` on a tf.data
pipeline that caches decoded images, in its own process.
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
RECOMPUTE = "fit_classifier, backbone every epoch"
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
        InProcess(RECOMPUTE, lambda: _fit(model, fit_files, val_files, epochs, False), role="peer"),
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
