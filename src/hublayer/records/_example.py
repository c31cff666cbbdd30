"""Encode and decode ``tf.train.Example`` and ``SequenceExample`` without TensorFlow.

An Example maps feature names to flat lists of one kind: bytes, float (32-bit) or
int64. Values convert like this:

=====================================  ===========  =====================================
given                                  stored as    decoded (``numpy=True``)
=====================================  ===========  =====================================
``bytes``, ``str`` (UTF-8), arrays of  bytes_list   object ndarray of ``bytes``
them (dtype ``S``, ``U`` or object)
``float``, floating arrays             float_list   ``float32`` ndarray
``int``, ``bool``, integer arrays      int64_list   ``int64`` ndarray
an empty list                          no kind      empty ``float32`` ndarray
=====================================  ===========  =====================================

Arrays of any shape are flattened in C order (keep the shape in the schema, or in a
feature of its own). With ``numpy=False``, decoding returns plain Python lists.

The protobuf classes come from :mod:`hublayer.records._proto`: upb parses in C, and is
far more robust against garbage input than a hand-written wire decoder in Python.

Example:
    >>> data = encode_example({"label": 3, "score": [0.5, 1.5], "name": "cat"})
    >>> decoded = decode_example(data, numpy=False)
    >>> decoded["label"], decoded["score"], decoded["name"]
    ([3], [0.5, 1.5], [b'cat'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from google.protobuf.message import DecodeError

from hublayer.errors import RecordError
from hublayer.records._proto import Example, SequenceExample

__all__ = [
    "FeatureValue",
    "decode_example",
    "decode_sequence_example",
    "encode_example",
    "encode_sequence_example",
]

#: What one feature may be given as when encoding.
FeatureValue: TypeAlias = (
    "np.ndarray | np.generic | bytes | str | int | float | bool | Sequence[Any]"
)

_INT64_MAX = np.iinfo(np.int64).max


def _bad_value(name: str, value: Any, why: str) -> ValueError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(
        f"Expected feature {name!r} to be bytes/str, int/bool or float values (a scalar, "
        f"a list or a numpy array). Received: {name}={shown} ({why}). Convert it first, "
        "for example with np.asarray(value, dtype=np.float32)."
    )


def _fill(feature: Any, name: str, value: Any) -> None:
    """Set one ``Feature`` message from a Python or numpy value."""
    if isinstance(value, bytes | bytearray | memoryview):
        feature.bytes_list.value.append(bytes(value))
        return
    if isinstance(value, str):
        feature.bytes_list.value.append(value.encode("utf-8"))
        return
    if isinstance(value, list | tuple):
        if not value:
            feature.SetInParent()  # a feature with no kind: an empty list of any kind
            return
        text = [isinstance(v, bytes | str) for v in value]
        if all(text):
            feature.bytes_list.value.extend(
                v.encode("utf-8") if isinstance(v, str) else v for v in value
            )
            return
        if any(text):
            raise _bad_value(name, value, "a mix of bytes/str and other values")
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise _bad_value(name, value, str(error)) from None
    flat = array.ravel()
    kind = array.dtype.kind
    if kind == "f":
        feature.float_list.value.extend(flat.astype(np.float32).tolist())
    elif kind in "iub":
        if kind == "u" and flat.size and int(flat.max()) > _INT64_MAX:
            raise _bad_value(name, value, "an int outside the int64 range")
        feature.int64_list.value.extend(flat.astype(np.int64).tolist())
    elif kind == "S":
        feature.bytes_list.value.extend(flat.tolist())
    elif kind == "U":
        feature.bytes_list.value.extend(v.encode("utf-8") for v in flat.tolist())
    elif kind == "O" and all(isinstance(v, bytes | str) for v in flat.tolist()):
        feature.bytes_list.value.extend(
            v.encode("utf-8") if isinstance(v, str) else v for v in flat.tolist()
        )
    elif kind == "O" and all(isinstance(v, int) for v in flat.tolist()):
        raise _bad_value(name, value, "an int outside the int64 range")
    else:
        raise _bad_value(name, value, f"dtype {array.dtype}")


def _fill_features(features: Any, values: Mapping[str, Any]) -> None:
    if not isinstance(values, Mapping):
        raise TypeError(
            "Expected a mapping of feature name to value. "
            f"Received: {type(values).__name__}. Pass a dict such as {{'label': 1}}."
        )
    for name, value in values.items():
        if not isinstance(name, str):
            raise TypeError(f"Expected feature names to be str. Received: {name!r}.")
        _fill(features.feature[name], name, value)


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialize a dict of feature values into a ``tf.train.Example``.

    Args:
        features: feature name to value; see the module docstring for the types.

    Returns:
        The serialized Example, as ``tf.train.Example.SerializeToString()`` gives it.

    Raises:
        ValueError: a value of no supported kind (naming the feature).
        TypeError: ``features`` is not a mapping, or a name is not a str.

    Example:
        >>> len(encode_example({"x": np.arange(3, dtype=np.float32)}))
        25
    """
    message = Example()
    _fill_features(message.features, features)
    data: bytes = message.SerializeToString()
    return data


