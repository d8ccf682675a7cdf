"""What the benchmarks share: paths, machine facts, repetitions and medians, peak memory, result files.

Every benchmark writes one JSON file whose ``cases`` list feeds the summary table and the chart
(``report.py``): a case names what was measured, pepler's figure, the paper's method's figure, their ratio,
the target and whether it was met.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
QUICK_RESULTS = RESULTS / "quick"  # smoke runs never overwrite the real results
WORK = BENCH / ".work"  # prepared data and generated inputs, reused between runs (ignored by git)
BUNDLED_REVIEWS = REPO / "examples" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small smoke run (minutes); targets are not judged")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: benchmarks/results, or benchmarks/results/quick with --quick)",
    )
    return p


def results_dir(args: argparse.Namespace) -> Path:
    out = args.out if args.out is not None else (QUICK_RESULTS if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    return out


def pepler(*args: object) -> float:
    """Run one pepler command as a user would (in the repository); its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pepler_cli", *map(str, args)], check=True, cwd=REPO)
    return round(time.perf_counter() - start, 1)


def shown(path: Path) -> str:
    """A path as a results file shows it: relative to the repository when inside it (no machine's paths)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Where and with what the numbers were taken; the load average shows whether the machine was busy."""
    import torch
    import transformers

    try:
        from importlib.metadata import version

        pepler_version = version("pepler")
    except Exception:  # noqa: BLE001 - informational only
        pepler_version = "unknown"
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "pepler": pepler_version,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of ``fn`` took, and what it returned."""
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def peak_rss_mib_self() -> float:
    """This process's peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


# A fresh interpreter runs the command as its only child, so RUSAGE_CHILDREN's ru_maxrss is that command's
# peak resident set size (the largest of it and any process it waited for) and nothing else's, and its
# ru_utime + ru_stime the CPU seconds it used (what a busy machine does not inflate as it does wall time).
_MEASURE = r"""
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak = usage.ru_maxrss
print(json.dumps({"returncode": code.returncode, "seconds": seconds,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_kib": peak // 1024 if sys.platform == "darwin" else peak,
                  "stdout": code.stdout, "stderr_tail": code.stderr[-3000:]}))
"""


def measure_command(argv: Sequence[str], cwd: Path = REPO) -> dict[str, Any]:
    """Wall seconds, CPU seconds and peak RSS of one command run in a subprocess; raises if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring {argv[:3]} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited {result['returncode']}: {result['stderr_tail']}"
        )
    result["peak_rss_mib"] = round(result.pop("peak_rss_kib") / 1024, 1)
    return result


def pepler_command() -> list[str]:
    """The CLI of the environment the benchmark runs in."""
    return [sys.executable, "-m", "pepler_cli"]


def prepared_amazon() -> Path:
    """The bundled Amazon reviews prepared by ``pepler prepare`` (once; reused from benchmarks/.work)."""
    out = WORK / "amazon-musical-instruments"
    if (out / "manifest.yaml").is_file():
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *pepler_command(),
            "prepare",
            str(BUNDLED_REVIEWS),
            "--name",
            "amazon-musical-instruments",
            "--out",
            str(out),
            "--overwrite",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out


def case(
    name: str,
    *,
    measure: str,
    unit: str,
    pepler: float,
    paper: float | None,
    speedup: float | None,
    target: float | None,
    met: bool | None,
    target_text: str,
    chart: bool = True,
    **details: Any,
) -> dict[str, Any]:
    """One row of the summary. ``speedup`` is paper time / pepler time (or pepler rate / paper rate)."""
    return {
        "name": name,
        "measure": measure,
        "unit": unit,
        "pepler": pepler,
        "paper": paper,
        "speedup": None if speedup is None else round(speedup, 2),
        "target": target,
        "target_text": target_text,
        "met": met,
        "chart": chart,
        **details,
    }


def write_result(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)
    return path


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
