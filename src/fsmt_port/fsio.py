"""Atomic outputs: write into a temporary sibling, rename at the end.

An interrupted run (Ctrl-C, SIGTERM, a crash) never leaves a half-written file
or folder under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputExistsError


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
def atomic_file(final: Path, force: bool = True, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary sibling of ``final`` for writing; rename it into place on success."""
    final = Path(final)
    check_can_write(final, force, "output file")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with sigterm_as_interrupt():
            with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None,
                           newline="" if "b" not in mode else None) as handle:
                yield handle
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
