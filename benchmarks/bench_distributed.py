"""Benchmark 6, scaling out: tokens/s per GPU and scaling efficiency of ``torchrun … pepler train`` (DDP).

    python benchmarks/bench_distributed.py [--quick] [--gpus 1,2,4,8] [--backbone gpt2] [--cpu-ranks 1,2]

For each number of ranks N it runs ``torchrun --nproc_per_node N -m pepler_cli train`` on split 1 of the
bundled Amazon dataset (one epoch of the prompt+LM stage, ``--strategy joint``, batch 128, bf16 on CUDA) and
reads the epoch's training throughput from the run's manifest (target tokens of the epoch / its seconds,
validation included). Per GPU = that / N; scaling efficiency = (tokens/s at N / N) / (tokens/s at 1). The same
global batch and seed at every N, so every N trains the same model.

Without CUDA it records ``"skipped": "no CUDA"`` and exits 0, unless ``--cpu-ranks`` asks for a CPU (gloo)
measurement, which shows the code path and the collectives' cost rather than a GPU's scaling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib as bl
import torch
import yaml


def train_once(data: Path, ranks: int, device: str, backbone: str, quick: bool) -> dict[str, Any]:
    """One ``torchrun`` training epoch on ``ranks`` processes; its throughput and wall time."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "run"
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(ranks),
        ]
        options = [
            "--data", str(data), "--out", str(out), "--backbone", backbone, "--strategy", "joint",
            "--epochs", "1", "--batch-size", "128", "--device", device, "--seed", "1111",
        ]  # fmt: skip
        if quick:
            options += ["--max-train-examples", "512"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"} if device == "cpu" else dict(os.environ)
        seconds, _ = bl.clock(
            lambda: subprocess.run(
                [*launcher, "-m", "pepler_cli", "train", *options], check=True, env=env, capture_output=True
            )
        )
        manifest = yaml.safe_load((out / "manifest.yaml").read_text(encoding="utf-8"))
    epoch = manifest["stages"][0]["epochs"][0]
    return {
        "ranks": ranks,
        "tokens_per_second": epoch["tokens_per_second"],
        "tokens_per_second_per_rank": round(epoch["tokens_per_second"] / ranks, 1),
        "epoch_seconds": epoch["seconds"],
        "wall_seconds": round(seconds, 1),
        "layout": manifest.get("distributed"),
        "precision": manifest["device"]["precision"],
    }


def scaling(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its scaling efficiency against the single-rank row."""
    base = next((r for r in rows if r["ranks"] == 1), None)
    for row in rows:
        if base is not None:
            row["scaling_efficiency"] = round(
                row["tokens_per_second_per_rank"] / base["tokens_per_second"], 3
            )
    return rows


def main() -> int:
    p = bl.parser(__doc__ or "")
    p.add_argument(
        "--gpus", default=None, help="comma-separated rank counts on CUDA (default: 1, 2, 4, … up to all)"
    )
    p.add_argument("--cpu-ranks", default=None, help="comma-separated rank counts for a CPU (gloo) run")
    p.add_argument("--backbone", default="gpt2", help="backbone plugin (default gpt2, the paper's small)")
    args = p.parse_args()
    out_dir = bl.results_dir(args)
    result: dict[str, Any] = {"machine": bl.machine_info(), "backbone": args.backbone}
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        wanted = (
            [int(n) for n in args.gpus.split(",")] if args.gpus else [n for n in (1, 2, 4, 8) if n <= count]
        )
        data = bl.prepared_amazon()
        result["cuda"] = scaling([train_once(data, n, "cuda", args.backbone, args.quick) for n in wanted])
        result["gpu"] = torch.cuda.get_device_name(0)
    elif args.cpu_ranks is None:
        result["skipped"] = "no CUDA"
    if args.cpu_ranks:
        data = bl.prepared_amazon()
        ranks = [int(n) for n in args.cpu_ranks.split(",")]
        backbone = args.backbone if args.backbone != "gpt2" else "gpt2-tiny"
        result["cpu"] = scaling([train_once(data, n, "cpu", backbone, args.quick) for n in ranks])
    for kind in ("cuda", "cpu"):
        for row in result.get(kind, []):
            bl.say(
                f"{kind} ranks {row['ranks']}: {row['tokens_per_second']:.0f} tokens/s, "
                f"{row['tokens_per_second_per_rank']:.0f} per rank, efficiency {row.get('scaling_efficiency')}"
            )
    bl.write_result(out_dir, "distributed", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
