"""Sampling (top-k, top-p, temperature) and beam search: reproducible, independent of batching, greedy at
the limits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pepler_cli.generation.beam import beam_search
from pepler_cli.generation.decode import DecodeOptions, decode_batch, decode_in_batches
from pepler_cli.generation.greedy import cut_at_eos, greedy_decode
from pepler_cli.generation.incremental import sequence_log_probs
from pepler_cli.generation.sampling import pick_tokens, row_seed, sample_decode
from pepler_cli.modeling.batch import PromptInputs, pad_left, positions_from_mask
from pepler_cli.modeling.continuous import ContinuousPromptModel

EOS = 50256
CPU = torch.device("cpu")
SAMPLING = ("top-k", "top-p")
METHODS = ("greedy", "beam", "top-k", "top-p")


def _continuous(tiny_lm, eos_bias: float | None = None) -> ContinuousPromptModel:
    torch.manual_seed(7)
    model = ContinuousPromptModel(tiny_lm, n_users=30, n_items=20)
    with torch.no_grad():
        # Large prompt vectors make the random model's outputs depend strongly on the user and item.
        model.user_embeddings.weight.normal_(0, 3.0)
        model.item_embeddings.weight.normal_(0, 3.0)
    if eos_bias is not None:
        _bias_eos(model, eos_bias)
    return model.eval()


def _bias_eos(model: nn.Module, bias: float) -> None:
    """An untied output layer with a bias on <eos> only: the random model then ends some explanations."""
    lm = model.lm
    words = lm.get_input_embeddings().weight
    head = nn.Linear(words.shape[1], words.shape[0], bias=True)
    with torch.no_grad():
        head.weight.copy_(words)
        head.bias.zero_()
        head.bias[EOS] = bias
    lm.set_output_embeddings(head)


def _continuous_inputs(n: int = 10) -> PromptInputs:
    return PromptInputs(torch.arange(n) % 30, (torch.arange(n) * 7) % 20)


def _discrete(tiny_lm):
    from pepler_cli.modeling.discrete import DiscretePromptModel

    return DiscretePromptModel(tiny_lm).eval()


def _discrete_inputs(n: int = 8) -> PromptInputs:
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, 50000, (1 + i % 4,), generator=generator).tolist() for i in range(n)]
    tokens, mask = pad_left(prompts, EOS)
    return PromptInputs(torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), tokens, mask)


def _decoded(model, inputs, **options) -> list[list[int]]:
    chosen = DecodeOptions(**options)
    return [row for _, part in decode_in_batches(model, inputs, EOS, EOS, CPU, chosen) for row in part]


def _cut(ids: torch.Tensor, eos: int = EOS) -> list[list[int]]:
    return [cut_at_eos(row, eos) for row in ids.tolist()]


# --- sampling ---------------------------------------------------------------------------------------------


def _frequencies(logits: torch.Tensor, draws: int = 20000, **options) -> list[float]:
    uniforms = torch.rand((draws, logits.shape[0]), generator=torch.Generator().manual_seed(0))
    tokens = pick_tokens(logits.repeat(draws, 1), uniforms, **options)
    return (torch.bincount(tokens, minlength=logits.shape[0]).float() / draws).tolist()


def test_pick_tokens_follows_the_filtered_distribution():
    logits = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125]))
    assert _frequencies(logits) == pytest.approx([0.5, 0.25, 0.125, 0.125], abs=0.015)
    # Top-2 leaves {0: 2/3, 1: 1/3}; top-p 0.6 keeps the same two (0.5 < 0.6 before token 1).
    assert _frequencies(logits, top_k=2) == pytest.approx([2 / 3, 1 / 3, 0, 0], abs=0.015)
    assert _frequencies(logits, top_p=0.6) == pytest.approx([2 / 3, 1 / 3, 0, 0], abs=0.015)
    # Top-p 0.5: token 0 alone already has probability 0.5.
    assert _frequencies(logits, top_p=0.5) == [1.0, 0.0, 0.0, 0.0]
    # The temperature divides the logits: at 2 the probabilities go as the square roots of the original ones.
    flat = torch.tensor([0.5, 0.25, 0.125, 0.125]).sqrt()
    assert _frequencies(logits, temperature=2.0) == pytest.approx((flat / flat.sum()).tolist(), abs=0.015)
    # Top-p is measured at the temperature: at 2 the first two tokens hold about 0.59, not 0.75.
    assert _frequencies(logits, temperature=2.0, top_p=0.7)[2] > 0


def test_row_seeds_differ_between_rows_and_seeds():
    seeds = {row_seed(seed, row) for seed in range(5) for row in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("method", SAMPLING)
def test_same_seed_same_output_different_seed_different_output(tiny_lm, method):
    model = _continuous(tiny_lm)
    inputs = _continuous_inputs()
    options = {"decoding": method, "max_tokens": 6, "temperature": 3.0, "top_p": 0.95}
    first = _decoded(model, inputs, seed=11, **options)
    again = _decoded(model, inputs, seed=11, **options)
    other = _decoded(model, inputs, seed=12, **options)
    assert first == again
    assert first != other
    assert len({tuple(row) for row in first}) == len(first), "hot sampling should vary between examples"


@pytest.mark.parametrize("method", SAMPLING)
def test_sampling_does_not_depend_on_the_batching(tiny_lm, method):
    """Each example draws from its own generator, seeded by the seed and its index among all examples."""
    model = _continuous(tiny_lm)
    inputs = _continuous_inputs()
    options = {"decoding": method, "max_tokens": 6, "temperature": 2.0, "seed": 5}
    whole = _decoded(model, inputs, batch_size=64, **options)
    assert _decoded(model, inputs, batch_size=3, **options) == whole
    assert _decoded(model, inputs, batch_size=1, **options) == whole
    # The same holds when a part is decoded alone, given where it starts.
    part = decode_batch(model, inputs.select(torch.arange(4, 9)), EOS, EOS, DecodeOptions(**options), 4)
    assert _cut(part) == whole[4:9]


def test_sampling_options_are_checked(tiny_lm):
    model = _continuous(tiny_lm)
    inputs = _continuous_inputs(2)
    bad_options = ({"temperature": 0.0}, {"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5})
    for bad in bad_options:
        with pytest.raises(ValueError):
            sample_decode(model, inputs, EOS, EOS, 3, **bad)
    with pytest.raises(ValueError):
        decode_batch(model, inputs, EOS, EOS, DecodeOptions(decoding="nucleus"))
    with pytest.raises(ValueError):
        beam_search(model, inputs, EOS, EOS, 3, beams=0)


# --- the greedy limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["continuous", "discrete"])
def test_top_k_one_tiny_top_p_and_one_beam_are_greedy(tiny_lm, prompt):
    model = _continuous(tiny_lm) if prompt == "continuous" else _discrete(tiny_lm)
    inputs = _continuous_inputs() if prompt == "continuous" else _discrete_inputs()
    greedy = greedy_decode(model, inputs, EOS, EOS, 8)
    assert len({tuple(row) for row in greedy.tolist()}) > 1, "the prompts should steer the output"
    for temperature in (0.5, 1.0, 4.0):
        top_1 = sample_decode(model, inputs, EOS, EOS, 8, top_k=1, temperature=temperature, seed=7)
        assert _cut(top_1) == _cut(greedy)
        tiny_p = sample_decode(model, inputs, EOS, EOS, 8, top_p=1e-6, temperature=temperature, seed=3)
        assert _cut(tiny_p) == _cut(greedy)
    assert _cut(beam_search(model, inputs, EOS, EOS, 8, beams=1)) == _cut(greedy)


def test_one_beam_is_greedy_when_rows_end(tiny_lm):
    model = _continuous(tiny_lm, eos_bias=0.1)
    inputs = _continuous_inputs(12)
    greedy = greedy_decode(model, inputs, EOS, EOS, 8)
    lengths = {len(row) for row in _cut(greedy)}
    assert 0 in lengths and 8 in lengths, "some rows should end, some not"
    assert _cut(beam_search(model, inputs, EOS, EOS, 8, beams=1)) == _cut(greedy)


# --- beam search ------------------------------------------------------------------------------------------


def _uncached_log_probs(model, prefix, prefix_mask, bos: int, tokens: list[int]) -> torch.Tensor:
    """The next token's log-probabilities after ``<bos> tokens``, the whole sequence through the LM."""
    ids = torch.tensor([[bos, *tokens]])
    embedded = torch.cat([prefix, model.lm.get_input_embeddings()(ids)], dim=1)
    mask = positions = None
    if prefix_mask is not None:
        mask = torch.cat([prefix_mask, torch.ones_like(ids, dtype=torch.bool)], dim=1).long()
        positions = positions_from_mask(mask)
    out = model.lm(inputs_embeds=embedded, attention_mask=mask, position_ids=positions, use_cache=False)
    return torch.log_softmax(out.logits[0, -1].float(), dim=-1)


