"""The factory models the KerasLayer tests share, built once per test process.

Each one takes about a second to write, so the layer test modules build them here once
(in a private temporary folder, removed at exit) instead of once per test.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from hublayer import testing

IMAGE_SIZE = 32
FEATURE_DIM = 16


@functools.cache
def models() -> dict[str, str]:
    """name -> path of every factory model the layer tests use."""
    root = Path(tempfile.mkdtemp(prefix="hublayer-layer-tests-"))
    atexit.register(shutil.rmtree, root, True)
    return {
        "image_feature_vector": testing.image_feature_vector(
            root / "ifv", image_size=IMAGE_SIZE, dim=FEATURE_DIM
        ),
        "image_classifier": testing.image_classifier(root / "cls", image_size=IMAGE_SIZE),
        "text_embedding": testing.text_embedding(root / "txt", dim=FEATURE_DIM),
        "bert_encoder": testing.bert_encoder(root / "bert", hidden_size=FEATURE_DIM),
        "tf1_saved_model": testing.tf1_saved_model(root / "tf1", dim=8),
        "keras_file": testing.keras_file(root / "tiny.keras", image_size=IMAGE_SIZE),
    }


def images(batch: int = 4, seed: int = 0) -> np.ndarray:
    """Random float32 images in [0, 1]."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)


def sentences() -> tf.Tensor:
    return tf.constant(["The cat sat", "on the mat!", "a dog"])


def bert_inputs(batch: int = 2, length: int = 8) -> dict[str, tf.Tensor]:
    ids = tf.reshape(tf.range(batch * length, dtype=tf.int32) % 50 + 1, [batch, length])
    return {
        "input_word_ids": ids,
        "input_mask": tf.ones_like(ids),
        "input_type_ids": tf.zeros_like(ids),
    }
