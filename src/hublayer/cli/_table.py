"""Plain-text tables for the CLI: one header row, a rule, then the rows."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["table"]


def table(rows: Sequence[Sequence[object]], header: Sequence[str], *, numeric: bool = False) -> str:
    """Columns padded to their widest cell, two spaces apart.

    Args:
        rows: the cells, any objects (shown with ``str``).
        header: one name per column.
        numeric: right-align every column but the first (for tables of figures).

    Example:
        >>> print(table([["a", 1], ["bb", 22]], ["name", "n"], numeric=True))
        name   n
        ----  --
        a      1
        bb    22
    """
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = [
            c.rjust(w) if numeric and i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    lines = [line(row) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
