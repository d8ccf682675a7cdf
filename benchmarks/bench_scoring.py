"""Benchmark 2, scoring: ``pepler score`` on 32,000 pairs vs the paper's DIV pair loop and USR list scan.

    python benchmarks/bench_scoring.py [--quick] [--pairs 32000]

Inputs: 32,000 predictions drawn (seeded) from the bundled Amazon dataset, prepared on the fly: references,
features and ratings from its records; "generated" texts drawn from a pool of 4,000 of its explanation
sentences with Zipf-like frequencies, so they repeat as generated explanations do (USR about 0.1, the
paper's range is 0.06-0.29); predicted ratings are the ratings plus seeded noise.

Three measurements, all on the same predictions and feature set:

1. The two loops the issue names: pepler's linear-time USR (a set of token tuples) and DIV (feature counts,
   sum of C(n_f, 2)) against the authors' ``unique_sentence_percent`` (a scan of the list of sentences seen
   so far) and ``feature_diversity`` (the loop over all N(N-1)/2 pairs of feature sets), written below from
   their description, on the same token lists and feature sets (the two loops are timed inside each run of
   the paper-side evaluation of 2.).
2. The whole evaluation in this process: ``pepler_cli.evaluation.scoring.score_predictions`` against the
   same evaluation with those two loops in place of pepler's (BLEU, ROUGE, FMR, FCR and RMSE/MAE share
   pepler's code, so this ratio is bounded by their cost).
3. ``pepler score preds.jsonl --data DIR --json`` end to end in a subprocess (start-up, imports, reading
   the file, scoring, writing the YAML), against the 10-second budget.

Every number must be identical (==) between pepler and the baseline, and the CLI's JSON must equal the
library's; the benchmark fails otherwise.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

import benchlib as bl

from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.evaluation.metrics import explainability, rating, text
from pepler_cli.evaluation.metrics.tokens import normalize
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.predictions import Prediction, write_predictions

TARGET_SPEEDUP = 100.0
TARGET_SECONDS = 10.0
POOL = 4000  # distinct "generated" sentences
ZIPF = 1.1  # frequency of the k-th most common generated sentence ∝ 1 / k**ZIPF


# ---- the paper's evaluation, as the authors wrote it ----------------------------------------------------


def paper_unique_sentence_percent(sequences: Sequence[list[str]]) -> tuple[float, int]:
    """USR by scanning the list of distinct sentences found so far, for every sentence."""
    unique: list[list[str]] = []
    for sequence in sequences:
        count = 0
        for seen in unique:
            if sequence == seen:
                count += 1
                break
        if count == 0:
            unique.append(sequence)
    return len(unique) / len(sequences), len(unique)


def paper_feature_detect(sequences: Sequence[list[str]], feature_set: AbstractSet[str]) -> list[set[str]]:
    found = []
    for tokens in sequences:
        features = []
        for token in tokens:
            if token in feature_set:
                features.append(token)
        found.append(set(features))
    return found


def paper_feature_diversity(feature_sets: Sequence[set[str]]) -> float:
    """DIV by the loop over every unordered pair of explanations."""
    n = len(feature_sets)
    total = 0
    for i, x in enumerate(feature_sets):
        for j in range(i + 1, n):
            y = feature_sets[j]
            total += len(x & y)
    return total / (n * (n - 1) / 2)


def paper_feature_matching_ratio(feature_sets: Sequence[set[str]], true_features: Sequence[str]) -> float:
    count = 0
    for found, feature in zip(feature_sets, true_features):
        if feature in found:
            count += 1
    return count / len(feature_sets)


def paper_feature_coverage_ratio(feature_sets: Sequence[set[str]], feature_set: AbstractSet[str]) -> float:
    covered: set[str] = set()
    for found in feature_sets:
        covered = covered | found
    return len(covered) / len(feature_set)


def paper_evaluation(
    predictions: Sequence[Prediction],
    feature_set: AbstractSet[str],
    rating_range: tuple[float, float] | None,
    timings: dict[str, float],
) -> dict[str, float]:
    """Every metric of ``pepler score`` with the authors' USR and DIV loops; text and rating metrics reuse
    pepler's functions (the issue is about the two loops)."""
    started = time.perf_counter()
    references = [normalize(p.reference) for p in predictions]
    generated = [normalize(p.generated) for p in predictions]
    bleu = text.bleu_statistics(references, generated, max_order=4)
    text_scores = {"bleu_1": bleu.bleu(1), "bleu_4": bleu.bleu(4), **text.rouge_scores(references, generated)}
    scores: dict[str, float] = {"n": len(predictions)}
    scores.update({key: 100.0 * value for key, value in text_scores.items()})
    timings["text"] = time.perf_counter() - started
    mark = time.perf_counter()
    usr, usn = paper_unique_sentence_percent(generated)
    timings["usr_loop"] = time.perf_counter() - mark
    found = paper_feature_detect(generated, feature_set)
    scores.update(
        usr=usr,
        usn=usn,
        fmr=paper_feature_matching_ratio(found, [p.feature for p in predictions]),
        fcr=paper_feature_coverage_ratio(found, feature_set),
    )
    mark = time.perf_counter()
    scores["div"] = paper_feature_diversity(found)
    timings["div_loop"] = time.perf_counter() - mark
    ratings = [p.rating for p in predictions]
    predicted = [p.predicted_rating for p in predictions]
    scores["rmse"] = rating.rmse(ratings, predicted, rating_range)
    scores["mae"] = rating.mae(ratings, predicted, rating_range)
    timings["total"] = time.perf_counter() - started
    return scores


