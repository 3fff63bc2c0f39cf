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
from fsmt_port.cli import generation_kwargs, hub_kwargs
from fsmt_port.evaluation.options import check_eval_arguments
from fsmt_port.hub import resolve_model_dir
from fsmt_port.generation import resolve_generation_config
from fsmt_port.translation.translator import Translator
from fsmt_port.evaluation.data import EvalData, check_output_path, load_eval_data
from fsmt_port.translation.distributed import DistContext, init_from_env


@dataclass
class Session:
    args: argparse.Namespace
    context: DistContext
    data: EvalData
    translator: Translator
    load_seconds: float
    model_dirs: list[Path]  # local folders: as given, or the hub cache snapshot of a repo id

    def resolved_generation(self, **overrides) -> dict:
        """Every generation argument as it will be used (model defaults + command line + ``overrides``)."""
        kwargs = {**generation_kwargs(self.args), **overrides}
        return resolve_generation_config(self.translator.generation_config, **kwargs).to_dict()

    def corpus_options(self) -> dict:
        """What ``translate_corpus`` needs besides the generation arguments: batching, reading, identity."""
        args = self.args
        return {"source": str(Path(args.input).resolve()), "batch_size": args.batch_size,
                "max_tokens": args.max_tokens, "truncate": args.truncate, "quiet": args.quiet,
                "runtime": {"dtype": args.dtype, "quantize": args.quantize, "encoding_errors": args.encoding_errors,
                            "device": self.translator.models[0].device.type}}

    def metadata(self) -> dict:
        """How the run was made, for the JSON results."""
        args = self.args
        return {
            "model_dirs": [str(d.resolve()) for d in self.model_dirs],
            "models": list(args.model_dirs),  # as given: folders or hub repo ids
            "revision": args.revision,
            "input_path": str(Path(args.input).resolve()),
            "reference_path": str(Path(args.reference_path).resolve()),
            "dtype": args.dtype,
            "quantize": args.quantize,
            "device": str(self.translator.models[0].device),
            "world_size": self.context.world_size,
            "threads": torch.get_num_threads(),
            "workers": self.translator.workers_for(
                resolve_generation_config(self.translator.generation_config, **generation_kwargs(args))),
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
    check_eval_arguments(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_eval_data(args.input, args.reference_path, errors=args.encoding_errors, n_obs=args.n_obs)
    for output in outputs:
        check_output_path(output)
    context = init_from_env(args.device)
    start = time.perf_counter()
    model_dirs = [resolve_model_dir(d, **hub_kwargs(args)) for d in args.model_dirs]
    translator = Translator.from_pretrained(model_dirs, device=context.device(args.device), dtype=args.dtype,
                                            quantize=args.quantize, trust_checkpoint=args.trust_checkpoint,
                                            workers=args.workers)
    return Session(args, context, data, translator, time.perf_counter() - start, model_dirs)
