"""Load and call corpus models with plain TensorFlow or Keras in a fresh process.

:func:`run_prover` runs the jobs ``[{"path": ..., "loader": ...}]`` one after another in
one new Python process and returns what it printed; :func:`segments` cuts that output
per job. A job's output lies between ``START i`` and ``END i``; ``CALLED`` means it loaded
and ran, ``ERROR`` why not; a job that kills the process leaves no ``END``.

Example:
    >>> segments("START 0\\nOUT [1.0]\\nCALLED\\nEND 0\\nSTART 1\\n")
    {0: ('OUT [1.0]\\nCALLED', True), 1: ('', False)}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

__all__ = ["run_prover", "segments"]

#: Runs in a fresh process: for each job, load with plain TF/Keras, call everything, print
#: the outputs between START and END markers (a job that fails prints ERROR and the rest
#: go on; a job that kills the process leaves no END).
_PROVER = r"""
import json, sys, traceback
jobs = json.loads(sys.argv[1])
import numpy as np
import tensorflow as tf
x = np.ones([1, 4], np.float32)
def show(value):
    for leaf in tf.nest.flatten(value):
        array = np.asarray(leaf)
        if array.dtype == object:
            print("OUT", [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                          for v in array.ravel().tolist()])
        else:
            print("OUT", array.ravel().tolist()[:8])
    sys.stdout.flush()
def feed_for(shape, dtype):
    dtype = tf.as_dtype(dtype)
    dims = [1 if d is None else d for d in shape]
    if dtype == tf.string:
        return tf.fill(dims, "the cat")
    return tf.ones(dims, dtype) if dtype.is_floating else tf.zeros(dims, dtype)
def run(path, loader):
    if loader == "tf1_session":
        with tf.compat.v1.Session(graph=tf.Graph()) as session:
            tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    elif loader in ("keras", "keras_unsafe"):
        import keras
        import hublayer  # registers KerasLayer, as a user's code would
        model = keras.saving.load_model(path, safe_mode=loader == "keras")
        show(model([feed_for(t.shape, t.dtype) for t in model.inputs]))
    else:
        model = tf.saved_model.load(path)
        calls = [lambda: model(tf.constant(x))] if callable(model) else []
        for function in model.signatures.values():
            inputs = function.structured_input_signature[1]
            feed = {k: feed_for(spec.shape, spec.dtype) for k, spec in inputs.items()}
            calls.append(lambda function=function, feed=feed: function(**feed))
        errors = []
        for call in calls:  # each on its own: a one-shot harm may fail the second time
            try:
                show(call())
            except Exception as error:
                errors.append(error)
        if errors and len(errors) == len(calls):
            raise errors[0]
for index, job in enumerate(jobs):
    print(f"\nSTART {index}", flush=True)
    try:
        run(job["path"], job["loader"])
        print("\nCALLED", flush=True)
    except Exception:
        print("ERROR", traceback.format_exc().strip().splitlines()[-1][:300], flush=True)
    print(f"\nEND {index}", flush=True)
"""


def run_prover(jobs: list[dict[str, str]], timeout: float) -> tuple[str, int | None]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-c", _PROVER, json.dumps(jobs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as error:
        out = error.stdout.decode() if isinstance(error.stdout, bytes) else error.stdout or ""
        return out, None
    return done.stdout, done.returncode


def segments(stdout: str) -> dict[int, tuple[str, bool]]:
    """index -> (its output, whether it reached END)."""
    found: dict[int, tuple[str, bool]] = {}
    current: int | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("START "):
            current, lines = int(line.split()[1]), []
        elif line.startswith("END ") and current is not None:
            found[current] = ("\n".join(lines), True)
            current = None
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = ("\n".join(lines), False)
    return found