def _reference_beam_search(model, inputs, bos, eos, max_tokens, beams, penalty=0.0) -> list[list[int]]:
    """The same beam search without a cache, one example at a time: the whole prefix is re-run every step.
    Finished hypotheses are ranked by their sum of log-probabilities / length**penalty."""
    results = []
    for row in range(inputs.users.shape[0]):
        prefix, prefix_mask = model.prefix(inputs.select(torch.tensor([row])))
        alive: list[tuple[float, list[int]]] = [(0.0, [])]
        finished: tuple[float, list[int]] | None = None
        for step in range(max_tokens):
            candidates = []
            for score, tokens in alive:
                log_probs = _uncached_log_probs(model, prefix, prefix_mask, bos, tokens)
                values, ids = torch.topk(log_probs, 2 * beams)
                candidates += [(score + v, tokens + [t]) for v, t in zip(values.tolist(), ids.tolist())]
            candidates.sort(key=lambda c: -c[0])
            candidates = candidates[: 2 * beams]
            for score, tokens in candidates[:beams]:
                normalised = score / len(tokens) ** penalty
                if tokens[-1] == eos and (finished is None or normalised > finished[0]):
                    finished = (normalised, tokens)
            alive = [c for c in candidates if c[1][-1] != eos][:beams]
            # What a live hypothesis could still reach: its score, over the longest length when normalised.
            ceiling = alive[0][0] / (step + 1 if penalty == 0 else max_tokens) ** penalty
            if finished is not None and finished[0] >= ceiling:
                break
        else:
            live = alive[0][0] / max_tokens**penalty
            if finished is None or live > finished[0]:
                finished = (live, alive[0][1])
        results.append(cut_at_eos(finished[1], eos))
    return results


