"""What a training run reports: epoch numbers across phases, the test score, the best epoch
and class names on the plots, optional re-scoring after fine-tuning, and progress lines in logs.

Real runs on a factory feature-vector model and small PNG records (a few seconds each).
"""

from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import pytest
from click.testing import CliRunner

import hublayer.train
from hublayer import testing
from hublayer.cli._app import cli
from hublayer.train import _callbacks as callbacks_module
from hublayer.train import evaluate, fit_classifier
from hublayer.train._callbacks import Progress
from hublayer.train._plots import confusion_figure, curves_figure
from hublayer.train._progress import Ticker

SIZE = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("records")
    return {
        split: testing.image_records(root / split, count, size=SIZE, seed=seed)
        for split, count, seed in (("train", 60, 1), ("validation", 24, 2), ("test", 24, 3))
    }


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(
        testing.image_feature_vector(
            tmp_path_factory.mktemp("models") / "ifv", image_size=SIZE, dim=16
        )
    )


class StopAfter(keras.callbacks.Callback):
    """Stops each phase after ``count`` epochs, as early stopping would."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.seen = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.seen = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seen += 1
        if self.seen >= self.count:
            self.model.stop_training = True


def _history(out: Path) -> list[dict[str, str]]:
    with (out / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_fine_tune_epochs_number_on_from_where_the_head_stopped(
    tmp_path: Path, model_path: str, data: dict[str, str]
) -> None:
    out = tmp_path / "run"
    fit_classifier(
        model_path,
        data["train"],
        validation=data["validation"],
        mode="fine_tune",
        epochs=10,
        fine_tune_epochs=2,
        out_dir=out,
        callbacks=[StopAfter(2)],
        progress=False,
    )
    rows = _history(out)
    assert [(r["epoch"], r["phase"]) for r in rows] == [
        ("1", "head"),
        ("2", "head"),
        ("3", "fine_tune"),
        ("4", "fine_tune"),
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["run"]["phases"]["fine_tune"]["best_epoch"]
    assert 1 <= best <= 4
    report = (out / "report.md").read_text()
    assert f"(4 epochs). The model keeps the weights of epoch {best}" in report


@pytest.mark.slow
def test_report_has_the_test_score_and_it_matches_evaluate(
    tmp_path: Path, model_path: str, data: dict[str, str]
) -> None:
    out = tmp_path / "run"
    result = fit_classifier(
        model_path,
        data["train"],
        validation=data["validation"],
        test=data["test"],
        epochs=3,
        out_dir=out,
        progress=False,
    )
    test = result.metrics["splits"]["test"]
    assert test["examples"] == 24
    assert test["accuracy"] == pytest.approx(evaluate(out, data["test"])["accuracy"])
    report = (out / "report.md").read_text()
    assert f"**Test accuracy: {test['accuracy']:.4f}** on 24 held-out examples" in report
    assert f"| test | 24 | {test['accuracy']:.4f} |" in report
    assert result.metrics["confusion_matrix"]["split"] == "validation"
    assert result.metrics["run"]["embedding_cache"] == {
        "train": "computed",
        "validation": "computed",
        "test": "computed",
    }
    # Without a test split, no test line.
    plain = fit_classifier(model_path, data["train"], epochs=1, out_dir=tmp_path / "p")
    assert "test" not in plain.metrics["splits"]
    assert "Test accuracy" not in (tmp_path / "p" / "report.md").read_text()


@pytest.mark.slow
def test_rescore_false_reports_the_logged_train_figures(
    tmp_path: Path, model_path: str, data: dict[str, str]
) -> None:
    out = tmp_path / "run"
    result = fit_classifier(
        model_path,
        data["train"],
        validation=data["validation"],
        test=data["test"],
        mode="fine_tune",
        epochs=2,
        fine_tune_epochs=1,
        out_dir=out,
        rescore=False,
        progress=False,
    )
    train = result.metrics["splits"]["train"]
    best = result.metrics["run"]["phases"]["fine_tune"]["best_epoch"]
    row = next(r for r in _history(out) if int(r["epoch"]) == best)
    assert train["from_logs"] is True
    assert train["epoch"] == best
    assert train["examples"] == 60
    assert train["accuracy"] == pytest.approx(float(row["accuracy"]), rel=1e-5)
    assert "from_logs" not in result.metrics["splits"]["test"]
    assert f"(logged at epoch {best}, not scored again)" in (out / "report.md").read_text()
    # The test split was scored through the fine-tuned backbone, not from frozen features.
    assert "test" not in result.metrics["run"]["embedding_cache"]
    assert result.metrics["splits"]["test"]["accuracy"] == pytest.approx(
        evaluate(out, data["test"])["accuracy"]
    )


def test_curves_mark_the_best_epoch_and_name_the_classes() -> None:
    history: dict[str, list[Any]] = {
        "epoch": [1, 2, 3, 4],
        "phase": ["head", "head", "fine_tune", "fine_tune"],
        "loss": [0.9, 0.5, 0.4, 0.45],
        "val_loss": [0.8, 0.6, 0.5, 0.55],
        "accuracy": [0.5, 0.7, 0.8, 0.79],
        "val_accuracy": [0.55, 0.72, 0.81, 0.8],
    }
    figure = curves_figure(history, best_epoch=3, monitor="val_accuracy", classes=["cat", "dog"])
    loss_ax, accuracy_ax = figure.axes
    for ax in (loss_ax, accuracy_ax):
        assert "best: epoch 3" in [t.get_text() for t in ax.texts]
        assert "fine_tune" in [t.get_text() for t in ax.texts]
    stars = [line for line in accuracy_ax.lines if line.get_marker() == "*"]
    assert len(stars) == 1
    assert list(stars[0].get_xdata()) == [3]
    assert list(stars[0].get_ydata()) == [0.81]
    assert figure.get_suptitle() == "2 classes: cat, dog"
    many = curves_figure(history, classes=[f"c{i}" for i in range(20)])
    assert many.get_suptitle().endswith("c11, ... (20 in all)")
    assert all("best" not in t.get_text() for ax in many.axes for t in ax.texts)

    confusion = confusion_figure([[3, 1], [0, 4]], ["cat", "dog"])
    ax = confusion.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]


def test_progress_lines_per_epoch_and_per_tenth() -> None:
    lines: list[str] = []
    ticker = Ticker("embeddings (train)", total=95, mode="lines", write=lines.append)
    for _ in range(95):
        ticker.update(1)
    assert len(lines) == 10
    assert lines[0].startswith("embeddings (train): 10/95 (11%)")
    assert lines[-1].startswith("embeddings (train): 95/95 (100%)")
    quiet: list[str] = []
    off = Ticker("x", total=10, mode="bars", write=quiet.append)
    off.update(10)
    assert quiet == []

    bar = Progress(
        "fine_tune", epochs=2, initial_epoch=0, steps=3, mode="lines", first=31, write=lines.append
    )
    bar.on_epoch_begin(31)
    bar.on_epoch_end(31, {"loss": 0.25, "val_accuracy": 0.9, "learning_rate": 1e-5})
    bar.close()
    assert lines[-1].startswith(
        "fine_tune: epoch 32 (1/2 of the phase) loss 0.2500 val_accuracy 0.9000 in "
    )


def test_a_slow_epoch_reports_its_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    bar = Progress(
        "fine_tune", epochs=1, initial_epoch=0, steps=20, mode="lines", write=lines.append
    )
    bar.on_epoch_begin(0)
    for batch in range(20):  # a fast epoch: no batch lines
        bar.on_train_batch_end(batch)
    assert lines == []
    monkeypatch.setattr(callbacks_module, "_QUIET_EPOCH_S", 0.0)  # now every epoch is "slow"
    bar.on_epoch_begin(1)
    for batch in range(20):
        bar.on_train_batch_end(batch)
    bar.close()
    assert len(lines) == 10
    assert lines[0].startswith("fine_tune: epoch 2 batches: 2/20 (10%) in ")


@pytest.mark.slow
def test_a_run_logged_to_a_file_prints_lines_not_silence(
    tmp_path: Path,
    model_path: str,
    data: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HUBLAYER_PROGRESS")  # stderr is not a terminal here
    fit_classifier(model_path, data["train"], validation=data["validation"], epochs=2)
    err = capfd.readouterr().err
    assert "embeddings (train): 60/60 (100%)" in err
    assert "embeddings (validation): 24/24 (100%)" in err
    assert "head: epoch 1 (1/2 of the phase) " in err
    assert "head: epoch 2 (2/2 of the phase) " in err
    assert "\r" not in err  # no bar drawn into the log
    fit_classifier(model_path, data["train"], epochs=1, progress=False)
    assert "epoch" not in capfd.readouterr().err
    monkeypatch.setenv("HUBLAYER_PROGRESS", "0")
    fit_classifier(model_path, data["train"], epochs=1)
    assert "epoch" not in capfd.readouterr().err


def test_train_does_not_depend_on_the_demo_zoo_or_pillow() -> None:
    """``train`` is the recipe alone: the demo (zoo, cache, PNG writing) lives above it."""
    code = (
        "import sys, hublayer.train\n"
        "print(sorted(m for m in ('hublayer.demo', 'hublayer.zoo') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    package = Path(hublayer.train.__file__).parent
    imported: set[str] = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    banned = ("PIL", "hublayer.zoo", "hublayer.demo", "hublayer.cache")
    assert sorted(m for m in imported if m.startswith(banned)) == []


@pytest.mark.slow
def test_cli_train_scores_a_test_split_into_the_report(
    tmp_path: Path, model_path: str, data: dict[str, str]
) -> None:
    out = tmp_path / "run"
    flags = ["--model", model_path, "--train", data["train"], "--val", data["validation"]]
    shown = CliRunner().invoke(
        cli, ["train", *flags, "--test", data["test"], "--epochs", "2", "--out", str(out)]
    )
    assert shown.exit_code == 0, shown.output
    test = json.loads((out / "metrics.json").read_text())["splits"]["test"]
    assert test["examples"] == 24
    assert any(line.split()[:2] == ["test", "24"] for line in shown.output.splitlines())
    assert f"**Test accuracy: {test['accuracy']:.4f}**" in (out / "report.md").read_text()
