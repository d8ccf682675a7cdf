"""The options of every command as typed, validated models: from a YAML file and/or the command line.

A YAML file given with ``--config`` uses the option names as keys (``user-field`` or ``user_field``); flags
given on the command line override it. Cross-field rules live in the validators, so a library user calling
``pepler_cli.train(TrainConfig(...))`` gets the same checks as the command line. The resolved options are saved
with every output (dataset manifest, run manifest, predictions sidecar). Each flag's help text lives with the
flag in ``cli/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pepler_cli.data.nete import NETE_DATASETS
from pepler_cli.errors import PeplerError, UsageError
from pepler_cli.files import read_yaml_mapping
from pepler_cli.paper import DEFAULT_MODEL, MAX_EXPLANATION_TOKENS, TRUNCATION_TOKENIZER
from pepler_cli.strategies import DEFAULT_STRATEGY, STRATEGIES_OF_PROMPT, uses_lora

RAW_ONLY_OPTIONS = ("user_field", "item_field", "rating_field", "text_field", "seed")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

PromptKind = Literal["continuous", "discrete"]
Strategy = Literal["sequential", "prompt-only", "joint", "fixed-prompt", "lora", "sequential-lora"]
Decoding = Literal["greedy", "beam", "top-k", "top-p"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16"]
UnknownPairs = Literal["error", "skip"]
# generate --cold-start: what users and items a run knows little or nothing of get (generation/cold_start.py)
ColdStart = Literal["error", "mean", "neighbours", "features"]
# --feature-hint: a feature's words after the prompt (generation/hints.py); "given" reads the test record.
FeatureHint = Literal["none", "given", "predicted"]
FeaturePredictor = Literal["counts", "learned"]
GroupBy = Literal["user-activity", "item-popularity", "rating", "sentiment"]  # score --by
# The paper's learning rates: 1e-3 for the continuous prompt, 1e-4 for the discrete one.
DEFAULT_LEARNING_RATE = {"continuous": 1e-3, "discrete": 1e-4}

Options = TypeVar("Options", bound=BaseModel)


class PrepareConfig(BaseModel):
    """``pepler prepare``: one of the paper's NETE datasets (with ``source``) or a raw reviews file."""

    model_config = ConfigDict(extra="forbid")

    source_or_dataset: str
    source: Path | None = None  # folder of a downloaded NETE dataset
    name: str | None = None  # required for raw reviews
    out: Path | None = None  # default data/<name>
    overwrite: bool = False
    seed: int = 1234  # of the five random splits (raw reviews)
    user_field: str = Field("reviewerID", min_length=1)
    item_field: str = Field("asin", min_length=1)
    rating_field: str = Field("overall", min_length=1)
    text_field: str = Field("reviewText", min_length=1)
    max_explanation_tokens: int = Field(MAX_EXPLANATION_TOKENS, ge=1, le=1024)
    # The backbone plugin whose tokenizer counts explanation tokens.
    tokenizer: str = Field(TRUNCATION_TOKENIZER, min_length=1)
    clean_up_spaces: bool = True  # clean decoded references as the authors' transformers 4.x did
    # Keep validation/test records whose user or item the training part never holds (NETE's given splits).
    allow_unseen: bool = False
    # Add a cold-user and a cold-item split whose cold ones keep at most this many training records.
    cold_start: int | None = Field(None, ge=0)

    @property
    def kind(self) -> Literal["nete", "raw"]:
        return "nete" if self.source_or_dataset in NETE_DATASETS else "raw"

    @property
    def dataset_name(self) -> str:
        return self.name or self.source_or_dataset

    @property
    def output(self) -> Path:
        return self.out if self.out is not None else Path("data") / self.dataset_name

    @model_validator(mode="before")
    @classmethod
    def _check_given(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("source_or_dataset") is None:
            raise ValueError(
                "missing SOURCE_OR_DATASET: give tripadvisor, amazon or yelp (with --source DIR), or a raw reviews "
                "file (with --name NAME); see pepler prepare --help"
            )
        return values

    @model_validator(mode="after")
    def _check_mode(self) -> PrepareConfig:
        if self.name is not None and not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"--name {self.name!r}: use letters, digits, '.', '_' and '-' only (it names a folder)"
            )
        if self.kind == "nete":
            given = [option for option in RAW_ONLY_OPTIONS if option in self.model_fields_set]
            if self.cold_start is not None and "seed" in given:
                given.remove("seed")  # it seeds the cold-start splits, which pepler makes for NETE data too
            if given:
                flags = ", ".join(_flag(option) for option in given)
                raise ValueError(
                    f"{flags}: only for raw review files; {self.source_or_dataset} comes with its own five splits"
                )
            return self
        if self.allow_unseen:
            raise ValueError(
                "--allow-unseen is for the paper's datasets (their given splits): the splits pepler makes for "
                "raw reviews hold every user and item in training"
            )
        if self.source is not None:
            raise ValueError(
                f"--source is for the paper's datasets ({', '.join(NETE_DATASETS)}); a raw reviews file is given "
                "as the first argument"
            )
        if self.name is None:
            raise ValueError(
                f"raw reviews {self.source_or_dataset} need --name NAME (it names data/NAME and the manifest)"
            )
        return self


