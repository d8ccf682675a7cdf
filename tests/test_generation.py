"""Decoding: the KV-cached batched greedy decoder gives exactly the naive method's tokens."""

from __future__ import annotations

import torch

from pepler_cli.generation.decode import DecodeOptions, decode_in_batches
from pepler_cli.generation.greedy import cut_at_eos, greedy_decode, greedy_decode_naive
from pepler_cli.modeling.batch import PromptInputs, pad_left
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.discrete import DiscretePromptModel

EOS = 50256


def _model(tiny_lm, scale: float = 3.0) -> ContinuousPromptModel:
    torch.manual_seed(7)
    model = ContinuousPromptModel(tiny_lm, n_users=30, n_items=20)
    with torch.no_grad():
        # Large prompt vectors make the random model's outputs depend strongly on the user and item.
        model.user_embeddings.weight.normal_(0, scale)
        model.item_embeddings.weight.normal_(0, scale)
    return model.eval()


def test_cached_greedy_equals_full_prefix_recomputation(tiny_lm):
    model = _model(tiny_lm)
    inputs = PromptInputs(torch.arange(30).repeat(2)[:48], torch.arange(48) % 20)
    cached = greedy_decode(model, inputs, bos=EOS, eos=EOS, max_tokens=12)
    naive = greedy_decode_naive(model, inputs, bos=EOS, max_tokens=12)
    # The cached decoder may stop early once every row ended; compare on what it produced, then on the cut.
    assert torch.equal(cached, naive[:, : cached.shape[1]])
    assert [cut_at_eos(r, EOS) for r in cached.tolist()] == [cut_at_eos(r, EOS) for r in naive.tolist()]
    assert len({tuple(r) for r in cached.tolist()}) > 1, "the prompts should steer the output"


def test_decoding_stops_at_eos_and_respects_max_tokens(tiny_lm):
    model = _model(tiny_lm)
    with torch.no_grad():
        # Make <eos> the certain next token everywhere: every row ends at step 1.
        model.lm.get_output_embeddings().weight.zero_()
        model.lm.get_output_embeddings().weight[EOS] = 1.0
        model.lm.transformer.ln_f.bias.fill_(1.0)
    ids = greedy_decode(
        model, PromptInputs(torch.tensor([0, 1]), torch.tensor([0, 1])), EOS, EOS, max_tokens=20
    )
    assert ids.shape == (2, 1)
    assert cut_at_eos(ids[0].tolist(), EOS) == []


def test_cut_at_eos_cuts_on_the_first_eos_id():
    assert cut_at_eos([5, 6, EOS, 7, EOS], EOS) == [5, 6]
    assert cut_at_eos([5, 6], EOS) == [5, 6]


def test_batched_decoding_equals_one_batch(tiny_lm):
    model = _model(tiny_lm)
    inputs = PromptInputs(torch.arange(10), torch.arange(10) % 7)
    small = DecodeOptions(max_tokens=8, batch_size=3)
    large = DecodeOptions(max_tokens=8, batch_size=64)
    device = torch.device("cpu")
    chunks = [row for _, part in decode_in_batches(model, inputs, EOS, EOS, device, small) for row in part]
    whole = [row for _, part in decode_in_batches(model, inputs, EOS, EOS, device, large) for row in part]
    assert chunks == whole
    # Equal and also meaningful: not ten empty or identical explanations.
    assert all(whole) and len({tuple(row) for row in whole}) > 1


def _discrete_inputs(rows: int) -> PromptInputs:
    # Prompts of different lengths (0 to 7 tokens), left-padded: padding must change nothing.
    prompts = [[(37 * r + 11 * k) % 50000 for k in range(r % 8)] for r in range(rows)]
    tokens, mask = pad_left(prompts, EOS)
    return PromptInputs(
        torch.zeros(rows, dtype=torch.long), torch.zeros(rows, dtype=torch.long), tokens, mask
    )


def test_cached_greedy_equals_naive_with_padded_discrete_prompts(tiny_lm):
    model = DiscretePromptModel(tiny_lm).eval()
    inputs = _discrete_inputs(16)
    cached = greedy_decode(model, inputs, bos=EOS, eos=EOS, max_tokens=10)
    naive = greedy_decode_naive(model, inputs, bos=EOS, max_tokens=10)
    assert torch.equal(cached, naive[:, : cached.shape[1]])


def test_prompt_padding_does_not_change_the_output(tiny_lm):
    model = DiscretePromptModel(tiny_lm).eval()
    inputs = _discrete_inputs(8)
    together = greedy_decode(model, inputs, bos=EOS, eos=EOS, max_tokens=6)
    for row in range(8):
        length = int(inputs.prompt_mask[row].sum())
        alone = PromptInputs(
            inputs.users[row : row + 1],
            inputs.items[row : row + 1],
            inputs.prompt_tokens[row : row + 1, inputs.prompt_tokens.shape[1] - length :],
            torch.ones(1, length, dtype=torch.bool),
        )
        single = greedy_decode(model, alone, bos=EOS, eos=EOS, max_tokens=6)
        assert single[0].tolist() == together[row, : single.shape[1]].tolist()
