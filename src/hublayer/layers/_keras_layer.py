"""``KerasLayer``: a pretrained model as a Keras 3 layer that fine-tunes, saves and serves.

One class on every backend that can host a SavedModel. This module holds the calling
side: the constructor, ``trainable`` and ``unfreeze``, and ``call`` (inputs checked, the
model run, a fixed batch size mapped over, the output picked and cast). Loading, saving
and reloading live in ``_lifecycle.py`` (:class:`~hublayer.layers._lifecycle.ModelLayer`,
the base class). How the model runs is the backend's :class:`~hublayer.layers._runner.Runner`:
``_tf_runner.py`` calls the SavedModel's functions, ``_jax_runner.py`` converts them with
tf2jax.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer._backend import require_savedmodel_backend
from hublayer._specs import TensorInfo
from hublayer.errors import NotTrainableError
from hublayer.layers import _assets, _batching, _shapes, _signatures, _variables
from hublayer.layers._adapters import cast_outputs, split_dtype
from hublayer.layers._lifecycle import _DEFERRED, ModelLayer
from hublayer.layers._loading import CallOptions, LoadedModel, PendingModel, layer_safe_mode
from hublayer.layers._runner import runner_for
from hublayer.models import declare_ranges

__all__ = ["KerasLayer"]

log = logging.getLogger("hublayer.layers")


@keras.saving.register_keras_serializable(package="hublayer")
class KerasLayer(ModelLayer):
    """Wrap a pretrained model (TF Hub / Kaggle SavedModel, ``.keras`` file) as a Keras 3 layer.

    A drop-in for ``tensorflow_hub.KerasLayer``: the arguments mean what they mean there.
    The layer works in Sequential, functional and subclassed models and under
    ``tf.distribute`` strategies; it fine-tunes with every Keras optimizer, and a model
    holding it saves to a self-contained ``.keras`` file and exports for TF Serving.

    Backends: on TensorFlow the layer calls the SavedModel's functions, and its variables
    share storage with the model's. On JAX (``KERAS_BACKEND=jax``, the ``[jax]`` extra)
    the same class converts the functions with tf2jax and holds the variables as Keras
    variables; a ``.keras`` file saved on either backend loads on the other. Where JAX
    differs from TensorFlow, and by how much, is listed in docs/API.md ("Keras backends").

    Args:
        handle: any handle ``hublayer.resolve`` accepts (tfhub.dev or Kaggle URL, ``kaggle://``,
            ``gs://``, ``s3://``, ``hf://``, archive URL, local folder or ``.keras`` file), or
            an already loaded object or callable (such a layer cannot be saved).
        trainable: whether the model's trainable variables train, through ``__call__``
            or a signature (the variables the signature captures). A model without
            trainable variables logs an error once and works, as in ``tensorflow_hub``.
        arguments: extra keyword arguments passed to the model on every call.
        signature: call this signature instead of ``__call__``. A TF1 Hub module defaults to
            ``"default"``; a model without ``__call__`` to ``serving_default`` or its only
            signature. Needs ``output_key`` or ``signature_outputs_as_dict=True`` unless
            the signature has a single output.
        signature_outputs_as_dict: return the signature's whole output dict.
        output_key: the output to return from a dict (TF1 Hub modules: ``"default"``).
        output_shape: output shape(s) without the batch dimension, for models whose
            functions do not declare them.
        tags: the meta graph of a TF1 SavedModel (default: the one with no tags).
        load_options: a ``tf.saved_model.LoadOptions``.
        trainable_patterns: partial fine-tuning: only variables whose path (e.g.
            ``"block_16_conv/kernel"``, see :attr:`variable_paths`) matches one of these
            regular expressions train.
        trainable_last_n: partial fine-tuning: the variables of the last N layers train.
        training_signature: the signature to call when ``training=True`` (such as
            ``"serve_train"``). Without it, a signature runs in inference mode while it
            trains too: BatchNorm uses its moving statistics, Dropout is off.
        embed_saved_model: copy the model's files into ``.keras`` archives (default), so
            they reload offline. Turn off for very large models; reloading then resolves
            ``handle`` again.
        safe_mode: scan the model before TensorFlow loads it and refuse ops that reach
            files, the network or Python (``UnsafeModelError``; see ``hublayer.scan``).
            ``None`` follows ``$HUBLAYER_SAFE_MODE`` (on by default); ``False`` loads a
            model you trust as is. Not saved in the config: a reloaded layer scans again
            unless ``keras.saving.load_model(..., safe_mode=False)`` loads it.
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``...). As in
            ``tensorflow_hub``, ``dtype=tf.string`` (any non-float dtype) with
            ``input_shape=[]`` declares the input of a text model.

    Call arguments:
        inputs: a tensor, or a dict of tensors for models with named inputs. Python
            numbers, lists and numpy arrays are converted to the dtype the model takes.
            A model traced for a fixed batch size (onnx2tf's batch of 1) takes any batch
            size: the layer runs it on slices and warns once that this is slower.
        training: reaches the model only when the layer is trainable and the model
            accepts it (the BatchNormalization rule); with a signature, it picks
            ``training_signature`` when one is given.

    Returns:
        The model's output: a tensor, or a dict for dict outputs without ``output_key``.

    Raises:
        BackendError: the Keras backend is neither TensorFlow nor JAX; on JAX, the
            ``[jax]`` extra is missing, or the model uses ops tf2jax cannot convert
            (named in the message).
        SignatureError: a wrong ``signature`` or ``output_key``, or inputs the model cannot
            take; the message lists the valid names or shows the expected spec.
        NotTrainableError: ``trainable=True`` on a TF1 graph, or a partial selection that
            selects nothing.

    Fine-tuning part of the model: ``trainable_patterns`` / ``trainable_last_n`` here, or
    :meth:`unfreeze` later; :attr:`variable_paths` names the variables to choose from.

    Saving: ``model.save("m.keras")`` copies the model's files into the archive, and
    ``keras.models.load_model("m.keras")`` rebuilds the layer with the saved (fine-tuned)
    values, offline, without ``custom_objects``. In a fresh process, import
    ``hublayer.layers`` (or use ``hublayer.load``) first, so Keras knows the class.

    Example:
        >>> import keras, hublayer as hub
        >>> from hublayer import testing
        >>> handle = testing.image_feature_vector("/tmp/ifv", image_size=32, dim=16)
        >>> model = keras.Sequential([
        ...     keras.Input((32, 32, 3)), hub.KerasLayer(handle), keras.layers.Dense(2)])
        >>> model.output_shape
        (None, 2)
    """

    def __init__(
        self,
        handle: Any,
        trainable: bool = False,
        arguments: Mapping[str, Any] | None = None,
        signature: str | None = None,
        signature_outputs_as_dict: bool = False,
        output_key: str | None = None,
        output_shape: Any = None,
        tags: Sequence[str] | None = None,
        load_options: Any = None,
        *,
        trainable_patterns: Sequence[str] | str | None = None,
        trainable_last_n: int | None = None,
        training_signature: str | None = None,
        embed_saved_model: bool = True,
        safe_mode: bool | None = None,
        **kwargs: Any,
    ) -> None:
        backend = require_savedmodel_backend("build a KerasLayer")
        kwargs.pop("autocast", None)  # always off: the layer casts to what the model expects
        policy, input_dtype = split_dtype(kwargs.pop("dtype", None))
        # A non-float input (TF Hub's dtype=tf.string, input_shape=[]) must not make
        # Sequential add a float32 Input: the input_shape property gives it this one.
        self._input_shape = kwargs.pop("input_shape", None) if input_dtype else None
        self._options = CallOptions(
            handle=handle,
            tags=list(tags) if tags is not None else None,
            load_options=load_options,
            signature=signature,
            output_key=output_key,
            as_dict=bool(signature_outputs_as_dict),
            output_shape=(
                _shapes.parse_output_shape(output_shape) if output_shape is not None else None
            ),
            arguments=dict(arguments or {}),
            training_signature=training_signature,
            safe_mode=layer_safe_mode(safe_mode),
        )
        self._arguments = dict(arguments or {})
        self._warned: set[str] = set()
        self._patterns = _patterns(trainable_patterns)
        self._last_n = trainable_last_n
        _variables.select_trainable(["-"], self._patterns, self._last_n)  # fail early
        self._embed = bool(embed_saved_model)
        self._loaded: LoadedModel | None = None
        self._pending: PendingModel | None = None
        self._build_spec: dict[str, Any] | None = None
        self._stash: list[np.ndarray] | None = None
        self._owned: _assets.OwnedFolder | None = None
        self._runner = runner_for(backend)
        super().__init__(trainable=trainable, dtype=policy, autocast=False, **kwargs)
        if not _DEFERRED.get():
            self.build()
            if self._trainable:
                self._check_trainable()

    # --------------------------------------------------------------- training
    @property
    def trainable(self) -> bool:
        """Whether the layer trains; setting it keeps the partial fine-tuning selection."""
        return bool(self._trainable)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._set_trainable(bool(value))

    def _set_trainable(self, value: bool) -> None:
        # Called directly too: TensorFlow's tracking skips `layer.trainable = True` when
        # it is already True, and unfreeze() must still apply a new selection.
        if value and getattr(self, "_loaded", None) is not None:
            self._check_trainable()
        keras.layers.Layer.trainable.fset(self, value)  # type: ignore[attr-defined]
        self._apply_trainable()

    def unfreeze(
        self, patterns: Sequence[str] | str | None = None, *, last_n: int | None = None
    ) -> None:
        """Make the layer trainable: all of the model's trainable variables, or a selection.

        Call ``model.compile(...)`` afterwards, as for any change of ``trainable``.
        BatchNorm statistics of the whole model move while the layer trains.

        Args:
            patterns: regular expressions over :attr:`variable_paths` (``re.search``).
            last_n: the variables of the last ``last_n`` layers (paths that differ only in
                their last component form a layer).

        Raises:
            NotTrainableError: the selection is empty, or the model is a TF1 graph.
            ValueError: a pattern does not compile, or ``last_n`` is negative.

        Example:
            >>> layer.unfreeze(last_n=2)  # doctest: +SKIP
            >>> model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="mse")  # doctest: +SKIP
        """
        chosen = _patterns(patterns)
        _variables.select_trainable(["-"], chosen, last_n)
        previous = (self._patterns, self._last_n)
        self._patterns, self._last_n = chosen, last_n
        try:
            self._set_trainable(True)
        except NotTrainableError:
            self._patterns, self._last_n = previous
            self._apply_trainable()
            raise

    @property
    def variable_paths(self) -> tuple[str, ...]:
        """The model's names of :attr:`weights` (``"block_1/conv/kernel"``), in that order."""
        state = self._loaded or self._pending
        return tuple(slot.path for slot in state.slots) if state is not None else ()

    def _check_trainable(self) -> None:
        loaded = self._ensure_loaded()
        has_weights = _signatures.check_trainable(
            loaded.target,
            loaded.hub_v1,
            self._options.handle_name,
            selected=any(self._selection()),
            selection=self._patterns is not None or self._last_n is not None,
        )
        if not has_weights:
            self._warn_once(
                "zero",
                logging.ERROR,
                "hub.KerasLayer is trainable but has zero trainable weights. Expected a "
                "model with trainable variables for trainable=True. Received: handle=%r, "
                "whose trainable_variables is empty. The layer works, and nothing in it "
                "trains; use trainable=False to silence this.",
                self._options.handle_name,
            )

    def _warn_once(self, key: str, level: int, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.log(level, message, *args)

    # ------------------------------------------------------------------- call
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Convert plain Python inputs, check them, then call the layer as Keras does.

        ``layer(10.)`` and ``layer([[10.]])`` become tensors of the dtype the model
        expects (on TensorFlow). The check runs here, before Keras turns errors raised
        inside ``call`` into a generic "Exception encountered when calling" copy without
        the error's fields.
        """
        if self._loaded is None and self._pending is None:
            self._ensure_loaded()  # a layer made by from_config outside a .keras load
        loaded = self._loaded
        if loaded is not None and loaded.target.input_specs:
            target, handle = loaded.target, self._options.handle_name
            if args:
                args = (self._runner.accept(args[0], target, handle), *args[1:])
            elif "inputs" in kwargs:
                kwargs["inputs"] = self._runner.accept(kwargs["inputs"], target, handle)
        return super().__call__(*args, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        """Run the model; see the class docstring."""
        loaded = self._loaded or self._ensure_loaded()
        target, handle = loaded.target, self._options.handle_name
        x = self._runner.conform(inputs, target, handle)
        result = self._runner.run(
            loaded,
            x,
            # The BatchNorm rule: training reaches the model only while the layer trains.
            training=training if self._trainable else None,
            arguments=self._arguments,
            slices=self._slices(x, target),
        )
        result = _signatures.select_output(result, loaded.output_key, target.signature, handle)
        if self._options.output_shape is not None:
            result = _shapes.set_output_shape(result, self._options.output_shape, inputs)
        return cast_outputs(result, self.compute_dtype)

    def _slices(self, x: Any, target: _signatures.Target) -> int | None:
        """The slice size for a model traced for a fixed batch fed another one, or ``None``."""
        size = target.fixed_batch
        if size is None or target.output_spec is None or not _batching.needs_mapping(x, size):
            return None
        self._warn_once(
            "batch",
            logging.WARNING,
            "The model of handle=%r takes a batch of exactly %d; other batch sizes "
            "run as slices of %d, which is slower. Feed batches of %d where speed "
            "matters.",
            self._options.handle_name,
            size,
            size,
            size,
        )
        return size

    def compute_output_spec(self, inputs: Any, training: Any = None) -> Any:
        """The output spec the model declares, with the inputs' batch size; nothing runs."""
        state = self._loaded or self._pending
        spec = state.output_spec if state is not None else None
        if spec is None:  # the model declares no spec: trace call
            # Not Layer's version: with compute_output_shape defined, it would ask that,
            # which asks this method again.
            return keras.Operation.compute_output_spec(self, inputs, training=training)
        return _shapes.keras_tensors(spec, inputs, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The output shape(s) for ``input_shape``, as :meth:`compute_output_spec` has them.

        Each shape is a tuple, as Keras 3 has it, that also answers ``.as_list()`` and
        ``.rank`` like the ``tf.TensorShape`` ``tensorflow_hub``'s layer returned.

        Example:
            >>> layer.compute_output_shape((None, 224, 224, 3))  # doctest: +SKIP
            (None, 1280)
        """
        loaded = self._loaded
        specs = loaded.target.input_specs if loaded is not None else ()
        inputs = _shapes.symbolic_inputs(input_shape, specs)
        outputs = self.compute_output_spec(inputs)
        return tf.nest.map_structure(_shapes.output_shape_of, outputs)

    # ------------------------------------------------------------- properties
    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The declared input shape, batch first: only with a non-float ``dtype``.

        It makes ``keras.Sequential`` start with an ``Input`` of this layer's dtype (a
        ``tf.string`` text input), as ``tensorflow_hub`` layers did.

        Raises:
            AttributeError: no non-float input was declared.
        """
        if self._input_shape is None:
            raise AttributeError("input_shape is only set with input_shape= and dtype=tf.string")
        return (None, *self._input_shape)

    @property
    def handle(self) -> Any:
        """The handle (or object) the layer was built from."""
        return self._options.handle

    @property
    def resolved_object(self) -> Any:
        """The loaded object, as ``tensorflow_hub.KerasLayer.resolved_object``."""
        return self._ensure_loaded().obj

    @property
    def input_specs(self) -> tuple[TensorInfo, ...]:
        """The model's inputs as :class:`~hublayer._specs.TensorInfo`, for ``hublayer.records``."""
        loaded = self._ensure_loaded()
        # The range the model's folder declares, else TF Hub's convention (assumed).
        return declare_ranges(_signatures.tensor_infos(loaded.target.input_specs), loaded.source)


def _patterns(value: Sequence[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(p) for p in value]
