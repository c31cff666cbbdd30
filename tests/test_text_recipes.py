"""``preprocess=`` in every recipe: a TF Text preprocessor in front of an encoder.

The preprocessor is TensorFlow Text's ``BertTokenizer`` packed as TF Hub's BERT
preprocessors are (``tests/_tf_text_models.py``, built once per module in a subprocess,
sequence length 8); the encoder is ``hublayer.testing.bert_encoder``. Token ids of the
builder's sentences are known (``EXPECTED`` there): ``""`` -> ``[CLS] [SEP]``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow_text") is None:  # found, never imported here
    pytest.skip('needs pip install "hublayer[text]"', allow_module_level=True)

import keras
import tensorflow as tf

import hublayer
from hublayer import records, testing, train
from hublayer.embed import embed
from hublayer.errors import OutputExistsError, SignatureError, SpecMismatchError
from hublayer.layers import TextChain

BUILDER = Path(__file__).with_name("_tf_text_models.py")
CLASS_WORDS = ("the cat sat", "hello world !")  # class 0, class 1
LONG = "the cat sat on the mat played"  # 8 positions with [CLS] and [SEP]: fills them


def _preprocessors(root: Path, lengths: dict[str, int]) -> dict[str, str]:
    """Build the preprocessors in one subprocess, which imports tensorflow_text (this
    process must not: a test checks that hublayer registers the ops itself)."""
    calls = "; ".join(
        f"m.bert_preprocessor({str(root / name)!r}, {length})" for name, length in lengths.items()
    )
    subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BUILDER.parent)!r}); "
         f"import _tf_text_models as m; {calls}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return {name: str(root / name) for name in lengths}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("text-models")
    built = _preprocessors(root, {"pre": 8, "pre6": 6})
    return {**built, "enc": testing.bert_encoder(root / "enc", vocab_size=20)}


def _write(prefix: Path, texts: list[str], labels: list[int] | None = None) -> list[str]:
    with records.Writer(prefix, shards=1) as writer:
        for i, text in enumerate(texts):
            example: dict[str, Any] = {"review": text, "id": i}
            if labels is not None:
                example["label"] = labels[i]
            writer.write(records.encode_example(example))
    return [str(p) for p in writer.paths]


def _reviews(prefix: Path, count: int = 32) -> list[str]:
    labels = [i % 2 for i in range(count)]
    return _write(prefix, [CLASS_WORDS[y] for y in labels], labels)


def _by_hand(models: dict[str, str], texts: list[str]) -> np.ndarray:
    """The tutorial's chain, written out: preprocessor, encoder, pooled_output."""
    pre = hublayer.load(models["pre"])
    enc = hublayer.KerasLayer(models["enc"])
    tokens = pre(tf.constant(texts))
    feed = {k: tokens[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}
    return np.asarray(enc(feed)["pooled_output"])


# ------------------------------------------------------------------ the chain itself
def test_chain_matches_by_name_and_says_it_uses_pooled_output(
    models: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    assert "tensorflow_text" not in sys.modules  # hublayer imports it for the ops it scans
    texts = ["The cat sat.", "Hello, WORLD!"]
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        chain = TextChain(models["pre"], models["enc"])
        TextChain(models["pre"], models["enc"])  # said once, not per chain
    said = [r.getMessage() for r in caplog.records if "pooled_output" in r.getMessage()]
    assert len(said) == 1
    assert "pass output_key= to choose another" in said[0]
    assert chain.output_key == "pooled_output"
    np.testing.assert_allclose(chain(tf.constant(texts)), _by_hand(models, texts), atol=1e-6)


def test_empty_string_embeds_like_cls_sep(models: dict[str, str]) -> None:
    chain = TextChain(models["pre"], models["enc"])
    ids = tf.constant([[2, 3, 0, 0, 0, 0, 0, 0]], tf.int32)
    feed = {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32)}
    feed["input_type_ids"] = tf.zeros_like(ids)
    expected = hublayer.KerasLayer(models["enc"])(feed)["pooled_output"]
    np.testing.assert_allclose(chain(tf.constant([""])), expected, atol=1e-6)


def test_preprocessor_that_does_not_fit_the_encoder_lists_both_sides(
    models: dict[str, str], tmp_path: Path
) -> None:
    image_model = testing.image_feature_vector(tmp_path / "ifv", image_size=8, dim=4)
    with pytest.raises(SpecMismatchError) as caught:
        TextChain(models["pre"], image_model)
    message = str(caught.value)
    for name in ("input_word_ids", "input_mask", "input_type_ids", "inputs: float32"):
        assert name in message
    assert "preprocess=" in message
    assert caught.value.feature == "inputs"


def test_output_key_not_returned_lists_the_keys(models: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match=r"\['pooled_output', 'sequence_output'\]"):
        TextChain(models["pre"], models["enc"], output_key="pooled")


def test_keras_file_reloads_in_a_process_that_never_imported_tensorflow_text(
    models: dict[str, str], tmp_path: Path
) -> None:
    text = keras.Input((), dtype="string")
    model = keras.Model(text, keras.layers.Dense(3)(TextChain(models["pre"], models["enc"])(text)))
    model.save(tmp_path / "m.keras")
    sentences = ["The cat sat.", "", LONG]
    expected = model.predict(tf.constant(sentences), verbose=0)
    script = (
        "import sys, json, keras, tensorflow as tf, hublayer\n"
        "assert 'tensorflow_text' not in sys.modules\n"
        f"m = keras.models.load_model({str(tmp_path / 'm.keras')!r})\n"
        f"print(json.dumps(m.predict(tf.constant({sentences!r}), verbose=0).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_trained_model_keras_reads_its_embedded_models_not_the_originals(
    models: dict[str, str], tmp_path: Path
) -> None:
    """The saved ``model.keras`` is self-contained: with the encoder's folder gone and
    another preprocessor (sequence length 6) where the saved one was, a fresh process
    predicts exactly what the trained model did, so it read neither original."""
    pre, enc = tmp_path / "pre", tmp_path / "enc"
    shutil.copytree(models["pre"], pre)
    shutil.copytree(models["enc"], enc)
    result = train.fit_classifier(
        str(enc),
        _reviews(tmp_path / "train", count=8),
        preprocess=str(pre),
        epochs=1,
        batch_size=8,
        out_dir=tmp_path / "out",
        embedding_cache=False,
    )
    sentences = [*CLASS_WORDS, "", LONG]
    expected = result.model.predict(tf.constant(sentences), verbose=0)
    shutil.rmtree(enc)
    shutil.rmtree(pre)
    shutil.copytree(models["pre6"], pre)  # cuts LONG: reading it would change LONG's row
    script = (
        "import json, keras, tensorflow as tf, hublayer\n"
        f"m = keras.models.load_model({str(tmp_path / 'out' / 'model.keras')!r})\n"
        f"print(json.dumps(m.predict(tf.constant({sentences!r}), verbose=0).tolist()))\n"
    )
    env = {**os.environ, "HUBLAYER_OFFLINE": "1", "HUBLAYER_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_text_chain_config_keeps_what_matching_decided(models: dict[str, str]) -> None:
    chain = TextChain(models["pre"], models["enc"])
    config = chain.get_config()
    assert config["output_key"] == "pooled_output"
    assert config["matched"] == {
        "inputs": [{"name": "sentences", "dtype": "string", "shape": [None]}],
        "feeds": ["input_mask", "input_type_ids", "input_word_ids"],
        "mask_name": "input_mask",
        "seq_length": 8,
    }
    with pytest.raises(ValueError, match="save the model again"):
        TextChain.from_config({**config, "matched": {"feeds": "input_word_ids"}})


def test_a_chain_file_without_what_matching_decided_is_refused_not_read_from_the_originals(
    models: dict[str, str], tmp_path: Path
) -> None:
    """A file whose chain config lacks 'matched' (as written before it was saved) makes
    the chain ask its parts for their models before the archive's copies arrive: the
    load says so instead of silently using the original folders."""
    text = keras.Input((), dtype="string")
    keras.Model(text, TextChain(models["pre"], models["enc"])(text)).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as source:
        files = {name: source.read(name) for name in source.namelist()}
    config = json.loads(files["config.json"])
    chain = next(c for c in config["config"]["layers"] if c["class_name"] == "TextChain")
    del chain["config"]["matched"]
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    with pytest.raises(ValueError, match="asks for its model too early") as caught:
        keras.models.load_model(tmp_path / "old.keras")
    assert any(f"handle={models[part]!r}" in str(caught.value) for part in ("pre", "enc"))


# ----------------------------------------------------------------------- the recipes
def test_fit_classifier_takes_strings_and_saves_a_model_of_strings(
    models: dict[str, str], tmp_path: Path
) -> None:
    files = _reviews(tmp_path / "train")
    result = train.fit_classifier(
        models["enc"],
        files,
        preprocess=models["pre"],
        output_key="pooled_output",
        epochs=25,
        learning_rate=0.05,
        batch_size=8,
        out_dir=tmp_path / "out",
        embedding_cache=tmp_path / "cache",
    )
    assert result.metrics["splits"]["train"]["accuracy"] == 1.0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["preprocess"] == models["pre"]
    assert config["output_key"] == "pooled_output"
    reloaded = keras.models.load_model(tmp_path / "out" / "model.keras")
    probabilities = reloaded.predict(tf.constant(list(CLASS_WORDS)), verbose=0)
    assert probabilities.argmax(axis=1).tolist() == [0, 1]
    scores = train.evaluate(tmp_path / "out", files)
    assert scores["accuracy"] == 1.0
    assert scores["examples"] == 32


def test_embedding_cache_keys_on_the_preprocessor(models: dict[str, str], tmp_path: Path) -> None:
    from hublayer.train._backbone import fingerprint_model

    same = fingerprint_model(TextChain(models["pre"], models["enc"]))
    assert fingerprint_model(TextChain(models["pre"], models["enc"])) == same
    assert fingerprint_model(TextChain(models["pre6"], models["enc"])) != same
    files = _reviews(tmp_path / "train", count=8)
    cache = tmp_path / "cache"
    for pre in (models["pre"], models["pre6"]):
        train.fit_classifier(
            models["enc"], files, preprocess=pre, epochs=1, batch_size=8, embedding_cache=cache
        )
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # one entry per preprocessor


def test_fine_tune_trains_the_encoder(models: dict[str, str], tmp_path: Path) -> None:
    before = [np.array(w) for w in hublayer.KerasLayer(models["enc"]).weights]
    moved: list[int] = []

    class Moved(keras.callbacks.Callback):  # phase 2 may keep phase 1's weights as best
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            chains = [getattr(layer, "backbone", None) for layer in self.model.layers]
            chain = next((c for c in chains if isinstance(c, TextChain)), None)
            if chain is not None:
                assert not chain.preprocessor.trainable_weights
                after = [np.array(w) for w in chain.encoder.weights]
                moved.append(sum(not np.allclose(a, b) for a, b in zip(before, after, strict=True)))

    train.fit_classifier(
        models["enc"],
        _reviews(tmp_path / "train", count=16),
        preprocess=models["pre"],
        mode="fine_tune",
        epochs=1,
        fine_tune_epochs=1,
        batch_size=8,
        embedding_cache=False,
        callbacks=[Moved()],
    )
    assert len(moved) == 2  # no cache: the head epoch runs the classifier too
    assert moved[0] == 0  # frozen while the head trains
    assert moved[1] > len(before) // 2  # trained in the fine-tune epoch


def test_image_bytes_in_the_text_feature_are_refused(
    models: dict[str, str], tmp_path: Path
) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    with records.Writer(tmp_path / "photos", shards=1) as writer:
        for i in range(4):
            writer.write(records.encode_example({"review": buffer.getvalue(), "label": i % 2}))
    with pytest.raises(SpecMismatchError, match="'review'") as caught:
        train.fit_classifier(
            models["enc"], writer.paths, preprocess=models["pre"], pipeline={"text": "review"}
        )
    assert "images" in str(caught.value)
    assert caught.value.feature == "review"


def test_training_on_ray_with_preprocess_names_the_local_engine(models: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="engine='local'"):
        train.fit_classifier(models["enc"], "x.tfrecord", preprocess=models["pre"], engine="ray")


def test_embed_with_preprocess_equals_the_chain_and_says_truncation_once(
    models: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = ["The cat sat.", "", LONG, LONG + " again", "hello world"]
    files = _write(tmp_path / "data", texts)
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        result = embed(
            models["enc"], files, tmp_path / "out", preprocess=models["pre"], keep=["id"]
        )
    assert result.rows == 5
    said = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(said) == 1
    assert "2 of 5 sentence(s) filled all 8 positions" in said[0]
    rows = [records.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(result.outputs)]
    got = np.stack([row["embedding"] for row in sorted(rows, key=lambda r: int(r["id"][0]))])
    np.testing.assert_allclose(got, _by_hand(models, texts), atol=1e-5)
    again = embed(models["enc"], files, tmp_path / "out", preprocess=models["pre"], keep=["id"])
    assert again.shards_skipped == 1
    with pytest.raises(OutputExistsError):  # another preprocessor
        embed(models["enc"], files, tmp_path / "out", preprocess=models["pre6"])


def test_records_dataset_runs_the_preprocessor_in_the_pipeline(
    models: dict[str, str], tmp_path: Path
) -> None:
    files = _write(tmp_path / "data", ["The cat sat.", ""], [0, 1])
    encoder = hublayer.KerasLayer(models["enc"])
    data = records.dataset(
        files, batch_size=2, label="label", shuffle=False, preprocess=models["pre"],
        for_model=encoder,
    )  # fmt: skip
    features, labels = next(iter(data))
    assert sorted(features) == ["input_mask", "input_type_ids", "input_word_ids"]
    assert features["input_word_ids"].numpy().tolist() == [
        [2, 4, 5, 6, 15, 3, 0, 0],
        [2, 3, 0, 0, 0, 0, 0, 0],
    ]
    assert labels.numpy().tolist() == [0, 1]
    image_model = testing.image_feature_vector(tmp_path / "ifv", image_size=8, dim=4)
    with pytest.raises(SpecMismatchError, match="input_word_ids"):
        records.dataset(
            files,
            batch_size=2,
            preprocess=models["pre"],
            for_model=hublayer.KerasLayer(image_model),
        )


def test_embed_on_ray_with_preprocess_equals_the_local_engine(
    models: dict[str, str], tmp_path: Path, local_ray: Any
) -> None:
    files = _write(tmp_path / "data", ["The cat sat.", "", LONG, "hello world"])
    rows = {}
    for engine in ("local", "ray"):
        result = embed(
            models["enc"], files, tmp_path / engine, preprocess=models["pre"], keep=["id"],
            engine=engine, num_workers=1 if engine == "ray" else None,
        )  # fmt: skip
        assert result.rows == 4
        found = [records.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(result.outputs)]
        rows[engine] = {int(row["id"][0]): row["embedding"] for row in found}
    assert sorted(rows["ray"]) == [0, 1, 2, 3]
    for key, value in rows["local"].items():
        np.testing.assert_allclose(rows["ray"][key], value, atol=1e-5)


_JAX_FIT = """
import sys, keras, hublayer
from hublayer import records
encoder_path, preprocess, *files = sys.argv[1:]
encoder = hublayer.KerasLayer(encoder_path, trainable=True)  # converted by tf2jax
try:
    hublayer.KerasLayer(preprocess)
except hublayer.errors.BackendError as error:
    assert "records.dataset(" in str(error) and "preprocess=" in str(error), error
else:
    raise AssertionError("a TF Text preprocessor built on JAX")
data = records.dataset(files, batch_size=2, label="label", preprocess=preprocess,
                       for_model=encoder, repeat=True, seed=0)
names = ("input_word_ids", "input_mask", "input_type_ids")
inputs = {n: keras.Input((8,), dtype="int32", name=n) for n in names}
model = keras.Model(inputs, keras.layers.Dense(2)(encoder(inputs)["pooled_output"]))
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
history = model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
print(keras.backend.backend(), history.history["loss"][0])
"""


@pytest.mark.skipif(importlib.util.find_spec("tf2jax") is None, reason="needs hublayer[jax]")
def test_a_jax_model_trains_on_text_through_the_pipeline(
    models: dict[str, str], tmp_path: Path
) -> None:
    files = _reviews(tmp_path / "train", count=8)
    done = subprocess.run(
        [sys.executable, "-c", _JAX_FIT, models["enc"], models["pre"], *files],
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    backend, loss = done.stdout.split()[-2:]
    assert backend == "jax"
    assert np.isfinite(float(loss))


# ---------------------------------------------------------------------------- the CLI
def test_cli_train_and_embed_take_preprocess_and_output_key(
    models: dict[str, str], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from hublayer.cli._app import cli

    files = _reviews(tmp_path / "train", count=8)
    runner = CliRunner()
    trained = runner.invoke(
        cli,
        ["train", "--model", models["enc"], "--preprocess", models["pre"], "--output-key",
         "pooled_output", "--train", files[0], "--text", "review", "--epochs", "1",
         "--out", str(tmp_path / "run"), "--no-progress"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "model.keras").is_file()
    embedded = runner.invoke(
        cli,
        ["embed", models["enc"], files[0], "--out", str(tmp_path / "emb"), "--preprocess",
         models["pre"], "--output-key", "sequence_output", "--no-progress"],
    )  # fmt: skip
    assert embedded.exit_code == 0, embedded.output
    row = records.decode_example(
        next(
            iter(
                tf.data.TFRecordDataset(
                    files and [str(p) for p in sorted((tmp_path / "emb").glob("*.tfrecord"))]
                )
            )
        ).numpy()
    )
    assert row["embedding"].shape == (8 * 16,)  # the whole sequence output, flattened
    wrong = runner.invoke(
        cli,
        ["embed", models["enc"], files[0], "--out", str(tmp_path / "e2"), "--preprocess",
         models["pre"], "--output-key", "nope"],
    )  # fmt: skip
    assert wrong.exit_code != 0
    assert "--output-key one of" in wrong.output


def _exported_encoder(path: Path) -> str:
    """A signature-only encoder returning a dict, as Keras 3's ``model.export()`` writes
    most new Kaggle models: no ``__call__``, one endpoint, two outputs."""
    names = ("input_word_ids", "input_mask", "input_type_ids")
    inputs = {n: keras.Input((None,), dtype="int32", name=n) for n in names}
    tokens = keras.layers.Embedding(20, 4)(inputs["input_word_ids"])
    model = keras.Model(
        inputs, {"pooled_output": keras.ops.mean(tokens, axis=1), "sequence_output": tokens}
    )
    model.export(str(path), verbose=False)
    return str(path)


def test_a_signature_only_encoder_returning_a_dict_takes_preprocess(
    models: dict[str, str], tmp_path: Path
) -> None:
    encoder = _exported_encoder(tmp_path / "export")
    texts = ["The cat sat.", "hello world", ""]
    result = embed(encoder, _write(tmp_path / "data", texts), tmp_path / "out",
                   preprocess=models["pre"], keep=["id"])  # fmt: skip
    assert result.rows == 3
    rows = [records.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(result.outputs)]
    got = np.stack([row["embedding"] for row in sorted(rows, key=lambda r: int(r["id"][0]))])
    by_hand = hublayer.KerasLayer(encoder, signature="serving_default",
                                  signature_outputs_as_dict=True)  # fmt: skip
    tokens = hublayer.load(models["pre"])(tf.constant(texts))
    feed = {k: tokens[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}
    np.testing.assert_allclose(got, np.asarray(by_hand(feed)["pooled_output"]), atol=1e-6)
    chain = TextChain(models["pre"], encoder, output_key="sequence_output")
    assert chain(tf.constant(texts)).shape == (3, 8, 4)
