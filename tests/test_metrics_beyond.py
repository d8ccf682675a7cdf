"""Metrics beyond the paper (issue 18) on hand-computed examples: phrase-aware feature mentions, grounding,
diversity and popularity bias."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pepler_cli.evaluation.metrics.diversity import (
    distinct_from_counts,
    distinct_n,
    entropy_from_counts,
    entropy_n,
    grouped_unique_sentence_ratio,
    ngram_counts,
    repeated_ngram_share,
    repeats_ngram,
)
from pepler_cli.evaluation.metrics.explainability import features_in
from pepler_cli.evaluation.metrics.grounding import (
    feature_precision_recall,
    hallucination_rates,
    item_feature_mention_ratio,
)
from pepler_cli.evaluation.metrics.mentions import FeatureMatcher
from pepler_cli.evaluation.metrics.popularity import gini, mention_counts, top_feature_share, top_features
from pepler_cli.evaluation.metrics.tokens import normalize


def split(*texts: str) -> list[list[str]]:
    return [text.split() for text in texts]


def sets(*groups: str) -> list[frozenset[str]]:
    """ "a,b" -> {"a", "b"}; "" -> {}."""
    return [frozenset(group.split(",")) if group else frozenset() for group in groups]


# --- FeatureMatcher -----------------------------------------------------------------------------------


def test_a_multi_word_feature_uses_up_its_words() -> None:
    matcher = FeatureMatcher(["patch cable", "cable"])
    assert matcher.find(normalize("a good patch cable")) == {"patch cable"}  # not "cable" as well
    assert matcher.find(normalize("the patch cable beats that cable")) == {"patch cable", "cable"}
    assert matcher.find(normalize("a cable")) == {"cable"}
    assert matcher.find(normalize("a patch of grass")) == frozenset()  # half a phrase is no mention


def test_overlaps_go_to_the_leftmost_then_longest_feature() -> None:
    matcher = FeatureMatcher(["front desk", "desk staff", "staff", "front desk staff member"])
    # At "front", "front desk staff member" is missing its last word, so "front desk" is taken; then
    # "desk" is used up, so "desk staff" cannot start there and "staff" is next.
    assert matcher.find(normalize("the front desk staff was kind")) == {"front desk", "staff"}
    assert matcher.find(normalize("front desk staff member")) == {"front desk staff member"}
    assert matcher.find(normalize("desk staff")) == {"desk staff"}


def test_matches_are_at_word_boundaries_and_punctuation_is_split_off() -> None:
    matcher = FeatureMatcher(["room", "front desk", "wi-fi"])
    assert matcher.find(normalize("I loved the room.")) == {"room"}  # "room." is cut to "room" "."
    assert matcher.find(normalize("nice front desk!")) == {"front desk"}
    assert matcher.find(normalize("great rooms, free wi-fi")) == {"wi-fi"}  # "rooms" is not "room"
    assert matcher.find(normalize("the front, desk")) == frozenset()  # a comma breaks the phrase


def test_case_is_kept_as_the_paper_keeps_it() -> None:
    matcher = FeatureMatcher(["room", "Front Desk"])
    assert matcher.find(normalize("Room and front desk")) == frozenset()
    assert matcher.find(normalize("room and Front Desk")) == {"room", "Front Desk"}


def test_features_are_normalised_and_blank_ones_ignored() -> None:
    # " room " and "room\t" cut to the same tokens as "room": all three are mentioned, as given.
    matcher = FeatureMatcher(["room\t", " room ", "room", "", "   ", "patch  cable"])
    assert matcher.find(normalize("the room")) == {"room\t", " room ", "room"}
    assert matcher.find(normalize("a patch cable")) == {"patch  cable"}
    assert matcher.find([]) == frozenset()
    assert FeatureMatcher([]).find(["room"]) == frozenset()


def test_find_all_matches_each_explanation() -> None:
    matcher = FeatureMatcher(["room", "patch cable"])
    texts = [normalize(t) for t in ("the room", "no", "the room", "patch cable and room")]
    assert matcher.find_all(texts) == sets("room", "", "room", "room,patch cable")
    assert matcher.find_all(iter(texts)) == matcher.find_all(texts)  # any iterable, read once
    assert matcher.find_all([]) == []


WORDS = st.sampled_from(["room", "bed", "staff", "food", "the", "was", ".", ",", "Room"])


@given(features=st.sets(WORDS, max_size=6), tokens=st.lists(WORDS, max_size=12))
def test_single_word_features_match_as_the_paper_does(features: set[str], tokens: list[str]) -> None:
    assert FeatureMatcher(features).find(tokens) == features_in(tokens, features)


# --- grounding ----------------------------------------------------------------------------------------

ITEM_FEATURES = {"i1": frozenset({"room", "staff"}), "i2": frozenset({"food"})}


def test_item_feature_mention_ratio() -> None:
    # i1 {room, staff} / i2 {food} / i3 never in training:
    # {room} for i1 -> yes; {bed} for i1 -> no; {food, bed} for i2 -> yes; {room} for i3 -> no; {} for i2 -> no
    # iFMR = 2 / 5
    mentioned = sets("room", "bed", "food,bed", "room", "")
    items = ["i1", "i1", "i2", "i3", "i2"]
    assert item_feature_mention_ratio(mentioned, items, ITEM_FEATURES) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="iFMR"):
        item_feature_mention_ratio([], [], ITEM_FEATURES)
    with pytest.raises(ValueError):
        item_feature_mention_ratio(sets("room"), [], ITEM_FEATURES)


def test_feature_precision_recall_is_micro_averaged() -> None:
    # G: {room, bed} {food} {} {staff}; R: {room} {bed} {staff} {staff, food}
    # |G ∩ R| = 1 + 0 + 0 + 1 = 2; Σ|G| = 2 + 1 + 0 + 1 = 4; Σ|R| = 1 + 1 + 1 + 2 = 5
    # precision = 2/4, recall = 2/5 (the per-explanation mean would give precision (1/2 + 0 + 1) / 3 instead)
    mentioned = sets("room,bed", "food", "", "staff")
    reference = sets("room", "bed", "staff", "staff,food")
    precision, recall = feature_precision_recall(mentioned, reference)
    assert precision == pytest.approx(2 / 4)
    assert recall == pytest.approx(2 / 5)


def test_feature_precision_recall_zero_denominators_give_zero() -> None:
    assert feature_precision_recall(sets("", ""), sets("room", "bed")) == (0.0, 0.0)  # nothing mentioned
    assert feature_precision_recall(sets("room"), sets("")) == (0.0, 0.0)  # no reference feature
    assert feature_precision_recall([], []) == (0.0, 0.0)
    assert feature_precision_recall(sets("room"), sets("room")) == (1.0, 1.0)


def test_hallucination_rates() -> None:
    # i1 {room, staff} / i2 {food} / i3 never in training:
    # {room, bed} for i1 -> H = {bed}; {staff} for i1 -> {}; {food, room, bed} for i2 -> {room, bed};
    # {room} for i3 -> {room}; {} for i2 -> {}
    # D-FHR = 3 explanations with one / 5 = 3/5; C-FHR = (1 + 0 + 2 + 1 + 0) / (2 + 1 + 3 + 1 + 0) = 4/7
    mentioned = sets("room,bed", "staff", "food,room,bed", "room", "")
    items = ["i1", "i1", "i2", "i3", "i2"]
    d_fhr, c_fhr = hallucination_rates(mentioned, items, ITEM_FEATURES)
    assert d_fhr == pytest.approx(3 / 5)
    assert c_fhr == pytest.approx(4 / 7)


def test_hallucination_rates_with_nothing_mentioned() -> None:
    assert hallucination_rates(sets("", ""), ["i1", "i3"], ITEM_FEATURES) == (0.0, 0.0)
    with pytest.raises(ValueError, match="D-FHR"):
        hallucination_rates([], [], ITEM_FEATURES)


# --- diversity ----------------------------------------------------------------------------------------


def test_grouped_unique_sentence_ratio() -> None:
    # u1: "a b", "a b", "c" -> 2 distinct / 3; u2: "a b", "a b" -> 1/2; u3: one explanation -> left out
    # uUSR = (2/3 + 1/2) / 2 = 7/12
    explanations = split("a b", "a b", "c", "a b", "a b", "d")
    keys = ["u1", "u1", "u1", "u2", "u2", "u3"]
    assert grouped_unique_sentence_ratio(explanations, keys) == pytest.approx(7 / 12)


def test_grouped_unique_sentence_ratio_without_a_key_of_two() -> None:
    assert grouped_unique_sentence_ratio(split("a", "a"), ["u1", "u2"]) is None
    assert grouped_unique_sentence_ratio([], []) is None
    assert grouped_unique_sentence_ratio([[], []], ["u1", "u1"]) == pytest.approx(1 / 2)  # two empty: same


def test_distinct_n_is_corpus_level() -> None:
    # "a b a" and "a b c": unigrams a b a a b c -> 3 distinct / 6; bigrams ab ba ab bc -> 3 distinct / 4
    # (the per-sentence mean would give unigrams (2/3 + 3/3) / 2 = 5/6 instead)
    explanations = split("a b a", "a b c")
    assert distinct_n(explanations, 1) == pytest.approx(3 / 6)
    assert distinct_n(explanations, 2) == pytest.approx(3 / 4)
    # A repeated explanation adds n-grams but no new ones: unigrams 3 distinct / 9
    assert distinct_n(split("a b a", "a b c", "a b c"), 1) == pytest.approx(3 / 9)


def test_rep_3_counts_explanations_that_repeat_a_3_gram_of_their_own() -> None:
    repeating = ["the", "sound", "is", "very", "good", "and", "the", "sound", "is", "very", "good"]
    assert repeats_ngram(repeating, 3) and not repeats_ngram(
        ["the", "sound", "is", "good", "and", "the", "tone"], 3
    )
    assert not repeats_ngram(["good", "good"], 3)  # too short to hold a 3-gram twice
    # A 3-gram shared by two explanations is no repeat: Rep-n looks within each one.
    others = [["the", "sound", "is", "great"], ["the", "sound", "is", "bad"]]
    assert repeated_ngram_share([repeating, *others], 3) == pytest.approx(1 / 3)
    assert repeated_ngram_share([], 3) == 0.0


def test_distinct_n_without_n_grams() -> None:
    assert distinct_n(split("a", "b"), 2) == 0.0  # one-token texts have no bigram
    assert distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n(split("a"), 0)


def test_entropy_n() -> None:
    # bigrams of "a b a" and "a b c": ab ×2, ba ×1, bc ×1 -> p = 1/2, 1/4, 1/4
    # ENTR-2 = −(1/2 ln 1/2 + 2 · 1/4 ln 1/4) = 1/2 ln 2 + ln 2 = 1.5 ln 2 ≈ 1.0397 nats
    assert entropy_n(split("a b a", "a b c"), 2) == pytest.approx(1.5 * math.log(2))
    # four equally frequent unigrams: ln 4
    assert entropy_n(split("a b", "c d"), 1) == pytest.approx(math.log(4))
    # the same text repeated: its n-grams weigh twice, "a a b" -> a 4/6, b 2/6 -> same as one copy
    assert entropy_n(split("a a b", "a a b"), 1) == pytest.approx(entropy_n(split("a a b"), 1))
    assert entropy_n(split("a a a"), 1) == 0.0
    assert entropy_n(split("a"), 2) == 0.0


def test_ngram_counts_weigh_repeated_texts() -> None:
    # "a b a" twice and "a b c" once: ab 2 + 1, ba 2, bc 1
    counts = ngram_counts(split("a b a", "a b c", "a b a"), 2)
    assert counts == {("a", "b"): 3, ("b", "a"): 2, ("b", "c"): 1}
    assert (
        distinct_from_counts(counts)
        == distinct_n(split("a b a", "a b c", "a b a"), 2)
        == pytest.approx(3 / 6)
    )
    assert entropy_from_counts(counts) == entropy_n(split("a b a", "a b c", "a b a"), 2)
    assert ngram_counts(split("a b a", "a b c", "a b a"), 1) == {("a",): 5, ("b",): 3, ("c",): 1}


# --- popularity ---------------------------------------------------------------------------------------


def test_top_feature_share() -> None:
    # 5 used features (z has count 0), fraction 0.4 -> ceil(2.0) = 2: room (9), then bed and food tie at 5,
    # and the name breaks the tie -> T = {room, bed}
    # mentions: {room, food} {bed} {staff} {} -> on T: 1 + 1 + 0 = 2 of 4
    counts = {"food": 5, "room": 9, "staff": 1, "bed": 5, "wifi": 2, "z": 0}
    assert top_features(counts, 0.4) == {"room", "bed"}
    assert top_feature_share(sets("room,food", "bed", "staff", ""), counts, 0.4) == pytest.approx(2 / 4)
    # fraction 0.1 -> ceil(0.5) = 1 -> T = {room}: 1 of 4
    assert top_feature_share(sets("room,food", "bed", "staff", ""), counts) == pytest.approx(1 / 4)


def test_top_features_count_is_not_pushed_up_by_rounding() -> None:
    counts = {f"f{i:02d}": 100 - i for i in range(30)}  # 0.1 × 30 = 3.0000000000000004 in floats
    assert top_features(counts, 0.1) == {"f00", "f01", "f02"}


def test_top_feature_share_edges() -> None:
    assert top_feature_share(sets("", ""), {"room": 3}) == 0.0  # nothing mentioned
    assert top_feature_share([], {"room": 3}) == 0.0
    assert top_feature_share(sets("room"), {"room": 0}) == 0.0  # no used training feature, so T is empty
    with pytest.raises(ValueError):
        top_feature_share(sets("room"), {"room": 3}, 0.0)


def test_gini() -> None:
    # [1, 2, 3]: Σ (2i − 4) x_(i) = −2·1 + 0·2 + 2·3 = 4; G = 4 / (3 · 6) = 2/9
    # (check: Σ_ij |x_i − x_j| / (2 n² mean) = 8 / (2 · 9 · 2) = 2/9)
    assert gini([3, 1, 2]) == pytest.approx(2 / 9)
    # one feature gets everything: [0, 0, 0, 4] -> (2·4 − 5) · 4 / (4 · 4) = 3/4 = (n − 1)/n
    assert gini([4, 0, 0, 0]) == pytest.approx(3 / 4)
    assert gini([2, 2, 2]) == 0.0
    assert gini([0, 0]) == 0.0
    assert gini([]) == 0.0
    with pytest.raises(ValueError):
        gini([1, -1])


def test_mention_counts_include_unmentioned_features() -> None:
    # room in 2 explanations, bed in 1, food and staff in none; "other" is outside the feature set
    counts = mention_counts(sets("room,bed", "room", "other"), frozenset({"room", "bed", "food", "staff"}))
    assert sorted(counts) == [0, 0, 1, 2]
    # G of [0, 0, 1, 2]: (2·3 − 5)·1 + (2·4 − 5)·2 = 7; 7 / (4 · 3) = 7/12
    assert gini(counts) == pytest.approx(7 / 12)
