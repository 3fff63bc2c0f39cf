"""Reading text files the same way everywhere (translate, run_eval, search).

Policy, documented for users:
* Lines end at ``\\n``; a ``\\r`` before it (CRLF files) is removed. A lone ``\\r``
  inside a line is kept as text (moses treats it as whitespace).
* A UTF-8 byte-order mark at the start of the file is removed.
* Invalid UTF-8 is an error naming the file and the line, unless
  ``errors="replace"``, which substitutes U+FFFD (then the model sees ``<unk>``).
* A final line without ``\\n`` counts; a file ending in ``\\n`` has no extra empty line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import InputError

ERROR_POLICIES = ("strict", "replace")


def decode_lines(data: bytes, source: str, errors: str = "strict") -> list[str]:
    if errors not in ERROR_POLICIES:
        raise InputError(f"unknown encoding error policy {errors!r}; expected one of {ERROR_POLICIES}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return []
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            lines.append(raw.decode("utf-8", errors=errors))
        except UnicodeDecodeError as err:
            raise InputError(f"{source}: line {number} is not valid UTF-8 (byte {err.start}: "
                             f"{raw[err.start:err.start + 4]!r}); fix the file or pass --encoding-errors replace"
                             ) from None
    return lines


def read_lines(path: str | Path | None, errors: str = "strict", what: str = "input") -> list[str]:
    """Lines of ``path`` (``None`` or ``-`` = stdin) under the policy above."""
    if path is None or str(path) == "-":
        return decode_lines(sys.stdin.buffer.read(), "<stdin>", errors)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} file ({err.strerror})") from None
    return decode_lines(data, str(path), errors)
