"""A trained model into a run directory, and back: the model plugin writes and rebuilds its own tensors.

Loading a run needs no training code: the manifest names the model plugin (``config.model``; runs from before
model plugins are PEPLER's), which rebuilds the model from the run's files (``plugins.ModelPlugin.load``). This
module writes and checks what every run has: users.txt, items.txt, the tokenizer and the manifest with the sha256
of every file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pepler_cli.errors import PeplerError
from pepler_cli.files import sha256_file, yaml_text
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.paper import DEFAULT_MODEL, MAX_EXPLANATION_TOKENS
from pepler_cli.plugins import (
    Built,
    ExplanationModel,
    ModelPlugin,
    SpecialTokens,
    Tokenizer,
    TrainingSetup,
    get_model,
)
from pepler_cli.runs import (
    ITEMS,
    MANIFEST,
    TOKENIZER_DIR,
    USERS,
    check_loadable,
    read_manifest,
    verify_files,
)


def write_run_files(
    directory: Path, plugin: ModelPlugin, built: Built, setup: TrainingSetup, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Write every file of a run into ``directory`` (a temporary one); returns the manifest written."""
    manifest = {**manifest, **plugin.write(built, setup, directory)}
    entities = setup.entities
    (directory / USERS).write_text("".join(f"{u}\n" for u in entities.users), encoding="utf-8")
    (directory / ITEMS).write_text("".join(f"{i}\n" for i in entities.items), encoding="utf-8")
    built.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
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
    model: ExplanationModel
    tokenizer: Tokenizer
    entities: EntityIndex
    special: SpecialTokens  # how the run frames explanations: its recorded start, or <bos> (older runs)

    @property
    def feature_hint(self) -> str:
        """The --feature-hint the run was trained with ("none" for runs from before hints existed)."""
        return str(self.manifest.get("config", {}).get("feature_hint") or "none")

    @property
    def model_name(self) -> str:
        """The model plugin that trained the run (runs from before model plugins: pepler)."""
        return str(self.manifest.get("config", {}).get("model") or DEFAULT_MODEL)

    @property
    def max_tokens(self) -> int:
        """How many tokens generation writes at most by default: the run's explanation length (the baselines'
        authors' 15 words), else the paper's 20 BPE tokens."""
        return int((self.manifest.get("model") or {}).get("max_tokens") or MAX_EXPLANATION_TOKENS)


def load_run(run: Path, device: torch.device, trust_remote_code: bool = False) -> LoadedRun:
    """Rebuild the model of a finished run after checking every file's hash.

    A run trained with ``--trust-remote-code`` loads only when the caller trusts it too: a run directory
    from a stranger must not make ``generate`` run the code its manifest points to.
    """
    run = Path(run)
    manifest = read_manifest(run)
    check_loadable(run, manifest)
    verify_files(run, manifest)
    name = manifest["config"].get("model") or DEFAULT_MODEL
    try:
        plugin = get_model(name)
    except PeplerError as error:
        raise PeplerError(
            f"{run / MANIFEST}: field 'config.model': {error.message}", error.exit_code
        ) from None
    entities = EntityIndex(tuple(_read_lines(run / USERS)), tuple(_read_lines(run / ITEMS)))
    built = plugin.load(run, manifest, entities, device, trust_remote_code)
    model = built.model
    model.to(device)
    model.eval()
    return LoadedRun(run, manifest, model, built.tokenizer, entities, built.special)


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()
