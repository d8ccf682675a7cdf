#!/usr/bin/env bash
# The paper's Table 5 on the bundled dataset (README "The paper's baselines"): PEPLER and PEPLER-D on
# smollm2-135m, NRT, Att2Seq, PETER and PETER+, every row on the same 1,500 training pairs of splits 1-3
# (examples/sweeps/table5-bundled.yaml), then the baselines on split 1's whole training part, at most 30 epochs
# (table5-bundled-whole.yaml). About four hours on two CPU cores; re-running resumes (finished cells are kept).
# Writes benchmarks/results/table5-bundled-{same-pairs,whole}.{md,json,tex} (the sweeps' comparisons) and
# table5-bundled-samples.json (split 1's first explanations of every row, beside their references).
set -euo pipefail
cd "$(dirname "$0")/.."
PEPLER=.venv/bin/pepler
WORK=benchmarks/.work/table5
RESULTS=benchmarks/results
if [ ! -f "$WORK/data/manifest.yaml" ]; then
  $PEPLER prepare examples/amazon-musical-instruments/reviews_Musical_Instruments_5.json.gz \
    --name amazon-musical-instruments --out "$WORK/data"
fi
$PEPLER sweep examples/sweeps/table5-bundled.yaml
$PEPLER sweep examples/sweeps/table5-bundled-whole.yaml
for part in same-pairs whole; do
  for kind in md json tex; do
    cp "$WORK/$part/comparison.$kind" "$RESULTS/table5-bundled-$part.$kind"
  done
done
.venv/bin/python - "$WORK" "$RESULTS/table5-bundled-samples.json" <<'PY'
import json, sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
samples = {}
for part in ("same-pairs", "whole"):
    for cell in sorted((work / part / "preds").glob("split=1,*")):
        lines = (cell / "preds.jsonl").read_text(encoding="utf-8").splitlines()[:8]
        samples[f"{part}: {cell.name}"] = [
            {k: json.loads(line).get(k) for k in ("item", "feature", "reference", "generated", "hint")}
            for line in lines
        ]
out.write_text(json.dumps(samples, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
print(f"wrote {out}")
PY
