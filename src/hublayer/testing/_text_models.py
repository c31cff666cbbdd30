"""Text test models: an nnlm-style sentence embedding and a BERT-like encoder.

Both are TF2 SavedModels. The text embedding is written with TensorFlow alone (like
tfhub.dev's ``nnlm-en-dim128/2``: ``__call__`` takes only the sentences, no ``training``);
the encoder is a Keras 3 model written by :func:`hublayer.models.export_saved_model`.

Example:
    >>> import tensorflow as tf
    >>> from hublayer.testing import text_embedding
    >>> embed = tf.saved_model.load(text_embedding("/tmp/nnlm", dim=8))
    >>> embed(tf.constant(["hello world", ""])).shape
    TensorShape([2, 8])
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer.models import export_saved_model
from hublayer.testing._archive import staged_path
from hublayer.testing._models import check_positive, draw_weights

__all__ = ["bert_encoder", "text_embedding"]

#: The keys of a BERT encoder's inputs, as in TF Hub's BERT models.
BERT_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def embed_text(table: Any, sentences: tf.Tensor) -> tf.Tensor:
    """Embed ``tf.string [B]`` sentences: lower-case, split, hash, look up, sum / sqrt(n).

    Punctuation separates words; a sentence without words embeds to zeros.
    """
    text = tf.strings.lower(sentences, encoding="utf-8")
    words = tf.strings.split(tf.strings.regex_replace(text, r"[\p{P}\p{S}\s]+", " "))
    return embed_words(table, words)


def embed_words(table: Any, words: tf.RaggedTensor) -> tf.Tensor:
    """Hash each word into a row of ``table`` and combine each row's words as sum / sqrt(n)."""
    ids = tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, words, int(table.shape[0]))
    vectors = tf.ragged.map_flat_values(tf.gather, table, ids)
    counts = tf.cast(ids.row_lengths(), table.dtype)
    total = tf.reduce_sum(vectors, axis=1)
    return total / tf.sqrt(tf.maximum(counts, 1.0))[:, tf.newaxis]


def text_embedding(
    path: str | os.PathLike[str],
    *,
    dim: int = 16,
    num_buckets: int = 1000,
    seed: int = 0,
    overwrite: bool = True,
) -> str:
    """Write a sentence embedding model like tfhub.dev's ``nnlm-en-dim128/2``.

    ``__call__(sentences)`` takes ``tf.string [B]`` and returns float32 ``[B, dim]``:
    words are lower-cased, split on spaces and punctuation, hashed into ``num_buckets``
    rows of a trainable embedding table, and combined as sum / sqrt(word count). There is
    no ``training`` argument. The ``serving_default`` signature takes ``sentences`` and
    returns ``{"default": ...}``.

    Args:
        path: the folder to write.
        dim: embedding size.
        num_buckets: rows of the embedding table (the hashed vocabulary).
        seed: seeds the table (rows ~ N(0, 1/dim), so embeddings have norm about 1).
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: ``dim`` or ``num_buckets`` is not a positive integer.

    Example:
        >>> import tensorflow as tf
        >>> from hublayer.testing import text_embedding
        >>> model = tf.saved_model.load(text_embedding("/tmp/nnlm"))
        >>> model.signatures["serving_default"](sentences=tf.constant(["cats"]))["default"].shape
        TensorShape([1, 16])
    """
    check_positive("dim", dim)
    check_positive("num_buckets", num_buckets)
    values = np.random.default_rng(seed).normal(0.0, dim**-0.5, (num_buckets, dim))
    table = tf.Variable(values.astype("float32"), name="embeddings", trainable=True)

    sentences = tf.TensorSpec([None], tf.string, name="sentences")

    def embed(sentences: tf.Tensor) -> tf.Tensor:
        return embed_text(table, sentences)

    call = tf.function(embed, input_signature=[sentences], autograph=False)
    serve = tf.function(
        lambda sentences: {"default": call(sentences)}, input_signature=[sentences], autograph=False
    )

    root = tf.train.Checkpoint()
    root.embeddings = table
    root.variables = [table]
    root.trainable_variables = [table]
    root.regularization_losses = []
    root.__call__ = call
    with staged_path(path, overwrite) as staging:
        tf.saved_model.save(root, str(staging), signatures={"serving_default": serve})
    return str(path)


