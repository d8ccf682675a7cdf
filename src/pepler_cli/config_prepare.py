"""The options of ``pepler prepare``: one pydantic model, from a YAML file and/or the command line.

A YAML file given with ``--config`` uses the option names as keys (``user-field`` or ``user_field``); flags
on the command line override it. The resolved options are saved in the dataset's manifest under ``config``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pepler_cli.errors import UsageError

NETE_DATASETS = ("tripadvisor", "amazon", "yelp")
RAW_ONLY_OPTIONS = ("user_field", "item_field", "rating_field", "text_field", "seed")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PrepareConfig(BaseModel):
    """Everything ``pepler prepare`` needs, checked together."""

    model_config = ConfigDict(extra="forbid")

    source_or_dataset: str = Field(
        description="tripadvisor, amazon or yelp (NETE format, with --source), or a raw reviews file"
    )
    source: Path | None = Field(
        None, description="folder of a downloaded NETE dataset (reviews.pickle, 1..5/)"
    )
    name: str | None = Field(None, description="dataset name; required for raw reviews")
    out: Path | None = Field(None, description="output folder; default data/<name>")
    overwrite: bool = Field(False, description="replace an existing output folder")
    seed: int = Field(1234, description="seed of the five random splits (raw reviews)")
    user_field: str = Field("reviewerID", min_length=1, description="input field holding the user id")
    item_field: str = Field("asin", min_length=1, description="input field holding the item id")
    rating_field: str = Field("overall", min_length=1, description="input field holding the rating")
    text_field: str = Field("reviewText", min_length=1, description="input field holding the review text")
    max_explanation_tokens: int = Field(
        20, ge=1, le=1024, description="GPT-2 BPE tokens kept per explanation"
    )

    @property
    def kind(self) -> Literal["nete", "raw"]:
        return "nete" if self.source_or_dataset in NETE_DATASETS else "raw"

    @property
    def dataset_name(self) -> str:
        return self.name or self.source_or_dataset

    @property
    def output(self) -> Path:
        return self.out if self.out is not None else Path("data") / self.dataset_name

    @model_validator(mode="after")
    def _check_mode(self) -> PrepareConfig:
        if self.name is not None and not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"--name {self.name!r}: use letters, digits, '.', '_' and '-' only (it names a folder)"
            )
        if self.kind == "nete":
            given = [option for option in RAW_ONLY_OPTIONS if option in self.model_fields_set]
            if given:
                flags = ", ".join("--" + option.replace("_", "-") for option in given)
                raise ValueError(
                    f"{flags}: only for raw review files; {self.source_or_dataset} comes with its own "
                    "five splits"
                )
        else:
            if self.source is not None:
                raise ValueError(
                    f"--source is for the paper's datasets ({', '.join(NETE_DATASETS)}); a raw reviews "
                    "file is given as the first argument"
                )
            if self.name is None:
                raise ValueError(
                    f"raw reviews {self.source_or_dataset} need --name NAME (it names data/NAME and the "
                    "manifest)"
                )
        return self


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML config file, keys normalised to option names with underscores."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(
            f"--config {path}: not a readable YAML file ({' '.join(str(error).split())})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def resolve_prepare_config(cli: dict[str, Any], config_file: Path | None = None) -> PrepareConfig:
    """File values, overridden by the flags that were given (``None`` means "not given")."""
    values = read_config_file(config_file) if config_file is not None else {}
    known = set(PrepareConfig.model_fields)
    unknown = sorted(set(values) - known)
    if unknown:
        where = f"--config {config_file}"
        valid = ", ".join(sorted(key.replace("_", "-") for key in known))
        raise UsageError(f"{where}: unknown key {unknown[0].replace('_', '-')!r} (valid keys: {valid})")
    values.update({key: value for key, value in cli.items() if value is not None})
    if "source_or_dataset" not in values:
        raise UsageError(
            "missing SOURCE_OR_DATASET: give tripadvisor, amazon or yelp (with --source DIR), or a raw "
            "reviews file (with --name NAME); see pepler prepare --help"
        )
    try:
        return PrepareConfig(**values)
    except ValidationError as error:
        raise UsageError(_validation_message(error, config_file)) from None


def _validation_message(error: ValidationError, config_file: Path | None) -> str:
    problem = error.errors()[0]
    location = ".".join(str(part) for part in problem.get("loc", ()))
    message = str(problem.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if location:
        suffix = f" (from --config {config_file})" if config_file is not None else ""
        return f"--{location.replace('_', '-')}: {message}{suffix}"
    return message
