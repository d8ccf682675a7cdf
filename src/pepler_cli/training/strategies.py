"""Tuning strategies (paper Table 3, §3.5): which parameter groups each stage trains."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    trains: tuple[str, ...]  # parameter groups of the model: "prompt", "rating_head", "lm"


PROMPT_STAGE = Stage("prompt", ("prompt", "rating_head"))
FULL_STAGE = Stage("prompt+lm", ("prompt", "rating_head", "lm"))
LM_STAGE = Stage("lm", ("lm",))

STRATEGIES: dict[str, tuple[Stage, ...]] = {
    # PEPLER's default: first the prompt alone with the LM frozen, then everything.
    "sequential": (PROMPT_STAGE, FULL_STAGE),
    # Fixed-LM prompt tuning.
    "prompt-only": (PROMPT_STAGE,),
    # Prompt and LM together from the start.
    "joint": (FULL_STAGE,),
    # Fixed-prompt LM tuning: PEPLER-D's strategy, whose prompt is words with no parameters of their own.
    "fixed-prompt": (LM_STAGE,),
}
DEFAULT_STRATEGY = {"continuous": "sequential", "discrete": "fixed-prompt"}
STRATEGIES_OF_PROMPT = {
    "continuous": ("sequential", "prompt-only", "joint", "fixed-prompt"),
    "discrete": ("fixed-prompt",),
}


def stages_of(strategy: str) -> tuple[Stage, ...]:
    return STRATEGIES[strategy]
