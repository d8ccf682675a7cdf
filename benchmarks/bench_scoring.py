"""Benchmark 2, scoring: ``pepler score`` on 32,000 pairs vs the paper's DIV pair loop and USR list scan.

    python benchmarks/bench_scoring.py [--quick] [--pairs 32000] [--only all|beyond]

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

4. The metrics beyond the paper: ``pepler score PREDS --data DIR --metrics grounding,phrase,diversity,bias --by
   user-activity --split-number 1`` end to end in a subprocess (interpreter start-up included), against the
   issue's 10-second budget for every metric that needs no model, and the same file scored with the paper's
   metrics alone (the ratio is what the extra metrics and the groups cost). Its inputs are synthetic, of the
   shape of a real dataset (:data:`BEYOND_SHAPE`: 40,000 records, 2,000 users, 1,000 items, 1,000 features of
   which a third are two words long, 20-token explanations; 32,000 predictions whose generated texts are 30%
   unique), because the bundled data is smaller than that and has few multi-word features.
   ``--only beyond`` runs this case alone and updates it in an existing ``scoring.json``, the other cases kept.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import benchlib as bl
import yaml

from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.data.prepared.records import Record
from pepler_cli.data.prepared.writing import write_prepared
from pepler_cli.evaluation.metrics import explainability, rating, text
from pepler_cli.evaluation.metrics.tokens import normalize
from pepler_cli.evaluation.scoring import score_predictions
from pepler_cli.predictions import Prediction, write_predictions

TARGET_SPEEDUP = 100.0
TARGET_SECONDS = 10.0
POOL = 4000  # distinct "generated" sentences
ZIPF = 1.1  # frequency of the k-th most common generated sentence ∝ 1 / k**ZIPF
BEYOND_CASE = "scoring, beyond the paper (CLI)"
BEYOND_METRICS = "grounding,phrase,diversity,bias"  # every family that needs no model
BEYOND_BY = "user-activity"


@dataclass(frozen=True)
class Shape:
    """The synthetic dataset and predictions of case 4."""

    records: int = 40_000
    users: int = 2_000
    items: int = 1_000
    features: int = 1_000
    multi_word: float = 1 / 3  # share of the features that are two words ("patch cable")
    tokens: int = 20  # words per explanation, reference and generated
    pairs: int = 32_000
    unique: float = 0.3  # share of the generated texts that are distinct (USR)
    item_features: int = 12  # features an item's records talk about
    seed: int = 18


BEYOND_SHAPE = Shape()
GENERATOR_VERSION = 1  # raise when synthetic_dataset or synthetic_predictions changes what they make
QUICK_SHAPE = Shape(records=4_000, users=200, items=100, features=100, pairs=3_200)


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


def _words(count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` distinct made-up lowercase words (two or three syllables) not in ``taken``."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice((2, 3))))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _zipf(count: int, exponent: float = ZIPF) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(count)]


class _Writer:
    """Explanations of ``shape.tokens`` words: Zipf-distributed filler words around one feature phrase."""

    def __init__(self, shape: Shape, rng: random.Random, filler: list[str]) -> None:
        self.shape, self.rng, self.filler = shape, rng, filler
        self.weights = _zipf(len(filler))

    def sentence(self, feature: str) -> str:
        phrase = feature.split()
        words = self.rng.choices(self.filler, weights=self.weights, k=self.shape.tokens - len(phrase))
        at = self.rng.randrange(len(words) + 1)
        return " ".join([*words[:at], *phrase, *words[at:]])


def synthetic_features(shape: Shape, rng: random.Random, taken: set[str]) -> list[str]:
    """The feature set, in popularity order: single words, and a third of ``modifier head`` phrases whose head
    is itself a feature (so "cable" and "patch cable" both occur, as in the bundled dataset)."""
    multi = round(shape.features * shape.multi_word)
    heads = _words(shape.features - multi, rng, taken)
    modifiers = _words(max(1, multi // 4), rng, taken)
    phrases: set[str] = set()
    while len(phrases) < multi:
        phrases.add(f"{rng.choice(modifiers)} {rng.choice(heads)}")
    features = heads + sorted(phrases)
    rng.shuffle(features)  # popularity (the order) independent of being a phrase
    return features


def synthetic_dataset(out: Path, shape: Shape) -> tuple[list[Record], list[str], list[str]]:
    """A prepared dataset of ``shape`` at ``out`` (one split, 80/10/10), made with a fixed seed; its records,
    its features in popularity order and the other words of its explanations."""
    rng = random.Random(shape.seed)
    taken: set[str] = set()
    features = synthetic_features(shape, rng, taken)
    filler = _words(3_000, rng, taken)
    writer = _Writer(shape, rng, filler)
    users = [f"u{n:05d}" for n in range(shape.users)]
    items = [f"i{n:05d}" for n in range(shape.items)]
    popularity = _zipf(len(features), 1.0)
    aspects = {item: rng.choices(features, weights=popularity, k=shape.item_features) for item in items}
    # Every user and item at least once, the rest Zipf-distributed: a few very active users, popular items.
    who = users + rng.choices(users, weights=_zipf(len(users), 0.8), k=shape.records - len(users))
    what = items + rng.choices(items, weights=_zipf(len(items), 0.8), k=shape.records - len(items))
    rng.shuffle(who)
    rng.shuffle(what)
    records = []
    for number, (user, item) in enumerate(zip(who, what, strict=True)):
        # The first records name every feature once (the feature set is that of the records, as `prepare`
        # makes it), and their items then talk about it too.
        if number < len(features):
            feature = features[number]
            aspects[item].append(feature)
        else:
            feature = rng.choice(aspects[item])
        rating = float(rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0])
        sentiment = 1 if rating >= 3 else -1
        records.append(Record(user, item, rating, writer.sentence(feature), feature, None, sentiment))
    order = list(range(len(records)))
    rng.shuffle(order)
    train, validation = int(0.8 * len(order)), int(0.9 * len(order))
    split = (sorted(order[:train]), sorted(order[train:validation]), sorted(order[validation:]))
    write_prepared(
        out, records, {1: split}, name="synthetic", source={"kind": "synthetic", **asdict(shape)},
        splits_info={"count": 1, "method": "seeded 80/10/10", "seed": shape.seed},
    )  # fmt: skip
    return records, features, filler


def synthetic_predictions(
    records: Sequence[Record], features: Sequence[str], filler: list[str], shape: Shape
) -> list[Prediction]:
    """``shape.pairs`` predictions of random records; ``shape.unique`` of the generated texts are distinct, the
    others repeat them with Zipf-like frequencies; each mentions a feature drawn by popularity among words of
    the references' vocabulary."""
    rng = random.Random(shape.seed + 1)
    writer = _Writer(shape, rng, filler)
    distinct = round(shape.pairs * shape.unique)
    popularity = _zipf(len(features), 1.0)
    pool: dict[str, None] = {}
    while len(pool) < distinct:
        pool[writer.sentence(rng.choices(features, weights=popularity)[0])] = None
    texts = list(pool)
    generated = texts + rng.choices(texts, weights=_zipf(len(texts)), k=shape.pairs - len(texts))
    rng.shuffle(generated)
    chosen = rng.choices(records, k=shape.pairs)
    return [
        Prediction(
            user=r.user, item=r.item, reference=r.text, generated=text, feature=r.feature, rating=r.rating,
            predicted_rating=round(r.rating + rng.gauss(0.0, 0.9), 4),
        )
        for r, text in zip(chosen, generated, strict=True)
    ]  # fmt: skip


