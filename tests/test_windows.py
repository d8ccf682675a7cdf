"""Explanations keep their feature within the 20-token limit (real sentences of the bundled reviews)."""

from __future__ import annotations

import pytest

from pepler_cli.data.windows import fit_explanation

PICKGUARD = (
    "I wasn't too crazy about the pickguard with all the lettering on it, but finally figured out the lettering "
    "was just a sticker that could be easily removed."
)


@pytest.fixture(scope="module")
def count(tokenizer):
    return lambda text: len(tokenizer([text], add_special_tokens=False)["input_ids"][0])


@pytest.fixture(scope="module")
def cut(tokenizer):
    return lambda text: tokenizer.decode(tokenizer([text], add_special_tokens=False)["input_ids"][0][:20])


def test_a_sentence_that_fits_is_kept_whole(count, cut):
    sentence = "The cable looks cool and works well."
    assert fit_explanation(sentence, "cable", "cool", 20, count, cut) == sentence


def test_the_clause_that_holds_feature_and_opinion_is_chosen(count, cut):
    # Cut to its first 20 tokens, this sentence loses "sticker"; its "but" clause keeps it.
    fitted = fit_explanation(PICKGUARD, "sticker", "easily", 20, count, cut)
    assert fitted == "but finally figured out the lettering was just a sticker that could be easily removed."
    assert count(fitted) <= 20


def test_a_window_around_feature_and_opinion_when_no_clause_fits(count, cut):
    sentence = (
        "After trying many brands over the years for my acoustic guitars and my old electric I finally found "
        "that the tone of these strings is warm and bright at once"
    )
    fitted = fit_explanation(sentence, "tone", "warm", 20, count, cut)
    assert fitted is not None and "tone" in fitted and "warm" in fitted and count(fitted) <= 20
    assert fitted in sentence  # a run of the sentence's own words


def test_no_part_fits_when_feature_and_opinion_are_far_apart(count, cut):
    sentence = "Warm was my first word " + "and then something else entirely " * 6 + "about the tone."
    assert fit_explanation(sentence, "tone", "warm", 20, count, cut) is None


def test_prepared_raw_reviews_keep_their_features(tmp_path, tokenizer):
    from pathlib import Path

    from pepler_cli.data.prepared.reading import load_prepared
    from pepler_cli.data.prepared.writing import Truncation
    from pepler_cli.data.raw import prepare_raw

    sample = Path(__file__).parent / "fixtures" / "amazon-musical-instruments-sample.jsonl"
    result = prepare_raw(sample, tmp_path / "data", name="sample", truncation=Truncation(tokenizer))
    records = load_prepared(tmp_path / "data").records
    assert records and all(r.feature.lower() in r.text.lower() for r in records)
    assert "dropped_feature_beyond_limit" in result.manifest["counts"]


def test_a_long_sentence_whose_start_holds_the_feature_is_left_to_truncation(count, cut):
    assert fit_explanation(PICKGUARD, "pickguard", "crazy", 20, count, cut) == PICKGUARD


def test_the_window_is_placed_at_the_whole_feature_not_an_earlier_word_of_it(count, cut):
    # A real review sentence: the first "guitar" (of "guitar repair shop") is not the feature "guitar players".
    sentence = (
        "This was recommended by a guitar repair shop, and I have found it is a well rounded product that all "
        "guitar players should keep on hand."
    )
    # Feature and opinion are too far apart for one window: no text, rather than text without the feature.
    assert fit_explanation(sentence, "guitar players", "recommended", 20, count, cut) is None
    fitted = fit_explanation(sentence, "guitar players", "keep", 20, count, cut)
    assert fitted is not None and "guitar players" in fitted and count(fitted) <= 20
