"""Files in and out, the same way everywhere.

Outputs are atomic: written into a temporary sibling and renamed at the end, so an interrupted run
(Ctrl-C, SIGTERM, a crash) never leaves a half-written file or folder under the final name.

Text input follows one policy, documented for users:
* Lines end at ``\\n``; a ``\\r`` before it (CRLF files) is removed. A lone ``\\r``
  inside a line is kept as text (moses treats it as whitespace).
* A UTF-8 byte-order mark at the start of the file is removed.
* Invalid UTF-8 is an error naming the file and the line, unless
  ``errors="replace"``, which substitutes U+FFFD (then the model sees ``<unk>``).
* A final line without ``\\n`` counts; a file ending in ``\\n`` has no extra empty line.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from fsmt_port.errors import ConfigError, InputError, MissingFileError, OutputExistsError


def check_can_write(path: Path, force: bool, what: str = "output") -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: {what} already exists; pass --force to overwrite it")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` clean-up runs for both."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_directory(final: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it replaces ``final``."""
    final = Path(final)
    check_can_write(final, force, "output folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        with sigterm_as_interrupt():
            yield tmp
            if final.exists():
                backup = final.with_name(f".{final.name}.old-{os.getpid()}")
                final.rename(backup)
                try:
                    tmp.rename(final)
                except BaseException:  # interrupted between the two renames: put the old folder back
                    if backup.exists() and not final.exists():
                        backup.rename(final)
                    raise
                shutil.rmtree(backup, ignore_errors=True)
            else:
                tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(final: Path, force: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path of ``final`` for writers that want a path (safetensors);
    on success it gets the mode a new file gets under the umask (0644 under 022) and replaces ``final``."""
    final = Path(final)
    check_can_write(final, force, "output file")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(final), dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with sigterm_as_interrupt():
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp (and safetensors) create files 0600
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def glob_escape(name: str) -> str:
    """``name`` as a glob pattern matching only itself."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def remove_stale_temps(final: Path) -> None:
    """Delete the temporary siblings that ``atomic_path`` writes of ``final`` leave when their process
    is killed (SIGKILL skips the cleanup). Only for a path no other live process is writing."""
    for temp in Path(final).parent.glob(glob_escape(_temp_prefix(Path(final))) + "*"):
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(final: Path, force: bool = True, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary sibling of ``final`` for writing; rename it into place on success."""
    binary = "b" in mode
    with atomic_path(final, force) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else "") as handle:
            yield handle


CONVERT_HINT = "run the converter (python -m fsmt_port.convert; --force to redo a folder)"


def read_json(path: str | Path, what: str):
    """A model folder's JSON file: ``MissingFileError`` when absent, ``ConfigError`` when not UTF-8 JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise MissingFileError(f"{path}: {what} not found; {CONVERT_HINT}") from None
    except IsADirectoryError:
        raise MissingFileError(f"{path}: {what} is a folder, not a file; {CONVERT_HINT}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: {what} is not valid JSON ({err}); {CONVERT_HINT}") from None


def write_json(path: str | Path, data, force: bool = True) -> None:
    """``data`` as indented UTF-8 JSON, atomically (the one way JSON files are written)."""
    with atomic_file(Path(path), force=force) as handle:
        handle.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def sha256(path: str | Path) -> str:
    """Hex digest of a file, read in 1 MiB blocks (checkpoints are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

ERROR_POLICIES = ("strict", "replace")


def decode_lines(data: bytes, source: str, errors: str = "strict") -> list[str]:
    return list(decode_line_stream(io.BytesIO(data), source, errors))


def decode_line_stream(stream: BinaryIO, source: str, errors: str = "strict") -> Iterator[str]:
    """Lines of a binary stream, one at a time, under the policy above (a line is returned as soon as it ends)."""
    if errors not in ERROR_POLICIES:
        raise InputError(f"unknown encoding error policy {errors!r}; expected one of {ERROR_POLICIES}")
    for number, raw in enumerate(iter(stream.readline, b""), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
            if not raw:
                return
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield raw.decode("utf-8", errors=errors)
        except UnicodeDecodeError as err:
            raise InputError(f"{source}: line {number} is not valid UTF-8 (byte {err.start}: "
                             f"{raw[err.start:err.start + 4]!r}); fix the file or pass --encoding-errors replace"
                             ) from None


def iter_lines(path: str | Path | None, errors: str = "strict", what: str = "input") -> Iterator[str]:
    """Lines of ``path`` (``None`` or ``-`` = stdin) under the policy above, read incrementally."""
    if path is None or str(path) == "-":
        return decode_line_stream(sys.stdin.buffer, "<stdin>", errors)
    return _lines_then_close(open_input(path, what), str(path), errors)  # opened now: errors show at once


def _lines_then_close(handle: BinaryIO, source: str, errors: str) -> Iterator[str]:
    with handle:
        yield from decode_line_stream(handle, source, errors)


def open_input(path: str | Path, what: str = "input") -> BinaryIO:
    """``path`` opened for binary reading; a missing file, a folder or an unreadable file is one clear error."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: the {what} path is a folder, not a file; give a text file with one sentence "
                         "per line")
    if not path.exists():
        raise MissingFileError(f"{path}: {what} file not found")
    try:
        return open(path, "rb")
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} file ({err.strerror})") from None


def read_lines(path: str | Path | None, errors: str = "strict", what: str = "input") -> list[str]:
    """Lines of ``path`` (``None`` or ``-`` = stdin) under the policy above."""
    return list(iter_lines(path, errors, what))
