"""`hublayer.export_saved_model`: a Keras 3 model written as a TF2 Reusable SavedModel."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from hublayer.errors import SignatureError
from hublayer.models import export_saved_model


def _conv_model(dropout: float = 0.5) -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(
        8, 3, padding="same", kernel_regularizer=keras.regularizers.L2(0.01), name="conv"
    )(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout, seed=1)(x)
    return keras.Model(inputs, x)


def _images(n: int = 4, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (n, size, size, 3)).astype("float32")


def test_round_trip_has_the_reusable_saved_model_attributes(tmp_path: Path) -> None:
    model = _conv_model()
    path = export_saved_model(model, tmp_path / "m")
    loaded = tf.saved_model.load(path)

    x = _images()
    np.testing.assert_allclose(loaded(x), model(x, training=False), atol=1e-6)
    np.testing.assert_allclose(loaded(x, training=False), loaded(x), atol=0)
    assert len(loaded.variables) == len(model.variables)  # seed-generator state included
    assert sorted(v.name for v in loaded.trainable_variables) == sorted(
        f"{v.path}:0" for v in model.trainable_variables
    )
    serving = loaded.signatures["serving_default"]
    assert set(serving.structured_outputs) == {"feature_vector"}
    np.testing.assert_allclose(serving(inputs=x)["feature_vector"], loaded(x), atol=1e-6)


def test_round_trip_through_keras_layer_fine_tunes(tmp_path: Path) -> None:
    import hublayer

    model = _conv_model(dropout=0.0)
    path = export_saved_model(model, tmp_path / "m")
    layer = hublayer.KerasLayer(path, trainable=True)
    classifier = keras.Sequential([keras.Input((16, 16, 3)), layer, keras.layers.Dense(2)])
    x = _images(8)
    np.testing.assert_allclose(layer(x), model(x, training=False), atol=1e-5)
    classifier(x)
    assert len(classifier.losses) == 1  # the exported L2 term
    classifier.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    kernel = next(w for w in layer.trainable_weights if "conv" in w.path and w.ndim == 4)
    before = kernel.numpy().copy()
    classifier.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    assert not np.allclose(kernel.numpy(), before)


def test_regularization_losses_match_keras(tmp_path: Path) -> None:
    model = _conv_model()
    loaded = tf.saved_model.load(export_saved_model(model, tmp_path / "m"))
    assert len(loaded.regularization_losses) == 1
    kernel = model.get_layer("conv").kernel.numpy()
    np.testing.assert_allclose(loaded.regularization_losses[0](), 0.01 * np.sum(kernel**2), 1e-5)


def test_regularization_losses_of_a_wrapped_saved_model_are_kept(tmp_path: Path) -> None:
    class Wrapped(keras.layers.Layer):
        """A layer that carries a SavedModel's losses, as hublayer.KerasLayer does."""

        def build(self, input_shape: tuple[int, ...]) -> None:
            self.w = self.add_weight(shape=(3,), initializer="ones")

        @property
        def regularization_losses(self) -> list:
            return [lambda: 0.5 * tf.reduce_sum(tf.convert_to_tensor(self.w))]

        def call(self, inputs: tf.Tensor) -> tf.Tensor:
            return inputs * self.w

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Wrapped()(inputs))
    loaded = tf.saved_model.load(export_saved_model(model, tmp_path / "m"))
    assert [float(loss()) for loss in loaded.regularization_losses] == [1.5]
    loaded.trainable_variables[0].assign([2.0, 2.0, 2.0])
    assert float(loaded.regularization_losses[0]()) == 3.0  # reads the variable, not a constant

    model.layers[-1].trainable = False
    frozen = tf.saved_model.load(export_saved_model(model, tmp_path / "frozen"))
    assert len(frozen.regularization_losses) == 0


def test_training_true_runs_dropout_and_moves_batch_norm(tmp_path: Path) -> None:
    loaded = tf.saved_model.load(export_saved_model(_conv_model(), tmp_path / "m"))
    moving_mean = next(v for v in loaded.variables if v.name == "bn/moving_mean:0")
    before = moving_mean.numpy().copy()
    x = _images()

    trained = loaded(x, training=True)
    assert not np.allclose(trained, loaded(x, training=False))
    assert np.any(trained.numpy() == 0.0)  # dropped units
    assert not np.allclose(moving_mean.numpy(), before)


