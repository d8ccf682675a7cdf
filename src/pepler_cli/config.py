"""Typed, documented options of ``train`` and ``generate``: YAML in, validated, YAML out.

Each field's description is the help text of its command-line flag, so the two never drift apart.
Options may come from ``--config FILE.yaml`` (keys are the field names, with - or _); flags given on the
command line override the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pepler_cli.errors import PeplerError, UsageError

PromptKind = Literal["continuous", "discrete"]
Strategy = Literal["sequential", "prompt-only", "joint", "fixed-prompt"]
Decoding = Literal["greedy", "beam", "top-k", "top-p"]
# The paper's learning rates: 1e-3 for the continuous prompt, 1e-4 for the discrete one.
DEFAULT_LEARNING_RATE = {"continuous": 1e-3, "discrete": 1e-4}
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path = Field(description="Prepared dataset directory (made by `pepler prepare`).")
    split: int = Field(1, ge=1, le=5, description="Which of the dataset's five splits to train on.")
    out: Path = Field(description="Run directory to create (written atomically when training ends).")
    prompt: PromptKind = Field(
        "continuous", description="continuous: learned user/item vectors (PEPLER); discrete: item features as words (PEPLER-D)."
    )
    strategy: Strategy | None = Field(
        None,
        description="sequential: prompt, then prompt+LM (continuous default); prompt-only: LM frozen; joint: both "
        "from the start; fixed-prompt: LM only (discrete default).",
    )
    backbone: str = Field("gpt2", description="Backbone plugin name (see `pepler plugins`).")
    backbone_path: str | None = Field(
        None, description="Local directory with the backbone's weights instead of the hub id."
    )
    rating_head: str | None = Field(None, description="Rating head plugin (mf, mlp) for recommendation as regularization.")
    rating_weight: float = Field(0.01, ge=0, description="λ: weight of the rating MSE in the loss (with --rating-head).")
    learning_rate: float | None = Field(
        None, gt=0, description="AdamW learning rate (default: the paper's 1e-3 continuous, 1e-4 discrete)."
    )
    batch_size: int = Field(128, ge=1, description="Examples per batch (paper: 128).")
    epochs: int = Field(100, ge=1, description="Most epochs per stage; early stopping usually ends a stage first.")
    patience: int = Field(5, ge=1, description="Stop a stage after this many epochs without a better validation loss.")
    seed: int = Field(1111, description="Random seed: same seed, same data, same run.")
    bucket_by_length: bool = Field(
        False, description="Batch explanations of similar length together (less padding; batches differ from the paper's)."
    )
    device: Device = Field("auto", description="auto: cuda when available, else cpu.")
    precision: Precision = Field("auto", description="auto: bf16 autocast on CUDA when supported, fp32 on CPU.")
    overwrite: bool = Field(
        False,
        description="Replace an existing run directory (only after the new run is complete) and discard an "
        "interrupted run's checkpoint.",
    )
    resume: bool = Field(
        False,
        description="Continue an interrupted run from its checkpoint (<out>.checkpoint, saved after every epoch) "
        "with the same options; starts afresh when there is none.",
    )

    @model_validator(mode="after")
    def _check_and_fill_defaults(self) -> TrainConfig:
        from pepler_cli.training.strategies import DEFAULT_STRATEGY, STRATEGIES_OF_PROMPT

        if self.rating_head is None and "rating_weight" in self.model_fields_set and self.rating_weight > 0:
            raise ValueError("--rating-weight needs --rating-head")
        if self.prompt == "discrete" and self.rating_head is not None:
            raise ValueError("--rating-head needs the continuous prompt: the discrete prompt has no user/item vectors")
        if self.strategy is None:
            self.strategy = DEFAULT_STRATEGY[self.prompt]
        if self.strategy not in STRATEGIES_OF_PROMPT[self.prompt]:
            allowed = ", ".join(STRATEGIES_OF_PROMPT[self.prompt])
            raise ValueError(f"--strategy {self.strategy} does not apply to the {self.prompt} prompt (use {allowed})")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATE[self.prompt]
        return self


class GenerateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: Path = Field(description="Run directory made by `pepler train`.")
    data: Path | None = Field(None, description="Prepared dataset (default: the one the run was trained on).")
    split: Literal["train", "validation", "test"] = Field("test", description="Which part of the split to explain.")
    split_number: int | None = Field(
        None, ge=1, le=5, description="Which of the five splits (default: the one the run was trained on)."
    )
    out: Path = Field(description="Where to write the predictions (JSON lines).")
    max_tokens: int = Field(20, ge=1, le=512, description="Most tokens per explanation (paper: 20).")
    decoding: Decoding = Field("greedy", description="greedy (the paper's), beam, top-k or top-p sampling.")
    beams: int = Field(4, ge=1, le=64, description="Beam width for --decoding beam.")
    top_k: int = Field(50, ge=1, description="Sample among the k most likely tokens (--decoding top-k).")
    top_p: float = Field(0.9, gt=0, le=1, description="Sample from the smallest set of tokens with this much probability (--decoding top-p).")
    temperature: float = Field(1.0, gt=0, description="Divide the logits by this before sampling.")
    seed: int = Field(1111, description="Seed for sampling: the same seed gives the same explanations.")
    batch_size: int = Field(256, ge=1, description="Examples decoded together.")
    limit: int | None = Field(None, ge=1, description="Explain only the first N examples of the part.")
    device: Device = Field("auto", description="auto: cuda when available, else cpu.")
    overwrite: bool = Field(False, description="Replace an existing predictions file.")


def help_of(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].description or ""


def load_yaml_options(path: Path | None) -> dict[str, Any]:
    """Options from a YAML file, keys normalised to field names; {} when no file is given."""
    if path is None:
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise PeplerError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise PeplerError(f"{path}: a config file must be a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def resolve(model: type[BaseModel], config_file: Path | None, flags: dict[str, Any]) -> Any:
    """File options, overridden by the flags that were actually given, validated by ``model``."""
    options = load_yaml_options(config_file)
    options.update({k: v for k, v in flags.items() if v is not None})
    try:
        return model(**options)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        source = f"{config_file}: " if config_file else ""
        raise UsageError(f"{source}option {where.replace('_', '-')}: {first['msg']}") from None


def to_yaml_dict(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")
