"""What both evaluation commands do before decoding: threads, ranks, data checks, model load."""

from __future__ import annotations

import argparse
import datetime
import time
from dataclasses import dataclass
from pathlib import Path

import sacrebleu
import torch

from fsmt_port import __version__
from fsmt_port.cli import generation_kwargs
from fsmt_port.generation import resolve_generation_config
from fsmt_port.translation.translator import Translator
from fsmt_port.evaluation.data import EvalData, check_output_path, load_eval_data
from fsmt_port.evaluation.distributed import DistContext, init_from_env


@dataclass
class Session:
    args: argparse.Namespace
    context: DistContext
    data: EvalData
    translator: Translator
    load_seconds: float

    def resolved_generation(self, **overrides) -> dict:
        """Every generation argument as it will be used (model defaults + command line + ``overrides``)."""
        kwargs = {**generation_kwargs(self.args), **overrides}
        return resolve_generation_config(self.translator.generation_config, **kwargs).to_dict()

    def metadata(self) -> dict:
        """How the run was made, for the JSON results."""
        args = self.args
        return {
            "model_dirs": [str(Path(d).resolve()) for d in args.model_dirs],
            "input_path": str(Path(args.input).resolve()),
            "reference_path": str(Path(args.reference_path).resolve()),
            "dtype": args.dtype,
            "quantize": args.quantize,
            "device": str(self.translator.models[0].device),
            "world_size": self.context.world_size,
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "max_tokens": args.max_tokens,
            "truncate": args.truncate,
            "load_seconds": round(self.load_seconds, 3),
            "info": args.info,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": {"fsmt_port": __version__, "torch": torch.__version__, "sacrebleu": sacrebleu.__version__},
        }


def start_session(args: argparse.Namespace, outputs: list[str | Path]) -> Session:
    """Cheap checks first (data, output paths), then the process group and the model(s)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_eval_data(args.input, args.reference_path, errors=args.encoding_errors)
    for output in outputs:
        check_output_path(output)
    context = init_from_env(args.device)
    start = time.perf_counter()
    translator = Translator.from_pretrained(args.model_dirs, device=context.device(args.device), dtype=args.dtype,
                                            quantize=args.quantize, trust_checkpoint=args.trust_checkpoint)
    return Session(args, context, data, translator, time.perf_counter() - start)
