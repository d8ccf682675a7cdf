"""LoRA adapters injected into a causal LM in place (through peft), their state, and merging them away.

The adapters are added to the LM's own modules (``peft.inject_adapter_in_model``), so the LM keeps its class and
its ``base_model``, embeddings and output layer: the prompt models use it exactly as without adapters. Only the
adapters' matrices are new parameters (``...lora_A...``, ``...lora_B...``: ``base.is_adapter_parameter``).

peft takes seconds to import, so only runs that use LoRA import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import nn
from transformers.pytorch_utils import Conv1D

from pepler_cli.errors import PeplerError
from pepler_cli.modeling.base import is_adapter_parameter

# The attention (and for GPT-2 the MLP) projections, as current LoRA recipes for these families adapt them;
# other architectures fall back to peft's defaults.
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
}


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: tuple[str, ...] | None = None  # module names; None: the architecture's defaults

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "targets": list(self.targets or ()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraSettings:
        return cls(int(data["rank"]), float(data["alpha"]), float(data["dropout"]), tuple(data["targets"]))


def default_targets(lm: nn.Module) -> tuple[str, ...]:
    model_type = str(getattr(getattr(lm, "config", None), "model_type", ""))
    targets = DEFAULT_TARGETS.get(model_type) or TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(
        model_type
    )
    if not targets:
        raise PeplerError(
            f"no default LoRA targets for a {model_type or 'model of unknown type'}; pass --lora-targets"
        )
    return tuple(targets)


def add_lora(lm: nn.Module, settings: LoraSettings) -> LoraSettings:
    """Inject adapters into ``lm`` in place; returns the settings with the targets resolved."""
    targets = settings.targets or default_targets(lm)
    names = {name.rsplit(".", 1)[-1] for name, _ in lm.named_modules()}
    missing = [target for target in targets if target not in names]
    if missing:
        raise PeplerError(f"--lora-targets: the model has no module named {missing[0]!r}")
    # GPT-2's projections are Conv1D layers, whose weight is stored transposed.
    conv1d = any(isinstance(m, Conv1D) for n, m in lm.named_modules() if n.rsplit(".", 1)[-1] in targets)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(targets),
        fan_in_fan_out=conv1d,
        bias="none",
    )
    inject_adapter_in_model(config, lm)
    return LoraSettings(settings.rank, settings.alpha, settings.dropout, tuple(targets))


def adapter_state(lm: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' tensors by parameter name: all a LoRA run needs to store besides its prompt."""
    return {name: p for name, p in lm.named_parameters() if is_adapter_parameter(name)}


def load_adapter_state(lm: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = adapter_state(lm)
    if set(own) != set(state):
        extra = sorted(set(state) ^ set(own))
        raise PeplerError(f"the saved LoRA adapters do not fit this model (first difference: {extra[0]})")
    with torch.no_grad():
        for name, tensor in state.items():
            own[name].copy_(tensor)


def merge_lora(lm: nn.Module) -> None:
    """Fold every adapter into its layer's weight and put the plain layer back: a standard model again."""
    for name, module in list(lm.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = lm.get_submodule(parent_name) if parent_name else lm
            setattr(parent, child, module.get_base_layer())
