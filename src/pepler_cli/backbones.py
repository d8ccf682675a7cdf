"""Shared machinery for backbone plugins built on Hugging Face causal LMs: plugins supply loading only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class HuggingFaceBackbone:
    """Architecture, save/load and width for any ``transformers`` causal LM.

    safetensors' ``save_model``/``load_model`` are used rather than ``save_file(state_dict)`` because GPT-2
    ties its output layer to the word embeddings, and shared tensors must be written once. transformers and
    safetensors are imported where used: importing a plugin stays cheap, so ``pepler plugins`` is quick.
    """

    name: str = ""
    description: str = ""
    hub_id: str = ""

    def describe_weights(self, path: str | None = None) -> dict[str, Any]:
        return {"source": path or self.hub_id}

    def architecture(self, model: PreTrainedModel) -> dict[str, Any]:
        architecture = json.loads(model.config.to_json_string())
        # How the weights were stored (a GGUF file, say) is not part of the architecture.
        architecture.pop("quantization_config", None)
        return architecture

    def build_model(self, architecture: dict[str, Any]) -> PreTrainedModel:
        from transformers import AutoConfig, AutoModelForCausalLM

        return AutoModelForCausalLM.from_config(AutoConfig.for_model(**architecture))

    def embedding_width(self, model: PreTrainedModel) -> int:
        return int(model.get_input_embeddings().embedding_dim)

    def save_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import save_model

        save_model(model, str(path))

    def load_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import load_model

        load_model(model, str(path), strict=True)