def beyond_inputs(shape: Shape) -> tuple[Path, Path]:
    """The synthetic dataset and predictions file of ``shape``, made once and reused from benchmarks/.work."""
    # Named by the shape and the generator's version: other inputs are never mistaken for these.
    made_of = json.dumps({**asdict(shape), "generator": GENERATOR_VERSION}, sort_keys=True)
    work = bl.WORK / f"scoring-beyond-{hashlib.sha256(made_of.encode()).hexdigest()[:12]}"
    data, preds = work / "data", work / "preds.jsonl"
    if (data / "manifest.yaml").is_file() and preds.is_file():
        return data, preds
    shutil.rmtree(work, ignore_errors=True)  # what an interrupted earlier run left
    work.mkdir(parents=True)
    bl.say(f"making a synthetic dataset of {shape.records:,} records and {shape.pairs:,} predictions")
    records, features, filler = synthetic_dataset(data, shape)
    write_predictions(preds, synthetic_predictions(records, features, filler, shape))
    return data, preds


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


def score_command(preds: Path, data: Path, out: Path, beyond: bool) -> list[str]:
    """``pepler score`` as a person types it (tables on stdout), with the metrics beyond the paper or without."""
    command = [*bl.pepler_command(), "score", str(preds), "--data", str(data), "--out", str(out)]
    if beyond:
        command += ["--metrics", BEYOND_METRICS, "--by", BEYOND_BY, "--split-number", "1"]
    return command


