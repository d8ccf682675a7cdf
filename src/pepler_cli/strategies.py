"""Tuning strategies (paper Table 3, §3.5): which parameter groups each stage trains, and how.

Plain definitions, no torch: the options (config.py) validate against them and training/ follows them. A model
plugin (``plugins.ModelPlugin``) names its own stages; PEPLER's are the strategies below, the paper's baselines
train one stage of everything with their authors' optimizer (``Optimization``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Optimization:
    """How a stage trains, besides the learning rate and batch size of the options.

    PEPLER's (the default): AdamW, no clipping, no decay, early stopping after ``patience`` epochs in a row
    without a better validation loss. The baselines' authors used Adam or plain SGD, clipped gradients, cut
    PETER's learning rate by a factor after every epoch that did not improve, and counted every non-improving
    epoch of the whole stage towards patience (a count never reset): ``patience_counts="total"``.
    """

    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    clip_norm: float | None = None  # clip the gradients' global norm to this before each step
    decay_on_plateau: float | None = None  # multiply the learning rate by this after each epoch not improving
    patience_counts: Literal["consecutive", "total"] = "consecutive"
    # The λ of the validation loss that picks the best epoch; None: the training λ (--rating-weight). PETER's
    # authors trained with 0.1 and selected with 1.
    selection_rating_weight: float | None = None


PEPLER_OPTIMIZATION = Optimization()


@dataclass(frozen=True)
class Stage:
    name: str
    trains: tuple[str, ...]  # parameter groups of the model: "prompt", "rating_head", "lm", "lora"; "model"
    optimization: Optimization = field(default=PEPLER_OPTIMIZATION)


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
