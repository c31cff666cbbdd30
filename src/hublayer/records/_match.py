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

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hublayer._specs import (
    TensorInfo,
    input_specs_of,
)
from hublayer.errors import Fix, SchemaError
from hublayer.records._image_plan import image_plan as _image_plan
from hublayer.records._mismatch import describe as _describe
from hublayer.records._mismatch import mismatch as _mismatch
from hublayer.records._options import ImageOptions, image_options
from hublayer.records._plans import ImagePlan, Plan, TensorPlan
from hublayer.records._schema import FeatureStats, Schema

__all__ = ["ImagePlan", "Plan", "TensorPlan", "plan"]


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
    if stats.content == "image":  # tokenizing JPEG/PNG bytes would give garbage, silently
        raise _mismatch(
            spec,
            stats.name,
            f"encoded images (JPEG/PNG bytes) in feature {stats.name!r}, not UTF-8 text",
            Fix(
                "Pass text= the feature that holds the sentences, or use an image model.",
                "Pass --text the feature that holds the sentences, or use an image model.",
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
