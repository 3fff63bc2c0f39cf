"""fsmt-translate: translate lines with one model or an ensemble of several, window by window.

Input is read and translated in windows of --buffer-size lines (sorted by length and batched within a
window); each window is written in input order as soon as it is done. From a terminal each line is
answered as it is typed. With --output FILE each window is committed, so a killed run, started again
the same way, translates only what is missing; the file appears, complete, at the end. Under torchrun
every process takes its share of the windows.

Example::

    fsmt-translate wmt19-en-de --input news.en --output news.de --num-beams 5
    cat news.en | fsmt-translate m1 m2 m3 m4 --format jsonl > hyps.jsonl   # 4-model ensemble
    torchrun --nproc_per_node 4 -m fsmt_port.translate wmt19-en-de -i corpus.en -o corpus.de
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fsmt_port.cli import add_generation_options, add_hub_options, add_model_arguments, add_runtime_options
from fsmt_port.cli import generation_kwargs, hub_kwargs
from fsmt_port.cli import run_cli
from fsmt_port.errors import ConfigError, InputError
from fsmt_port.files import iter_lines, open_input, sigterm_as_interrupt
from fsmt_port.translation.corpus import WindowTranslator, translate_corpus_file
from fsmt_port.translation.distributed import init_from_env, shutdown
from fsmt_port.translation.formatting import FORMATS, kept_hypotheses
from fsmt_port.translation.resume import check_final_output, check_world_size
from fsmt_port.translation.translator import Translation, Translator, split_constraint_lines
from fsmt_port.translation.windows import BATCHES_PER_WINDOW, DEFAULT_BUFFER_SIZE, Window, default_buffer_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", "-i", default="-", help="source text, one sentence per line (default: stdin)")
    io.add_argument("--output", "-o", default="-",
                    help="where to write (default: stdout, streamed); a file is committed window by window "
                         "and appears complete at the end")
    io.add_argument("--format", choices=FORMATS, default="text", help="(default: %(default)s)")
    io.add_argument("--nbest", type=int, default=None,
                    help="hypotheses per input: text prints this many lines per input (default 1); "
                         "jsonl keeps this many (default: all num_beams, as fairseq's hub returns)")
    io.add_argument("--buffer-size", type=int, default=None,
                    help=f"lines read, sorted and translated together before they are written (default: 1 when "
                         f"stdin is a terminal, else {DEFAULT_BUFFER_SIZE} or {BATCHES_PER_WINDOW} batches, "
                         "whichever is more)")
    io.add_argument("--prefix-file", default=None,
                    help="target-side text per input line that every hypothesis starts with "
                         "(all of it, or its first --prefix-size tokens)")
    io.add_argument("--force", action="store_true", help="overwrite an existing --output")
    io.add_argument("--restart", action="store_true",
                    help="drop what an interrupted run with this --output committed and start over")
    add_generation_options(parser)
    add_runtime_options(parser)
    add_hub_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        if args.threads:
            torch.set_num_threads(args.threads)
        output = None if args.output == "-" else args.output
        if args.input != "-":
            open_input(args.input).close()  # fail now, not after loading the models
        if args.prefix_file is not None:
            open_input(args.prefix_file).close()
        elif args.prefix_size is not None:
            raise ConfigError("--prefix-size needs --prefix-file (the text the prefixes are cut from)")
        if output is not None:
            check_final_output(Path(output), args.force)
        context = init_from_env(args.device)
        try:
            if context.enabled and (output is None or args.input == "-"):
                raise ConfigError("under torchrun give --input FILE and --output FILE: every process reads the "
                                  "input and commits its own windows next to the output")
            if output is not None and not args.restart:
                check_world_size(Path(output), context.world_size)  # before loading the models
            translator = Translator.from_pretrained(args.model_dirs, device=context.device(args.device),
                                                    dtype=args.dtype, quantize=args.quantize,
                                                    trust_checkpoint=args.trust_checkpoint, workers=args.workers,
                                                    **hub_kwargs(args))
            options = {"format": args.format, "nbest": args.nbest, "batch_size": args.batch_size,
                       "max_tokens": args.max_tokens, "truncate": args.truncate}
            translate_corpus_file(
                translator, args.input, output, context=context,
                translate_window=mode_window_translator(args, translator, options),
                buffer_size=(default_buffer_size(args.input, args.batch_size) if args.buffer_size is None
                             else args.buffer_size),
                batch_size=args.batch_size,
                max_tokens=args.max_tokens, truncate=args.truncate, format=args.format, nbest=args.nbest,
                encoding_errors=args.encoding_errors, force=args.force, restart=args.restart, quiet=args.quiet,
                generation=generation_kwargs(args),
                runtime={"dtype": args.dtype, "quantize": args.quantize,
                         "device": translator.models[0].device.type, "prefix_file": _identity(args.prefix_file),
                         "prefix_size": args.prefix_size})
        finally:
            shutdown(context)

    with sigterm_as_interrupt():  # SIGTERM = Ctrl-C: exit 130; committed windows stay resumable
        return run_cli(job, tune_memory=True)


def mode_window_translator(args: argparse.Namespace, translator: Translator, options: dict
                           ) -> WindowTranslator | None:
    """Per-line inputs of the decoding modes, window by window: constraints after TABs
    (fairseq-interactive), prefixes from --prefix-file (read forward in step with the input)."""
    if not args.constraints and args.prefix_file is None:
        return None  # the plain window translator
    prefixes = None if args.prefix_file is None else _LineCursor(args.prefix_file, args.encoding_errors)
    keep = kept_hypotheses(options["format"], options["nbest"])
    generation = generation_kwargs(args)

    def translate(window: Window, progress) -> list[Translation]:
        lines, per_line = window.lines, {}
        if args.constraints:
            lines, per_line["constraint_texts"] = split_constraint_lines(lines)
            per_line["constraints"] = args.constraints  # the mode; the lists go in constraint_texts
        if prefixes is not None:
            per_line["prefixes"] = prefixes.take(window.first, len(lines))
            per_line["prefix_size"] = args.prefix_size
        extra = {k: v for k, v in generation.items() if k != "constraints"}
        return translator.translate(lines, options["batch_size"], options["max_tokens"], options["truncate"], keep,
                                    progress, first_id=window.first, **per_line, **extra)
    return translate


class _LineCursor:
    """Lines ``first .. first+count`` of a file read forward only (windows arrive in increasing order)."""

    def __init__(self, path: str, errors: str) -> None:
        self.path, self._lines, self._next = path, iter_lines(path, errors=errors), 0

    def take(self, first: int, count: int) -> list[str]:
        for _ in range(first - self._next):
            next(self._lines, None)
        taken = [line for _, line in zip(range(count), self._lines)]  # range first: no line lost
        self._next = first + len(taken)
        if len(taken) != count:
            raise InputError(f"{self.path}: ends before input line {first + len(taken) + 1}; "
                             "give one prefix per input line")
        return taken


def _identity(path: str | None) -> dict | None:
    """A prefix file's identity for the resume key."""
    if path is None:
        return None
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


if __name__ == "__main__":
    sys.exit(main())
