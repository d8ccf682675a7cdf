"""A trained model into a run directory, and back: weights as safetensors, the model rebuilt by its plugin.

Loading a run needs no training code: the backbone is rebuilt through its plugin (from its name, or from the
architecture a tuned backbone was saved with) and the prompt model through ``modeling.build``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pepler_cli.files import sha256_file, yaml_text
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.build import build_model
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.plugins import Backbone, CausalLM, Tokenizer, get_backbone, get_rating_head
from pepler_cli.runs import (
    BACKBONE_CONFIG,
    BACKBONE_WEIGHTS,
    ITEMS,
    MANIFEST,
    PROMPT_WEIGHTS,
    RUN_FORMAT,
    TOKENIZER_DIR,
    USERS,
    read_manifest,
    verify_files,
)


def write_run_files(
    directory: Path,
    model: PromptModel,
    tokenizer: Tokenizer,
    entities: EntityIndex,
    backbone: Backbone,
    backbone_tuned: bool,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Write every file of a run into ``directory`` (a temporary one); returns the manifest written."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.prompt_state().items()}
    if tensors:  # a discrete prompt is words: nothing of its own to save
        save_file(tensors, str(directory / PROMPT_WEIGHTS), metadata={"format": RUN_FORMAT})
    if backbone_tuned:
        backbone.save_tuned(model.lm, directory / BACKBONE_WEIGHTS)
        (directory / BACKBONE_CONFIG).write_text(
            json.dumps(backbone.architecture(model.lm)), encoding="utf-8"
        )
    (directory / USERS).write_text("".join(f"{u}\n" for u in entities.users), encoding="utf-8")
    (directory / ITEMS).write_text("".join(f"{i}\n" for i in entities.items), encoding="utf-8")
    tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    manifest = {**manifest, "backbone_weights": "tuned" if backbone_tuned else "frozen (referenced by name)"}
    manifest["files"] = {
        str(path.relative_to(directory)): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    (directory / MANIFEST).write_text(yaml_text(manifest), encoding="utf-8")
    return manifest


@dataclass
class LoadedRun:
    path: Path
    manifest: dict[str, Any]
    model: PromptModel
    tokenizer: Tokenizer
    entities: EntityIndex


def load_run(run: Path, device: torch.device) -> LoadedRun:
    """Rebuild the model of a finished run after checking every file's hash."""
    run = Path(run)
    manifest = read_manifest(run)
    verify_files(run, manifest)
    config = manifest["config"]
    backbone = get_backbone(config["backbone"])
    tokenizer = backbone.load_tokenizer(str(run / TOKENIZER_DIR))
    lm = _backbone_model(run, backbone, config.get("backbone_path"))
    entities = EntityIndex(tuple(_read_lines(run / USERS)), tuple(_read_lines(run / ITEMS)))
    head = None
    if config.get("rating_head"):
        head = get_rating_head(config["rating_head"]).build(backbone.embedding_width(lm))
    model = build_model(config.get("prompt", "continuous"), lm, entities, head)
    if (run / PROMPT_WEIGHTS).is_file():
        model.load_prompt_state(load_file(str(run / PROMPT_WEIGHTS)))
    model.to(device)
    model.eval()
    return LoadedRun(run, manifest, model, tokenizer, entities)


def _backbone_model(run: Path, backbone: Backbone, backbone_path: str | None) -> CausalLM:
    if not (run / BACKBONE_WEIGHTS).is_file():
        return backbone.load_model(backbone_path)
    # A tuned backbone is complete in the run: built from its architecture, no pretrained weights needed.
    model = backbone.build_model(json.loads((run / BACKBONE_CONFIG).read_text(encoding="utf-8")))
    backbone.load_tuned(model, run / BACKBONE_WEIGHTS)
    return model


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()
