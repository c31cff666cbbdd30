"""KerasLayer inference: every factory model, in Sequential, functional and subclassed models.

About 25 s on 2 cores (most of it building the factory models and tracing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import FEATURE_DIM, IMAGE_SIZE, bert_inputs, images, models, sentences

import hublayer as hub
from hublayer._specs import RANGE_ASSUMED, TensorInfo, input_specs_of


def _case(name: str) -> tuple[dict[str, Any], Any, Callable[[Any], Any]]:
    """Layer kwargs, an input batch, and the reference output from the raw model."""
    path = models()[name]
    if name in ("image_feature_vector", "image_classifier"):
        x = images()
        return {}, x, lambda x: hub.load(path)(x, training=False)
    if name == "keras_file":
        x = images()
        return {}, x, lambda x: keras.saving.load_model(path)(x)
    if name == "text_embedding":
        return {}, sentences(), lambda x: hub.load(path)(x)
    if name == "tf1_saved_model":
        return {}, sentences(), lambda x: hub.load(path).signatures["default"](default=x)["default"]
    if name == "bert_encoder":
        kwargs = {"output_key": "pooled_output"}
        return kwargs, bert_inputs(), lambda x: hub.load(path)(x, training=False)["pooled_output"]
    raise AssertionError(name)


def _symbolic(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: keras.Input(v.shape[1:], dtype=v.dtype.name, name=k) for k, v in x.items()}
    return keras.Input(x.shape[1:], dtype=tf.as_dtype(x.dtype).name)


class SubclassedModel(keras.Model):
    def __init__(self, layer: keras.Layer) -> None:
        super().__init__()
        self.backbone = layer

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.backbone(inputs, training=training)


MODEL_NAMES = sorted(
    [
        "image_feature_vector",
        "image_classifier",
        "text_embedding",
        "bert_encoder",
        "tf1_saved_model",
        "keras_file",
    ]
)


# Sequential models take one input tensor, so the dict-input BERT encoder skips that style.
CASES = [
    (name, style)
    for name in MODEL_NAMES
    for style in ("sequential", "functional", "subclassed")
    if not (name == "bert_encoder" and style == "sequential")
]


@pytest.mark.parametrize(("name", "style"), CASES)
def test_every_factory_model_in_every_model_style(name: str, style: str) -> None:
    kwargs, x, reference = _case(name)
    layer = hub.KerasLayer(models()[name], **kwargs)
    if style == "sequential":
        model: keras.Model = keras.Sequential([_symbolic(x), layer])
    elif style == "functional":
        inputs = _symbolic(x)
        model = keras.Model(inputs, layer(inputs))
    else:
        model = SubclassedModel(layer)
    expected = reference(x)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(layer, keras.Layer)


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("image_feature_vector", {}, (None, FEATURE_DIM)),
        ("image_classifier", {}, (None, 1001)),
        ("text_embedding", {}, (None, FEATURE_DIM)),
        ("tf1_saved_model", {}, (None, 8)),
        ("bert_encoder", {"output_key": "sequence_output"}, (None, None, FEATURE_DIM)),
    ],
)
def test_functional_api_gets_static_output_shapes(
    name: str, kwargs: dict[str, Any], shape: tuple[int | None, ...]
) -> None:
    _, x, _ = _case(name)
    inputs = _symbolic(x)
    outputs = hub.KerasLayer(models()[name], **kwargs)(inputs)
    assert tuple(outputs.shape) == shape


def test_dict_output_of_call_is_returned_whole_without_output_key() -> None:
    layer = hub.KerasLayer(models()["bert_encoder"])
    outputs = layer(bert_inputs(batch=3, length=5))
    assert sorted(outputs) == ["pooled_output", "sequence_output"]
    assert outputs["sequence_output"].shape == (3, 5, FEATURE_DIM)
    symbolic = layer(_symbolic(bert_inputs()))
    assert tuple(symbolic["pooled_output"].shape) == (None, FEATURE_DIM)


def test_signature_with_output_key_or_whole_dict() -> None:
    path = models()["bert_encoder"]
    feed = bert_inputs()
    whole = hub.KerasLayer(path, signature="serving_default", signature_outputs_as_dict=True)(feed)
    one = hub.KerasLayer(path, signature="encode", output_key="sequence_output")(feed)
    direct = hub.load(path).signatures["serving_default"](**feed)
    assert sorted(whole) == ["pooled_output", "sequence_output"]
    np.testing.assert_allclose(whole["pooled_output"], direct["pooled_output"], rtol=1e-6)
    np.testing.assert_allclose(one, direct["sequence_output"], rtol=1e-6)


def test_tf1_model_uses_the_default_signature_and_other_signatures_by_name() -> None:
    path = models()["tf1_saved_model"]
    tokens = hub.KerasLayer(path, signature="tokens", output_key="default")
    words = {
        "tokens": tf.constant([["the", "cat"], ["a", ""]]),
        "sequence_len": tf.constant([2, 1]),
    }
    np.testing.assert_allclose(
        tokens(words), hub.KerasLayer(path)(tf.constant(["The cat", "a"])), rtol=1e-6
    )
    assert [str(s) for s in tokens.input_specs] == [
        "sequence_len: int32[None]",
        "tokens: string[None, None]",
    ]


def test_text_layer_declared_like_tensorflow_hub_examples() -> None:
    # hub.KerasLayer(url, input_shape=[], dtype=tf.string) as the first Sequential layer.
    layer = hub.KerasLayer(models()["text_embedding"], input_shape=[], dtype=tf.string)
    model = keras.Sequential([layer, keras.layers.Dense(2)])
    assert model.output_shape == (None, 2)
    assert model.inputs[0].dtype == "string"
    assert model(sentences()).shape == (3, 2)
    assert layer.get_config()["input_shape"] == []


def test_output_shape_argument_sets_static_shape() -> None:
    # The output's last dimension is unknown to shape inference; output_shape declares it.
    traced = tf.function(lambda x: tf.reshape(tf.tile(x, [1, 2]), [tf.shape(x)[0], -1]))
    layer = hub.KerasLayer(traced, output_shape=[6])
    inputs = keras.Input((3,))
    assert tuple(layer(inputs).shape) == (None, 6)
    np.testing.assert_allclose(layer(np.ones((2, 3), "float32")), np.ones((2, 6)))


def test_arguments_are_passed_on_every_call() -> None:
    def scale(x: tf.Tensor, factor: float = 1.0) -> tf.Tensor:
        return x * factor

    layer = hub.KerasLayer(scale, arguments={"factor": 3.0})
    np.testing.assert_allclose(layer(tf.ones([2, 2])), 3 * np.ones((2, 2)))


def test_already_loaded_object_as_handle() -> None:
    loaded = hub.load(models()["image_feature_vector"])
    layer = hub.KerasLayer(loaded)
    x = images()
    np.testing.assert_allclose(layer(x), loaded(x, training=False), rtol=1e-6)
    assert layer.resolved_object is loaded
    assert len(layer.weights) == len(loaded.variables)
    with pytest.raises(NotImplementedError, match="handle string"):
        layer.get_config()


def test_input_specs_are_tensor_infos_for_records() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"])
    (spec,) = input_specs_of(layer)
    assert spec == TensorInfo(
        "inputs",
        "float32",
        (None, IMAGE_SIZE, IMAGE_SIZE, 3),
        value_range=(0.0, 1.0),
        range_source=RANGE_ASSUMED,  # TF Hub's convention, not a fact about the model
    )
    bert = hub.KerasLayer(models()["bert_encoder"], output_key="pooled_output")
    assert [s.name for s in bert.input_specs] == ["input_mask", "input_type_ids", "input_word_ids"]
    assert {s.dtype for s in bert.input_specs} == {"int32"}
    text = hub.KerasLayer(models()["text_embedding"])
    assert text.input_specs == (TensorInfo("sentences", "string", (None,)),)
    assert text.input_specs == hub.inspect(models()["text_embedding"]).input_specs


def test_get_config_round_trips() -> None:
    layer = hub.KerasLayer(
        models()["bert_encoder"],
        output_key="pooled_output",
        trainable=True,
        trainable_patterns=["pooler"],
        name="encoder",
    )
    config = layer.get_config()
    assert config["handle"] == models()["bert_encoder"]
    assert config["output_key"] == "pooled_output"
    assert config["trainable_patterns"] == ["pooler"]
    clone = hub.KerasLayer.from_config(config)
    assert clone.get_config() == config
    feed = bert_inputs()
    np.testing.assert_allclose(clone(feed), layer(feed), rtol=1e-6)
    assert [v.path for v in clone.trainable_weights] == [v.path for v in layer.trainable_weights]


def test_archive_handle_resolves_through_the_cache(tmp_path: Any) -> None:
    archive = hub.testing.archive(models()["image_feature_vector"], tmp_path / "ifv.tar.gz")
    layer = hub.KerasLayer(archive)
    x = images()
    np.testing.assert_allclose(
        layer(x), hub.KerasLayer(models()["image_feature_vector"])(x), rtol=1e-6
    )


def test_variables_share_storage_and_have_keras_safe_names() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True)
    loaded = layer.resolved_object
    names = [v.name for v in layer.weights]
    assert all(":" not in n and "/" not in n for n in names)
    assert layer.variable_paths[0] == loaded.trainable_variables[0].name.removesuffix(":0")
    kernel = layer.trainable_weights[0]
    kernel.assign(tf.zeros_like(kernel))
    assert not np.any(loaded.trainable_variables[0].numpy())
