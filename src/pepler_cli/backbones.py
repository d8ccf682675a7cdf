"""Shared machinery for backbone plugins built on Hugging Face causal LMs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class HuggingFaceBackbone:
    """Save/load and width for any ``transformers`` causal LM; plugins supply loading.

    safetensors' ``save_model``/``load_model`` are used rather than ``save_file(state_dict)`` because GPT-2
    ties its output layer to the word embeddings, and shared tensors must be written once.
    """

    name: str = ""
    description: str = ""

    def embedding_width(self, model: PreTrainedModel) -> int:
        return int(model.get_input_embeddings().embedding_dim)

    def save_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import save_model

        save_model(model, str(path))

    def load_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import load_model

        load_model(model, str(path), strict=True)