def bert_encoder(
    path: str | os.PathLike[str],
    *,
    vocab_size: int = 100,
    hidden_size: int = 16,
    num_heads: int = 2,
    max_length: int = 32,
    seed: int = 0,
    overwrite: bool = True,
) -> str:
    """Write a one-layer BERT-like encoder with TF Hub's BERT inputs and outputs.

    ``__call__(inputs, training=False)`` takes a dict of int32 ``[B, S]`` tensors
    ``input_word_ids``, ``input_mask`` and ``input_type_ids`` (S up to ``max_length``)
    and returns a dict: ``pooled_output`` float32 ``[B, hidden_size]`` and
    ``sequence_output`` float32 ``[B, S, hidden_size]``. Signatures: ``serving_default``
    (both outputs) and ``encode`` (``sequence_output`` only). Dropout makes
    ``training=True`` differ from ``training=False``.

    Args:
        path: the folder to write.
        vocab_size: rows of the word embedding table.
        hidden_size: width H of every output.
        num_heads: attention heads; must divide ``hidden_size``.
        max_length: the longest sequence the position embedding covers.
        seed: seeds the weights and Dropout.
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: a size that is not a positive integer, or ``num_heads`` that does not
            divide ``hidden_size``.

    Example:
        >>> import tensorflow as tf
        >>> from hublayer.testing import bert_encoder
        >>> encoder = tf.saved_model.load(bert_encoder("/tmp/bert"))
        >>> ids = tf.ones([2, 8], tf.int32)
        >>> feed = dict(input_word_ids=ids, input_mask=ids, input_type_ids=0 * ids)
        >>> encoder(feed)["pooled_output"].shape
        TensorShape([2, 16])
    """
    for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size),
                        ("num_heads", num_heads), ("max_length", max_length)):  # fmt: skip
        check_positive(name, value)
    if hidden_size % num_heads:
        raise ValueError(
            "Expected num_heads to divide hidden_size. "
            f"Received: hidden_size={hidden_size}, num_heads={num_heads}."
        )
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in BERT_INPUTS}
    x = keras.layers.Embedding(vocab_size, hidden_size, name="word_embeddings")(
        inputs["input_word_ids"]
    )
    x = x + keras.layers.Embedding(2, hidden_size, name="type_embeddings")(inputs["input_type_ids"])
    x = _PositionEmbedding(max_length, name="position_embeddings")(x)
    x = keras.layers.LayerNormalization(name="embeddings_norm")(x)
    x = keras.layers.Dropout(0.1, seed=seed, name="embeddings_dropout")(x)
    mask = keras.ops.expand_dims(keras.ops.cast(inputs["input_mask"], "bool"), 1)
    attention = keras.layers.MultiHeadAttention(
        num_heads, hidden_size // num_heads, name="layer_0_attention"
    )(x, x, attention_mask=mask)
    x = keras.layers.LayerNormalization(name="layer_0_attention_norm")(x + attention)
    ffn = keras.layers.Dense(2 * hidden_size, activation="gelu", name="layer_0_intermediate")(x)
    ffn = keras.layers.Dense(hidden_size, name="layer_0_output")(ffn)
    sequence = keras.layers.LayerNormalization(name="layer_0_output_norm")(x + ffn)
    pooled = keras.layers.Dense(hidden_size, activation="tanh", name="pooler")(sequence[:, 0, :])
    model = keras.Model(
        inputs, {"pooled_output": pooled, "sequence_output": sequence}, name="bert_encoder"
    )
    draw_weights(model, np.random.default_rng(seed))
    return export_saved_model(
        model,
        path,
        signatures={"serving_default": None, "encode": ["sequence_output"]},
        overwrite=overwrite,
    )


class _PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to ``[B, S, H]`` inputs (S <= max_length)."""

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.embeddings = self.add_weight(
            shape=(self.max_length, input_shape[-1]), initializer="zeros", name="embeddings"
        )

    def call(self, inputs: Any) -> Any:
        length = keras.ops.shape(inputs)[1]
        return inputs + keras.ops.expand_dims(self.embeddings[:length], 0)