def encode_sequence_example(
    context: Mapping[str, FeatureValue],
    feature_lists: Mapping[str, Sequence[FeatureValue]],
) -> bytes:
    """Serialize a ``tf.train.SequenceExample``: context features plus lists of steps.

    Args:
        context: features of the whole sequence, as for :func:`encode_example`.
        feature_lists: feature name to a sequence of per-step values.

    Returns:
        The serialized SequenceExample.

    Raises:
        ValueError, TypeError: as for :func:`encode_example`.

    Example:
        >>> data = encode_sequence_example({"id": 1}, {"tokens": [[1, 2], [3]]})
        >>> decode_sequence_example(data, numpy=False)
        ({'id': [1]}, {'tokens': [[1, 2], [3]]})
    """
    message = SequenceExample()
    _fill_features(message.context, context)
    for name, steps in feature_lists.items():
        if isinstance(steps, str | bytes) or not isinstance(steps, Sequence | np.ndarray):
            raise _bad_value(name, steps, "expected one value per step")
        entry = message.feature_lists.feature_list[name]
        for step in steps:
            _fill(entry.feature.add(), name, step)
    data: bytes = message.SerializeToString()
    return data


def _value(feature: Any, numpy: bool) -> Any:
    kind = feature.WhichOneof("kind")
    if kind == "float_list":
        values = feature.float_list.value
        return np.fromiter(values, np.float32, len(values)) if numpy else list(values)
    if kind == "int64_list":
        values = feature.int64_list.value
        return np.fromiter(values, np.int64, len(values)) if numpy else list(values)
    if kind == "bytes_list":
        items = list(feature.bytes_list.value)
        if not numpy:
            return items
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    return np.zeros(0, np.float32) if numpy else []


def _parse(cls: Any, data: bytes, what: str) -> Any:
    try:
        return cls.FromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError) as error:
        raise RecordError(
            f"Expected a serialized {what}. Received: {len(data)} bytes that do not parse "
            f"({error}). The record may hold something else, or be corrupt.",
        ) from None


def decode_example(data: bytes, *, numpy: bool = True) -> dict[str, Any]:
    """Parse a serialized ``tf.train.Example`` into a dict.

    Args:
        data: the serialized Example (one TFRecord record).
        numpy: return numpy arrays (the default) or plain Python lists.

    Returns:
        Feature name to values: ``float32``/``int64`` arrays, object arrays of ``bytes``.

    Raises:
        RecordError: the bytes are not a valid Example.

    Example:
        >>> decode_example(encode_example({"y": [1, 2]}))
        {'y': array([1, 2])}
    """
    message = _parse(Example, data, "tf.train.Example")
    return {name: _value(f, numpy) for name, f in message.features.feature.items()}


def decode_sequence_example(
    data: bytes, *, numpy: bool = True
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Parse a serialized ``tf.train.SequenceExample``.

    Args:
        data: the serialized SequenceExample.
        numpy: return numpy arrays (the default) or plain Python lists.

    Returns:
        ``(context, feature_lists)``: a dict as :func:`decode_example` gives, and a dict of
        feature name to the list of per-step values.

    Raises:
        RecordError: the bytes are not a valid SequenceExample.

    Example:
        >>> decode_sequence_example(encode_sequence_example({}, {"t": [1.0]}))
        ({}, {'t': [array([1.], dtype=float32)]})
    """
    message = _parse(SequenceExample, data, "tf.train.SequenceExample")
    context = {name: _value(f, numpy) for name, f in message.context.feature.items()}
    lists = {
        name: [_value(f, numpy) for f in entry.feature]
        for name, entry in message.feature_lists.feature_list.items()
    }
    return context, lists
