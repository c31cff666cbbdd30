"""`hublayer inspect HANDLE [--json]` prints what `hublayer.inspect` finds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hublayer import testing
from hublayer.cli._app import cli


@pytest.fixture(scope="module")
def tf1_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.tf1_saved_model(tmp_path_factory.mktemp("cli") / "tf1", dim=4)


def test_table_shows_specs_sizes_and_the_layer_to_use(tf1_model: str) -> None:
    result = CliRunner().invoke(cli, ["inspect", tf1_model])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "tf1_saved_model" in out
    assert "tokens    in      sequence_len  int32    [None]" in out
    assert "default   out     default       float32  [None, 4]" in out
    assert f"hublayer.KerasLayer({tf1_model!r}, signature='default', output_key='default')" in out


def test_json_is_machine_readable(tf1_model: str) -> None:
    result = CliRunner().invoke(cli, ["inspect", tf1_model, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["format"] == "tf1_saved_model"
    assert [s["name"] for s in data["signatures"]] == ["default", "tokens"]
    assert data["keras_layer_kwargs"] == {"signature": "default", "output_key": "default"}


def test_image_model_table(tmp_path: Path) -> None:
    path = testing.image_feature_vector(tmp_path / "ifv", dim=8)
    result = CliRunner().invoke(cli, ["inspect", path])
    assert result.exit_code == 0, result.output
    assert "__call__(inputs, training=False)" in result.output
    assert "__call__         in      inputs          float32  [None, 32, 32, 3]" in result.output
    assert "fine-tunable           yes" in result.output


def test_missing_model_exits_1_with_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hublayer.cli import main

    assert main(["inspect", str(tmp_path / "nothing")]) == 1
    assert "nothing" in capsys.readouterr().err


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["inspect", "--help"])
    assert result.exit_code == 0
    assert "hublayer inspect ./my_saved_model" in result.output
