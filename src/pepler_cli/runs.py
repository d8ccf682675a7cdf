"""The run directory: manifest.yaml + safetensors weights, written atomically, verified on load.

Layout of ``runs/<name>/``:

- ``manifest.yaml``: resolved config, command, versions, dataset fingerprint, per-stage/per-epoch losses,
  best epochs, and the sha256 of every other file
- ``prompt.safetensors``: the user and item vectors and the rating head's weights
- ``backbone.safetensors`` + ``backbone_config.json``: only when the LM was tuned; a frozen backbone is
  referenced by plugin name (and ``backbone_path``), not copied
- ``users.txt``, ``items.txt``: the id of each prompt-table row, one a line
- ``tokenizer/``: the tokenizer's files
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_cli.errors import PeplerError
from pepler_cli.fsutil import sha256_file

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from pepler_cli.modeling.base import PromptModel
    from pepler_cli.training.examples import EntityIndex

RUN_FORMAT = "pepler-run/1"
MANIFEST = "manifest.yaml"
PROMPT_WEIGHTS = "prompt.safetensors"
BACKBONE_WEIGHTS = "backbone.safetensors"
BACKBONE_CONFIG = "backbone_config.json"
TOKENIZER_DIR = "tokenizer"


def write_run_files(
    directory: Path,
    model: PromptModel,
    tokenizer: PreTrainedTokenizerBase,
    entities: EntityIndex,
    backbone_tuned: bool,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Write every file of a run into ``directory`` (a temporary one); returns the manifest written."""
    from safetensors.torch import save_file

    from pepler_cli.plugins import get_backbone

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.prompt_state().items()}
    if tensors:  # a discrete prompt is words: nothing of its own to save
        save_file(tensors, str(directory / PROMPT_WEIGHTS), metadata={"format": RUN_FORMAT})
    if backbone_tuned:
        get_backbone(manifest["config"]["backbone"]).save_tuned(model.lm, directory / BACKBONE_WEIGHTS)
        (directory / BACKBONE_CONFIG).write_text(model.lm.config.to_json_string(), encoding="utf-8")
    (directory / "users.txt").write_text("".join(f"{u}\n" for u in entities.users), encoding="utf-8")
    (directory / "items.txt").write_text("".join(f"{i}\n" for i in entities.items), encoding="utf-8")
    tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    manifest = {**manifest, "backbone_weights": "tuned" if backbone_tuned else "frozen (referenced by name)"}
    manifest["files"] = {
        str(path.relative_to(directory)): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    write_manifest(directory / MANIFEST, manifest)
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True), encoding="utf-8")


def read_manifest(run: Path) -> dict[str, Any]:
    import yaml

    path = Path(run) / MANIFEST
    if not path.is_file():
        raise PeplerError(f"{run}: not a pepler run (no {MANIFEST})")
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise PeplerError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        raise PeplerError(f"{path}: field 'format': expected {RUN_FORMAT!r}")
    return manifest


def verify_files(run: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists must exist with the recorded sha256."""
    for name, expected in manifest.get("files", {}).items():
        path = Path(run) / name
        if not path.is_file():
            raise PeplerError(f"{path}: missing (listed in {MANIFEST})")
        if sha256_file(path) != expected:
            raise PeplerError(f"{path}: sha256 differs from {MANIFEST}; the file was changed or is damaged")


@dataclass
class LoadedRun:
    path: Path
    manifest: dict[str, Any]
    model: PromptModel
    tokenizer: PreTrainedTokenizerBase
    entities: EntityIndex


def load_run(run: Path, device: torch.device) -> LoadedRun:
    """Rebuild the model of a finished run after checking every file's hash."""
    from safetensors.torch import load_file

    from pepler_cli.plugins import get_backbone, get_rating_head
    from pepler_cli.training.examples import EntityIndex
    from pepler_cli.training.run import build_model

    run = Path(run)
    manifest = read_manifest(run)
    verify_files(run, manifest)
    config = manifest["config"]
    backbone = get_backbone(config["backbone"])
    tokenizer = backbone.load_tokenizer(str(run / TOKENIZER_DIR))
    lm = _load_backbone_model(run, backbone, config.get("backbone_path"))
    entities = EntityIndex(tuple(_read_lines(run / "users.txt")), tuple(_read_lines(run / "items.txt")))
    head = None
    if config.get("rating_head"):
        head = get_rating_head(config["rating_head"]).build(backbone.embedding_width(lm))
    model = build_model(config.get("prompt", "continuous"), lm, entities, head)
    if (run / PROMPT_WEIGHTS).is_file():
        model.load_prompt_state(load_file(str(run / PROMPT_WEIGHTS)))
    model.to(device)
    model.eval()
    return LoadedRun(run, manifest, model, tokenizer, entities)


def _load_backbone_model(run: Path, backbone: Any, backbone_path: str | None) -> Any:
    if not (run / BACKBONE_WEIGHTS).is_file():
        return backbone.load_model(backbone_path)
    # A tuned backbone is complete in the run: build it from its config, no pretrained download needed.
    from transformers import AutoConfig, AutoModelForCausalLM

    config_dict = json.loads((run / BACKBONE_CONFIG).read_text(encoding="utf-8"))
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config)
    backbone.load_tuned(model, run / BACKBONE_WEIGHTS)
    return model


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()