class TrainConfig(BaseModel):
    """``pepler train``: a prepared dataset's split in, a run directory out."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    split: int = Field(1, ge=1)  # 1..5, or a cold-start split after them (the dataset says which it has)
    out: Path
    # The model plugin (plugins.ModelPlugin; `pepler plugins` lists them): pepler, or a baseline such as peter.
    model: str = Field(DEFAULT_MODEL, min_length=1)
    model_options: dict[str, Any] = {}  # a model plugin's own hyper-parameters (none for pepler)
    # PEPLER's options below (prompt … lora_targets, fsdp, trust_remote_code); other models refuse them.
    prompt: PromptKind | None = None  # default: continuous
    strategy: Strategy | None = None  # default: the prompt kind's (DEFAULT_STRATEGY)
    backbone: str | None = None  # default: gpt2
    backbone_path: str | None = None
    from_scratch: bool = False  # the backbone's architecture, randomly initialised (seeded), not its weights
    rating_head: str | None = None
    # λ, the authors' rating_reg; a model plugin may have its own default (NRT 1, PETER 0.1), as for batch_size.
    rating_weight: float = Field(0.01, ge=0)
    learning_rate: float | None = Field(None, gt=0)  # default: DEFAULT_LEARNING_RATE of the prompt kind
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(100, ge=1)
    patience: int = Field(5, ge=1)
    # torch takes 64-bit seeds, and each epoch is shuffled with seed * 1000 + epoch.
    seed: int = Field(1111, ge=-(10**15), le=10**15)
    max_train_examples: int | None = Field(None, ge=1)  # a seeded random subset of the training part
    bucket_by_length: bool = False
    # Train although validation/test records of the split have a user or item training never holds.
    allow_unseen: bool = False
    # Let a hub backbone run its own code (config.json auto_map); recorded in the run, which loads the same way.
    trust_remote_code: bool = False
    lora_rank: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: list[str] | None = None  # module names; default: the architecture's (modeling.lora)
    device: Device = "auto"
    precision: Precision = "auto"
    overwrite: bool = False
    resume: bool = False
    checkpoint_every: int | None = Field(None, ge=1)  # optimizer steps; None: at the end of each epoch only
    grad_accum: int = Field(1, ge=1)  # micro-batches per optimizer step (on each rank)
    fsdp: bool = False  # under torchrun, shard the backbone over the ranks in stages that tune it fully
    logger: Literal["auto", "tensorboard", "csv", "none"] = "auto"  # scalars; auto: TensorBoard if installed
    # Train with each record's feature as a hint (given and predicted train alike; the mode is generate's
    # default for the run) and, with a continuous prompt, the learned feature scorer (modeling/feature_scorer.py).
    feature_hint: FeatureHint = "none"

    @model_validator(mode="after")
    def _check_and_fill_defaults(self) -> TrainConfig:
        """PEPLER's rules and defaults; another model's plugin checks and fills its own (``ModelPlugin.resolve``)."""
        if self.model != DEFAULT_MODEL:
            return self
        self.prompt = self.prompt or "continuous"
        self.backbone = self.backbone or "gpt2"
        if self.rating_head is None and "rating_weight" in self.model_fields_set and self.rating_weight > 0:
            raise ValueError("--rating-weight needs --rating-head")
        if self.prompt == "discrete" and self.rating_head is not None:
            raise ValueError(
                "--rating-head needs the continuous prompt: the discrete prompt has no user/item vectors"
            )
        if self.strategy is None:
            self.strategy = DEFAULT_STRATEGY[self.prompt]  # type: ignore[assignment]
        if self.strategy not in STRATEGIES_OF_PROMPT[self.prompt]:
            allowed = ", ".join(STRATEGIES_OF_PROMPT[self.prompt])
            raise ValueError(
                f"--strategy {self.strategy} does not apply to the {self.prompt} prompt (use {allowed})"
            )
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATE[self.prompt]
        if self.fsdp and self.strategy in ("prompt-only", "lora", "sequential-lora"):
            raise ValueError(
                f"--fsdp shards a fully tuned backbone; --strategy {self.strategy} keeps it frozen and uses DDP"
            )
        lora_options = {"lora_rank", "lora_alpha", "lora_dropout", "lora_targets"} & self.model_fields_set
        if lora_options and not uses_lora(self.strategy):
            raise ValueError(f"{_flag(sorted(lora_options)[0])} needs --strategy lora or sequential-lora")
        return self


class ExplainingConfig(BaseModel):
    """How a run explains pairs: what ``generate``, ``explain`` and ``serve`` share (decoding, unknown and cold
    users and items, feature hints, device)."""

    model_config = ConfigDict(extra="forbid")

    run: Path
    data: Path | None = None  # default: the dataset the run was trained on
    max_tokens: int | None = Field(None, ge=1, le=512)  # default: the run's explanation length (PEPLER: 20)
    decoding: Decoding = "greedy"
    beams: int = Field(4, ge=1, le=64)
    length_penalty: float = Field(0.0, ge=0)
    beam_groups: int = Field(1, ge=1, le=64)  # diverse beam search: groups of beams / beam_groups
    diversity_penalty: float = Field(0.0, ge=0)  # diverse beam search: Hamming diversity between groups
    no_repeat_ngram: int = Field(0, ge=0, le=512)  # no n-gram of this many tokens twice; 0 = off
    repetition_penalty: float = Field(1.0, gt=0)  # CTRL penalty on tokens already written; 1.0 = off
    top_k: int = Field(50, ge=1)
    top_p: float = Field(0.9, gt=0, le=1)
    temperature: float = Field(1.0, gt=0)
    seed: int = 1111
    batch_size: int = Field(256, ge=1)
    clean_up_spaces: bool = True  # clean decoded explanations as the authors' transformers 4.x did
    unknown: UnknownPairs = "error"  # pairs whose user or item the run never trained
    # What a cold user or item gets (generation/cold_start.py); error: none, as --unknown says.
    cold_start: ColdStart = "error"
    history: Path | None = None  # JSON lines of what is known of cold users and items (neighbours, features)
    # The hint of a run trained with --feature-hint (generation/hints.py); default: the mode it was trained with.
    feature_hint: FeatureHint | None = None
    # --feature-hint predicted: which predictor chooses (counts: the better on the bundled data's test part)
    feature_predictor: FeaturePredictor = "counts"
    feature: str | None = Field(None, min_length=1)  # the caller's feature for every pair (a chosen hint)
    trust_remote_code: bool = False  # needed to load a run trained with --trust-remote-code
    device: Device = "auto"

    @model_validator(mode="after")
    def _check_beam_groups(self) -> ExplainingConfig:
        diverse = self.beam_groups > 1 or self.diversity_penalty > 0
        if diverse and self.decoding != "beam":
            raise ValueError("--beam-groups and --diversity-penalty are options of --decoding beam")
        if self.beams % self.beam_groups:
            raise ValueError(
                f"--beams {self.beams} cannot be split into --beam-groups {self.beam_groups} groups of equal size"
            )
        if self.diversity_penalty > 0 and self.beam_groups == 1:
            raise ValueError("--diversity-penalty acts between groups of beams: give --beam-groups 2 or more")
        return self

    @model_validator(mode="after")
    def _check_cold_start(self) -> ExplainingConfig:
        if self.feature is not None and self.feature_hint is not None:
            raise ValueError(
                f"--feature chooses the hint itself; --feature-hint {self.feature_hint} chooses another: give one"
            )
        if self.feature is not None and not self.feature.strip():
            raise ValueError("--feature is empty")
        chosen_otherwise = self.feature is not None or self.feature_hint in ("none", "given")
        if "feature_predictor" in self.model_fields_set and chosen_otherwise:
            raise ValueError("--feature-predictor chooses the feature of --feature-hint predicted")
        if self.unknown == "skip" and self.cold_start != "error":
            raise ValueError(
                f"--unknown skip leaves out what --cold-start error would refuse; --cold-start {self.cold_start} "
                "gives those users and items a vector instead: choose one"
            )
        if self.history is not None and self.cold_start not in ("neighbours", "features"):
            raise ValueError(
                f"--history is what --cold-start neighbours or features use; --cold-start {self.cold_start} does "
                "not read it"
            )
        return self


class GenerateConfig(ExplainingConfig):
    """``pepler generate``: a run explains one part of a split, or the pairs of a file, into a predictions
    file."""

    split: Literal["train", "validation", "test"] = "test"
    split_number: int | None = Field(None, ge=1)  # default: the run's split
    pairs: Path | None = None  # explain these pairs (data/pairs.py) instead of a part of a split
    out: Path
    limit: int | None = Field(None, ge=1)
    overwrite: bool = False

    @model_validator(mode="after")
    def _check_pairs(self) -> GenerateConfig:
        chose_part = {"split", "split_number"} & self.model_fields_set
        if self.pairs is not None and chose_part:
            flag = _flag(min(chose_part))
            raise ValueError(
                f"--pairs explains the pairs of a file; {flag} chooses a part of a split: give one"
            )
        return self


class ExplainConfig(ExplainingConfig):
    """``pepler explain``: one pair's explanation (and rating), for a quick look."""

    user: str = Field(min_length=1)
    item: str = Field(min_length=1)