# ---- inputs ---------------------------------------------------------------------------------------------


def make_predictions(
    data: Path, count: int, seed: int = 11
) -> tuple[list[Prediction], set[str], tuple[float, float]]:
    dataset = load_prepared(data)
    rng = random.Random(seed)
    records = dataset.records
    pool = rng.sample([r.text for r in records], min(POOL, len(records)))
    weights = [1.0 / (rank + 1) ** ZIPF for rank in range(len(pool))]
    generated = rng.choices(pool, weights=weights, k=count)
    low, high = dataset.manifest["rating_range"]
    predictions = []
    for text_generated in generated:
        record = records[rng.randrange(len(records))]
        predictions.append(
            Prediction(
                user=record.user,
                item=record.item,
                reference=record.text,
                generated=text_generated,
                feature=record.feature,
                rating=record.rating,
                predicted_rating=round(record.rating + rng.gauss(0.0, 0.9), 4),
            )
        )
    return predictions, set(dataset.features), (float(low), float(high))


# ---- measurements ---------------------------------------------------------------------------------------


def pepler_loops(
    generated: list[list[str]], mentioned: list[frozenset[str]], reps: int
) -> tuple[list[float], tuple]:
    """pepler's USN + DIV alone, on the tokens and feature sets the whole evaluation computes anyway."""
    seconds = []
    for _ in range(reps):
        elapsed, value = bl.clock(
            lambda: (
                explainability.unique_sentence_count(generated),
                explainability.feature_diversity(mentioned),
            )
        )
        seconds.append(elapsed)
    return seconds, value


