"""Plain-text tables: the one printer behind every table the library and the CLI show (reports, checks, estimates).

Cells are formatted by the caller (numbers as they should read); this module only pads them into columns, two
spaces apart, so that every table lines up the same way. Standard library only: the CLI imports it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["format_table", "format_pairs"]

_GAP = "  "


def format_table(
    rows: Iterable[Sequence[Any]],
    header: Sequence[Any] | None = None,
    *,
    align: str | None = None,
    rule: bool = True,
) -> str:
    """Rows as a plain-text table, one line per row, columns padded to their widest cell.

    Args:
        rows (`Iterable[Sequence]`): the cells of each row; each cell is shown as `str(cell)`. A row may be shorter
            than the others.
        header (`Sequence`, *optional*): the column titles, padded like the rows.
        align (`str`, *optional*): one letter per column, `"l"` (left) or `"r"` (right); missing letters mean right.
            Defaults to the first column left and the others right, which suits a label followed by numbers.
        rule (`bool`, *optional*, defaults to `True`): draw a line of dashes under the header.

    Returns:
        `str`: the table without a trailing newline or trailing spaces (`""` for no rows and no header).
    """
    lines = [[str(c) for c in row] for row in rows]
    if header is not None:
        lines.insert(0, [str(h) for h in header])
    if not lines:
        return ""
    columns = max(len(row) for row in lines)
    widths = [max(len(row[i]) for row in lines if i < len(row)) for i in range(columns)]
    align = (align or "l").ljust(columns, "r")
    out = []
    for n, row in enumerate(lines):
        cells = [c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]) for i, c in enumerate(row)]
        out.append(_GAP.join(cells).rstrip())
        if header is not None and rule and n == 0:
            out.append(_GAP.join("-" * w for w in widths))
    return "\n".join(out)


def format_pairs(rows: Iterable[tuple[str, Any]], title: str | None = None) -> str:
    """`(key, value)` rows as an aligned two-column block under an optional title (keys left, values as they are)."""
    body = format_table(rows, align="ll")
    return "\n".join(line for line in (title, body) if line)
