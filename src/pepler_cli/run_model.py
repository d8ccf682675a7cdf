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

from pepler_cli.errors import PeplerError
from pepler_cli.files import sha256_file, yaml_text
from pepler_cli.modeling.base import PromptModel, is_adapter_parameter
from pepler_cli.modeling.build import build_model
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.modeling.feature_scorer import FeatureScorer, save_feature_scorer
from pepler_cli.modeling.special_tokens import SpecialTokens, special_tokens
from pepler_cli.plugins import (
    Backbone,
    CausalLM,
    Tokenizer,
    get_backbone,
    get_rating_head,
    load_backbone_model,
)
from pepler_cli.runs import (
    ADAPTER_WEIGHTS,
    BACKBONE_CONFIG,
    BACKBONE_WEIGHTS,
    FEATURE_SCORER,
    ITEMS,
    MANIFEST,
    PROMPT_WEIGHTS,
    RUN_FORMAT,
    TOKENIZER_DIR,
    USERS,
    check_loadable,
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
    feature_scorer: tuple[FeatureScorer, float] | None = None,
) -> dict[str, Any]:
    """Write every file of a run into ``directory`` (a temporary one); returns the manifest written.
    ``feature_scorer``: the fitted learned feature predictor and its validation hit rate, if any."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.prompt_state().items()}
    if tensors:  # a discrete prompt is words: nothing of its own to save
        save_file(tensors, str(directory / PROMPT_WEIGHTS), metadata={"format": RUN_FORMAT})
    adapters = {
        name: p.detach().to("cpu").contiguous()
        for name, p in model.lm.named_parameters()
        if is_adapter_parameter(name)  # only the adapters leave the device, not the whole LM
    }
    if adapters:
        save_file(adapters, str(directory / ADAPTER_WEIGHTS), metadata={"format": RUN_FORMAT})
    if backbone_tuned:
        backbone.save_tuned(model.lm, directory / BACKBONE_WEIGHTS)
        (directory / BACKBONE_CONFIG).write_text(
            json.dumps(backbone.architecture(model.lm)), encoding="utf-8"
        )
    if feature_scorer is not None:
        save_feature_scorer(feature_scorer[0], directory / FEATURE_SCORER, feature_scorer[1])
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
    special: SpecialTokens  # how the run frames explanations: its recorded start, or <bos> (older runs)

    @property
    def feature_hint(self) -> str:
        """The --feature-hint the run was trained with ("none" for runs from before hints existed)."""
        return str(self.manifest.get("config", {}).get("feature_hint") or "none")


def load_run(run: Path, device: torch.device, trust_remote_code: bool = False) -> LoadedRun:
    """Rebuild the model of a finished run after checking every file's hash.

    A run trained with ``--trust-remote-code`` loads only when the caller trusts it too: a run directory
    from a stranger must not make ``generate`` run the code its manifest points to.
    """
    run = Path(run)
    manifest = read_manifest(run)
    check_loadable(run, manifest)
    verify_files(run, manifest)
    config = manifest["config"]
    if config.get("trust_remote_code") is True and not trust_remote_code:
        raise PeplerError(
            f"{run / MANIFEST}: the run was trained with --trust-remote-code (its backbone "
            f"{config.get('backbone_path') or config['backbone']} runs its own code); pass --trust-remote-code "
            "if you trust it"
        )
    backbone = _plugin(run, "backbone", get_backbone, config["backbone"])
    # Read as data even for a run trained with --trust-remote-code (Backbone.load_tokenizer never runs code).
    tokenizer = backbone.load_tokenizer(str(run / TOKENIZER_DIR))
    lm = _backbone_model(run, backbone, manifest)
    entities = EntityIndex(tuple(_read_lines(run / USERS)), tuple(_read_lines(run / ITEMS)))
    head = None
    if config.get("rating_head"):
        head_plugin = _plugin(run, "rating_head", get_rating_head, config["rating_head"])
        head = head_plugin.build(backbone.embedding_width(lm))
    prompt = config.get("prompt", "continuous")
    model = build_model(prompt, lm, entities, head)
    if bool(model.prompt_state()) != (run / PROMPT_WEIGHTS).is_file():
        holds = "holds no" if model.prompt_state() else "holds a"
        raise PeplerError(
            f"{run / MANIFEST}: field 'config.prompt' is {prompt!r}, but the run {holds} {PROMPT_WEIGHTS}"
        )
    if (run / PROMPT_WEIGHTS).is_file():
        try:
            model.load_prompt_state(load_file(str(run / PROMPT_WEIGHTS)))
        except (KeyError, RuntimeError) as error:
            detail = " ".join(str(error).split())[:200]
            raise PeplerError(
                f"{run / PROMPT_WEIGHTS}: does not fit the model that {MANIFEST} field 'config' describes "
                f"(rating head {config.get('rating_head')!r}): {detail}"
            ) from None
    # Runs from before explanation starts were recorded were trained after <bos> alone.
    special = special_tokens(tokenizer, (manifest.get("model") or {}).get("explanation_start"))
    model.lead = special.lead
    model.to(device)
    model.eval()
    return LoadedRun(run, manifest, model, tokenizer, entities, special)


def _backbone_model(run: Path, backbone: Backbone, manifest: dict[str, Any]) -> CausalLM:
    """The LM as trained: rebuilt from the run when it was tuned, else the plugin's weights (checked to be the
    ones trained with), with the LoRA adapters of a LoRA run."""
    tuned = (run / BACKBONE_WEIGHTS).is_file()
    if tuned:
        lm = backbone.build_model(json.loads((run / BACKBONE_CONFIG).read_text(encoding="utf-8")))
    else:
        path = manifest["config"].get("backbone_path")
        _check_same_weights(run, manifest, backbone.describe_weights(path))
        # A run trained with --trust-remote-code loads its backbone the same way; every other never runs code.
        lm = load_backbone_model(backbone, path, manifest["config"].get("trust_remote_code") is True)
    if manifest.get("lora") is not None:
        # peft takes seconds to import: only LoRA runs pay for it.
        from pepler_cli.modeling.lora import LoraSettings, add_lora, load_adapter_state

        try:
            add_lora(lm, LoraSettings.from_dict(manifest["lora"]))
        except PeplerError as error:
            raise PeplerError(f"{run / MANIFEST}: field 'lora': {error.message}") from None
        if not tuned:
            load_adapter_state(lm, load_file(str(run / ADAPTER_WEIGHTS)))
    if tuned:
        backbone.load_tuned(lm, run / BACKBONE_WEIGHTS)
    return lm


def _plugin(run: Path, field: str, get: Any, name: str) -> Any:
    """A plugin the manifest names; an unknown name is an error naming the manifest's field."""
    try:
        return get(name)
    except PeplerError as error:
        raise PeplerError(
            f"{run / MANIFEST}: field 'config.{field}': {error.message}", error.exit_code
        ) from None


def _check_same_weights(run: Path, manifest: dict[str, Any], now: dict[str, Any]) -> None:
    """A frozen backbone is referenced, not copied: refuse other weights than the run was trained with.

    Only what the run recorded is compared (runs of older pepler versions recorded the source alone), and a
    field the plugin cannot tell now (None: a hub revision while offline and uncached) is not held against it.
    """
    recorded = (manifest.get("backbone") or {}).get("weights")
    if not isinstance(recorded, dict):
        return
    differ = {
        key: (value, now.get(key))
        for key, value in recorded.items()
        if value is not None and now.get(key) is not None and now.get(key) != value
    }
    differ.update(
        {key: (value, None) for key, value in recorded.items() if value is not None and key not in now}
    )
    if differ:
        field = min(differ)
        then, today = differ[field]
        raise PeplerError(
            f"{run / MANIFEST}: field 'backbone.weights.{field}': the run was trained on {_short(then)}, but "
            f"{recorded.get('source')} now loads {_short(today)}; train again, or restore the weights it used"
        )


def _short(value: Any) -> str:
    """A recorded weights field for one line: file hashes as their first 12 hex digits."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {str(v)[:12]}" for k, v in value.items()) + "}"
    return str(value)


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()
