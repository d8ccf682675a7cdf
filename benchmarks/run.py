"""Run the whole benchmark suite, then write results/summary.md and results/chart.png.

    python benchmarks/run.py [--quick] [--only decoding,scoring,...] [--skip cuda,...]

Each benchmark runs as its own process with this interpreter (they are also runnable alone:
``python benchmarks/bench_<name>.py [--quick]``), writing ``results/<name>.json``; ``--quick`` runs small
inputs into ``results/quick/`` and judges no target. The suite's own timings go to ``results/suite.json``.
Exits non-zero when any benchmark failed (an equality assertion, say); the others still run. ``--only`` and
``--skip`` rerun some benchmarks and update the previous suite record; the summary is always rebuilt from
every result file in the folder.
``bash benchmarks/run.sh`` first makes the .venv (scripts/setup.sh) and installs benchmarks/requirements.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import report

# name -> script; the order runs the quick ones first so that a failure shows early.
BENCHMARKS = {
    "scoring": "bench_scoring.py",
    "training": "bench_training.py",
    "preparation": "bench_prepare.py",
    "cuda": "bench_cuda.py",
    "extraction_semeval": "extraction_semeval.py",
    "decoding": "bench_decoding.py",
    "backbones": "bench_backbones.py",
    "meaning": "bench_meaning.py",
}


def semeval_data() -> Path:
    """Where extraction_semeval.py looks for its gold standard (the workspace's shared/ folder)."""
    shared = Path(os.environ.get("PEPLER_SHARED") or BENCH.parent.parent / "shared")
    return shared / "data" / "semeval2014-absa"


def merged_with_previous(path: Path, suite: dict) -> dict:
    """A partial run (--only/--skip) updates the previous suite record instead of replacing it: the
    benchmarks it ran are replaced, the others kept, and the total is the sum of the per-benchmark times."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return suite
    if previous.get("quick") != suite["quick"]:
        return suite
    benchmarks = {**previous.get("benchmarks", {}), **suite["benchmarks"]}
    rerun = previous.get("rerun", []) + [
        {
            "started": suite["started"],
            "benchmarks": list(suite["benchmarks"]),
            "load_average_at_start": suite["load_average_at_start"],
        }
    ]
    return {
        **previous,
        "benchmarks": {name: benchmarks[name] for name in BENCHMARKS if name in benchmarks},
        "total_seconds": round(sum(info["seconds"] for info in benchmarks.values()), 1),
        "rerun": rerun,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run into results/quick (minutes)")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark names to run (updates the previous suite record)",
    )
    p.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    args = p.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - set(BENCHMARKS)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}")
    results = BENCH / "results" / ("quick" if args.quick else "")
    results.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 1.0:
        print(
            f"warning: the load average is {load:.2f}; other work on the machine will distort the timings",
            file=sys.stderr,
            flush=True,
        )
    suite: dict = {
        "command": "bash benchmarks/run.sh" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "benchmarks": {},
    }
    started = time.perf_counter()
    for name, script in BENCHMARKS.items():
        if (only and name not in only) or name in skip:
            continue
        command = [sys.executable, str(BENCH / script)]
        if name == "extraction_semeval" and not semeval_data().is_dir():
            print(
                f"\n=== {name}: skipped, no SemEval-2014 data at {semeval_data()} (set PEPLER_SHARED)",
                flush=True,
            )
            continue
        if name == "extraction_semeval":  # the extraction benchmark has its own options
            command += ["--out", str(results / "extraction_semeval.json")]
        else:
            command += ["--out", str(results)] + (["--quick"] if args.quick else [])
        print(f"\n=== {name} ===", flush=True)
        began = time.perf_counter()
        code = subprocess.run(command, cwd=BENCH.parent, check=False).returncode
        seconds = time.perf_counter() - began
        suite["benchmarks"][name] = {"returncode": code, "seconds": round(seconds, 1)}
        print(
            f"=== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds / 60:.1f} min",
            flush=True,
        )
    suite["total_seconds"] = round(time.perf_counter() - started, 1)
    if only or skip:
        suite = merged_with_previous(results / "suite.json", suite)
    (results / "suite.json").write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")
    report.write(results)
    failed = [n for n, info in suite["benchmarks"].items() if info["returncode"]]
    print(
        f"\nsuite finished in {suite['total_seconds'] / 60:.1f} min"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
