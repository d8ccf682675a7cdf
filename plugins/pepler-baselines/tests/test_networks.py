"""NRT, Att2Seq and PETER at tiny sizes: sizes, cached decoding, padding, the loss sums, and (when the
authors' code is on this machine) equality with the authors' own classes.

The authors' code is looked for in $PEPLER_AUTHORS_CODE or /tmp/h5 (NRT/, Att2Seq/, PETER/ clones, see
benchmarks/baselines_fidelity.py); the tests that need it are skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
import torch
from pepler_baselines.att2seq import Att2Seq
from pepler_baselines.losses import training_losses
from pepler_baselines.nrt import NRT
from pepler_baselines.outputs import BOS, EOS, PAD
from pepler_baselines.peter import PETER
from torch import Tensor, nn

NUSER, NITEM, NTOKEN = 6, 5, 30
EMSIZE, NHID = 16, 24
AUTHORS = Path(os.environ.get("PEPLER_AUTHORS_CODE", "/tmp/h5"))
TOL = 1e-5


def tiny(name: str) -> nn.Module:
    """A tiny network in eval mode (dropout off), seeded so every test sees the same weights."""
    torch.manual_seed(0)
    if name == "nrt":
        network: nn.Module = NRT(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhid=NHID, nlayers=2)
    elif name == "att2seq":
        network = Att2Seq(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhid=NHID, nlayers=2)
    else:
        network = PETER(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhead=2, nhid=32, nlayers=2)
    return network.eval()


def batch(
    lengths: list[int], width: int | None = None, seed: int = 1
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """users, items, ratings and [bos, words, eos, pad…] rows with the given word counts, padded to width."""
    generator = torch.Generator().manual_seed(seed)
    size = len(lengths)
    width = width or max(lengths) + 2
    tokens = torch.full((size, width), PAD)
    for row, n in enumerate(lengths):
        tokens[row, 0] = BOS
        tokens[row, 1 : 1 + n] = torch.randint(4, NTOKEN, (n,), generator=generator)
        tokens[row, 1 + n] = EOS
    users = torch.randint(0, NUSER, (size,), generator=generator)
    items = torch.randint(0, NITEM, (size,), generator=generator)
    ratings = torch.randint(1, 6, (size,), generator=generator).float()
    return users, items, ratings, tokens


def one_hint(size: int, seed: int = 2) -> Tensor:
    """A (B, 1) feature hint of real vocabulary words (PETER+)."""
    return torch.randint(4, NTOKEN, (size, 1), generator=torch.Generator().manual_seed(seed))


def teacher_forced(
    network: nn.Module, users: Tensor, items: Tensor, tokens: Tensor, **hint: Tensor
) -> Tensor:
    """Logits (B, T-1, V) from start and a step per input token: what decoding sees, teacher-forced."""
    state, logits = network.start(users, items, tokens[:, 0], **hint)
    steps = [logits]
    for position in range(1, tokens.size(1) - 1):
        state, logits = network.step(state, tokens[:, position])
        steps.append(logits)
    return torch.stack(steps, dim=1)


# Sizes ------------------------------------------------------------------------------------------------------


def nrt_parameters(
    nuser: int, nitem: int, ntoken: int, emsize: int, nhid: int, nlayers: int, classes: int
) -> int:
    """Embeddings, the rating MLP, the [u; i; one-hot] -> h0 map, a one-layer GRU, the output projection."""
    mlp = (2 * emsize + 1) * nhid + nlayers * (nhid + 1) * nhid + nhid + 1
    initial_state = (2 * emsize + classes + 1) * nhid
    gru = 3 * (emsize * nhid + nhid * nhid + 2 * nhid)
    return (nuser + nitem + ntoken) * emsize + mlp + initial_state + gru + (nhid + 1) * ntoken


def att2seq_parameters(nuser: int, nitem: int, ntoken: int, emsize: int, nhid: int, nlayers: int) -> int:
    """Embeddings, pair -> each layer's h0, word embeddings of size nhid, the LSTM, the projection."""
    encoder = (nuser + nitem) * emsize + (2 * emsize + 1) * nhid * nlayers
    lstm = nlayers * 4 * (2 * nhid * nhid + 2 * nhid)
    return encoder + ntoken * nhid + lstm + (nhid + 1) * ntoken


