"""No false positives: models people publish scan clean, and the allowed file uses stay allowed.

Also the golden check: a ``saved_model.pb`` written by TensorFlow is scanned in a process
where TensorFlow cannot be imported, with the same result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import hublayer as hub
from hublayer import testing
from hublayer.errors import UnsafeModelError
from hublayer.testing import unsafe_model


def _assert_clean(path: str | Path) -> None:
    report = hub.scan(path)
    assert report.safe, str(report)
    assert report.findings == (), str(report)
    assert report.files
    assert sum(report.ops.values()) > 0 or report.files == ("config.json",)


@pytest.mark.parametrize(
    "build",
    [
        lambda p: testing.image_feature_vector(p / "ifv", image_size=8, dim=4),
        lambda p: testing.image_classifier(p / "cls", image_size=8),
        lambda p: testing.text_embedding(p / "txt", dim=4),
        lambda p: testing.bert_encoder(p / "bert", hidden_size=8),
        lambda p: testing.tf1_saved_model(p / "tf1", dim=4),
        lambda p: testing.tf1_saved_model(p / "tf1t", dim=4, train_graph=True),
        lambda p: testing.keras_file(p / "tiny.keras", image_size=8),
        lambda p: testing.signature_model(p / "export", style="export"),
        lambda p: testing.signature_model(p / "sigs", style="signatures"),
        lambda p: testing.signature_model(p / "train", style="serve_train"),
        lambda p: testing.signature_model(p / "onnx", style="onnx2tf"),
    ],
    ids=[
        "image_feature_vector",
        "image_classifier",
        "text_embedding",
        "bert_encoder",
        "tf1_saved_model",
        "tf1_two_meta_graphs",
        "keras_file",
        "signature_export",
        "signature_signatures",
        "signature_serve_train",
        "signature_onnx2tf",
    ],
)
def test_every_testing_model_scans_clean(build: object, tmp_path: Path) -> None:
    _assert_clean(build(tmp_path))  # type: ignore[operator]


def test_keras_export_with_batch_norm_scans_clean_and_loads(tmp_path: Path) -> None:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(0.1)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.export(str(tmp_path / "exported"), verbose=False)
    _assert_clean(tmp_path / "exported")
    layer = hub.KerasLayer(tmp_path / "exported")
    assert layer(np.zeros([1, 8, 8, 3], np.float32)).shape == (1, 2)


class _VocabModel(tf.Module):
    """A text model the TF2 way: a vocabulary table and an asset it reads, both in assets/."""

    def __init__(self, vocab: str) -> None:
        init = tf.lookup.TextFileInitializer(
            vocab,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticHashTable(init, -1)
        self.vocab = tf.saved_model.Asset(vocab)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, words: tf.Tensor) -> tf.Tensor:
        size = tf.cast(tf.strings.length(tf.io.read_file(self.vocab)), tf.int64)
        return self.table.lookup(words) * 0 + self.table.lookup(words) + size * 0


def test_tf2_text_model_with_vocab_in_assets_scans_clean_and_works(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\ncat\nsat\n")
    model = _VocabModel(str(vocab))
    tf.saved_model.save(
        model, str(tmp_path / "text"), signatures=model.__call__.get_concrete_function()
    )
    vocab.unlink()  # the model must read its own copy in assets/
    report = hub.scan(tmp_path / "text")
    assert report.safe, str(report)
    assert report.findings == (), str(report)
    assert report.ops["InitializeTableFromTextFileV2"] == 1
    assert report.ops["ReadFile"] >= 1
    loaded = hub.load(tmp_path / "text")
    assert loaded(tf.constant(["cat", "dog"])).numpy().tolist() == [1, -1]


def _tf1_vocab_module(path: Path, vocab: Path, *, as_asset: bool) -> Path:
    """A TF1 Hub-style module: a vocabulary lookup; the vocab registered as an asset or not."""
    with tf.Graph().as_default():
        words = tf.compat.v1.placeholder(tf.string, [None], name="words")
        filename = tf.constant(str(vocab), name="vocab_path")
        initializer = tf.compat.v1.lookup.TextFileInitializer(filename, tf.string, -2, tf.int64, -1)
        table = tf.compat.v1.lookup.StaticHashTable(initializer, -1)
        ids = table.lookup(words)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.tables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def(
                {"default": words}, {"default": ids}
            )
            # The initializer put the path in ASSET_FILEPATHS; the builder copies it into
            # assets/ only when given that collection.
            assets = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
            builder.add_meta_graph_and_variables(
                session,
                [],
                signature_def_map={"default": signature},
                assets_collection=assets if as_asset else None,
                main_op=tf.compat.v1.tables_initializer(),
            )
            builder.save()
    return path


def test_tf1_module_with_vocab_asset_scans_clean_and_a_foreign_path_does_not(
    tmp_path: Path,
) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\ncat\nsat\n")
    module = _tf1_vocab_module(tmp_path / "module", vocab, as_asset=True)
    assert (module / "assets" / "vocab.txt").is_file()
    _assert_clean(module)
    outputs = hub.load(module).signatures["default"](default=tf.constant(["sat"]))
    assert outputs["default"].numpy().tolist() == [2]
    # The same module reading a path outside its assets/ (e.g. /etc/passwd) is refused.
    foreign = _tf1_vocab_module(tmp_path / "foreign", vocab, as_asset=False)
    report = hub.scan(foreign)
    assert [f.op for f in report.high] == ["InitializeTableFromTextFileV2"]
    assert str(vocab) in report.high[0].detail
    with pytest.raises(UnsafeModelError, match="InitializeTableFromTextFileV2"):
        hub.load(foreign)


@pytest.mark.slow
def test_zoo_efficientnet_lite0_scans_clean(tmp_path: Path) -> None:
    path = hub.zoo.build_efficientnet_lite0(image_size=64)
    _assert_clean(path)


def test_golden_tf_written_model_scans_the_same_without_tensorflow(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n")
    model = _VocabModel(str(vocab))
    tf.saved_model.save(model, str(tmp_path / "golden"))
    expected = hub.scan(tmp_path / "golden").to_dict()
    code = (
        "import json, sys\n"
        "sys.modules['tensorflow'] = None  # any import of TensorFlow fails\n"
        "import hublayer\n"
        f"report = hublayer.scan({str(tmp_path / 'golden')!r})\n"
        "loaded = [m for m, v in sys.modules.items() if v and m.startswith('tensorflow')]\n"
        "assert not loaded and 'keras' not in sys.modules, loaded\n"
        "print(json.dumps(report.to_dict()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    assert expected["safe"] is True
    assert expected["ops"]["InitializeTableFromTextFileV2"] == 1


def test_keras_file_with_lambda_and_foreign_module_is_reported(tmp_path: Path) -> None:
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "lambda.keras")
    report = hub.scan(tmp_path / "lambda.keras")
    assert {f.op for f in report.high} == {"Lambda", "__lambda__"}
    assert {f.file for f in report.high} == {"config.json"}
    with pytest.raises(UnsafeModelError, match="Lambda"):
        hub.load(tmp_path / "lambda.keras")


def test_keras_file_embedding_a_malicious_saved_model_reloads_only_with_safe_mode_off(
    tmp_path: Path,
) -> None:
    target = tmp_path / "victim.txt"
    bad = unsafe_model(tmp_path / "bad", "write", "while_body", target=target)
    layer = hub.KerasLayer(bad, safe_mode=False)
    model = keras.Sequential([keras.Input((4,)), layer])
    model.save(tmp_path / "wrapped.keras")
    target.unlink(missing_ok=True)
    report = hub.scan(tmp_path / "wrapped.keras")
    assert [f.op for f in report.high] == ["WriteFile"]
    assert report.high[0].file.endswith("saved_model/saved_model.pb")
    with pytest.raises(UnsafeModelError):
        hub.load(tmp_path / "wrapped.keras")
    # Plain Keras (safe_mode=True by default) reports the layer's UnsafeModelError.
    with pytest.raises(ValueError, match="WriteFile in while_body"):
        keras.saving.load_model(tmp_path / "wrapped.keras")
    assert not target.exists()
    reloaded = keras.saving.load_model(tmp_path / "wrapped.keras", safe_mode=False)
    reloaded(np.ones([1, 4], np.float32))
    assert target.read_text() == "pwned"
