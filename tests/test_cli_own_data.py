"""Your own images, end to end from the CLI, and every bad input on the way (issue #11).

The walk: class folders of train, val and test (test lacks a class) -> ``records convert
images`` in one call -> ``train`` -> ``predict`` -> ``evaluate``, with class names and
the right accuracy everywhere. Then one bad input at a time: exit status 1, a one-line
message naming the file or the flag, no traceback, nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from hublayer import records, testing
from hublayer.cli._app import cli

CLASSES = ("blue", "green", "red")  # sorted folder names; class k lights channel 2-k


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _clean_failure(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    for needle in needles:
        assert needle in result.output, result.output


def _photos(root: Path, counts: dict[str, int], seed: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        channel = 2 - CLASSES.index(name)
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 90, (12, 12, 3))
            pixels[:, :, channel] += 160
            image = Image.fromarray(pixels.astype(np.uint8))
            (image.convert("L") if mode == "L" else image).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own")
    photos = root / "photos"
    _photos(photos / "train", {"blue": 20, "green": 20, "red": 20}, seed=1)
    _photos(photos / "val", {"blue": 8, "green": 8, "red": 8}, seed=2)
    _photos(photos / "test", {"blue": 10, "red": 10}, seed=3)  # no green
    data = root / "data"
    converted = _run(
        "records", "convert", "images",
        str(photos / "train"), str(data / "train"),
        str(photos / "val"), str(data / "val"),
        str(photos / "test"), str(data / "test"),
        "--shards", "2",
    )  # fmt: skip
    assert converted.exit_code == 0, converted.output
    model = testing.image_feature_vector(root / "ifv", image_size=16, dim=16)
    out = root / "run"
    trained = _run(
        "train", "--model", model, "--train", f"{data}/train-*", "--val", f"{data}/val-*",
        "--epochs", "4", "--lr", "0.05", "--out", str(out), "--no-progress",
        "--embeddings-dir", str(root / "embeddings"),
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "classes: 3 (blue, green, red)" in trained.output
    return {"root": root, "data": data, "model": Path(model), "out": out, "photos": photos}


def test_class_names_travel_from_the_folders_into_the_model(walk: dict[str, Path]) -> None:
    config = json.loads((walk["out"] / "config.json").read_text())
    assert config["class_names"] == list(CLASSES)
    metrics = json.loads((walk["out"] / "metrics.json").read_text())
    assert metrics["splits"]["validation"]["accuracy"] >= 0.9
    assert metrics["classes"] == list(CLASSES)  # what the report and plots show


def test_evaluate_on_a_split_missing_a_class_scores_by_name(walk: dict[str, Path]) -> None:
    target = walk["root"] / "scores.json"
    result = _run(
        "evaluate", "--model", str(walk["out"]), "--data", f"{walk['data']}/test-*",
        "--output", str(target),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(target.read_text())
    assert scores["examples"] == 20
    assert scores["accuracy"] >= 0.9  # shifted labels (red read as green) would give ~0.5
    assert scores["classes"] == list(CLASSES)
    matrix = np.array(scores["confusion_matrix"])
    assert matrix[1].sum() == 0  # no true "green" in the test split
    assert matrix[0, 0] + matrix[2, 2] >= 18
    assert "true \\ predicted" in result.output
    assert "red" in result.output


def test_predict_csv_uses_class_names(walk: dict[str, Path]) -> None:
    result = _run("predict", "--model", str(walk["out"]), "--data", f"{walk['data']}/test-*")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == [
        "index", "prediction", "confidence", "label", "p_blue", "p_green", "p_red",
    ]  # fmt: skip
    assert {row["label"] for row in rows} == {"blue", "red"}
    right = sum(row["label"] == row["prediction"] for row in rows)
    assert right >= 18
    assert "accuracy" in result.stderr


def test_a_split_converted_alone_is_still_matched_by_name(walk: dict[str, Path]) -> None:
    alone = walk["root"] / "alone"
    converted = _run(
        "records", "convert", "images", str(walk["photos"] / "test"), str(alone / "test"),
        "--shards", "1",
    )  # fmt: skip
    assert converted.exit_code == 0, converted.output
    assert "(2 classes: blue, red)" in converted.output  # its own map: red is index 1
    target = walk["root"] / "alone.json"
    result = _run(
        "evaluate", "--model", str(walk["out"]), "--data", f"{alone}/test-*",
        "--output", str(target),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["accuracy"] >= 0.9


def test_data_whose_label_map_contradicts_the_model_is_refused(walk: dict[str, Path]) -> None:
    other = walk["root"] / "other"
    _photos(other / "src", {"blue": 2, "red": 2}, seed=5)
    (other / "src" / "red").rename(other / "src" / "purple")
    assert _run("records", "convert", "images", str(other / "src"), str(other / "x")).exit_code == 0
    for command in ("evaluate", "predict"):
        result = _run(command, "--model", str(walk["out"]), "--data", f"{other}/x-*")
        _clean_failure(
            result, "['blue', 'purple']", "['blue', 'green', 'red']", "['purple'] are not"
        )


def test_evaluate_with_a_label_that_is_not_the_class_feature(walk: dict[str, Path]) -> None:
    result = _run(
        "evaluate", "--model", str(walk["out"]), "--data", f"{walk['data']}/test-*",
        "--label", "filename",
    )  # fmt: skip
    _clean_failure(result, "feature 'filename'", "--label")
    assert "label=" not in result.output


def test_unwritable_outputs_fail_before_any_work(walk: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    embeddings = tmp_path / "embeddings"
    trained = _run(
        "train", "--model", str(walk["model"]), "--train", f"{walk['data']}/train-*",
        "--out", str(blocker / "run"), "--embeddings-dir", str(embeddings), "--no-progress",
    )  # fmt: skip
    _clean_failure(trained, str(blocker), "--out")
    assert not embeddings.exists()  # no embedding was computed
    model, data = str(walk["out"]), f"{walk['data']}/test-*"
    predicted = _run("predict", "--model", model, "--data", data, "--output", f"{blocker}/p.csv")
    _clean_failure(predicted, "--output")
    scored = _run("evaluate", "--model", model, "--data", data, "--output", f"{blocker}/s.json")
    _clean_failure(scored, "--output")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "an empty file"),
        (b"not a model at all", "not a zip archive"),
        (None, "damaged or cut-off zip"),
    ],
)
def test_a_damaged_model_file_says_what_is_wrong(
    walk: dict[str, Path], tmp_path: Path, content: bytes | None, problem: str
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(walk["out"], copy)
    model = copy / "model.keras"
    model.write_bytes(content if content is not None else model.read_bytes()[:5000])
    result = _run("predict", "--model", str(copy), "--data", f"{walk['data']}/test-*")
    _clean_failure(result, str(model), problem)
    assert "File not found" not in result.output


@pytest.mark.parametrize("cache", ["--embeddings-dir", "--no-cache"])
def test_a_bad_image_that_reaches_training_is_named(
    walk: dict[str, Path], tmp_path: Path, cache: str
) -> None:
    png = (walk["photos"] / "train" / "red" / "0.png").read_bytes()
    images = np.array([png] * 5 + [png[: len(png) // 2]] + [png] * 4, dtype=object)
    records.write_arrays(tmp_path / "bad.tfrecord", {"image": images, "label": np.arange(10) % 2})
    where = [cache, str(tmp_path / "emb")] if cache == "--embeddings-dir" else [cache]
    result = _run(
        "train", "--model", str(walk["model"]), "--train", str(tmp_path / "bad.tfrecord"),
        "--out", str(tmp_path / "run"), "--no-progress", *where,
    )  # fmt: skip
    _clean_failure(result, f"{tmp_path / 'bad.tfrecord'}, record 5, feature 'image'", "--all")
    leftovers = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "run").rglob("*"))
    assert leftovers == [], leftovers


def test_grayscale_images_train_without_being_asked(walk: dict[str, Path], tmp_path: Path) -> None:
    _photos(tmp_path / "gray", {"blue": 6, "red": 6}, seed=7, mode="L")
    converted = _run(
        "records", "convert", "images", str(tmp_path / "gray"), str(tmp_path / "g"),
        "--shards", "1",
    )  # fmt: skip
    assert converted.exit_code == 0, converted.output
    result = _run(
        "train", "--model", str(walk["model"]), "--train", f"{tmp_path}/g-*", "--epochs", "1",
        "--out", str(tmp_path / "run"), "--embeddings-dir", str(tmp_path / "emb"),
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "model.keras").is_file()
    said = "Converting the grayscale images of 'image' to RGB, as the model takes 3 channel(s)."
    assert result.stderr.count(said) == 1


def test_errors_name_the_flag_not_the_python_argument(walk: dict[str, Path]) -> None:
    data = f"{walk['data']}/train-*"
    wrong_label = _run(
        "train", "--model", str(walk["model"]), "--train", data, "--label", "nosuch",
        "--out", str(walk["root"] / "never"), "--no-progress",
    )  # fmt: skip
    _clean_failure(wrong_label, "'nosuch'", "Pass --label one of them")
    assert "label=" not in wrong_label.output
    assert not (walk["root"] / "never").exists()
    not_a_run = _run("predict", "--model", str(walk["data"]), "--data", data)
    _clean_failure(not_a_run, "Pass --model the --out folder of `hublayer train`")
    assert "out_dir" not in not_a_run.output
    nothing = _run("predict", "--model", str(walk["out"]), "--data", "no-such-*.tfrecord")
    _clean_failure(nothing, "Expected the data files to match")
    assert "data data" not in nothing.output


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "an empty file (0 bytes)"),
        (b"hello", "not a zip archive"),
        (b"PK\x03\x04xx", "cut-off zip"),
    ],
)
def test_inspect_a_damaged_keras_file(tmp_path: Path, content: bytes, problem: str) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(content)
    result = _run("inspect", str(model))
    _clean_failure(result, f"Expected a .keras model file at {str(model)!r}", problem)
    assert "File not found" not in result.output
