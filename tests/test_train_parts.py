"""The pieces of hublayer.train that need no training: blocks, labels, scores, checkpoints,
plots and the BatchNorm trap. About 5 s (TensorFlow import included). File sets are
``records.expand_files``'s, tested in test_records_files.py."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from PIL import Image

from hublayer.errors import SpecMismatchError, TrainingError
from hublayer.layers import BackboneCall
from hublayer.train._backbone import block_groups, fingerprint_model, unfreeze
from hublayer.train._callbacks import Checkpoints, PhaseGuard, PhaseState
from hublayer.train._data import Classes
from hublayer.train._metrics import score
from hublayer.train._plots import plot_confusion, plot_curves


def _bn_backbone() -> keras.Model:
    inputs = keras.Input((4,), name="inputs")
    x = keras.layers.Dense(4, name="block1_dense")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Dense(3, name="block2_dense")(x)
    return keras.Model(inputs, x)


def test_blocks_group_variables_by_numbered_prefix() -> None:
    paths = [
        "net/stem_conv/kernel",
        "net/block1a_expand/kernel",
        "net/block1a_bn/gamma",
        "net/block2a_dw/kernel",
        "net/head_conv/kernel",
    ]
    assert block_groups(paths) == [[0], [1, 2], [3], [4]]


def test_unfreeze_last_block_of_a_keras_model_keeps_the_rest_frozen() -> None:
    backbone = _bn_backbone()
    backbone.trainable = False
    assert unfreeze(backbone, 1) == 2
    assert [w.path for w in backbone.trainable_weights] == [
        "block2_dense/kernel",
        "block2_dense/bias",
    ]
    assert unfreeze(backbone, None) == 6  # every kernel, bias, gamma, beta; no BN statistics
    with pytest.raises(TrainingError, match="between 1 and 2"):
        unfreeze(backbone, 3)


def test_backbone_call_keeps_batchnorm_in_inference_mode_during_fit() -> None:
    """The trap: `backbone(x, training=False)` inside a functional model is not sticky in
    Keras 3; BackboneCall is."""
    backbone = _bn_backbone()
    bn = backbone.get_layer("block1_bn")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(BackboneCall(backbone)(inputs)))
    model.compile("adam", "mse")
    before = keras.ops.convert_to_numpy(bn.moving_mean)
    model.fit(np.random.rand(32, 4) * 10, np.random.rand(32, 2), epochs=1, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), before)

    opted_in = keras.Model(
        inputs, keras.layers.Dense(2)(BackboneCall(backbone, train_batch_norm=True)(inputs))
    )
    opted_in.compile("adam", "mse")
    opted_in.fit(np.random.rand(32, 4) * 10, np.random.rand(32, 2), epochs=1, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(bn.moving_mean), before)


def test_a_keras_file_from_before_backbone_call_moved_to_layers_still_loads(
    tmp_path: Path,
) -> None:
    """Files written when BackboneCall lived in hublayer.train._backbone name that module;
    Keras finds the class by its registered name, hublayer>BackboneCall."""
    inputs = keras.Input((4,))
    called = BackboneCall(_bn_backbone(), train_batch_norm=True, name="backbone")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(called))
    model.save(tmp_path / "new.keras")
    with (
        zipfile.ZipFile(tmp_path / "new.keras") as new,
        zipfile.ZipFile(tmp_path / "old.keras", "w") as old,
    ):
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                assert b'"module": "hublayer.layers._backbone_call"' in data
                data = data.replace(b"hublayer.layers._backbone_call", b"hublayer.train._backbone")
            old.writestr(item, data)
    reloaded = keras.models.load_model(tmp_path / "old.keras")
    layer = reloaded.get_layer("backbone")
    assert type(layer) is BackboneCall
    assert layer.train_batch_norm is True
    batch = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(batch, verbose=0), model.predict(batch, verbose=0))


def test_fingerprint_ignores_names_and_trainable_but_not_weights() -> None:
    keras.utils.set_random_seed(1)
    first = _bn_backbone()
    keras.utils.set_random_seed(1)
    second = _bn_backbone()
    second.trainable = False
    assert fingerprint_model(first) == fingerprint_model(second)
    second.get_layer("block2_dense").bias.assign(np.ones(3))
    assert fingerprint_model(first) != fingerprint_model(second)


def test_classes_from_int_and_string_labels() -> None:
    ints = Classes.from_labels(np.array([0, 2, 1, 2]), [np.array([1])])
    assert ints.names == ("0", "1", "2")
    np.testing.assert_array_equal(ints.encode(np.array([2, 0]), split="train"), [2, 0])
    with pytest.raises(SpecMismatchError, match="among the training classes"):
        ints.encode(np.array([3]), split="test")

    strings = Classes.from_labels(np.array(["dog", "cat", "dog"]))
    assert strings.names == ("cat", "dog")
    np.testing.assert_array_equal(strings.encode(np.array(["dog", "cat"]), split="x"), [1, 0])
    with pytest.raises(SpecMismatchError, match=r"unknown labels \['cow'\]"):
        strings.encode(np.array(["cow"]), split="validation")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([1, 1, 1]), "at least two classes"),
        (np.array([0, -1]), "between 0 and"),
        (np.zeros([0], np.int64), "at least one example"),
    ],
)
def test_classes_reject_unusable_labels(labels: np.ndarray, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        Classes.from_labels(labels, num_classes=2 if message == "between 0 and" else None)


def test_score_accuracy_loss_and_confusion() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    scores = score(probabilities, np.array([0, 1, 1]), num_classes=2)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["loss"] == pytest.approx(-np.log([0.9, 0.8, 0.4]).mean(), rel=1e-6)
    assert scores["confusion_matrix"] == [[1, 0], [1, 1]]


def test_checkpoints_commit_resume_and_reject_other_runs(tmp_path: Path) -> None:
    model = _bn_backbone()
    model.compile("adam", "mse")
    store = Checkpoints(tmp_path / "ckpt", "run-a", resume=True)
    state = store.phase("head")
    state.best, state.best_epoch = 0.5, 0
    state.best_file = store.save_best(model, "head", 0)
    state.next_epoch = 1
    store.history.append({"epoch": 1, "phase": "head", "loss": 1.0})
    store.commit()
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["head-best-e0000.npz", "state.json"]
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["fingerprint"] == "run-a"

    again = Checkpoints(tmp_path / "ckpt", "run-a", resume=True)
    assert again.resumed
    assert again.phase("head").next_epoch == 1
    original = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1 for w in original])
    assert again.restore_best(model, "head")
    for restored, saved in zip(model.get_weights(), original, strict=True):
        np.testing.assert_array_equal(restored, saved)

    with pytest.warns(UserWarning, match="other settings"):
        other = Checkpoints(tmp_path / "ckpt", "run-b", resume=True)
    assert not other.resumed
    assert not (tmp_path / "ckpt").exists()


def test_plots_write_real_pngs(tmp_path: Path) -> None:
    history: dict[str, list[Any]] = {
        "epoch": [1, 2, 3],
        "phase": ["head", "head", "fine_tune"],
        "loss": [1.0, 0.7, 0.5],
        "accuracy": [0.5, 0.7, 0.8],
        "val_loss": [1.1, 0.8, 0.6],
        "val_accuracy": [0.4, 0.6, 0.7],
    }
    plot_curves(history, tmp_path / "curves.png")
    plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], tmp_path / "confusion.png")
    for name in ("curves.png", "confusion.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
            assert image.size[0] >= 300


def test_equal_accuracy_with_a_lower_loss_is_an_improvement(tmp_path: Path) -> None:
    """Accuracy saturates on easy data; the loss then decides which epoch is best."""
    guard = PhaseGuard(Checkpoints(tmp_path, "r", resume=False), "head", monitor="val_accuracy",
                       patience=2)  # fmt: skip
    state = PhaseState(best=1.0, best_loss=0.5)
    assert guard.improves(state, 1.0, 0.4)
    assert not guard.improves(state, 1.0, 0.6)
    assert not guard.improves(state, 0.9, 0.01)
    assert not guard.improves(state, float("nan"), 0.01)
    by_loss = PhaseGuard(Checkpoints(tmp_path, "r", resume=False), "head", monitor="val_loss",
                         patience=2)  # fmt: skip
    assert by_loss.improves(PhaseState(best=0.5), 0.4, None)
