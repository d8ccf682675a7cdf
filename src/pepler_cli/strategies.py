"""Tuning strategies (paper Table 3, §3.5): which parameter groups each stage trains.

Plain definitions, no torch: the options (config.py) validate against them and training/ follows them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    trains: tuple[str, ...]  # parameter groups of the model: "prompt", "rating_head", "lm", "lora"


PROMPT_STAGE = Stage("prompt", ("prompt", "rating_head"))
FULL_STAGE = Stage("prompt+lm", ("prompt", "rating_head", "lm"))
LM_STAGE = Stage("lm", ("lm",))
# LoRA adapters on a frozen LM (parameter-efficient tuning); a discrete prompt trains the adapters alone.
LORA_STAGE = Stage("prompt+lora", ("prompt", "rating_head", "lora"))

STRATEGIES: dict[str, tuple[Stage, ...]] = {
    # PEPLER's default: first the prompt alone with the LM frozen, then everything.
    "sequential": (PROMPT_STAGE, FULL_STAGE),
    # Fixed-LM prompt tuning.
    "prompt-only": (PROMPT_STAGE,),
    # Prompt and LM together from the start.
    "joint": (FULL_STAGE,),
    # Fixed-prompt LM tuning: PEPLER-D's strategy, whose prompt is words with no parameters of their own.
    "fixed-prompt": (LM_STAGE,),
    # The prompt (and rating head) with LoRA adapters from the start, the LM itself frozen.
    "lora": (LORA_STAGE,),
    # The paper's two stages with LoRA in the second: the prompt alone, then prompt and adapters.
    "sequential-lora": (PROMPT_STAGE, LORA_STAGE),
}
DEFAULT_STRATEGY = {"continuous": "sequential", "discrete": "fixed-prompt"}
STRATEGIES_OF_PROMPT = {
    "continuous": ("sequential", "prompt-only", "joint", "fixed-prompt", "lora", "sequential-lora"),
    "discrete": ("fixed-prompt", "lora"),
}


def uses_lora(strategy: str) -> bool:
    return any("lora" in stage.trains for stage in STRATEGIES[strategy])


def stages_of(strategy: str) -> tuple[Stage, ...]:
    return STRATEGIES[strategy]
