"""fit_classifier end to end: factory models, small TFRecord files of PNG images and text.

Everything is real: ``hublayer.KerasLayer`` on factory SavedModels, records written with
``hublayer.records.Writer``, pipelines from ``hublayer.records.dataset``. Images are
colour-coded (class k lights channel k), so a 16-d feature vector separates them.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import hublayer
from hublayer import records, testing
from hublayer.errors import SchemaError, SpecMismatchError, TrainingError
from hublayer.train import evaluate, fit_classifier, predict

SIZE = 16


def _png(image: np.ndarray) -> bytes:
    return bytes(tf.io.encode_png(tf.constant(image)).numpy())


def _images(count: int, seed: int) -> tuple[list[bytes], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    pixels = rng.integers(0, 90, (count, 12, 12, 3))
    for i, label in enumerate(labels):
        pixels[i, :, :, label] += 160
    return [_png(p.astype(np.uint8)) for p in pixels], labels


def write_split(path: Path, count: int, seed: int, *, label_names: bool = False) -> str:
    """Write ``count`` 12x12 PNG records (``image``, ``label``) in two shards."""
    encoded, labels = _images(count, seed)
    names = np.array(["red", "green", "blue"])
    with records.Writer(path, shards=2) as writer:
        for image, label in zip(encoded, labels, strict=True):
            value: Any = names[label].encode() if label_names else np.int64(label)
            writer.write(records.encode_example({"image": image, "label": value}))
    return f"{path}*"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("records")
    return {
        "train": write_split(root / "train", 90, seed=1),
        "validation": write_split(root / "val", 30, seed=2),
        "test": write_split(root / "test", 30, seed=3),
        "named": write_split(root / "named", 60, seed=4, label_names=True),
    }


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(
        tmp_path_factory.mktemp("models") / "ifv", image_size=SIZE, dim=16
    )


class ForwardCounter:
    """Counts the examples that actually run through a layer (symbolic builds excluded)."""

    def __init__(self, layer: keras.Layer) -> None:
        self.examples = 0
        original = layer.call

        def counting(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            outputs = original(inputs, *args, **kwargs)
            if isinstance(inputs, keras.KerasTensor):
                return outputs
            tick = tf.py_function(self._add, [tf.shape(inputs)[0]], Tout=tf.int64)
            with tf.control_dependencies([tick]):
                return tf.identity(outputs)

        layer.call = counting

    def _add(self, count: tf.Tensor) -> np.int64:
        self.examples += int(count)
        return np.int64(self.examples)


def test_feature_extraction_writes_every_output(
    data: dict[str, str], model_path: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = fit_classifier(
        model_path,
        data["train"],
        validation=data["validation"],
        epochs=4,
        batch_size=16,
        learning_rate=0.02,
        out_dir=out,
    )
    splits = result.metrics["splits"]
    assert splits["train"]["examples"] == 90
    assert splits["validation"]["examples"] == 30
    assert splits["validation"]["accuracy"] >= 0.8
    assert result.class_names == ("0", "1", "2")
    assert result.history["phase"] == ["head"] * len(result.history["epoch"])

    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "confusion.png",
        "curves.png",
        "history.csv",
        "metrics.json",
        "model.keras",
        "report.md",
        "saved_model",
    ]  # the checkpoints are gone after a finished run
    assert result.paths["report"] == out / "report.md"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["splits"] == splits
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.shape == (3, 3)
    assert matrix.sum() == 30
    assert set(metrics["timings"]) >= {"embeddings_s", "head_s", "total_s"}
    with (out / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == result.history["epoch"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    for name in ("curves.png", "confusion.png"):
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG"
    report = (out / "report.md").read_text()
    assert "![loss and accuracy per epoch](curves.png)" in report
    assert "| validation | 30 |" in report

    batch = np.random.default_rng(0).random((5, SIZE, SIZE, 3)).astype("float32")
    expected = result.model.predict(batch, verbose=0)
    reloaded = keras.saving.load_model(out / "model.keras")
    np.testing.assert_allclose(reloaded.predict(batch, verbose=0), expected, atol=1e-6)
    serving = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(
        serving(inputs=tf.constant(batch))["probabilities"].numpy(), expected, atol=1e-6
    )

    preds = predict(out, data["test"], output=tmp_path / "preds.csv")
    assert preds.probabilities.shape == (30, 3)
    assert preds.accuracy is not None
    with (tmp_path / "preds.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 30
    assert list(table[0]) == ["index", "prediction", "confidence", "label", "p_0", "p_1", "p_2"]
    scores = evaluate(out, data["test"])
    assert scores["examples"] == 30
    assert scores["accuracy"] == pytest.approx(preds.accuracy)

    unlabelled = tmp_path / "new.tfrecord"
    with records.Writer(unlabelled) as writer:
        for encoded in _images(4, seed=9)[0]:
            writer.write(records.encode_example({"image": encoded}))
    fresh = predict(out, str(unlabelled))
    assert fresh.labels is None
    assert fresh.accuracy is None
    assert len(fresh.predicted) == 4
    assert set(fresh.predicted) <= {"0", "1", "2"}


#: A user's fresh process: ``import hublayer, keras`` and nothing else of hublayer.
RELOAD = """
import json, sys
import hublayer, keras
import numpy as np

