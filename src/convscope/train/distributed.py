"""Running the trainer under ``torchrun`` with DistributedDataParallel (gloo on the CPU).

Every rank builds the same model (same seed) and the same shuffled order; each
takes its share of every global batch, and DDP averages the gradients, so the
update is the one a single process would make on the whole batch. Rank 0 alone
evaluates, records and writes the run store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's rank and the number of processes (1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


@contextmanager
def process_group_from_environment() -> Iterator[DistInfo]:
    """Join the process group torchrun describes in the environment, if any, and leave it.

    On a clean exit every rank waits for the others (rank 0 still evaluates and
    writes the store after the last step) and the group is destroyed before the
    interpreter shuts down: a gloo group left to static destructors aborts the
    process ("terminate called without an active exception").
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        yield DistInfo()
        return
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group(backend="gloo")
    info = DistInfo(rank=dist.get_rank(), world=dist.get_world_size())
    try:
        yield info
        dist.barrier()
    finally:
        if owner and dist.is_initialized():
            dist.destroy_process_group()


def sum_across(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over all ranks."""
    if not info.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def decided_by_main(flag: bool, info: DistInfo) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. "stop early")."""
    if not info.active:
        return flag
    tensor = torch.tensor([1 if flag else 0])
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
