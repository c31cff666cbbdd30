"""Which function a layer calls, what it must be fed, and which output it returns.

- :func:`choose_target` picks ``__call__`` or a named signature, with TensorFlow Hub's rules
  (a TF1 Hub module defaults to signature ``"default"`` and output ``"default"``).
- :func:`select_output` is the one place outputs are chosen, for tensors and specs alike.
- :func:`conform_inputs` checks inputs against the function's input spec and casts only
  where no information is lost in meaning (float to float, int to int).
- :func:`tensor_infos` describes inputs as :class:`hublayer._specs.TensorInfo`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from hublayer._specs import TensorInfo
from hublayer.errors import NotTrainableError, SignatureError

__all__ = [
    "Target",
    "check_output_arguments",
    "check_trainable",
    "choose_target",
    "conform_inputs",
    "describe",
    "select_output",
    "tensor_infos",
]

#: The name of a single positional input, as TF Hub's image and text models have it.
SINGLE_INPUT_NAME = "inputs"


@dataclass(frozen=True)
class Target:
    """The function a layer calls, and its specs when the model declares them.

    Attributes:
        fn: the callable: the model's ``__call__``, a signature, or a Keras model.
        signature: the signature's name, or ``None`` for ``__call__``.
        has_training: whether ``fn`` accepts ``training``.
        input_specs: the accepted input structures (``tf.TensorSpec`` nests), one per
            traced function; empty when unknown.
        output_spec: the output structure for ``training=False``, or ``None`` when unknown.
    """

    fn: Callable[..., Any]
    signature: str | None
    has_training: bool
    input_specs: tuple[Any, ...]
    output_spec: Any


def choose_target(obj: Any, signature: str | None, handle: str | None) -> Target:
    """Pick what to call on a loaded object, as ``tensorflow_hub.KerasLayer`` does.

    Args:
        obj: the loaded object, or any callable.
        signature: a signature name, or ``None`` for ``obj.__call__``.
        handle: for error messages.

    Returns:
        The :class:`Target`.

    Raises:
        SignatureError: an unknown signature, or an object that is neither callable nor given
            a signature; the message lists the signatures there are.
    """
    signatures = getattr(obj, "signatures", None) or {}
    if signature is None:
        if isinstance(obj, keras.Layer):
            inputs, output = _keras_specs(obj)
            return Target(obj, None, _accepts_training(obj.call), inputs, output)
        if callable(obj):
            # A loaded SavedModel sets __call__ on the instance, so look there, not at the class.
            call = obj if inspect.isroutine(obj) else obj.__call__
            inputs, output = _call_specs(call)
            return Target(obj, None, _accepts_training(call), inputs, output)
        raise SignatureError(
            "Expected a model with __call__ or a signature name. Received: "
            f"handle={handle!r}, which has no __call__. Pass signature= one of "
            f"{sorted(signatures)}, and output_key= or signature_outputs_as_dict=True.",
            handle=handle,
            available=sorted(signatures),
        )
    if signature not in signatures:
        raise SignatureError(
            f"Expected signature to be one of {sorted(signatures)}. Received: "
            f"signature={signature!r} for handle={handle!r}. Pick one of those names"
            + (", or leave signature=None to use __call__." if callable(obj) else "."),
            handle=handle,
            name=signature,
            available=sorted(signatures),
        )
    fn = signatures[signature]
    _, kwargs = fn.structured_input_signature
    return Target(fn, signature, False, (dict(kwargs),), fn.structured_outputs)


def check_trainable(target: Target, hub_v1: bool, handle: str | None, has_variables: bool) -> None:
    """Refuse ``trainable=True`` where TensorFlow Hub does, with an error instead of a log.

    Raises:
        NotTrainableError: the layer calls a signature (or a TF1 Hub module), or the model
            has no trainable variables.
    """
    if target.signature is not None:
        kind = "a TF1 Hub module" if hub_v1 else f"the signature {target.signature!r}"
        raise NotTrainableError(
            f"Expected trainable=False when calling {kind}: signatures are for inference "
            f"only. Received: trainable=True, handle={handle!r}. Use trainable=False, or a "
            "TF2 SavedModel with __call__ (signature=None) to fine-tune.",
            handle=handle,
        )
    if not has_variables:
        raise NotTrainableError(
            "Expected a model with trainable variables for trainable=True. Received: "
            f"handle={handle!r}, whose trainable_variables is empty (or whose "
            "trainable_patterns / trainable_last_n select none). Use trainable=False, or "
            "widen the selection.",
            handle=handle,
        )


def check_output_arguments(
    target: Target, output_key: str | None, as_dict: bool, handle: str | None
) -> None:
    """TF Hub's rule: a signature needs exactly one of ``output_key`` and ``as_dict``.

    Raises:
        SignatureError: both or neither with a signature; the message lists the outputs.
        ValueError: ``signature_outputs_as_dict=True`` without a signature.
    """
    signature = target.signature
    if signature is not None and (output_key is not None) == as_dict:
        outputs = target.output_spec
        available = sorted(outputs) if isinstance(outputs, Mapping) else []
        received = (
            f"output_key={output_key!r} and signature_outputs_as_dict=True"
            if output_key is not None
            else "neither"
        )
        raise SignatureError(
            "Expected output_key= (one of "
            f"{available}) or signature_outputs_as_dict=True with signature={signature!r}, "
            f"exactly one of them. Received: {received} for handle={handle!r}. Pick an "
            "output with output_key=, or take the whole dict with "
            "signature_outputs_as_dict=True.",
            handle=handle,
            name=signature,
            available=available,
        )
    if signature is None and as_dict:
        raise ValueError(
            "Expected signature_outputs_as_dict=True only together with signature=. "
            f"Received: signature=None for handle={handle!r}. Name the signature, or use "
            "output_key= to pick from a dict returned by __call__."
        )


def _accepts_training(fn: Any) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    training = parameters.get("training")
    return training is not None and training.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _call_specs(fn: Any) -> tuple[tuple[Any, ...], Any]:
    """Input specs of every traced function of a restored ``__call__``, and one output spec."""
    concrete = list(getattr(fn, "concrete_functions", ()) or ())
    inputs: list[Any] = []
    output: Any = None
    for function in concrete:
        args, kwargs = function.structured_input_signature
        if not args or not _is_spec_nest(args[0]):
            continue
        if args[0] not in inputs:
            inputs.append(args[0])
        training = args[1] if len(args) > 1 else kwargs.get("training", False)
        if output is None or training is False:
            output = function.structured_outputs
    return tuple(inputs), output


def _keras_specs(model: keras.Layer) -> tuple[tuple[Any, ...], Any]:
    """Input and output specs of a functional Keras model (nothing for other layers)."""
    try:
        inputs, outputs = model.input, model.output
    except (AttributeError, ValueError):
        return (), None

    def spec(tensor: Any) -> tf.TensorSpec:
        return tf.TensorSpec(tensor.shape, tensor.dtype)

    return (tf.nest.map_structure(spec, inputs),), tf.nest.map_structure(spec, outputs)


def _is_spec_nest(value: Any) -> bool:
    flat = tf.nest.flatten(value)
    return bool(flat) and all(isinstance(s, tf.TensorSpec) for s in flat)


def select_output(
    result: Any, output_key: str | None, signature: str | None, handle: str | None
) -> Any:
    """Choose what the layer returns from what the model returned (tensors or specs).

    Args:
        result: the model's outputs, or their ``tf.TensorSpec``s.
        output_key: the key to pick from a dict, or ``None`` for the whole result.
        signature: the signature called, for error messages.
        handle: for error messages.

    Returns:
        ``result[output_key]``, or ``result`` when ``output_key`` is ``None``.

    Raises:
        SignatureError: ``output_key`` is given but the result is no dict or lacks the key;
            the message lists the keys there are.
    """
    if output_key is None:
        return result
    where = f"signature {signature!r}" if signature else "__call__"
    if not isinstance(result, Mapping):
        raise SignatureError(
            f"Expected {where} to return a dict for output_key={output_key!r}. Received: "
            f"a single output for handle={handle!r}. Remove output_key.",
            handle=handle,
            name=output_key,
            available=[],
        )
    if output_key not in result:
        raise SignatureError(
            f"Expected output_key to be one of {sorted(result)}. Received: "
            f"output_key={output_key!r} for {where} of handle={handle!r}. "
            "Pick one of those names, or set signature_outputs_as_dict=True for all of them.",
            handle=handle,
            name=output_key,
            available=sorted(result),
        )
    return result[output_key]


def describe(spec: Any) -> str:
    """``float32[?,224,224,3]`` for a spec or tensor; nests as dicts/lists of those."""
    if isinstance(spec, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in sorted(spec.items())) + "}"
    if isinstance(spec, list | tuple):
        return "[" + ", ".join(describe(v) for v in spec) + "]"
    dtype = getattr(spec, "dtype", None)
    shape = getattr(spec, "shape", None)
    if dtype is None or shape is None:
        return type(spec).__name__
    dims = ",".join("?" if d is None else str(d) for d in tf.TensorShape(shape).as_list() or [])
    if tf.TensorShape(shape).rank is None:
        dims = "<unknown rank>"
    return f"{tf.as_dtype(dtype).name}[{dims}]"


def conform_inputs(
    inputs: Any,
    specs: Sequence[Any],
    *,
    cast: Callable[[Any, tf.DType], Any],
    where: str,
    handle: str | None,
) -> Any:
    """Check ``inputs`` against the accepted specs; cast floats to floats and ints to ints.

    Args:
        inputs: tensors, Keras symbolic tensors, or nests of them.
        specs: the accepted input structures; empty means unknown (nothing is checked).
        cast: ``cast(x, dtype)``, applied only where dtypes differ.
        where: what is being called, for error messages.
        handle: for error messages.

    Returns:
        ``inputs``, with the casts applied, in the spec's structure (a lone tensor fed to a
        single-input signature becomes ``{name: tensor}``).

    Raises:
        SignatureError: no spec fits: the message shows expected and received specs.
    """
    if not specs:
        return inputs
    problems: list[str] = []
    for spec in specs:
        candidate = inputs
        if isinstance(spec, Mapping) and len(spec) == 1 and not isinstance(inputs, Mapping):
            candidate = {next(iter(spec)): inputs}
        try:
            tf.nest.assert_same_structure(spec, candidate, check_types=False)
        except (TypeError, ValueError):
            problems.append("structure")
            continue
        if isinstance(spec, Mapping) and set(spec) != set(candidate):
            problems.append("keys")
            continue
        flat_spec = tf.nest.flatten(spec)
        flat_inputs = tf.nest.flatten(candidate)
        if all(_fits(x, s) for x, s in zip(flat_inputs, flat_spec, strict=True)):
            converted = [
                x if tf.as_dtype(x.dtype) == s.dtype else cast(x, s.dtype)
                for x, s in zip(flat_inputs, flat_spec, strict=True)
            ]
            return tf.nest.pack_sequence_as(spec, converted)
        problems.append("spec")
    expected = " or ".join(describe(s) for s in specs)
    raise SignatureError(
        f"Expected inputs for {where} of handle={handle!r} to match {expected}. "
        f"Received: {describe(inputs)}. Feed tensors of that dtype and shape (the batch "
        "dimension first), e.g. resize images with keras.layers.Resizing; floats are cast "
        "to the model's float type, other dtypes are never converted.",
        handle=handle,
        expected=expected,
        received=describe(inputs),
    )


def _fits(x: Any, spec: tf.TensorSpec) -> bool:
    dtype = getattr(x, "dtype", None)
    shape = getattr(x, "shape", None)
    if dtype is None or shape is None:
        return False
    dtype = tf.as_dtype(dtype)
    if dtype != spec.dtype and not (
        (dtype.is_floating and spec.dtype.is_floating)
        or (dtype.is_integer and spec.dtype.is_integer)
    ):
        return False
    return bool(tf.TensorShape(shape).is_compatible_with(spec.shape))


def tensor_infos(specs: Sequence[Any]) -> tuple[TensorInfo, ...]:
    """Describe the first accepted input structure as :class:`TensorInfo`s.

    The same rules as ``hublayer.inspect``: a single tensor keeps its spec's name (else
    ``"inputs"``); dict inputs keep their keys, sorted; an image input (``[B, H, W, C]``)
    gets TF Hub's value range, ``(0, 1)`` for floats and ``(0, 255)`` for uint8.
    """
    if not specs:
        return ()
    spec = specs[0]
    if isinstance(spec, Mapping):
        named = [(str(k), spec[k]) for k in sorted(spec)]
    elif isinstance(spec, tf.TensorSpec):
        named = [(spec.name or SINGLE_INPUT_NAME, spec)]
    else:
        named = [
            (s.name or f"{SINGLE_INPUT_NAME}_{i}", s) for i, s in enumerate(tf.nest.flatten(spec))
        ]
    return tuple(_tensor_info(name, tensor_spec) for name, tensor_spec in named)


def _tensor_info(name: str, spec: tf.TensorSpec) -> TensorInfo:
    dims = tuple(spec.shape.as_list()) if spec.shape.rank is not None else ()
    info = TensorInfo(name, spec.dtype.name, dims)
    if info.is_image:
        low_high = (0.0, 255.0) if spec.dtype == tf.uint8 else (0.0, 1.0)
        info = TensorInfo(name, info.dtype, dims, value_range=low_high)
    return info
