"""Beyond the paper, on the bundled dataset: who gets good explanations, does the model use the user and the
item, and what new users and items get. Everything runs through the `pepler` commands a user runs.

    python benchmarks/beyond_paper.py [--demo demo] [--parts report probe cold-start] [--reuse-runs]

1. The demo's model (``bash examples/demo.sh`` made DEMO/): its test predictions scored with every metric
   (``--metrics all,fluency``) and by user activity, item popularity and rating (``--by``).
2. ``pepler probe`` on the demo's model: the user vectors, then the item vectors, permuted.
3. Cold start: the bundled reviews prepared with ``--cold-start 2`` (a split of cold users, one of cold items,
   each with 0, 1 or 2 training records); the demo's training options on each; its test part (all cold)
   explained with each ``--cold-start`` choice and its validation part (warm) as is. K = 0 is the group of
   cold pairs with no training record (``--by user-activity`` / ``item-popularity``), K ≤ 2 all cold pairs;
   ``error`` can only explain the cold ones it has a vector for (``--unknown skip``: 1 or 2 records).

Writes results/beyond-paper.json (1 and 2) and results/cold-start.json (3): the numbers and a few
explanations per condition; the work files (predictions, scores files, runs) go to benchmarks/.work/beyond-paper/.
About 45 minutes on two CPU cores, two trainings of about 10 minutes each (``--reuse-runs`` keeps trained ones).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

import yaml
from benchlib import cpu_model, pepler, shown

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SOURCE = REPO / "examples" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
CONFIG = REPO / "examples" / "configs" / "demo.yaml"
WORK = BENCH / ".work" / "beyond-paper"
MAX_COLD_RECORDS = 2
CHOICES = ("error", "mean", "neighbours", "features")
COLD_SPLITS = {6: ("user", "user-activity"), 7: ("item", "item-popularity")}
SAMPLES = 4
PARTS = ("report", "probe", "cold-start")
# What the summary keeps of each scores file (all are in the scores files under WORK).
KEPT = (
    "bleu_1", "bleu_4", "rouge_1_f", "usr", "fmr", "fcr", "div", "ifmr", "fmr_phrase", "feature_precision",
    "feature_recall", "d_fhr", "c_fhr", "uusr", "iusr", "distinct_1", "distinct_2", "entr_2", "pop_top10_share",
    "pop_top10_share_reference", "gini", "gini_reference", "embedding_cosine", "bertscore_f1", "perplexity",
)  # fmt: skip


def kept(scores: dict[str, Any]) -> dict[str, float]:
    return {key: scores[key] for key in KEPT if key in scores}


def read_scores(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def samples(predictions: Path, count: int = SAMPLES, cold_only: bool = False) -> list[dict[str, Any]]:
    """The first few explanations beside their references (cold pairs only, when asked)."""
    chosen = []
    for line in predictions.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if cold_only and not record.get("cold"):
            continue
        chosen.append(
            {
                k: record[k]
                for k in ("user", "item", "feature", "reference", "generated", "cold")
                if k in record
            }
        )
        if len(chosen) == count:
            break
    return chosen


def groups(document: dict[str, Any], by: str) -> dict[str, Any]:
    """A grouping's groups (label, n, the kept metrics) and its gaps."""
    grouping = document["groups"][by]
    return {
        "groups": [
            {"label": g["label"], "n": g["n"], "scores": kept(g["scores"])} for g in grouping["groups"]
        ],
        "gaps": {key: gap for key, gap in grouping["gaps"].items() if key in KEPT},
    }


def demo_report(demo: Path, seconds: dict[str, float]) -> dict[str, Any]:
    out = WORK / "demo.scores.yaml"
    seconds["score demo"] = pepler(
        "score", demo / "preds.jsonl", "--data", demo / "data", "--metrics", "all,fluency",
        "--by", "user-activity", "--by", "item-popularity", "--by", "rating", "--out", out, "--no-record",
    )  # fmt: skip
    document = read_scores(out)
    return {
        "scores": kept(document["scores"]),
        "models": document.get("models"),
        "by": {by: groups(document, by) for by in ("user-activity", "item-popularity", "rating")},
    }


def demo_probe(demo: Path, seconds: dict[str, float]) -> dict[str, Any]:
    out = WORK / "probe.json"
    seconds["probe"] = pepler("probe", demo / "runs" / "pepler", "--out", out, "--overwrite")
    probe = json.loads(out.read_text(encoding="utf-8"))
    probe["run"] = shown(Path(probe["run"]))
    return probe


