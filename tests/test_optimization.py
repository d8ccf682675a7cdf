"""How a stage trains (strategies.Optimization): the optimizer, learning-rate decay, clipping and patience rules
that the baselines' authors used beside PEPLER's AdamW."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pepler_cli.strategies import Optimization, Stage
from pepler_cli.training import loop
from pepler_cli.training.examples import Examples
from pepler_cli.training.loop import (
    EpochRecord,
    LoopOptions,
    SilentReporter,
    StageRecord,
    make_optimizer,
    stage_learning_rate,
    train_stage,
)


class OneWeight(nn.Module):
    prompt_kind = "ids"

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"model": [self.weight]}


def _epoch(number: int, improved: bool) -> EpochRecord:
    return EpochRecord(number, 1.0, 1.0, 1.0, 2.7, None, 1.0, 1.0, improved)


def test_the_learning_rate_is_cut_once_per_epoch_that_did_not_improve():
    decaying = Optimization("sgd", decay_on_plateau=0.25)
    record = StageRecord(
        "all", ["model"], [_epoch(1, True), _epoch(2, False), _epoch(3, True), _epoch(4, False)]
    )
    assert stage_learning_rate(1.0, decaying, record) == pytest.approx(0.0625)
    assert stage_learning_rate(1.0, Optimization(), record) == 1.0  # PEPLER's: no decay


@pytest.mark.parametrize(
    ("kind", "expected"), [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)]
)
def test_the_stage_names_its_optimizer(kind, expected):
    optimizer = make_optimizer([nn.Parameter(torch.ones(2))], 0.5, Optimization(kind))
    assert type(optimizer) is expected and optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(("counts", "epochs"), [("consecutive", 7), ("total", 4)])
def test_patience_counts_epochs_in_a_row_or_in_all(monkeypatch, counts, epochs):
    """Validation losses 5, 6, 4, 6, 3, 6, 6: two epochs without improvement end a stage of patience 2 after the
    last two in a row (PEPLER's rule), or at the second miss in all, epoch 4 (the baselines' authors' rule)."""
    losses = iter([5.0, 6.0, 4.0, 6.0, 3.0, 6.0, 6.0])
    rates: list[float] = []

    def fake_epoch(model, module, stage, train, optimizer, *rest) -> float:
        rates.append(optimizer.param_groups[0]["lr"])
        return 0.0

    monkeypatch.setattr(loop, "train_epoch", fake_epoch)
    monkeypatch.setattr(loop, "evaluate", lambda *args, **kwargs: {"loss": next(losses), "text_loss": 1.0})
    options = LoopOptions(1.0, 4, 10, 2, 0.0, 1, torch.device("cpu"), False, 0)
    empty = Examples([], [], [], [], [])
    stage = Stage("all", ("model",), Optimization("sgd", decay_on_plateau=0.5, patience_counts=counts))
    record = train_stage(OneWeight(), stage, empty, empty, options, SilentReporter())  # type: ignore[arg-type]
    assert len(record.epochs) == epochs and record.stopped == "early stop"
    assert rates[:4] == [1.0, 1.0, 0.5, 0.5]  # halved after epoch 2, which did not improve
    if counts == "consecutive":
        assert rates[4:] == [0.25, 0.25, 0.125]  # and after epochs 4 and 6