def test_gradients_reach_every_trainable_variable(tmp_path: Path) -> None:
    loaded = tf.saved_model.load(export_saved_model(_conv_model(), tmp_path / "m"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(loaded(_images(), training=True) ** 2)
    grads = tape.gradient(loss, loaded.trainable_variables)
    assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)


def test_each_variable_is_saved_once(tmp_path: Path) -> None:
    inputs = keras.Input((64,))
    outputs = keras.layers.Dense(256, name="d2")(keras.layers.Dense(512, name="d1")(inputs))
    model = keras.Model(inputs, outputs)
    path = Path(export_saved_model(model, tmp_path / "m"))
    param_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.variables)
    data_bytes = sum(f.stat().st_size for f in (path / "variables").glob("variables.data-*"))
    assert param_bytes <= data_bytes < param_bytes * 1.1


def test_dict_inputs_dict_outputs_and_extra_signatures(tmp_path: Path) -> None:
    ids = keras.Input((None,), dtype="int32", name="ids")
    mask = keras.Input((None,), dtype="int32", name="mask")
    emb = keras.layers.Embedding(10, 4)(ids)
    seq = emb * keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
    model = keras.Model(
        {"ids": ids, "mask": mask}, {"seq": seq, "pooled": keras.ops.sum(seq, axis=1)}
    )
    path = export_saved_model(
        model, tmp_path / "m", signatures={"serving_default": None, "pool": ["pooled"]}
    )
    loaded = tf.saved_model.load(path)
    feed = {"ids": tf.constant([[1, 2, 3]]), "mask": tf.constant([[1, 1, 0]])}
    out = loaded(feed)
    assert out["seq"].shape == (1, 3, 4)
    assert set(loaded.signatures["serving_default"](**feed)) == {"seq", "pooled"}
    pooled = loaded.signatures["pool"](**feed)
    assert list(pooled) == ["pooled"]
    np.testing.assert_allclose(pooled["pooled"], out["pooled"], atol=1e-6)


def test_sequential_model(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="dense")])
    loaded = tf.saved_model.load(export_saved_model(model, tmp_path / "m", output_name="logits"))
    x = np.ones((2, 5), "float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert list(loaded.signatures["serving_default"](inputs=x)) == ["logits"]


def test_subclassed_model_needs_and_takes_an_input_signature(tmp_path: Path) -> None:
    class Doubler(keras.Model):
        def call(self, inputs: tf.Tensor) -> tf.Tensor:
            return inputs * 2.0

    with pytest.raises(SignatureError, match="input_signature"):
        export_saved_model(Doubler(), tmp_path / "a")
    assert not (tmp_path / "a").exists()

    spec = tf.TensorSpec([None, 3], tf.float32)
    loaded = tf.saved_model.load(
        export_saved_model(Doubler(), tmp_path / "b", input_signature=spec)
    )
    np.testing.assert_allclose(loaded(tf.ones([2, 3])), 2 * np.ones([2, 3]))


def test_unknown_signature_output_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match=r"\['feature_vector'\]") as info:
        export_saved_model(_conv_model(), tmp_path / "m", signatures={"s": ["logits"]})
    assert info.value.available == ("feature_vector",)
    assert not (tmp_path / "m").exists()


def test_existing_path_is_kept_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(_conv_model(), target)
    assert (target / "keep.txt").read_text() == "mine"

    export_saved_model(_conv_model(), target, overwrite=True)
    assert not (target / "keep.txt").exists()
    assert (target / "saved_model.pb").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging folder left behind


def test_not_a_keras_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Received: keras_model=Module"):
        export_saved_model(tf.Module(), tmp_path / "m")  # type: ignore[arg-type]


def test_other_backends_are_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hublayer.errors import BackendError

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(BackendError, match=r"export a SavedModel.*KERAS_BACKEND=tensorflow"):
        export_saved_model(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
