"""The continuous prompt model: loss only on explanation tokens, gradients only where a stage trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pepler_cli.modeling.batch import collate
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.strategies import STRATEGIES
from pepler_cli.training.loop import set_trainable

EOS = 50256


def _batch():
    # <bos> a b c <eos> and <bos> d <eos>, the second padded.
    return collate([0, 1], [1, 0], [[EOS, 11, 12, 13, EOS], [EOS, 21, EOS]], [4.0, 2.0], pad_id=EOS)


def test_loss_equals_reference_nll_over_explanation_tokens(tiny_lm):
    torch.manual_seed(0)
    model = ContinuousPromptModel(tiny_lm, 2, 2).eval()
    batch = _batch()
    losses = model.losses(batch)
    assert losses.text_tokens == 4 + 2  # a b c <eos> and d <eos>: not <bos>, not padding
    # Reference: the LM's own full logits, one sequence at a time, no padding at all.
    expected = 0.0
    for row, length in enumerate([5, 3]):
        prefix = model.prefix_embeddings(batch.users[row : row + 1], batch.items[row : row + 1])
        words = model.lm.get_input_embeddings()(batch.tokens[row : row + 1, :length])
        logits = model.lm(inputs_embeds=torch.cat([prefix, words], 1)).logits[0]
        expected += F.cross_entropy(logits[2 : 2 + length - 1], batch.tokens[row, 1:length], reduction="sum")
    assert torch.allclose(losses.text_nll_sum, expected, atol=1e-4)


def test_prompt_stage_trains_only_prompt_vectors(tiny_lm):
    model = ContinuousPromptModel(tiny_lm, 2, 2)
    prompt_stage, full_stage = STRATEGIES["sequential"]
    set_trainable(model, prompt_stage)
    model.losses(_batch()).text_nll_sum.backward()
    assert model.user_embeddings.weight.grad is not None
    assert all(p.grad is None for p in model.lm.parameters())
    set_trainable(model, full_stage)
    assert all(p.requires_grad for p in model.parameters())


def test_rating_head_adds_squared_error(tiny_lm):
    from pepler_cli.plugins import get_rating_head

    model = ContinuousPromptModel(tiny_lm, 2, 2, get_rating_head("mf").build(128))
    batch = _batch()
    losses = model.losses(batch)
    predicted = (model.user_embeddings(batch.users) * model.item_embeddings(batch.items)).sum(-1)
    assert torch.allclose(losses.rating_se_sum, ((predicted - batch.ratings) ** 2).sum())


def test_collate_pads_to_the_batch_not_the_dataset():
    batch = _batch()
    assert batch.tokens.shape == (2, 5)
    assert batch.token_mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]


def test_chunked_linear_cross_entropy_matches_the_plain_one(monkeypatch):
    import pepler_cli.modeling.loss as loss

    monkeypatch.setattr(loss, "CHUNK_ROWS", 7)  # several chunks, the last one short
    torch.manual_seed(3)
    hidden = torch.randn(30, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (30,))
    fused = loss.linear_cross_entropy_sum(hidden, weight, targets)
    (fused * 2.0).backward()
    fused_grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    plain = F.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    (plain * 2.0).backward()
    assert torch.allclose(fused, plain, atol=1e-4)
    assert torch.allclose(fused_grads[0], hidden.grad, atol=1e-5)
    assert torch.allclose(fused_grads[1], weight.grad, atol=1e-5)
    # A frozen head (the prompt stage) gets no gradient; without grad mode there is no graph at all.
    frozen = weight.detach()
    hidden.grad = None
    loss.linear_cross_entropy_sum(hidden, frozen, targets).backward()
    assert hidden.grad is not None and frozen.grad is None
    with torch.no_grad():
        assert torch.allclose(loss.linear_cross_entropy_sum(hidden, weight, targets), plain, atol=1e-4)


def test_chunked_cross_entropy_under_bf16_autocast_stays_close_to_fp32(monkeypatch):
    """The CUDA path (bf16 products, fp32 softmax), exercised with CPU autocast."""
    import pepler_cli.modeling.loss as loss

    monkeypatch.setattr(loss, "CHUNK_ROWS", 8)
    torch.manual_seed(4)
    hidden = torch.randn(20, 16, requires_grad=True)
    weight = (torch.randn(40, 16) * 0.3).requires_grad_()
    targets = torch.randint(0, 40, (20,))
    plain = F.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    plain.backward()
    plain_grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = loss.linear_cross_entropy_sum(hidden, weight, targets)
        with torch.no_grad():
            evaluated = loss.linear_cross_entropy_sum(hidden, weight, targets)
    fused.backward()
    assert fused.dtype == evaluated.dtype == torch.float32
    assert torch.allclose(fused, plain, rtol=2e-2) and torch.allclose(evaluated, plain, rtol=2e-2)
    assert hidden.grad.dtype == weight.grad.dtype == torch.float32
    assert torch.allclose(hidden.grad, plain_grads[0], atol=5e-2)
    assert torch.allclose(weight.grad, plain_grads[1], atol=5e-2)


def test_length_buckets_keep_every_example_once_and_reduce_padding():
    from pepler_cli.training.examples import Examples, batch_rows

    lengths = [3 + (7 * k) % 17 for k in range(400)]
    examples = Examples(list(range(400)), [0] * 400, [0] * 400, [[EOS] * n for n in lengths], [1.0] * 400)

    def padded(rows):
        return sum(max(lengths[r] for r in batch) * len(batch) for batch in rows)

    plain = batch_rows(examples, 16, torch.Generator().manual_seed(1), by_length=False)
    bucketed = batch_rows(examples, 16, torch.Generator().manual_seed(1), by_length=True)
    assert sorted(r for b in bucketed for r in b) == list(range(400))
    assert padded(bucketed) < padded(plain)
    again = batch_rows(examples, 16, torch.Generator().manual_seed(1), by_length=True)
    assert again == bucketed
