"""The training loop: AdamW, per-stage early stopping on validation loss, best weights restored.

Between optimizer steps the loop may save a checkpoint (every N steps, or when a signal asks training to
stop) and it watches for a non-finite loss; both only at step boundaries, so a checkpoint always holds the
state after a whole step and a resumed epoch continues with the very next batch.

Under torchrun every rank runs this loop on its share of each batch (``steps.py``); the ranks agree, through
collectives at the same points, on the losses they report, the validation loss that decides early stopping
and stage switches, a stop request and a non-finite loss, so every rank takes the same decisions.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from pepler_cli.distributed import SINGLE, World, all_reduce_max, all_reduce_sum, shard
from pepler_cli.modeling.base import Losses, at_least_one
from pepler_cli.plugins import ExplanationModel
from pepler_cli.strategies import PEPLER_OPTIMIZATION, Optimization, Stage
from pepler_cli.training.examples import Examples, batch_rows, collate_rows
from pepler_cli.training.steps import (
    agreed_stop,
    fold_to_main,
    is_sharded,
    shaped_like,
    sum_over_ranks,
    train_step,
    wrap,
)

# Progress-bar numbers need a device-to-host copy; refreshing every few steps keeps the GPU busy.
REPORT_EVERY_STEPS = 10


@dataclass(frozen=True)
class LoopOptions:
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    rating_weight: float
    seed: int
    device: torch.device
    bf16: bool
    pad_id: int
    bucket_by_length: bool = False
    grad_accum: int = 1  # micro-batches per optimizer step on each rank
    world: World = SINGLE
    fsdp: bool = False  # shard the LM over the ranks in stages that tune it


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_text_loss: float
    valid_perplexity: float
    valid_rating_mse: float | None
    seconds: float
    tokens_per_second: float
    improved: bool


@dataclass
class StageRecord:
    name: str
    trains: list[str]
    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_loss: float = math.inf
    stopped: str = ""  # "early stop" or "epoch cap"


class Reporter(Protocol):
    def stage_started(self, stage: Stage, trainable_parameters: int) -> None: ...
    def epoch_started(self, stage: Stage, epoch: int, batches: int) -> None: ...
    def step(self, batches_done: int, loss: float, tokens: int) -> None: ...
    def epoch_finished(self, stage: Stage, record: EpochRecord) -> None: ...


class SilentReporter:
    def stage_started(self, stage: Stage, trainable_parameters: int) -> None: ...
    def epoch_started(self, stage: Stage, epoch: int, batches: int) -> None: ...
    def step(self, batches_done: int, loss: float, tokens: int) -> None: ...
    def epoch_finished(self, stage: Stage, record: EpochRecord) -> None: ...


def set_trainable(model: ExplanationModel, stage: Stage) -> list[torch.nn.Parameter]:
    trainable: list[torch.nn.Parameter] = []
    for group, parameters in model.parameter_groups().items():
        for parameter in parameters:
            parameter.requires_grad_(group in stage.trains)
            if group in stage.trains:
                trainable.append(parameter)
    return trainable


def make_optimizer(
    parameters: list[torch.nn.Parameter],
    learning_rate: float,
    optimization: Optimization = PEPLER_OPTIMIZATION,
) -> torch.optim.Optimizer:
    """The stage's optimizer: AdamW (the paper's), Adam or plain SGD (the baselines' authors'), in the fused form
    where torch has one: one kernel over all parameters instead of a Python loop of small ones. Measured on 2 CPU
    cores with gpt2-tiny's 7M parameters: 0.09 s a step instead of 0.7 s, a quarter of a whole training step.
    The update rule is the same."""
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    kind = kinds[optimization.optimizer]
    try:
        return kind(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return kind(parameters, lr=learning_rate)


def stage_learning_rate(base: float, optimization: Optimization, record: StageRecord) -> float:
    """The learning rate of the stage's next epoch: ``base``, cut by ``decay_on_plateau`` once per epoch so far
    that did not improve (PETER's authors' rule). Derived from the stage's record, so a resumed stage continues
    with the rate it had."""
    if optimization.decay_on_plateau is None:
        return base
    misses = sum(1 for epoch in record.epochs if not epoch.improved)
    return base * optimization.decay_on_plateau**misses


def autocast(options: LoopOptions) -> contextlib.AbstractContextManager:
    if options.bf16:
        return torch.autocast(options.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def objective(losses: Losses, rating_weight: float) -> torch.Tensor:
    """Mean token NLL plus λ times the mean squared rating error (paper eq. 14), plus a model's weighted
    auxiliary loss (PETER's)."""
    text, rating = objective_parts(losses)
    total = text if rating is None else text + rating_weight * rating
    if losses.auxiliary_sum is not None:
        total = total + losses.auxiliary_weight * losses.auxiliary_sum / at_least_one(losses.auxiliary_count)
    return total


def objective_parts(losses: Losses) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean token NLL and the mean squared rating error (None without a rating head)."""
    text = losses.text_nll_sum / at_least_one(losses.text_tokens)
    if losses.rating_se_sum is None:
        return text, None
    return text, losses.rating_se_sum / max(losses.ratings, 1)


@dataclass
class EpochPosition:
    """Where an unfinished epoch stands: the batches done (in the epoch's seeded order) and their loss sum."""

    epoch: int
    batches_done: int
    loss_sum: torch.Tensor  # a scalar on the training device: summing never waits for the device
    seconds: float  # spent in this epoch before the last checkpoint


@dataclass
class StageProgress:
    """Where a stage stands: what a checkpoint saves and a resume continues from."""

    record: StageRecord
    epochs_without_improvement: int
    # The trainable parameters at the best epoch so far; None: the current ones.
    best_state: list[torch.Tensor] | None
    position: EpochPosition | None = None  # set inside an epoch, None between epochs


# Saves a checkpoint of the stage's progress and optimizer (``pepler train`` writes <out>.checkpoint).
SaveHook = Callable[[StageProgress, torch.optim.Optimizer], None]


@dataclass(frozen=True)
class Checkpointing:
    """When the loop saves: after every epoch, every ``every_steps`` optimizer steps inside one (0: never),
    and at the next step boundary once ``stop_requested`` names a reason (a signal) — then it raises
    :class:`StopRequested`."""

    save: SaveHook | None = None
    every_steps: int = 0
    stop_requested: Callable[[], str | None] = lambda: None


class StopRequested(Exception):
    """Training stopped at a step boundary because a signal asked it to; the checkpoint is saved."""

    def __init__(self, reason: str, stage: str, epoch: int, step: int) -> None:
        super().__init__(f"{reason} in stage {stage}, epoch {epoch}, after step {step}")
        self.reason, self.stage, self.epoch, self.step = reason, stage, epoch, step


class NonFiniteLoss(Exception):
    """A loss became NaN or infinite; nothing after the last good checkpoint is kept."""

    def __init__(self, which: str, stage: str, epoch: int, step: int | None) -> None:
        where = f"stage {stage}, epoch {epoch}" + (f", step {step}" if step is not None else "")
        super().__init__(f"the {which} is not finite at {where}")
        self.which, self.stage, self.epoch, self.step = which, stage, epoch, step


class _FiniteWatch:
    """Remembers, on the device, the first step whose text or rating loss was not finite.

    A few scalar operations per step and no host synchronisation; ``check`` reads the result (one small copy)
    and is only called where the loop synchronises anyway (progress reports, checkpoints, the epoch's end).
    """

    def __init__(self, device: torch.device) -> None:
        self.first = torch.full((), -1, dtype=torch.long, device=device)
        self.flags = torch.zeros(2, dtype=torch.bool, device=device)

    def add(self, step: int, text: torch.Tensor, rating: torch.Tensor | None) -> None:
        bad_rating = (
            ~torch.isfinite(rating.detach()) if rating is not None else torch.zeros_like(self.flags[0])
        )
        flags = torch.stack((~torch.isfinite(text.detach()), bad_rating))
        newly = (self.first < 0) & flags.any()
        self.first = torch.where(newly, torch.full_like(self.first, step), self.first)
        self.flags = torch.where(newly, flags, self.flags)

    def check(self, stage: str, epoch: int, world: World = SINGLE) -> None:
        if world.distributed:  # the first bad step of any rank, and which losses it had
            never = torch.iinfo(torch.long).max
            first_everywhere = torch.where(self.first < 0, torch.full_like(self.first, never), self.first)
            self.first = -all_reduce_max(-first_everywhere, world)
            self.flags = all_reduce_max(self.flags.to(torch.uint8), world).bool()
            self.first = torch.where(self.first == never, torch.full_like(self.first, -1), self.first)
        first = int(self.first)
        if first >= 0:
            text_bad, rating_bad = self.flags.tolist()
            which = "training text loss" if text_bad and not rating_bad else "training rating loss"
            if text_bad and rating_bad:
                which = "training text and rating losses"
            raise NonFiniteLoss(which, stage, epoch, first)


def train_stage(
    model: ExplanationModel,
    stage: Stage,
    train: Examples,
    valid: Examples,
    options: LoopOptions,
    reporter: Reporter,
    resume: StageProgress | None = None,
    optimizer_moments: dict[int, dict[str, torch.Tensor]] | None = None,
    checkpointing: Checkpointing | None = None,
) -> StageRecord:
    """Train one stage until early stopping or the epoch cap, then restore its best weights.

    ``resume`` and ``optimizer_moments`` (AdamW's per-parameter state) continue a stage from a checkpoint
    (the model already holds the checkpoint's weights), possibly in the middle of an epoch; the epochs then
    run exactly as they would have run without the interruption. ``checkpointing`` says when to save.
    """
    checkpointing = checkpointing if checkpointing is not None else Checkpointing()
    set_trainable(model, stage)
    # Per stage: DDP registers this stage's trainable parameters; FSDP shards the LM when the stage tunes it
    # (and replaces the parameters by sharded ones, hence the trainable list is taken afterwards).
    shard_lm = options.fsdp and "lm" in stage.trains
    module = wrap(model, options.world, options.device, shard_lm)
    trainable = set_trainable(model, stage)
    optimizer = make_optimizer(trainable, options.learning_rate, stage.optimization)
    # Name only the groups this model has: a run without a rating head trains no "rating_head".
    groups = [g for g, params in model.parameter_groups().items() if g in stage.trains and params]
    stage = Stage(stage.name, tuple(groups), stage.optimization)
    reporter.stage_started(stage, sum(p.numel() for p in trainable))
    if resume is None:
        progress = StageProgress(StageRecord(stage.name, groups), 0, snapshot(trainable))
    else:
        progress = resume
        if progress.best_state is None:
            progress.best_state = snapshot(trainable)
        progress.best_state = [shaped_like(p, saved) for p, saved in zip(trainable, progress.best_state)]
        if optimizer_moments is not None:
            moments = {
                index: {key: shaped_like(trainable[index], value) for key, value in state.items()}
                for index, state in optimizer_moments.items()
            }
            groups_now = optimizer.state_dict()["param_groups"]
            optimizer.load_state_dict({"state": moments, "param_groups": groups_now})
    while not progress.record.stopped:
        run_epoch(
            model,
            module,
            stage,
            train,
            valid,
            optimizer,
            options,
            reporter,
            progress,
            trainable,
            checkpointing,
        )
        if checkpointing.save is not None:
            checkpointing.save(progress, optimizer)
        reason = agreed_stop(checkpointing.stop_requested(), options.world, options.device)
        if reason is not None:
            raise StopRequested(reason, stage.name, len(progress.record.epochs), 0)
    restore(trainable, progress.best_state or [])
    return progress.record


def run_epoch(
    model: ExplanationModel,
    module: torch.nn.Module,
    stage: Stage,
    train: Examples,
    valid: Examples,
    optimizer: torch.optim.Optimizer,
    options: LoopOptions,
    reporter: Reporter,
    progress: StageProgress,
    trainable: list[torch.nn.Parameter],
    checkpointing: Checkpointing,
) -> None:
    """One epoch (or the rest of one) and validation; updates ``progress`` (best weights, patience, whether
    the stage ends)."""
    record = progress.record
    epoch = len(record.epochs) + 1
    if progress.position is None or progress.position.epoch != epoch:
        progress.position = EpochPosition(epoch, 0, torch.zeros((), device=options.device), 0.0)
    started = time.perf_counter() - progress.position.seconds
    for group in optimizer.param_groups:
        group["lr"] = stage_learning_rate(options.learning_rate, stage.optimization, record)
    train_loss = train_epoch(
        model, module, stage, train, optimizer, options, reporter, progress, checkpointing
    )
    valid_scores = evaluate(model, valid, options, module, stage.optimization.selection_rating_weight)
    if not math.isfinite(valid_scores["loss"]):
        raise NonFiniteLoss("validation loss", stage.name, epoch, None)
    progress.position = None
    seconds = time.perf_counter() - started
    improved = valid_scores["loss"] < record.best_valid_loss
    epoch_record = EpochRecord(
        epoch=epoch,
        train_loss=train_loss,
        valid_loss=valid_scores["loss"],
        valid_text_loss=valid_scores["text_loss"],
        valid_perplexity=math.exp(min(valid_scores["text_loss"], 700.0)),
        valid_rating_mse=valid_scores.get("rating_mse"),
        seconds=seconds,
        tokens_per_second=train.target_tokens / max(seconds, 1e-9),
        improved=improved,
    )
    record.epochs.append(epoch_record)
    reporter.epoch_finished(stage, epoch_record)
    if improved:
        record.best_epoch, record.best_valid_loss = epoch, valid_scores["loss"]
        progress.best_state = snapshot(trainable)
        if stage.optimization.patience_counts == "consecutive":
            progress.epochs_without_improvement = 0
    else:
        progress.epochs_without_improvement += 1
    if progress.epochs_without_improvement >= options.patience:
        record.stopped = "early stop"
    elif epoch >= options.max_epochs:
        record.stopped = "epoch cap"


def train_epoch(
    model: ExplanationModel,
    module: torch.nn.Module,
    stage: Stage,
    train: Examples,
    optimizer: torch.optim.Optimizer,
    options: LoopOptions,
    reporter: Reporter,
    progress: StageProgress,
    checkpointing: Checkpointing,
) -> float:
    """The epoch ``progress.position`` stands in, from its next batch on; returns the mean training loss.

    ``position.loss_sum`` holds this rank's share of the epoch's summed batch losses: the sum over the ranks
    is the epoch's (rank 0 holds all of it right after a checkpoint, see ``fold_to_main``).
    """
    position = progress.position
    assert position is not None  # set by run_epoch
    world = options.world
    model.train()
    generator = torch.Generator().manual_seed(options.seed * 1000 + position.epoch)
    order = batch_rows(train, options.batch_size, generator, options.bucket_by_length)
    batches = len(order)
    reporter.epoch_started(stage, position.epoch, batches)
    position.loss_sum = position.loss_sum.to(options.device)
    watch = _FiniteWatch(options.device)
    started = time.perf_counter() - position.seconds
    tokens_since_report = 0
    for rows in order[position.batches_done :]:
        tokens_since_report += sum(len(train.token_ids[row]) - 1 for row in rows)  # the whole batch's
        step = train_step(
            module, train, rows, world, options.grad_accum, options.rating_weight, options.pad_id,
            options.device, lambda: autocast(options),
        )  # fmt: skip
        if stage.optimization.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable_of(optimizer), stage.optimization.clip_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        position.batches_done += 1
        position.loss_sum += step.loss
        watch.add(position.batches_done, step.text, step.rating)
        done = position.batches_done
        reporting = done % REPORT_EVERY_STEPS == 0
        if reporting:
            watch.check(stage.name, position.epoch, world)
            mean = float(sum_over_ranks(position.loss_sum, world)) / done
            reporter.step(done, mean, tokens_since_report)
            tokens_since_report = 0
        due = checkpointing.every_steps > 0 and done % checkpointing.every_steps == 0
        # Ranks agree on a stop only where they synchronise anyway: no extra wait at every step.
        reason = checkpointing.stop_requested()
        if world.distributed:
            reason = agreed_stop(reason, world, options.device) if reporting or due else None
        if (due or reason is not None) and done < batches and checkpointing.save is not None:
            watch.check(stage.name, position.epoch, world)  # never save weights a non-finite loss has touched
            position.seconds = time.perf_counter() - started
            fold_to_main(position.loss_sum, world)
            checkpointing.save(progress, optimizer)
        if reason is not None and done < batches:
            raise StopRequested(reason, stage.name, position.epoch, done)
    watch.check(stage.name, position.epoch, world)
    done = max(position.batches_done, 1)
    mean = float(sum_over_ranks(position.loss_sum, world)) / done
    reporter.step(position.batches_done, mean, tokens_since_report)
    return mean


def train_one_epoch(
    model: ExplanationModel,
    stage: Stage,
    epoch: int,
    train: Examples,
    optimizer: torch.optim.Optimizer,
    options: LoopOptions,
    reporter: Reporter | None = None,
) -> float:
    """One whole epoch on its own, outside a stage (the benchmarks time this): the mean training loss."""
    position = EpochPosition(epoch, 0, torch.zeros((), device=options.device), 0.0)
    progress = StageProgress(StageRecord(stage.name, list(stage.trains)), 0, None, position)
    reporter = reporter if reporter is not None else SilentReporter()
    module = wrap(model, options.world, options.device)
    return train_epoch(model, module, stage, train, optimizer, options, reporter, progress, Checkpointing())


@torch.no_grad()
def evaluate(
    model: ExplanationModel,
    examples: Examples,
    options: LoopOptions,
    module: torch.nn.Module | None = None,
    rating_weight: float | None = None,
) -> dict[str, float]:
    """Token-weighted text loss, mean squared rating error and their λ-weighted total (over every rank's
    share of the batches: the same numbers on every rank); ``rating_weight`` is that λ (default: the
    training λ of ``options``). A model's auxiliary loss (PETER's context words) does not count here.

    ``module`` (the stage's wrapped losses) is called when the LM is sharded: FSDP gathers the weights in its
    forward, and every rank then makes the same number of calls (a rank short of batches repeats one, unused).
    """
    model.eval()
    nll = torch.zeros((), device=options.device)
    squared = torch.zeros((), device=options.device)
    tokens = ratings = 0
    batches = batch_rows(examples, options.batch_size, None, False)
    mine = shard(batches, options.world)
    sharded = module is not None and is_sharded(model)
    calls = -(-len(batches) // options.world.size) if sharded else len(mine)
    for index in range(calls):
        rows = mine[index] if index < len(mine) else batches[0]
        batch = collate_rows(examples, rows, options.pad_id).to(options.device)
        with autocast(options):
            losses = module(batch) if sharded and module is not None else model.losses(batch)
        if index >= len(mine):
            continue
        nll += losses.text_nll_sum.float()
        tokens += losses.text_tokens
        if losses.rating_se_sum is not None:
            squared += losses.rating_se_sum.float()
            ratings += losses.ratings
    tokens = int(tokens)  # a model may count on the device: read once, after the last batch
    if options.world.distributed:
        counts = torch.tensor([tokens, ratings], dtype=torch.float64, device=options.device)
        all_reduce_sum(nll, options.world), all_reduce_sum(squared, options.world)
        tokens, ratings = (int(n) for n in all_reduce_sum(counts, options.world).tolist())
    text_loss = float(nll) / max(tokens, 1)
    scores = {"text_loss": text_loss, "loss": text_loss}
    if ratings:
        scores["rating_mse"] = float(squared) / ratings
        weight = options.rating_weight if rating_weight is None else rating_weight
        scores["loss"] = text_loss + weight * scores["rating_mse"]
    return scores


def trainable_of(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def snapshot(parameters: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """Copies on the parameters' own device: no host round trip for the best weights."""
    return [p.detach().clone() for p in parameters]


def restore(parameters: list[torch.nn.Parameter], state: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for parameter, saved in zip(parameters, state):
            parameter.copy_(saved)
