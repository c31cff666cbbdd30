"""What a scan found: :class:`Finding` and :class:`ScanReport`.

Example:
    >>> report = ScanReport("m", (Finding("WriteFile", "f", "w", "high", "writes a file"),))
    >>> report.safe, [f.op for f in report.high]
    (False, ['WriteFile'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "ScanReport"]


@dataclass(frozen=True)
class Finding:
    """One unsafe op (or a Keras config entry), where it sits and why it matters.

    Attributes:
        op: the op type (``WriteFile``), or the Keras class (``Lambda``).
        function: the function the node sits in; ``(graph)`` for a top-level node.
        node: the node's name.
        severity: ``high`` (the model is refused on load) or ``medium`` (reported).
        why: one line on what the op can do.
        file: the scanned file, relative to the model (``saved_model.pb``).
        detail: what the check saw (the path constant, the output stream...).
    """

    op: str
    function: str
    node: str
    severity: str
    why: str
    file: str = "saved_model.pb"
    detail: str = ""

    def describe(self) -> str:
        """``op in function (why)``: the short form used in error messages."""
        return f"{self.op} in {self.function} ({self.why})"


@dataclass(frozen=True)
class ScanReport:
    """The result of :func:`hublayer.scan`.

    Attributes:
        path: the folder or file scanned.
        findings: every finding, high ones first.
        ops: how many nodes of each op type the model holds (calls to its own
            functions excluded).
        functions: how many library functions were walked.
        files: the ``saved_model.pb`` / ``config.json`` files read, relative to ``path``.
    """

    path: str
    findings: tuple[Finding, ...] = ()
    ops: Mapping[str, int] = field(default_factory=dict)
    functions: int = 0
    files: tuple[str, ...] = ()

    @property
    def safe(self) -> bool:
        """True when no finding is of severity ``high``."""
        return not self.high

    @property
    def high(self) -> tuple[Finding, ...]:
        """The findings of severity ``high``."""
        return tuple(f for f in self.findings if f.severity == "high")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``hublayer scan --json``, the cache manifest)."""
        return {
            "path": self.path,
            "safe": self.safe,
            "findings": [asdict(f) for f in self.findings],
            "ops": dict(sorted(self.ops.items())),
            "functions": self.functions,
            "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanReport:
        """The inverse of :meth:`to_dict`; raises KeyError/TypeError when malformed."""
        return cls(
            path=str(data["path"]),
            findings=tuple(Finding(**f) for f in data["findings"]),
            ops={str(k): int(v) for k, v in data["ops"].items()},
            functions=int(data["functions"]),
            files=tuple(str(f) for f in data["files"]),
        )

    def __str__(self) -> str:
        high = len(self.high)
        medium = len(self.findings) - high
        verdict = "safe" if self.safe else "UNSAFE"
        counts = f"{high} high, {medium} medium" if self.findings else "no findings"
        lines = [f"{self.path}: {verdict} ({counts})"]
        if self.findings:
            rows = [("severity", "op", "function", "node", "why")]
            for f in self.findings:
                why = f.why + (f"; {f.detail}" if f.detail else "")
                rows.append((f.severity, f.op, _short(f.function), _short(f.node), why))
            widths = [max(len(row[i]) for row in rows) for i in range(4)]
            for row in rows:
                cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
                lines.append("  " + "  ".join([*cells, row[4]]))
        nodes = sum(self.ops.values())
        lines.append(
            f"  {nodes:,} nodes of {len(self.ops)} op types in {self.functions:,} functions "
            f"and top-level graphs; files: {', '.join(self.files) or '-'}"
        )
        return "\n".join(lines)


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
