"""Decoding: the KV-cached batched greedy decoder gives exactly the naive method's tokens."""

from __future__ import annotations

import torch

from pepler_cli.generation import cut_at_eos, decode_in_batches, DecodeOptions, greedy_decode, greedy_decode_naive
from pepler_cli.modeling.continuous import ContinuousPromptModel

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
    users = torch.arange(30).repeat(2)[:48]
    items = torch.arange(48) % 20
    cached = greedy_decode(model, users, items, bos=EOS, eos=EOS, max_tokens=12)
    naive = greedy_decode_naive(model, users, items, bos=EOS, max_tokens=12)
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
    ids = greedy_decode(model, torch.tensor([0, 1]), torch.tensor([0, 1]), EOS, EOS, max_tokens=20)
    assert ids.shape == (2, 1)
    assert cut_at_eos(ids[0].tolist(), EOS) == []


def test_cut_at_eos_cuts_on_the_first_eos_id():
    assert cut_at_eos([5, 6, EOS, 7, EOS], EOS) == [5, 6]
    assert cut_at_eos([5, 6], EOS) == [5, 6]


def test_batched_decoding_equals_one_batch(tiny_lm):
    model = _model(tiny_lm)
    users, items = list(range(10)), [i % 7 for i in range(10)]
    small = DecodeOptions(max_tokens=8, batch_size=3)
    large = DecodeOptions(max_tokens=8, batch_size=64)
    device = torch.device("cpu")
    chunks = [row for part in decode_in_batches(model, users, items, EOS, EOS, device, small) for row in part]
    whole = [row for part in decode_in_batches(model, users, items, EOS, EOS, device, large) for row in part]
    assert chunks == whole
