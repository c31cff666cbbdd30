"""The input value range is reported with its source, and can be set wherever it is used.

A SavedModel does not record the range its images take. TF Hub's convention, (0, 1),
is right for most published models but not for all (VGG-style BGR minus the mean,
MTCNN and OCR models in [-1, 1]); it must be reported as assumed, never as a fact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import hublayer
from hublayer import records, testing
from hublayer._specs import RANGE_ASSUMED, RANGE_DECLARED, RANGE_GIVEN, TensorInfo
from hublayer.cli._app import cli
from hublayer.records._match import ImagePlan, plan

SIZE = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(
        tmp_path_factory.mktemp("models") / "ifv", image_size=SIZE, dim=4
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_records(tmp_path_factory.mktemp("data") / "train", 12, size=SIZE)


def pixels(files: str, **options: Any) -> np.ndarray:
    dataset = records.dataset(files, batch_size=12, shuffle=False, label="label", **options)
    images, _ = next(iter(dataset))
    return np.asarray(images["image"] if isinstance(images, dict) else images)


# ---------------------------------------------------------------- inspect


def test_inspect_reports_the_convention_as_assumed(model: str) -> None:
    info = hublayer.inspect(model)
    (spec,) = info.input_specs
    assert spec.value_range == (0.0, 1.0)
    assert spec.range_source == RANGE_ASSUMED == "assumed: TF Hub convention"
    assert spec.range_is_assumed
    assert spec.describe_range() == "(0, 1), assumed: TF Hub convention"
    assert info.to_dict()["input_specs"][0]["range_source"] == RANGE_ASSUMED


def test_a_range_the_model_declares_is_reported_as_declared(
    model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    declared = Path(shutil.copytree(model, tmp_path / "declared"))
    (declared / "hublayer.json").write_text(json.dumps({"input": {"value_range": [-1, 1]}}))
    (spec,) = hublayer.inspect(str(declared)).input_specs
    assert (spec.value_range, spec.range_source) == ((-1.0, 1.0), RANGE_DECLARED)
    assert not spec.range_is_assumed
    (from_layer,) = hublayer.KerasLayer(str(declared)).input_specs  # what records and train use
    assert (from_layer.value_range, from_layer.range_source) == ((-1.0, 1.0), RANGE_DECLARED)
    (declared / "hublayer.json").write_text(json.dumps({"input": {"value_range": [1, -1]}}))
    with caplog.at_level(logging.WARNING, logger="hublayer.models"):
        (spec,) = hublayer.inspect(str(declared)).input_specs
    assert spec.range_source == RANGE_ASSUMED  # a broken declaration is not trusted
    assert "Ignoring the value range" in caplog.text


def test_cli_inspect_shows_the_range_and_its_source(model: str) -> None:
    result = CliRunner().invoke(cli, ["inspect", model])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("input range"))
    assert "inputs: (0, 1), assumed: TF Hub convention" in row


def test_text_models_have_no_range(tmp_path: Path) -> None:
    (spec,) = hublayer.inspect(testing.text_embedding(str(tmp_path / "nnlm"))).input_specs
    assert spec.value_range is None
    assert spec.describe_range() == "-"


# ---------------------------------------------------------------- records


def image_plan(files: str, **kwargs: object) -> ImagePlan:
    (first,) = plan(records.inspect(files), label="label", **kwargs).inputs  # type: ignore[arg-type]
    assert isinstance(first, ImagePlan)
    return first


def test_records_scale_to_the_range_given_and_say_where_it_came_from(
    model: str, files: str, caplog: pytest.LogCaptureFixture
) -> None:
    info = hublayer.inspect(model)
    with caplog.at_level(logging.INFO, logger="hublayer.records"):
        default = pixels(files, for_model=info)
    assert default.min() >= 0.0
    assert default.max() <= 1.0
    assert default.max() > 0.5
    assert "assumed: TF Hub convention" in caplog.text
    given = pixels(files, for_model=info, image={"range": (-1, 1)})
    np.testing.assert_allclose(given, default * 2 - 1, atol=1e-5)
    assert image_plan(files, for_model=info).range_source == RANGE_ASSUMED
    assert image_plan(files, for_model=info, image={"range": (-1, 1)}).range_source == (RANGE_GIVEN)
    declared = TensorInfo("image", "float32", (None, SIZE, SIZE, 3), (0.0, 255.0), RANGE_DECLARED)
    chosen = image_plan(files, for_model=[declared])
    assert (chosen.value_range, chosen.range_source) == ((0.0, 255.0), RANGE_DECLARED)


def test_records_without_a_model_take_the_range_too(files: str) -> None:
    np.testing.assert_allclose(
        pixels(files, image={"range": (-1, 1)}),
        pixels(files, image={"value_range": (0, 1)}) * 2 - 1,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"range": (1, -1)}, "low < high"),
        ({"range": (0, float("nan"))}, "two finite numbers"),
        ({"range": "wide"}, "two finite numbers"),
        ({"range": (0, 1), "value_range": (0, 1)}, "Received both"),
        ({"range": (-1, 1), "dtype": "uint8"}, r"\(0, 255\) for uint8"),
    ],
)
def test_a_bad_range_is_refused_before_anything_runs(
    files: str, image: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        records.dataset(files, batch_size=4, label="label", image=image)


# ---------------------------------------------------------------- train


def test_fit_classifier_and_the_cli_use_and_print_the_range(
    model: str, files: str, tmp_path: Path
) -> None:
    from hublayer.train import fit_classifier, load_classifier

    result = fit_classifier(
        model, files, epochs=1, batch_size=4, input_range=(-1, 1), embedding_cache=False,
        progress=False,
    )  # fmt: skip
    assert result.metrics["run"]["input_range"] == {"range": [-1.0, 1.0], "source": RANGE_GIVEN}
    with pytest.raises(ValueError, match="low < high"):
        fit_classifier(model, files, epochs=1, input_range=(1, 0), progress=False)

    args = ["train", "--model", model, "--train", files, "--epochs", "1", "--no-progress",
            "--no-cache", "--batch-size", "4"]  # fmt: skip
    runner = CliRunner()
    given = runner.invoke(cli, [*args, "--out", str(tmp_path / "a"), "--input-range", "-1,1"])
    assert given.exit_code == 0, given.output
    assert "input range: (-1, 1), given (set it with --input-range)" in given.output
    reloaded = load_classifier(tmp_path / "a").spec  # predict scales as training did
    assert (reloaded.value_range, reloaded.range_source) == ((-1.0, 1.0), RANGE_GIVEN)
    assumed = runner.invoke(cli, [*args, "--out", str(tmp_path / "b")])
    assert assumed.exit_code == 0, assumed.output
    assert "input range: (0, 1), assumed: TF Hub convention" in assumed.output
    bad = runner.invoke(cli, [*args, "--out", str(tmp_path / "c"), "--input-range", "0"])
    assert bad.exit_code == 2
    assert "--input-range" in bad.output
    assert "low < high" in bad.output
    assert not (tmp_path / "c").exists()
