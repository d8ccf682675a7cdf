"""Model-based metrics: embedding cosine, BERTScore F1 (all-MiniLM-L6-v2) and perplexity (smollm2-135m).

    python benchmarks/bench_meaning.py [--quick] [--pairs 32000] [--reps 3]

Inputs: N predictions drawn (seeded) from the bundled Amazon dataset, prepared by ``pepler prepare``:
references are the explanations of N random records; the "generated" texts are a pool of 30% of N distinct
explanation sentences, each used at least once and the rest drawn with Zipf-like frequencies, so exactly
30% of them are distinct, as in real runs (the paper's USR is 0.06-0.29; pepler's demo about 0.3).

What is timed, on CPU, in this process: each metric's function on all N pairs (``embedding_cosine``,
``bertscore_f1``) or the N generated texts (``perplexity``), medians of ``--reps`` repetitions, after one
untimed warm-up call on a few pairs that loads the model (loading and that call are ``load_seconds``).
There is no paper-side baseline: the paper has none of these metrics. A missing model is reported as
skipped, with what to install.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib as bl

from pepler_cli.data.prepared.reading import load_prepared
from pepler_cli.evaluation.metrics.fluency import FLUENCY_INSTALL, find_fluency_model, perplexity
from pepler_cli.evaluation.metrics.meaning import (
    MEANING_INSTALL,
    bertscore_f1,
    embedding_cosine,
    find_embedding_model,
)

UNIQUE_SHARE = 0.3  # distinct generated texts / pairs
ZIPF = 1.1  # frequency of the k-th most common generated sentence ∝ 1 / k**ZIPF
WARM_UP = 16  # pairs of the untimed first call that loads the model


def make_pairs(data: Path, count: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """References of ``count`` random records, and generated texts of which UNIQUE_SHARE are distinct."""
    records = load_prepared(data).records
    rng = random.Random(seed)
    references = [records[rng.randrange(len(records))].text for _ in range(count)]
    sentences = list(dict.fromkeys(r.text for r in records))
    pool = rng.sample(sentences, min(len(sentences), max(1, round(UNIQUE_SHARE * count))))
    weights = [1.0 / (rank + 1) ** ZIPF for rank in range(len(pool))]
    generated = pool + rng.choices(pool, weights=weights, k=count - len(pool))
    rng.shuffle(generated)
    return references, generated


def timed(name: str, fn: Callable[[int], float], count: int, reps: int) -> dict[str, Any]:
    """The model's load (first call, on WARM_UP items) and ``reps`` timed calls on all ``count`` items."""
    load_seconds, _ = bl.clock(lambda: fn(min(WARM_UP, count)))
    seconds: list[float] = []
    value = float("nan")
    for rep in range(reps):
        elapsed, value = bl.clock(lambda: fn(count))
        seconds.append(elapsed)
        bl.say(f"  {name} rep {rep + 1}: {elapsed:.2f} s ({value:.4f})")
    return {"load_seconds": round(load_seconds, 2), "seconds": [round(s, 2) for s in seconds], "value": value}


def metric_case(name: str, measure: str, count: int, run: dict[str, Any]) -> dict[str, Any]:
    median = bl.median(run["seconds"])
    return bl.case(
        name,
        measure=measure,
        unit="s",
        pepler=round(median, 2),
        paper=None,
        speedup=None,
        target=None,
        met=None,
        target_text="reported",
        chart=False,
        pepler_seconds=run["seconds"],
        load_seconds=run["load_seconds"],
        items_per_second=round(count / median, 1),
        value=run["value"],
    )


def skipped_case(name: str, install: str) -> dict[str, Any]:
    """A metric whose model is not installed: the summary shows what to install."""
    return bl.case(
        name,
        measure="",
        unit="s",
        pepler=None,  # type: ignore[arg-type]
        paper=None,
        speedup=None,
        target=None,
        met=None,
        target_text="reported",
        chart=False,
        skipped=f"model not installed ({install})",
    )


def main(argv: list[str] | None = None) -> int:
    p = bl.parser(__doc__)
    p.add_argument("--pairs", type=int, default=None, help="pairs to score (default 32000; quick: 500)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 3; quick: 1)")
    args = p.parse_args(argv)
    out = bl.results_dir(args)
    count = args.pairs or (500 if args.quick else 32000)
    reps = args.reps or (1 if args.quick else 3)
    machine = bl.machine_info()
    references, generated = make_pairs(bl.prepared_amazon(), count)
    distinct_generated = len(set(generated))
    bl.say(
        f"{count} pairs, {distinct_generated} distinct generated texts, {len(set(references))} distinct references"
    )

    models: dict[str, Any] = {}
    cases: list[dict[str, Any]] = []
    embedding = find_embedding_model()
    if embedding is None:
        cases += [
            skipped_case(n, MEANING_INSTALL) for n in ("meaning, embedding cosine", "meaning, BERTScore F1")
        ]
    else:
        models["embedding"] = {"name": embedding.name, "sha256": embedding.sha256}
        cosine = timed(
            "embedding_cosine",
            lambda n: embedding_cosine(references[:n], generated[:n], embedding),
            count,
            reps,
        )
        bert = timed(
            "bertscore_f1", lambda n: bertscore_f1(references[:n], generated[:n], embedding), count, reps
        )
        cases.append(
            metric_case(
                "meaning, embedding cosine",
                f"embedding_cosine of {count:,} pairs (all-MiniLM-L6-v2)",
                count,
                cosine,
            )
        )
        cases.append(
            metric_case(
                "meaning, BERTScore F1",
                f"bertscore_f1 of {count:,} pairs (all-MiniLM-L6-v2, layer 6)",
                count,
                bert,
            )
        )
    fluency = find_fluency_model()
    if fluency is None:
        cases.append(skipped_case("fluency, perplexity", FLUENCY_INSTALL))
    else:
        models["fluency"] = {"name": fluency.name, "source": fluency.source, "sha256": fluency.sha256}
        load_seconds, (lm, tokenizer) = bl.clock(fluency.load)
        run = timed("perplexity", lambda n: perplexity(generated[:n], lm, tokenizer), count, reps)
        run["load_seconds"] = round(run["load_seconds"] + load_seconds, 2)
        cases.append(
            metric_case(
                "fluency, perplexity", f"perplexity of {count:,} explanations (smollm2-135m)", count, run
            )
        )

    result = {
        "benchmark": "meaning",
        "quick": args.quick,
        "machine": machine,
        "inputs": {
            "pairs": count,
            "source": "bundled Amazon Musical Instruments, prepared by pepler prepare",
            "distinct_generated": distinct_generated,
            "unique_share": round(distinct_generated / count, 4),
            "distinct_references": len(set(references)),
            "reps": reps,
        },
        "models": models,
        "cases": cases,
    }
    for c in cases:
        if c.get("skipped"):
            print(f"{c['name']}: skipped ({c['skipped']})", flush=True)
        else:
            print(
                f"{c['name']}: {c['pepler']} s median, model load {c['load_seconds']} s, value {c['value']:.4f}",
                flush=True,
            )
    bl.write_result(out, "meaning", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
