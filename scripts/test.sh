#!/usr/bin/env bash
# Installs everything into .venv and runs the whole test suite (core and built-in plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
