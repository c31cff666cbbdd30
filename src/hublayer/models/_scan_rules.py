"""What the scanner allows, refuses, or allows only under a proof: one rule per op.

The scan is an **allowlist**. Every op is looked up in the reviewed op table
(``scan_ops.tsv``, read by ``_scan_ops.py``), which classifies every op the pinned
TensorFlow registers, and the ops of vetted op libraries (TensorFlow Text):

- ``allow``: the op computes only from its inputs (math, arrays, control flow,
  variables, random, strings, lookup tables, function calls). No finding.
- ``deny``: the op reaches outside the tensors it is given (writes, deletes, lists or
  memory-maps files, runs Python, talks to the network or other processes, dumps
  tensors, aborts the process). A ``high`` finding, whose ``why`` is the table's line.
- ``conditional``: the op reads or writes a path, or can be told to. It passes only when
  its :class:`Rule`'s ``check`` holds:

  - ``path``: every value the path inputs can take is proven, by value, to be a file of
    the model's own ``assets/`` (``_scan_values.py``): how text models read vocabularies
    and how a dataset reads a model's own file;
  - ``checkpoint_save`` / ``checkpoint_restore``: the node sits only in the save (or
    only in the restore) part of the graph that the meta graph's ``saver_def`` names,
    and its paths are proven to be the saver's filename (the model's ``variables/``)
    plus constant suffixes;
  - ``print_stream``: ``PrintV2``'s ``output_stream`` is not a ``file://`` path;
  - ``memory_cache``: ``CacheDataset``'s filename is the constant ``""`` (in memory);
  - ``descriptor_source``: ``DecodeProtoV2``/``EncodeProto`` read their descriptors from
    the binary (``local://``) or from the graph (``bytes://``), not from a file.

An op the table does not classify is refused (``high``): an op of a custom op library
runs native code the scan cannot see, and an op a newer TensorFlow added is unknown
until it is reviewed. ``safe_mode=False`` is the way past for a model the user trusts.

Example:
    >>> rule_for("WriteFile").severity, rule_for("ReadFile").check, rule_for("AddV2")
    ('high', 'path', None)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, cast

from hublayer.models._scan_ops import op_class
from hublayer.models._scan_registry import TF_VERSION

__all__ = ["HIGH", "MEDIUM", "Check", "Rule", "Severity", "rule_for"]

Severity = Literal["high", "medium"]
HIGH: Severity = "high"
MEDIUM: Severity = "medium"

Check = Literal[
    "path",
    "checkpoint_save",
    "checkpoint_restore",
    "print_stream",
    "memory_cache",
    "descriptor_source",
]
_CHECKS = frozenset(Check.__args__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Rule:
    """Why an op is not simply allowed, and the one narrow case in which it passes.

    Attributes:
        why: one line a user reads in the report.
        check: the proof that lets the op pass, or ``None`` (always refused).
        inputs: which inputs hold paths, for the checks that read inputs.
        severity: ``high`` (refused on load) or ``medium`` (reported).
    """

    why: str
    check: Check | None = None
    inputs: tuple[int, ...] = ()
    severity: Severity = HIGH


#: Why an op the table does not classify is refused: an op of a custom op library, or
#: one a TensorFlow newer than the table's added (the table holds every op of its version).
UNREGISTERED_WHY = (
    f"not an op of TensorFlow {TF_VERSION} nor of a vetted op library: a custom op library "
    "runs native code the scan cannot see, and a newer op is unknown until it is reviewed"
)
#: Why an asset whose path leaves the model's ``assets/`` folder is refused.
ASSET_ESCAPE_WHY = (
    "an asset path that leaves the model's assets/ folder: reading it reads that file"
)
#: Why an asset that is a link to a file outside the model is refused.
ASSET_LINK_WHY = "an asset is a link to a file outside the model: reading it reads that file"
#: Why a reference to a function the library lacks is refused.
MISSING_FUNCTION_WHY = (
    "calls a function the model's library does not define, which the scan cannot check"
)


@functools.lru_cache(maxsize=4096)
def rule_for(op: str) -> Rule | None:
    """The rule for ``op``: ``None`` when the table allows it outright.

    An op the table does not know gets an always-refused rule that says why.
    """
    found = op_class(op)
    if found is None:
        return Rule(UNREGISTERED_WHY)
    if found.kind == "allow":
        return None
    if found.kind == "deny":
        return Rule(found.why)
    check = found.check
    if check not in _CHECKS:  # a table row the scan cannot apply is no permission
        return Rule(found.why)
    return Rule(found.why, cast(Check, check), tuple(found.inputs))
