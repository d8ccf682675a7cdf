"""PEPLER as a model plugin (``pepler.models`` entry point ``pepler``, registered by pepler-cli itself).

Everything PEPLER-specific about a run lives here: the backbone plugin and its weights, the prompt kind, the
rating head, LoRA adapters, the tuning strategy's stages, the learned feature predictor and the files a run holds
for them (``runs.py`` lists the file names). ``pepler train`` and ``load_run`` call only the
``plugins.ModelPlugin`` protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pepler_cli.config import TrainConfig
from pepler_cli.errors import PeplerError
from pepler_cli.modeling.base import PromptModel, is_adapter_parameter
from pepler_cli.modeling.build import build_model, initial_model, prompt_digest
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.modeling.feature_scorer import fit_feature_scorer, save_feature_scorer
from pepler_cli.modeling.special_tokens import explanation_start, special_tokens
from pepler_cli.plugins import (
    Backbone,
    Built,
    CausalLM,
    TrainingSetup,
    get_backbone,
    get_rating_head,
    load_backbone_model,
)
from pepler_cli.runs import (
    ADAPTER_WEIGHTS,
    BACKBONE_CONFIG,
    BACKBONE_WEIGHTS,
    FEATURE_SCORER,
    MANIFEST,
    PROMPT_WEIGHTS,
    RUN_FORMAT,
    TOKENIZER_DIR,
)
from pepler_cli.strategies import Stage, stages_of, uses_lora


class PeplerPlugin:
    """PEPLER (continuous prompt) and PEPLER-D (discrete prompt) on any backbone plugin."""

    name = "pepler"
    description = "PEPLER: a pretrained LM behind learned user/item vectors (or item features, PEPLER-D)"

    def resolve(self, config: TrainConfig) -> TrainConfig:
        # PEPLER's own options are checked and filled in by TrainConfig itself (its flags are pepler's).
        if config.model_options:
            names = ", ".join(sorted(config.model_options))
            raise PeplerError(f"--model-option {names}: model pepler takes none (its options are flags)", 2)
        return config

    def build(self, setup: TrainingSetup) -> Built:
        config = setup.config
        backbone = get_backbone(config.backbone)
        head_plugin = get_rating_head(config.rating_head) if config.rating_head else None
        tokenizer = backbone.load_tokenizer(config.backbone_path)
        assert config.strategy is not None  # filled in by TrainConfig
        lora = None
        if uses_lora(config.strategy):
            from pepler_cli.modeling.lora import LoraSettings  # peft: only LoRA runs pay its import

            targets = tuple(config.lora_targets) if config.lora_targets else None
            lora = LoraSettings(config.lora_rank, config.lora_alpha, config.lora_dropout, targets)
        model, lora = initial_model(
            config.prompt,
            backbone,
            config.backbone_path,
            setup.entities,
            head_plugin,
            seed=config.seed,
            from_scratch=config.from_scratch,
            lora=lora,
            trust_remote_code=config.trust_remote_code,
        )  # seeds the global generator
        special = special_tokens(tokenizer, explanation_start(tokenizer))
        model.lead = special.lead
        manifest: dict[str, Any] = {
            "model": {"prompt": config.prompt, "width": backbone.embedding_width(model.lm)},
            "backbone": {
                "name": config.backbone,
                "weights": backbone.describe_weights(config.backbone_path),
                "from_scratch": config.from_scratch,
                "trust_remote_code": config.trust_remote_code,  # loading the run passes the same
            },
        }
        initial = prompt_digest(model)
        if initial is not None:
            manifest["initial"] = {"prompt_sha256": initial}  # what `pepler attention --before` rebuilds
        if lora is not None:
            manifest["lora"] = lora.as_dict()
        return Built(model, tokenizer, special, None, manifest)

    def stages(self, config: TrainConfig) -> tuple[Stage, ...]:
        assert config.strategy is not None  # filled in by TrainConfig
        return stages_of(config.strategy)

    def write(self, built: Built, setup: TrainingSetup, directory: Path) -> dict[str, Any]:
        model: PromptModel = built.model  # type: ignore[assignment]
        config = setup.config
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
        backbone = get_backbone(config.backbone)
        # A backbone trained from scratch cannot be referenced by name: its weights are stored like tuned ones.
        tuned = config.from_scratch or any("lm" in s.trains for s in self.stages(config))
        if tuned:
            backbone.save_tuned(model.lm, directory / BACKBONE_WEIGHTS)
            (directory / BACKBONE_CONFIG).write_text(
                json.dumps(backbone.architecture(model.lm)), encoding="utf-8"
            )
        fields: dict[str, Any] = {"backbone_weights": "tuned" if tuned else "frozen (referenced by name)"}
        if config.feature_hint != "none" and isinstance(model, ContinuousPromptModel):
            # The learned feature predictor, fitted on the trained vectors (a discrete prompt has none).
            train_numbers, valid_numbers = setup.dataset.splits[config.split][:2]
            scorer, hit_rate = fit_feature_scorer(
                model, setup.entities, setup.dataset.records, train_numbers, valid_numbers, config.seed
            )
            save_feature_scorer(scorer, directory / FEATURE_SCORER, hit_rate)
            fields["feature_scorer"] = {"validation_hit_rate": round(hit_rate, 4)}
        return fields

    def load(
        self,
        run: Path,
        manifest: dict[str, Any],
        entities: EntityIndex,
        device: torch.device,
        trust_remote_code: bool = False,
    ) -> Built:
        config = manifest["config"]
        _check_fields(run, config)
        if config.get("trust_remote_code") is True and not trust_remote_code:
            raise PeplerError(
                f"{run / MANIFEST}: the run was trained with --trust-remote-code (its backbone "
                f"{config.get('backbone_path') or config['backbone']} runs its own code); pass "
                "--trust-remote-code if you trust it"
            )
        backbone = _plugin(run, "backbone", get_backbone, config["backbone"])
        # Read as data even for a run trained with --trust-remote-code (Backbone.load_tokenizer never runs code).
        tokenizer = backbone.load_tokenizer(str(run / TOKENIZER_DIR))
        lm = _backbone_model(run, backbone, manifest)
        head = None
        if config.get("rating_head"):
            head_plugin = _plugin(run, "rating_head", get_rating_head, config["rating_head"])
            head = head_plugin.build(backbone.embedding_width(lm))
        prompt = config.get("prompt", "continuous")
        model = build_model(prompt, lm, entities, head)
        _load_prompt(run, model, prompt, config)
        # Runs from before explanation starts were recorded were trained after <bos> alone.
        special = special_tokens(tokenizer, (manifest.get("model") or {}).get("explanation_start"))
        model.lead = special.lead
        return Built(model, tokenizer, special)


def _check_fields(run: Path, config: dict[str, Any]) -> None:
    """The manifest fields PEPLER's loading reads, checked first: one line naming the field, never a crash."""
    path = run / MANIFEST

    def wrong(field: str, expected: str, value: Any) -> PeplerError:
        shown = repr(value)
        shown = shown[:60] + "…" if len(shown) > 60 else shown
        return PeplerError(f"{path}: field {field!r}: expected {expected}, got {shown}")

    if not isinstance(config.get("backbone"), str):
        raise wrong("config.backbone", "a backbone plugin's name", config.get("backbone"))
    for name in ("backbone_path", "rating_head"):
        if config.get(name) is not None and not isinstance(config[name], str):
            raise wrong(f"config.{name}", "a string or nothing", config[name])
    if config.get("prompt", "continuous") not in ("continuous", "discrete"):
        raise wrong("config.prompt", "continuous or discrete", config.get("prompt"))


def _load_prompt(run: Path, model: PromptModel, prompt: str, config: dict[str, Any]) -> None:
    """The user/item vectors and rating head of a continuous prompt; a discrete prompt has no such file."""
    if bool(model.prompt_state()) != (run / PROMPT_WEIGHTS).is_file():
        holds = "holds no" if model.prompt_state() else "holds a"
        raise PeplerError(
            f"{run / MANIFEST}: field 'config.prompt' is {prompt!r}, but the run {holds} {PROMPT_WEIGHTS}"
        )
    if not (run / PROMPT_WEIGHTS).is_file():
        return
    try:
        model.load_prompt_state(load_file(str(run / PROMPT_WEIGHTS)))
    except (KeyError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200]
        raise PeplerError(
            f"{run / PROMPT_WEIGHTS}: does not fit the model that {MANIFEST} field 'config' describes "
            f"(rating head {config.get('rating_head')!r}): {detail}"
        ) from None


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


PEPLER = PeplerPlugin()
