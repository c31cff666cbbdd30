"""``fit_classifier(engine="ray")`` in feature extraction: the backbone pass on Ray actors.

One local Ray (``num_cpus=2``) for the module; small images and the tiny model. The Ray
run computes the embedding cache (each record on one actor), the head trains once and
each split is scored once, here; the results equal a local run's, and a local run after
it reuses its cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from hublayer import testing, train
from hublayer.train import _embeddings
from hublayer.train._ray_features import default_workers

pytest.importorskip("tensorflow")

TRAIN, VAL = 96, 48


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    return {
        "model": testing.image_feature_vector(root / "model", image_size=32),
        "train": testing.image_records(root / "train", TRAIN, classes=3, shards=2, seed=0),
        "val": testing.image_records(root / "val", VAL, classes=3, shards=2, seed=1),
    }


def _options(cache: Path) -> dict[str, Any]:
    return {
        "epochs": 4,
        "batch_size": 16,
        "learning_rate": 1e-2,
        "seed": 0,
        "progress": False,
        "embedding_cache": str(cache),
    }


def _entries(cache: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in cache.glob("*/features.npy")}


@pytest.mark.slow
def test_two_actors_embed_each_record_once_and_equal_a_local_run(
    local_ray: Any,
    data: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    predicted: list[int] = []
    predict = keras.Model.predict

    def counting_predict(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        predicted.append(len(x))
        return predict(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", counting_predict)
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    on_ray = train.fit_classifier(
        data["model"],
        data["train"],
        validation=data["val"],
        out_dir=tmp_path / "ray",
        engine="ray",
        num_workers=2,
        **_options(shared),
    )
    cluster = on_ray.metrics["cluster"]
    assert (on_ray.metrics["engine"], on_ray.metrics["workers"], cluster["actors"]) == ("ray", 2, 2)
    assert cluster["splits_embedded"] == ["train", "validation"]
    per_actor = cluster["records_per_actor"]
    assert 1 <= len(per_actor) <= 2
    assert sum(per_actor.values()) == TRAIN + VAL
    assert set(cluster["startup_s"]) == set(per_actor) == set(cluster["compute_s"])
    assert on_ray.metrics["run"]["embedding_cache"] == {
        "train": "computed",
        "validation": "computed",
    }
    assert sorted(predicted) == [VAL, TRAIN]  # each split scored once, on its features
    written = _entries(shared)
    assert len(written) == 2
    assert json.loads((tmp_path / "ray" / "metrics.json").read_text())["cluster"] == cluster

    local = train.fit_classifier(
        data["model"],
        data["train"],
        validation=data["val"],
        out_dir=tmp_path / "local",
        **_options(alone),
    )
    assert set(_entries(alone)) == set(written)  # the same cache keys
    for key in written:
        ours = np.load(shared / key / "features.npy")
        theirs = np.load(alone / key / "features.npy")
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        assert (np.load(shared / key / "labels.npy") == np.load(alone / key / "labels.npy")).all()
    for split in ("train", "validation"):
        ours, theirs = on_ray.metrics["splits"][split], local.metrics["splits"][split]
        assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-6)
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4, abs=1e-6)
    assert on_ray.class_names == local.class_names
    expected = {p.name for p in (tmp_path / "local").iterdir()}
    assert {p.name for p in (tmp_path / "ray").iterdir()} == expected
    assert "cluster" not in local.metrics
    assert local.metrics["engine"] == "local"

    def no_backbone(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the backbone ran again")

    monkeypatch.setattr(_embeddings, "_compute", no_backbone)
    again = train.fit_classifier(
        data["model"], data["train"], validation=data["val"], **_options(shared)
    )
    assert again.metrics["run"]["embedding_cache"] == {"train": "hit", "validation": "hit"}
    assert _entries(shared) == written  # written once, by the Ray run
    assert again.metrics["splits"]["validation"]["loss"] == pytest.approx(
        on_ray.metrics["splits"]["validation"]["loss"], rel=1e-4, abs=1e-6
    )


@pytest.mark.slow
def test_a_ray_run_on_a_full_cache_starts_no_actor(
    local_ray: Any, data: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    train.fit_classifier(data["model"], data["val"], **_options(cache))
    written = _entries(cache)
    result = train.fit_classifier(
        data["model"], data["val"], engine="ray", num_workers=2, **_options(cache)
    )
    assert result.metrics["run"]["embedding_cache"] == {"train": "hit"}
    assert result.metrics["cluster"]["splits_embedded"] == []
    assert result.metrics["cluster"]["records_per_actor"] == {}
    assert _entries(cache) == written


def test_default_worker_count_is_per_two_cpus_and_memory_not_per_cpu() -> None:
    assert default_workers(2) == 1
    assert default_workers(16) == 8
    assert default_workers(64, memory=256 * 2**30) == 32
    assert default_workers(64, memory=6 * 2**30) == 3  # each actor holds the model
    assert default_workers(1, memory=2**20) == 1


def test_a_bad_worker_count_is_refused_before_ray_starts(data: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="num_workers to be a positive int"):
        train.fit_classifier(data["model"], data["train"], engine="ray", num_workers=0)
