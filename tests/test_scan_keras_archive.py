"""``.keras`` archives an attacker crafts: names that hide a SavedModel, symlink members,
a config that switches its own scan off, a handle outside the archive, bad input.

Each hiding place is shown to really work with plain ``zipfile`` extraction (what Keras
runs), then refused three ways: a high finding from ``hublayer.scan``,
``UnsafeModelError`` from ``hublayer.load`` (and plain Keras's ``load_model`` fails
through the layer's own scan), and exit 1 from ``hublayer scan``.
"""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import hublayer as hub
from hublayer import testing
from hublayer.cli._app import cli
from hublayer.errors import InvalidModelError, UnsafeModelError

EMBEDDED = "assets/layers/keras_layer/saved_model/saved_model.pb"

Edit = Callable[[zipfile.ZipInfo, bytes], list[tuple[zipfile.ZipInfo | str, bytes]]]


def _clean(tmp_path: Path, *, embed: bool = True) -> tuple[Path, Path]:
    """A .keras file saved by hublayer around a small model, and that model's folder."""
    handle = Path(testing.image_feature_vector(tmp_path / "ifv", image_size=8, dim=4))
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), hub.KerasLayer(str(handle), embed_saved_model=embed)]
    )
    path = tmp_path / f"clean-{embed}.keras"
    model.save(path)
    return path, handle


def _bad(tmp_path: Path) -> tuple[Path, Path]:
    victim = tmp_path / "victim.txt"
    return Path(
        testing.unsafe_model(tmp_path / "bad", "write", "while_body", target=victim)
    ), victim


def _rewrite(source: Path, target: Path, edit: Edit) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            for name, data in edit(info, old.read(info)):
                new.writestr(name, data)
    return target


def _refused(path: Path, *ops: str) -> None:
    report = hub.scan(path)
    assert not report.safe
    assert set(ops) <= {f.op for f in report.high}, report
    with pytest.raises(UnsafeModelError):
        hub.load(path)
    result = CliRunner().invoke(cli, ["scan", str(path)])
    assert result.exit_code == 1, result.output
    assert "UNSAFE" in result.output


HIDDEN_NAMES = {
    "trailing_dot": EMBEDDED + "/.",
    "dot_component": EMBEDDED.replace("/saved_model/", "/saved_model/./"),
    "double_slash": EMBEDDED.replace("/saved_model/", "/saved_model//"),
    "absolute": "/" + EMBEDDED,
    "dot_dot": "../" + EMBEDDED,
}


@pytest.mark.parametrize("how", sorted(HIDDEN_NAMES))
def test_an_embedded_model_under_a_name_that_extracts_as_saved_model_pb_is_refused(
    how: str, tmp_path: Path
) -> None:
    clean, _ = _clean(tmp_path)
    bad, victim = _bad(tmp_path)
    name = HIDDEN_NAMES[how]

    def hide(info: zipfile.ZipInfo, data: bytes) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
        if info.filename == EMBEDDED:
            return [(name, (bad / "saved_model.pb").read_bytes())]
        return [(info, data)]

    evil = _rewrite(clean, tmp_path / "evil.keras", hide)
    # What Keras runs (DiskIOStore -> zipfile.extractall) writes it as saved_model.pb.
    with zipfile.ZipFile(evil) as archive:
        assert EMBEDDED not in archive.namelist()
        archive.extractall(tmp_path / "extracted")
    extracted = tmp_path / "extracted" / EMBEDDED
    assert extracted.read_bytes() == (bad / "saved_model.pb").read_bytes()

    report = hub.scan(evil)
    member = [f for f in report.high if f.op == "(member)"]
    assert [f.file for f in member] == [EMBEDDED]
    assert "WriteFile" in {f.op for f in report.high}  # the hidden model is scanned too
    _refused(evil, "(member)", "WriteFile")
    # Plain Keras: the layer scans the copy Keras extracted and refuses it, on every visit
    # (Keras's own filter skips absolute and '..' names: the layer then finds no model).
    with pytest.raises(
        ValueError, match="WriteFile" if how not in ("absolute", "dot_dot") else "neither"
    ):
        keras.saving.load_model(evil)
    assert not victim.exists()


def test_a_second_member_of_the_same_name_wins_on_extraction_and_is_refused(
    tmp_path: Path,
) -> None:
    clean, _ = _clean(tmp_path)
    bad, victim = _bad(tmp_path)

    def twice(info: zipfile.ZipInfo, data: bytes) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
        if info.filename == EMBEDDED:
            case = "assets/layers/keras_layer/saved_model/Saved_Model.pb"  # macOS, Windows
            return [(info, data), (case, (bad / "saved_model.pb").read_bytes())]
        if info.filename == "assets/layers/keras_layer/hublayer.json":
            return [(info, data), (EMBEDDED, (bad / "saved_model.pb").read_bytes())]
        return [(info, data)]

    with pytest.warns(UserWarning, match="Duplicate name"):
        evil = _rewrite(clean, tmp_path / "evil.keras", twice)
    with zipfile.ZipFile(evil) as archive:
        archive.extractall(tmp_path / "extracted")
    assert (tmp_path / "extracted" / EMBEDDED).read_bytes() == (bad / "saved_model.pb").read_bytes()
    report = hub.scan(evil)
    details = [f.detail for f in report.high if f.op == "(member)"]
    assert len(details) == 2
    assert all("same extracted name" in d for d in details)
    _refused(evil, "(member)", "WriteFile")
    with pytest.raises(ValueError, match="WriteFile"):
        keras.saving.load_model(evil)
    assert not victim.exists()


