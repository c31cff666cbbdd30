"""Op libraries: a TensorFlow Text model loads without a manual ``import tensorflow_text``.

The preprocessor is built in a subprocess that imports ``tensorflow_text``
(``tests/_tf_text_models.py``); every check that loads it runs in a fresh process that
never imports ``tensorflow_text`` itself, so only hublayer can have registered its ops.
With ``tensorflow_text`` made unimportable (a ``sys.meta_path`` blocker), each entry
point raises ``MissingExtraError`` naming the ops and the extra, before TensorFlow reads
the model.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

import hublayer as hub
from hublayer.errors import MissingExtraError
from hublayer.models._op_libraries import (
    ops_in_data,
    ops_in_folder,
    require_op_libraries,
)
from hublayer.models._scan_ops import libraries_of

TESTS = Path(__file__).parent

#: The builder's sentences and their token ids (tests/_tf_text_models.py EXPECTED).
EXPECTED = {
    "The cat sat.": [2, 4, 5, 6, 15, 3, 0, 0],
    "Hello, WORLD!": [2, 9, 1, 10, 16, 3, 0, 0],
    "Café playing": [2, 11, 12, 13, 3, 0, 0, 0],
    "": [2, 3, 0, 0, 0, 0, 0, 0],
    "the cat sat on the mat played": [2, 4, 5, 6, 7, 4, 8, 3],
}
TEXT_OPS = {"CaseFoldUTF8", "NormalizeUTF8", "WordpieceTokenizeWithOffsets"}

#: Makes ``import tensorflow_text`` fail, as on a machine without the ``[text]`` extra.
BLOCK_TEXT = """
import importlib.abc, sys

