"""What one ``embed`` run does, as plain data both engines follow.

A :class:`Job` holds the resolved model folder (so Ray actors load it without a
download), the model's input specs (with the value range used), the schema of the
inputs, the kept features, and the shards still to do. It pickles, so the Ray engine
ships it to its actors. :meth:`Job.finish` is how both engines commit a shard: its rows
counted against its input, its counts recorded, then the file moved into place.

Example:
    >>> [(source.name, target.name) for source, target in job.pending]  # doctest: +SKIP
    [('train-00001-of-00002.tfrecord', 'train-00001-of-00002.tfrecord')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import records
from hublayer._specs import TensorInfo
from hublayer.embed._output import Format, ShardOutput
from hublayer.errors import RecordError

__all__ = ["Job", "kept_columns"]

_KIND = {"float32": "float", "int64": "int64", "object": "bytes"}


@dataclass
class Job:
    """One embedding run: model, inputs, outputs."""

    model_path: str
    signature: str | None
    output_key: str | None
    schema: records.Schema
    keep: tuple[str, ...]
    batch_size: int
    format: Format
    pending: list[tuple[str, Path]]
    for_model: tuple[TensorInfo, ...] = ()
    image: Any = None
    on_error: str = "raise"  # "raise" or "skip"
    preprocess_path: str | None = None  # a text preprocessor's resolved folder
    text: str | None = None  # the string feature that feeds a text model
    record: Any = field(default=None, repr=False, compare=False)  # the driver's EmbedRecord
    _layer: Any = field(default=None, repr=False, compare=False)

    def layer(self) -> Any:
        """The model as a ``KerasLayer`` (with a preprocessor, a ``TextChain``), loaded
        once per process."""
        if self._layer is None:
            from hublayer.layers import KerasLayer, TextChain, whole_output_layer

            if self.preprocess_path is None:
                self._layer = KerasLayer(
                    self.model_path, signature=self.signature, output_key=self.output_key
                )
            else:  # strings -> preprocessor -> encoder, matched by name
                encoder = whole_output_layer(
                    self.model_path, signature=self.signature, trainable=False
                )
                chain = TextChain(self.preprocess_path, encoder, output_key=self.output_key)
                self.output_key = chain.output_key  # the one chosen, as recorded
                self._layer = chain
        return self._layer

    def parser(self) -> records.ExampleParser:
        """Serialized Examples -> model inputs, as ``records.dataset`` makes them."""
        return records.parser(
            self.schema, for_model=self.for_model, image=self.image, text=self.text
        )

    def checked(self, parser: records.ExampleParser) -> dict[str, str]:
        """Feature -> kind, for every feature the model or the kept columns read."""
        names = [item.feature for item in parser.plan.inputs] + list(self.keep)
        kinds = {n: self.schema[n].kind for n in dict.fromkeys(names)}
        return {n: k for n, k in kinds.items() if k in ("bytes", "float", "int64")}

    def finish(self, out: ShardOutput, source: str, records_met: int, skipped: int) -> None:
        """Commit ``out`` if it holds ``records_met - skipped`` rows, recording its counts.

        Raises:
            RecordError: another number of rows (the shard is not written).
        """

        def record() -> None:
            if self.record is not None:
                self.record.add(
                    out.path, source, records=records_met, skipped=skipped, rows=out.rows
                )

        out.commit(records_met - skipped, source=source, skipped=skipped, before_move=record)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layer"] = None  # each process loads its own
        state["record"] = None  # the driver's alone
        return state


def kind_error(
    path: str, example: dict[str, Any], kinds: dict[str, str], index: int, offset: int
) -> RecordError | None:
    """The error for a value of another kind than the schema's, as ``ray_dataset`` says it."""
    for name, kind in kinds.items():
        value = example.get(name)
        if value is None or not hasattr(value, "dtype"):
            continue
        found = _KIND.get(str(value.dtype), str(value.dtype))
        if found != kind:
            return RecordError(
                f"Expected feature {name!r} to hold {kind} values, as the schema says. "
                f"Received: a {found} list in record {index} at byte offset {offset} of "
                f"{path!r}. TensorFlow's parser refuses this record too: fix the record, "
                'embed with on_error="skip" to skip such records, or leave the feature out.',
                file=path,
                index=index,
                offset=offset,
                feature=name,
            )
    return None


def kept_columns(job: Job, serialized: Sequence[bytes]) -> dict[str, list[Any]]:
    """The kept features of serialized Examples, one value per row.

    A feature of one value per record gives that value; others give an array, as
    ``records.ray_dataset`` gives them, so both engines write the same rows.
    """
    decoded = [records.decode_example(bytes(data)) for data in serialized]
    columns: dict[str, list[Any]] = {}
    for name in job.keep:
        scalar = job.schema[name].shape == ()
        values = []
        for example in decoded:
            value = example.get(name, np.zeros(0, np.float32))
            values.append(value[0] if scalar else value)
        columns[name] = values
    return columns
