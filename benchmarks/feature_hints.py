"""Feature hints and anti-repetition decoding on the bundled dataset, through the `pepler` commands a user runs.

    python benchmarks/feature_hints.py [--reuse-runs] [--reuse-predictions]

1. Prepare the bundled Amazon Musical Instruments reviews; train the demo's options (examples/configs/demo.yaml:
   smollm2-135m, the same 1,500 training pairs, epochs and seed) twice: without hints (today's PEPLER) and with
   ``--feature-hint predicted`` (each record's feature after the prompt; the learned predictor fitted at the end).
2. The model without hints explains the first 300 test pairs (beam search costs its beams' worth of greedy
   decoding on two cores) with each decoding: greedy (the paper's), ``--no-repeat-ngram 3``,
   ``--repetition-penalty 1.2``, beam search (4 beams), and diverse beam search (6 beams in 3 groups,
   ``--diversity-penalty 0.5``). The best anti-repetition decoding is chosen by BEST_RULE.
3. On the whole test part (904 pairs): the model without hints, the hinted model with the test record's feature
   (``given``: reads the test record, an upper bound) and with predicted features (``counts``, ``learned``), each
   greedy and with the chosen decoding; each predictor's hit rate against the test records' features.

Every row is scored with the paper's metrics plus grounding and diversity (``--metrics grounding,diversity``:
iFMR, Rep-3 …) and keeps 10 explanations beside their references (the same 10 test pairs in every row). Writes
results/feature-hints.json; work files go to benchmarks/.work/feature-hints/. About an hour on two CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

import yaml
from benchlib import cpu_model, pepler, shown

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SOURCE = REPO / "examples" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
CONFIG = REPO / "examples" / "configs" / "demo.yaml"
WORK = BENCH / ".work" / "feature-hints"
SAMPLES = 10
# Decodings of the model without hints: name -> `pepler generate` options.
DECODINGS: dict[str, list[object]] = {
    "greedy": [],
    "no-repeat-3": ["--no-repeat-ngram", 3],
    "repetition-penalty-1.2": ["--repetition-penalty", 1.2],
    "beam-4": ["--decoding", "beam", "--beams", 4],
    "diverse-beam-6x3": ["--decoding", "beam", "--beams", 6, "--beam-groups", 3, "--diversity-penalty", 0.5],
}
DECODING_PAIRS = 300  # the first test pairs every decoding explains
# Rows on the whole test part: name -> (run, `pepler generate` hint options).
HINTS: dict[str, list[object]] = {
    "none": [],
    "given": ["--feature-hint", "given"],
    "predicted (counts)": ["--feature-hint", "predicted", "--feature-predictor", "counts"],
    "predicted (learned)": ["--feature-hint", "predicted", "--feature-predictor", "learned"],
}
KEPT = (
    "bleu_1", "bleu_4", "rouge_1_f", "rouge_2_f", "usr", "usn", "fmr", "fcr", "div", "ifmr", "feature_precision",
    "d_fhr", "uusr", "iusr", "distinct_1", "distinct_2", "entr_2", "repeat_3",
)  # fmt: skip
BLEU_1_SLACK = 0.5  # best_decoding: how much BLEU-1 a decoding may give up against greedy
BEST_RULE = (
    f"among the decodings that give up at most {BLEU_1_SLACK} BLEU-1 against greedy and repeat no more 3-grams "
    "(Rep-3), the highest USR, then the lowest Rep-3; greedy when none qualifies"
)


def prepare_and_train(seconds: dict[str, float], reuse: bool) -> tuple[Path, dict[str, Path]]:
    data = WORK / "data"
    if not (reuse and (data / "manifest.yaml").is_file()):
        seconds["prepare"] = pepler(
            "prepare", SOURCE, "--name", "amazon-musical-instruments", "--out", data, "--overwrite"
        )
    runs = {mode: WORK / "runs" / mode for mode in ("none", "predicted")}
    for mode, run in runs.items():
        if not (reuse and (run / "manifest.yaml").is_file()):
            seconds[f"train {mode}"] = pepler(
                "train",
                "--config",
                CONFIG,
                "--data",
                data,
                "--out",
                run,
                "--feature-hint",
                mode,
                "--overwrite",
            )
    return data, runs


def explain(
    name: str, run: Path, data: Path, options: list[object], seconds: dict[str, float], reuse: bool
) -> dict[str, Any]:
    """Generate (or, with ``reuse``, keep) and score one row; its scores, hit rate, start marks and samples."""
    predictions = WORK / f"{name}.jsonl".replace(" ", "-").replace("(", "").replace(")", "")
    if not (reuse and predictions.with_suffix(".meta.yaml").is_file()):
        seconds[f"generate {name}"] = pepler("generate", run, "--out", predictions, "--overwrite", *options)
    scores_file = predictions.with_suffix(".scores.yaml")
    pepler(
        "score", predictions, "--data", data, "--metrics", "grounding,diversity", "--out", scores_file,
        "--no-record",
    )  # fmt: skip
    scores = yaml.safe_load(scores_file.read_text(encoding="utf-8"))["scores"]
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    step = max(len(rows) // SAMPLES, 1)
    row: dict[str, Any] = {
        "options": [str(o) for o in options],
        "predictions": shown(predictions),
        "pairs": len(rows),
        "scores": {key: scores[key] for key in KEPT if key in scores},
        "starting_with_dash_or_underscore": sum(r["generated"][:1] in "-_" for r in rows if r["generated"]),
        "samples": [
            {k: r[k] for k in ("item", "feature", "hint", "reference", "generated") if k in r}
            for r in rows[::step]
        ][:SAMPLES],
    }
    if rows and "hint" in rows[0]:
        row["hint_hit_rate"] = sum(r["hint"] == r["feature"] for r in rows) / len(rows)
    return row


def best_decoding(rows: dict[str, dict[str, Any]]) -> str:
    """The anti-repetition decoding the hinted rows use (BEST_RULE)."""
    greedy = rows["greedy"]["scores"]
    eligible = [
        name
        for name, row in rows.items()
        if name != "greedy"
        and row["scores"]["bleu_1"] >= greedy["bleu_1"] - BLEU_1_SLACK
        and row["scores"]["repeat_3"] <= greedy["repeat_3"]
    ]
    if not eligible:
        return "greedy"
    return max(eligible, key=lambda n: (rows[n]["scores"]["usr"], -rows[n]["scores"]["repeat_3"]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse-runs", action="store_true", help="keep the prepared data and trained runs")
    parser.add_argument("--reuse-predictions", action="store_true", help="keep predictions already generated")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    data, runs = prepare_and_train(seconds, args.reuse_runs)
    reuse = args.reuse_predictions
    limit = ["--limit", DECODING_PAIRS]
    decodings = {
        name: explain(f"decoding-{name}", runs["none"], data, [*limit, *options], seconds, reuse)
        for name, options in DECODINGS.items()
    }
    chosen = best_decoding(decodings)
    rows: dict[str, dict[str, Any]] = {}
    for hint, options in HINTS.items():
        run = runs["none" if hint == "none" else "predicted"]
        rows[f"{hint}, greedy"] = explain(f"{hint}-greedy", run, data, options, seconds, reuse)
        if chosen != "greedy":
            rows[f"{hint}, {chosen}"] = explain(
                f"{hint}-{chosen}", run, data, [*options, *DECODINGS[chosen]], seconds, reuse
            )
    manifest = yaml.safe_load((runs["predicted"] / "manifest.yaml").read_text(encoding="utf-8"))
    result = {
        "what": "feature hints and anti-repetition decoding on the bundled dataset (benchmarks/feature_hints.py)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "python": platform.python_version()},
        "config": shown(CONFIG),
        "dataset": yaml.safe_load((data / "manifest.yaml").read_text(encoding="utf-8")).get("counts"),
        "training": {
            mode: {
                "train_examples": yaml.safe_load((run / "manifest.yaml").read_text(encoding="utf-8"))[
                    "dataset"
                ]["train_examples"],
                "explanation_start": yaml.safe_load((run / "manifest.yaml").read_text(encoding="utf-8"))[
                    "model"
                ]["explanation_start"],
            }
            for mode, run in runs.items()
        },
        "learned_predictor_validation_hit_rate": (manifest.get("feature_scorer") or {}).get(
            "validation_hit_rate"
        ),
        "decodings_without_hints": {"pairs": DECODING_PAIRS, "rows": decodings},
        "best_decoding": {"name": chosen, "rule": BEST_RULE},
        "rows": rows,
        "seconds": seconds,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "feature-hints.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {shown(out)}")


if __name__ == "__main__":
    main()
