"""``hublayer train``, ``predict`` and ``evaluate`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_train_fit import write_split

from hublayer import testing
from hublayer.cli import main
from hublayer.cli._app import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One trained run, shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    files = {
        "train": write_split(root / "train", 60, seed=1),
        "val": write_split(root / "val", 24, seed=2),
        "test": write_split(root / "test", 24, seed=3),
        "model": testing.image_feature_vector(root / "ifv", image_size=16, dim=16),
        "out": str(root / "out"),
    }
    result = CliRunner().invoke(
        cli,
        [
            "train", "--model", files["model"], "--train", files["train"],
            "--val", files["val"], "--epochs", "3", "--lr", "0.02", "--out", files["out"],
            "--embeddings-dir", str(root / "embeddings"), "--no-progress",
            "--image", "image", "--image-size", "16",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    files["train_output"] = result.output
    return files


def test_train_prints_a_summary_table(run: dict[str, str]) -> None:
    output = run["train_output"]
    lines = output.splitlines()
    assert lines[0].split() == ["split", "examples", "accuracy", "loss"]
    assert lines[2].split()[:2] == ["train", "60"]
    assert lines[3].split()[:2] == ["validation", "24"]
    assert "embedding cache: train computed, validation computed" in output
    assert f"report: {run['out']}/report.md" in output
    assert (Path(run["out"]) / "model.keras").is_file()


def test_predict_writes_csv_to_a_file_or_stdout(run: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "preds.csv"
    args = ["predict", "--model", run["out"], "--data", run["test"]]
    to_file = runner.invoke(cli, [*args, "--output", str(target)])
    assert to_file.exit_code == 0, to_file.output
    assert "predicted 24 records; accuracy" in to_file.output
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 24
    assert rows[0]["prediction"] in {"0", "1", "2"}

    to_stdout = runner.invoke(cli, args)
    assert to_stdout.exit_code == 0
    assert list(csv.DictReader(io.StringIO(to_stdout.stdout))) == rows


def test_evaluate_prints_scores_and_confusion_matrix(run: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "scores.json"
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--model", run["out"], "--data", run["test"], "--output", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["examples", "accuracy", "loss"]
    assert "true \\ predicted" in result.output
    scores = json.loads(target.read_text())
    assert scores["examples"] == 24
    assert sum(map(sum, scores["confusion_matrix"])) == 24


def test_errors_exit_1_with_the_message(
    run: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "none-*.tfrecord")
    status = main(["train", "--model", run["model"], "--train", missing, "--out", str(tmp_path)])
    assert status == 1
    error = capsys.readouterr().err
    assert error.startswith("Error: Expected the train files to match at least one TFRecord file")

    assert main(["evaluate", "--model", str(tmp_path), "--data", run["test"]]) == 1
    assert "lacks model.keras" in capsys.readouterr().err


def test_help_shows_examples() -> None:
    for command in ("train", "predict", "evaluate"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "Examples:" in result.output
        assert f"hublayer {command} --model" in result.output
