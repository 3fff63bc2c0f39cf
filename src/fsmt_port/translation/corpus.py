"""Translate any amount of text window by window: streamed to stdout, or committed to a file and resumable.

The one code path behind ``fsmt-translate``, ``Translator.translate_file``, run_eval and run_eval_search:

* stdout: each window is written in input order and flushed as soon as it is translated.
* ``--output FILE``: each window is committed to this rank's part files (``translation.resume``); a
  killed run, run again the same way, skips what is committed and translates only the rest. The
  file appears, complete, at the end.
* torchrun: rank r of N translates windows r, r+N, ...; no rank holds more than one window of results;
  rank 0 assembles the file from the parts after every rank is done.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from fsmt_port.cli import Interrupted, progress_bar
from fsmt_port.errors import ConfigError, FSMTPortError
from fsmt_port.files import iter_lines
from fsmt_port.generation import resolve_generation_config
from fsmt_port.translation.distributed import DistContext
from fsmt_port.translation.formatting import FORMATS, format_lines, kept_hypotheses
from fsmt_port.translation.resume import RankParts, assemble, check_final_output, check_world_size
from fsmt_port.translation.resume import model_fingerprint, remove_parts
from fsmt_port.translation.translator import Translation, Translator
from fsmt_port.translation.windows import DEFAULT_BUFFER_SIZE, LineDigest, Window, check_buffer_size, count_lines
from fsmt_port.translation.windows import lines_in_windows, read_windows

#: ``translate_window(window, progress)``: one window's translations in input order.
WindowTranslator = Callable[[Window, object], list[Translation]]


@dataclass
class CorpusOptions:
    buffer_size: int = DEFAULT_BUFFER_SIZE
    batch_size: int | None = None
    max_tokens: int | None = None
    truncate: bool = False
    format: str = "text"
    nbest: int | None = None
    encoding_errors: str = "strict"
    force: bool = False  # overwrite an existing final output
    restart: bool = False  # drop what an interrupted run committed
    restart_if_changed: bool = False  # start over (instead of refusing) when the interrupted run differs
    quiet: bool = True
    desc: str = "translating"
    generation: dict = field(default_factory=dict)  # generation overrides (HF or fairseq names)
    runtime: dict = field(default_factory=dict)  # dtype/quantize/device: part of the resume key


def translate_corpus_file(translator: Translator, input_path: str, output_path: str | None = None,
                          context: DistContext | None = None, translate_window: WindowTranslator | None = None,
                          **options) -> int:
    """Translate ``input_path`` (``-`` = stdin) into ``output_path`` (None = stdout); returns this rank's lines."""
    opts = CorpusOptions(**options)
    source = "<stdin>" if input_path == "-" else str(Path(input_path).resolve())
    lines = iter_lines(input_path, errors=opts.encoding_errors)  # a missing/unreadable input fails here
    return translate_lines(translator, lines, output_path, opts, source=source, total=count_lines(input_path),
                           context=context, translate_window=translate_window)


def translate_lines(translator: Translator, lines: Iterable[str], output_path: str | None, opts: CorpusOptions,
                    source: str, total: int | None = None, context: DistContext | None = None,
                    translate_window: WindowTranslator | None = None) -> int:
    """``translate_corpus_file`` for any iterable of lines (``source`` names it in messages and the resume key)."""
    context = context or DistContext()
    if opts.format not in FORMATS:
        raise ConfigError(f"unknown format {opts.format!r}; expected one of {FORMATS}")
    check_buffer_size(opts.buffer_size)
    resolved = resolve_generation_config(translator.generation_config, **opts.generation)  # bad values fail now
    if opts.nbest is not None and opts.nbest < 1:
        raise ConfigError("--nbest must be >= 1")
    if opts.nbest is not None and opts.nbest > resolved.num_beams:
        raise ConfigError(f"--nbest {opts.nbest} exceeds --num-beams {resolved.num_beams}")
    translate_window = translate_window or _default_window_translator(translator, opts)
    if output_path is None:
        if context.enabled:
            raise ConfigError("under torchrun give --output FILE: every process commits its own windows there")
        return _stream(lines, opts, total, translate_window)
    key = {"input": source, "models": _model_identity(translator), "generation": resolved.to_dict(),
           "output": {"format": opts.format, "nbest": opts.nbest},
           "reading": {"encoding_errors": opts.encoding_errors, "truncate": opts.truncate},
           "runtime": opts.runtime, "buffer_size": opts.buffer_size}
    return _commit_windows(lines, Path(output_path), key, opts, source, total, context, translate_window)


