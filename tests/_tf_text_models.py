"""A BERT-style TensorFlow Text preprocessor, built as ``bert_en_uncased_preprocess`` is.

``tensorflow_text.BertTokenizer`` over a tiny vocabulary (a model asset, read through a
``StaticVocabularyTable``), then the packing of TF Hub's BERT preprocessors: ``[CLS]``
tokens ``[SEP]``, trimmed to ``seq_length``, padded, as ``input_word_ids``, ``input_mask``
and ``input_type_ids`` (int32). Lower-casing and accent folding come from TF Text's
``CaseFoldUTF8`` and ``NormalizeUTF8`` ops, WordPiece from ``WordpieceTokenizeWithOffsets``.

Importing this module imports ``tensorflow_text``. Tests run it as a script in a
subprocess, so that their own process (and the processes that load the model) have not
imported it: ``python tests/_tf_text_models.py OUT_DIR [SEQ_LENGTH]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

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


class BertPreprocess(tf.Module):
    """Strings ``[B]`` -> the three int32 ``[B, seq_length]`` inputs of a BERT encoder."""

    def __init__(self, vocab_file: str, seq_length: int) -> None:
        super().__init__()
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
        self.cls_id = VOCAB.index("[CLS]")
        self.sep_id = VOCAB.index("[SEP]")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        tokens = self.tokenizer.tokenize(sentences).merge_dims(-2, -1)
        trimmed = text.RoundRobinTrimmer(max_seq_length=self.seq_length - 2).trim([tokens])
        ids, type_ids = text.combine_segments(
            trimmed, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        word_ids, mask = text.pad_model_inputs(ids, max_seq_length=self.seq_length)
        type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=self.seq_length)
        return {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
        }


def bert_preprocessor(path: str | Path, seq_length: int = 8) -> str:
    """Write the preprocessor SavedModel to ``path`` (its vocabulary next to it first)."""
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    vocab = folder.parent / f"{folder.name}-vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    module = BertPreprocess(str(vocab), seq_length)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    return str(folder)


if __name__ == "__main__":
    bert_preprocessor(sys.argv[1], *(int(n) for n in sys.argv[2:3]))
