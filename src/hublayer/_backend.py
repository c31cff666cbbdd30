"""The one check that the active Keras backend can run a SavedModel.

Example:
    >>> require_tensorflow_backend("build a KerasLayer")  # on the TensorFlow backend
"""

from __future__ import annotations

import keras

from hublayer.errors import BackendError

__all__ = ["require_tensorflow_backend"]


def require_tensorflow_backend(purpose: str) -> None:
    """Raise :class:`BackendError` unless Keras runs on TensorFlow.

    Args:
        purpose: what needs TensorFlow, for the message ("export a SavedModel").

    Raises:
        BackendError: the backend is JAX, PyTorch or another; says how to switch.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"Expected the TensorFlow Keras backend to {purpose}: a SavedModel runs only on "
            f"TensorFlow. Received: backend={backend!r}. Set KERAS_BACKEND=tensorflow "
            "before importing keras (or keras.config.set_backend('tensorflow')), or "
            "call the model through tf.saved_model.load in a TensorFlow process.",
            backend=backend,
        )
