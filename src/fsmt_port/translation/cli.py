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

from fsmt_port.cli import add_generation_options, add_hub_options, add_runtime_options, generation_kwargs
from fsmt_port.cli import hub_kwargs
from fsmt_port.cli import run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.files import open_input, sigterm_as_interrupt
from fsmt_port.translation.corpus import translate_corpus_file
from fsmt_port.translation.distributed import init_from_env, shutdown
from fsmt_port.translation.formatting import FORMATS
from fsmt_port.translation.resume import check_final_output, check_world_size
from fsmt_port.translation.translator import Translator
from fsmt_port.translation.windows import BATCHES_PER_WINDOW, DEFAULT_BUFFER_SIZE, default_buffer_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+", metavar="MODEL",
                        help="converted model folder(s) or hub repo id(s); several = ensemble")
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
                                                    dtype=args.dtype, quantize=args.quantize, **hub_kwargs(args))
            translate_corpus_file(
                translator, args.input, output, context=context,
                buffer_size=(default_buffer_size(args.input, args.batch_size) if args.buffer_size is None
                             else args.buffer_size),
                batch_size=args.batch_size,
                max_tokens=args.max_tokens, truncate=args.truncate, format=args.format, nbest=args.nbest,
                encoding_errors=args.encoding_errors, force=args.force, restart=args.restart, quiet=args.quiet,
                generation=generation_kwargs(args),
                runtime={"dtype": args.dtype, "quantize": args.quantize,
                         "device": translator.models[0].device.type})
        finally:
            shutdown(context)

    with sigterm_as_interrupt():  # SIGTERM = Ctrl-C: exit 130; committed windows stay resumable
        return run_cli(job, tune_memory=True)


if __name__ == "__main__":
    sys.exit(main())
