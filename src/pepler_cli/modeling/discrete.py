"""PEPLER-D's discrete prompt (paper §3.2): item features as words before the explanation.

The prompt is ordinary tokens, so it is embedded by the LM's own word embeddings and has no parameters of
its own: training tunes the LM with the prompt fixed (the paper's "fixed-prompt LM tuning"). Prompts differ in
length; they are left-padded and the padding is masked so no token attends to it.
"""

from __future__ import annotations

import torch
from torch import nn

from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.batch import PromptInputs


class DiscretePromptModel(PromptModel):
    prompt_kind = "discrete"

    def prompt_parameters(self) -> list[nn.Parameter]:
        return []

    def prompt(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        if inputs.prompt_tokens is None or inputs.prompt_mask is None:
            raise ValueError("a discrete prompt needs prompt tokens")
        return self.lm.get_input_embeddings()(inputs.prompt_tokens), inputs.prompt_mask
