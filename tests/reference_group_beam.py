"""Diverse (group) beam search by transformers 4.x's ``generate()``, for tests/test_decoding_controls.py.

transformers 5 moved group beam search out of the library to a Hub repository (network); 4.56.2 still has it
in core. This script runs under that version (scripts/setup.sh installs it into .venv/reference-transformers4,
put first on PYTHONPATH; torch comes from the venv). Usage:

    python reference_group_beam.py TENSORS.safetensors CASES.json

TENSORS holds the GPT-2's state dict under "lm." (with "lm.lm_head.bias" when its output layer has a bias) and
the (rows, P, width) ``inputs_embeds`` (the prompt's embeddings and <bos>'s) under "inputs_embeds". CASES is
{"config": GPT-2 config fields, "eos": id, "max_tokens": n, "cases": [generate() keyword arguments, ...]}
(a case's own eos_token_id and pad_token_id win).
Prints {"version": ..., "outputs": [[row's generated ids, ...], ...]}, one list of rows per case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel


def main(tensors_path: str, cases_path: str) -> None:
    tensors = load_file(tensors_path)
    spec = json.loads(Path(cases_path).read_text(encoding="utf-8"))
    model = GPT2LMHeadModel(GPT2Config(**spec["config"]))
    state = {name[len("lm.") :]: value for name, value in tensors.items() if name.startswith("lm.")}
    if "lm_head.bias" in state:
        width, vocabulary = spec["config"]["n_embd"], spec["config"]["vocab_size"]
        model.set_output_embeddings(nn.Linear(width, vocabulary, bias=True))
    model.load_state_dict(state, strict=True)
    model.eval()
    embeds = tensors["inputs_embeds"]
    mask = torch.ones(embeds.shape[:2], dtype=torch.long)
    outputs = []
    eos = spec["eos"]
    for case in spec["cases"]:
        options = {"eos_token_id": eos, "pad_token_id": eos, "bos_token_id": eos, **case}
        with torch.no_grad():
            generated = model.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=spec["max_tokens"],
                do_sample=False,
                early_stopping="never",
                **options,
            )
        outputs.append(generated.tolist())
    print(json.dumps({"version": transformers.__version__, "outputs": outputs}))


if __name__ == "__main__":
    main(*sys.argv[1:])
