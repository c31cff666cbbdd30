"""``fit_classifier(mode="fine_tune", engine="ray")``: fine-tuning on two Ray Train workers.

One local Ray (``num_cpus=2``) for the module, the tiny image model at 16 px. The runs are
deterministic (no dropout, BatchNorm in inference, a fixed data order), so two workers
sharing each global batch must reach the weights one worker reaches with the same batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer import testing, train
from hublayer.errors import TrainingError

pytest.importorskip("tensorflow")

#: One head epoch, then two fine-tuning epochs of 3 steps (48 examples, batch 16).
OPTIONS: dict[str, Any] = {
    "mode": "fine_tune",
    "epochs": 1,
    "fine_tune_epochs": 2,
    "batch_size": 16,
    "learning_rate": 1e-2,
    "fine_tune_learning_rate": 1e-3,
    "dropout": 0.0,
    "seed": 0,
    "patience": 5,
    "rescore": False,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    return {
        "model": testing.image_feature_vector(root / "model", image_size=16, dropout=0.0),
        "train": testing.image_records(root / "train", 48, classes=3, size=16, seed=0),
        "val": testing.image_records(root / "val", 24, classes=3, size=16, seed=1),
    }


def _weights(result: train.TrainResult) -> list[np.ndarray]:
    return [np.asarray(w) for w in result.model.get_weights()]


@pytest.mark.slow
def test_two_workers_reach_the_weights_of_one(
    local_ray: Any, data: dict[str, str], tmp_path: Path
) -> None:
    options = dict(OPTIONS, validation=data["val"], embedding_cache=str(tmp_path / "cache"))
    local = train.fit_classifier(data["model"], data["train"], out_dir=tmp_path / "a", **options)
    on_ray = train.fit_classifier(
        data["model"], data["train"], out_dir=tmp_path / "b", engine="ray", num_workers=2, **options
    )
    before = _backbone_weights(data["model"])
    after = [np.asarray(w) for w in on_ray.model.get_layer("backbone").backbone.weights]
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(after, before, strict=True)]
    assert max(moved) > 1e-4  # fine-tuning on 2 Ray workers moved the backbone's weights
    for mine, theirs in zip(_weights(local), _weights(on_ray), strict=True):
        np.testing.assert_allclose(theirs, mine, atol=1e-5, rtol=0)

    written = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert (written["engine"], written["workers"]) == ("ray", 2)
    shares = written["distributed"]["examples_per_worker"]
    # 48 examples a step of 16: each worker computes 8 of each batch, twice per epoch
    # over two fine-tuning epochs, once over the head epoch.
    assert shares == {"head": [24, 24], "fine_tune": [48, 48]}
    assert written["run"]["mode"] == "fine_tune"
    assert {row for row in local.history["phase"]} == {"head", "fine_tune"}
    assert on_ray.history["epoch"] == local.history["epoch"] == [1, 2, 3]
    np.testing.assert_allclose(on_ray.history["val_loss"], local.history["val_loss"], atol=1e-5)
    assert (tmp_path / "b" / "report.md").exists()
    assert (tmp_path / "b" / "saved_model").exists()


def _backbone_weights(model: str) -> list[np.ndarray]:
    from hublayer import KerasLayer

    return [np.asarray(w) for w in KerasLayer(model).weights]


class _Interrupt:
    """Raises at the end of the first fine-tuning epoch (global epoch 1), after its
    checkpoint; built in a function so that Ray pickles the class by value."""

    @staticmethod
    def make() -> Any:
        import keras

        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if epoch == 1:
                    raise KeyboardInterrupt("interrupted by the test")

        return Interrupt()


@pytest.mark.slow
def test_an_interrupted_two_worker_run_resumes_where_it_stopped(
    local_ray: Any, data: dict[str, str], tmp_path: Path
) -> None:
    options = dict(OPTIONS, validation=data["val"], embedding_cache=str(tmp_path / "cache"))
    out, mirror = tmp_path / "ray", tmp_path / "local"
    with pytest.raises(TrainingError, match="interrupted by the test"):
        train.fit_classifier(
            data["model"],
            data["train"],
            out_dir=out,
            engine="ray",
            num_workers=2,
            callbacks=[_Interrupt.make()],
            **options,
        )
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["phases"]["fine_tune"]["next_epoch"] == 2
    assert not state["phases"]["fine_tune"]["done"]

    resumed = train.fit_classifier(
        data["model"], data["train"], out_dir=out, engine="ray", num_workers=2, **options
    )
    assert resumed.metrics["run"]["resumed"] is True
    assert resumed.history["epoch"] == [1, 2, 3]
    # Only the last fine-tuning epoch ran again, split between the workers.
    assert resumed.metrics["distributed"]["examples_per_worker"] == {
        "head": [0, 0],
        "fine_tune": [24, 24],
    }
    assert not (out / "checkpoints").exists()

    # The same interruption and resume in one process give the same weights.
    with pytest.raises(KeyboardInterrupt):
        train.fit_classifier(
            data["model"], data["train"], out_dir=mirror, callbacks=[_Interrupt.make()], **options
        )
    local = train.fit_classifier(data["model"], data["train"], out_dir=mirror, **options)
    assert local.history["epoch"] == [1, 2, 3]
    for mine, theirs in zip(_weights(local), _weights(resumed), strict=True):
        np.testing.assert_allclose(theirs, mine, atol=1e-5, rtol=0)


def test_the_default_worker_count_leaves_each_worker_room_for_the_model() -> None:
    from hublayer.train._ray_finetune import default_workers

    gib = 2**30
    assert default_workers({"CPU": 2.0, "memory": 64 * gib}) == 1
    assert default_workers({"CPU": 16.0, "memory": 64 * gib}) == 8  # not one per CPU
    assert default_workers({"CPU": 64.0, "memory": 16 * gib}) == 4  # 4 GiB each
    assert default_workers({"CPU": 1.0}) == 1
