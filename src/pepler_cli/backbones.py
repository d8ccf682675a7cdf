"""Shared machinery for backbone plugins built on Hugging Face causal LMs: plugins supply loading only.

Nothing loaded here runs code: weights are safetensors only (``PRETRAINED_OPTIONS``), tokenizers are read as
data, and a model that ships code of its own (``auto_map`` in config.json) is refused in one line
(:func:`refuse_custom_code`) unless ``pepler train --trust-remote-code`` asked for it.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_cli.errors import PeplerError
from pepler_cli.files import sha256_file

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# Weights only from safetensors files: a pytorch_model.bin is a pickle, and unpickling can run code.
PRETRAINED_OPTIONS: dict[str, Any] = {"use_safetensors": True}
TRUST_HINT = "pepler runs a model's own code only with `pepler train --trust-remote-code`"


def refuse_custom_code(source: str) -> None:
    """Refuse, in one line naming the file, a local model directory whose config.json asks to run code it
    ships (``auto_map``) for a model type transformers does not know; read as JSON, nothing is imported.

    A hub id is not looked at here: transformers itself refuses it when ``trust_remote_code`` is false, and
    :func:`custom_code_error` turns that refusal into the same kind of line.
    """
    config_file = Path(source) / "config.json"
    if not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not ours to judge: transformers names the problem
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not auto_map:
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if config.get("model_type") in CONFIG_MAPPING:
        return  # transformers has the code of this model type itself and never imports the shipped one
    shipped = ", ".join(sorted(set(_class_names(auto_map))))
    raise PeplerError(
        f"{config_file}: field 'auto_map' names code shipped with the model ({shipped}); {TRUST_HINT}"
    )


def custom_code_error(source: str, error: Exception, tokenizer: bool = False) -> PeplerError | None:
    """transformers' refusal to run shipped code (``trust_remote_code`` false) as one line; None for any
    other error. A tokenizer's code never runs, flag or not: a run's tokenizer files must load as data."""
    if "trust_remote_code" not in str(error):
        return None
    if tokenizer:
        return PeplerError(
            f"cannot load {source!r}: its tokenizer needs code of its own, and pepler reads tokenizers as data "
            "only (never running their code, even with --trust-remote-code)"
        )
    return PeplerError(
        f"cannot load {source!r}: it ships code of its own that must run to load it; {TRUST_HINT}"
    )


def _class_names(auto_map: Any) -> list[str]:
    """The ``module.Class`` names of an ``auto_map`` (values are names, or [slow, fast] pairs of them)."""
    values = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    names: list[str] = []
    for value in values:
        names.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v)
    return names


# What from_pretrained reads weights from (pepler loads safetensors only; GGUF through its own plugin).
WEIGHT_SUFFIXES = (".safetensors", ".gguf")
_SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{40})/")


def weight_file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every weight file of a model directory, by name: what identifies the weights it loads."""
    files = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return {p.name: _file_hash(p, p.stat().st_size, p.stat().st_mtime_ns) for p in files}


@functools.cache
def _file_hash(path: Path, size: int, mtime_ns: int) -> str:
    """Hashed once per process while the file is unchanged (size and mtime are part of the key)."""
    return sha256_file(path)


def hub_revision(repo_id: str) -> str | None:
    """The commit a hub id resolves to, as from_pretrained resolves it (online: the hub's ``main`` now;
    offline: the cached snapshot), or None when it cannot be resolved."""
    try:
        from huggingface_hub import hf_hub_download

        resolved = hf_hub_download(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - any failure (network, unknown id, bad name) means "cannot tell"
        return None
    found = _SNAPSHOT.search(Path(resolved).as_posix())
    return found.group(1) if found else None


class HuggingFaceBackbone:
    """Architecture, save/load and width for any ``transformers`` causal LM.

    safetensors' ``save_model``/``load_model`` are used rather than ``save_file(state_dict)`` because GPT-2
    ties its output layer to the word embeddings, and shared tensors must be written once. transformers and
    safetensors are imported where used: importing a plugin stays cheap, so ``pepler plugins`` is quick.
    """

    name: str = ""
    description: str = ""
    hub_id: str = ""

    def describe_weights(self, path: str | None = None) -> dict[str, Any]:
        """A local directory by the sha256 of each weight file; a hub id by the commit it resolves to now
        (None when that cannot be told: offline and not cached; the load then fails on its own)."""
        source = path or self.hub_id
        if Path(source).is_dir():
            return {"source": source, "files": weight_file_hashes(Path(source))}
        return {"source": source, "revision": hub_revision(source)}

    def architecture(self, model: PreTrainedModel) -> dict[str, Any]:
        architecture = json.loads(model.config.to_json_string())
        # How the weights were stored (a GGUF file, say) is not part of the architecture.
        architecture.pop("quantization_config", None)
        return architecture

    def build_model(self, architecture: dict[str, Any]) -> PreTrainedModel:
        from transformers import AutoConfig, AutoModelForCausalLM

        # from_config with no trust_remote_code could ask on the terminal whether to run shipped code.
        model_type = architecture.get("model_type")
        try:
            config = AutoConfig.for_model(**architecture)
        except (ValueError, KeyError, TypeError) as error:
            # A model type transformers does not know needs its own code, which a saved run never runs.
            raise PeplerError(
                f"backbone architecture {model_type!r}: transformers cannot build it without its own code "
                f"({' '.join(str(error).split())[:160]}); pepler rebuilds tuned backbones from built-in types only"
            ) from None
        return AutoModelForCausalLM.from_config(config, trust_remote_code=False)

    def embedding_width(self, model: PreTrainedModel) -> int:
        return int(model.get_input_embeddings().embedding_dim)

    def save_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import save_model

        save_model(model, str(path))

    def load_tuned(self, model: PreTrainedModel, path: Path) -> None:
        from safetensors.torch import load_model

        load_model(model, str(path), strict=True)
