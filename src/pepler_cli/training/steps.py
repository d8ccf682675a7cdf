"""One optimizer step's forward and backward, on one process or as one rank of a DistributedDataParallel job.

A step trains on one *global* batch: the ``batch_size`` examples the epoch's seeded order gives it, the same
on every rank. Each rank takes every world-size-th of them and splits its share into ``grad_accum``
micro-batches. Each micro-batch's loss is its token NLL sum divided by the *global* batch's target tokens
(plus λ times its squared rating errors over the global batch's ratings), times the world size because DDP
averages gradients over ranks: the summed gradients are then exactly those of the paper's loss on the whole
batch (eq. 14), whatever the number of ranks and micro-batches. A model's auxiliary loss (PETER's context
words) is the mean over each micro-batch's own targets, weighted by its share of the batch's examples: exact
with one micro-batch on one process (the authors' setting), an approximation otherwise. A rank whose share of a short last batch is
empty runs a zero-weighted micro-batch so that every rank makes the same backward calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pepler_cli.distributed import World, all_reduce_max, all_reduce_sum, shard
from pepler_cli.modeling.base import Losses, at_least_one
from pepler_cli.modeling.batch import Batch
from pepler_cli.plugins import ExplanationModel
from pepler_cli.training.examples import Examples, collate_rows


class LossForward(nn.Module):
    """The model's losses as ``forward``: DistributedDataParallel synchronises gradients through forward."""

    def __init__(self, model: ExplanationModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> Losses:
        return self.model.losses(batch)


def wrap(model: ExplanationModel, world: World, device: torch.device, shard_lm: bool = False) -> nn.Module:
    """The module a step calls: the losses themselves, inside DDP when there are several ranks, or sharded
    with FSDP (``shard_lm``: each transformer block, then the rest) for a backbone too large for one GPU.

    Built per stage, after the stage has chosen its trainable parameters (DDP registers exactly those); DDP
    starts by broadcasting rank 0's weights, so every rank trains the same model. FSDP replaces the model's
    parameters by sharded ones (DTensors) for good: ``pepler train`` copies them whole at the end.
    """
    module = LossForward(model)
    if not world.distributed:
        return module
    if shard_lm:
        from torch.distributed.fsdp import fully_shard

        lm = getattr(model, "lm", model)  # PEPLER's LM; other models are sharded as one block
        block_types = set(getattr(lm, "_no_split_modules", None) or ())
        for block in lm.modules():
            if type(block).__name__ in block_types:
                fully_shard(block)
        fully_shard(module)
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


@dataclass
class StepLosses:
    """This rank's share of one step's loss and of its text and rating parts (summed over ranks: the batch's)."""

    loss: torch.Tensor
    text: torch.Tensor
    rating: torch.Tensor | None


def micro_batches(rows: Sequence[int], world: World, grad_accum: int) -> list[tuple[list[int], float]]:
    """This rank's share of a global batch in ``grad_accum`` parts, each with its weight (0: a stand-in)."""
    mine = shard(rows, world)
    size = -(-len(mine) // grad_accum) if mine else 0
    parts = [mine[k * size : (k + 1) * size] for k in range(grad_accum)] if size else [[]] * grad_accum
    return [(part, 1.0) if part else ([rows[0]], 0.0) for part in parts]


def train_step(
    module: nn.Module,
    train: Examples,
    rows: Sequence[int],
    world: World,
    grad_accum: int,
    rating_weight: float,
    pad_id: int,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> StepLosses:
    """Forward and backward over this rank's micro-batches of the global batch ``rows`` (no optimizer step)."""
    targets = max(sum(len(train.token_ids[row]) - 1 for row in rows), 1)
    parts = micro_batches(rows, world, grad_accum)
    text_sum: torch.Tensor | None = None
    rating_sum: torch.Tensor | None = None
    auxiliary_sum: torch.Tensor | None = None
    for index, (part, weight) in enumerate(parts):
        batch = collate_rows(train, part, pad_id).to(device)
        last = index == len(parts) - 1
        # Gradients are exchanged once per step, at the last micro-batch's backward.
        sync = contextlib.nullcontext() if last or not world.distributed else module.no_sync()  # type: ignore[operator]
        with sync:
            with autocast() if autocast is not None else contextlib.nullcontext():
                losses = module(batch)
            text = _scaled(losses.text_nll_sum / targets, weight)
            rating = None
            if losses.rating_se_sum is not None:
                rating = _scaled(losses.rating_se_sum / len(rows), weight)
            loss = text if rating is None else text + rating_weight * rating
            auxiliary = None
            if losses.auxiliary_sum is not None:
                share = weight * len(part) / len(rows)
                mean = losses.auxiliary_sum / at_least_one(losses.auxiliary_count)
                auxiliary = losses.auxiliary_weight * _scaled(mean, share)
                loss = loss + auxiliary
            # DDP averages over ranks; the batch's loss is the sum of the ranks' shares.
            (loss * world.size if world.distributed else loss).backward()
        text_sum = text.detach() if text_sum is None else text_sum + text.detach()
        if rating is not None:
            rating_sum = rating.detach() if rating_sum is None else rating_sum + rating.detach()
        if auxiliary is not None:
            auxiliary_sum = (
                auxiliary.detach() if auxiliary_sum is None else auxiliary_sum + auxiliary.detach()
            )
    assert text_sum is not None  # grad_accum >= 1
    total = text_sum if rating_sum is None else text_sum + rating_weight * rating_sum
    if auxiliary_sum is not None:
        total = total + auxiliary_sum
    return StepLosses(total, text_sum, rating_sum)


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def shaped_like(parameter: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A whole tensor saved from a checkpoint, sharded as ``parameter`` is (itself for a plain parameter or a
    scalar such as AdamW's step)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(parameter, DTensor) or isinstance(value, DTensor) or value.shape != parameter.shape:
        return value
    return distribute_tensor(value.to(parameter.device), parameter.device_mesh, parameter.placements)


def whole(value: torch.Tensor) -> torch.Tensor:
    """A sharded tensor gathered whole (a collective: every rank calls it), any other as it is."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def _scaled(value: torch.Tensor, weight: float) -> torch.Tensor:
    return value if weight == 1.0 else value * weight


def sum_over_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """A copy of ``value`` summed over the ranks."""
    return all_reduce_sum(value.detach().clone(), world)


def fold_to_main(value: torch.Tensor, world: World) -> None:
    """Sum ``value`` over the ranks into rank 0's copy and zero the others' (the sum over ranks is kept)."""
    if world.distributed:
        all_reduce_sum(value, world)
        if not world.is_main:
            value.zero_()


def agreed_stop(reason: str | None, world: World, device: torch.device) -> str | None:
    """The stop reason all ranks act on: a signal any rank received (by number, the highest wins)."""
    if not world.distributed:
        return reason
    import signal

    number = torch.tensor(signal.Signals[reason].value if reason else 0, device=device)
    agreed = int(all_reduce_max(number, world))
    return signal.Signals(agreed).name if agreed else None
