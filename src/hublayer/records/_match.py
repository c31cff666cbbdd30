"""Match records to a model: which feature feeds which input, decoded how.

:func:`plan` turns a :class:`Schema`, the user's options and (optionally) a model's input
spec into a :class:`Plan`: plain data that the pipeline builder follows. Every check
happens here, before TensorFlow builds anything, so data that cannot feed the model
fails with :class:`SpecMismatchError` before any training starts::

    model input (TensorInfo)            feature chosen                    checks
    ---------------------------------   -------------------------------   --------------------
    float/uint8 [B, H, W, C] (image)    image=..., same name, or the      size known, channels
                                        only image feature                 match (or convert)
    string [B] or [B, 1] (text)         text=..., same name, or the       bytes of length 1
                                        only text feature
    anything else [B, ...]              the feature of the same name      kind, fixed length

Pure Python: no TensorFlow, no Keras.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hublayer._specs import (
    RANGE_ASSUMED,
    RANGE_GIVEN,
    TensorInfo,
    check_range,
    convention_range,
    input_specs_of,
)
from hublayer.errors import Fix, SchemaError, SpecMismatchError
from hublayer.records._options import Crop, ImageOptions, image_options
from hublayer.records._schema import FeatureStats, Schema

__all__ = ["ImagePlan", "Plan", "TensorPlan", "plan"]

_GRAY = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}
_log = logging.getLogger("hublayer.records")


@dataclass(frozen=True)
class ImagePlan:
    """Decode ``feature`` into ``[height, width, channels]`` of ``dtype``."""

    feature: str
    output: str
    height: int
    width: int
    channels: int
    dtype: str
    value_range: tuple[float, float]
    #: Where ``value_range`` came from (``hublayer._specs.RANGE_*``): given by the caller,
    #: declared by the model, or assumed from TF Hub's convention.
    range_source: str
    crop: Crop
    crop_fraction: float
    jpeg_only: bool
    source_size: tuple[int, int] | None  # every image's size, when they all share one


@dataclass(frozen=True)
class TensorPlan:
    """Parse ``feature`` as is: dense with ``shape`` per record, or ragged."""

    feature: str
    output: str
    dtype: str  # as parsed: string, float32, int64
    shape: tuple[int, ...] | None  # None: ragged
    cast: str | None = None  # the model's dtype, when it differs
    reshape: tuple[int, ...] | None = None  # the model's per-record shape, when it differs
    rank2_text: bool = False  # a string input of shape [B, 1]


@dataclass(frozen=True)
class Plan:
    """What the pipeline produces: ``(inputs, label)``."""

    inputs: tuple[ImagePlan | TensorPlan, ...]
    label: TensorPlan | None
    single: bool  # yield the only input as a tensor instead of a dict

    @property
    def images(self) -> tuple[ImagePlan, ...]:
        return tuple(p for p in self.inputs if isinstance(p, ImagePlan))


def _describe(stats: FeatureStats) -> str:
    extra = f", {stats.image}" if stats.image else (f", {stats.content}" if stats.content else "")
    return f"{stats.name}: {stats.kind}, length {stats.length}{extra}"


def _mismatch(spec: TensorInfo, feature: str | None, why: str, fix: str | Fix) -> SpecMismatchError:
    """A mismatch error; ``fix`` is one sentence, or a :class:`Fix` when the CLI words
    it with a flag."""
    text = f"Expected records that can feed model input {spec}. Received: {why}."
    return SpecMismatchError(
        text if isinstance(fix, Fix) else f"{text} {fix}",
        feature=feature or spec.name,
        expected=str(spec),
        received=why,
        fix=fix if isinstance(fix, Fix) else None,
    )


def _label(schema: Schema, label: str | None) -> TensorPlan | None:
    if label is None:
        return None
    if label not in schema:
        raise SchemaError(
            f"Expected the label feature {label!r} in the records. Received: features "
            f"{', '.join(schema.names)}.",
            feature=label,
            fix=Fix("Pass label= one of them.", "Pass --label one of them."),
        )
    stats = schema[label]
    if stats.shape is None or stats.kind not in ("int64", "float", "bytes"):
        raise SchemaError(
            f"Expected the label {label!r} to have the same number of values in every record."
            f" Received: {_describe(stats)}, missing in {stats.missing:.1%} of records. "
            "Fix the records, or pick another label.",
            feature=label,
        )
    return TensorPlan(label, label, stats.dtype, stats.shape)


def _pick(
    schema: Schema,
    spec: TensorInfo,
    wanted: str | None,
    candidates: Sequence[FeatureStats],
    what: str,
) -> FeatureStats:
    if wanted is not None:
        return schema[wanted]
    if spec.name in schema:
        return schema[spec.name]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _mismatch(
            spec,
            None,
            f"no {what} feature among {'; '.join(_describe(f) for f in schema) or 'none'}",
            f"Write the {what}s into the records, or pick the model that fits this data.",
        )
    names = ", ".join(f.name for f in candidates)
    raise _mismatch(
        spec,
        None,
        f"several {what} features ({names})",
        Fix(f"Pass {what}= the one to use.", f"Pass --{what} the one to use."),
    )


def _image_plan(
    schema: Schema, spec: TensorInfo | None, options: ImageOptions, stats: FeatureStats
) -> ImagePlan:
    image = stats.image
    name = spec.name if spec is not None else stats.name
    if image is None:
        if spec is None:
            raise SchemaError(
                f"Expected {stats.name!r} to hold JPEG, PNG or GIF images. "
                f"Received: {_describe(stats)}.",
                feature=stats.name,
            )
        raise _mismatch(
            spec,
            stats.name,
            f"{_describe(stats)} (not images)",
            Fix("Pass image= an image feature.", "Pass --image an image feature."),
        )
    if stats.shape != ():
        raise SchemaError(
            f"Expected one image per record in {stats.name!r}. Received: {_describe(stats)}, "
            f"missing in {stats.missing:.1%}. Write one image per record.",
            feature=stats.name,
        )
    model_hw = tuple(spec.shape[1:3]) if spec is not None else (None, None)
    model_c = spec.shape[3] if spec is not None else None
    size = options.size
    if size is not None and None not in model_hw and size != model_hw:
        raise _mismatch(
            spec,  # type: ignore[arg-type]
            stats.name,
            f"image size {size} asked for",
            f"The model takes {model_hw[0]}x{model_hw[1]}; leave size= out.",
        )
    if size is None and None not in model_hw:
        size = (int(model_hw[0]), int(model_hw[1]))  # type: ignore[arg-type]
    if size is None:
        size = image.size
    if size is None:
        where = f"model input {spec} has no fixed size" if spec else "no size was given"
        raise SchemaError(
            f"Expected one image size to decode {stats.name!r} to. Received: {where}, and the "
            f"images vary ({image}).",
            feature=stats.name,
            fix=Fix("Pass image={'size': (height, width)}.", "Pass --image-size with the size."),
        )
    channels = options.channels
    data_channels = set(image.channels)
    if channels is not None and model_c is not None and channels != model_c:
        raise _mismatch(
            spec,  # type: ignore[arg-type]
            stats.name,
            f"channels={channels} asked for",
            f"The model takes {model_c} channels; pass channels={model_c}.",
        )
    if channels is None and model_c is not None:
        if data_channels != {model_c}:
            seen = "/".join(_GRAY.get(c, str(c)) for c in sorted(data_channels))
            if model_c not in (1, 3):
                raise _mismatch(
                    spec,  # type: ignore[arg-type]
                    stats.name,
                    f"{seen} images in {stats.name!r} ({image})",
                    f"To convert them, pass image={{'channels': {model_c}}}.",
                )
            # The decoder converts (grayscale to RGB, RGBA to RGB, RGB to grayscale), as
            # the model needs; say so once.
            _note_once(
                f"Converting the {seen} images of {stats.name!r} to {_GRAY[model_c]}, as the "
                f"model takes {model_c} channel(s)."
            )
        channels = model_c
    if channels is None:
        channels = 3 if len(data_channels) != 1 else next(iter(data_channels))
    dtype = options.dtype or (spec.dtype if spec is not None else "float32")
    if dtype not in ("float32", "float16", "bfloat16", "uint8"):
        raise ValueError(
            'Expected image dtype "float32", "float16", "bfloat16" or "uint8". '
            f"Received: dtype={dtype!r}."
        )
    value_range, source = _value_range(options, spec, dtype, stats.name)
    return ImagePlan(
        feature=stats.name,
        output=name,
        height=size[0],
        width=size[1],
        channels=channels,
        dtype=dtype,
        value_range=value_range,
        range_source=source,
        crop=options.crop,
        crop_fraction=options.crop_fraction,
        jpeg_only=image.formats == ("jpeg",),
        source_size=image.size,
    )


_NOTED: set[str] = set()


def _note_once(message: str) -> None:
    """Log a conversion made without being asked, once per process."""
    if message not in _NOTED:
        _NOTED.add(message)
        _log.warning(message)


def _value_range(
    options: ImageOptions, spec: TensorInfo | None, dtype: str, feature: str
) -> tuple[tuple[float, float], str]:
    """The range pixels are scaled to, and where it came from; an assumed one is logged."""
    if options.value_range is not None:
        chosen, source = check_range(options.value_range, name="image range"), RANGE_GIVEN
    elif spec is not None and spec.value_range is not None:
        chosen = check_range(spec.value_range, name=f"the value range of {spec.name!r}")
        source = spec.range_source or RANGE_ASSUMED
    else:
        chosen, source = convention_range(dtype), RANGE_ASSUMED
    if dtype == "uint8" and chosen != (0.0, 255.0):
        raise ValueError(
            f"Expected the range (0, 255) for uint8 images. Received: {chosen} ({source}). "
            "Drop image={'range': ...}, or ask for dtype 'float32'."
        )
    if source == RANGE_ASSUMED and dtype != "uint8":
        _log.info(
            "Scaling the images of %r to (%g, %g), %s; pass image={'range': (low, high)} "
            "if the model expects another range.",
            feature,
            *chosen,
            RANGE_ASSUMED,
        )
    return chosen, source


def _text_plan(schema: Schema, spec: TensorInfo, text: str | None) -> TensorPlan:
    stats = _pick(schema, spec, text, schema.texts(), "text")
    if stats.kind != "bytes":
        raise _mismatch(
            spec,
            stats.name,
            f"{_describe(stats)}",
            Fix(
                "A text model takes strings: pass text= a feature of UTF-8 text.",
                "A text model takes strings: pass --text a feature of UTF-8 text.",
            ),
        )
    if stats.shape != ():
        raise _mismatch(
            spec,
            stats.name,
            f"{_describe(stats)}, missing in {stats.missing:.1%}",
            "Write exactly one string per record.",
        )
    return TensorPlan(stats.name, spec.name, "string", (), rank2_text=spec.rank == 2)


def _tensor_plan(schema: Schema, spec: TensorInfo) -> TensorPlan:
    numeric = [f for f in schema if f.kind in ("float", "int64")]
    if spec.name not in schema:
        names = ", ".join(f.name for f in numeric) or "none"
        raise _mismatch(
            spec,
            None,
            f"no feature named {spec.name!r} (numeric features: {names})",
            "Rename the feature in the records, or pick the model that fits this data.",
        )
    stats = schema[spec.name]
    wants_float = spec.dtype.startswith(("float", "bfloat"))
    wants_int = spec.dtype.startswith(("int", "uint"))
    ok_kind = (stats.kind == "float" and wants_float) or (
        stats.kind == "int64" and (wants_float or wants_int)
    )
    if not ok_kind:
        raise _mismatch(
            spec, stats.name, _describe(stats), f"Write {spec.dtype} values for this input."
        )
    want = spec.shape[1:]
    have = stats.shape
    fits = have is not None and (
        len(want) == len(have) and all(w is None or w == h for w, h in zip(want, have, strict=True))
    )
    reshape = None
    if not fits and have is not None and None not in want and want:
        size = math.prod(have)
        fits = size == math.prod(w for w in want if w is not None)
        reshape = tuple(int(w) for w in want if w is not None)
    if not fits:
        raise _mismatch(
            spec,
            stats.name,
            f"{_describe(stats)}, missing in {stats.missing:.1%}",
            "Write the same number of values in every record.",
        )
    parsed = stats.dtype
    cast = None if parsed == spec.dtype else spec.dtype
    return TensorPlan(stats.name, spec.name, parsed, have, cast, reshape)


def _plan_without_model(
    schema: Schema, label: str | None, options: ImageOptions, text: str | None
) -> tuple[ImagePlan | TensorPlan, ...]:
    inputs: list[ImagePlan | TensorPlan] = []
    if options.feature is not None:
        chosen = {options.feature}
        schema[options.feature]  # raises for an unknown name
    else:
        chosen = {f.name for f in schema.images()}
    if text is not None:
        schema[text]
    for stats in schema:
        if stats.name == label or stats.kind in (None, "mixed"):
            continue
        if stats.name in chosen:
            inputs.append(_image_plan(schema, None, options, stats))
        else:
            inputs.append(TensorPlan(stats.name, stats.name, stats.dtype, stats.shape))
    return tuple(inputs)


def plan(
    schema: Schema,
    *,
    label: str | None = None,
    image: ImageOptions | Mapping[str, Any] | str | int | None = None,
    text: str | None = None,
    for_model: Any = None,
) -> Plan:
    """Decide what the pipeline parses and how it decodes it.

    Args:
        schema: what the records hold.
        label: the label feature, or None.
        image: image options (see :class:`ImageOptions`).
        text: the feature that feeds a string input.
        for_model: a model input spec (``hublayer.inspect(...)``, a ``KerasLayer``, or
            ``TensorInfo`` values); None parses every feature.

    Returns:
        A :class:`Plan`.

    Raises:
        SpecMismatchError: the records cannot feed the model (names the feature, and both
            the model's and the data's description).
        SchemaError: an unknown feature, a label that varies in length, images of many
            sizes and no size to decode them to.
    """
    options = image_options(image)
    label_plan = _label(schema, label)
    if for_model is None:
        return Plan(_plan_without_model(schema, label, options, text), label_plan, single=False)
    specs = input_specs_of(for_model)
    schema = schema.without(label)  # the label never feeds the model
    inputs: list[ImagePlan | TensorPlan] = []
    for spec in specs:
        if spec.dtype == "string":
            inputs.append(_text_plan(schema, spec, text))
        elif spec.is_image:
            stats = _pick(schema, spec, options.feature, schema.images(), "image")
            if stats.kind in ("float", "int64") and options.feature is None:
                inputs.append(_tensor_plan(schema, spec))  # pixels stored as numbers
            else:
                inputs.append(_image_plan(schema, spec, options, stats))
        else:
            inputs.append(_tensor_plan(schema, spec))
    return Plan(tuple(inputs), label_plan, single=len(specs) == 1)
