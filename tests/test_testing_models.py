"""`hublayer.testing`: every factory model loads back with TensorFlow and behaves as documented."""

from __future__ import annotations

import glob
import hashlib
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from hublayer import testing


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each factory model, built once for this module."""
    root = tmp_path_factory.mktemp("factory")
    return {
        "image": testing.image_feature_vector(root / "image", image_size=32, dim=16),
        "text": testing.text_embedding(root / "text", dim=8),
        "bert": testing.bert_encoder(root / "bert", hidden_size=16),
        "tf1": testing.tf1_saved_model(root / "tf1", dim=4),
    }


def _images(n: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype("float32")


def _bert_feed(ids: list[list[int]]) -> dict[str, tf.Tensor]:
    word_ids = tf.constant(ids, tf.int32)
    return {
        "input_word_ids": word_ids,
        "input_mask": tf.cast(word_ids > 0, tf.int32),
        "input_type_ids": tf.zeros_like(word_ids),
    }


def test_image_feature_vector_is_a_reusable_saved_model(models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["image"])
    x = _images()
    features = model(x)
    assert features.shape == (4, 16)
    assert features.dtype == tf.float32
    # Calibrated BatchNorm: features are of order 1 in inference mode, not ~1e-11.
    assert 0.05 < float(tf.reduce_mean(tf.abs(features))) < 10
    assert float(tf.math.reduce_std(features)) > 1e-3
    assert len(model.trainable_variables) == 6 < len(model.variables)
    assert all(float(loss()) > 0 for loss in model.regularization_losses)
    assert len(model.regularization_losses) == 2
    serving = model.signatures["serving_default"]
    np.testing.assert_allclose(serving(inputs=x)["feature_vector"], features, atol=1e-6)
    np.testing.assert_allclose(model(x, training=False), features, atol=0)
    assert not np.allclose(model(x, training=True), features)  # Dropout, batch statistics


def test_image_feature_vector_gradients_do_not_vanish(models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["image"])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(_images(), training=False) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 1e-4 for g in grads)


def test_image_feature_vector_is_deterministic_from_its_seed(
    tmp_path: Path, models: dict[str, str]
) -> None:
    keras.utils.set_random_seed(123)  # global seeds must not matter
    same = tf.saved_model.load(testing.image_feature_vector(tmp_path / "a", dim=16, seed=0))
    other = tf.saved_model.load(testing.image_feature_vector(tmp_path / "b", dim=16, seed=1))
    x = _images()
    np.testing.assert_array_equal(same(x), tf.saved_model.load(models["image"])(x))
    assert not np.allclose(same(x), other(x))


def test_image_classifier_has_1001_logits(tmp_path: Path) -> None:
    model = tf.saved_model.load(testing.image_classifier(tmp_path / "cls", image_size=16))
    assert model(_images(2, 16)).shape == (2, 1001)
    assert list(model.signatures["serving_default"].structured_outputs) == ["logits"]


@pytest.mark.slow
def test_mobilenet_v2_variant_has_1280_features_of_sensible_scale(tmp_path: Path) -> None:
    path = testing.image_feature_vector(
        tmp_path / "mnv2", image_size=96, architecture="mobilenet_v2"
    )
    model = tf.saved_model.load(path)
    features = model(_images(2, 96))
    assert features.shape == (2, 1280)
    assert 0.05 < float(tf.reduce_mean(tf.abs(features))) < 10
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) > 2_000_000
    assert len(model.regularization_losses) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "resnet"}, r"one of \['tiny', 'mobilenet_v2'\]"),
        ({"architecture": "mobilenet_v2", "dim": 16}, "dim=None or 1280"),
        ({"image_size": 4}, "image_size to be an integer >= 8"),
        ({"dim": 0}, "Received: dim=0"),
    ],
)
def test_image_feature_vector_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        testing.image_feature_vector(tmp_path / "m", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "m").exists()


def test_text_embedding_like_nnlm(models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["text"])
    out = model(tf.constant(["Hello, world!", "hello world", "", "cats and dogs"]))
    assert out.shape == (4, 8)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out[0], out[1])  # case and punctuation do not matter
    np.testing.assert_array_equal(out[2], np.zeros(8))  # no words: zeros
    assert 0.3 < float(tf.norm(out[3])) < 3.0
    serving = model.signatures["serving_default"](sentences=tf.constant(["cats and dogs"]))
    np.testing.assert_allclose(serving["default"][0], out[3], atol=1e-6)
    assert [v.name for v in model.trainable_variables] == ["embeddings:0"]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.constant(["cats and dogs"])))
    assert tape.gradient(loss, model.trainable_variables[0]) is not None


def test_bert_encoder_outputs_and_signatures(models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["bert"])
    feed = _bert_feed([[5, 6, 7, 0], [8, 9, 0, 0]])
    out = model(feed)
    assert out["pooled_output"].shape == (2, 16)
    assert out["sequence_output"].shape == (2, 4, 16)
    assert sorted(model.signatures) == ["encode", "serving_default"]
    assert list(model.signatures["encode"](**feed)) == ["sequence_output"]
    served = model.signatures["serving_default"](**feed)
    np.testing.assert_allclose(served["pooled_output"], out["pooled_output"], atol=1e-5)
    assert not np.allclose(model(feed, training=True)["pooled_output"], out["pooled_output"])
    # A masked-out position cannot change what the unmasked ones see.
    other = model(_bert_feed([[5, 6, 7, 0], [8, 9, 0, 0]]) | {"input_word_ids": tf.constant(
        [[5, 6, 7, 3], [8, 9, 4, 4]], tf.int32)})  # fmt: skip
    np.testing.assert_allclose(other["pooled_output"], out["pooled_output"], atol=1e-5)


def test_bert_encoder_takes_any_length_up_to_max(tmp_path: Path, models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["bert"])
    assert model(_bert_feed([[1] * 32]))["sequence_output"].shape == (1, 32, 16)
    with pytest.raises(ValueError, match="num_heads to divide hidden_size"):
        testing.bert_encoder(tmp_path / "b", hidden_size=10, num_heads=4)


def test_tf1_saved_model_has_signatures_only(models: dict[str, str]) -> None:
    model = tf.saved_model.load(models["tf1"])
    assert sorted(model.signatures) == ["default", "tokens"]
    assert not callable(model)
    assert not hasattr(model, "trainable_variables")
    assert not hasattr(model, "regularization_losses")
    sentences = model.signatures["default"](default=tf.constant(["The cat.", "dog"]))["default"]
    tokens = model.signatures["tokens"](
        tokens=tf.constant([["the", "CAT"], ["dog", "ignored"]]), sequence_len=tf.constant([2, 1])
    )["default"]
    assert sentences.shape == (2, 4)
    np.testing.assert_allclose(sentences, tokens, atol=1e-6)


def test_tf1_saved_model_with_a_train_graph_needs_tags(tmp_path: Path) -> None:
    path = testing.tf1_saved_model(tmp_path / "tf1", train_graph=True)
    with pytest.raises(ValueError, match="tags"):
        tf.saved_model.load(path)
    for tags in ([], ["train"]):
        assert sorted(tf.saved_model.load(path, tags=tags).signatures) == ["default", "tokens"]


def test_keras_file_loads_without_custom_objects(tmp_path: Path) -> None:
    path = testing.keras_file(tmp_path / "m.keras", image_size=16, num_classes=3)
    model = keras.models.load_model(path)
    probabilities = model(_images(2, 16))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"ending in '\.keras'"):
        testing.keras_file(tmp_path / "m.h5")


def test_archive_puts_files_at_the_root_reproducibly(
    tmp_path: Path, models: dict[str, str]
) -> None:
    first = testing.archive(models["text"], tmp_path / "a.tar.gz")
    second = testing.archive(models["text"], tmp_path / "b.tar.gz")
    digest = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert "saved_model.pb" in names
        assert "variables/variables.index" in names
        tar.extractall(tmp_path / "out", filter="data")
    loaded = tf.saved_model.load(str(tmp_path / "out"))
    np.testing.assert_allclose(
        loaded(tf.constant(["a b"])), tf.saved_model.load(models["text"])(tf.constant(["a b"]))
    )


def test_archive_dot_prefix_and_single_files(tmp_path: Path, models: dict[str, str]) -> None:
    with tarfile.open(testing.archive(models["tf1"], tmp_path / "d.tgz", dot_prefix=True)) as tar:
        assert {"./saved_model.pb", "./variables", "."} <= set(tar.getnames())
    keras_path = testing.keras_file(tmp_path / "m.keras", image_size=16)
    with tarfile.open(testing.archive(keras_path, tmp_path / "k.tar.gz")) as tar:
        assert tar.getnames() == ["m.keras"]


def test_archive_bad_arguments_leave_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        testing.archive(tmp_path / "missing", tmp_path / "x.tar.gz")
    (tmp_path / "model").mkdir()
    with pytest.raises(ValueError, match=r"'\.tar\.gz' or '\.tgz'"):
        testing.archive(tmp_path / "model", tmp_path / "x.zip")
    (tmp_path / "x.tar.gz").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        testing.archive(tmp_path / "model", tmp_path / "x.tar.gz", overwrite=False)
    assert (tmp_path / "x.tar.gz").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "x.tar.gz"]


def test_names_are_public_and_lazy() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        value = getattr(testing, name)
        if name.isupper():  # constants, such as UNSAFE_PLACES: non-empty collections of names
            assert value
            assert all(isinstance(v, str) for v in value)
        else:
            assert callable(value)
            assert value.__doc__


def test_image_records_are_learnable_labelled_images(tmp_path: Path) -> None:
    from hublayer import records

    files = testing.image_records(tmp_path / "train", 40, classes=4, size=16, shards=3)
    schema = records.inspect(files, sample=None)
    assert schema.total_records == 40
    assert schema["image"].image is not None
    assert schema["image"].image.size == (16, 16)
    assert schema["label"].kind == "int64"
    shards = sorted(glob.glob(files))
    assert len(shards) == 3
    labels = [int(records.decode_example(r)["label"][0]) for r in records.read_records(shards)]
    assert set(labels) == {0, 1, 2, 3}
    again = sorted(
        glob.glob(testing.image_records(tmp_path / "b", 40, classes=4, size=16, shards=3))
    )
    assert list(records.read_records(shards)) == list(records.read_records(again))
    with pytest.raises(ValueError, match="image_format"):
        testing.image_records(tmp_path / "bad", 4, image_format="gif")
