"""``fit_classifier(engine="ray")``: the local recipe on Ray Train, two workers.

One local Ray (``num_cpus=2``) for the module; small images and the tiny model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hublayer import testing, train
from hublayer.cli import main
from hublayer.errors import MissingExtraError

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    return {
        "model": testing.image_feature_vector(root / "model", image_size=32),
        "train": testing.image_records(root / "train", 96, classes=3, shards=2, seed=0),
        "val": testing.image_records(root / "val", 48, classes=3, shards=2, seed=1),
    }


@pytest.mark.slow
def test_two_ray_workers_train_like_a_local_run(
    local_ray: Any, data: dict[str, str], tmp_path: Path
) -> None:
    options: dict[str, Any] = {
        "validation": data["val"],
        "epochs": 6,
        "batch_size": 16,
        "learning_rate": 1e-2,
        "seed": 0,
        "embedding_cache": str(tmp_path / "embeddings"),
    }
    local = train.fit_classifier(data["model"], data["train"], out_dir=tmp_path / "a", **options)
    on_ray = train.fit_classifier(
        data["model"],
        data["train"],
        out_dir=tmp_path / "b",
        engine="ray",
        num_workers=2,
        **options,
    )
    accuracy = [r.metrics["splits"]["validation"]["accuracy"] for r in (local, on_ray)]
    assert accuracy[0] > 0.5  # it learned something
    assert abs(accuracy[0] - accuracy[1]) <= 0.02

    written = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert (written["engine"], written["workers"]) == ("ray", 2)
    assert (local.metrics["engine"], local.metrics["workers"]) == ("local", 1)
    assert on_ray.paths["model"] == tmp_path / "b" / "model.keras"
    assert on_ray.class_names == local.class_names
    assert not (tmp_path / "b" / "ray").exists()


def test_without_ray_the_error_names_the_extra(
    data: dict[str, str], tmp_path: Path, without_ray: None
) -> None:
    with pytest.raises(MissingExtraError, match=r'pip install "hublayer\[ray\]"'):
        train.fit_classifier(data["model"], data["train"], engine="ray", out_dir=tmp_path)
    with pytest.raises(ValueError, match='engine to be "local" or "ray"'):
        train.fit_classifier(data["model"], data["train"], engine="dask")
    with pytest.raises(MissingExtraError, match=r'pip install "hublayer\[ray\]"'):
        train.fit_classifier(
            data["model"], data["train"], engine="ray", mode="fine_tune", out_dir=tmp_path
        )


def test_cli_help_says_the_default_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "one per 2 CPUs" in shown
    assert "fine_tune trains on Ray Train workers" in shown
