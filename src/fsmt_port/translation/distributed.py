"""Data parallelism under ``torchrun``: rank, world size and device from the environment, and the collectives.

Initialised only when ``WORLD_SIZE`` > 1 in the environment (gloo on CPU, nccl
on CUDA, one GPU per rank from ``LOCAL_RANK``). Corpus translation gives rank r
windows r, r+N, ... (``translation.corpus``); ``run_sharded`` gives contiguous
shards for small lists. A user error on one rank is gathered like a result, so
every rank raises it instead of hanging in a collective that the failing rank
never reaches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from fsmt_port.errors import FSMTPortError

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard_bounds(self, n_items: int) -> tuple[int, int]:
        """[start, end) of this rank's contiguous share; sizes differ by at most one."""
        base, extra = divmod(n_items, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def device(self, requested: str | None) -> str | None:
        """One GPU per rank: ``cuda``/``auto`` become ``cuda:LOCAL_RANK`` under torchrun."""
        if not self.enabled or not torch.cuda.is_available() or requested not in (None, "auto", "cuda"):
            return requested
        return f"cuda:{self.local_rank}"

    def run_sharded(self, items: list, work: Callable[[list, int], list[T]]) -> list[T]:
        """``work(shard, start)`` on this rank's shard; every rank gets all results in input order."""
        start, end = self.shard_bounds(len(items))
        try:
            result, error = work(items[start:end], start), None
        except FSMTPortError as err:
            if not self.enabled:
                raise
            result, error = [], err
        self.raise_any_error(error)
        if not self.enabled:
            return result
        gathered: list = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, result)
        return [item for payload in gathered for item in payload]

    def raise_any_error(self, error: FSMTPortError | None) -> None:
        """Every rank reports how its part went; if any failed, every rank raises the first error."""
        if not self.enabled:
            if error is not None:
                raise error
            return
        gathered: list = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, error)
        for payload in gathered:
            if payload is not None:
                raise payload

    def broadcast(self, obj: T) -> T:
        """Rank 0's value on every rank (e.g. which search combinations are already cached)."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def init_from_env(device: str | None = None) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device in (None, "auto") or str(device).startswith("cuda"))
    if not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown(context: DistContext) -> None:
    if context.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