def cold_start(seconds: dict[str, float], reuse_runs: bool) -> dict[str, Any]:
    data = WORK / "data-cold"
    if reuse_runs and (data / "manifest.yaml").is_file():
        return _cold_runs(data, seconds, reuse_runs)
    seconds["prepare --cold-start"] = pepler(
        "prepare", SOURCE, "--name", "amazon-musical-instruments", "--cold-start", MAX_COLD_RECORDS,
        "--out", data, "--overwrite",
    )  # fmt: skip
    return _cold_runs(data, seconds, reuse_runs)


def _cold_runs(data: Path, seconds: dict[str, float], reuse_runs: bool) -> dict[str, Any]:
    manifest = yaml.safe_load((data / "manifest.yaml").read_text(encoding="utf-8"))
    results: dict[str, Any] = {"splits": manifest["splits"].get("cold_start")}
    for split, (kind, by) in COLD_SPLITS.items():
        run = WORK / "runs" / f"cold-{kind}"
        if not (reuse_runs and (run / "manifest.yaml").is_file()):
            seconds[f"train split {split}"] = pepler(
                "train", "--config", CONFIG, "--data", data, "--split", split, "--out", run, "--overwrite"
            )
        results[kind] = {"warm": _explain_and_score(run, data, split, "validation", "warm", by, seconds)}
        for choice in CHOICES:
            results[kind][choice] = _explain_and_score(run, data, split, "test", choice, by, seconds)
    return results


def _explain_and_score(
    run: Path, data: Path, split: int, part: str, choice: str, by: str, seconds: dict[str, float]
) -> dict[str, Any]:
    name = f"{run.name}-{part}-{choice}"
    predictions = WORK / f"{name}.jsonl"
    options = ["--unknown", "skip"] if choice in ("error", "warm") else ["--cold-start", choice]
    seconds[f"generate {name}"] = pepler(
        "generate", run, "--split", part, "--out", predictions, "--overwrite", *options
    )
    scores_file = WORK / f"{name}.scores.yaml"
    seconds[f"score {name}"] = pepler(
        "score", predictions, "--data", data, "--metrics", "grounding,phrase,diversity,meaning",
        "--by", by, "--out", scores_file, "--no-record",
    )  # fmt: skip
    document = read_scores(scores_file)
    meta = yaml.safe_load(predictions.with_suffix(".meta.yaml").read_text(encoding="utf-8"))
    return {
        "pairs": document["n"],
        "skipped": meta["predictions"].get("skipped_unknown", 0),
        "scores": kept(document["scores"]),
        "by_training_records": groups(document, by),
        # cold pairs against warm ones (a warm part holds users or items with at most K training records too)
        "cold_vs_warm": groups(document, "cold-start")
        if "cold-start" in document.get("groups", {})
        else None,
        "samples": samples(predictions, cold_only=part == "test"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo", type=Path, default=REPO / "demo", help="what `bash examples/demo.sh` wrote")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--reuse-runs", action="store_true", help="keep cold-start data and runs already trained"
    )
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if {"report", "probe"} & set(args.parts) and not (args.demo / "preds.jsonl").is_file():
        sys.exit(f"{args.demo}: no preds.jsonl; run `bash examples/demo.sh` first")
    WORK.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    if {"report", "probe"} & set(args.parts):
        seconds: dict[str, float] = {}
        result = _header("the demo's model: scores by group and the probe", args.demo)
        if "report" in args.parts:
            result["report"] = demo_report(args.demo, seconds)
        if "probe" in args.parts:
            result["probe"] = demo_probe(args.demo, seconds)
        _write(args.results / "beyond-paper.json", {**result, "seconds": seconds})
    if "cold-start" in args.parts:
        seconds = {}
        result = _header("warm and cold users and items for each --cold-start choice", None)
        result["cold_start"] = cold_start(seconds, args.reuse_runs)
        _write(args.results / "cold-start.json", {**result, "seconds": seconds})


def _header(what: str, demo: Path | None) -> dict[str, Any]:
    return {
        "what": f"pepler beyond the paper on the bundled dataset: {what} (benchmarks/beyond_paper.py)",
        "date": dt.date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "python": platform.python_version()},
        **({"demo": shown(demo)} if demo is not None else {}),
    }


def _write(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
