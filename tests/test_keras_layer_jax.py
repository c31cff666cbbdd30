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
import zipfile
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


def keras_model(path: Path) -> None:
    """A ``.keras`` file as a handle: the layer then wraps a Keras model, not a SavedModel."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    rng = np.random.default_rng(2)
    model.layers[0].set_weights([rng.normal(size=(4, 3)), rng.normal(size=3)])
    model.save(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    models = tmp_path_factory.mktemp("jax-models")
    # Dropout 0 in the image models: random numbers differ between TF and JAX, and the
    # training-mode step is compared weight by weight.
    testing.image_feature_vector(models / "ifv", image_size=32, dim=16, dropout=0.0)
    # A strong L2 term, so its gradient alone moves the kernels visibly in one step.
    testing.image_feature_vector(models / "reg", image_size=32, dim=16, dropout=0.0, l2=0.05)
    testing.image_classifier(models / "cls", image_size=32, num_classes=5)
    testing.bert_encoder(models / "bert")
    testing.text_embedding(models / "text")
    fixed_batch_model(models / "fixed")
    keras_model(models / "inner.keras")
    rng = np.random.default_rng(0)
    np.savez(
        models / "inputs.npz",
        images=rng.uniform(0.0, 1.0, (7, 32, 32, 3)).astype("float32"),
        ids=rng.integers(1, 100, (7, 9)).astype("int32"),
    )
    out = tmp_path_factory.mktemp("jax-out")
    results: dict[str, Any] = {"out": out, "models": models}
    for backend in ("tensorflow", "jax"):
        run_worker(backend, models, out / backend)
        results[backend] = (
            dict(np.load(out / backend / "results.npz")),
            json.loads((out / backend / "results.json").read_text()),
        )
    return results


def test_one_class_on_both_backends_with_its_backend_runner(runs: dict[str, Any]) -> None:
    _, flags = runs["jax"]
    assert flags["backend"] == "jax"
    for backend, runner in (("jax", "JaxRunner"), ("tensorflow", "TFRunner")):
        flags = runs[backend][1]
        assert flags["ifv/class"] == "hublayer.layers._keras_layer.KerasLayer", backend
        assert flags["ifv/isinstance"] is True
        assert flags["ifv/runner"] == runner


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


def test_a_keras_file_handle_runs_and_fine_tunes_on_jax(runs: dict[str, Any]) -> None:
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    np.testing.assert_allclose(jax_arrays["keras/out"], tf_arrays["keras/out"], atol=1e-5)
    np.testing.assert_allclose(jax_arrays["keras/step"], tf_arrays["keras/step"], atol=1e-5)
    assert runs["jax"][1]["keras/trainable"] == runs["tensorflow"][1]["keras/trainable"] == 2


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
    # Adam on BERT's embedding tables: JAX is compared with TensorFlow's step on dense
    # gradients; see test_adam_on_embedding_tables_differs_only_on_rows_looked_up_twice.
    reference = "adam-dense" if (name, optimizer) == ("bert", "adam") else optimizer
    paths = runs["jax"][1][f"paths/{name}"]
    for key in keys:
        path = paths[int(key.rsplit("/", 1)[1])]
        expected = tf_arrays[key.replace(f"/{optimizer}/", f"/{reference}/")]
        np.testing.assert_allclose(jax_arrays[key], expected, atol=1e-4, err_msg=path)
    # The step did something: weights moved from the saved model's, on both backends.
    for arrays in (tf_arrays, jax_arrays):
        moved = [
            not np.array_equal(arrays[key], arrays[key.replace(f"/{optimizer}/", "/init/")])
            for key in keys
        ]
        assert sum(moved) >= 2, moved


def test_adam_on_embedding_tables_differs_only_on_rows_looked_up_twice(
    runs: dict[str, Any],
) -> None:
    """JAX's one numeric difference besides Dropout (docs/API.md, "Keras backends").

    On TensorFlow, an embedding lookup's gradient is ``IndexedSlices`` with one entry per
    lookup, and Keras' Adam squares each entry before summing: a row looked up k times
    gets sum(g_i^2) where JAX's dense gradient gives (sum g_i)^2, Adam's definition.
    Every other weight, and every row looked up at most once, matches the dense step.
    """
    tf_arrays, flags = runs["tensorflow"]
    lookups = flags["lookups/bert"]
    assert lookups, "no weight got an IndexedSlices gradient on TensorFlow"
    paths = runs["jax"][1]["paths/bert"]
    differing = []
    for key in sorted(k for k in tf_arrays if k.startswith("step/bert/adam/")):
        index = key.rsplit("/", 1)[1]
        sparse, dense = tf_arrays[key], tf_arrays[f"step/bert/adam-dense/{index}"]
        if index not in lookups:
            np.testing.assert_allclose(sparse, dense, atol=1e-6, err_msg=paths[int(index)])
            continue
        counts = np.asarray(lookups[index])
        assert "embeddings" in paths[int(index)], paths[int(index)]
        np.testing.assert_allclose(sparse[counts <= 1], dense[counts <= 1], atol=1e-6)
        repeated = counts >= 2
        assert repeated.any()
        differing.append(np.abs(sparse[repeated] - dense[repeated]).max())
    # Still a difference: if Keras ever sums repeated rows first, docs/API.md must change.
    assert max(differing) > 1e-4, differing


def test_trainable_weights_list_every_trainable_variable_and_all_move(
    runs: dict[str, Any],
) -> None:
    for backend in ("tensorflow", "jax"):
        flags = runs[backend][1]
        assert flags["trainable_count"] == flags["model_trainable_count"], backend
        # One fit epoch (Adam, MSE on a linear head) moved every one of them.
        moved = flags["training/trainable_moved"]
        assert len(moved) == flags["trainable_count"], backend
        assert all(moved), (backend, moved)


def test_regularization_losses_and_their_gradients_match_tensorflow(
    runs: dict[str, Any],
) -> None:
    tf_flags, jax_flags = runs["tensorflow"][1], runs["jax"][1]
    assert len(jax_flags["losses/trainable"]) == len(tf_flags["losses/trainable"]) >= 2
    np.testing.assert_allclose(jax_flags["losses/trainable"], tf_flags["losses/trainable"], 1e-5)
    assert min(tf_flags["losses/trainable"]) > 0
    assert jax_flags["losses/frozen"] == tf_flags["losses/frozen"] == [0.0] * 2
    tf_arrays, jax_arrays = runs["tensorflow"][0], runs["jax"][0]
    paths = jax_flags["reg/paths"]
    for i, path in enumerate(paths):
        np.testing.assert_allclose(
            jax_arrays[f"reg/after/{i}"], tf_arrays[f"reg/after/{i}"], atol=1e-6, err_msg=path
        )
        if path.endswith("conv/kernel"):  # only the L2 term's gradient moved it
            before = tf_arrays[f"reg/before/{i}"]
            np.testing.assert_allclose(
                jax_arrays[f"reg/after/{i}"], before * (1 - 0.1 * 2 * 0.05), rtol=1e-5
            )


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


def test_a_keras_file_of_the_former_jax_class_still_loads(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    """Files saved on JAX before the two classes merged name ``hublayer.layers._jax_layer``
    as the layer's module; Keras finds the class by its registered name instead."""
    import keras

    import hublayer.layers  # noqa: F401  (registers KerasLayer: this test is about the name)

    written = runs["out"] / "jax" / "jax.keras"
    older = tmp_path / "older.keras"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(older, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert '"module": "hublayer.layers._keras_layer"' in text
                data = text.replace(
                    '"module": "hublayer.layers._keras_layer"',
                    '"module": "hublayer.layers._jax_layer"',
                ).encode()
            target.writestr(item, data)
    loaded = keras.models.load_model(older)
    images = np.load(runs["models"] / "inputs.npz")["images"]
    predicted = loaded.predict(images, verbose=0)
    np.testing.assert_allclose(predicted, runs["jax"][0]["roundtrip/expected"], atol=1e-5)


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
import sys, numpy as np, keras, tensorflow as tf, hublayer as hub
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
trainable = {id(w) for w in layer.trainable_weights}
paths = [p for p, w in zip(layer.variable_paths, layer.weights) if id(w) in trainable]
before = [np.array(w) for w in layer.trainable_weights]
loss = float(np.ravel(model.train_on_batch(images, np.array([0, 1])))[0])
unmoved = [p for p, a, b in zip(paths, before, layer.trainable_weights) if np.array_equal(a, b)]
np.savez(
    out, features=features, loss=loss, count=len(before), unmoved=np.array(unmoved, dtype=str),
    saved_count=len(tf.saved_model.load(path).trainable_variables),
)
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
    # trainable_weights list every trainable variable of the SavedModel (147), and one SGD
    # step moves each of them but the betas of BatchNorms whose output reaches the loss
    # only through another BatchNorm in training mode: that one subtracts any per-channel
    # constant, so their gradient is float noise (about 1e-8, the same on TensorFlow),
    # and 1e-3 times it is below their float32 spacing. Not the layer's tracking.
    assert int(result["count"]) == int(result["saved_count"]) == 147
    unmoved = [str(p) for p in result["unmoved"]]
    assert all(p.endswith("_project_bn/beta") for p in unmoved), unmoved
    assert len(unmoved) <= 0.1 * int(result["count"]), unmoved


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
