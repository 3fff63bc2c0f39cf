"""Out of memory is a batch-size problem: halve the batch, retry it, keep going.

CUDA raises ``torch.cuda.OutOfMemoryError``; the CPU allocator raises a
``RuntimeError`` saying "can't allocate memory". Either way the failed batch is
split and retried, the smaller size sticks for the rest of the run (in every worker
thread, with ``--workers``), and one warning line on stderr names it.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Callable, Sequence

import torch

from fsmt_port.errors import OutOfMemoryError
from fsmt_port.generation import Hypothesis, resolve_generation_config
from fsmt_port.translation.translator import Translator, make_batches
from fsmt_port.translation.workers import map_on_workers

OOM_MESSAGES = ("out of memory", "can't allocate memory")


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in OOM_MESSAGES)


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def generate_with_oom_retry(translator: Translator, id_lists: Sequence[list[int]], batch_size: int | None,
                            max_tokens: int | None, progress=None, on_warning: Callable[[str], None] = warn,
                            prefix_tokens: Sequence[list[int]] | None = None,
                            constraint_ids: Sequence[list[list[int]]] | None = None,
                            **generation_kwargs) -> list[list[Hypothesis]]:
    """``translator.generate_ids`` batch by batch, ``translator.workers_for`` batches at a time; an OOM batch is
    halved (down to one sentence) and the smaller size sticks for the rest of the run, in every worker.
    ``prefix_tokens``/``constraint_ids``: per input, passed along with its batch."""
    results: list[list[Hypothesis] | None] = [None] * len(id_lists)
    lock = threading.Lock()
    fits: int | None = None  # the batch size known to fit, once an OOM happened

    def decode(_, batch: list[int]) -> None:
        nonlocal fits
        pending = [batch]  # a stack: pop() takes the next part in order
        while pending:
            part = pending.pop()
            with lock:
                limit = fits
            if limit is not None and len(part) > limit:
                pending.extend(reversed([part[i:i + limit] for i in range(0, len(part), limit)]))
                continue
            try:
                per_input = {name: [given[i] for i in part] for name, given in
                             (("prefix_tokens", prefix_tokens), ("constraint_ids", constraint_ids)) if given is not None}
                hypos = translator.generate_ids([id_lists[i] for i in part], batch_size=len(part), max_tokens=None,
                                                **per_input, **generation_kwargs)
            except Exception as err:  # noqa: BLE001 - only OOM is handled, everything else re-raised
                if not is_out_of_memory(err):
                    raise
                _release_memory()
                if len(part) == 1:
                    raise OutOfMemoryError(f"out of memory translating a single sentence of {len(id_lists[part[0]])} "
                                           "tokens; use a smaller --dtype (fp16/bf16), another --device, or a lower "
                                           "--max-len-b") from None
                with lock:
                    if fits is None or len(part) // 2 < fits:  # another worker may have lowered it already
                        fits = len(part) // 2
                        on_warning(f"out of memory on a batch of {len(part)} sentences; retrying with batch size "
                                   f"{fits}")
                pending.append(part)
                continue
            for index, sentence_hypos in zip(part, hypos):
                results[index] = sentence_hypos
            if progress is not None:
                with lock:
                    progress.update(len(part))

    # any object with ``generate_ids`` will do; a Translator says how many workers this run takes
    workers = translator.workers_for(resolve_generation_config(translator.generation_config, **generation_kwargs)) \
        if hasattr(translator, "workers_for") else 1
    map_on_workers(make_batches([len(x) for x in id_lists], batch_size, max_tokens), decode, workers)
    return results  # type: ignore[return-value]
