"""The one check that the active Keras backend can run a SavedModel.

Example:
    >>> require_tensorflow_backend("build a KerasLayer")  # on the TensorFlow backend
"""

from __future__ import annotations

import importlib.util

import keras

from hublayer.errors import BackendError

__all__ = ["require_savedmodel_backend", "require_tensorflow_backend"]


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


#: The extra that brings JAX support, and the modules it provides.
JAX_EXTRA = "jax"
_JAX_MODULES = ("jax", "tf2jax")


def require_savedmodel_backend(purpose: str) -> str:
    """Check that the active Keras backend can host a SavedModel layer; return its name.

    TensorFlow runs the SavedModel directly; JAX runs it converted with tf2jax (the
    ``[jax]`` extra). PyTorch has no converter that keeps variables and gradients.

    Args:
        purpose: what needs the SavedModel, for the message ("build a KerasLayer").

    Returns:
        ``"tensorflow"`` or ``"jax"``.

    Raises:
        BackendError: PyTorch or another backend, or JAX without the ``[jax]`` extra.

    Example:
        >>> require_savedmodel_backend("build a KerasLayer")  # on TensorFlow or JAX
        'tensorflow'
    """
    backend = str(keras.backend.backend())
    if backend == "tensorflow":
        return backend
    if backend == "jax":
        missing = [m for m in _JAX_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise BackendError(
                f"Expected the [{JAX_EXTRA}] extra to {purpose} on the JAX backend: hublayer "
                f"converts the SavedModel with tf2jax. Received: {missing} not installed. Run "
                f'pip install "hublayer[{JAX_EXTRA}]", or set KERAS_BACKEND=tensorflow.',
                backend=backend,
            )
        return backend
    raise BackendError(
        f"Expected the TensorFlow or JAX Keras backend to {purpose}. Received: "
        f"backend={backend!r}. A SavedModel is a TensorFlow graph; JAX runs it through "
        "tf2jax, but nothing converts a TF graph with its variables and gradients to "
        "PyTorch. Set KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow before importing keras.",
        backend=backend,
    )
