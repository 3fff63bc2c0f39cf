"""fsmt-translate: translate lines with one model or an ensemble of several.

Example::

    fsmt-translate wmt19-en-de --input news.en --output news.de --num-beams 5
    cat news.en | fsmt-translate m1 m2 m3 m4 --format jsonl > hyps.jsonl   # 4-model ensemble
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Iterator

import torch

from fsmt_port.cli import add_generation_options, add_runtime_options, generation_kwargs, progress_bar
from fsmt_port.cli import run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.files import atomic_file, check_can_write, sigterm_as_interrupt
from fsmt_port.files import read_lines
from fsmt_port.translation.translator import Translation, Translator


# Sources may hold U+0085/U+2028/U+2029, which json.dumps leaves raw but str.splitlines() (and old
# JavaScript) treat as line breaks: escape them so each jsonl record is one line for every reader.
_LINE_BREAKS_INSIDE_JSON = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def format_lines(results: list[Translation], fmt: str, nbest: int | None) -> Iterator[str]:
    """text: the best hypothesis per line (``nbest`` lines per input when given); jsonl: one object per input.

    Yields one output line at a time (with its newline), so a 10k-line jsonl never exists twice in memory.
    """
    for result in results:
        if fmt == "jsonl":
            yield json.dumps(result.to_json(), ensure_ascii=False).translate(_LINE_BREAKS_INSIDE_JSON) + "\n"
        else:
            for h in result.hypotheses[: nbest or 1]:
                yield h.text + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+", help="converted model folder(s); several = ensemble")
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", "-i", default="-", help="source text, one sentence per line (default: stdin)")
    io.add_argument("--output", "-o", default="-", help="where to write (default: stdout); written atomically")
    io.add_argument("--format", choices=["text", "jsonl"], default="text", help="(default: %(default)s)")
    io.add_argument("--nbest", type=int, default=None,
                    help="hypotheses per input: text prints this many lines per input (default 1); "
                         "jsonl keeps this many (default: all num_beams, as fairseq's hub returns)")
    io.add_argument("--force", action="store_true", help="overwrite an existing --output")
    add_generation_options(parser)
    add_runtime_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        if args.threads:
            torch.set_num_threads(args.threads)
        kwargs = generation_kwargs(args)
        if args.nbest is not None and args.nbest < 1:
            raise ConfigError("--nbest must be >= 1")
        if args.output != "-":  # fail now, not after translating everything
            check_can_write(Path(args.output), args.force, "output file")
        translator = Translator.from_pretrained(args.model_dirs, device=args.device, dtype=args.dtype,
                                                quantize=args.quantize, trust_checkpoint=args.trust_checkpoint)
        lines = read_lines(args.input, errors=args.encoding_errors)
        beams = kwargs.get("num_beams", translator.generation_config.num_beams)
        if args.nbest is not None and args.nbest > beams:
            raise ConfigError(f"--nbest {args.nbest} exceeds --num-beams {beams}")
        with progress_bar(len(lines), args.quiet, "translating") as bar:
            # text prints nbest (default 1) hypotheses per line: hold no more than that in memory
            keep = (args.nbest or 1) if args.format == "text" else args.nbest
            results = translator.translate(lines, batch_size=args.batch_size, max_tokens=args.max_tokens,
                                           truncate=args.truncate, nbest=keep, progress=bar, **kwargs)
        if args.output == "-":
            sys.stdout.writelines(format_lines(results, args.format, args.nbest))
            sys.stdout.flush()
        else:
            with atomic_file(args.output, force=args.force or not _exists(args.output)) as handle:
                for line in format_lines(results, args.format, args.nbest):
                    handle.write(line)

    with sigterm_as_interrupt():  # SIGTERM = Ctrl-C: exit 130, nothing partial left (as while writing)
        return run_cli(job, tune_memory=True)


def _exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).exists()


if __name__ == "__main__":
    sys.exit(main())
