"""Writing results: text lines and CSV atomically (JSON: ``files.write_json``), markdown tables for the terminal
and the search's score table."""

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


def score_table(ranked: Sequence[dict], names: Sequence[str], score: str = "bleu") -> str:
    """transformers' run_eval_search table: ``bleu | num_beams | ...``, aligned columns, rows as given (best first)."""
    columns = [score, *names]
    cells = [[f"{row[score]:.2f}", *(format_cell(row[n]) for n in names)] for row in ranked]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(f"{c:{w}}" for c, w in zip(columns, widths)), " | ".join("-" * w for w in widths)]
    lines += [" | ".join(f"{v:>{w}}" for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines) + "\n"
