"""A TF1-style SavedModel: a ``tf.compat.v1`` graph with signatures and nothing else.

This is how models exported from TF1 (and TF1 Hub modules converted to SavedModel) look
once loaded in TF2: ``tf.saved_model.load`` gives an object with ``signatures`` and
``variables``, but no ``__call__``, no ``trainable_variables`` and no
``regularization_losses``. Only inference is possible.

Tags: the graph is saved under the empty tag set, ``[]`` (TF1 Hub modules used the
empty set for inference and ``{"train"}`` for training). ``train_graph=True`` adds the
same graph under ``["train"]`` as well; a SavedModel with two tag sets must then be
loaded with an explicit ``tags=[]`` or ``tags=["train"]``.

Example:
    >>> import tensorflow as tf
    >>> from hublayer.testing import tf1_saved_model
    >>> model = tf.saved_model.load(tf1_saved_model("/tmp/tf1"))
    >>> sorted(model.signatures)
    ['default', 'tokens']
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from hublayer.testing._archive import staged_path
from hublayer.testing._models import check_positive
from hublayer.testing._text_models import embed_text, embed_words

__all__ = ["tf1_saved_model"]


def tf1_saved_model(
    path: str | os.PathLike[str],
    *,
    dim: int = 8,
    num_buckets: int = 100,
    seed: int = 0,
    train_graph: bool = False,
    overwrite: bool = True,
) -> str:
    """Write a TF1-style text embedding SavedModel with signatures ``default`` and ``tokens``.

    Signatures (both return ``{"default": float32 [B, dim]}``, the same embedding for the
    same words):

    - ``default``: ``default`` ``tf.string [B]``, whole sentences (split on spaces and
      punctuation, lower-cased);
    - ``tokens``: ``tokens`` ``tf.string [B, T]`` and ``sequence_len`` ``int32 [B]``,
      already split words, of which the first ``sequence_len`` count.

    The embedding table is a non-trainable variable, so nothing is exposed for training.

    Args:
        path: the folder to write.
        dim: embedding size.
        num_buckets: rows of the hashed embedding table.
        seed: seeds the table.
        train_graph: also save the graph under the ``["train"]`` tag set.
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: ``dim`` or ``num_buckets`` is not a positive integer.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> import tensorflow as tf
        >>> from hublayer.testing import tf1_saved_model
        >>> model = tf.saved_model.load(tf1_saved_model("/tmp/tf1", dim=4))
        >>> model.signatures["default"](default=tf.constant(["a b"]))["default"].shape
        TensorShape([1, 4])
    """
    check_positive("dim", dim)
    check_positive("num_buckets", num_buckets)
    values = np.random.default_rng(seed).normal(0.0, dim**-0.5, (num_buckets, dim))
    graph = tf.Graph()
    with graph.as_default():
        table = tf.compat.v1.get_variable(
            "embeddings", initializer=values.astype("float32"), trainable=False
        )
        sentences = tf.compat.v1.placeholder(tf.string, [None], name="sentences")
        tokens = tf.compat.v1.placeholder(tf.string, [None, None], name="tokens")
        lengths = tf.compat.v1.placeholder(tf.int32, [None], name="sequence_len")
        words = tf.RaggedTensor.from_tensor(tf.strings.lower(tokens), lengths=lengths)
        from_tokens = embed_words(table, words)
        signature_def = tf.compat.v1.saved_model.predict_signature_def
        signatures = {
            "default": signature_def(
                {"default": sentences}, {"default": embed_text(table, sentences)}
            ),
            "tokens": signature_def(
                {"tokens": tokens, "sequence_len": lengths}, {"default": from_tokens}
            ),
        }
        with (
            tf.compat.v1.Session(graph=graph) as session,
            staged_path(path, overwrite) as staging,
        ):
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(staging))
            builder.add_meta_graph_and_variables(session, [], signature_def_map=signatures)
            if train_graph:
                builder.add_meta_graph(["train"], signature_def_map=signatures)
            builder.save()
    return str(path)