def beyond_case(shape: Shape, reps: int, quick: bool) -> dict[str, Any]:
    """Case 4: the model-free metrics beyond the paper and a grouping, end to end, against the 10-second budget
    and against the paper's metrics alone on the same file."""
    machine = bl.machine_info()
    data, preds = beyond_inputs(shape)
    work = preds.parent
    beyond_out, paper_out = work / "beyond.scores.yaml", work / "paper.scores.yaml"
    bl.measure_command(score_command(preds, data, beyond_out, beyond=True))  # warm-up: caches, bytecode
    beyond_runs, paper_runs = [], []
    for rep in range(reps):  # interleaved, so that a busy spell of the machine hits both alike
        paper_runs.append(bl.measure_command(score_command(preds, data, paper_out, beyond=False)))
        beyond_runs.append(bl.measure_command(score_command(preds, data, beyond_out, beyond=True)))
        bl.say(
            f"  pepler score --metrics {BEYOND_METRICS} --by {BEYOND_BY} rep {rep + 1}: "
            f"{beyond_runs[-1]['seconds']:.2f} s (the paper's alone: {paper_runs[-1]['seconds']:.2f} s)"
        )
    written = yaml.safe_load(beyond_out.read_text(encoding="utf-8"))
    scores, groups = written["scores"], written["groups"][BEYOND_BY]
    missing = {"ifmr", "d_fhr", "fmr_phrase", "uusr", "distinct_2", "gini", "pop_top10_share"} - set(scores)
    assert not missing and written["training_split"] == 1, f"the scores file lacks {sorted(missing)}"
    seconds = bl.median([r["seconds"] for r in beyond_runs])
    paper = bl.median([r["seconds"] for r in paper_runs])
    return bl.case(
        BEYOND_CASE,
        measure=f"`pepler score --metrics {BEYOND_METRICS} --by {BEYOND_BY}` end to end on {shape.pairs:,} pairs "
        f"of a synthetic dataset (subprocess, start-up included) vs `pepler score` with the paper's metrics "
        "alone on the same file",
        unit="s",
        pepler=round(seconds, 2),
        paper=round(paper, 2),
        speedup=paper / seconds,
        target=TARGET_SECONDS,
        target_text=f"< {TARGET_SECONDS:g} s",
        met=None if quick else seconds < TARGET_SECONDS,
        chart=False,
        absolute=True,
        cli_seconds=[round(r["seconds"], 2) for r in beyond_runs],
        paper_only_seconds=[round(r["seconds"], 2) for r in paper_runs],
        cost_over_paper_only=round(seconds / paper, 2),
        # CPU seconds (user + system): what the runs cost whatever else the machine was doing.
        cli_cpu_seconds=[round(r["cpu_seconds"], 2) for r in beyond_runs],
        paper_only_cpu_seconds=[round(r["cpu_seconds"], 2) for r in paper_runs],
        cli_peak_rss_mib=max(r["peak_rss_mib"] for r in beyond_runs),
        command=" ".join(["pepler", *score_command(Path("PREDS"), Path("DIR"), Path("OUT"), True)[3:]]),
        inputs={
            **asdict(shape),
            "usr": scores["usr"],
            "tokens_per_generated": round(_mean_tokens(preds), 2),
            "groups": [{"label": g["label"], "n": g["n"]} for g in groups["groups"]],
        },
        scores={key: round(value, 6) for key, value in scores.items()},
        machine=machine,
    )


def _mean_tokens(preds: Path) -> float:
    from pepler_cli.predictions import read_predictions

    texts = [p.generated for p in read_predictions(preds)]
    return sum(len(normalize(text)) for text in texts) / len(texts)


def write_beyond_only(out: Path, case: dict[str, Any], quick: bool) -> Path:
    """``--only beyond``: case 4 put into the existing scoring.json of ``out`` (replacing an earlier one), the
    other cases and the file's shape kept; a new file when there is none (or it is of the other kind of run)."""
    path = out / "scoring.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    if (
        not isinstance(result, dict)
        or result.get("quick") != quick
        or not isinstance(result.get("cases"), list)
    ):
        result = {"benchmark": "scoring", "quick": quick, "machine": case["machine"], "cases": []}
    result["cases"] = [c for c in result["cases"] if c.get("name") != BEYOND_CASE] + [case]
    return bl.write_result(out, "scoring", result)


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
    p.add_argument(
        "--only",
        choices=("all", "beyond"),
        default="all",
        help="beyond: only case 4 (the metrics beyond the paper), updated in an existing scoring.json",
    )
    args = p.parse_args(argv)
    out = bl.results_dir(args)
    count = args.pairs or (4000 if args.quick else 32000)
    reps = args.reps or (2 if args.quick else 5)
    paper_reps = args.paper_reps or (1 if args.quick else 2)
    shape = QUICK_SHAPE if args.quick else BEYOND_SHAPE
    if args.only == "beyond":
        case = beyond_case(shape, reps, args.quick)
        print(
            f"{case['name']}: {case['pepler']} s, the paper's alone {case['paper']} s ({case['target_text']})"
        )
        write_beyond_only(out, case, args.quick)
        return 0
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
        beyond_case(shape, reps, quick),
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
