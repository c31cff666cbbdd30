"""Case ``finetune_step``: hublayer's fine-tune step against a hand-written one, in one process.

``finetune`` runs each contender in a process of its own, so its ratio also holds
whatever differs between two processes (memory layout, thread pools, what else each
imported). Here both steps live in one process and alternate, so the ratio is what
hublayer's layer and Keras' ``train_on_batch`` add to the work of the step itself.

The hand-written step is ``finetune``'s: ``tf.saved_model.load``, a ``tf.Variable`` head,
``GradientTape``, in one ``tf.function``. Its Adam is written out in TensorFlow ops, the
update tf_keras and Keras 3 both make (Keras 3's optimizers take Keras variables only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from benchmarks._data import factory_model
from benchmarks._harness import CaseSpec, InProcess, Plan, Ratio
from benchmarks._suites import Suite
from benchmarks.cases._layers import BATCH, CLASSES, OURS, _inputs, finetune_ours

__all__ = ["CASES"]

TAPE = "GradientTape step (hand-written, same process)"


def _tape(path: str, rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999) -> Callable[[], Any]:
    import tensorflow as tf

    tf.random.set_seed(0)
    loaded = tf.saved_model.load(path)
    x, y = _inputs()
    dim = int(loaded(x[:1], training=False).shape[-1])
    kernel = tf.Variable(tf.random.normal([dim, CLASSES], stddev=dim**-0.5), name="head_kernel")
    bias = tf.Variable(tf.zeros([CLASSES]), name="head_bias")
    variables = [*loaded.trainable_variables, kernel, bias]
    slots = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
    step_no = tf.Variable(0.0)
    regularization = list(getattr(loaded, "regularization_losses", []))

    @tf.function  # type: ignore[untyped-decorator]
    def step(images: Any, labels: Any) -> Any:
        with tf.GradientTape() as tape:
            logits = tf.matmul(loaded(images, training=True), kernel) + bias
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
            if regularization:
                loss += tf.add_n([fn() for fn in regularization])
        grads = tape.gradient(loss, variables)
        step_no.assign_add(1.0)
        alpha = rate * tf.sqrt(1 - b2**step_no) / (1 - b1**step_no)
        for var, grad, (m, v) in zip(variables, grads, slots, strict=True):
            m.assign_add((grad - m) * (1 - b1))
            v.assign_add((tf.square(grad) - v) * (1 - b2))
            var.assign_sub(m * alpha / (tf.sqrt(v) + 1e-7))
        return loss

    return lambda: {"loss": float(step(x, y))}


def finetune_step(suite: Suite) -> Plan:
    path = str(factory_model())
    return Plan(
        [
            InProcess(OURS, lambda: finetune_ours(path), items=BATCH),
            InProcess(TAPE, lambda: _tape(path), role="peer", items=BATCH),
        ],
        [Ratio(OURS, TAPE, "time", "<= 1.0")],
        warmup=2,
        reps=suite.pick(8, 12),
        min_reps=8,
        budget_s=suite.pick(60.0, math.inf),
        notes=[
            "finetune's step (batch 32 at 224 px, whole backbone trainable, Dense head, Adam "
            "lr 1e-3), both contenders in the harness's one process, alternating: no "
            "difference between processes in the ratio.",
        ],
    )


CASES = (
    CaseSpec(
        "finetune_step",
        "Fine-tune step, hublayer vs a hand-written tape step, one process",
        finetune_step,
        (600.0, 3600.0),
        issue="#22",
    ),
)