@pytest.mark.parametrize("prompt", ["continuous", "discrete"])
def test_beam_search_equals_an_uncached_reference(tiny_lm, prompt):
    model = _continuous(tiny_lm) if prompt == "continuous" else _discrete(tiny_lm)
    inputs = (_continuous_inputs() if prompt == "continuous" else _discrete_inputs()).select(torch.arange(4))
    plain = beam_search(model, inputs, EOS, EOS, 5, beams=3)
    # Declare as <eos> a token the search produces mid-way, so hypotheses finish at different steps.
    stop = plain[0, 2].item()
    for eos in (EOS, stop):
        for penalty in (0.0, 1.0):
            cached = _cut(beam_search(model, inputs, EOS, eos, 5, beams=3, length_penalty=penalty), eos)
            assert cached == _reference_beam_search(model, inputs, EOS, eos, 5, 3, penalty)
    assert any(len(row) < 5 for row in _cut(beam_search(model, inputs, EOS, stop, 5, beams=3), stop))


@pytest.mark.parametrize("eos_bias", [None, 0.1])
def test_beam_search_is_at_least_as_likely_as_greedy_over_two_tokens(tiny_lm, eos_bias):
    """Over two tokens beam search keeps greedy's first token, so greedy's sequence is among what it compares
    (or beaten by what displaced it): its result is at least as likely. Longer searches may prune greedy's
    path, so no such promise holds for them.
    """
    model = _continuous(tiny_lm, eos_bias)
    inputs = _continuous_inputs(12)
    greedy = greedy_decode(model, inputs, EOS, EOS, 2)
    greedy_scores = sequence_log_probs(model, inputs, EOS, EOS, greedy)
    for beams in (2, 4):
        beam = beam_search(model, inputs, EOS, EOS, 2, beams=beams)
        beam_scores = sequence_log_probs(model, inputs, EOS, EOS, beam)
        assert bool((beam_scores >= greedy_scores - 1e-4).all())
        if eos_bias is None:
            assert bool((beam_scores > greedy_scores + 1e-4).any()), "a wider search should find better"