def main(argv: list[str] | None = None) -> int:
    p = bl.parser(__doc__)
    p.add_argument(
        "--pairs", type=int, default=None, help="predictions to score (default 32000; quick: 4000)"
    )
    p.add_argument(
        "--reps", type=int, default=None, help="repetitions of pepler's side (default 5; quick: 2)"
    )
    p.add_argument(
        "--paper-reps", type=int, default=None, help="repetitions of the paper's side (default 2; quick: 1)"
    )
    args = p.parse_args(argv)
    out = bl.results_dir(args)
    count = args.pairs or (4000 if args.quick else 32000)
    reps = args.reps or (2 if args.quick else 5)
    paper_reps = args.paper_reps or (1 if args.quick else 2)
    machine = bl.machine_info()

    data = bl.prepared_amazon()
    predictions, feature_set, rating_range = make_predictions(data, count)
    work = bl.WORK / "scoring"
    work.mkdir(parents=True, exist_ok=True)
    preds_path = work / f"preds-{count}.jsonl"
    write_predictions(preds_path, predictions)

    # Warm-up (imports of rouge-score, first allocations) on a slice, not timed.
    score_predictions(predictions[:200], feature_set, rating_range)
    paper_evaluation(predictions[:200], feature_set, rating_range, {})

    # 1. pepler's USR + DIV alone (the paper's side of the two loops is timed inside its whole evaluation)
    generated = [normalize(p.generated) for p in predictions]
    mentioned = [explainability.features_in(tokens, feature_set) for tokens in generated]
    loops_seconds, loops_value = pepler_loops(generated, mentioned, 25)

    # 2. the whole evaluation, in this process
    bl.say(f"scoring {count} pairs")
    pepler_seconds, paper_seconds, paper_timings = [], [], []
    pepler_scores = paper_scores = None
    for rep in range(max(reps, paper_reps)):
        if rep < reps:
            seconds, pepler_scores = bl.clock(
                lambda: score_predictions(predictions, feature_set, rating_range)
            )
            pepler_seconds.append(seconds)
            bl.say(f"  pepler score_predictions rep {rep + 1}: {seconds:.2f} s")
        if rep < paper_reps:
            timings: dict[str, float] = {}
            seconds, paper_scores = bl.clock(
                lambda t=timings: paper_evaluation(predictions, feature_set, rating_range, t)
            )
            paper_seconds.append(seconds)
            paper_timings.append(timings)
            bl.say(
                f"  paper evaluation rep {rep + 1}: {seconds:.2f} s "
                f"(USR loop {timings['usr_loop']:.1f} s, DIV loop {timings['div_loop']:.1f} s)"
            )
    assert pepler_scores is not None and paper_scores is not None
    assert set(pepler_scores) == set(paper_scores), (sorted(pepler_scores), sorted(paper_scores))
    differing = {
        k: (pepler_scores[k], paper_scores[k]) for k in pepler_scores if pepler_scores[k] != paper_scores[k]
    }
    assert not differing, f"scores differ: {differing}"

    # 3. the CLI end to end
    cli_runs = []
    for rep in range(reps):
        measured = bl.measure_command(
            [
                *bl.pepler_command(),
                "score",
                str(preds_path),
                "--data",
                str(data),
                "--json",
                "--no-record",
                "--out",
                str(work / "preds.scores.yaml"),
            ]
        )
        cli_runs.append(measured)
        bl.say(f"  pepler score (CLI) rep {rep + 1}: {measured['seconds']:.2f} s")
    cli_scores = json.loads(cli_runs[-1]["stdout"])
    differing = {
        k: (cli_scores.get(k), pepler_scores[k])
        for k in pepler_scores
        if cli_scores.get(k) != pepler_scores[k]
    }
    assert not differing, f"the CLI's scores differ from the library's: {differing}"

    assert loops_value == (paper_scores["usn"], paper_scores["div"]), (loops_value, paper_scores)
    paper_loop_seconds = [t["usr_loop"] + t["div_loop"] for t in paper_timings]
    loops_pepler, loops_paper = bl.median(loops_seconds), bl.median(paper_loop_seconds)
    whole_pepler, whole_paper = bl.median(pepler_seconds), bl.median(paper_seconds)
    cli_seconds = bl.median([r["seconds"] for r in cli_runs])
    quick = args.quick
    loops_speedup = loops_paper / loops_pepler
    whole_speedup = whole_paper / whole_pepler
    cases = [
        bl.case(
            "scoring, USR + DIV",
            measure=f"USR and DIV of {count:,} explanations: pepler's linear-time code vs the list scan and pair loop",
            unit="s",
            pepler=round(loops_pepler, 4),
            paper=round(loops_paper, 2),
            speedup=loops_speedup,
            target=TARGET_SPEEDUP,
            target_text=f">= {TARGET_SPEEDUP:g}x",
            met=None if quick else loops_speedup >= TARGET_SPEEDUP,
            pepler_seconds=[round(s, 5) for s in loops_seconds],
            paper_seconds=[round(s, 2) for s in paper_loop_seconds],
            usn=loops_value[0],
            div=loops_value[1],
            identical=True,
        ),
        bl.case(
            "scoring, whole evaluation",
            measure=f"every metric of `pepler score` on {count:,} pairs, in process: score_predictions vs the "
            "same evaluation with the paper's USR and DIV loops (other metrics share pepler's code)",
            unit="s",
            pepler=round(whole_pepler, 3),
            paper=round(whole_paper, 2),
            speedup=whole_speedup,
            target=TARGET_SPEEDUP,
            target_text=f">= {TARGET_SPEEDUP:g}x",
            met=None if quick else whole_speedup >= TARGET_SPEEDUP,
            pepler_seconds=[round(s, 3) for s in pepler_seconds],
            paper_seconds=[round(s, 2) for s in paper_seconds],
            paper_breakdown_seconds={
                k: round(bl.median([t[k] for t in paper_timings]), 2) for k in paper_timings[0]
            },
            identical=True,
        ),
        bl.case(
            "scoring, `pepler score` CLI",
            measure=f"`pepler score` end to end on {count:,} pairs (subprocess: start-up, reading, scoring, writing)",
            unit="s",
            pepler=round(cli_seconds, 2),
            paper=round(whole_paper, 2),
            speedup=whole_paper / cli_seconds,
            target=TARGET_SECONDS,
            target_text=f"< {TARGET_SECONDS:g} s",
            met=None if quick else cli_seconds < TARGET_SECONDS,
            chart=False,
            absolute=True,
            cli_seconds=[round(r["seconds"], 2) for r in cli_runs],
            cli_peak_rss_mib=max(r["peak_rss_mib"] for r in cli_runs),
            identical=True,
        ),
    ]
    result = {
        "benchmark": "scoring",
        "quick": quick,
        "machine": machine,
        "inputs": {
            "pairs": count,
            "source": "bundled Amazon Musical Instruments, prepared by pepler prepare",
            "distinct_generated": pepler_scores["usn"],
            "usr": pepler_scores["usr"],
            "features": len(feature_set),
        },
        "scores": pepler_scores,
        "cases": cases,
    }
    for c in cases:
        print(
            f"{c['name']}: pepler {c['pepler']} s, paper {c['paper']} s, {c['speedup']}x ({c['target_text']})",
            flush=True,
        )
    bl.write_result(out, "scoring", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
