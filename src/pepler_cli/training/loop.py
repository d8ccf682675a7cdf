"""The training loop: AdamW, per-stage early stopping on validation loss, best weights restored."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from pepler_cli.modeling.base import Losses, PromptModel
from pepler_cli.training.examples import Examples, batch_count, iterate_batches
from pepler_cli.training.strategies import Stage

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


def set_trainable(model: PromptModel, stage: Stage) -> list[torch.nn.Parameter]:
    trainable: list[torch.nn.Parameter] = []
    for group, parameters in model.parameter_groups().items():
        for parameter in parameters:
            parameter.requires_grad_(group in stage.trains)
            if group in stage.trains:
                trainable.append(parameter)
    return trainable


def make_optimizer(parameters: list[torch.nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
    """AdamW (the paper's optimizer) in its fused form: one kernel over all parameters instead of a Python
    loop of small ones. Measured on 2 CPU cores with gpt2-tiny's 7M parameters: 0.09 s a step instead of 0.7 s,
    a quarter of a whole training step. The update rule is the same."""
    try:
        return torch.optim.AdamW(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(parameters, lr=learning_rate)


def autocast(options: LoopOptions) -> contextlib.AbstractContextManager:
    if options.bf16:
        return torch.autocast(options.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def objective(losses: Losses, rating_weight: float) -> torch.Tensor:
    """Mean token NLL plus λ times the mean squared rating error (paper eq. 14)."""
    loss = losses.text_nll_sum / max(losses.text_tokens, 1)
    if losses.rating_se_sum is not None:
        loss = loss + rating_weight * losses.rating_se_sum / max(losses.ratings, 1)
    return loss


@dataclass
class StageProgress:
    """Where a stage stands between epochs: what a checkpoint saves and a resume continues from."""

    record: StageRecord
    epochs_without_improvement: int
    # The trainable parameters at the best epoch so far; None: the current ones.
    best_state: list[torch.Tensor] | None


# Called after every epoch with the stage's progress and optimizer (pepler train saves a checkpoint there).
EpochHook = Callable[[StageProgress, torch.optim.Optimizer], None]


def train_stage(
    model: PromptModel,
    stage: Stage,
    train: Examples,
    valid: Examples,
    options: LoopOptions,
    reporter: Reporter,
    resume: StageProgress | None = None,
    optimizer_moments: dict[int, dict[str, torch.Tensor]] | None = None,
    after_epoch: EpochHook | None = None,
) -> StageRecord:
    """Train one stage until early stopping or the epoch cap, then restore its best weights.

    ``resume`` and ``optimizer_moments`` (AdamW's per-parameter state) continue a stage from a checkpoint
    (the model already holds the checkpoint's weights); the epochs then run exactly as they would have run
    without the interruption. ``after_epoch`` is called after every epoch (``pepler train`` saves there).
    """
    trainable = set_trainable(model, stage)
    optimizer = make_optimizer(trainable, options.learning_rate)
    # Name only the groups this model has: a run without a rating head trains no "rating_head".
    groups = [g for g, params in model.parameter_groups().items() if g in stage.trains and params]
    stage = Stage(stage.name, tuple(groups))
    reporter.stage_started(stage, sum(p.numel() for p in trainable))
    if resume is None:
        progress = StageProgress(StageRecord(stage.name, groups), 0, snapshot(trainable))
    else:
        progress = resume
        if progress.best_state is None:
            progress.best_state = snapshot(trainable)
        if optimizer_moments is not None:
            groups_now = optimizer.state_dict()["param_groups"]
            optimizer.load_state_dict({"state": optimizer_moments, "param_groups": groups_now})
    while not progress.record.stopped:
        run_epoch(model, stage, train, valid, optimizer, options, reporter, progress, trainable)
        if after_epoch is not None:
            after_epoch(progress, optimizer)
    restore(trainable, progress.best_state or [])
    return progress.record


def run_epoch(
    model: PromptModel,
    stage: Stage,
    train: Examples,
    valid: Examples,
    optimizer: torch.optim.Optimizer,
    options: LoopOptions,
    reporter: Reporter,
    progress: StageProgress,
    trainable: list[torch.nn.Parameter],
) -> None:
    """One epoch and validation; updates ``progress`` (best weights, patience, whether the stage ends)."""
    record = progress.record
    epoch = len(record.epochs) + 1
    started = time.perf_counter()
    train_loss = train_epoch(model, stage, epoch, train, optimizer, options, reporter)
    valid_scores = evaluate(model, valid, options)
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
        progress.epochs_without_improvement = 0
    else:
        progress.epochs_without_improvement += 1
    if progress.epochs_without_improvement >= options.patience:
        record.stopped = "early stop"
    elif epoch >= options.max_epochs:
        record.stopped = "epoch cap"


def train_epoch(
    model: PromptModel,
    stage: Stage,
    epoch: int,
    train: Examples,
    optimizer: torch.optim.Optimizer,
    options: LoopOptions,
    reporter: Reporter,
) -> float:
    model.train()
    generator = torch.Generator().manual_seed(options.seed * 1000 + epoch)
    reporter.epoch_started(stage, epoch, batch_count(train, options.batch_size))
    loss_sum = torch.zeros((), device=options.device)
    steps = 0
    tokens_since_report = 0
    for batch in iterate_batches(
        train, options.batch_size, options.pad_id, generator, options.bucket_by_length
    ):
        tokens_since_report += int(batch.token_mask.sum()) - batch.size  # counted on the host copy
        batch = batch.to(options.device)
        with autocast(options):
            loss = objective(model.losses(batch), options.rating_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        steps += 1
        if steps % REPORT_EVERY_STEPS == 0:
            reporter.step(steps, float(loss_sum) / steps, tokens_since_report)
            tokens_since_report = 0
    reporter.step(steps, float(loss_sum) / max(steps, 1), tokens_since_report)
    return float(loss_sum) / max(steps, 1)


@torch.no_grad()
def evaluate(model: PromptModel, examples: Examples, options: LoopOptions) -> dict[str, float]:
    """Token-weighted text loss, mean squared rating error and their λ-weighted total."""
    model.eval()
    nll = torch.zeros((), device=options.device)
    squared = torch.zeros((), device=options.device)
    tokens = ratings = 0
    for batch in iterate_batches(examples, options.batch_size, options.pad_id):
        batch = batch.to(options.device)
        with autocast(options):
            losses = model.losses(batch)
        nll += losses.text_nll_sum.float()
        tokens += losses.text_tokens
        if losses.rating_se_sum is not None:
            squared += losses.rating_se_sum.float()
            ratings += losses.ratings
    text_loss = float(nll) / max(tokens, 1)
    scores = {"text_loss": text_loss, "loss": text_loss}
    if ratings:
        scores["rating_mse"] = float(squared) / ratings
        scores["loss"] = text_loss + options.rating_weight * scores["rating_mse"]
    return scores


def snapshot(parameters: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """Copies on the parameters' own device: no host round trip for the best weights."""
    return [p.detach().clone() for p in parameters]


def restore(parameters: list[torch.nn.Parameter], state: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for parameter, saved in zip(parameters, state):
            parameter.copy_(saved)
