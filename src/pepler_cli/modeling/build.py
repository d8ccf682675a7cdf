"""Putting a prompt model together: the backbone's LM, the prompt kind, the entity tables, the rating head.

:func:`initial_model` is the one place a model is built as training starts, so that ``pepler train`` and
``pepler attention --before`` get the very same tensors from the same seed.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch
from torch import nn

from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.discrete import DiscretePromptModel
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.plugins import Backbone, RatingHead, load_backbone_model

if TYPE_CHECKING:
    from pepler_cli.modeling.lora import LoraSettings


def build_model(prompt: str, lm: nn.Module, entities: EntityIndex, head: nn.Module | None) -> PromptModel:
    """A discrete prompt (words, no parameters of its own) or the continuous user/item vectors."""
    if prompt == "discrete":
        return DiscretePromptModel(lm)
    return ContinuousPromptModel(lm, len(entities.users), len(entities.items), head)


def initial_model(
    prompt: str,
    backbone: Backbone,
    backbone_path: str | None,
    entities: EntityIndex,
    head_plugin: RatingHead | None,
    *,
    seed: int,
    from_scratch: bool = False,
    lora: LoraSettings | None = None,
    trust_remote_code: bool = False,
) -> tuple[PromptModel, LoraSettings | None]:
    """The model as training starts, and the resolved LoRA settings (None without LoRA).

    The global generator is seeded after the backbone is loaded: whether a plugin's loading draws random
    numbers (or, cached, does not the second time in a process) then cannot change what follows. Everything
    random is drawn after it, in a fixed order: a from-scratch backbone, the rating head, the LoRA adapters,
    the user and item tables.
    """
    lm = load_backbone_model(backbone, backbone_path, trust_remote_code)
    torch.manual_seed(seed)
    if from_scratch:
        lm = backbone.build_model(backbone.architecture(lm))
    head = head_plugin.build(backbone.embedding_width(lm)) if head_plugin is not None else None
    if lora is not None:
        from pepler_cli.modeling.lora import add_lora  # peft: only LoRA runs pay its import

        lora = add_lora(lm, lora)
    return build_model(prompt, lm, entities, head), lora


def prompt_digest(model: PromptModel) -> str | None:
    """sha256 over the prompt tensors (user/item vectors, rating head) in name order; None for a discrete
    prompt. A run records it as training starts, so a rebuilt start can be checked to be the same."""
    state = model.prompt_state()
    if not state:
        return None
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