model = keras.models.load_model(sys.argv[1])
batch = np.asarray(json.loads(sys.stdin.read()), dtype="float32")
print(json.dumps({
    "probs": np.asarray(model.predict(batch, verbose=0)).tolist(),
    "train_imported": "hublayer.train" in sys.modules,
}))
"""


def test_model_keras_reloads_in_a_fresh_process_after_import_hublayer_alone(
    data: dict[str, str], model_path: str, tmp_path: Path
) -> None:
    """Every class a ``model.keras`` of fit_classifier names (``BackboneCall`` around the
    backbone, ``KerasLayer``, the head) is registered by ``import hublayer``."""
    out = tmp_path / "run"
    result = fit_classifier(
        model_path, data["train"], epochs=1, batch_size=16, head=[8], out_dir=out
    )
    with zipfile.ZipFile(out / "model.keras") as archive:
        config = archive.read("config.json").decode()
    assert '"registered_name": "hublayer>BackboneCall"' in config
    assert '"registered_name": "hublayer>KerasLayer"' in config

    batch = np.random.default_rng(0).random((4, SIZE, SIZE, 3)).astype("float32")
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(out / "model.keras")],
        input=json.dumps(batch.tolist()),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["train_imported"] is False  # nothing but `import hublayer` registered them
    want = result.model.predict(batch, verbose=0)
    np.testing.assert_allclose(np.asarray(got["probs"]), want, atol=1e-6)


def test_model_keras_is_self_contained_without_its_model_folder_or_cache(
    data: dict[str, str], tmp_path: Path
) -> None:
    """The ``model.keras`` of a fit_classifier run carries its backbone: a fresh process
    reloads it with the model folder renamed away and an empty cache, and predicts the same."""
    source = testing.image_feature_vector(tmp_path / "ifv", image_size=SIZE, dim=16)
    out = tmp_path / "run"
    result = fit_classifier(source, data["train"], epochs=1, batch_size=16, out_dir=out)
    batch = np.random.default_rng(1).random((4, SIZE, SIZE, 3)).astype("float32")
    want = result.model.predict(batch, verbose=0)
    Path(source).rename(tmp_path / "moved-away")
    cache = tmp_path / "empty-cache"
    cache.mkdir()

    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(out / "model.keras")],
        input=json.dumps(batch.tolist()),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "HUBLAYER_CACHE_DIR": str(cache)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not Path(source).exists()
    assert list(cache.iterdir()) == []  # nothing was fetched or unpacked to reload it
    got = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.asarray(got["probs"]), want, atol=1e-6)


def test_second_run_reads_the_embedding_cache_and_never_runs_the_backbone(
    data: dict[str, str], model_path: str
) -> None:
    layer = hublayer.KerasLayer(model_path)
    counter = ForwardCounter(layer)
    settings: dict[str, Any] = {"validation": data["validation"], "epochs": 2, "batch_size": 16}
    first = fit_classifier(layer, data["train"], **settings)
    assert counter.examples == 120  # 90 train + 30 validation, once
    assert first.metrics["run"]["embedding_cache"] == {
        "train": "computed",
        "validation": "computed",
    }

    second = fit_classifier(layer, data["train"], **settings)
    assert counter.examples == 120  # not one more example through the backbone
    assert second.metrics["run"]["embedding_cache"] == {"train": "hit", "validation": "hit"}
    assert second.history == first.history  # same seed, same cached features

    fit_classifier(layer, data["train"], embedding_cache=False, **settings)
    assert counter.examples >= 120 + 2 * 90  # without the cache: every epoch, every batch


def test_fine_tune_runs_two_phases_and_keeps_batchnorm_statistics(
    data: dict[str, str], model_path: str, tmp_path: Path
) -> None:
    layer = hublayer.KerasLayer(model_path, trainable=True)
    statistics = [w for w in layer.weights if "moving" in w.path]
    before = [keras.ops.convert_to_numpy(w) for w in statistics]
    result = fit_classifier(
        layer,
        data["train"],
        validation=data["validation"],
        mode="fine_tune",
        epochs=2,
        fine_tune_epochs=2,
        unfreeze=1,
        batch_size=16,
        learning_rate=0.02,
        patience=5,
        out_dir=tmp_path / "ft",
    )
    history = result.history
    assert history["phase"] == ["head", "head", "fine_tune", "fine_tune"]
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["learning_rate"][2] == pytest.approx(0.002)
    assert result.metrics["run"]["trainable_backbone_variables"] == 3  # block_1 only
    for variable, value in zip(statistics, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)

    batch = np.random.default_rng(1).random((4, SIZE, SIZE, 3)).astype("float32")
    reloaded = keras.saving.load_model(tmp_path / "ft" / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(batch, verbose=0), result.model.predict(batch, verbose=0), atol=1e-6
    )


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch: int) -> None:
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_resume_after_an_interruption_continues_where_it_stopped(
    data: dict[str, str], model_path: str, tmp_path: Path
) -> None:
    settings: dict[str, Any] = {
        "validation": data["validation"],
        "epochs": 5,
        "batch_size": 16,
        "patience": 5,
        "dropout": 0.0,
    }
    whole = fit_classifier(model_path, data["train"], out_dir=tmp_path / "whole", **settings)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(
            model_path, data["train"], out_dir=out, callbacks=[_Interrupt(1)], **settings
        )
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["phases"]["head"]["next_epoch"] == 2

    resumed = fit_classifier(model_path, data["train"], out_dir=out, **settings)
    assert resumed.metrics["run"]["resumed"] is True
    assert resumed.history["epoch"] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(resumed.history["val_loss"], whole.history["val_loss"], atol=1e-5)
    assert not (out / "checkpoints").exists()


def test_string_labels_and_a_text_model(tmp_path: Path) -> None:
    path = tmp_path / "text"
    sentences = {"sport": "match goal team win", "food": "bread soup cheese meal"}
    rng = np.random.default_rng(0)
    with records.Writer(path) as writer:
        for i in range(40):
            topic = ["sport", "food"][i % 2]
            words = sentences[topic].split()
            text = " ".join(rng.choice(words, 3))
            writer.write(records.encode_example({"text": text.encode(), "topic": topic.encode()}))
    model = testing.text_embedding(tmp_path / "nnlm", dim=8)
    result = fit_classifier(
        model,
        str(path),
        label="topic",
        epochs=10,
        batch_size=8,
        learning_rate=0.05,
        patience=10,
        pipeline={"text": "text"},
    )
    assert result.class_names == ("food", "sport")
    assert result.metrics["splits"]["train"]["accuracy"] >= 0.9


def test_data_that_cannot_feed_the_model_fails_before_training(
    model_path: str, tmp_path: Path
) -> None:
    path = tmp_path / "text.tfrecord"
    with records.Writer(path) as writer:
        for i in range(8):
            writer.write(
                records.encode_example({"image": b"not an image", "label": np.int64(i % 2)})
            )
    layer = hublayer.KerasLayer(model_path)
    counter = ForwardCounter(layer)
    cache = tmp_path / "embeddings"
    with pytest.raises(SpecMismatchError):
        fit_classifier(layer, str(path), out_dir=tmp_path / "out", embedding_cache=cache)
    assert counter.examples == 0
    assert not cache.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"mode": "transfer"}, ValueError, "feature_extraction"),
        ({"epochs": 0}, ValueError, "epochs to be an integer >= 1"),
        ({"mode": "fine_tune", "unfreeze": 9}, TrainingError, "between 1 and 3"),
        ({"label": "missing"}, (SchemaError, SpecMismatchError), "missing"),
    ],
)
def test_bad_arguments_fail_before_any_work(
    data: dict[str, str],
    model_path: str,
    tmp_path: Path,
    change: dict[str, Any],
    error: type[Exception] | tuple[type[Exception], ...],
    message: str,
) -> None:
    cache = tmp_path / "embeddings"
    with pytest.raises(error, match=message):
        fit_classifier(model_path, data["train"], embedding_cache=cache, **change)
    assert not cache.exists()


def test_validation_labels_outside_the_training_classes_are_reported(
    data: dict[str, str], model_path: str
) -> None:
    with pytest.raises(SpecMismatchError, match=r"integer labels .* no label map") as caught:
        fit_classifier(model_path, data["named"], validation=data["validation"], epochs=1)
    assert caught.value.feature == "label"
