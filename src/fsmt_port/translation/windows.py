"""Cut a stream of lines into numbered windows of ``buffer_size`` lines, reading no further than needed.

A window is what fsmt-translate sorts, batches, translates and writes (or commits) as one unit, like
fairseq-interactive's ``--buffer-size``. Reading is lazy: window ``w`` is read only when it is asked
for, so a pipe or a terminal is answered window by window and no more than one window is held.

Under torchrun rank ``r`` of ``N`` takes windows ``r, r+N, r+2N, ...`` (``start``/``stride``); the
others are read and dropped. Every line read goes into a running sha256, so a resumed run can check
that its input starts with exactly the lines an interrupted run committed (a file or a pipe alike).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from fsmt_port.errors import ConfigError, InputError

#: Lines per window when reading a file or a pipe, at least: large enough that length-sorted batches are
#: nearly as full as whole-file sorting makes them, small enough to hold comfortably (a few MB of results).
DEFAULT_BUFFER_SIZE = 4096
#: ... and at least this many batches per window: with few batches per window, sorting has little to
#: choose from and batches mix lengths (4 batches of 256 per window cost 10% more CPU than whole-file).
BATCHES_PER_WINDOW = 64


@dataclass
class Window:
    index: int  # 0-based window number in the input
    first: int  # 0-based input index of its first line
    lines: list[str]


class LineDigest:
    """sha256 of the lines read so far (each with its ``\\n``), and how many there were."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.lines = 0

    def update(self, line: str) -> None:
        self._hash.update(line.encode("utf-8", "surrogatepass") + b"\n")
        self.lines += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class PrefixCheck:
    """The input must start with ``lines`` lines whose digest is ``sha256`` (what an interrupted run committed)."""
    lines: int
    sha256: str
    source: str


def read_windows(lines: Iterable[str], buffer_size: int, start: int = 0, stride: int = 1,
                 digest: LineDigest | None = None, check: PrefixCheck | None = None) -> Iterator[Window]:
    """Windows ``start, start+stride, ...`` of ``buffer_size`` lines (the last may be shorter)."""
    check_buffer_size(buffer_size)
    digest = digest if digest is not None else LineDigest()
    iterator = iter(lines)
    index = 0
    while True:
        chunk: list[str] = []
        for line in iterator:
            digest.update(line)
            if check is not None and digest.lines == check.lines:
                _verify(digest, check)
                check = None
            chunk.append(line)
            if len(chunk) == buffer_size:
                break
        if check is not None and len(chunk) < buffer_size:  # the input ended before the committed prefix
            raise InputError(f"{check.source}: the input has only {digest.lines} lines but the interrupted run "
                             f"committed {check.lines}; it is not the same input (pass --restart to start over)")
        if not chunk:
            return
        if index >= start and (index - start) % stride == 0:
            yield Window(index, index * buffer_size, chunk)
        if len(chunk) < buffer_size:
            return
        index += 1


def check_buffer_size(buffer_size: int) -> None:
    if buffer_size < 1:
        raise ConfigError(f"--buffer-size must be >= 1, got {buffer_size}")


def _verify(digest: LineDigest, check: PrefixCheck) -> None:
    if digest.hexdigest() != check.sha256:
        raise InputError(f"{check.source}: its first {check.lines} lines differ from those the interrupted run "
                         "committed; give the same input, or pass --restart to start over")


def lines_in_windows(total: int, buffer_size: int, start: int = 0, stride: int = 1) -> int:
    """How many of ``total`` lines fall in windows ``start, start+stride, ...``."""
    n_windows = -(-total // buffer_size)
    return sum(min(buffer_size, total - w * buffer_size) for w in range(start, n_windows, stride))


def count_lines(path: str | Path) -> int | None:
    """Lines in a file (for the progress bar's ETA), counted in 1 MiB blocks; None for stdin or on error."""
    if str(path) == "-" or not Path(path).is_file():
        return None
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return None
    return count + (last != b"\n")


def default_buffer_size(input_path: str, batch_size: int | None = None) -> int:
    """1 for a terminal (answer each line as it is typed); otherwise ``DEFAULT_BUFFER_SIZE`` lines, or
    ``BATCHES_PER_WINDOW`` batches of ``batch_size`` when that is more."""
    if str(input_path) == "-" and sys.stdin.isatty():
        return 1
    return max(DEFAULT_BUFFER_SIZE, BATCHES_PER_WINDOW * (batch_size or 0))
