"""What the transformers-4.x space clean-up changes on the bundled dataset, measured through `pepler prepare`.

    python benchmarks/text_cleanup.py [--demo DEMO_DIR]

Prepares the bundled reviews twice, with the clean-up (the default) and with ``--no-clean-up-spaces``, and
counts the records whose explanation differs as text and after the metrics' own tokenisation
(``evaluation.metrics.tokens.normalize``). With ``--demo DIR`` (a folder ``bash examples/demo.sh`` wrote) it also
generates the demo run's explanations without the clean-up and scores both against the same data: which scores
change. Writes ``results/text-cleanup.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from pepler_cli.evaluation.metrics.tokens import normalize

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SOURCE = REPO / "examples" / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz"
RESULTS = BENCH / "results" / "text-cleanup.json"
EXAMPLES = 5


def pepler(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pepler_cli", *args], check=True, cwd=REPO)


def texts(data: Path) -> list[str]:
    lines = (data / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--demo", type=Path, help="a demo folder: also score its run's explanations both ways"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        cleaned, raw = Path(work) / "cleaned", Path(work) / "raw"
        for out, flags in ((cleaned, []), (raw, ["--no-clean-up-spaces"])):
            pepler("prepare", str(SOURCE), "--name", "amazon-musical-instruments", "--out", str(out), *flags)
        a, b = texts(cleaned), texts(raw)
        if len(a) != len(b):
            raise SystemExit(f"the clean-up changed which reviews are kept: {len(a)} vs {len(b)} records")
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        record = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python benchmarks/text_cleanup.py" + (f" --demo {args.demo}" if args.demo else ""),
            "records": len(a),
            "changed_as_text": len(changed),
            "changed_after_metric_tokenisation": sum(1 for x, y in changed if normalize(x) != normalize(y)),
            "examples": [{"without": y, "with": x} for x, y in changed[:EXAMPLES]],
        }
        if args.demo:
            record["demo"] = demo_scores(args.demo, Path(work))
    RESULTS.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{record['changed_as_text']} of {record['records']} references change as text, "
          f"{record['changed_after_metric_tokenisation']} after tokenisation; wrote {RESULTS}")  # fmt: skip


def demo_scores(demo: Path, work: Path) -> dict:
    """The demo run's explanations generated with and without the clean-up, scored on the demo's data."""
    scores = {}
    for name, flags in (("with", []), ("without", ["--no-clean-up-spaces"])):
        preds = work / f"preds-{name}.jsonl"
        pepler("generate", str(demo / "runs" / "pepler"), "--out", str(preds), *flags)
        pepler("score", str(preds), "--data", str(demo / "data"), "--no-record")
        document = yaml.safe_load(preds.with_name(f"preds-{name}.scores.yaml").read_text(encoding="utf-8"))
        scores[name] = document["scores"]
    differ = sorted(k for k in scores["with"] if scores["with"][k] != scores["without"].get(k))
    return {"run": str(demo / "runs" / "pepler"), "scores_that_differ": differ, "scores": scores}


if __name__ == "__main__":
    main()
