"""Every malicious model is caught by ``scan`` and refused on load before it touches a file.

Four op families (write, read, list, print to a file) in six hiding places (``__call__``
without a signature, a signature only, a ``while_loop`` body, a ``tf.cond`` branch, a
tf.data ``map`` function, a function called from a function), built with plain TF.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import hublayer as hub
from hublayer.errors import HublayerError, UnsafeModelError
from hublayer.testing import UNSAFE_FAMILIES, UNSAFE_PLACES, unsafe_model

CASES = [(family, place) for family in UNSAFE_FAMILIES for place in UNSAFE_PLACES]


@functools.cache
def _built() -> dict[tuple[str, str], tuple[Path, Path]]:
    """(family, place) -> (model folder, the file it would touch); built once per process."""
    root = Path(tempfile.mkdtemp(prefix="hublayer-scan-tests-"))
    built = {}
    for family, place in CASES:
        target = root / "victim" / f"{family}-{place}.txt"
        built[family, place] = (
            unsafe_model(root / f"{family}-{place}", family, place, target=target),
            target,
        )
    (root / "victim").mkdir()
    return built


def _model(family: str, place: str, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy (loads must not share one folder) and its target, fresh each test."""
    source, target = _built()[family, place]
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    if target.exists():
        target.unlink()
    if family == "read":
        target.write_text("secret")
    return copy, target


@pytest.mark.parametrize(("family", "place"), CASES)
def test_scan_flags_every_family_in_every_place(family: str, place: str, tmp_path: Path) -> None:
    path, _ = _model(family, place, tmp_path)
    report = hub.scan(path)
    assert not report.safe
    ops = {f.op for f in report.high}
    assert ops == {UNSAFE_FAMILIES[family]}
    finding = report.high[0]
    assert finding.function.startswith(("__inference", "while_body", "cond_true"))
    if place == "while_body":
        assert finding.function.startswith("while_body")
    if place == "cond_branch":
        assert finding.function.startswith("cond_true")
    if place == "dataset_map":
        assert "Dataset_map" in finding.function
    assert UNSAFE_FAMILIES[family] in str(report)
    assert "UNSAFE" in str(report)


def _call(model: object) -> None:
    x = tf.ones([1, 4])
    signatures = getattr(model, "signatures", {})
    if "serving_default" in signatures:
        signatures["serving_default"](x)
    if callable(model):
        model(x)


@pytest.mark.parametrize("place", UNSAFE_PLACES)
def test_write_is_refused_before_any_file_is_written(place: str, tmp_path: Path) -> None:
    path, target = _model("write", place, tmp_path)
    with pytest.raises(UnsafeModelError) as raised:
        hub.load(path)
    with pytest.raises(UnsafeModelError):
        hub.KerasLayer(path)
    assert not target.exists()
    error = raised.value
    assert isinstance(error, PermissionError)
    assert isinstance(error, HublayerError)
    assert "WriteFile in " in str(error)
    assert "safe_mode=False" in str(error)
    assert "HUBLAYER_SAFE_MODE=0" in str(error)
    assert "Nothing of the model ran" in str(error)
    assert error.findings
    assert error.findings[0].op == "WriteFile"
    # The model really writes: with the scan off it loads, and calling it writes the file.
    _call(hub.load(path, safe_mode=False))
    assert target.read_text() == "pwned"


@pytest.mark.parametrize("family", ["read", "list", "print_file"])
def test_other_families_are_refused_and_load_with_safe_mode_off(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, target = _model(family, "while_body", tmp_path)
    with pytest.raises(UnsafeModelError, match=UNSAFE_FAMILIES[family]):
        hub.KerasLayer(path)
    layer = hub.KerasLayer(path, safe_mode=False)
    assert layer(np.ones([1, 4], np.float32)).shape == (1, 4)
    if family == "print_file":
        assert "pwned" in target.read_text()
    monkeypatch.setenv("HUBLAYER_SAFE_MODE", "0")
    assert hub.load(path) is not None


def test_cli_exit_status_and_json(tmp_path: Path) -> None:
    from hublayer.cli import main

    bad, _ = _model("write", "nested_function", tmp_path)
    good = hub.testing.image_feature_vector(tmp_path / "good", image_size=8, dim=4)
    assert main(["scan", str(good)]) == 0
    assert main(["scan", str(good), str(bad)]) == 1
    assert main(["scan", str(tmp_path / "nothing-here")]) == 2
    assert main(["scan"]) == 2


def test_cli_json_lists_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hublayer.cli import main

    bad, _ = _model("list", "cond_branch", tmp_path)
    assert main(["scan", "--json", str(bad)]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["safe"] is False
    assert [f["op"] for f in report["findings"]] == ["MatchingFiles"]
    assert report["findings"][0]["function"].startswith("cond_true")


def test_cli_runs_without_tensorflow(tmp_path: Path) -> None:
    bad, _ = _model("write", "while_body", tmp_path)
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from hublayer.cli import main\n"
        f"status = main(['scan', {str(bad)!r}])\n"
        "assert 'keras' not in sys.modules\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "WriteFile" in done.stdout
    assert "while_body" in done.stdout


def test_inspect_and_fit_classifier_refuse_too(tmp_path: Path) -> None:
    path, target = _model("write", "cond_branch", tmp_path)
    with pytest.raises(UnsafeModelError, match="WriteFile in cond_true"):
        hub.inspect(path)
    records = hub.testing.image_records(tmp_path / "records", 8, size=8)
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        hub.train.fit_classifier(path, records, out_dir=tmp_path / "run", epochs=1)
    assert not target.exists()
