"""Table rows as readable lines that carry their header: "Item: Pump; Price: 40"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence


def table_text(rows: Iterable[Sequence[object]]) -> str:
    """One line per row, each value named by its column's header (the first non-empty row).

    Every line names its columns, so any chunk cut from the table explains itself."""
    lines: list[str] = []
    header: list[str] | None = None
    for row in rows:
        values = [_cell_text(value) for value in row]
        if not any(values):
            continue
        if header is None:
            header = values
            lines.append("; ".join(value for value in header if value))
            continue
        named = [
            f"{_column(header, index)}: {value}" for index, value in enumerate(values) if value
        ]
        lines.append("; ".join(named))
    return "\n".join(lines)


def _cell_text(value: object) -> str:
    """A cell as a person would read it: 12.0 as 12, a date without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())


def _column(header: list[str], index: int) -> str:
    name = header[index] if index < len(header) else ""
    return name or f"column {index + 1}"