def test_length_penalty_changes_the_ranking_and_is_checked(tiny_lm):
    model = _continuous(tiny_lm, eos_bias=0.1)
    inputs = _continuous_inputs(12)
    plain = _cut(beam_search(model, inputs, EOS, EOS, 6, beams=3))
    normalised = _cut(beam_search(model, inputs, EOS, EOS, 6, beams=3, length_penalty=1.0))
    assert plain != normalised  # on this model: sums favour ending at once, means favour going on
    with pytest.raises(ValueError):
        beam_search(model, inputs, EOS, EOS, 6, beams=3, length_penalty=-1.0)


# --- <eos> ------------------------------------------------------------------------------------------------


# A bias on <eos> that makes the random model end some explanations and not others, by method: sampling
# from the nucleus of a near-uniform distribution over 50257 tokens needs a large one.
EOS_BIAS = {"greedy": 0.15, "beam": 0.05, "top-k": 2.0, "top-p": 9.0}


@pytest.mark.parametrize("method", METHODS)
def test_outputs_are_cut_at_eos_and_rows_stop(tiny_lm, method):
    model = _continuous(tiny_lm, eos_bias=EOS_BIAS[method])
    inputs = _continuous_inputs(12)
    options = DecodeOptions(decoding=method, max_tokens=8, beams=3, seed=1)
    raw = decode_batch(model, inputs, EOS, EOS, options).tolist()
    for row in raw if method != "greedy" else []:  # greedy_decode leaves what follows <eos> as it came
        if EOS in row:  # after a row's <eos> only <eos> (or nothing)
            assert set(row[row.index(EOS) :]) == {EOS}
    decoded = _decoded(model, inputs, decoding=method, max_tokens=8, beams=3, seed=1)
    assert decoded == [cut_at_eos(row, EOS) for row in raw]
    assert all(EOS not in row for row in decoded)
    lengths = {len(row) for row in decoded}
    assert min(lengths) < 8 and 8 in lengths, "some explanations should end before max_tokens, some not"


@pytest.mark.parametrize("method", METHODS)
def test_decoding_stops_once_every_row_ended(tiny_lm, method):
    model = _continuous(tiny_lm, eos_bias=50.0)  # <eos> is the certain first token
    options = DecodeOptions(decoding=method, max_tokens=20, beams=3)
    ids = decode_batch(model, _continuous_inputs(4), EOS, EOS, options)
    assert ids.shape == (4, 1) and bool((ids == EOS).all())


@pytest.mark.parametrize("method", METHODS)
def test_every_method_works_with_a_discrete_prompt(tiny_lm, method):
    model = _discrete(tiny_lm)
    inputs = _discrete_inputs()
    options = {"decoding": method, "max_tokens": 6, "beams": 3, "temperature": 2.0, "seed": 9}
    whole = _decoded(model, inputs, batch_size=64, **options)
    assert len(whole) == 8 and all(len(row) <= 6 and EOS not in row for row in whole)
    assert _decoded(model, inputs, batch_size=3, **options) == whole
