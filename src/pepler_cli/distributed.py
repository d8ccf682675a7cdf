"""Running under torchrun: the process group, this process's rank and device, and what the ranks share.

``torchrun --nproc_per_node N -m pepler_cli train …`` starts N processes and tells each its rank through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); :func:`process_group` joins them with
nccl on CUDA and gloo on CPU. Without torchrun (no WORLD_SIZE, or 1) nothing starts: one process, rank 0 of
1, and every collective below returns its input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from pepler_cli.devices import resolve_device
from pepler_cli.errors import PeplerError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one job."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the rank on this node: which GPU it uses

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes runs, checkpoints, logs and progress."""
        return self.rank == 0


SINGLE = World()


def launched_world() -> World:
    """The world torchrun describes in the environment (one process without it)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise PeplerError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (set by torchrun)") from None
    if size < 1 or not 0 <= rank < size:
        raise PeplerError(f"RANK={rank}, WORLD_SIZE={size}: not a valid rank of the job")
    return World(rank, size, local_rank)


def current_world() -> World:
    """The world of the process group already joined (one process when none is)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), launched_world().local_rank)
    return SINGLE


def rank_device(world: World, name: str) -> torch.device:
    """This rank's device: ``cuda:<local rank>`` for a CUDA job of several ranks, else as ``--device`` says."""
    device = resolve_device(name)
    if device.type == "cuda" and world.distributed:
        if world.local_rank >= torch.cuda.device_count():
            raise PeplerError(
                f"LOCAL_RANK={world.local_rank}: this node has {torch.cuda.device_count()} CUDA devices; start "
                "at most that many processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


@contextlib.contextmanager
def process_group(device_name: str, timeout_minutes: int = 30) -> Iterator[World]:
    """Join the job's process group for the block (nccl on CUDA, gloo on CPU); a single process joins none.

    A group already joined by the caller is used and left alone.
    """
    world = launched_world()
    if not world.distributed or dist.is_initialized():
        yield current_world() if world.distributed else SINGLE
        return
    if not dist.is_available():
        raise PeplerError("this torch build has no torch.distributed; run without torchrun")
    device = rank_device(world, device_name)
    backend = "nccl" if device.type == "cuda" else "gloo"
    options: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes), **options)
    try:
        yield world
    finally:
        dist.destroy_process_group()


def shard(rows: Sequence[T], world: World) -> list[T]:
    """This rank's share of ``rows``: every size-th one from its rank on (the shares differ by at most one)."""
    return list(rows[world.rank :: world.size])


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place (itself for one process)."""
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def gather_objects(value: T, world: World) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` for one process)."""
    if not world.distributed:
        return [value]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
