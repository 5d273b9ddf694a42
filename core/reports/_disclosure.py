"""Disclosure control for the counts a report prints.

A table of group counts must not single out a handful of people. A count below ``settings.min_cell_size`` is
suppressed (primary suppression), and so is the figure computed on those rows. Because the groups of one column
add up to a total the report states elsewhere (the test rows), a lone suppressed count could be recovered by
subtraction: then the next smallest count of that column is hidden too (secondary suppression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

COUNT_KEYS = ("Rows", "Test rows", "Count", "count", "rows", "n", "True total", "Predicted total")
DERIVED_KEYS = ("Share", "share", "Share of rows", "Value")  # figures computed on the counted rows


@dataclass(frozen=True)
class GroupRow:
    """One subgroup result as a report may print it."""

    column: str
    group: str
    count: str  # the count, or "< 10"/"hidden" when suppressed
    value: float | None  # None when suppressed (or undefined)
    overall: float | None
    gap: float | None
    small: bool
    suppressed: bool  # primary: too few rows, nothing of it is shown
    hidden: bool  # secondary: its count is withheld so that a suppressed one cannot be derived
    metric: str


def below(count: Any, minimum: int) -> bool:
    return isinstance(count, int | float) and not isinstance(count, bool) and count < minimum


def suppressed_label(minimum: int) -> str:
    return f"< {minimum}"


def _secondary(counts: Sequence[tuple[int, Any]], minimum: int) -> set[int]:
    """Indexes to hide as well: the smallest remaining count of a column with exactly one suppressed count."""
    primary = [index for index, count in counts if below(count, minimum)]
    rest = [(count, index) for index, count in counts
            if isinstance(count, int | float) and not isinstance(count, bool) and not below(count, minimum)]
    if len(primary) == 1 and rest:
        return {min(rest)[1]}
    return set()


def subgroup_rows(rows: Sequence[dict[str, Any]], minimum: int) -> list[GroupRow]:
    """The subgroup results of a run with small counts suppressed (and one more per column where needed)."""
    by_column: dict[str, list[tuple[int, Any]]] = {}
    for index, row in enumerate(rows):
        by_column.setdefault(str(row.get("column")), []).append((index, row.get("count")))
    hidden: set[int] = set()
    for counts in by_column.values():
        hidden |= _secondary(counts, minimum)
    result = []
    for index, row in enumerate(rows):
        count = row.get("count")
        primary = below(count, minimum)
        shown = suppressed_label(minimum) if primary else "hidden" if index in hidden else (
            f"{count:,}" if isinstance(count, int) else str(count))
        result.append(GroupRow(column=str(row.get("column")), group=str(row.get("group")), count=shown,
                               value=None if primary else row.get("value"), overall=row.get("overall"),
                               gap=None if primary else row.get("gap"), small=bool(row.get("small")),
                               suppressed=primary, hidden=index in hidden, metric=str(row.get("metric") or "")))
    return result


def chartable(rows: Sequence[dict[str, Any]], minimum: int) -> list[dict[str, Any]]:
    """The subgroup rows safe to draw: the chart labels each bar with its count, so suppressed ones are left out."""
    kept = subgroup_rows(rows, minimum)
    return [dict(row) for row, safe in zip(rows, kept, strict=True) if not (safe.suppressed or safe.hidden)]


def table_rows(rows: Sequence[dict[str, Any]], minimum: int) -> tuple[list[dict[str, Any]], int]:
    """Evidence table rows with small counts (and the shares computed from them) suppressed.

    Returns the rows and how many cells were suppressed. Rows are grouped by their "Column" value, when they have
    one, for secondary suppression.
    """
    out = [dict(row) for row in rows]
    suppressed = 0
    for key in COUNT_KEYS:
        groups: dict[str, list[tuple[int, Any]]] = {}
        for index, row in enumerate(out):
            if key in row:
                groups.setdefault(str(row.get("Column", "")), []).append((index, row[key]))
        if not groups:
            continue
        hidden: set[int] = set()
        for counts in groups.values():
            hidden |= _secondary(counts, minimum)
        for counts in groups.values():
            for index, count in counts:
                if below(count, minimum) or index in hidden:
                    out[index][key] = suppressed_label(minimum) if below(count, minimum) else "hidden"
                    suppressed += 1
                    for derived in DERIVED_KEYS:
                        if derived in out[index]:
                            out[index][derived] = "suppressed"
    return out, suppressed
