"""KerasLayer on the JAX backend (tf2jax) against the same checks on TensorFlow.

The backend is chosen when Keras is imported, so both run in subprocesses of
``tests/_jax_worker.py``: first TensorFlow, then JAX (which also loads the ``.keras`` file
TensorFlow wrote). This module compares what they wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hublayer import testing

pytest.importorskip("tf2jax")

WORKER = Path(__file__).with_name("_jax_worker.py")


def run_worker(backend: str, models: Path, out: Path, code: str | None = None) -> Any:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(WORKER.parent.parent / "src"), env.get("PYTHONPATH", "")]
    )
    out.mkdir(parents=True, exist_ok=True)
    argv = (
        [sys.executable, "-c", code]
        if code
        else [sys.executable, str(WORKER), str(models), str(out)]
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def fixed_batch_model(path: Path) -> None:
    """A SavedModel traced for batches of exactly 1, as onnx2tf writes them."""
    import tensorflow as tf

    class Fixed(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(np.arange(8, dtype="float32").reshape(4, 2))

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])  # type: ignore[untyped-decorator]
        def __call__(self, x: Any) -> Any:
            return tf.matmul(x, self.w)

    tf.saved_model.save(Fixed(), str(path))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    models = tmp_path_factory.mktemp("jax-models")
    # Dropout 0 in the image models: random numbers differ between TF and JAX, and the
    # training-mode step is compared weight by weight.
    testing.image_feature_vector(models / "ifv", image_size=32, dim=16, dropout=0.0)
    testing.image_classifier(models / "cls", image_size=32, num_classes=5)
    testing.bert_encoder(models / "bert")
    testing.text_embedding(models / "text")
    fixed_batch_model(models / "fixed")
    rng = np.random.default_rng(0)
    np.savez(
        models / "inputs.npz",
        images=rng.uniform(0.0, 1.0, (7, 32, 32, 3)).astype("float32"),
        ids=rng.integers(1, 100, (7, 9)).astype("int32"),
    )
    out = tmp_path_factory.mktemp("jax-out")
    results = {}
    for backend in ("tensorflow", "jax"):
        run_worker(backend, models, out / backend)
        results[backend] = (
            dict(np.load(out / backend / "results.npz")),
            json.loads((out / backend / "results.json").read_text()),
        )
    return results


def test_the_jax_run_really_used_the_jax_layer(runs: dict[str, Any]) -> None:
    _, flags = runs["jax"]
    assert flags["backend"] == "jax"
    assert flags["ifv/class"] == "hublayer.layers._jax_layer"
    assert flags["ifv/isinstance"] is True
    assert runs["tensorflow"][1]["ifv/class"] == "hublayer.layers._keras_layer"


@pytest.mark.parametrize("name", ["ifv", "cls", "bert"])
def test_outputs_match_tensorflow_at_batch_1_and_7(runs: dict[str, Any], name: str) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    keys = [k for k in tf_arrays if k.startswith(f"{name}/")]
    assert len(keys) >= 2
    for key in keys:
        assert jax_arrays[key].shape == tf_arrays[key].shape, key
        np.testing.assert_allclose(jax_arrays[key], tf_arrays[key], atol=1e-5, err_msg=key)


def test_a_model_built_on_one_batch_size_predicts_others(runs: dict[str, Any]) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    for key in ("predict/b1", "predict/b7"):
        np.testing.assert_allclose(jax_arrays[key], tf_arrays[key], atol=1e-5)
    assert jax_arrays["predict/b7"].shape == (7, 16)


def test_a_fixed_batch_model_predicts_other_batch_sizes(runs: dict[str, Any]) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    assert jax_arrays["fixed/predict"].shape == (7, 2)
    np.testing.assert_allclose(jax_arrays["fixed/predict"], tf_arrays["fixed/predict"], atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("name", ["ifv", "cls", "bert"])
def test_one_fine_tuning_step_matches_tensorflow(
    runs: dict[str, Any], name: str, optimizer: str
) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    prefix = f"step/{name}/{optimizer}/"
    keys = sorted(k for k in tf_arrays if k.startswith(prefix))
    assert keys
    assert keys == sorted(k for k in jax_arrays if k.startswith(prefix))
    paths = runs["jax"][1][f"paths/{name}"]
    for key in keys:
        path = paths[int(key.rsplit("/", 1)[1])]
        if optimizer == "adam" and name == "bert" and "embeddings" in path:
            # TF hands Keras' Adam an IndexedSlices gradient for an embedding table and
            # squares each looked-up row separately (ids repeat in a batch); JAX's dense
            # gradient sums them first. SGD, linear in the gradient, matches them exactly.
            continue
        np.testing.assert_allclose(jax_arrays[key], tf_arrays[key], atol=1e-4, err_msg=path)
    # The step did something: weights moved from the saved model's, on both backends.
    for arrays in (tf_arrays, jax_arrays):
        moved = [
            not np.array_equal(arrays[key], arrays[key.replace(f"/{optimizer}/", "/init/")])
            for key in keys
        ]
        assert sum(moved) >= 2, moved


def test_frozen_weights_never_move_and_batchnorm_moves_only_in_training(
    runs: dict[str, Any],
) -> None:
    for backend in ("tensorflow", "jax"):
        flags = runs[backend][1]
        assert flags["frozen/moved"] == [False] * len(flags["frozen/moved"]), backend
        assert not any(flags["inference/moved"]), backend
        moved = flags["training/moved"]
        assert all(moved[p] for p in moved if "moving_" in p), (backend, moved)
        assert all(moved[p] for p in moved if p.endswith(("kernel", "gamma", "beta"))), backend
        assert flags["trainable_count"] == 6
    assert runs["jax"][1]["training/moved"] == runs["tensorflow"][1]["training/moved"]


def test_keras_round_trip_is_self_contained_and_keeps_fine_tuned_weights(
    runs: dict[str, Any],
) -> None:
    arrays, flags = runs["jax"]
    np.testing.assert_allclose(arrays["roundtrip/loaded"], arrays["roundtrip/expected"], atol=1e-6)
    assert flags["roundtrip/same_weights"] is True


def test_a_keras_file_saved_on_tensorflow_loads_on_jax(runs: dict[str, Any]) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    np.testing.assert_allclose(jax_arrays["crossload"], tf_arrays["roundtrip/expected"], atol=1e-5)


def test_unsupported_ops_fail_at_construction_naming_them(runs: dict[str, Any]) -> None:
    assert runs["tensorflow"][1]["text/error"] is None
    message = runs["jax"][1]["text/error"]
    assert message is not None
    assert "StringLower" in message
    assert "StringToHashBucketFast" in message
    assert "KERAS_BACKEND=tensorflow" in message
    assert "signature=" in message


def test_torch_backend_is_refused_with_the_reason(tmp_path: Path) -> None:
    code = (
        "import keras, hublayer as hub\n"
        "from hublayer.errors import BackendError\n"
        "try:\n"
        "    hub.KerasLayer('/nonexistent')\n"
        "except BackendError as e:\n"
        "    print('ERR', e.backend, e)\n"
    )
    pytest.importorskip("torch")
    done = run_worker("torch", tmp_path, tmp_path / "o", code=code)
    assert "ERR torch" in done.stdout
    assert "KERAS_BACKEND=jax" in done.stdout
    assert "PyTorch" in done.stdout


ZOO_ON_JAX = """
import sys, numpy as np, keras, hublayer as hub
path, images, out = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
layer = hub.KerasLayer(path, trainable=True)
features = np.asarray(keras.ops.convert_to_numpy(layer(images)))
model = keras.Sequential([keras.Input(images.shape[1:]), layer, keras.layers.Dense(3)])
# The head's outputs are logits: without from_logits, a true class whose raw output is
# not positive is clipped to a probability of 1e-7 and its gradient is 0 (the "0 of 147
# weights moved" of some random heads, depending on PYTHONHASHSEED).
model.compile(
    optimizer=keras.optimizers.SGD(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
before = [np.array(w) for w in layer.trainable_weights]
loss = float(np.ravel(model.train_on_batch(images, np.array([0, 1])))[0])
moved = sum(not np.array_equal(a, np.array(b)) for a, b in zip(before, layer.trainable_weights))
np.savez(out, features=features, loss=loss, moved=moved, count=len(before))
"""


@pytest.mark.slow
def test_zoo_efficientnet_lite0_runs_on_jax_like_on_tensorflow(tmp_path: Path) -> None:
    import hublayer as hub
    from hublayer import zoo

    path = zoo.build_efficientnet_lite0(image_size=224)
    images = np.random.default_rng(0).uniform(0.0, 1.0, (2, 224, 224, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    expected = np.asarray(hub.KerasLayer(str(path))(images))
    script = ZOO_ON_JAX.replace("sys.argv[1]", repr(str(path)))
    script = script.replace("sys.argv[2]", repr(str(tmp_path / "images.npy")))
    script = script.replace("sys.argv[3]", repr(str(tmp_path / "jax.npz")))
    run_worker("jax", tmp_path, tmp_path / "o", code=script)
    result = np.load(tmp_path / "jax.npz")
    assert result["features"].shape == (2, 1280)
    np.testing.assert_allclose(result["features"], expected, atol=1e-4, rtol=1e-4)
    assert np.isfinite(result["loss"])
    assert int(result["count"]) > 100
    assert int(result["moved"]) >= 0.9 * int(result["count"])


FIT_CLASSIFIER = """
import json, sys, keras
from hublayer import train
model, data, val, out = sys.argv[1:5]
scores = {}
for mode in ("feature_extraction", "fine_tune"):
    result = train.fit_classifier(
        model, data, validation=val, mode=mode, epochs=12, fine_tune_epochs=3,
        learning_rate=1e-2, batch_size=16, out_dir=f"{out}/{mode}", progress=False,
        embedding_cache=False,
    )
    scores[mode] = result.metrics["splits"]["validation"]["accuracy"]
print(json.dumps({"backend": keras.backend.backend(), **scores}))
"""


@pytest.mark.slow
def test_fit_classifier_reaches_the_same_accuracy_on_jax(tmp_path: Path) -> None:
    model = testing.image_feature_vector(tmp_path / "ifv", image_size=32, dim=16)
    data = testing.image_records(tmp_path / "rec" / "train", 150, classes=3, size=32)
    val = testing.image_records(tmp_path / "rec" / "val", 60, classes=3, size=32, seed=1)
    scores = {}
    for backend in ("tensorflow", "jax"):
        script = FIT_CLASSIFIER.replace(
            "sys.argv[1:5]", repr([model, data, val, str(tmp_path / backend)])
        )
        done = run_worker(backend, tmp_path, tmp_path / f"o-{backend}", code=script)
        scores[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    assert scores["jax"]["backend"] == "jax"
    for mode in ("feature_extraction", "fine_tune"):
        assert abs(scores["jax"][mode] - scores["tensorflow"][mode]) <= 0.1, scores
    assert scores["jax"]["fine_tune"] >= 0.9, scores
