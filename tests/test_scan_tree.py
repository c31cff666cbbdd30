"""The model folder itself: no link of any kind, and no file that cannot be parsed.

Each trick is built as an attacker would (``os.symlink`` of ``variables/`` to another
model's folder, ``os.link`` of an asset to a "secret"), shown to really reach the file
through TensorFlow's own file API, then refused three ways: a high finding from
``hublayer.scan``, ``UnsafeModelError`` from ``hublayer.load`` and ``KerasLayer``, and a
non-zero exit from ``hublayer scan``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from click.testing import CliRunner

import hublayer as hub
from hublayer import testing
from hublayer.cli._app import cli
from hublayer.errors import InvalidModelError, UnsafeModelError


def _model(tmp_path: Path, name: str = "model") -> Path:
    return Path(testing.image_feature_vector(tmp_path / name, image_size=8, dim=4))


def _refused_three_ways(folder: Path, op: str, node: str) -> None:
    report = hub.scan(folder)
    assert not report.safe
    assert (op, node) in [(f.op, f.node) for f in report.high], report
    with pytest.raises(UnsafeModelError, match="copy the file"):
        hub.load(folder)
    with pytest.raises(UnsafeModelError, match=op.replace("(", r"\(").replace(")", r"\)")):
        hub.KerasLayer(str(folder))
    result = CliRunner().invoke(cli, ["scan", str(folder)])
    assert result.exit_code == 1, result.output
    assert "UNSAFE" in result.output
    assert node in result.output


def test_variables_folder_linked_to_another_model_is_refused(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    other = _model(tmp_path, "other")
    shutil.rmtree(folder / "variables")
    os.symlink(other / "variables", folder / "variables")
    # TensorFlow reads through the link: the model would load the other model's weights.
    index = folder / "variables" / "variables.index"
    with tf.io.gfile.GFile(str(index), "rb") as file:
        assert file.read() == (other / "variables" / "variables.index").read_bytes()
    report = hub.scan(folder)
    # The link is reported once, and the linked folder is not walked.
    assert [(f.op, f.node, f.detail) for f in report.high] == [
        ("(link)", "variables", str(other / "variables"))
    ]
    _refused_three_ways(folder, "(link)", "variables")


def test_asset_hard_linked_to_a_secret_is_refused(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    (folder / "assets").mkdir(exist_ok=True)
    os.link(secret, folder / "assets" / "vocab.txt")
    # No symlink anywhere, yet the asset's bytes are the secret's.
    asset = folder / "assets" / "vocab.txt"
    assert not asset.is_symlink()
    with tf.io.gfile.GFile(str(asset)) as file:
        assert file.read() == secret.read_text()
    report = hub.scan(folder)
    [finding] = report.high
    assert (finding.op, finding.node) == ("(hard link)", "assets/vocab.txt")
    assert "2 names" in finding.detail
    _refused_three_ways(folder, "(hard link)", "assets/vocab.txt")


def test_a_link_inside_the_folder_is_refused_too(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "inside.txt").write_text("a\n")
    (folder / "assets" / "alias.txt").symlink_to(folder / "assets" / "inside.txt")
    (folder / "fingerprint.pb").unlink()
    (folder / "fingerprint.pb").symlink_to("variables/variables.index")
    report = hub.scan(folder)
    assert sorted(f.node for f in report.high) == ["assets/alias.txt", "fingerprint.pb"]
    _refused_three_ways(folder, "(link)", "fingerprint.pb")


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    os.mkfifo(folder / "variables" / "pipe")
    [finding] = hub.scan(folder).high
    assert (finding.op, finding.node) == ("(special file)", "variables/pipe")


def test_a_plain_copy_scans_clean_and_a_linked_model_folder_itself_is_the_callers_choice(
    tmp_path: Path,
) -> None:
    folder = _model(tmp_path)
    assert hub.scan(folder).findings == ()
    alias = tmp_path / "current"
    alias.symlink_to(folder)
    assert hub.scan(alias).safe
    assert hub.load(alias) is not None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty_message"])
def test_a_damaged_saved_model_pb_is_an_invalid_model_error_everywhere(
    damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _model(tmp_path)
    pb = folder / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(
        {"garbage": b"\xff\xff\xff not a protobuf", "truncated": data[: len(data) // 2]}.get(
            damage, b""
        )
    )
    with pytest.raises(InvalidModelError, match=r"saved_model\.pb") as raised:
        hub.scan(folder)
    assert "Received:" in str(raised.value)
    assert "again" in str(raised.value)
    assert raised.value.path == str(pb)
    with pytest.raises(InvalidModelError):
        hub.load(folder)
    with pytest.raises(InvalidModelError):
        hub.KerasLayer(str(folder))
    with pytest.raises(InvalidModelError):
        hub.models.inspect(folder)
    result = CliRunner().invoke(cli, ["scan", str(folder)])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output
    assert "Traceback" not in result.output
    if damage != "empty_message":  # safe mode off: TensorFlow's parse, same error type
        monkeypatch.setenv("HUBLAYER_SAFE_MODE", "0")
        with pytest.raises(InvalidModelError):
            hub.load(folder)
