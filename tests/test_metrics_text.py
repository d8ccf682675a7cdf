"""BLEU and ROUGE on hand-computed examples, including the empty-text rules of EVALUATION.md."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from pepler_cli.evaluation.metrics.text import bleu_statistics, corpus_bleu, rouge_scores
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.predictions import Prediction


def split(*texts: str) -> list[list[str]]:
    return [text.split() for text in texts]


# --- BLEU ---------------------------------------------------------------------------------------------


def test_bleu_one_pair() -> None:
    # ref: the room is clean / hyp: the room was clean
    # unigrams: the, room, clean match -> 3/4; bigrams: "the room" only -> 1/3; trigrams: none -> 0/2
    refs, hyps = split("the room is clean"), split("the room was clean")
    assert corpus_bleu(refs, hyps, 1) == pytest.approx(3 / 4)  # c = r = 4, no brevity penalty
    assert corpus_bleu(refs, hyps, 4) == 0.0  # a zero precision makes BLEU-4 zero (no smoothing)


def test_bleu_sums_counts_over_the_corpus() -> None:
    # pair 1: ref a b c d e / hyp a b c d -> matches 4/4, 3/3, 2/2, 1/1
    # pair 2: ref x y / hyp x z y         -> matches 2/3, 0/2, 0/1, 0/0
    # corpus: 6/7, 3/5, 2/3, 1/1; lengths c = 7, r = 7 -> no penalty
    # BLEU-4 = (6/7 * 3/5 * 2/3 * 1) ** (1/4) = (12/35) ** 0.25; BLEU-1 = 6/7
    refs, hyps = split("a b c d e", "x y"), split("a b c d", "x z y")
    stats = bleu_statistics(refs, hyps, 4)
    assert stats.matches == (6, 3, 2, 1)
    assert stats.possible == (7, 5, 3, 1)
    assert stats.bleu(1) == pytest.approx(6 / 7)
    assert stats.bleu(4) == pytest.approx((12 / 35) ** 0.25)


def test_bleu_clips_repeated_words() -> None:
    # hyp "the the the" against ref "the room": "the" counts at most once -> 1/3; c = 3 >= r = 2
    assert corpus_bleu(split("the room"), split("the the the"), 1) == pytest.approx(1 / 3)


def test_bleu_brevity_penalty_uses_total_lengths() -> None:
    # ref a b c d e f (r = 6) / hyp a b c (c = 3): precision 1, penalty exp(1 - 6/3) = exp(-1)
    assert corpus_bleu(split("a b c d e f"), split("a b c"), 1) == pytest.approx(math.exp(-1))


def test_bleu_is_zero_for_all_empty_hypotheses_or_references() -> None:
    # The paper's code divided by zero here; EVALUATION.md asks for 0.
    assert corpus_bleu([["a"], ["b"]], [[], []], 1) == 0.0
    assert corpus_bleu([[], []], [["a"], ["b"]], 1) == 0.0
    assert corpus_bleu([[]], [[]], 4) == 0.0


def test_bleu_4_is_zero_when_no_hypothesis_has_four_tokens() -> None:
    assert corpus_bleu(split("a b c"), split("a b c"), 4) == 0.0  # no 4-grams at all
    assert corpus_bleu(split("a b c"), split("a b c"), 3) == pytest.approx(1.0)


# --- ROUGE --------------------------------------------------------------------------------------------


def test_rouge_one_pair() -> None:
    # ref: the room is clean / hyp: the room was clean
    # ROUGE-1 sets share the, room, clean: P = R = 3/4, F = 2 * 9/16 / (3/2 + 1e-8)
    # ROUGE-2 sets share "the room":       P = R = 1/3, F = 2 * 1/9 / (2/3 + 1e-8)
    # ROUGE-L: LCS = the room clean = 3:   P = R = 3/4, beta = 1, F = 2 * 9/16 / (3/2) = 3/4
    scores = rouge_scores(split("the room is clean"), split("the room was clean"))
    assert scores["rouge_1_precision"] == pytest.approx(3 / 4)
    assert scores["rouge_1_recall"] == pytest.approx(3 / 4)
    assert scores["rouge_1_f"] == pytest.approx(2 * 9 / 16 / (3 / 2 + 1e-8), abs=1e-15)
    assert scores["rouge_2_precision"] == pytest.approx(1 / 3)
    assert scores["rouge_2_f"] == pytest.approx(2 * 1 / 9 / (2 / 3 + 1e-8), abs=1e-15)
    assert scores["rouge_l_precision"] == pytest.approx(3 / 4)
    assert scores["rouge_l_f"] == pytest.approx(3 / 4, abs=1e-15)


def test_rouge_n_counts_each_distinct_ngram_once() -> None:
    # ref "good good good" / hyp "good": as sets both are {good}, so P = R = 1 (clipped counts: R = 1/3)
    scores = rouge_scores(split("good good good"), split("good"))
    assert scores["rouge_1_recall"] == 1.0
    assert scores["rouge_1_precision"] == 1.0


def test_rouge_l_f_uses_beta_equal_p_over_r() -> None:
    # ref "good good good" / hyp "good": LCS = 1, P = 1/1, R = 1/3, beta = P/R = 3
    # F = (1 + 9) * 1 * 1/3 / (1/3 + 9 * 1) = (10/3) / (28/3) = 10/28 (the harmonic mean would be 1/2)
    scores = rouge_scores(split("good good good"), split("good"))
    assert scores["rouge_l_precision"] == 1.0
    assert scores["rouge_l_recall"] == pytest.approx(1 / 3)
    assert scores["rouge_l_f"] == pytest.approx(10 / 28)


def test_rouge_averages_per_pair_scores() -> None:
    # pair 1 identical: R1 P = 1; pair 2 disjoint: R1 P = 0 -> mean 1/2
    scores = rouge_scores(split("a b", "c d"), split("a b", "e f"))
    assert scores["rouge_1_precision"] == pytest.approx(0.5)
    assert scores["rouge_l_f"] == pytest.approx(0.5)


def test_perfect_match_rouge_f_is_99_9999995() -> None:
    # F = 2 * 1 * 1 / (1 + 1 + 1e-8) = 0.999999995 -> 99.9999995 after x100, as the paper's code gives.
    predictions = [Prediction("u", "i", "the room is clean", "the room is clean", "room")] * 2
    scores = score_predictions(predictions, {"room"}, None)
    assert scores["rouge_1_f"] == pytest.approx(99.9999995, abs=1e-9)
    assert scores["rouge_2_f"] == pytest.approx(99.9999995, abs=1e-9)
    assert scores["rouge_1_f"] != 100.0
    assert scores["rouge_l_f"] == pytest.approx(100.0, abs=1e-12)  # the beta formula has no 1e-8
    assert scores["bleu_4"] == pytest.approx(100.0)


def test_empty_generation_against_a_reference_scores_zero() -> None:
    # An empty text is one empty-string token, [""], which matches no word.
    scores = rouge_scores([["great"]], [[]])
    assert all(value == 0.0 for value in scores.values())


def test_two_empty_texts_match() -> None:
    # [""] against [""]: ROUGE-1 P = R = 1, F = 2 / (2 + 1e-8); no bigrams -> ROUGE-2 = 0;
    # LCS = 1 -> ROUGE-L P = R = F = 1.
    scores = rouge_scores([[]], [[]])
    assert scores["rouge_1_precision"] == 1.0
    assert scores["rouge_1_recall"] == 1.0
    assert scores["rouge_1_f"] == pytest.approx(2 / (2 + 1e-8), abs=1e-15)
    assert scores["rouge_2_precision"] == scores["rouge_2_recall"] == scores["rouge_2_f"] == 0.0
    assert scores["rouge_l_precision"] == scores["rouge_l_recall"] == scores["rouge_l_f"] == 1.0


def test_single_token_texts_have_no_bigrams() -> None:
    scores = rouge_scores([["clean"]], [["clean"]])
    assert scores["rouge_2_f"] == 0.0
    assert scores["rouge_1_precision"] == 1.0


# --- rouge-score itself -------------------------------------------------------------------------------


class _Unique:
    def tokenize(self, text: str) -> list[str]:
        return list(dict.fromkeys(text.split(" ")))


class _UniqueBigrams:
    def tokenize(self, text: str) -> list[str]:
        words = text.split(" ")
        return list(dict.fromkeys(f"{a} {b}" for a, b in itertools.pairwise(words)))


class _Spaces:
    def tokenize(self, text: str) -> list[str]:
        return text.split(" ")


def test_matches_rouge_score_public_api_configured_as_evaluation_md_says() -> None:
    # Our fast path calls rouge-score's scoring functions on our own tokens; it must give what its public
    # RougeScorer gives when configured exactly as EVALUATION.md describes, with F recomputed.
    from rouge_score.rouge_scorer import RougeScorer

    scorers = {
        "rouge_1": RougeScorer(["rouge1"], tokenizer=_Unique()),
        "rouge_2": RougeScorer(["rouge1"], tokenizer=_UniqueBigrams()),
        "rouge_l": RougeScorer(["rougeL"], tokenizer=_Spaces()),
    }
    rng = random.Random(7)
    words = ["a", "b", "c", "d", "the", "room", ","]
    refs = [[rng.choice(words) for _ in range(rng.randint(0, 9))] for _ in range(300)]
    hyps = [[rng.choice(words) for _ in range(rng.randint(0, 9))] for _ in range(300)]
    ours = rouge_scores(refs, hyps)
    for name, scorer in scorers.items():
        precision = recall = 0.0
        for ref, hyp in zip(refs, hyps):
            (score,) = scorer.score(" ".join(ref), " ".join(hyp)).values()
            precision += score.precision
            recall += score.recall
        assert ours[f"{name}_precision"] == pytest.approx(precision / 300, abs=1e-12)
        assert ours[f"{name}_recall"] == pytest.approx(recall / 300, abs=1e-12)


def test_rouge_score_own_f_lacks_the_paper_epsilon() -> None:
    # Why F is recomputed: rouge-score's F for a perfect match is exactly 1, the paper's 0.999999995.
    from rouge_score.rouge_scorer import RougeScorer

    (score,) = RougeScorer(["rouge1"], tokenizer=_Spaces()).score("a b", "a b").values()
    assert score.fmeasure == 1.0
