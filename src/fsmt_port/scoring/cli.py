"""fsmt-score: score given text, as fairseq does.

* translation model folder(s): ``fairseq-generate --score-reference`` (SequenceScorer) of each
  (source, target) pair; several folders are an ensemble (probabilities averaged);
* a language model folder (converted ``transformer_lm``): fairseq's LM hub ``score()`` of each line.

Output: one JSON object per line: ``{"id", "tokens", "positional_scores", "score"}`` with natural-log
scores; ``score`` is the mean log-prob (``</s>`` included for translations; dropped by LMs).

Example::

    fsmt-score wmt19-en-de --source test.en --input test.de --output scores.jsonl
    fsmt-score wmt19-de-lm --input test.de --output lm_scores.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from fsmt_port.cli import progress_bar, run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.files import ERROR_POLICIES, atomic_file, check_can_write, read_lines
from fsmt_port.modeling.language_model import is_language_model_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-score", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+",
                        help="converted translation model folder(s) (several = ensemble), or language model folder(s)")
    parser.add_argument("--input", "-i", default="-", help="the text to score, one per line (default: stdin)")
    parser.add_argument("--source", "--src", help="translation models: the source of each --input line")
    parser.add_argument("--output", "-o", default="-", help="jsonl output (default: stdout); written atomically")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    parser.add_argument("--batch-size", "--bs", type=int, default=32, help="pairs per forward (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"], help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--encoding-errors", default="strict", choices=ERROR_POLICIES, help="(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def score_lines(model_dirs: list[str], texts: list[str], sources: list[str] | None, batch_size: int,
                device: str, dtype: str, progress=None) -> list:
    """The scores of ``texts`` under the folders' models (an LM when every folder is one)."""
    kinds = {is_language_model_dir(d) for d in model_dirs}
    if len(kinds) > 1:
        raise ConfigError("give either translation model folders or language model folders, not both")
    if kinds == {True}:
        if sources is not None:
            raise ConfigError("--source is for translation models; a language model scores --input alone")
        from fsmt_port.scoring.language_model import load_language_model

        return load_language_model(model_dirs, device=device, dtype=dtype).score(texts, batch_size, progress)
    if sources is None:
        raise ConfigError("translation models score (source, target) pairs: pass --source with one source per "
                          "--input line")
    if len(sources) != len(texts):
        raise ConfigError(f"--source has {len(sources)} lines but --input has {len(texts)}; they must pair up")
    from fsmt_port.translation.translator import Translator

    translator = Translator.from_pretrained(model_dirs, device=device, dtype=dtype)
    return translator.score(sources, texts, batch_size=batch_size, progress=progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        if args.threads:
            torch.set_num_threads(args.threads)
        for d in args.model_dirs:
            if not Path(d).is_dir():
                raise ConfigError(f"{d}: model folder not found; convert the checkpoint first")
        if args.output != "-":
            check_can_write(Path(args.output), args.force, "output file")
        texts = read_lines(args.input, errors=args.encoding_errors)
        sources = read_lines(args.source, errors=args.encoding_errors, what="source") if args.source else None
        with progress_bar(len(texts), args.quiet, "scoring") as bar:
            results = score_lines(args.model_dirs, texts, sources, args.batch_size, args.device, args.dtype, bar)
        lines = (json.dumps({"id": i, **r.to_json()}) + "\n" for i, r in enumerate(results))
        if args.output == "-":
            sys.stdout.writelines(lines)
        else:
            with atomic_file(args.output, force=True) as handle:
                handle.writelines(lines)

    return run_cli(job)


if __name__ == "__main__":
    sys.exit(main())
