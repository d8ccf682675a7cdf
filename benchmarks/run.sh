#!/usr/bin/env bash
# The benchmark suite in one command: makes .venv (scripts/setup.sh), adds matplotlib for the chart, runs every
# benchmark and writes benchmarks/results/*.json, summary.md and chart.png. Pass --quick for a smoke run
# (results/quick/), --only NAME,... or --skip NAME,... to choose benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -r benchmarks/requirements.txt
exec .venv/bin/python benchmarks/run.py "$@"
