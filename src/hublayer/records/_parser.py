"""``records.parser``: the preprocessing of ``records.dataset`` as a function of a batch.

``records.dataset(files, for_model=model)`` reads files; batch inference on Ray receives
serialized Examples in memory instead. :func:`parser` gives the very same parse, decode,
resize and scaling (built by the same code, so the values match bit for bit) as a
function of a 1-D string tensor of serialized Examples.

Example:
    >>> parse = records.parser(schema, for_model=layer)  # doctest: +SKIP
    >>> inputs = parse(tf.constant(batch_of_serialized_examples))  # doctest: +SKIP
    >>> embeddings = layer(inputs)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hublayer.records._match import ImagePlan, Plan, TensorPlan, plan
from hublayer.records._options import ImageOptions
from hublayer.records._parse import build_parse
from hublayer.records._schema import Schema

__all__ = ["ExampleParser", "parser"]


class ExampleParser:
    """Serialized ``tf.train.Example`` batch -> model inputs, as ``records.dataset`` makes them.

    Call it with a 1-D string tensor (or a list of ``bytes``); it returns the model's
    inputs: one tensor for a one-input model, else a dict keyed by input name.

    Attributes:
        plan: which feature feeds which input, decoded how.
    """

    def __init__(self, the_plan: Plan) -> None:
        import tensorflow as tf

        self.plan = the_plan
        single = build_parse(tf, the_plan, batched=False)
        batched = build_parse(tf, the_plan, batched=True)
        ragged = any(isinstance(i, TensorPlan) and i.shape is None for i in the_plan.inputs)

        def parse(serialized: Any) -> Any:
            if not the_plan.images:
                return batched(serialized)
            count = tf.cast(tf.size(serialized), tf.int64)
            items = tf.data.Dataset.from_tensor_slices(serialized).map(
                single, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
            )
            items = items.ragged_batch(count) if ragged else items.batch(count)
            return items.get_single_element()

        self._parse = tf.function(parse, input_signature=[tf.TensorSpec([None], tf.string)])

    def __call__(self, serialized: Any) -> Any:
        return self._parse(serialized)

    def describe(self) -> str:
        """One line per model input: the feature, and for images size, dtype and range.

        Example:
            >>> print(parse.describe())  # doctest: +SKIP
            input 'inputs' <- image: 224x224x3 float32, values in [0, 1]
        """
        lines = []
        for item in self.plan.inputs:
            if isinstance(item, ImagePlan):
                low, high = item.value_range
                lines.append(
                    f"input {item.output!r} <- {item.feature}: {item.height}x{item.width}x"
                    f"{item.channels} {item.dtype}, values in [{low:g}, {high:g}]"
                )
            else:
                shape = "ragged" if item.shape is None else list(item.shape)
                lines.append(f"input {item.output!r} <- {item.feature}: {item.dtype} {shape}")
        return "\n".join(lines)


def parser(
    schema: Schema | str | os.PathLike[str],
    *,
    for_model: Any,
    image: ImageOptions | Mapping[str, Any] | str | int | None = None,
    text: str | None = None,
) -> ExampleParser:
    """The function ``records.dataset(..., for_model=)`` applies, for batches in memory.

    Args:
        schema: what the records hold (from :func:`records.inspect`), or its JSON path.
        for_model: the model to feed, as for :func:`records.dataset`.
        image, text: as for :func:`records.dataset`.

    Returns:
        An :class:`ExampleParser` (imports TensorFlow).

    Raises:
        SpecMismatchError: the records cannot feed the model.
        SchemaError: as for :func:`records.dataset`.

    Example:
        >>> parse = records.parser(records.inspect(files), for_model=layer)  # doctest: +SKIP
        >>> parse([record_1, record_2]).shape  # doctest: +SKIP
        TensorShape([2, 224, 224, 3])
    """
    if not isinstance(schema, Schema):
        schema = Schema.load(schema)
    return ExampleParser(plan(schema, image=image, text=text, for_model=for_model))
