"""Parity with tensorflow_hub.KerasLayer on tf_keras (legacy Keras), on the same models.

tensorflow_hub needs legacy Keras, which must be chosen before TensorFlow is imported, so
the peer runs in a fresh process with TF_USE_LEGACY_KERAS=1 and writes its outputs to
.npy files. About 25 s on 2 cores (marked slow).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from _layer_models import bert_inputs, images, models, sentences

import hublayer as hub

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow_hub") is None
        or importlib.util.find_spec("tf_keras") is None,
        reason="tensorflow_hub and tf_keras (the test extra) are not installed",
    ),
]

PEER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    cases = json.loads(sys.argv[1])
    out = sys.argv[2]
    for name, case in cases.items():
        feed = np.load(f"{out}/{name}_in.npz")
        x = {k: feed[k] for k in feed.files} if case["dict"] else feed["x"]
        layer = hub.KerasLayer(case["handle"], **case["kwargs"])
        np.save(f"{out}/{name}_out.npy", layer(x).numpy())

    # One SGD fine-tuning step, from the same head weights.
    case = cases["image_feature_vector"]
    head = np.load(f"{out}/head.npz")
    layer = hub.KerasLayer(case["handle"], trainable=True)
    model = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layer, tf_keras.layers.Dense(3)])
    model.layers[-1].set_weights([head["kernel"], head["bias"]])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.05), loss="mse")
    model.train_on_batch(np.load(f"{out}/image_feature_vector_in.npz")["x"], head["y"])
    np.savez(f"{out}/step.npz", *[w.numpy() for w in model.weights])
    print("PEER OK")
    """
)


def _cases() -> dict[str, tuple[dict[str, Any], object]]:
    return {
        "image_feature_vector": ({}, images()),
        "image_classifier": ({}, images()),
        "text_embedding": ({}, sentences()),
        "tf1_saved_model": ({"signature": "default", "output_key": "default"}, sentences()),
        "bert_encoder": ({"output_key": "pooled_output"}, bert_inputs()),
        "bert_signature": (
            {"signature": "encode", "output_key": "sequence_output"},
            bert_inputs(),
        ),
    }


def _handle(name: str) -> str:
    return models()["bert_encoder" if name == "bert_signature" else name]


def test_same_outputs_and_same_fine_tuning_step_as_tensorflow_hub(tmp_path: Path) -> None:
    import json

    spec = {}
    for name, (kwargs, x) in _cases().items():
        if isinstance(x, dict):
            np.savez(tmp_path / f"{name}_in.npz", **{k: v.numpy() for k, v in x.items()})
        else:
            array = np.asarray(x)
            np.savez(
                tmp_path / f"{name}_in.npz",
                x=array.astype(bytes) if array.dtype == object else array,
            )
        spec[name] = {"handle": _handle(name), "kwargs": kwargs, "dict": isinstance(x, dict)}
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(16, 3)).astype("float32")
    bias = np.zeros(3, "float32")
    y = rng.normal(size=(4, 3)).astype("float32")
    np.savez(tmp_path / "head.npz", kernel=kernel, bias=bias, y=y)

    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PEER, json.dumps(spec), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert "PEER OK" in done.stdout, done.stderr[-4000:]

    for name, (kwargs, x) in _cases().items():
        ours = hub.KerasLayer(_handle(name), **kwargs)(x)
        np.testing.assert_allclose(
            ours, np.load(tmp_path / f"{name}_out.npy"), rtol=1e-5, atol=1e-6, err_msg=name
        )

    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(3)])
    model.layers[-1].set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.train_on_batch(images(), y)
    peer = np.load(tmp_path / "step.npz")
    theirs = [peer[f"arr_{i}"] for i in range(len(peer.files))]
    assert len(theirs) == len(model.weights)
    for got, expected in zip(model.weights, theirs, strict=True):
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-5, err_msg=got.path)
