"""What one ``embed`` run does, as plain data both engines follow.

A :class:`Job` holds the resolved model folder (so Ray actors load it without a
download), the schema of the inputs, the kept features, and the shards still to do.
It pickles, so the Ray engine ships it to its actors.

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
from hublayer.embed._output import Format

__all__ = ["Job", "kept_columns"]


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
    _layer: Any = field(default=None, repr=False, compare=False)

    def layer(self) -> Any:
        """The model as a ``KerasLayer``, loaded once per process."""
        if self._layer is None:
            from hublayer.layers import KerasLayer

            self._layer = KerasLayer(
                self.model_path, signature=self.signature, output_key=self.output_key
            )
        return self._layer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layer"] = None  # each process loads its own
        return state


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
