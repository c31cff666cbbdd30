"""One cold load, up to the first output: ``python -m benchmarks.peers._coldstart WHICH PATH``.

WHICH is one of :data:`LOADERS`. The process imports what it needs, loads the SavedModel
at PATH, runs one image through it, and prints :data:`~benchmarks._subprocess.FIRST_OUTPUT`
with its own CPU time; the parent times spawn to marker. ``hub`` needs
``TF_USE_LEGACY_KERAS=1`` in the environment. Exit status 3 means the loader's feature is
not built yet.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["LOADERS", "main"]


def _image() -> Any:
    from benchmarks._data import image_batch

    return image_batch(1, 224)


def _hublayer(path: str) -> Any:
    import importlib

    try:
        keras_layer = importlib.import_module("hublayer.layers").KerasLayer
    except (ImportError, AttributeError) as exc:
        print(f"hublayer.KerasLayer is not built yet: {exc}", file=sys.stderr)
        raise SystemExit(3) from exc
    return keras_layer(path)(_image())


def _hub(path: str) -> Any:
    from benchmarks.peers._legacy import import_hub

    hub = import_hub()

    return hub.KerasLayer(path)(_image())


def _tfsm(path: str) -> Any:
    import keras

    out = keras.layers.TFSMLayer(path, call_endpoint="serving_default")(_image())
    return next(iter(out.values())) if isinstance(out, dict) else out


def _saved_model(path: str) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(path)(_image(), training=False)


#: Loader name -> function that loads PATH and returns the first output.
LOADERS: dict[str, Callable[[str], Any]] = {
    "hublayer": _hublayer,
    "hub": _hub,
    "tfsm": _tfsm,
    "saved_model": _saved_model,
}


def main() -> None:
    """Load, compute the first output, print the marker."""
    from benchmarks._subprocess import FIRST_OUTPUT

    which, path = sys.argv[1], sys.argv[2]
    out = LOADERS[which](path)
    shape = list(getattr(out, "shape", ()))
    times = os.times()
    print(f"{FIRST_OUTPUT} {json.dumps({'cpu': times.user + times.system, 'shape': shape})}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
