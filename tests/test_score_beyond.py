"""`pepler score --metrics` and `--by` on a hand-built dataset: every value below is worked out by hand.

Training part of split 1 (records 0–3):
    u1 i1 "patch cable" · u1 i2 "strap" · u2 i1 "cable" · u3 i2 "strap"
so item i1 had {patch cable, cable}, item i2 had {strap}; feature counts strap 2, patch cable 1, cable 1;
user counts u1 2, u2 1, u3 1. The feature set is {cable, patch cable, sound, strap}.

Predictions (generated; reference; the record's feature):
    p1 u1 i1 "the patch cable is great"; "great patch cable"; patch cable
    p2 u2 i2 "the cable is great";       "the strap is weak"; strap
    p3 u3 i1 "the patch cable is great"; "good sound overall"; sound
Phrase-aware mentions: p1 {patch cable}, p2 {cable}, p3 {patch cable}; in the references {patch cable}, {strap}, {sound}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pepler_cli.cli.compare import compare_command
from pepler_cli.cli.score import score_command
from pepler_cli.data.prepared.records import Record
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.evaluation.breakdown import quantile_labels
from pepler_cli.evaluation.catalogue import select_beyond
from pepler_cli.predictions import Prediction, write_predictions

app = typer.Typer()
app.command("score")(score_command)
app.command("compare")(compare_command)
runner = CliRunner()

RECORDS = [
    Record("u1", "i1", 5.0, "the patch cable is solid", "patch cable", sentiment=1),
    Record("u1", "i2", 4.0, "the strap is comfortable", "strap", sentiment=1),
    Record("u2", "i1", 3.0, "the cable hums", "cable", sentiment=-1),
    Record("u3", "i2", 2.0, "strap broke", "strap", sentiment=-1),
    Record("u2", "i2", 4.0, "nice strap", "strap", sentiment=1),
    Record("u1", "i1", 5.0, "great patch cable", "patch cable", sentiment=1),
    Record("u2", "i2", 2.0, "the strap is weak", "strap", sentiment=-1),
    Record("u3", "i1", 4.0, "good sound overall", "sound", sentiment=1),
]
PREDICTIONS = [
    Prediction("u1", "i1", "great patch cable", "the patch cable is great", "patch cable", 5.0),
    Prediction("u2", "i2", "the strap is weak", "the cable is great", "strap", 2.0),
    Prediction("u3", "i1", "good sound overall", "the patch cable is great", "sound", 4.0),
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    splits = {1: ([0, 1, 2, 3], [4], [5, 6, 7])}
    write_prepared(data, RECORDS, splits, name="tiny", source={}, splits_info={"count": 1})
    return data


@pytest.fixture
def preds(tmp_path: Path) -> Path:
    path = tmp_path / "preds.jsonl"
    write_predictions(path, PREDICTIONS)
    return path


def _score(preds: Path, dataset: Path, *options: str) -> dict:
    args = ["score", str(preds), "--data", str(dataset), "--split-number", "1", "--json", *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_model_free_metric_matches_the_hand_computation(preds: Path, dataset: Path) -> None:
    scores = _score(preds, dataset, "--metrics", "grounding,phrase,diversity,bias")
    expected = {
        "ifmr": 2 / 3,  # p1 and p3 name a feature i1 had; p2 names cable, which i2 never had
        "feature_precision": 1 / 3,  # one of the three mentions is its record's reference feature (p1)
        "feature_recall": 1 / 3,  # reference features {patch cable}, {strap}, {sound}: one found
        "d_fhr": 1 / 3,  # p2 alone mentions a feature its item never had
        "c_fhr": 1 / 3,  # one of three mentions
        "fmr_phrase": 1 / 3,  # p1 names its "patch cable"; the paper's FMR (single tokens) cannot: 0
        "fcr_phrase": 2 / 4,  # cable and patch cable of four features
        "div_phrase": 1 / 3,  # only the pair (p1, p3) shares a feature, of three pairs
        "iusr": 1 / 2,  # i1 has two explanations, both the same; i2 has one (not counted); users have one
        "distinct_1": 5 / 14,  # the, patch, cable, is, great of 5 + 4 + 5 tokens
        "distinct_2": 5 / 11,  # of 4 + 3 + 4 bigrams, five distinct
        # bigram counts: "the patch" 2, "patch cable" 2, "cable is" 3, "is great" 3, "the cable" 1
        "entr_2": -(
            2 * (2 / 11) * math.log(2 / 11) + 2 * (3 / 11) * math.log(3 / 11) + (1 / 11) * math.log(1 / 11)
        ),
        "pop_top10_share": 0.0,  # the top 10% of 3 trained features is 1: strap, which no explanation names
        "pop_top10_share_reference": 1 / 3,  # the references name patch cable, strap and sound
        # counts over the feature set sorted: [0, 0, 1, 2]; Σ(2i − 5)x = 1·1 + 3·2 = 7; 7 / (4 · 3)
        "gini": 7 / 12,
        "gini_reference": 3 / 12,  # [0, 1, 1, 1]: −1·1 + 1·1 + 3·1 = 3; 3 / (4 · 3)
    }
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value), key
    assert "uusr" not in scores  # no user has two explanations: undefined, left out
    assert scores["fmr"] == 0.0  # the paper's metric is unchanged


def test_paper_is_the_default_and_adds_nothing(preds: Path, dataset: Path) -> None:
    scores = _score(preds, dataset)
    assert "ifmr" not in scores and "distinct_1" not in scores
    assert scores["n"] == 3


def test_all_names_every_family_but_fluency() -> None:
    keys = {metric.key for metric in select_beyond("all")}
    assert {"ifmr", "fmr_phrase", "entr_2", "gini", "embedding_cosine", "bertscore_f1"} <= keys
    assert "perplexity" not in keys
    assert [m.key for m in select_beyond("paper,distinct-2,fluency")] == ["distinct_2", "perplexity"]


def test_an_unknown_metric_is_one_line_and_exit_2(preds: Path, dataset: Path) -> None:
    result = runner.invoke(app, ["score", str(preds), "--data", str(dataset), "--metrics", "bleu_9"])
    assert result.exit_code == 2
    assert "unknown metric 'bleu_9'" in result.output and "Traceback" not in result.output
    assert not (preds.parent / "preds.scores.yaml").exists()


def test_training_metrics_are_skipped_with_a_note_without_the_split(preds: Path, dataset: Path) -> None:
    result = runner.invoke(
        app, ["score", str(preds), "--data", str(dataset), "--metrics", "grounding", "--json"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert "ifmr" not in scores and scores["feature_precision"] == pytest.approx(1 / 3)
    assert "ifmr, d_fhr, c_fhr skipped" in result.stderr


def test_by_user_activity_scores_each_group_and_the_gap(preds: Path, dataset: Path) -> None:
    scores = _score(preds, dataset, "--metrics", "phrase", "--by", "user-activity")
    grouping = scores["groups"]["user-activity"]
    # user training counts of p1, p2, p3: 2, 1, 1 → buckets {1} (p2, p3) and {2} (p1)
    assert [(g["label"], g["n"]) for g in grouping["groups"]] == [
        ("training records: 1", 2),
        ("training records: 2", 1),
    ]
    assert grouping["groups"][0]["scores"]["fmr_phrase"] == 0.0
    assert grouping["groups"][1]["scores"]["fmr_phrase"] == 1.0
    assert grouping["gaps"]["fmr_phrase"] == {
        "best": "training records: 2",
        "worst": "training records: 1",
        "gap": 1.0,
    }
    # FCR counts over the corpus: a group of 1 and a group of 2 cannot be ranked on it (no gap, still shown)
    assert "fcr_phrase" not in grouping["gaps"] and "usr" not in grouping["gaps"]
    assert "fcr_phrase" in grouping["groups"][0]["scores"]
    written = yaml.safe_load((preds.parent / "preds.scores.yaml").read_text(encoding="utf-8"))
    assert written["groups"]["user-activity"] == grouping
    assert written["metrics"] == "phrase" and written["training_split"] == 1


def test_by_rating_and_sentiment(preds: Path, dataset: Path) -> None:
    scores = _score(preds, dataset, "--by", "rating", "--by", "sentiment")
    ratings = [(g["label"], g["n"]) for g in scores["groups"]["rating"]["groups"]]
    assert ratings == [("rating 2", 1), ("rating 4", 1), ("rating 5", 1)]
    sentiments = [(g["label"], g["n"]) for g in scores["groups"]["sentiment"]["groups"]]
    assert sentiments == [("sentiment -1", 1), ("sentiment +1", 2)]


def test_the_table_shows_the_groups(preds: Path, dataset: Path) -> None:
    args = ["score", str(preds), "--data", str(dataset), "--split-number", "1", "--by", "item-popularity"]
    result = runner.invoke(app, [*args, "--metrics", "grounding"])
    assert result.exit_code == 0, result.output
    assert "Beyond the paper" in result.stdout and "By item-popularity" in result.stdout
    assert "iFMR" in result.stdout and "gap" in result.stdout


def test_compare_by_shows_one_row_per_group(preds: Path, dataset: Path) -> None:
    _score(preds, dataset, "--by", "user-activity")
    scores_file = preds.parent / "preds.scores.yaml"
    result = runner.invoke(app, ["compare", str(scores_file), "--by", "user-activity", "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3  # header + two groups
    assert "training records: 1 (n = 2)" in result.stdout
    missing = runner.invoke(app, ["compare", str(scores_file), "--by", "rating"])
    assert (
        missing.exit_code != 0 and "score the predictions with `pepler score … --by rating`" in missing.output
    )


def test_quantile_labels_keep_equal_values_together() -> None:
    # 8 values, 4 buckets of 2: 0,0 | 1,1 | 2,3 | 9,9 ; a run of equal values never splits.
    assert quantile_labels([0, 0, 1, 1, 2, 3, 9, 9], "n") == [
        "n: 0", "n: 0", "n: 1", "n: 1", "n: 2–3", "n: 2–3", "n: 9", "n: 9"
    ]  # fmt: skip
    assert quantile_labels([5, 5, 5], "n") == ["n: 5"] * 3


def test_meaning_records_the_model_it_used(preds: Path, dataset: Path) -> None:
    from pepler_cli.evaluation.metrics.meaning import MEANING_INSTALL, find_embedding_model

    if find_embedding_model() is None:
        pytest.skip(f"the sentence-embedding model is not installed ({MEANING_INSTALL})")
    scores = _score(preds, dataset, "--metrics", "meaning", "--device", "cpu")
    assert 0 < scores["embedding_cosine"] < 1 and 0 < scores["bertscore_f1"] < 1
    written = yaml.safe_load((preds.parent / "preds.scores.yaml").read_text(encoding="utf-8"))
    assert written["models"]["meaning"]["sha256"].startswith("53aa5117")


def test_a_missing_model_is_one_note_and_the_rest_is_scored(
    preds: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pepler_cli.evaluation.metrics import fluency, meaning

    monkeypatch.setattr(meaning, "find_embedding_model", lambda: None)
    monkeypatch.setattr(fluency, "find_fluency_model", lambda: None)
    args = ["score", str(preds), "--data", str(dataset), "--metrics", "all,fluency", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert "embedding_cosine" not in scores and "perplexity" not in scores and "distinct_2" in scores
    assert "embedding_cosine, bertscore_f1 skipped" in result.stderr and "perplexity skipped" in result.stderr


def test_fluency_scores_each_explanation_as_a_document_of_its_own() -> None:
    from pepler_cli.evaluation.metrics.fluency import start_token_of

    class Vocabulary:  # SmolLM2's: <|endoftext|> is id 0 and also its unknown token
        unk_token_id = 0
        bos_token_id = 1
        eos_token_id = 2
        pad_token_id = None

        def __init__(self, vocabulary: dict[str, int]) -> None:
            self.vocabulary = vocabulary

        def get_vocab(self) -> dict[str, int]:
            return self.vocabulary

    assert start_token_of(Vocabulary({"<|endoftext|>": 0, "<|im_start|>": 1})) == 0
    assert start_token_of(Vocabulary({"<s>": 1})) == 1  # no end-of-text token: the tokenizer's <bos>


def test_compare_all_metrics_shows_the_ones_the_rows_have(preds: Path, dataset: Path) -> None:
    _score(preds, dataset, "--metrics", "grounding")
    scores_file = preds.parent / "preds.scores.yaml"
    result = runner.invoke(app, ["compare", str(scores_file), "--all-metrics", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert "iFMR" in header and "D-FHR" in header and "Dist-2" not in header  # only what was scored
    paper_only = runner.invoke(app, ["compare", str(scores_file), "--format", "csv"])
    assert "iFMR" not in paper_only.stdout
