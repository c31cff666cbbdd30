"""Saving models that hold a KerasLayer: .keras round trips, self-contained archives, export.

About 40 s on 2 cores; the fresh-process reload is marked slow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import IMAGE_SIZE, bert_inputs, images, models, sentences

import hublayer as hub
from hublayer.errors import ModelNotFoundError


def _copy(name: str, tmp_path: Path) -> str:
    """A private copy of a factory model, so a test can delete it."""
    source = Path(models()[name])
    target = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    return str(target)


def _fine_tuned_classifier(handle: str, **kwargs: Any) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    layer = hub.KerasLayer(handle, trainable=True, **kwargs)
    model = keras.Model(inputs, keras.layers.Dense(3)(layer(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    targets = np.random.default_rng(2).normal(size=(8, 3)).astype("float32")
    model.fit(images(8), targets, batch_size=4, epochs=1, verbose=0)
    return model


def _members(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def test_fine_tuned_model_reloads_from_a_self_contained_archive(tmp_path: Path) -> None:
    handle = _copy("image_feature_vector", tmp_path)
    model = _fine_tuned_classifier(handle)
    original = hub.load(models()["image_feature_vector"])
    fine_tuned = model.layers[1].weights[0].numpy()
    assert not np.allclose(fine_tuned, original.trainable_variables[0].numpy())
    archive = tmp_path / "classifier.keras"
    model.save(archive)
    shutil.rmtree(handle)  # the model's folder is gone: only the archive is left

    reloaded = keras.models.load_model(archive)
    x = images(4, seed=5)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(reloaded.layers[1].weights[0].numpy(), fine_tuned)
    assert "assets/layers/keras_layer/saved_model/saved_model.pb" in _members(archive)
    # Training goes on: same trainable variables, optimizer state restored.
    assert [w.path for w in reloaded.trainable_weights] == [w.path for w in model.trainable_weights]
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    reloaded.fit(x, np.zeros((4, 3), "float32"), epochs=1, verbose=0)
    assert not np.array_equal(reloaded.layers[1].weights[0].numpy(), fine_tuned)


def test_saving_again_after_a_reload(tmp_path: Path) -> None:
    handle = _copy("image_feature_vector", tmp_path)
    model = _fine_tuned_classifier(handle)
    model.save(tmp_path / "first.keras")
    shutil.rmtree(handle)
    first = keras.models.load_model(tmp_path / "first.keras")
    first.save(tmp_path / "second.keras")
    second = keras.models.load_model(tmp_path / "second.keras")
    x = images(2)
    np.testing.assert_allclose(second(x), model(x), rtol=1e-6)


def test_without_embedding_the_reload_resolves_the_handle(tmp_path: Path) -> None:
    handle = _copy("image_feature_vector", tmp_path)
    model = _fine_tuned_classifier(handle, embed_saved_model=False)
    archive = tmp_path / "small.keras"
    model.save(archive)
    assert not [m for m in _members(archive) if "saved_model" in m]
    reloaded = keras.models.load_model(archive)
    x = images(2)
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-6)  # fine-tuned values applied

    shutil.rmtree(handle)
    with pytest.raises(ModelNotFoundError) as raised:
        keras.models.load_model(archive)
    assert handle in str(raised.value)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("text_embedding", {}),
        ("tf1_saved_model", {}),
        ("bert_encoder", {"output_key": "pooled_output"}),
        ("keras_file", {}),
    ],
)
def test_every_kind_of_model_round_trips(name: str, kwargs: dict[str, Any], tmp_path: Path) -> None:
    handle = _copy(name, tmp_path)
    if name in ("text_embedding", "tf1_saved_model"):
        x: Any = sentences()
        inputs: Any = keras.Input((), dtype="string")
    elif name == "bert_encoder":
        x = bert_inputs()
        inputs = {k: keras.Input((None,), dtype="int32", name=k) for k in x}
    else:
        x = images(2)
        inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    model = keras.Model(inputs, hub.KerasLayer(handle, **kwargs)(inputs))
    model.save(tmp_path / "model.keras")
    Path(handle).unlink() if Path(handle).is_file() else shutil.rmtree(handle)
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-6)
    assert [w.shape for w in reloaded.weights] == [w.shape for w in model.weights]
    reloaded.save(tmp_path / "again.keras")  # the reloaded layer owns its files


@pytest.mark.slow
def test_reload_in_a_fresh_process_with_the_cache_deleted(
    tmp_path: Path, hublayer_env: Path
) -> None:
    archive = hub.testing.archive(models()["image_feature_vector"], tmp_path / "ifv.tar.gz")
    model = _fine_tuned_classifier(archive)  # resolved into the test's cache
    assert any(hublayer_env.iterdir())
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", images(3))
    np.save(tmp_path / "expected.npy", model.predict(images(3), verbose=0))
    shutil.rmtree(hublayer_env)
    Path(archive).unlink()
    script = textwrap.dedent(
        f"""
        import hublayer  # before keras: registration waits for keras to be imported
        import keras, numpy as np
        model = keras.models.load_model({str(tmp_path / "model.keras")!r})
        got = model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0)
        np.testing.assert_allclose(got, np.load({str(tmp_path / "expected.npy")!r}), rtol=1e-5)
        print("RELOADED")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert "RELOADED" in done.stdout, done.stderr[-3000:]


def test_export_for_serving_matches(tmp_path: Path) -> None:
    model = _fine_tuned_classifier(models()["image_feature_vector"])
    model.export(tmp_path / "serving", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "serving"))
    x = images(3)
    np.testing.assert_allclose(served.serve(x), model(x), rtol=1e-5, atol=1e-6)
    signature = served.signatures["serving_default"]
    (output,) = signature(tf.constant(x)).values()
    np.testing.assert_allclose(output, model(x), rtol=1e-5, atol=1e-6)


def test_export_of_a_text_model_keeps_string_inputs(tmp_path: Path) -> None:
    inputs = keras.Input((), dtype="string")
    layer = hub.KerasLayer(models()["tf1_saved_model"])
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.export(tmp_path / "serving", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "serving"))
    np.testing.assert_allclose(served.serve(sentences()), model(sentences()), rtol=1e-5)


def test_weights_files_round_trip(tmp_path: Path) -> None:
    model = _fine_tuned_classifier(models()["image_feature_vector"])
    model.save_weights(tmp_path / "w.weights.h5")
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    fresh = hub.KerasLayer(models()["image_feature_vector"])
    other = keras.Model(inputs, keras.layers.Dense(3)(fresh(inputs)))
    other.load_weights(tmp_path / "w.weights.h5")
    x = images(2)
    np.testing.assert_allclose(other(x), model(x), rtol=1e-6)
