"""`hublayer.inspect`: a typed description of every kind of model the factory builds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hublayer import testing
from hublayer._specs import RANGE_ASSUMED, TensorInfo, input_specs_of
from hublayer.errors import InvalidModelError, SignatureError
from hublayer.models import ModelInfo, inspect


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("inspect")
    return {
        "image": testing.image_feature_vector(root / "image", image_size=32, dim=16),
        "text": testing.text_embedding(root / "text", dim=8, num_buckets=50),
        "bert": testing.bert_encoder(root / "bert", hidden_size=16),
        "tf1": testing.tf1_saved_model(root / "tf1", dim=4, num_buckets=10),
        "keras": testing.keras_file(root / "m.keras", image_size=16, num_classes=3),
    }


def test_image_feature_vector(models: dict[str, str]) -> None:
    info = inspect(models["image"])
    assert info.format == "tf2_saved_model"
    assert info.has_call
    assert info.call_takes_training
    assert info.fine_tunable
    assert info.entry_point == "__call__"
    assumed = TensorInfo("inputs", "float32", (None, 32, 32, 3), (0.0, 1.0), RANGE_ASSUMED)
    assert info.input_specs == (assumed,)
    assert info.output_specs == (TensorInfo("output", "float32", (None, 16)),)
    assert info.num_regularization_losses == 2
    assert info.num_trainable_variables == 6
    assert info.num_variables == 11  # + BatchNorm statistics and the Dropout seed state
    assert 0 < info.num_trainable_parameters < info.num_parameters
    assert info.size_bytes == sum(
        p.stat().st_size for p in Path(info.path).rglob("*") if p.is_file()
    )
    assert info.tags == (("serve",),)
    assert info.keras_layer_kwargs == {}
    serving = info.signature("serving_default")
    assert [t.name for t in serving.outputs] == ["feature_vector"]


def test_text_embedding_call_without_training(models: dict[str, str]) -> None:
    info = inspect(models["text"])
    assert info.has_call
    assert not info.call_takes_training
    assert info.input_specs == (TensorInfo("sentences", "string", (None,)),)
    assert info.num_trainable_parameters == info.num_parameters == 50 * 8


def test_bert_encoder_dict_inputs_and_several_signatures(models: dict[str, str]) -> None:
    info = inspect(models["bert"])
    names = [t.name for t in info.input_specs]
    assert names == ["input_mask", "input_type_ids", "input_word_ids"]
    assert all(t.dtype == "int32" and t.shape == (None, None) for t in info.input_specs)
    assert {t.name: t.shape for t in info.output_specs} == {
        "pooled_output": (None, 16),
        "sequence_output": (None, None, 16),
    }
    assert [s.name for s in info.signatures] == ["encode", "serving_default"]
    assert [t.name for t in info.signature("encode").outputs] == ["sequence_output"]


def test_tf1_saved_model_suggests_signature_and_output_key(models: dict[str, str]) -> None:
    info = inspect(models["tf1"])
    assert info.format == "tf1_saved_model"
    assert not info.has_call
    assert not info.fine_tunable
    assert info.num_trainable_variables == 0
    assert info.num_parameters == 10 * 4
    assert info.tags == ((),)
    assert info.entry_point == "default"
    assert info.input_specs == (TensorInfo("default", "string", (None,)),)
    assert info.keras_layer_kwargs == {"signature": "default", "output_key": "default"}
    assert info.keras_layer_code().endswith("signature='default', output_key='default')")
    tokens = info.signature("tokens")
    assert [(t.name, t.dtype) for t in tokens.inputs] == [
        ("sequence_len", "int32"),
        ("tokens", "string"),
    ]


def test_tf1_saved_model_with_two_tag_sets(tmp_path: Path) -> None:
    info = inspect(testing.tf1_saved_model(tmp_path / "tf1", train_graph=True))
    assert info.tags == ((), ("train",))
    assert inspect(info.path, tags=["train"]).entry_point == "default"


def test_keras_file(models: dict[str, str]) -> None:
    info = inspect(models["keras"])
    assert info.format == "keras"
    assert info.call_takes_training
    assert info.signatures == ()
    assert info.input_specs[0].shape == (None, 16, 16, 3)
    assert info.output_specs == (TensorInfo("output", "float32", (None, 3)),)
    assert info.num_regularization_losses == 2
    assert info.size_bytes == Path(models["keras"]).stat().st_size


def test_model_info_is_frozen_data_and_a_model_spec(models: dict[str, str]) -> None:
    info = inspect(models["image"])
    assert isinstance(info, ModelInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_parameters = 0  # type: ignore[misc]
    assert input_specs_of(info) == info.input_specs
    data = json.loads(json.dumps(info.to_dict()))
    assert data["input_specs"][0]["shape"] == [None, 32, 32, 3]
    assert data["fine_tunable"] is True


def test_unknown_signature_lists_the_available_ones(models: dict[str, str]) -> None:
    info = inspect(models["tf1"])
    with pytest.raises(SignatureError, match=r"\['default', 'tokens'\]") as caught:
        info.signature("serving_default")
    assert caught.value.available == ("default", "tokens")


def test_missing_or_empty_paths_raise_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidModelError, match=r"neither 'saved_model\.pb'"):
        inspect(tmp_path / "empty")
