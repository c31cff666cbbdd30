"""The small interface between ``KerasLayer`` and the Keras backend that runs its model.

``KerasLayer`` is one class on every backend: its arguments, config, ``trainable``,
``unfreeze``, ``output_key``, regularization losses and the fixed-batch decision live
once (``_keras_layer.py``, ``_lifecycle.py``). What differs per backend is how the
SavedModel's functions run, and that is all a :class:`Runner` does, in the manner of
Keras' own backends (one module per backend, chosen once):

======================  ==================================  ===================================
                        TensorFlow (``_tf_runner.py``)      JAX (``_jax_runner.py``)
======================  ==================================  ===================================
``load``                the SavedModel's variables *are*    the same load, then the ops checked
                        the layer's Keras variables         against tf2jax; the layer's Keras
                        (shared storage)                    variables are copies, the only
                                                            storage
``accept`` /            plain values to tensors; checked    checked on symbolic stand-ins (JAX
``conform``             and cast with ``tf.cast``           traces with symbolic batch sizes)
``run``                 the saved function, picked by       the function converted with tf2jax,
                        ``training`` (``tf.cond`` for a     fed the variables' values; BatchNorm
                        symbolic one)                       statistics written back
``losses``              the saved loss functions            the same, converted
======================  ==================================  ===================================

:func:`runner_for` picks the runner for a backend name; the JAX one is imported only on
JAX, so a TensorFlow process never imports tf2jax.

Example:
    >>> type(runner_for("tensorflow")).__name__
    'TFRunner'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import keras

    from hublayer.layers._loading import CallOptions, LoadedModel, PendingModel
    from hublayer.layers._signatures import Target

__all__ = ["Runner", "runner_for"]


class Runner(Protocol):
    """How one backend loads and runs a layer's model (one instance per layer)."""

    def load(
        self,
        layer: keras.Layer,
        options: CallOptions,
        *,
        source: Path | None = None,
        pending: PendingModel | None = None,
        obj: Any = None,
    ) -> LoadedModel:
        """Load the model (see :func:`~hublayer.layers._loading.load_model`).

        The returned ``variables`` are the layer's variables: with ``pending``, its
        placeholders, which then hold the model's values.
        """
        ...

    def accept(self, inputs: Any, target: Target, handle: str | None) -> Any:
        """Inputs as ``__call__`` passes them on: plain values converted, and checked.

        Raises:
            SignatureError: the model cannot take them.
        """
        ...

    def conform(self, inputs: Any, target: Target, handle: str | None) -> Any:
        """Inputs in the structure and dtypes the model's function takes."""
        ...

    def run(
        self,
        loaded: LoadedModel,
        x: Any,
        *,
        training: Any,
        arguments: Mapping[str, Any],
        slices: int | None,
    ) -> Any:
        """The model's outputs for conformed inputs ``x``.

        Args:
            loaded: the model.
            x: the output of :meth:`conform`.
            training: ``call``'s ``training`` argument, or ``None`` while the layer is
                frozen (the BatchNorm rule: ``training`` reaches the model only while the
                layer trains).
            arguments: the layer's ``arguments=``, passed on every call.
            slices: run the function on slices of this many examples (a model traced
                for a fixed batch size, fed another one), or ``None``.
        """
        ...

    def losses(self, loaded: LoadedModel, *, trainable: bool) -> list[Any]:
        """The model's regularization losses: their values while ``trainable``, else 0."""
        ...


def runner_for(backend: str) -> Runner:
    """The runner for a Keras backend name that ``require_savedmodel_backend`` accepted."""
    if backend == "jax":
        from hublayer.layers._jax_runner import JaxRunner

        return JaxRunner()
    from hublayer.layers._tf_runner import TFRunner

    return TFRunner()
