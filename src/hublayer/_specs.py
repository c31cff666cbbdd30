"""The one description of a model input or output that every package shares.

``models.inspect`` and ``layers.KerasLayer`` produce :class:`TensorInfo` tuples; ``records``
consumes them to build a pipeline that matches the model, without importing Keras or
loading the model. It is plain data: no TensorFlow import.

Contract: any object with an ``input_specs`` attribute (a ``ModelInfo`` from
``hublayer.inspect``, a ``KerasLayer``) or a sequence of ``TensorInfo`` is a model input
spec; :func:`input_specs_of` turns any of them into a tuple.

A value range says where it came from (:attr:`TensorInfo.range_source`): a SavedModel
does not record the range its images take, so unless the model declares it (a
``hublayer.json`` or ``hublayer_zoo.json`` beside ``saved_model.pb``) or the caller gives
it, it is TF Hub's publishing convention, reported as *assumed*.

Example:
    >>> spec = TensorInfo("images", "float32", (None, 224, 224, 3), value_range=(0.0, 1.0))
    >>> spec.rank, spec.is_image
    (4, True)
    >>> input_specs_of([spec])[0].name
    'images'
    >>> assumed_range(spec).describe_range()
    '(0, 1), assumed: TF Hub convention'
    >>> with_range(spec, (-1, 1)).describe_range()
    '(-1, 1), given'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from hublayer.errors import Fix, SpecMismatchError

__all__ = [
    "RANGE_ASSUMED",
    "RANGE_DECLARED",
    "RANGE_GIVEN",
    "TensorInfo",
    "assumed_range",
    "check_range",
    "convention_range",
    "input_specs_of",
    "match_by_name",
    "with_range",
]

#: The range is TF Hub's convention for image inputs, not a fact about the model.
RANGE_ASSUMED = "assumed: TF Hub convention"
#: The model's folder declares the range (``hublayer.json`` / ``hublayer_zoo.json``).
RANGE_DECLARED = "declared by the model"
#: The caller passed it (``image={"range": ...}``, ``input_range=``, ``--input-range``).
RANGE_GIVEN = "given"


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype and shape of one model input or output.

    Args:
        name: the input's key in a signature (``"inputs"`` for a single positional input).
        dtype: a TensorFlow dtype name: ``"float32"``, ``"int32"``, ``"string"``...
        shape: the full shape, batch dimension first; ``None`` marks an unknown size.
        value_range: for image inputs, the value range the model expects, when known.
        range_source: where ``value_range`` came from: :data:`RANGE_ASSUMED`,
            :data:`RANGE_DECLARED` or :data:`RANGE_GIVEN` (None: not said).
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    value_range: tuple[float, float] | None = None
    range_source: str | None = None

    @property
    def range_is_assumed(self) -> bool:
        """Whether the value range is a convention rather than declared or given."""
        return self.value_range is not None and self.range_source in (None, RANGE_ASSUMED)

    def describe_range(self) -> str:
        """``"(0, 1), assumed: TF Hub convention"``; ``"-"`` when there is no range."""
        if self.value_range is None:
            return "-"
        low, high = (f"{v:g}" for v in self.value_range)
        return f"({low}, {high}), {self.range_source or RANGE_ASSUMED}"

    @property
    def rank(self) -> int:
        """Number of dimensions, batch included."""
        return len(self.shape)

    @property
    def is_image(self) -> bool:
        """True for a floating ``[B, H, W, C]`` input with 1, 3 or 4 channels (or unknown C)."""
        return (
            self.rank == 4
            and self.dtype.startswith(("float", "bfloat", "uint8"))
            and self.shape[-1] in (1, 3, 4, None)
        )

    def __str__(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


def convention_range(dtype: str) -> tuple[float, float]:
    """TF Hub's convention for image inputs: ``(0, 255)`` for uint8, ``(0, 1)`` otherwise."""
    return (0.0, 255.0) if dtype == "uint8" else (0.0, 1.0)


def assumed_range(spec: TensorInfo) -> TensorInfo:
    """``spec`` with TF Hub's conventional range, marked assumed (images only)."""
    if not spec.is_image:
        return spec
    return replace(spec, value_range=convention_range(spec.dtype), range_source=RANGE_ASSUMED)


