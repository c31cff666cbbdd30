"""The scan's allowlist: how each TensorFlow op is classified, read from ``scan_ops.tsv``.

Every op the pinned TensorFlow registers (and every op ``import tensorflow_text`` adds)
has one row in ``scan_ops.tsv``, shipped next to this module. The scan looks each node's
op up here; an op with no row is not classified and is refused like a denied one.

Format: lines starting with ``#`` are the header; every other line is one op, five
tab-separated fields, sorted by op name::

    op      library      class        check                why
    ReadFile tensorflow  conditional  path:0               reads any file the process can read...
    Conv2D  tensorflow   allow        -                    nn
    Abort   tensorflow   deny         -                    aborts the process

- ``library``: ``tensorflow``, or ``tensorflow_text`` for the ops that TensorFlow Text
  registers (the loader imports that library before loading a model that uses them).
- ``class``: ``allow`` (computes only from its inputs), ``deny`` (can reach outside them:
  files, network, Python, the process), or ``conditional`` (reads or writes a path, and
  passes only when the scan proves the path is the model's own).
- ``check`` (``conditional`` rows only, else ``-``): ``path:<i>`` (input ``i`` holds the
  paths read), ``checkpoint_save:<i>``, ``checkpoint_restore:<i>`` (the path is the one the
  loader gives the saver functions), ``memory_cache:<i>`` (input ``i`` must be the constant
  ``""``), ``print_stream`` (attr ``output_stream`` must not be ``file://``),
  ``descriptor_source`` (attr ``descriptor_source`` must be ``local://`` or ``bytes://...``).
  Several input indices are comma-separated: ``checkpoint_save:0,1``.
- ``why``: for ``deny`` and ``conditional``, what the op can do, in one line a user reads;
  for ``allow``, a one-word category.

Review rule: every row is a human decision. ``tools/scan_ops_table.py`` proposes rows for
the new ops of a TensorFlow upgrade and never changes an existing row; an op nobody is sure
about is ``deny``, with a why. ``tests/test_scan_ops_table.py`` fails when the installed
TensorFlow registers an op the table lacks, so an upgrade cannot silently widen what loads.

The table is parsed once, on first use, without TensorFlow.

Example:
    >>> op_class("ReadFile").kind, op_class("ReadFile").check, op_class("ReadFile").inputs
    ('conditional', 'path', (0,))
    >>> op_class("Abort").kind
    'deny'
    >>> op_class("NotAnOp") is None
    True
    >>> libraries_of(["Conv2D", "CaseFoldUTF8", "NotAnOp"])
    {'tensorflow': ['Conv2D'], 'tensorflow_text': ['CaseFoldUTF8']}
    >>> len(table_digest())
    16
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal, cast, get_args

__all__ = [
    "CHECKS",
    "Kind",
    "OpClass",
    "libraries_of",
    "op_class",
    "table",
    "table_digest",
]

Kind = Literal["allow", "deny", "conditional"]
_KINDS: tuple[str, ...] = get_args(Kind)

#: Each check a conditional row may name -> whether it takes input indices.
CHECKS: Mapping[str, bool] = MappingProxyType(
    {
        "path": True,
        "checkpoint_save": True,
        "checkpoint_restore": True,
        "memory_cache": True,
        "print_stream": False,
        "descriptor_source": False,
    }
)

_FILE = "scan_ops.tsv"


@dataclass(frozen=True)
class OpClass:
    """How the scan treats one op.

    Attributes:
        op: the op name, as a node's ``op`` field spells it.
        library: ``tensorflow`` or the op library that registers it (``tensorflow_text``).
        kind: ``allow``, ``deny`` or ``conditional``.
        check: for ``conditional``, the proof the scan must make (see the module
            docstring); ``None`` otherwise.
        inputs: the input indices the check reads (empty for attribute checks).
        why: what the op can do (deny, conditional), or its category (allow).
    """

    op: str
    library: str
    kind: Kind
    check: str | None
    inputs: tuple[int, ...]
    why: str


def _parse_check(field: str, kind: str, where: str) -> tuple[str | None, tuple[int, ...]]:
    if kind != "conditional":
        if field != "-":
            raise ValueError(f"{where}: only a conditional row names a check. Received: {field!r}")
        return None, ()
    name, colon, indices = field.partition(":")
    if name not in CHECKS:
        raise ValueError(
            f"{where}: unknown check. Received: check={field!r}; expected one of {sorted(CHECKS)}"
        )
    if not CHECKS[name]:
        if colon:
            raise ValueError(f"{where}: check {name!r} takes no input index. Received: {field!r}")
        return name, ()
    try:
        inputs = tuple(int(index) for index in indices.split(","))
    except ValueError:
        raise ValueError(
            f"{where}: check {name!r} needs input indices, as {name}:0 or {name}:0,1. "
            f"Received: {field!r}"
        ) from None
    if not indices or any(index < 0 for index in inputs):
        raise ValueError(f"{where}: input indices must be >= 0. Received: {field!r}")
    return name, inputs


def _parse(data: bytes) -> dict[str, OpClass]:
    rows: dict[str, OpClass] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{_FILE}:{number}"
        fields = line.split("\t")
        if len(fields) != 5:
            raise ValueError(f"{where}: expected 5 tab-separated fields. Received: {line!r}")
        op, library, kind, check_field, why = fields
        if kind not in _KINDS:
            raise ValueError(f"{where}: class must be one of {list(_KINDS)}. Received: {kind!r}")
        if op in rows:
            raise ValueError(f"{where}: {op} has a row already")
        if not why or why == "-":
            raise ValueError(f"{where}: {op} has no why")
        check, inputs = _parse_check(check_field, kind, where)
        rows[op] = OpClass(op, library, cast(Kind, kind), check, inputs, why)
    return rows


@functools.cache
def _load() -> tuple[Mapping[str, OpClass], str]:
    data = resources.files(__package__ or "hublayer.models").joinpath(_FILE).read_bytes()
    return MappingProxyType(_parse(data)), hashlib.sha256(data).hexdigest()[:16]


def table() -> Mapping[str, OpClass]:
    """Every classified op: op name -> :class:`OpClass` (read-only)."""
    return _load()[0]


def op_class(op: str) -> OpClass | None:
    """How ``op`` is classified, or ``None`` when the table has no row for it."""
    return _load()[0].get(op)


def table_digest() -> str:
    """The first 16 hex digits of the sha256 of ``scan_ops.tsv``: names the table a scan used."""
    return _load()[1]


def libraries_of(ops: Iterable[str]) -> dict[str, list[str]]:
    """Library -> the ops of ``ops`` it registers, in first-seen order, without repeats.

    Ops the table lacks are left out. The loader uses it to import op libraries
    (``tensorflow_text``) before TensorFlow reads a model that needs them.
    """
    rows = _load()[0]
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    for op in ops:
        row = rows.get(op)
        if row is None or op in seen:
            continue
        seen.add(op)
        found.setdefault(row.library, []).append(op)
    return found


def __getattr__(name: str) -> str:
    # ``TABLE_DIGEST`` reads the table only when first asked for.
    if name == "TABLE_DIGEST":
        return table_digest()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
