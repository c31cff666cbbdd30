"""Case ``jax``: the MobileNetV2-sized model on the JAX backend against the same on TensorFlow.

The backend is fixed when Keras is imported, so every contender runs in a worker process
with ``KERAS_BACKEND`` set: ``hublayer.KerasLayer`` on JAX (the SavedModel converted with
tf2jax, under ``jax.jit``) and on TensorFlow (the SavedModel's own functions). Both use
the Keras calls a user would: ``predict_on_batch`` for the forward pass and
``train_on_batch`` for an Adam step of the whole backbone plus a Dense head.

Where the time goes on JAX is measured in the JAX workers' set-up, outside the timed runs:
the tf2jax conversion, the first call (tracing and XLA compilation) and the steady call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from benchmarks._data import factory_model, image_batch
from benchmarks._harness import CaseResult, CaseSpec, Plan, Ratio, require
from benchmarks._subprocess import Worker
from benchmarks._suites import Suite

__all__ = ["CASES", "finetune_step", "forward_pass"]

BATCH, SIZE, CLASSES = 32, 224, 10
JAX_FORWARD = "forward: KerasLayer on JAX (tf2jax, jit)"
TF_FORWARD = "forward: KerasLayer on TensorFlow"
JAX_STEP = "Adam step: KerasLayer on JAX (tf2jax, jit)"
TF_STEP = "Adam step: KerasLayer on TensorFlow"
NATIVE_FORWARD = "forward: keras.applications.MobileNetV2 on JAX (jit)"
NATIVE_STEP = "Adam step: keras.applications.MobileNetV2 on JAX (jit)"


def _model(path: str, trainable: bool, size: int) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    started = time.perf_counter()
    if path == "native":  # the same network built by Keras itself: no conversion at all
        layer = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), weights=None, include_top=False, pooling="avg"
        )
        layer.trainable = trainable
    else:
        layer = require("hublayer.layers", "KerasLayer").KerasLayer(path, trainable=trainable)
    model = keras.Sequential([keras.Input((size, size, 3)), layer, keras.layers.Dense(CLASSES)])
    return model, time.perf_counter() - started


def _timings(first: Callable[[], Any], built_s: float) -> dict[str, float]:
    started = time.perf_counter()
    first()
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    first()
    return {
        "construct_s": round(built_s, 3),
        "first_call_s": round(first_s, 3),  # JAX: tf2jax conversion + trace + XLA compile
        "steady_call_s": round(time.perf_counter() - started, 3),
    }


def forward_pass(model: str, batch: int = BATCH, size: int = SIZE) -> Callable[[], Any]:
    """``predict_on_batch`` on one batch, on this process's backend (a Worker target)."""
    keras_model, built_s = _model(model, trainable=False, size=size)
    x = image_batch(batch, size)
    extras = _timings(lambda: keras_model.predict_on_batch(x), built_s)
    return lambda: {**extras, "mean": float(keras_model.predict_on_batch(x).mean())}


def finetune_step(model: str, batch: int = BATCH, size: int = SIZE) -> Callable[[], Any]:
    """One ``train_on_batch`` Adam step, whole backbone trainable (a Worker target)."""
    import keras
    import numpy as np

    keras_model, built_s = _model(model, trainable=True, size=size)
    keras_model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False if keras.backend.backend() == "tensorflow" else "auto",
    )
    x = image_batch(batch, size)
    y = np.random.default_rng(0).integers(0, CLASSES, size=batch)
    extras = _timings(lambda: keras_model.train_on_batch(x, y), built_s)
    return lambda: {**extras, "loss": float(np.ravel(keras_model.train_on_batch(x, y))[0])}


def _where_time_goes(result: CaseResult) -> str | None:
    parts = []
    for name, what in ((JAX_FORWARD, "forward"), (JAX_STEP, "Adam step")):
        contender = result.contender(name)
        samples = contender.samples if contender is not None else []
        if not samples:
            continue
        e = samples[0].extras
        parts.append(
            f"{what}: layer construction (load + op check) {e.get('construct_s')} s, first "
            f"call (tf2jax conversion, tracing, XLA compilation) {e.get('first_call_s')} s, "
            f"then {e.get('steady_call_s')} s per call"
        )
    if not parts:
        return None
    text = "Where the time goes on JAX, measured once in set-up: " + "; ".join(parts) + "."
    for ours, native, peer, what in (
        (JAX_FORWARD, NATIVE_FORWARD, TF_FORWARD, "Forward"),
        (JAX_STEP, NATIVE_STEP, TF_STEP, "Adam step"),
    ):
        conversion, total = result.ratio(ours, native), result.ratio(ours, peer)
        if conversion is None or conversion.value is None:
            continue
        text += (
            f" {what}: the converted model takes {conversion.value:.2f}x the time of the same "
            "network written in Keras on JAX (the share of tf2jax's graph)"
        )
        if total is not None and total.value is not None:
            text += (
                f", and that Keras network takes {total.value / conversion.value:.2f}x "
                "TensorFlow's time (the share of XLA's CPU kernels against TensorFlow's)"
            )
        text += "."
    return text


def jax_case(suite: Suite) -> Plan:
    require("tf2jax")
    size = suite.pick(SIZE, SIZE)
    path = str(factory_model(image_size=size))
    params = {"model": path, "batch": BATCH, "size": size}
    native = {**params, "model": "native"}
    on_jax, on_tf = {"KERAS_BACKEND": "jax"}, {"KERAS_BACKEND": "tensorflow"}
    target = "benchmarks.cases._jax:"
    return Plan(
        [
            Worker(JAX_FORWARD, target + "forward_pass", params, env=on_jax, items=BATCH),
            Worker(
                TF_FORWARD, target + "forward_pass", params, env=on_tf, role="peer", items=BATCH
            ),
            Worker(JAX_STEP, target + "finetune_step", params, env=on_jax, items=BATCH),
            Worker(
                NATIVE_FORWARD,
                target + "forward_pass",
                native,
                env=on_jax,
                role="peer",
                items=BATCH,
            ),
            Worker(
                NATIVE_STEP, target + "finetune_step", native, env=on_jax, role="peer", items=BATCH
            ),
            Worker(TF_STEP, target + "finetune_step", params, env=on_tf, role="peer", items=BATCH),
        ],
        [
            Ratio(JAX_FORWARD, TF_FORWARD, "time", "<= 1.0"),
            Ratio(JAX_STEP, TF_STEP, "time", "<= 1.0"),
            Ratio(JAX_FORWARD, NATIVE_FORWARD, "time"),
            Ratio(JAX_STEP, NATIVE_STEP, "time"),
        ],
        warmup=suite.pick(1, 2),
        reps=suite.pick(5, 10),
        budget_s=suite.pick(90.0, math.inf),
        notes=[
            f"The MobileNetV2-sized factory model at {size} px, batch {BATCH}, in one worker "
            "process per contender with KERAS_BACKEND set. Forward: predict_on_batch. Adam "
            f"step: train_on_batch, whole backbone trainable, Dense({CLASSES}) head, sparse "
            "cross-entropy; TensorFlow without XLA (Keras' default on CPU), JAX under jax.jit "
            "(Keras' JAX trainer always compiles).",
            _where_time_goes,
        ],
    )


CASES: tuple[CaseSpec, ...] = (
    CaseSpec(
        "jax",
        "Forward and Adam step on JAX (tf2jax) against TensorFlow, MobileNetV2-sized",
        jax_case,
        timeout_s=(600.0, 1800.0),
        issue="#15",
    ),
)
