"""``pepler export`` as a library call: a run as a standard Hugging Face model directory plus its prompt.

For users who deploy elsewhere: the directory loads with ``AutoModelForCausalLM.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``. LoRA adapters are merged into the weights; the backbone is written
whether it was tuned or frozen. The prompt travels beside it:

- ``pepler_prompt.safetensors``: ``prompt.user`` and ``prompt.item`` (one row per id of ``users.txt`` and
  ``items.txt``) and the rating head's weights; absent for a discrete prompt
- ``pepler_export.yaml``: how to build the model's input, the special token ids, and where it came from.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers.utils import logging

import pepler_cli
from pepler_cli.errors import PeplerError
from pepler_cli.files import atomic_directory, ensure_new_output, output_lock, sha256_file, yaml_text
from pepler_cli.modeling.base import PromptModel
from pepler_cli.paper import MAX_EXPLANATION_TOKENS
from pepler_cli.run_model import load_run
from pepler_cli.runs import ITEMS, MANIFEST, MODEL_WEIGHTS, USERS

EXPORT_FORMAT = "pepler-export/1"
PROMPT_FILE = "pepler_prompt.safetensors"
DESCRIPTION_FILE = "pepler_export.yaml"
INPUT_LAYOUTS = {
    "continuous": "inputs_embeds = [prompt.user[user row], prompt.item[item row], embed(<bos>), embed(words)...]",
    "discrete": "input_ids = [features of the user and item (PEPLER-D, equation 4), <bos>, words...]",
}
# What goes between the prompt and <bos> (modeling/base.py): the hint's words, then the answer opening.
BEFORE_BOS = "then embed(hint words) when feature_hint is not none, then embed(lead tokens), before <bos>"


def export(run: Path, out: Path, overwrite: bool = False, trust_remote_code: bool = False) -> dict[str, Any]:
    """Write ``run`` as a model directory ``out``; returns the description written beside it."""
    ensure_new_output(out, overwrite)
    with output_lock(out):
        return _export_locked(run, out, overwrite, trust_remote_code)


def _export_locked(
    run: Path, out: Path, overwrite: bool = False, trust_remote_code: bool = False
) -> dict[str, Any]:
    loaded = load_run(run, torch.device("cpu"), trust_remote_code)
    if not isinstance(loaded.model, PromptModel):
        raise PeplerError(
            f"{run}: export writes PEPLER's backbone as a Hugging Face model; this run's model is "
            f"{loaded.model_name} (its tensors are in the run's {MODEL_WEIGHTS}, safetensors)"
        )
    lm = loaded.model.lm
    if loaded.manifest.get("lora") is not None:
        from pepler_cli.modeling.lora import merge_lora  # peft: only LoRA runs pay its import

        merge_lora(lm)
    # How the pretrained weights were stored (a GGUF file) does not describe the weights written here.
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    special = loaded.special
    description = {
        "format": EXPORT_FORMAT,
        "pepler_version": pepler_cli.__version__,
        "run": {"path": str(Path(run).resolve()), "name": loaded.manifest.get("name")},
        "run_manifest_sha256": sha256_file(Path(run) / MANIFEST),
        "prompt": loaded.model.prompt_kind,
        "input": INPUT_LAYOUTS[loaded.model.prompt_kind],
        "before_bos": BEFORE_BOS,
        "special_tokens": {
            "bos": special.bos,
            "eos": special.eos,
            "pad": special.pad,
            "lead": list(special.lead),
        },
        "feature_hint": loaded.feature_hint,
        "rating_head": loaded.manifest["config"].get("rating_head"),
        "lora_merged": loaded.manifest.get("lora") is not None,
        "max_explanation_tokens": MAX_EXPLANATION_TOKENS,
    }
    with atomic_directory(Path(out), overwrite=overwrite) as directory:
        logging.disable_progress_bar()  # transformers' own bar would interleave with pepler's output
        try:
            lm.save_pretrained(str(directory))
        finally:
            logging.enable_progress_bar()
        loaded.tokenizer.save_pretrained(str(directory))
        tensors = {k: v.detach().contiguous() for k, v in loaded.model.prompt_state().items()}
        if tensors:
            save_file(tensors, str(directory / PROMPT_FILE), metadata={"format": EXPORT_FORMAT})
        for name in (USERS, ITEMS):
            shutil.copyfile(Path(run) / name, directory / name)
        (directory / DESCRIPTION_FILE).write_text(yaml_text(description), encoding="utf-8")
    return description
