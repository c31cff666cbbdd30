"""The parse step of ``records.dataset``: serialized Examples to model inputs, per plan.

:func:`build_parse` turns a :class:`~hublayer.records._match.Plan` into the function that
``records.dataset`` maps over its batches (and ``records.parser`` wraps for batches in
memory): ``tf.io.parse_example`` with the plan's spec, then images decoded, cropped,
resized and scaled, and tensors cast and reshaped.

Choices, made by timing the alternatives while this step was written (those timings
were not kept in a run file; the ``images`` case of ``benchmarks/RESULTS.md`` holds the
figures for the result, center crop included):

- For images the decode dominates; it runs per image in a parallel map. Resizing a
  float32 image costs less than resizing uint8 input, so images are cast first (the
  same values as the tutorials' decode + resize + /255, for less CPU). The JPEG decode
  itself is mostly entropy decoding, so ``crop="center"`` saves little in the decode
  (``decode_and_crop_jpeg``) but from 256 to 224 px needs no resize.
- Tried and rejected (no gain beyond noise, or slower): ``dct_method="INTEGER_FAST"``
  (libjpeg-turbo's SIMD default is as fast), one resize per batch instead of per image,
  batching uint8 images and converting per batch, resizing uint8, ``parse_example`` per
  batch then ``map_fn``.

Example:
    >>> import tensorflow as tf  # doctest: +SKIP
    >>> parse = build_parse(tf, plan(schema, label="label"), batched=True)  # doctest: +SKIP
    >>> features, labels = parse(tf.constant([record_1, record_2]))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from hublayer.records._match import ImagePlan, Plan, TensorPlan

__all__ = ["build_parse"]


def _parse_spec(tf: Any, p: Plan) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for item in [*p.inputs, *([p.label] if p.label else [])]:
        if isinstance(item, ImagePlan):
            spec[item.feature] = tf.io.FixedLenFeature([], tf.string)
        elif item.shape is None:
            spec[item.feature] = tf.io.RaggedFeature(item.dtype, row_splits_dtype=tf.int64)
        else:
            spec[item.feature] = tf.io.FixedLenFeature(list(item.shape), item.dtype)
    return spec


def _center_window(height: int, width: int, p: ImagePlan) -> tuple[int, int]:
    """The size of the central crop with the target's aspect ratio (static sizes)."""
    scale = min(height / p.height, width / p.width) * p.crop_fraction
    return max(1, min(height, round(p.height * scale))), max(1, min(width, round(p.width * scale)))


def _window(tf: Any, hw: Any, p: ImagePlan) -> Any:
    """``[top, left, height, width]`` of the central crop of an image of size ``hw``."""
    size = tf.cast(hw, tf.float32)
    target = tf.constant([p.height, p.width], tf.float32)
    scale = tf.reduce_min(size / target) * p.crop_fraction
    crop = tf.cast(tf.clip_by_value(tf.round(target * scale), 1.0, size), tf.int32)
    return tf.concat([(hw - crop) // 2, crop], 0)


def _decode(tf: Any, data: Any, p: ImagePlan) -> Any:
    """One encoded image to ``[height, width, channels]`` of the plan's dtype and range.

    The window and the resize follow each image's own size, so an image the sampled
    schema did not see still decodes; when the schema says no resize is needed, a cheap
    check skips it.
    """
    if p.crop == "center" and p.jpeg_only:
        window = _window(tf, tf.io.extract_jpeg_shape(data)[:2], p)
        image = tf.io.decode_and_crop_jpeg(data, window, channels=p.channels)
    else:
        if p.jpeg_only:
            image = tf.io.decode_jpeg(data, channels=p.channels)
        else:
            image = tf.io.decode_image(data, channels=p.channels, expand_animations=False)
        if p.crop == "center":
            window = _window(tf, tf.shape(image)[:2], p)
            image = tf.slice(image, [window[0], window[1], 0], [window[2], window[3], -1])
    expected = p.source_size
    if expected is not None and p.crop == "center":
        expected = _center_window(*expected, p)
    target = [p.height, p.width]
    likely_fits = expected == (p.height, p.width)
    fits = tf.reduce_all(tf.equal(tf.shape(image)[:2], target)) if likely_fits else None

    def resized() -> Any:
        return tf.image.resize(tf.cast(image, tf.float32), target)

    if p.dtype == "uint8":

        def resized_uint8() -> Any:
            return tf.cast(tf.clip_by_value(tf.round(resized()), 0.0, 255.0), tf.uint8)

        image = tf.cond(fits, lambda: image, resized_uint8) if likely_fits else resized_uint8()
    else:
        as_float = tf.cast(image, tf.float32) if likely_fits else None
        image = tf.cond(fits, lambda: as_float, resized) if likely_fits else resized()
        low, high = p.value_range
        if (low, high) != (0.0, 255.0):
            image = image * ((high - low) / 255.0)
            if low:
                image = image + low
        image = tf.cast(image, p.dtype)
    image.set_shape([p.height, p.width, p.channels])
    return image


def _finish(tf: Any, item: TensorPlan, value: Any, batched: bool) -> Any:
    if item.cast is not None:
        value = tf.cast(value, item.cast)
    if item.reshape is not None:
        value = tf.reshape(value, [-1, *item.reshape] if batched else list(item.reshape))
    if item.rank2_text:
        value = tf.expand_dims(value, -1)
    return value


def _outputs(p: Plan, values: dict[str, Any]) -> Any:
    features = (
        values[p.inputs[0].output] if p.single else {i.output: values[i.output] for i in p.inputs}
    )
    if p.label is None:
        return features
    return features, values["\0label"]


def build_parse(tf: Any, p: Plan, batched: bool) -> Any:
    """The function from serialized Examples (one, or a 1-D batch when ``batched``) to
    ``features`` or ``(features, label)`` as the plan says: parse, decode, resize, cast."""
    spec = _parse_spec(tf, p)

    def parse(serialized: Any) -> Any:
        parsed = (tf.io.parse_example if batched else tf.io.parse_single_example)(serialized, spec)
        values: dict[str, Any] = {}
        for item in p.inputs:
            if isinstance(item, ImagePlan):
                values[item.output] = _decode(tf, parsed[item.feature], item)
            else:
                values[item.output] = _finish(tf, item, parsed[item.feature], batched)
        if p.label is not None:
            values["\0label"] = parsed[p.label.feature]
        return _outputs(p, values)

    return parse
