"""The translation systems under test, behind one interface so the timed loop treats them alike.

Each system reads the workload's converted folder (CTranslate2: its export of that folder) and gets
the same source ids and batches; only its own input and output conversion differ, and that is untimed.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import torch

from .workloads import RunConfig, Workload

SYSTEMS = ("fsmt_port", "fsmt_port-bf16", "fsmt_port-int8", "transformers", "ct2", "ct2-int8",
           "fsmt_port-workers", "fsmt_port-int8-workers", "ct2-workers", "ct2-int8-workers")
#: ``-workers``: one batch per thread, each on one intra-op thread (ours: ``translation.workers``;
#: CTranslate2: ``inter_threads`` = threads, ``intra_threads`` = 1, every batch submitted at once)
WORKERS = "-workers"
BASELINE = "fsmt_port"  # the `fsmt_port x` column and the top-1 agreement are relative to it
CT2 = "ct2"  # the `x ct2` column is relative to it


class System:
    """Load once per workload; ``prepare`` turns ids + batches into its own inputs (untimed);
    ``run`` translates them (timed) and returns raw outputs; ``tokens`` extracts top-1 ids."""

    name = ""

    def prepare(self, ids: list[list[int]], batches: list[list[int]], config: RunConfig):
        raise NotImplementedError

    def run(self, prepared):
        raise NotImplementedError

    def open(self, threads: int) -> None:
        """Untimed, before each run: re-assert the thread count, since the previous run may have used
        another and CTranslate2 resets the OpenMP thread count of the calling thread when it loads."""
        torch.set_num_threads(threads)

    def close(self) -> None:
        """Untimed, after each run."""

    def tokens(self, raw) -> list[list[int]]:
        """Top-1 target ids per sentence in batch order, ending with </s> when one was produced."""
        raise NotImplementedError


def _pad_left(rows: list[list[int]]) -> torch.Tensor:
    from fsmt_port.translation.translator import pad_left

    return pad_left(rows)


class FsmtPort(System):
    def __init__(self, name: str, model_dir: Path) -> None:
        from fsmt_port import FSMTForConditionalGeneration
        from fsmt_port.modeling.quantization import quantize_int8

        self.name = name
        dtype = "bf16" if "-bf16" in name else "fp32"
        self.model = FSMTForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, device="cpu")
        if "-int8" in name:
            self.model = quantize_int8(self.model)
        self.workers = 1  # set per run by ``open`` for the -workers systems

    def prepare(self, ids, batches, config):
        kwargs = {"num_beams": config.beam, "length_penalty": 1.0, "max_len_a": 0, "max_len_b": config.max_len_b,
                  "min_len": 1}
        if config.fixed_length:
            kwargs.update(min_len=config.fixed_length, max_len_b=config.fixed_length)
        return [(_pad_left([ids[i] for i in batch]), kwargs) for batch in batches]

    def open(self, threads: int) -> None:
        super().open(threads)
        self.workers = threads if self.name.endswith(WORKERS) else 1

    def run(self, prepared):
        from fsmt_port.translation.workers import map_on_workers

        return map_on_workers(prepared, lambda _, batch: self.model.generate(
            batch[0], return_dict_in_generate=True, **batch[1]).hypotheses, self.workers)

    def tokens(self, raw):
        return [hypos[0].tokens.tolist() for batch in raw for hypos in batch]


class Transformers(System):
    name = "transformers"

    def __init__(self, model_dir: Path) -> None:
        import transformers

        transformers.logging.set_verbosity_error()
        self.model = transformers.FSMTForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
        self.model.eval()

    def prepare(self, ids, batches, config):
        kwargs = {"num_beams": config.beam, "max_length": config.max_len_b, "early_stopping": True}
        if config.beam > 1:
            kwargs["length_penalty"] = 1.0
        if config.fixed_length:  # HF lengths count the decoder start token
            kwargs.update(min_length=config.fixed_length + 1, max_length=config.fixed_length + 2)
        out = []
        for batch in batches:
            src = _pad_left([ids[i] for i in batch])
            out.append((src, src.ne(1).long(), kwargs))
        return out

    def run(self, prepared):
        with torch.inference_mode():
            return [self.model.generate(src, attention_mask=mask, **kwargs) for src, mask, kwargs in prepared]

    def tokens(self, raw):
        rows = []
        for sequences in raw:
            for row in sequences.tolist():
                row = row[1:]  # decoder start </s>
                rows.append(row[: row.index(2) + 1] if 2 in row else [t for t in row if t != 1])
        return rows


class CTranslate2(System):
    def __init__(self, name: str, ct2_dir: Path, model_dir: Path) -> None:
        import ctranslate2  # noqa: F401  (missing: fail here, before anything is measured)

        from fsmt_port.export.ct2 import vocabulary
        from fsmt_port.tokenization.tokenizer import FSMTTokenizer

        self.name = name
        self.ct2_dir = str(ct2_dir)
        self.compute_type = "int8" if "-int8" in name else "float32"
        self.inter = name.endswith(WORKERS)
        self.translator = None
        tokenizer = FSMTTokenizer.from_pretrained(model_dir)
        self.src_tokens = vocabulary(tokenizer.src_dict.symbols)
        self.tgt_index = {t: i for i, t in enumerate(vocabulary(tokenizer.tgt_dict.symbols))}

    def prepare(self, ids, batches, config):
        kwargs = {"beam_size": config.beam, "length_penalty": 1.0, "max_decoding_length": config.max_len_b,
                  "return_end_token": True, "max_batch_size": 0}
        if config.fixed_length:  # CTranslate2 counts </s> as a decoding step
            kwargs.update(min_decoding_length=config.fixed_length, max_decoding_length=config.fixed_length + 1)
        return [([[self.src_tokens[t] for t in ids[i]] for i in batch], kwargs) for batch in batches]

    def open(self, threads: int) -> None:
        """Load only for the run, with ``threads`` intra-op threads: a live Translator keeps an OpenMP
        team in the libgomp that torch shares, and with more OpenMP threads than cores libgomp stops
        spin-waiting, which slows every torch system measured meanwhile by 10-30% (measured here)."""
        import ctranslate2

        inter, intra = (threads, 1) if self.inter else (1, threads)
        self.translator = ctranslate2.Translator(self.ct2_dir, device="cpu", compute_type=self.compute_type,
                                                 inter_threads=inter, intra_threads=intra)

    def close(self) -> None:
        self.translator = None
        gc.collect()

    def run(self, prepared):
        if not self.inter:
            return [self.translator.translate_batch(tokens, **kwargs) for tokens, kwargs in prepared]
        pending = [self.translator.translate_batch(tokens, asynchronous=True, **kwargs) for tokens, kwargs in prepared]
        return [[result.result() for result in batch] for batch in pending]

    def tokens(self, raw):
        return [[self.tgt_index[t] for t in result.hypotheses[0]] for batch in raw for result in batch]


def load_system(name: str, workload: Workload) -> System:
    if name.startswith("fsmt_port"):
        return FsmtPort(name, workload.model_dir)
    if name == "transformers":
        return Transformers(workload.model_dir)
    if name.startswith("ct2"):
        return CTranslate2(name, workload.ct2_dir, workload.model_dir)
    raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEMS)}")


def transformers_can_run(model_dir: Path) -> bool:
    """transformers' FSMT reads only folders of the ``fsmt`` model type."""
    return json.loads((model_dir / "config.json").read_text()).get("model_type") == "fsmt"
