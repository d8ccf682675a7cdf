"""PEPLER-D: prompts from training features (equation 4), masked padding, the discrete run's defaults."""

from __future__ import annotations

from typing import NamedTuple

import torch

from pepler_cli.config import TrainConfig
from pepler_cli.data.feature_prompts import FeatureIndex, encode_prompts
from pepler_cli.modeling.batch import collate
from pepler_cli.modeling.discrete import DiscretePromptModel

EOS = 50256


class R(NamedTuple):
    user: str
    item: str
    feature: str


RECORDS = [
    R("ann", "hotel", "pool"),  # 0
    R("ann", "inn", "room"),  # 1
    R("ann", "inn", "staff"),  # 2
    R("bob", "hotel", "room"),  # 3
    R("bob", "hotel", "breakfast"),  # 4
    R("bob", "inn", "pool"),  # 5
    R("cat", "hotel", "view"),  # 6: not in training
]
TRAIN = [0, 1, 2, 3, 4, 5]


def test_prompt_of_a_known_pair_follows_equation_4():
    index = FeatureIndex.from_training(RECORDS, TRAIN)
    # F_ann = {pool, room, staff}; F_hotel = {pool, room, breakfast} (record 6 is not training data).
    # Shared: pool (2 training mentions), room (2): equal counts, so alphabetical → pool, room.
    # The rest of the union: breakfast (1), staff (1) → alphabetical.
    assert index.prompt_features("ann", "hotel") == ["pool", "room", "breakfast", "staff"]
    assert index.prompt_text("ann", "hotel") == "pool room breakfast staff"
    # An unseen user gets the item's features only; "view" never enters (test data).
    assert index.prompt_features("cat", "hotel") == ["pool", "room", "breakfast"]
    assert index.prompt_features("cat", "nowhere") == []


def test_frequency_orders_before_the_alphabet():
    index = FeatureIndex.from_training(RECORDS + [R("dan", "inn", "staff")] * 3, TRAIN + [7, 8, 9])
    assert index.prompt_features("ann", "inn")[:1] == ["staff"]  # 4 mentions beat room and pool's 2


def test_prompts_are_cut_to_20_bpe_tokens(tokenizer):
    long = " ".join(f"feature{k}" for k in range(30))  # well over 20 tokens
    ids = encode_prompts([long, "pool room"], tokenizer)
    assert len(ids[0]) == 20
    assert long.startswith(tokenizer.decode(ids[0]))
    assert tokenizer.decode(ids[1]) == "pool room"


def test_padding_inside_the_prompt_changes_no_loss(tiny_lm):
    model = DiscretePromptModel(tiny_lm).eval()
    prompts = [[1000, 1001, 1002, 1003], [2000]]
    texts = [[EOS, 11, 12, EOS], [EOS, 21, 22, 23, EOS]]
    together = collate([0, 0], [0, 0], texts, [1.0, 1.0], EOS, prompts)
    assert together.prompt_mask.tolist() == [[True] * 4, [False, False, False, True]]
    both = model.losses(together).text_nll_sum
    alone = sum(
        model.losses(collate([0], [0], [texts[r]], [1.0], EOS, [prompts[r]])).text_nll_sum for r in range(2)
    )
    assert torch.allclose(both, alone, atol=1e-4)


def test_discrete_defaults_and_checks():
    config = TrainConfig(data="d", out="r", prompt="discrete")
    assert config.strategy == "fixed-prompt" and config.learning_rate == 1e-4
    continuous = TrainConfig(data="d", out="r")
    assert continuous.strategy == "sequential" and continuous.learning_rate == 1e-3
    for bad in ({"strategy": "sequential"}, {"rating_head": "mf"}):
        try:
            TrainConfig(data="d", out="r", prompt="discrete", **bad)
        except ValueError as error:
            assert "discrete" in str(error)
        else:
            raise AssertionError(f"{bad} should be refused for a discrete prompt")
