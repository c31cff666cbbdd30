"""Shape decoded records by a :class:`~hublayer.records.Schema` (``Source(schema=...)``).

``decode_example`` gives every feature as a flat array, as the record stores it. A
schema says more: which features always hold N values (a fixed feature gets shape
``(N,)``, or ``()`` for one value, as ``tf.io.FixedLenFeature`` gives them), and each
feature's dtype. With it, records stack into batches the way ``records.dataset``
batches them, and a record that breaks the schema raises instead of batching badly::

    schema says                 the record holds         given as
    fixed, 1 value              [7]                      array(7), shape ()
    fixed, 3 values             [1., 2., 3.]             shape (3,)
    fixed                       another length, or none  SchemaError (feature, file, index)
    varies / sometimes missing  any length, or none      1-D array; empty when missing
    int64 / float / bytes       another kind             SchemaError

Example:
    >>> from hublayer.records._schema import FeatureStats
    >>> schema = Schema(features=(FeatureStats("label", "int64", 2, 0.0, 1, 1, 1.0),),
    ...                 records=2)
    >>> Shaper(schema)({"label": np.array([7]), "other": np.array([1.0])}, "a", 0)
    {'label': array(7)}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from hublayer.errors import SchemaError
from hublayer.records._schema import Schema

__all__ = ["Shaper"]

_DTYPES = {"bytes": np.dtype(object), "float": np.dtype(np.float32), "int64": np.dtype(np.int64)}


class Shaper:
    """Decoded record -> the schema's features, shapes and dtypes.

    Args:
        schema: the schema, or the path of its JSON.
        columns: keep only these of its features; None keeps all.

    Raises:
        SchemaError: a column the schema does not have.
    """

    def __init__(
        self, schema: Schema | str | os.PathLike[str], columns: Sequence[str] | None = None
    ) -> None:
        if not isinstance(schema, Schema):
            schema = Schema.load(schema)
        known = {f.name: f for f in schema.features}
        if columns is not None:
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise SchemaError(
                    f"Expected columns that the schema has: {sorted(known)}. Received: "
                    f"{unknown}. Check the names, or pass a schema of these files.",
                    feature=unknown[0],
                )
        #: the features given, in order
        self.columns: tuple[str, ...] = tuple(columns if columns is not None else known)
        self._plan = tuple(
            (name, _DTYPES.get(known[name].kind or ""), known[name].shape) for name in self.columns
        )

    def __call__(self, values: dict[str, Any], file: str, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, dtype, shape in self._plan:
            value = values.get(name)
            if dtype is None:  # the sample saw no kind, or several: as decoded
                out[name] = value if value is not None else np.zeros(0, np.float32)
                continue
            if value is None:
                if shape is not None:
                    raise self._error(name, file, index, "no value (the feature is missing)")
                out[name] = np.zeros(0, dtype)
                continue
            if value.dtype != dtype:
                if value.size:
                    raise self._error(name, file, index, f"{value.dtype} values", dtype=dtype)
                value = np.zeros(0, dtype)  # an empty feature has no kind
            if shape is not None:
                expected = int(np.prod(shape)) if shape else 1
                if value.size != expected:
                    raise self._error(name, file, index, f"{value.size} values")
                value = value.reshape(shape)
            out[name] = value
        return out

    def _error(
        self, name: str, file: str, index: int, received: str, *, dtype: Any = None
    ) -> SchemaError:
        plan = {n: (d, s) for n, d, s in self._plan}
        want_dtype, shape = plan[name]
        want = f"dtype {want_dtype}" if dtype is not None else f"shape {shape}"
        return SchemaError(
            f"Expected feature {name!r} to have {want}, as the schema says. Received: "
            f"{received} in record {index} of the source (file {file!r}). The schema came "
            "from a sample that missed this record: pass a schema from "
            "records.inspect(files, sample=None), or leave schema= out.",
            feature=name,
            file=file,
            index=index,
        )
