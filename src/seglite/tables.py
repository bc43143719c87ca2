"""Plain text tables, shared by the command line, the benchmark tool and scripts."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """A plain aligned text table (also valid as a Markdown table body)."""
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), sep, *(line(r) for r in cells)])