class ServeConfig(ExplainingConfig):
    """``pepler serve``: an HTTP API that explains the pairs of each request (serving/)."""

    host: str = "127.0.0.1"  # loopback unless a token is configured
    port: int = Field(8000, ge=1, le=65535)
    token_file: Path | None = None  # requests must carry its token (Authorization: Bearer ...)
    batch_wait_ms: float = Field(
        5.0, ge=0, le=10_000
    )  # a batch waits while requests come less than this apart
    queue_size: int = Field(64, ge=1)  # requests waiting to be decoded; one more is answered 503
    request_timeout: float = Field(60.0, gt=0)  # seconds a request may wait for its explanations
    max_pairs: int = Field(256, ge=1)  # pairs in one request
    max_body_bytes: int = Field(1_048_576, ge=1024)  # size of one request's body


class ProbeConfig(BaseModel):
    """``pepler probe``: explain a split's pairs with the users, the items (or the features) permuted."""

    model_config = ConfigDict(extra="forbid")

    run: Path
    data: Path | None = None  # default: the dataset the run was trained on
    split: Literal["train", "validation", "test"] = "test"
    split_number: int | None = Field(None, ge=1)  # default: the run's split
    out: Path | None = None  # default: RUN/probe.json
    overwrite: bool = False
    max_tokens: int | None = Field(None, ge=1, le=512)  # default: the run's explanation length (PEPLER: 20)
    batch_size: int = Field(256, ge=1)
    limit: int | None = Field(None, ge=1)
    seed: int = 1111  # the permutations
    device: Device = "auto"
    clean_up_spaces: bool = True  # as generate does
    trust_remote_code: bool = False


