"""Plan how images in records are decoded for a model input: size, channels, dtype, range.

Every choice is checked against the model's input spec, and one the caller did not ask
for (a channel conversion, an assumed value range) is logged, so nothing is converted in
silence.

Example:
    >>> from hublayer import testing
    >>> from hublayer.records import inspect
    >>> from hublayer.records._options import image_options
    >>> schema = inspect(testing.image_records("/tmp/imgs-plan/train", 4, size=8))
    >>> image_plan(schema, None, image_options(None), schema.images()[0]).channels
    3
"""

from __future__ import annotations

import logging

from hublayer._specs import RANGE_ASSUMED, RANGE_GIVEN, TensorInfo, check_range, convention_range
from hublayer.errors import Fix, SchemaError
from hublayer.records._mismatch import describe as _describe
from hublayer.records._mismatch import mismatch as _mismatch
from hublayer.records._options import ImageOptions
from hublayer.records._plans import ImagePlan
from hublayer.records._schema import FeatureStats, Schema

__all__ = ["image_plan"]

_GRAY = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}
_log = logging.getLogger("hublayer.records")


def image_plan(
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