def _default_window_translator(translator: Translator, opts: CorpusOptions) -> WindowTranslator:
    keep = kept_hypotheses(opts.format, opts.nbest)

    def translate(window: Window, progress) -> list[Translation]:
        return translator.translate(window.lines, opts.batch_size, opts.max_tokens, opts.truncate, keep, progress,
                                    first_id=window.first, **opts.generation)
    return translate


def _model_identity(translator: Translator) -> list:
    dirs = getattr(translator, "model_dirs", None)
    if dirs:
        return [model_fingerprint(d) for d in dirs]
    return [{"config": m.config.to_dict(), "parameters": sum(p.numel() for p in m.parameters())}
            for m in translator.models]


def _stream(lines: Iterable[str], opts: CorpusOptions, total: int | None, translate_window: WindowTranslator) -> int:
    done = 0
    try:
        with progress_bar(total, opts.quiet, opts.desc, unit="line") as bar:
            for window in read_windows(lines, opts.buffer_size):
                sys.stdout.writelines(format_lines(translate_window(window, bar), opts.format, opts.nbest))
                sys.stdout.flush()
                done += len(window.lines)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after writing the translations of {done} lines") from None
    return done


def _commit_windows(lines: Iterable[str], final: Path, key: dict, opts: CorpusOptions, source: str,
                    total: int | None, context: DistContext, translate_window: WindowTranslator) -> int:
    rank, world = context.rank, context.world_size
    check_final_output(final, opts.force)
    if opts.restart or opts.restart_if_changed:
        if context.is_main:
            remove_parts(final, keep=None if opts.restart else world)
        context.barrier()
    else:
        check_world_size(final, world)
    parts = RankParts(final, rank, world)
    try:
        committed = parts.open(key)
    except ConfigError:
        if not opts.restart_if_changed:
            raise
        parts.remove()
        committed = parts.open(key)
    mine = None if total is None else lines_in_windows(total, opts.buffer_size, rank, world)
    who = f"rank {rank}: " if context.enabled else ""
    if committed.windows:
        rest = "the rest" if mine is None else f"{mine - committed.lines} more"
        print(f"{who}resumed after {committed.lines} lines; translating {rest}", file=sys.stderr, flush=True)
    digest = LineDigest()
    error: FSMTPortError | None = None
    try:
        with progress_bar(mine, opts.quiet or not context.is_main, opts.desc, unit="line") as bar:
            bar.update(committed.lines)
            for window in read_windows(lines, opts.buffer_size, start=rank + committed.windows * world, stride=world,
                                       digest=digest, check=committed.prefix_check(source)):
                data = "".join(format_lines(translate_window(window, bar), opts.format, opts.nbest))
                parts.commit(window.index, len(window.lines), data.encode("utf-8"), digest)
    except FSMTPortError as err:
        _drop_if_empty(parts)
        if not context.enabled:
            raise
        error = err
    except KeyboardInterrupt:
        if _drop_if_empty(parts):
            raise
        raise Interrupted(f"interrupted; {who}{parts.committed.lines} lines are committed in {parts.partial}: "
                          "run the same command again to resume") from None
    finally:
        parts.close()
    context.raise_any_error(error)
    if context.is_main:
        assemble(final, world)
    context.barrier()
    return parts.committed.lines


def _drop_if_empty(parts: RankParts) -> bool:
    """A run stopped before its first commit leaves nothing behind (there is nothing to resume)."""
    if parts.committed.windows:
        return False
    parts.remove()
    return True
