"""Measure feature extraction THROUGH ``pepler prepare`` against SemEval-2014 Task 4 aspect terms.

    python benchmarks/extraction_semeval.py [--shared DIR] [--out benchmarks/results/extraction_semeval.json]

Every training sentence of a SemEval file becomes one raw review (JSON lines: a user and an item of its own,
rating 5, text = the sentence) and the file goes through ``pepler prepare``'s library call
(``pepler_cli.preparation.prepare``), exactly as a user's reviews would: the corpus pass runs over all the
sentences of the file, and whatever ``prepare`` drops (a sentence of fewer than 4 or more than 40 words, no
feature, no opinion, a feature beyond the 20-token limit) is dropped here too; the drop counts come from the
prepared manifest. Every kept record counts:

- a record kept from a sentence people left without aspect terms is wrong;
- a record's feature is right when its words are among the words of that sentence's aspect terms (both
  lower-cased and split by pepler's tokenizer), so "battery" is right where people marked "battery life";
- precision = right records / kept records; coverage = kept annotated sentences / annotated sentences;
  recall = right records / annotated sentences.

Scores are given for the first half of each file's sentences (document order; the half the extractor was tuned
on), the second half (held out) and the whole. When the bundled Amazon reviews are there, it also times
``extract_explanations`` over all of them and lists their most frequent features.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from pepler_cli.config import PrepareConfig
from pepler_cli.data.extraction import extract_explanations, tokenize
from pepler_cli.preparation import prepare

DOMAINS = {"restaurants": "Restaurants_Train.xml", "laptops": "Laptop_Train.xml"}
TARGET_PRECISION = {"restaurants": 0.85, "laptops": 0.72}
TARGET_COVERAGE = 0.55
PARTS = ("first_half", "second_half", "whole")
TOP_FEATURES = 30
SAMPLES = 15


@dataclass(frozen=True)
class Sentence:
    text: str
    terms: frozenset[str]  # lower-cased gold aspect terms


@dataclass(frozen=True)
class Kept:
    """A record ``prepare`` kept: the sentence it came from (by number), its feature and text."""

    sentence: int
    feature: str
    text: str


def load_sentences(path: Path) -> list[Sentence]:
    root = ET.parse(path).getroot()
    return [
        Sentence(
            text=node.findtext("text", default=""),
            terms=frozenset(t.get("term", "").lower() for t in node.iter("aspectTerm")),
        )
        for node in root.iter("sentence")
    ]


def term_words(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(word.lower() for term in terms for word in tokenize(term))


def is_right(feature: str, sentence: Sentence) -> bool:
    words = term_words(sentence.terms)
    return bool(words) and all(word in words for word in feature.split())


def run_prepare(sentences: list[Sentence], workdir: Path, name: str) -> tuple[list[Kept], dict[str, Any]]:
    """One raw review per sentence through ``prepare``; the records it kept and its manifest's counts."""
    source = workdir / f"{name}.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for number, sentence in enumerate(sentences):
            review = {"user": f"u{number}", "item": f"i{number}", "rating": 5, "text": sentence.text}
            handle.write(json.dumps(review) + "\n")
    config = PrepareConfig(
        source_or_dataset=str(source),
        name=name,
        out=workdir / name,
        user_field="user",
        item_field="item",
        rating_field="rating",
        text_field="text",
    )
    result = prepare(config)
    kept = []
    with (result.out / "records.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            kept.append(Kept(int(record["user"][1:]), record["feature"], record["text"]))
    return kept, dict(result.manifest["counts"])


def score(sentences: list[Sentence], kept: list[Kept], numbers: range) -> dict[str, float | int]:
    annotated = sum(1 for n in numbers if sentences[n].terms)
    mine = [k for k in kept if k.sentence in numbers]
    on_annotated = [k for k in mine if sentences[k.sentence].terms]
    right = sum(is_right(k.feature, sentences[k.sentence]) for k in on_annotated)
    precision = right / len(mine) if mine else 0.0
    recall = right / annotated if annotated else 0.0
    return {
        "sentences": len(numbers),
        "annotated_sentences": annotated,
        "kept_records": len(mine),
        "kept_annotated": len(on_annotated),
        "kept_unannotated": len(mine) - len(on_annotated),
        "right": right,
        "coverage": round(len(on_annotated) / annotated if annotated else 0.0, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
    }


def evaluate(sentences: list[Sentence], workdir: Path, name: str) -> dict[str, Any]:
    """Prepare the sentences as reviews and score the first half, second half and whole."""
    started = time.perf_counter()
    kept, counts = run_prepare(sentences, workdir, name)
    seconds = time.perf_counter() - started
    half = len(sentences) // 2
    parts = {
        "first_half": range(half),
        "second_half": range(half, len(sentences)),
        "whole": range(len(sentences)),
    }
    wrong = [k for k in kept if not is_right(k.feature, sentences[k.sentence]) and k.sentence >= half]
    return {
        **{part: score(sentences, kept, numbers) for part, numbers in parts.items()},
        "prepare": {**counts, "seconds": round(seconds, 2)},
        # For a person to judge: wrong choices on the held-out half, with the people's aspect terms.
        "wrong_samples_second_half": [
            {"feature": k.feature, "text": k.text, "aspect_terms": sorted(sentences[k.sentence].terms)}
            for k in wrong[:: max(1, len(wrong) // SAMPLES)][:SAMPLES]
        ],
    }


def default_shared() -> Path:
    return Path(os.environ.get("PEPLER_SHARED") or REPO.parent / "shared")


def time_amazon(path: Path) -> dict[str, Any]:
    """Wall time of ``extract_explanations`` (fit + extract) over the bundled Amazon reviews."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        texts = [json.loads(line).get("reviewText", "") for line in lines]
    started = time.perf_counter()
    found = extract_explanations(texts)
    seconds = time.perf_counter() - started
    explained = [e for e in found if e is not None]
    return {
        "reviews": len(texts),
        "with_explanation": len(explained),
        "distinct_features": len({e.feature for e in explained}),
        "negative": sum(e.sentiment < 0 for e in explained),
        "seconds": round(seconds, 2),
        "most_frequent_features": Counter(e.feature for e in explained).most_common(TOP_FEATURES),
    }


def meets_targets(domain: str, scores: dict[str, Any]) -> bool:
    return scores["precision"] >= TARGET_PRECISION[domain] and scores["coverage"] >= TARGET_COVERAGE


def _version() -> str:
    try:
        return metadata.version("pepler-cli")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=default_shared(), help="the shared/ directory")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/extraction_semeval.json")
    parser.add_argument("--skip-amazon", action="store_true", help="do not time the bundled Amazon reviews")
    args = parser.parse_args(argv)
    data_dir = args.shared / "data" / "semeval2014-absa"
    results: dict[str, Any] = {
        "note": "measured through pepler prepare: one raw review per SemEval-2014 training sentence, every "
        "kept record counts, a record kept from a sentence without aspect terms is wrong, a feature is right "
        "when its words are among the words of the sentence's aspect terms; the corpus pass runs over the "
        "whole file; the extractor was tuned on the first half (document order) only",
        "date": datetime.date.today().isoformat(),
        "pepler": _version(),
        "python": platform.python_version(),
        "data": {domain: f"semeval2014-absa/{filename}" for domain, filename in DOMAINS.items()},
        "targets": {"precision": TARGET_PRECISION, "coverage": TARGET_COVERAGE},
    }
    print(
        f"{'domain':<12} {'part':<12} {'sent':>5} {'annot':>5} {'kept':>5} {'cover':>6} {'prec':>6} {'rec':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for domain, filename in DOMAINS.items():
            found = evaluate(load_sentences(data_dir / filename), Path(tmp), f"semeval-{domain}")
            found["meets_targets"] = {part: meets_targets(domain, found[part]) for part in PARTS}
            results[domain] = found
            for part in PARTS:
                s = found[part]
                print(
                    f"{domain:<12} {part:<12} {s['sentences']:>5} {s['annotated_sentences']:>5} "
                    f"{s['kept_records']:>5} {s['coverage']:>6.3f} {s['precision']:>6.3f} {s['recall']:>6.3f}"
                )
            drops = {k: v for k, v in found["prepare"].items() if k.startswith("dropped_") and v}
            print(f"{domain:<12} prepare dropped: {drops}")
    amazon = args.shared / "data" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
    if not args.skip_amazon and amazon.exists():
        results["amazon_musical_instruments"] = timing = time_amazon(amazon)
        print(
            f"amazon: {timing['with_explanation']}/{timing['reviews']} reviews explained, "
            f"{timing['distinct_features']} features, {timing['seconds']:.1f} s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
