"""Putting a prompt model together: the backbone's LM, the prompt kind, the entity tables, the rating head."""

from __future__ import annotations

from torch import nn

from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.discrete import DiscretePromptModel
from pepler_cli.modeling.entities import EntityIndex


def build_model(prompt: str, lm: nn.Module, entities: EntityIndex, head: nn.Module | None) -> PromptModel:
    """A discrete prompt (words, no parameters of its own) or the continuous user/item vectors."""
    if prompt == "discrete":
        return DiscretePromptModel(lm)
    return ContinuousPromptModel(lm, len(entities.users), len(entities.items), head)