def test_backslash_names_and_symlink_members_are_refused(tmp_path: Path) -> None:
    clean, _ = _clean(tmp_path)

    def add(info: zipfile.ZipInfo, data: bytes) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
        if info.filename != "metadata.json":
            return [(info, data)]
        link = zipfile.ZipInfo("assets/layers/keras_layer/saved_model/assets/vocab.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        return [(info, data), (link, b"/etc/passwd"), ("assets\\evil.pb", b"x")]

    evil = _rewrite(clean, tmp_path / "evil.keras", add)
    report = hub.scan(evil)
    assert sorted((f.op, f.file) for f in report.high) == [
        ("(link)", "assets/layers/keras_layer/saved_model/assets/vocab.txt"),
        ("(member)", "assets/evil.pb"),
    ]
    _refused(evil, "(link)", "(member)")


def test_clean_archives_saved_by_hublayer_scan_clean_and_load(tmp_path: Path) -> None:
    for embed in (True, False):
        path, handle = _clean(tmp_path / str(embed), embed=embed)
        report = hub.scan(path)
        assert report.safe, report
        if embed:
            assert report.findings == ()
            assert EMBEDDED in report.files
        else:  # the model is outside: scanned here, as it will be on reload
            [finding] = report.findings
            assert (finding.op, finding.severity, finding.detail) == (
                "(external handle)",
                "medium",
                str(handle),
            )
            assert f"{handle}/saved_model.pb" in report.files
        x = np.ones([1, 8, 8, 3], np.float32)
        assert keras.saving.load_model(path)(x).shape == (1, 4)
        assert hub.load(path)(x).shape == (1, 4)
        result = CliRunner().invoke(cli, ["scan", str(path)])
        assert result.exit_code == 0, result.output


def _with_config(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    def edit(info: zipfile.ZipInfo, data: bytes) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
        if info.filename != "config.json":
            return [(info, data)]
        config = json.loads(data)
        change(config["config"]["layers"][-1]["config"])
        return [(info, json.dumps(config).encode())]

    return _rewrite(source, target, edit)


def test_a_config_cannot_switch_off_the_scan_of_the_handle_it_loads(tmp_path: Path) -> None:
    clean, _ = _clean(tmp_path, embed=False)
    bad, victim = _bad(tmp_path)

    def point_at_bad(config: dict) -> None:
        config.update(handle=str(bad), safe_mode=False)

    evil = _with_config(clean, tmp_path / "evil.keras", point_at_bad)
    report = hub.scan(evil)
    # The external handle is scanned as part of the report, its findings included.
    assert [(f.op, f.file) for f in report.high] == [("WriteFile", f"{bad}/saved_model.pb")]
    assert {"(external handle)", "KerasLayer"} <= {f.op for f in report.findings}
    _refused(evil, "WriteFile")
    # Plain Keras: from_config drops safe_mode, so the reload scans the handle (on).
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        keras.saving.load_model(evil)
    assert not victim.exists()
    layer = hub.KerasLayer.from_config({"handle": str(bad), "safe_mode": False})
    assert layer._options.safe_mode is None
    with pytest.raises(UnsafeModelError):
        layer.build()
    trusted = hub.KerasLayer(str(testing.image_feature_vector(tmp_path / "t")), safe_mode=False)
    assert "safe_mode" not in trusted.get_config()


def test_a_remote_external_handle_is_a_medium_finding(tmp_path: Path) -> None:
    clean, _ = _clean(tmp_path, embed=False)
    remote = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
    path = _with_config(clean, tmp_path / "remote.keras", lambda c: c.update(handle=remote))
    report = hub.scan(path)
    assert report.safe
    [finding] = report.findings
    assert (finding.op, finding.severity, finding.detail) == ("(external handle)", "medium", remote)
    assert "scanned when it loads" in finding.why


def test_bad_input_is_an_invalid_model_error(tmp_path: Path) -> None:
    not_zip = tmp_path / "model.keras"
    not_zip.write_bytes(b"not a zip at all")
    with pytest.raises(InvalidModelError, match="not a zip"):
        hub.scan(not_zip)
    with pytest.raises(InvalidModelError):
        hub.load(not_zip)
    result = CliRunner().invoke(cli, ["scan", str(not_zip)])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output
    assert "Traceback" not in result.output

    clean, _ = _clean(tmp_path)

    def garbage(info: zipfile.ZipInfo, data: bytes) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
        return [(info, data[: len(data) // 2] if info.filename == EMBEDDED else data)]

    cut = _rewrite(clean, tmp_path / "cut.keras", garbage)
    with pytest.raises(InvalidModelError, match=r"saved_model\.pb") as raised:
        hub.scan(cut)
    assert str(cut) in str(raised.value)
    with pytest.raises(InvalidModelError):
        hub.load(cut)
    result = CliRunner().invoke(cli, ["scan", str(cut)])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output
