"""Which function a layer calls, what it must be fed, and which output it returns.

- :func:`choose_target` picks ``__call__`` or a named signature, with TensorFlow Hub's rules
  (a TF1 Hub module defaults to signature ``"default"`` and output ``"default"``); a model
  without ``__call__`` uses ``serving_default`` or its only signature, and may name a
  second signature for training.
- :func:`select_output` is the one place outputs are chosen, for tensors and specs alike.
- :func:`check_output_arguments` and :func:`check_trainable` apply TF Hub's rules, with
  TF Hub's own sentences in the messages.
- :func:`tensor_infos` describes inputs as :class:`hublayer._specs.TensorInfo`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import keras
import tensorflow as tf

from hublayer._specs import TensorInfo, assumed_range
from hublayer.errors import NotTrainableError, SignatureError
from hublayer.layers import _batching, _traces

__all__ = [
    "Target",
    "check_output_arguments",
    "check_trainable",
    "choose_target",
    "default_signature",
    "is_tf1_graph",
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
            traced function; empty when unknown. A fixed batch dimension is freed.
        output_spec: the output structure for ``training=False``, or ``None`` when unknown.
        training_fn: the signature called when ``training=True`` (``training_signature=``).
        captured: the variables the signature functions capture (empty for ``__call__``).
        fixed_batch: the batch size the model was traced for, or ``None`` when free.
        auto: whether the layer chose the signature itself (no ``__call__``, no name given).
    """

    fn: Callable[..., Any]
    signature: str | None
    has_training: bool
    input_specs: tuple[Any, ...]
    output_spec: Any
    training_fn: Callable[..., Any] | None = None
    captured: tuple[Any, ...] = ()
    fixed_batch: int | None = None
    auto: bool = False


def choose_target(
    obj: Any,
    signature: str | None,
    handle: str | None,
    *,
    arguments: Mapping[str, Any] | None = None,
    training_signature: str | None = None,
) -> Target:
    """Pick what to call on a loaded object, as ``tensorflow_hub.KerasLayer`` does.

    Without ``signature``, ``__call__`` is used; a model without one (Keras 3
    ``model.export()``, onnx2tf) uses ``serving_default``, or its only signature.

    Args:
        obj: the loaded object, or any callable.
        signature: a signature name, or ``None`` for ``obj.__call__``.
        handle: for error messages.
        arguments: the layer's ``arguments=``; they pick among ``__call__``'s traces.
        training_signature: the signature to call when ``training=True``.

    Returns:
        The :class:`Target`.

    Raises:
        SignatureError: an unknown signature, or a model without ``__call__`` whose
            signatures leave the choice open; the message lists the signatures there are.
        ValueError: ``training_signature`` without a signature to call.
    """
    signatures = getattr(obj, "signatures", None) or {}
    auto = False
    if signature is None:
        if isinstance(obj, keras.Layer):
            inputs, output = _traces.keras_specs(obj)
            target = Target(obj, None, _traces.accepts_training(obj.call), inputs, output)
            return _with_training_signature(target, signatures, training_signature, handle)
        if callable(obj):
            # A loaded SavedModel sets __call__ on the instance, so look there, not at the class.
            call = obj if inspect.isroutine(obj) else obj.__call__
            inputs, output = _traces.call_specs(call, arguments or {})
            target = _fixed(Target(obj, None, _traces.accepts_training(call), inputs, output))
            return _with_training_signature(target, signatures, training_signature, handle)
        signature = default_signature(signatures, handle)
        auto = True
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
    target = Target(fn, signature, False, (dict(kwargs),), fn.structured_outputs, auto=auto)
    return _fixed(_with_training_signature(target, signatures, training_signature, handle))


def default_signature(signatures: Mapping[str, Any], handle: str | None) -> str:
    """The signature a model without ``__call__`` is called through.

    Raises:
        SignatureError: there are several signatures and none is ``serving_default``.
    """
    if "serving_default" in signatures:
        return "serving_default"
    if len(signatures) == 1:
        return next(iter(signatures))
    raise SignatureError(
        "Expected a model with __call__, a 'serving_default' signature or a single "
        f"signature. Received: handle={handle!r}, which has no __call__ and the "
        f"signatures {sorted(signatures)}. Pass signature= one of them (and "
        "training_signature= for the one to train with, if any).",
        handle=handle,
        available=sorted(signatures),
    )


def _with_training_signature(
    target: Target, signatures: Mapping[str, Any], name: str | None, handle: str | None
) -> Target:
    if name is None:
        if target.signature is None:
            return target
        return replace(target, captured=_captured(target.fn))
    if target.signature is None:
        raise ValueError(
            "Expected training_signature= only with a signature to call for inference. "
            f"Received: training_signature={name!r} for handle={handle!r}, which calls "
            "__call__ (it takes training= itself). Drop training_signature, or pass "
            "signature= too."
        )
    if name not in signatures:
        raise SignatureError(
            f"Expected training_signature to be one of {sorted(signatures)}. Received: "
            f"training_signature={name!r} for handle={handle!r}. Pick one of those names.",
            handle=handle,
            name=name,
            available=sorted(signatures),
        )
    training_fn = signatures[name]
    _, kwargs = training_fn.structured_input_signature
    if set(kwargs) != set(target.input_specs[0]):
        raise SignatureError(
            f"Expected training_signature={name!r} to take the inputs of signature "
            f"{target.signature!r}: {sorted(target.input_specs[0])}. Received: "
            f"{sorted(kwargs)} for handle={handle!r}. Pick the signature that trains the "
            "same function.",
            handle=handle,
            name=name,
            expected=sorted(target.input_specs[0]),
            received=sorted(kwargs),
        )
    captured = _captured(target.fn) + _captured(training_fn)
    return replace(target, training_fn=training_fn, captured=_distinct(captured))


