"""Resumable output: each rank commits its windows to hidden part files; one step assembles the result.

For ``--output out.de`` rank ``r`` of ``N`` writes next to it (``N`` = 1 for one process)::

    .out.de.rank0-of-1.partial     the rank's finished windows, their output bytes back to back
    .out.de.rank0-of-1.index       one line per committed window: "<window> <bytes>"
    .out.de.rank0-of-1.state.json  what is committed, and the key it was made with

A window is committed by appending to the partial and index files, fsync-ing them, then atomically
replacing the state file. A kill at any moment leaves a state that describes a clean prefix; the
bytes written after it are cut off when the run resumes. The key holds everything that determines
the output (model files, resolved generation arguments, format, reading policy, dtype, window size);
the state also holds the sha256 of the input read up to the last committed window, which the resumed
run checks as it reads. At the end the windows are copied in input order (round robin over the
ranks' files, one window at a time) into an atomic temporary file renamed to ``out.de``; with one
process the partial file is simply renamed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from fsmt_port.errors import ConfigError, OutputError
from fsmt_port.files import atomic_file, check_can_write, glob_escape, remove_stale_temps
from fsmt_port.translation.windows import LineDigest, PrefixCheck

STATE_VERSION = 1
SKIPPED_MODEL_FILES = {"generation_config.json"}  # its values are part of the resolved generation arguments


def model_fingerprint(model_dir: str | Path) -> dict:
    """A model folder's identity: its path and the name, size and mtime of every file."""
    folder = Path(model_dir).resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name not in SKIPPED_MODEL_FILES)
    return {"path": str(folder),
            "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


@dataclass
class Committed:
    """What one rank has committed: its windows, and the input read through the last of them."""
    windows: int = 0
    lines: int = 0  # input lines this rank translated
    input_lines: int = 0  # input lines read up to the end of its last committed window
    input_sha256: str = ""
    partial_bytes: int = 0
    index_bytes: int = 0

    def prefix_check(self, source: str) -> PrefixCheck | None:
        return PrefixCheck(self.input_lines, self.input_sha256, source) if self.input_lines else None


_PART = re.compile(r"\.rank(\d+)-of-(\d+)\.state\.json$")


def _part_prefix(final: Path, rank: int, world_size: int) -> Path:
    return final.parent / f".{final.name}.rank{rank}-of-{world_size}"


def existing_world_sizes(final: Path) -> set[int]:
    """World sizes of interrupted runs whose state files lie next to ``final``."""
    if not final.parent.is_dir():
        return set()
    found = set()
    for path in final.parent.glob(f".{glob_escape(final.name)}.rank*-of-*.state.json"):
        match = _PART.search(path.name)
        if match:
            found.add(int(match.group(2)))
    return found


def check_world_size(final: Path, world_size: int) -> None:
    """An interrupted run made by another number of processes cannot be continued by this one."""
    others = sorted(existing_world_sizes(final) - {world_size})
    if others:
        theirs = others[0]
        how = "one process" if theirs == 1 else f"torchrun --nproc_per_node/--nnodes giving {theirs} processes"
        raise ConfigError(f"{final}: an interrupted run of {theirs} process(es) left its parts here, and this run "
                          f"has {world_size}; resume it with {how}, or pass --restart to start over")


def remove_parts(final: Path, world_size: int | None = None, keep: int | None = None) -> None:
    """Delete the part files of ``world_size`` (every world size when None, except ``keep``)."""
    sizes = existing_world_sizes(final) - {keep} if world_size is None else {world_size}
    for size in sizes:
        for rank in range(size):
            RankParts(final, rank, size).remove()


class RankParts:
    """One rank's part files for ``final``: open (resuming what is committed), commit windows, close."""

    def __init__(self, final: str | Path, rank: int = 0, world_size: int = 1) -> None:
        self.final = Path(final)
        prefix = _part_prefix(self.final, rank, world_size)
        self.partial, self.index, self.state = (Path(f"{prefix}{s}") for s in (".partial", ".index", ".state.json"))
        self.committed = Committed()
        self._key: dict = {}
        self._handles: tuple = ()

    def open(self, key: dict) -> Committed:
        """Resume from the state file when it was made with ``key``; start empty when there is none."""
        self._key = key
        remove_stale_temps(self.state)  # a killed run's half-written state; only this rank writes it
        if self.state.exists():
            try:
                saved = json.loads(self.state.read_text(encoding="utf-8"))
                committed = Committed(**saved["committed"])
                saved_key = saved["key"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ConfigError(f"{self.state}: unreadable state of an interrupted run; pass --restart to "
                                  "start over") from None
            if saved.get("version") != STATE_VERSION or saved_key != key:
                changed = sorted(k for k in set(key) | set(saved_key) if key.get(k) != saved_key.get(k))
                raise ConfigError(f"{self.final}: an interrupted run was made with different "
                                  f"{', '.join(changed) or 'state version'}; rerun it with the same input, models "
                                  "and options to resume, or pass --restart to start over")
            for path, size in ((self.partial, committed.partial_bytes), (self.index, committed.index_bytes)):
                if not path.exists() or path.stat().st_size < size:
                    raise ConfigError(f"{path}: shorter than its state says ({size} bytes committed); "
                                      "pass --restart to start over")
            self.committed = committed
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            handles = []
            for path, size in ((self.partial, self.committed.partial_bytes), (self.index, self.committed.index_bytes)):
                handle = open(path, "ab")
                handle.truncate(size)  # cut what a killed run wrote after its last commit
                handles.append(handle)
            self._handles = tuple(handles)
        except OSError as err:
            raise OutputError(f"{self.final}: cannot write its part files next to it ({err.strerror}); "
                              "choose a writable --output") from None
        return self.committed

    def commit(self, window_index: int, n_lines: int, data: bytes, digest: LineDigest) -> None:
        """Make one finished window durable; on failure nothing after the previous commit counts."""
        partial, index = self._handles
        record = f"{window_index} {len(data)}\n".encode("ascii")
        done = Committed(self.committed.windows + 1, self.committed.lines + n_lines, digest.lines,
                         digest.hexdigest(), self.committed.partial_bytes + len(data),
                         self.committed.index_bytes + len(record))
        try:
            for handle, payload in ((partial, data), (index, record)):
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            with atomic_file(self.state) as handle:
                json.dump({"version": STATE_VERSION, "key": self._key, "committed": asdict(done)}, handle)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise OutputError(f"{self.partial}: cannot write ({err.strerror}); {self.committed.lines} lines are "
                              "committed: fix it (e.g. free disk space) and rerun the same command to resume"
                              ) from None
        self.committed = done

    def remove(self) -> None:
        self.close()
        for path in (self.partial, self.index, self.state):
            path.unlink(missing_ok=True)
        remove_stale_temps(self.state)
        self.committed = Committed()

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = ()


def assemble(final: str | Path, world_size: int) -> None:
    """Write ``final`` atomically from the ranks' partial files in window order, then delete the parts."""
    final = Path(final)
    parts = [RankParts(final, rank, world_size) for rank in range(world_size)]
    try:
        if world_size == 1:
            os.replace(parts[0].partial, final)
        else:
            with atomic_file(final, mode="wb") as out:
                _copy_round_robin(parts, out)
    except OSError as err:
        raise OutputError(f"{final}: cannot write ({err.strerror}); every window is committed: fix it (e.g. free "
                          "disk space) and rerun the same command to assemble the output") from None
    remove_parts(final, world_size)


def _copy_round_robin(parts: list[RankParts], out) -> None:
    """Window w lives in rank w % N's partial file; copy one window at a time, in 1 MiB pieces."""
    opened = [(open(p.index, "rb"), open(p.partial, "rb")) for p in parts]
    try:
        window = 0
        while True:
            index, partial = opened[window % len(parts)]
            record = index.readline()
            if not record:
                break
            number, size = (int(x) for x in record.split())
            if number != window:
                raise OutputError(f"{parts[window % len(parts)].index}: expected window {window}, found {number}; "
                                 "the part files are inconsistent: pass --restart to start over")
            while size:
                chunk = partial.read(min(size, 1 << 20))
                if not chunk:
                    raise OutputError(f"{parts[window % len(parts)].partial}: shorter than its index; "
                                     "pass --restart to start over")
                out.write(chunk)
                size -= len(chunk)
            window += 1
        leftover = [p.index for p, (index, _) in zip(parts, opened) if index.readline()]
        if leftover:
            raise OutputError(f"{leftover[0]}: holds windows after the end of the input; pass --restart")
    finally:
        for index, partial in opened:
            index.close()
            partial.close()


def check_final_output(final: Path, force: bool) -> None:
    """Fail before any work when ``final`` is a folder, or exists and ``force`` was not given."""
    if final.is_dir():
        raise OutputError(f"{final}: output is a folder; give a file path")
    check_can_write(final, force, "output file")