def check_range(value_range: Any, *, name: str = "range") -> tuple[float, float]:
    """``(low, high)`` as floats, or ValueError naming ``name`` when it is not one.

    Example:
        >>> check_range("-1,1")
        (-1.0, 1.0)
    """
    values = value_range.split(",") if isinstance(value_range, str) else value_range
    try:
        low, high = (float(v) for v in values)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"Expected {name} to be two finite numbers (low, high) with low < high, such "
            f"as (-1, 1). Received: {name}={value_range!r}."
        )
    return low, high


def with_range(spec: TensorInfo, value_range: Any) -> TensorInfo:
    """``spec`` with a range the caller gave (``None`` keeps ``spec`` as it is).

    Raises:
        ValueError: ``value_range`` is not ``(low, high)`` with ``low < high``, the input
            is not an image, or a uint8 input is given anything but ``(0, 255)``.
    """
    if value_range is None:
        return spec
    checked = check_range(value_range, name="input_range")
    if not spec.is_image:
        raise ValueError(
            f"Expected an image input for input_range. Received: input_range={value_range!r}"
            f" for {spec}, which is not an image. Drop input_range."
        )
    if spec.dtype == "uint8" and checked != (0.0, 255.0):
        raise ValueError(
            f"Expected input_range (0, 255) for the uint8 input {spec.name!r}. Received: "
            f"{value_range!r}. A uint8 input takes raw pixel values; drop input_range."
        )
    return replace(spec, value_range=checked, range_source=RANGE_GIVEN)


def input_specs_of(model_spec: Any) -> tuple[TensorInfo, ...]:
    """Normalize a model input spec to a tuple of :class:`TensorInfo`.

    Args:
        model_spec: an object with an ``input_specs`` attribute, a single ``TensorInfo``,
            or a sequence of them.

    Raises:
        TypeError: for anything else, naming what was received.
    """
    specs = getattr(model_spec, "input_specs", model_spec)
    if isinstance(specs, TensorInfo):
        return (specs,)
    if isinstance(specs, Sequence) and all(isinstance(s, TensorInfo) for s in specs):
        return tuple(specs)
    raise TypeError(
        "Expected a model input spec: the result of hublayer.inspect(...), a "
        "hublayer.KerasLayer, or a sequence of TensorInfo. "
        f"Received: model_spec={model_spec!r}."
    )


def match_by_name(
    produced: Sequence[TensorInfo],
    wanted: Sequence[TensorInfo],
    *,
    producer: str = "the preprocessor",
    consumer: str = "the model",
) -> tuple[str, ...]:
    """The names of ``wanted``, each found among ``produced`` by name.

    How a text preprocessor's outputs feed an encoder: by name, as TF Hub pairs them.
    Extra outputs of ``produced`` are fine (left out); a missing one, or one of another
    rank, is an error that lists both sides.

    Raises:
        SpecMismatchError: a ``wanted`` name that ``produced`` lacks, or ranks that
            differ; ``expected`` and ``received`` hold both sides' specs.

    Example:
        >>> ids = TensorInfo("input_word_ids", "int32", (None, 128))
        >>> mask = TensorInfo("input_mask", "int32", (None, 128))
        >>> match_by_name([ids, mask], [ids])
        ('input_word_ids',)
    """
    have = {spec.name: spec for spec in produced}
    missing = [s.name for s in wanted if s.name not in have]
    other_rank = [
        s.name for s in wanted if s.name in have and have[s.name].rank != s.rank and s.shape
    ]
    if missing or other_rank or not wanted:
        why = (
            f"missing {missing}"
            if missing
            else f"other ranks for {other_rank}"
            if other_rank
            else "no named inputs"
        )
        raise SpecMismatchError(
            f"Expected {producer}'s outputs to include every input of {consumer}, matched "
            f"by name. Received: {producer} gives [{', '.join(map(str, produced))}]; "
            f"{consumer} takes [{', '.join(map(str, wanted))}]: {why}.",
            feature=next(iter(missing or other_rank), None),
            expected=[str(s) for s in wanted],
            received=[str(s) for s in produced],
            fix=Fix(
                "Pass preprocess= the preprocessor published with this model (TF Hub pairs "
                "them, e.g. bert_en_uncased_preprocess with the BERT encoders).",
                "Pass --preprocess the preprocessor published with this model (TF Hub pairs "
                "them, e.g. bert_en_uncased_preprocess with the BERT encoders).",
            ),
        )
    return tuple(s.name for s in wanted)