class ScoreConfig(BaseModel):
    """``pepler score``: a predictions file and a feature set in, the paper's metrics out."""

    model_config = ConfigDict(extra="forbid")

    predictions: Path
    data: Path | None = None  # prepared dataset: its feature set and rating range
    features: Path | None = None  # or a feature file
    rating_range: tuple[float, float] | None = None
    out: Path | None = None  # default: <predictions>.scores.yaml beside them
    record: bool = True  # record the scores in the run's manifest
    unknown: UnknownPairs = "error"  # predictions whose user or item the run never trained
    metrics: str = "paper"  # paper, all, or families and keys of metrics beyond the paper to add
    by: list[GroupBy] = []  # score each group of predictions too (evaluation/breakdown.py)
    split_number: int | None = Field(None, ge=1)  # whose training part; default: the one the sidecar names
    device: Device = "auto"  # for the model-based metrics

    @model_validator(mode="after")
    def _check(self) -> ScoreConfig:
        if (self.data is None) == (self.features is None):
            raise ValueError("give exactly one of --data DIR or --features FILE")
        if self.rating_range is not None and self.rating_range[0] > self.rating_range[1]:
            low, high = self.rating_range
            raise ValueError(f"--rating-range: MIN ({low:g}) is above MAX ({high:g})")
        return self


def read_options_file(path: Path) -> dict[str, Any]:
    """The mapping of a ``--config`` YAML file, keys normalised to option names with underscores."""
    if not Path(path).is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        options = read_yaml_mapping(path, "config file")
    except PeplerError as error:
        raise UsageError(f"--config {error.message}") from None
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def resolve(model: type[Options], config_file: Path | None, flags: dict[str, Any]) -> Options:
    """File options, overridden by the flags that were given (``None`` means "not given"), validated."""
    options = read_options_file(config_file) if config_file is not None else {}
    unknown = sorted(set(options) - set(model.model_fields))
    if unknown:
        valid = ", ".join(sorted(_flag(key)[2:] for key in model.model_fields))
        raise UsageError(
            f"--config {config_file}: unknown key {_flag(unknown[0])[2:]!r} (valid keys: {valid})"
        )
    options.update({key: value for key, value in flags.items() if value is not None})
    try:
        return model(**options)
    except ValidationError as error:
        raise UsageError(_validation_message(error, config_file)) from None


def saved_options(config: BaseModel) -> dict[str, Any]:
    """The resolved options as plain data, for a manifest."""
    return config.model_dump(mode="json")


def _validation_message(error: ValidationError, config_file: Path | None) -> str:
    problem = error.errors()[0]
    name = ".".join(str(part) for part in problem.get("loc", ()))
    message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
    source = f"{config_file}: " if config_file is not None else ""
    if not name:  # a rule across options: they may come from the file
        return f"{source}{message}"
    return f"{source}option {name} ({_flag(name)}): {message}"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
