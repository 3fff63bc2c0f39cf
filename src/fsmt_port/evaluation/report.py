"""Writing results: text lines and CSV atomically (JSON: ``files.write_json``), markdown tables for the terminal."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

from fsmt_port.files import atomic_file


def write_lines(path: str | Path, lines: Iterable[str]) -> None:
    with atomic_file(Path(path)) as handle:
        handle.write("".join(line + "\n" for line in lines))


def write_csv(path: str | Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_file(Path(path)) as handle:
        handle.write(buffer.getvalue())


def format_cell(value, spec: str = "g") -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return format(value, spec)
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict], columns: Sequence[str], headers: Sequence[str] | None = None,
                   formats: dict[str, str] | None = None) -> str:
    """A GitHub markdown table; numbers right-aligned, ``formats`` maps a column to a format spec (".2f")."""
    headers = list(headers or columns)
    formats = formats or {}
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
               for c in columns]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(format_cell(r.get(c), formats.get(c, "g")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
