"""GPT-2 backbones for pepler, registered through the ``pepler.backbones`` entry points.

Importing this module is cheap (no torch, no transformers) so ``pepler plugins`` stays fast; the models are
built only when a command asks for one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_cli.backbones import PRETRAINED_OPTIONS, HuggingFaceBackbone, refuse_custom_code

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__version__ = "0.1.0"

# GPT-2's BPE files (MIT) ship inside this package, so the tokenizer works with no network.
TOKENIZER_FILES = ("vocab.json", "merges.txt")

# gpt2-tiny: small enough for tests and the offline demo on two CPU cores, with the real GPT-2 tokenizer.
TINY_LAYERS, TINY_WIDTH, TINY_HEADS, TINY_POSITIONS = 2, 128, 4, 256
# A fixed seed makes the random initialisation the same on every machine, so a run whose backbone stayed
# frozen can refer to "gpt2-tiny" by name instead of copying its weights.
TINY_SEED = 20230101


def bundled_tokenizer_dir() -> Path:
    return Path(str(resources.files("pepler_gpt2") / "tokenizer"))


def _has_tokenizer(directory: Path) -> bool:
    return (
        all((directory / name).is_file() for name in TOKENIZER_FILES)
        or (directory / "tokenizer.json").is_file()
    )


class GPT2Backbone(HuggingFaceBackbone):
    """A pretrained GPT-2 from the Hugging Face hub, or from a local directory given as ``path``."""

    def __init__(self, name: str, hub_id: str, parameters: str) -> None:
        self.name = name
        self.hub_id = hub_id
        self.description = (
            f"pretrained GPT-2 ({parameters} parameters), hub id {hub_id} or --backbone-path DIR"
        )

    def load_tokenizer(self, path: str | None = None) -> PreTrainedTokenizerBase:
        from transformers import GPT2TokenizerFast

        # All GPT-2 sizes share one BPE vocabulary; a local directory's own tokenizer files win when present.
        # transformers 5 builds an empty tokenizer from GPT2TokenizerFast(vocab_file=...): go through
        # from_pretrained on a directory.
        source = Path(path) if path and _has_tokenizer(Path(path)) else bundled_tokenizer_dir()
        return GPT2TokenizerFast.from_pretrained(str(source))

    def load_model(self, path: str | None = None) -> PreTrainedModel:
        from transformers import AutoModelForCausalLM

        # GPT-2 needs no code of its own: never run any, and read weights only from safetensors.
        if path:
            refuse_custom_code(path)
        return AutoModelForCausalLM.from_pretrained(
            path or self.hub_id, trust_remote_code=False, **PRETRAINED_OPTIONS
        )


class TinyGPT2Backbone(GPT2Backbone):
    """A randomly initialised 2-layer, width-128 GPT-2 with the real tokenizer; needs no download."""

    def __init__(self) -> None:
        super().__init__("gpt2-tiny", hub_id="", parameters="")
        self.description = (
            f"randomly initialised GPT-2 ({TINY_LAYERS} layers, width {TINY_WIDTH}, about 6.9M parameters) "
            "with the real GPT-2 tokenizer, for tests and offline demos"
        )

    def describe_weights(self, path: str | None = None) -> dict[str, Any]:
        if path:
            return super().describe_weights(path)
        return {"source": "random initialisation", "seed": TINY_SEED}

    def load_model(self, path: str | None = None) -> PreTrainedModel:
        if path:
            return super().load_model(path)
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=50257,
            n_positions=TINY_POSITIONS,
            n_embd=TINY_WIDTH,
            n_layer=TINY_LAYERS,
            n_head=TINY_HEADS,
            bos_token_id=50256,
            eos_token_id=50256,
        )
        # Seed a private generator state so building the model neither depends on nor disturbs the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = GPT2LMHeadModel(config)
        return model.eval()  # as from_pretrained returns it: dropout off until training asks for it


# Parameter counts as published with each checkpoint.
GPT2_SMALL = GPT2Backbone("gpt2", "openai-community/gpt2", "124M")
GPT2_MEDIUM = GPT2Backbone("gpt2-medium", "openai-community/gpt2-medium", "355M")
GPT2_LARGE = GPT2Backbone("gpt2-large", "openai-community/gpt2-large", "774M")
GPT2_XL = GPT2Backbone("gpt2-xl", "openai-community/gpt2-xl", "1.5B")
GPT2_TINY = TinyGPT2Backbone()