class NoText(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow_text" or name.startswith("tensorflow_text."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoText())
"""


def _run(script: str, *args: str, block: bool = False) -> dict[str, Any]:
    """Run ``script`` in a fresh process; it prints one JSON line last."""
    code = (BLOCK_TEXT if block else "") + textwrap.dedent(script)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT-style TF Text preprocessor SavedModel, built in a process of its own."""
    folder = tmp_path_factory.mktemp("tf-text") / "bert_preprocess"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(TESTS / "_tf_text_models.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return folder


@pytest.fixture(scope="module")
def loaded_fresh(preprocessor: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """inspect, load (also safe_mode=False and in place), KerasLayer and a ``.keras``
    save, in a process that never imports tensorflow_text; inspect comes first."""
    keras_file = tmp_path_factory.mktemp("tf-text-keras") / "preprocess.keras"
    script = """
    import json, sys
    path, keras_file, sentences = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    import keras
    import tensorflow as tf
    import hublayer as hub
    from hublayer.models._load import load_in_place

    out = {"text_before": "tensorflow_text" in sys.modules}
    info = hub.inspect(path)
    out["text_after_inspect"] = "tensorflow_text" in sys.modules
    out["inputs"] = [str(s) for s in info.input_specs]
    strings = tf.constant(sentences)
    out["load"] = hub.load(path)(strings)["input_word_ids"].numpy().tolist()
    unsafe = hub.load(path, safe_mode=False)
    out["load_unsafe"] = unsafe(strings)["input_word_ids"].numpy().tolist()
    in_place = load_in_place("file://" + path)
    out["in_place"] = in_place(strings)["input_word_ids"].numpy().tolist()
    text = keras.Input(shape=(), dtype="string")
    model = keras.Model(text, hub.KerasLayer(path)(text))
    got = model.predict(strings, verbose=0)
    out["layer"] = {key: value.tolist() for key, value in got.items()}
    model.save(keras_file)
    print(json.dumps(out))
    """
    result = _run(script, str(preprocessor), str(keras_file), json.dumps(list(EXPECTED)))
    result["keras_file"] = str(keras_file)
    return result


@pytest.mark.slow
def test_scan_classifies_tf_text_ops_with_no_finding(preprocessor: Path) -> None:
    report = hub.scan(preprocessor)

    text_ops = libraries_of(report.ops).get("tensorflow_text", [])
    assert set(text_ops) >= TEXT_OPS
    assert report.safe
    assert not [f for f in report.findings if f.op in text_ops]
    assert ops_in_folder(preprocessor) >= TEXT_OPS


@pytest.mark.slow
def test_inspect_load_and_keras_layer_register_tf_text(loaded_fresh: dict[str, Any]) -> None:
    want = list(EXPECTED.values())

    assert loaded_fresh["text_before"] is False
    assert loaded_fresh["text_after_inspect"] is True  # hublayer imported it
    assert loaded_fresh["inputs"] == ["sentences: string[None]"]
    assert loaded_fresh["load"] == want
    assert loaded_fresh["load_unsafe"] == want
    assert loaded_fresh["in_place"] == want
    layer = loaded_fresh["layer"]
    assert layer["input_word_ids"] == want
    assert layer["input_mask"][0] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert layer["input_type_ids"][0] == [0] * 8


@pytest.mark.slow
def test_keras_file_reloads_in_a_fresh_process(loaded_fresh: dict[str, Any]) -> None:
    script = """
    import json, sys
    keras_file, sentences = sys.argv[1], json.loads(sys.argv[2])
    import hublayer
    import keras
    import tensorflow as tf

    before = "tensorflow_text" in sys.modules
    model = keras.models.load_model(keras_file)
    got = model.predict(tf.constant(sentences), verbose=0)
    print(json.dumps({"before": before, "ids": got["input_word_ids"].tolist()}))
    """
    with zipfile.ZipFile(loaded_fresh["keras_file"]) as archive:
        config = json.loads(archive.read("config.json"))
    (layer,) = [c for c in config["config"]["layers"] if c["class_name"] == "KerasLayer"]
    result = _run(script, loaded_fresh["keras_file"], json.dumps(list(EXPECTED)))

    # The build config names the ops, so the reload registers TF Text before Keras loads
    # the embedded model (an error there would reach the user as Keras's ValueError).
    assert set(layer["build_config"]["library_ops"]) >= TEXT_OPS
    assert result["before"] is False
    assert result["ids"] == list(EXPECTED.values())


@pytest.mark.slow
def test_without_tf_text_every_entry_point_raises_missing_extra_error(
    preprocessor: Path, loaded_fresh: dict[str, Any]
) -> None:
    script = """
    import json, sys
    path, keras_file = sys.argv[1], sys.argv[2]
    import hublayer as hub
    from hublayer.errors import MissingExtraError

    def attempt(load):
        try:
            load()
        except MissingExtraError as error:
            return {
                "type": type(error).__name__, "message": str(error),
                "cli": error.cli_message(), "ops": list(error.ops), "extra": error.extra,
                "package": error.package, "handle": error.handle,
                "tf_imported": "tensorflow" in sys.modules,
            }
        except Exception as error:
            return {"type": type(error).__name__, "message": str(error)}
        return {"type": None}

    out = {
        "load": attempt(lambda: hub.load(path)),
        "inspect": attempt(lambda: hub.inspect(path)),
        "load_unsafe": attempt(lambda: hub.load(path, safe_mode=False)),
    }
    def in_place():
        from hublayer.models._load import load_in_place
        return load_in_place("file://" + path)
    out["in_place"] = attempt(in_place)
    out["layer"] = attempt(lambda: hub.KerasLayer(path))
    import keras
    out["keras_file"] = attempt(lambda: keras.models.load_model(keras_file))
    print(json.dumps(out))
    """
    result = _run(script, str(preprocessor), loaded_fresh["keras_file"], block=True)

    for entry, got in result.items():
        assert got["type"] == "MissingExtraError", (entry, got)
        assert "CaseFoldUTF8" in got["message"], entry
        assert 'pip install "hublayer[text]"' in got["message"], entry
        assert 'pip install "hublayer[text]"' in got["cli"], entry
        assert "not installed" in got["message"], entry
        assert set(got["ops"]) >= TEXT_OPS, entry
        assert (got["extra"], got["package"]) == ("text", "tensorflow-text"), entry
    # Raised before TensorFlow read the model: hub.load and hub.inspect of a local
    # folder had not even imported TensorFlow yet.
    assert result["load"]["tf_imported"] is False
    assert result["inspect"]["tf_imported"] is False
    assert result["load"]["handle"] == str(preprocessor)


def test_tensorflow_ops_need_no_library() -> None:
    assert require_op_libraries({"Conv2D": 3, "Relu": 3, "__inference_f_12": 1}) == ()
    assert require_op_libraries([]) == ()


class _Blocker(importlib.abc.MetaPathFinder):
    """Fails every import of ``tensorflow_text`` with ``error``."""

    def __init__(self, error: ImportError) -> None:
        self.error = error

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] == "tensorflow_text":
            raise self.error


def _block_text(monkeypatch: pytest.MonkeyPatch, error: ImportError) -> None:
    monkeypatch.setattr(sys, "meta_path", [_Blocker(error), *sys.meta_path])
    for name in [m for m in list(sys.modules) if m.split(".")[0] == "tensorflow_text"]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def without_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import tensorflow_text`` fails, as on a machine without the ``[text]`` extra."""
    _block_text(
        monkeypatch,
        ModuleNotFoundError("No module named 'tensorflow_text'", name="tensorflow_text"),
    )


@pytest.mark.usefixtures("without_text")
def test_missing_library_error_names_ops_extra_and_release() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require_op_libraries(["Conv2D", "CaseFoldUTF8", "CaseFoldUTF8"], handle="m/pre")

    error = caught.value
    assert isinstance(error, ImportError)
    assert error.ops == ("CaseFoldUTF8",)
    assert error.handle == "m/pre"
    message = str(error)
    assert "CaseFoldUTF8" in message
    assert "Conv2D" not in message
    assert "handle='m/pre'" in message
    assert 'pip install "hublayer[text]"' in message
    assert "tensorflow-text 2." in message  # the release matching the TensorFlow in use


def test_library_that_does_not_load_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tensorflow-text built for another TensorFlow: its kernels do not link.
    _block_text(monkeypatch, ImportError("undefined symbol: _ZN10tensorflow8OpKernel"))

    with pytest.raises(MissingExtraError, match="installed but does not load") as caught:
        require_op_libraries({"WordpieceTokenizeWithOffsets": 1})
    assert "undefined symbol" in str(caught.value)


@pytest.mark.slow
def test_ops_in_data_reads_without_tensorflow(preprocessor: Path) -> None:
    data = (preprocessor / "saved_model.pb").read_bytes()

    assert ops_in_data(data) >= TEXT_OPS
    assert ops_in_data(b"\xff not a saved model") == frozenset()
    assert ops_in_folder(preprocessor.parent) == frozenset()