def _captured(fn: Any) -> tuple[Any, ...]:
    """The variables a signature's concrete function captures."""
    return _distinct(tuple(getattr(fn, "variables", ()) or ()))


def _distinct(variables: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[int] = set()
    out = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return tuple(out)


def _fixed(target: Target) -> Target:
    """Free a fixed batch dimension (onnx2tf's batch of 1); the layer maps over it."""
    size = _batching.fixed_batch_size(target.input_specs)
    if size is None:
        return target
    return replace(
        target,
        input_specs=tuple(_batching.relax_batch(s) for s in target.input_specs),
        output_spec=_batching.relax_batch(target.output_spec),
        fixed_batch=size,
    )


def is_tf1_graph(obj: Any, hub_v1: bool) -> bool:
    """Whether the model is a TF1 graph (Hub module or TF1 SavedModel): not fine-tunable."""
    return hub_v1 or (callable(getattr(obj, "prune", None)) and hasattr(obj, "graph"))


def check_trainable(
    target: Target, tf1: bool, handle: str | None, *, selected: bool, selection: bool
) -> bool:
    """Refuse ``trainable=True`` where training cannot work, as ``tensorflow_hub`` does.

    Args:
        target: what the layer calls.
        tf1: whether the model is a TF1 graph (:func:`is_tf1_graph`).
        handle: for error messages.
        selected: whether any variable would train.
        selection: whether ``trainable_patterns`` / ``trainable_last_n`` were given.

    Returns:
        ``False`` when the model simply has no trainable variables: the layer then logs
        ``tensorflow_hub``'s error line once and works, as ``tensorflow_hub`` does.

    Raises:
        NotTrainableError: a TF1 Hub module or TF1 graph, or a partial selection that
            selects nothing.
    """
    if tf1:
        kind = "the TF1 Hub format" if target.signature == "default" else "a TF1 graph"
        raise NotTrainableError(
            "Setting hub.KerasLayer.trainable = True is unsupported when loading from "
            f"the TF1 Hub format. Expected trainable=False for {kind}. Received: "
            f"trainable=True, handle={handle!r}. TF1 graphs have no training mode and "
            "no update ops: use trainable=False, or a TF2 SavedModel to fine-tune.",
            handle=handle,
        )
    if not selected and selection:
        raise NotTrainableError(
            "Expected trainable_patterns / trainable_last_n to select at least one "
            f"trainable variable. Received: patterns / a count that select none for "
            f"handle={handle!r}. Widen the selection (see layer.variable_paths), or use "
            "trainable=False.",
            handle=handle,
        )
    return selected


def check_output_arguments(
    target: Target, output_key: str | None, as_dict: bool, handle: str | None
) -> str | None:
    """TF Hub's rule: a signature needs ``output_key`` or ``as_dict``, unless it has one output.

    Returns:
        The output key to use: ``output_key``, or the only output of a signature called
        without either.

    Raises:
        SignatureError: both, or neither with several outputs; the message lists them.
        ValueError: ``signature_outputs_as_dict=True`` without a signature.
    """
    signature = target.signature
    outputs = target.output_spec
    available = sorted(outputs) if isinstance(outputs, Mapping) else []
    if signature is not None and output_key is None and not as_dict and len(available) == 1:
        return str(available[0])  # a single output needs no key (Keras export: "output_0")
    if signature is not None and (output_key is not None) == as_dict:
        received = (
            f"output_key={output_key!r} and signature_outputs_as_dict=True"
            if output_key is not None
            else "neither"
        )
        raise SignatureError(
            "When using a signature, either output_key or signature_outputs_as_dict=True "
            f"should be set. Expected output_key= (one of {available}) or "
            f"signature_outputs_as_dict=True with signature={signature!r}, exactly one of "
            f"them. Received: {received} for handle={handle!r}. Pick an output with "
            "output_key=, or take the whole dict with signature_outputs_as_dict=True.",
            handle=handle,
            name=signature,
            available=available,
        )
    if signature is None and as_dict:
        raise ValueError(
            "signature_outputs_as_dict is only valid if specifying a signature. Expected "
            "signature_outputs_as_dict=True only together with signature=. "
            f"Received: signature=None for handle={handle!r}. Name the signature, or use "
            "output_key= to pick from a dict returned by __call__."
        )
    return output_key


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
            f"Specifying `output_key` is forbidden if output type {type(result).__name__} "
            f"is not a dict. Expected {where} to return a dict for "
            f"output_key={output_key!r}. Received: a single output for handle={handle!r}. "
            "Remove output_key.",
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
        info = assumed_range(info)  # TF Hub's convention, reported as assumed
    return info