def peter_parameters(nuser: int, nitem: int, ntoken: int, emsize: int, nhid: int, nlayers: int) -> int:
    """Three embedding tables, the encoder layers, the shared word head and the rating MLP."""
    attention = 3 * emsize * emsize + 3 * emsize + emsize * emsize + emsize
    feed_forward = (emsize + 1) * nhid + (nhid + 1) * emsize
    layer = attention + feed_forward + 4 * emsize  # two LayerNorms
    heads = (emsize + 1) * ntoken + (emsize + 1) * emsize + emsize + 1
    return (nuser + nitem + ntoken) * emsize + nlayers * layer + heads


def count(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def test_tiny_parameter_counts_follow_the_formulas() -> None:
    assert count(tiny("nrt")) == nrt_parameters(NUSER, NITEM, NTOKEN, EMSIZE, NHID, 2, 5)
    assert count(tiny("att2seq")) == att2seq_parameters(NUSER, NITEM, NTOKEN, EMSIZE, NHID, 2)
    assert count(tiny("peter")) == peter_parameters(NUSER, NITEM, NTOKEN, EMSIZE, 32, 2)


def test_tripadvisor_sizes_give_the_authors_parameter_counts() -> None:
    # ntoken 20,004 (20,000 words + 4 specials), 10 users, 8 items, the authors' default hyper-parameters:
    # the counts the authors' own classes give (measured on their code).
    with torch.device("meta"):
        sizes = {
            "nrt": (NRT(10, 8, 20_004), 15_995_405),
            "att2seq": (Att2Seq(10, 8, 20_004), 24_839_844),
            "peter": (PETER(10, 8, 20_004), 27_081_253),
        }
    for name, (network, expected) in sizes.items():
        assert count(network) == expected, name
    assert nrt_parameters(10, 8, 20_004, 300, 400, 4, 5) == 15_995_405
    assert att2seq_parameters(10, 8, 20_004, 64, 512, 2) == 24_839_844
    assert peter_parameters(10, 8, 20_004, 512, 2048, 2) == 27_081_253


def test_defaults_are_the_authors_hyper_parameters() -> None:
    with torch.device("meta"):
        nrt, att2seq, peter = NRT(2, 2, 10), Att2Seq(2, 2, 10), PETER(2, 2, 10)
    assert nrt.decoder.word_embeddings.embedding_dim == 300 and nrt.decoder.gru.hidden_size == 400
    assert (
        len(nrt.encoder.layers) == 4 and nrt.encoder.rating_classes == 5 and nrt.decoder.gru.num_layers == 1
    )
    assert att2seq.encoder.user_embeddings.embedding_dim == 64 and att2seq.decoder.lstm.hidden_size == 512
    assert att2seq.decoder.lstm.num_layers == 2 and att2seq.decoder.lstm.dropout == 0.2
    layer = peter.transformer_encoder.layers[0]
    assert peter.emsize == 512 and layer.self_attn.nhead == 2 and layer.linear1.out_features == 2048
    assert len(peter.transformer_encoder.layers) == 2 and layer.dropout.p == 0.2 and peter.peter_mask


def test_peter_does_not_save_the_positional_table_and_checks_an_incoming_one() -> None:
    network = tiny("peter")
    state = network.state_dict()
    assert "pos_encoder.pe" not in state
    table = network.pos_encoder.pe.unsqueeze(1).clone()  # the authors' (max_len, 1, d) layout
    network.load_state_dict({**state, "pos_encoder.pe": table}, strict=True)
    with pytest.raises(RuntimeError, match="positional table"):
        network.load_state_dict({**state, "pos_encoder.pe": table + 0.1}, strict=True)


# Decoding ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nrt", "att2seq", "peter"])
def test_start_and_step_give_the_teacher_forced_logits(name: str) -> None:
    network = tiny(name)
    users, items, _, tokens = batch([5, 2, 7, 0])
    with torch.no_grad():
        expected = network.forward_train(users, items, tokens).logits
        assert torch.allclose(teacher_forced(network, users, items, tokens), expected, atol=TOL)


def test_peter_start_and_step_with_a_hint_give_the_teacher_forced_logits() -> None:
    network = tiny("peter")
    users, items, _, tokens = batch([5, 2, 7, 0])
    hint = one_hint(4)
    with torch.no_grad():
        expected = network.forward_train(users, items, tokens, hint=hint).logits
        assert torch.allclose(teacher_forced(network, users, items, tokens, hint=hint), expected, atol=TOL)


def full_recompute_logits(
    network: PETER, users: Tensor, items: Tensor, prefix: Tensor, **hint: Tensor
) -> Tensor:
    """The authors' decoding step: the whole prefix [u, i, hint, bos, …] run again, its last position read.

    forward_train predicts tokens[:, 1:], so one trailing <pad> makes the prefix's last position an input.
    """
    padded = torch.cat([prefix, torch.full_like(prefix[:, :1], PAD)], dim=1)
    return network.forward_train(users, items, padded, **hint).logits[:, -1]


HINTS = {
    "no hint": {},
    "one-token hint": {"hint": one_hint(3)},
    "left-padded hint of 2": {
        "hint": torch.tensor([[PAD, 7], [9, 11], [PAD, PAD]]),
        "hint_mask": torch.tensor([[False, True], [True, True], [False, False]]),
    },
}


@pytest.mark.parametrize("hint", HINTS.values(), ids=HINTS.keys())
def test_peter_cached_greedy_decoding_equals_recomputing_the_prefix(hint: dict[str, Tensor]) -> None:
    network = tiny("peter")
    users, items = torch.tensor([0, 3, 5]), torch.tensor([1, 4, 2])
    with torch.no_grad():
        prefix = torch.full((3, 1), BOS)
        state, logits = network.start(users, items, prefix[:, 0], **hint)
        for _ in range(8):
            assert torch.allclose(
                logits, full_recompute_logits(network, users, items, prefix, **hint), atol=TOL
            )
            chosen = logits.argmax(dim=-1)
            prefix = torch.cat([prefix, chosen.unsqueeze(1)], dim=1)
            state, logits = network.step(state, chosen)


def test_peter_cache_masks_a_fed_pad_like_the_full_recompute() -> None:
    # The authors mask every <pad> key of the prefix, so a generated <pad> is invisible to later positions.
    network = tiny("peter")
    users, items = torch.tensor([0, 3]), torch.tensor([1, 4])
    fed = torch.tensor([[BOS, 5, PAD, 6, 7], [BOS, PAD, PAD, 8, 9]])
    with torch.no_grad():
        state, _ = network.start(users, items, fed[:, 0])
        for position in range(1, fed.size(1)):
            state, logits = network.step(state, fed[:, position])
            recomputed = full_recompute_logits(network, users, items, fed[:, : position + 1])
            assert torch.allclose(logits, recomputed, atol=TOL)


def test_peter_left_padding_of_the_hint_changes_nothing() -> None:
    network = tiny("peter")
    users, items, _, tokens = batch([4, 6])
    hint = one_hint(2)
    padded = torch.cat([torch.full((2, 2), PAD), hint], dim=1)
    mask = torch.tensor([[False, False, True], [False, False, True]])
    with torch.no_grad():
        plain = network.forward_train(users, items, tokens, hint=hint)
        left_padded = network.forward_train(users, items, tokens, hint=padded, hint_mask=mask)
    assert torch.allclose(plain.logits, left_padded.logits, atol=TOL)
    assert torch.allclose(plain.rating, left_padded.rating, atol=TOL)


@pytest.mark.parametrize("name", ["nrt", "att2seq", "peter"])
def test_reorder_keeps_and_repeats_rows(name: str) -> None:
    network = tiny(name)
    users, items, _, tokens = batch([3, 4, 5])
    rows = torch.tensor([2, 0, 0])
    with torch.no_grad():
        state, _ = network.start(users, items, tokens[:, 0])
        _, expected = network.step(state, tokens[:, 1])
        _, reordered = network.step(network.reorder(state, rows), tokens[rows, 1])
    assert torch.allclose(reordered, expected[rows], atol=TOL)


@pytest.mark.parametrize("name", ["nrt", "att2seq"])
def test_recurrent_networks_refuse_a_hint(name: str) -> None:
    network = tiny(name)
    users, items, _, tokens = batch([3])
    with pytest.raises(ValueError, match="hint"):
        network.forward_train(users, items, tokens, hint=one_hint(1))
    with pytest.raises(ValueError, match="hint"):
        network.start(users, items, tokens[:, 0], hint=one_hint(1))


# Padding and losses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nrt", "att2seq", "peter"])
def test_trailing_padding_changes_neither_real_logits_nor_losses(name: str) -> None:
    network = tiny(name)
    users, items, ratings, tokens = batch([2, 5])
    wider = torch.cat([tokens, torch.full((2, 4), PAD)], dim=1)
    with torch.no_grad():
        narrow_out = network.forward_train(users, items, tokens)
        wide_out = network.forward_train(users, items, wider)
        narrow = training_losses(network, users, items, tokens, ratings)
        wide = training_losses(network, users, items, wider, ratings)
    assert torch.allclose(wide_out.logits[:, : tokens.size(1) - 1], narrow_out.logits, atol=TOL)
    for key, value in narrow.items():
        if value is None:
            assert wide[key] is None, key
        else:
            assert torch.allclose(wide[key].float(), value.float(), atol=TOL), key


def test_the_loss_sums_give_the_authors_token_means() -> None:
    network = tiny("nrt")
    users, items, ratings, tokens = batch([2, 5, 9])
    with torch.no_grad():
        losses = training_losses(network, users, items, tokens, ratings)
        out = network.forward_train(users, items, tokens)
    log_probs = out.logits.log_softmax(dim=-1).reshape(-1, NTOKEN)
    text_mean = nn.NLLLoss(ignore_index=PAD)(log_probs, tokens[:, 1:].reshape(-1))
    rating_mean = nn.MSELoss()(out.rating, ratings)
    assert losses["text_tokens"].item() == 2 + 5 + 9 + 3  # words plus one <eos> per row
    assert losses["text_nll_sum"].dtype == torch.float32
    mean_text = losses["text_nll_sum"] / losses["text_tokens"]
    assert torch.allclose(mean_text + losses["rating_se_sum"] / 3, text_mean + rating_mean, atol=TOL)
    assert losses["context_nll_sum"] is None and losses["context_tokens"] is None


def test_att2seq_has_no_rating_or_context_terms() -> None:
    network = tiny("att2seq")
    users, items, ratings, tokens = batch([3, 4])
    losses = training_losses(network, users, items, tokens, ratings)
    assert losses["rating_se_sum"] is None and losses["context_nll_sum"] is None
    assert network.predict_ratings(users, items) is None


def test_context_targets_include_eos_only_below_the_word_limit() -> None:
    network = tiny("peter")
    users, items, ratings, tokens = batch([2, 4, 3])  # max_words 4 below: the 4-word row is at the limit
    with torch.no_grad():
        losses = training_losses(network, users, items, tokens, ratings, max_words=4)
        context = network.forward_train(users, items, tokens).context_logits.log_softmax(dim=-1)
    # Below the limit the words and the <eos>; at the limit the words only (the authors' rows put its eos
    # last).
    targets = [[*tokens[0, 1:3].tolist(), EOS], tokens[1, 1:5].tolist(), [*tokens[2, 1:4].tolist(), EOS]]
    assert tokens[1, 5].item() == EOS
    expected = -sum(context[row, word] for row, words in enumerate(targets) for word in words)
    assert losses["context_tokens"].item() == 3 + 4 + 4
    assert torch.allclose(losses["context_nll_sum"], expected, atol=TOL)


def test_context_targets_at_the_default_fifteen_words() -> None:
    network = tiny("peter")
    users, items, ratings, tokens = batch([15, 14, 3])
    losses = training_losses(network, users, items, tokens, ratings)
    assert losses["context_tokens"].item() == 15 + (14 + 1) + (3 + 1)


# What the networks see --------------------------------------------------------------------------------------


def test_peter_rating_reads_user_and_item_but_not_the_hint_or_the_text() -> None:
    network = tiny("peter")
    users, items, _, tokens = batch([4, 6])
    with torch.no_grad():
        rating = network.forward_train(users, items, tokens).rating
        other_text = batch([7, 1], seed=5)[3]
        with_hint = network.forward_train(users, items, other_text, hint=one_hint(2)).rating
        other_items = network.forward_train(users, (items + 1) % NITEM, tokens).rating
        assert torch.allclose(network.predict_ratings(users, items), rating, atol=TOL)
    assert torch.allclose(with_hint, rating, atol=TOL)
    assert not torch.allclose(other_items, rating)


def test_nrt_text_loss_does_not_reach_the_rating_layers() -> None:
    network = tiny("nrt").train()
    users, items, ratings, tokens = batch([4, 6])
    training_losses(network, users, items, tokens, ratings)["text_nll_sum"].backward()
    assert network.encoder.first_layer.weight.grad is None
    assert network.encoder.user_embeddings.weight.grad.abs().sum() > 0


def test_dropout_acts_only_in_train_mode() -> None:
    for name in ["att2seq", "peter"]:
        network = tiny(name)
        users, items, _, tokens = batch([4, 6])
        with torch.no_grad():
            first = network.forward_train(users, items, tokens).logits
            assert torch.equal(first, network.forward_train(users, items, tokens).logits)
            network.train()
            assert not torch.allclose(first, network.forward_train(users, items, tokens).logits)


# The authors' classes ---------------------------------------------------------------------------------------

needs_authors = pytest.mark.skipif(
    not all((AUTHORS / repo / "module.py").is_file() for repo in ["NRT", "Att2Seq", "PETER"]),
    reason=f"the authors' code is not in {AUTHORS} (set PEPLER_AUTHORS_CODE)",
)


@cache
def authors_module(repo: str) -> ModuleType:
    """The authors' module.py (it imports only torch), loaded by path under a name of its own."""
    spec = importlib.util.spec_from_file_location(
        f"authors_{repo.lower()}_module", AUTHORS / repo / "module.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """The authors' network at tiny sizes and ours with their weights, both in eval mode."""
    torch.manual_seed(3)
    if name == "nrt":
        theirs = authors_module("NRT").NRT(NUSER, NITEM, NTOKEN, EMSIZE, NHID, 2, 5.0, 1.0)
        ours: nn.Module = NRT(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhid=NHID, nlayers=2)
    elif name == "att2seq":
        theirs = authors_module("Att2Seq").Att2Seq(NUSER, NITEM, NTOKEN, EMSIZE, NHID, 0.2, 2)
        ours = Att2Seq(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhid=NHID, nlayers=2)
    else:
        src_len = 3 if name == "peter+" else 2
        theirs = authors_module("PETER").PETER(
            True, src_len, 16, PAD, NUSER, NITEM, NTOKEN, EMSIZE, 2, 32, 2, 0.2
        )
        ours = PETER(NUSER, NITEM, NTOKEN, emsize=EMSIZE, nhead=2, nhid=32, nlayers=2)
    assert count(ours) == count(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs.eval(), ours.eval()


@needs_authors
@pytest.mark.parametrize("name", ["nrt", "att2seq", "peter", "peter+"])
def test_equal_to_the_authors_classes(name: str) -> None:
    theirs, ours = authors_pair(name)
    users, items, _, tokens = batch([15, 3, 9, 0], width=17)
    hint = {"hint": one_hint(4)} if name == "peter+" else {}
    with torch.no_grad():
        out = ours.forward_train(users, items, tokens, **hint)
        if name.startswith("peter"):
            text = torch.cat([hint["hint"], tokens[:, :-1]], dim=1) if hint else tokens[:, :-1]
            log_words, log_context, rating, _ = theirs(users, items, text.t())
            log_words = log_words.transpose(0, 1)
            assert torch.allclose(out.context_logits.log_softmax(-1), log_context, atol=TOL)
        elif name == "nrt":
            rating, log_words = theirs(users, items, tokens[:, :-1])
        else:
            rating, log_words = None, theirs(users, items, tokens[:, :-1])
    assert torch.allclose(out.logits.log_softmax(-1), log_words, atol=TOL)
    if rating is not None:
        assert torch.allclose(out.rating, rating, atol=TOL)


@needs_authors
@pytest.mark.parametrize("hinted", [False, True], ids=["peter", "peter+"])
def test_peter_greedy_ids_equal_the_authors_full_recompute(hinted: bool) -> None:
    theirs, ours = authors_pair("peter+" if hinted else "peter")
    users, items = torch.tensor([0, 1, 2, 5]), torch.tensor([4, 3, 2, 0])
    hint = one_hint(4)
    text = torch.cat([hint, torch.full((4, 1), BOS)], dim=1).t() if hinted else torch.full((1, 4), BOS)
    start = text.size(0)
    with torch.no_grad():
        for _ in range(15):
            log_probs = theirs(users, items, text, False, False, False)[0]
            text = torch.cat([text, log_probs.argmax(dim=1).unsqueeze(0)], dim=0)
        state, logits = ours.start(users, items, torch.full((4,), BOS), **({"hint": hint} if hinted else {}))
        ids = []
        for _ in range(15):
            ids.append(logits.argmax(dim=-1))
            state, logits = ours.step(state, ids[-1])
    assert torch.equal(torch.stack(ids, dim=1), text[start:].t())
