"""The examples in examples/ run as they are, and do what their documents say.

Each example builds its own local stand-in for the tfhub.dev model it names. About 30 s
on 2 cores.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import keras
import numpy as np
import pytest

import hublayer as hub

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feature_extraction_trains_only_the_head(tmp_path: Path) -> None:
    result = _example("feature_extraction").main(tmp_path)
    losses = result["history"]["loss"]
    assert len(losses) == 3
    assert np.isfinite(losses).all()
    assert result["layer"].trainable_weights == []
    assert result["model"].output_shape == (None, 10)


def test_fine_tuning_changes_the_pretrained_weights(tmp_path: Path) -> None:
    results = _example("fine_tuning").main(tmp_path)
    whole = results["whole"]
    assert len(whole["changed"]) >= 6  # every trainable variable, plus BatchNorm statistics
    last_block = results["last_block"]
    trained = {p for p in last_block["changed"] if "moving" not in p and "seed" not in p}
    assert trained == {"block_1_conv/kernel", "block_1_bn/gamma", "block_1_bn/beta"}


def test_text_embedding_takes_strings(tmp_path: Path) -> None:
    results = _example("text_embedding").main(tmp_path)
    for name in ("frozen", "trainable"):
        result = results[name]
        assert result["embeddings_shape"] == (3, 128)
        np.testing.assert_allclose(result["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
        assert result["model"].inputs[0].dtype == "string"
    assert results["frozen"]["embedding_changed"] is False
    assert results["trainable"]["embedding_changed"] is True


def test_variable_input_sizes_are_resized_to_the_model(tmp_path: Path) -> None:
    result = _example("variable_input_size").main(tmp_path)
    assert result["predictions"]["small"].shape == (4, 1)
    assert result["predictions"]["large"].shape == (4, 1)
    x = result["inputs"]
    np.testing.assert_allclose(result["reloaded"](x), result["model"](x), rtol=1e-6)


def test_image_classifier_returns_1001_logits(tmp_path: Path) -> None:
    result = _example("image_classifier").main(tmp_path)
    assert result["logits"].shape == (1, 1001)
    assert 0 <= result["top_class"] < 1001
    assert result["layer"].input_specs[0].value_range == (0.0, 1.0)
    with pytest.raises(hub.errors.SignatureError, match=r"float32\[\?,224,224,3\]"):
        result["layer"](keras.ops.zeros((1, 299, 299, 3)))
