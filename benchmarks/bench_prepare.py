"""Benchmark 4, scale of preparation: ``pepler prepare yelp`` on a Yelp-sized synthetic NETE dataset.

    python benchmarks/bench_prepare.py [--quick] [--reps N]

The input is generated here (once, then reused from benchmarks/.work) by tests/fixtures/make_nete_fixture.py
with the paper's Table 4 statistics for Yelp: 1,293,247 records, 27,147 users, 20,266 items and 7,340
features, in the NETE layout (reviews.pickle and five splits). Explanations are 4 to 26 words, so the GPT-2
truncation to 20 tokens has real work to do.

``pepler prepare yelp --source DIR --out DIR2`` then runs in a subprocess (the restricted unpickler, checks,
truncation, statistics, writing records.jsonl and the splits with their hashes). Reported: wall seconds and
the peak resident set size of that process (ru_maxrss of the only child of a small wrapper process), against
the targets of under 5 minutes and under 4 GB on two cores: the median time of two runs, the larger peak.
``--quick`` uses a twentieth of the size, runs once and judges nothing. There is no paper-side figure: the
authors had no preparation step to compare with.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchlib as bl

YELP = {"records": 1_293_247, "users": 27_147, "items": 20_266, "features": 7_340}
TARGET_SECONDS = 300.0
TARGET_BYTES = 4_000_000_000  # 4 GB
GENERATOR = bl.REPO / "tests" / "fixtures" / "make_nete_fixture.py"


def generate(size: dict[str, int], seed: int = 7) -> tuple[Path, float | None]:
    """The synthetic NETE folder for ``size`` and the seconds it took to write (None when reused)."""
    name = "nete-yelp" if size == YELP else f"nete-{size['records']}"
    folder = bl.WORK / name
    stamp = folder / "generated.json"
    wanted = {**size, "seed": seed, "generator": GENERATOR.name}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    bl.say(f"generating a synthetic NETE dataset of {size['records']:,} records in {folder}")
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            str(folder),
            *[f"--{k}={v}" for k, v in size.items()],
            f"--seed={seed}",
        ],
        check=True,
    )
    seconds = time.perf_counter() - started
    stamp.write_text(json.dumps(wanted))
    return folder, seconds


def main(argv: list[str] | None = None) -> int:
    p = bl.parser(__doc__)
    p.add_argument("--reps", type=int, default=None, help="repetitions of prepare (default 2; quick: 1)")
    p.add_argument("--keep", action="store_true", help="keep the prepared output in benchmarks/.work")
    args = p.parse_args(argv)
    args.reps = args.reps or (1 if args.quick else 2)
    out_dir = bl.results_dir(args)
    machine = bl.machine_info()
    size = {k: max(v // 20, 1) for k, v in YELP.items()} if args.quick else dict(YELP)
    source, generate_seconds = generate(size)
    source_bytes = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    prepared = bl.WORK / "prepared-yelp"
    runs = []
    for rep in range(args.reps):
        measured = bl.measure_command(
            [
                *bl.pepler_command(),
                "prepare",
                "yelp",
                "--source",
                str(source),
                "--out",
                str(prepared),
                "--overwrite",
                "--json",
            ]
        )
        runs.append(measured)
        bl.say(
            f"  prepare rep {rep + 1}: {measured['seconds']:.1f} s, peak RSS {measured['peak_rss_mib']:,.0f} MiB"
        )
    manifest = json.loads(runs[-1]["stdout"])["manifest"]
    counts = manifest.get("counts", {})
    assert counts.get("records") == size["records"], counts
    assert counts.get("users") == size["users"] and counts.get("items") == size["items"], counts
    output_bytes = sum(f.stat().st_size for f in prepared.rglob("*") if f.is_file())
    if not args.keep:
        shutil.rmtree(prepared, ignore_errors=True)
    seconds = bl.median([r["seconds"] for r in runs])
    peak_mib = max(r["peak_rss_mib"] for r in runs)
    limit_mib = TARGET_BYTES / 2**20
    quick = args.quick
    cases = [
        bl.case(
            "preparation, time",
            measure=f"`pepler prepare yelp` on {size['records']:,} synthetic NETE records "
            f"({'a twentieth of ' if quick else ''}Yelp's Table 4 sizes)",
            unit="s",
            pepler=round(seconds, 1),
            paper=None,
            speedup=None,
            target=TARGET_SECONDS,
            target_text=f"< {TARGET_SECONDS / 60:g} min",
            met=None if quick else seconds < TARGET_SECONDS,
            chart=False,
            absolute=True,
            seconds_each=[round(r["seconds"], 1) for r in runs],
        ),
        bl.case(
            "preparation, peak memory",
            measure="peak resident set size of the same `pepler prepare` process",
            unit="MiB",
            pepler=round(peak_mib),
            paper=None,
            speedup=None,
            target=round(limit_mib),
            target_text="< 4 GB",
            met=None if quick else peak_mib < limit_mib,
            chart=False,
            absolute=True,
        ),
    ]
    result: dict[str, Any] = {
        "benchmark": "preparation",
        "quick": quick,
        "machine": machine,
        "dataset": {
            **size,
            "source_mib": round(source_bytes / 2**20, 1),
            "prepared_mib": round(output_bytes / 2**20, 1),
            "generate_seconds": None if generate_seconds is None else round(generate_seconds, 1),
            "prepared_counts": counts,
            "statistics": manifest.get("statistics"),
        },
        "repetitions": args.reps,
        "cases": cases,
    }
    print(
        f"preparation: {seconds:.1f} s (< {TARGET_SECONDS:g} s), peak RSS {peak_mib:,.0f} MiB (< {limit_mib:,.0f} MiB)",
        flush=True,
    )
    bl.write_result(out_dir, "preparation", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
