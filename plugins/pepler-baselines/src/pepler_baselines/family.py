"""The paper's baselines as pepler model plugins (``plugins.ModelPlugin``): NRT, Att2Seq and PETER (PETER+ is
PETER trained and generating with ``--feature-hint given``: the record's feature, read from the test record).

Each plugin's defaults are its authors' hyper-parameters (``Baseline.options`` and ``Baseline.optimization``;
examples/configs/<name>.yaml spells them out): sizes, optimizer, learning rate, batch size, gradient clipping,
learning-rate decay, the rating weight, 15-word explanations and a 20,000-word vocabulary. Training, checkpoints,
early stopping, decoding and scoring are pepler's own, shared with PEPLER.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_baselines.vocabulary import BOS, EOS, PAD, WordVocabulary
from pepler_cli.errors import PeplerError
from pepler_cli.plugins import Built, SpecialTokens, TrainingSetup
from pepler_cli.runs import MANIFEST, MODEL_WEIGHTS, RUN_FORMAT, TOKENIZER_DIR
from pepler_cli.strategies import Optimization, Stage

if TYPE_CHECKING:
    import torch

    from pepler_cli.config import TrainConfig
    from pepler_cli.modeling.entities import EntityIndex

# Options of pepler's own that belong to PEPLER (its backbone, prompt and tuning) and mean nothing here.
PEPLER_ONLY = (
    "prompt",
    "strategy",
    "backbone",
    "backbone_path",
    "from_scratch",
    "rating_head",
    "trust_remote_code",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_targets",
    "fsdp",
)
SHARED_OPTIONS = {"vocabulary": 20000, "words": 15}  # the authors' --vocab_size and --words


# Makes the network: (users, items, vocabulary size, options, rating range of the training part) -> nn.Module.
NetworkFactory = Callable[[int, int, int, dict[str, Any], tuple[float, float]], Any]


@dataclass(frozen=True)
class Baseline:
    """One baseline model plugin: its network, its authors' defaults and what it can read."""

    name: str
    description: str
    make: NetworkFactory
    options: dict[str, Any]  # the network's hyper-parameters and SHARED_OPTIONS, by the authors' flag names
    optimization: Optimization
    learning_rate: float
    batch_size: int
    rating_weight: float  # λ of the rating loss; 0 for a model without one
    hints: bool = False  # reads a feature hint (PETER+)
    features_in_vocabulary: bool = False  # each record's feature is one vocabulary token (PETER)
    context_weight: float = 0.0  # weight of the auxiliary context loss (PETER's authors: 1)

    def resolve(self, config: TrainConfig) -> TrainConfig:
        given = [name for name in PEPLER_ONLY if name in config.model_fields_set and getattr(config, name)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise PeplerError(f"{flag}: an option of PEPLER; model {self.name} does not take it", 2)
        if config.feature_hint != "none" and not self.hints:
            raise PeplerError(
                f"--feature-hint {config.feature_hint}: model {self.name} reads no feature (peter does: PETER+)",
                2,
            )
        unknown = sorted(set(config.model_options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options))
            raise PeplerError(
                f"--model-option {unknown[0]}: not an option of {self.name} (it has {known})", 2
            )
        options = {
            **self.options,
            **{k: _same_type(k, v, self.options[k]) for k, v in config.model_options.items()},
        }
        set_fields = config.model_fields_set
        update: dict[str, Any] = {
            "model_options": options,
            "learning_rate": config.learning_rate or self.learning_rate,
            "batch_size": config.batch_size if "batch_size" in set_fields else self.batch_size,
            "rating_weight": config.rating_weight if "rating_weight" in set_fields else self.rating_weight,
        }
        return config.model_copy(update=update)

    def build(self, setup: TrainingSetup) -> Built:
        import torch

        config = setup.config
        records = setup.dataset.records
        chosen = [records[n] for n in setup.train_numbers]
        features = [r.feature for r in chosen] if self.features_in_vocabulary else None
        vocabulary = WordVocabulary.count(
            [r.text for r in chosen], config.model_options["vocabulary"], features
        )
        ratings = [float(r.rating) for r in chosen]
        rating_range = (min(ratings), max(ratings))
        torch.manual_seed(config.seed)
        network = self._network(setup.entities, len(vocabulary), config.model_options, rating_range)
        manifest = {"model": {"vocabulary": len(vocabulary), "rating_range": list(rating_range)}}
        return Built(
            self._model(network, config.model_options),
            vocabulary,
            _special(),
            config.model_options["words"],
            manifest,
        )

    def stages(self, config: TrainConfig) -> tuple[Stage, ...]:
        return (Stage("all", ("model",), self.optimization),)

    def write(self, built: Built, setup: TrainingSetup, directory: Path) -> dict[str, Any]:
        from safetensors.torch import save_file

        network = built.model.network  # type: ignore[attr-defined]
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
        save_file(tensors, str(directory / MODEL_WEIGHTS), metadata={"format": RUN_FORMAT})
        return {}

    def load(
        self,
        run: Path,
        manifest: dict[str, Any],
        entities: EntityIndex,
        device: torch.device,
        trust_remote_code: bool = False,
    ) -> Built:
        from safetensors.torch import load_file

        options = manifest["config"].get("model_options")
        if not isinstance(options, dict) or set(options) != set(self.options):
            raise PeplerError(
                f"{run / MANIFEST}: field 'config.model_options': expected {self.name}'s options "
                f"({', '.join(sorted(self.options))})"
            )
        rating_range = (manifest.get("model") or {}).get("rating_range")
        if not (isinstance(rating_range, list) and len(rating_range) == 2):
            raise PeplerError(f"{run / MANIFEST}: field 'model.rating_range': expected [lowest, highest]")
        vocabulary = WordVocabulary.load(run / TOKENIZER_DIR)
        network = self._network(entities, len(vocabulary), options, (rating_range[0], rating_range[1]))
        try:
            network.load_state_dict(load_file(str(run / MODEL_WEIGHTS)), strict=True)
        except (RuntimeError, KeyError, OSError) as error:
            detail = " ".join(str(error).split())[:200]
            raise PeplerError(
                f"{run / MODEL_WEIGHTS}: does not fit {self.name} as the manifest describes it: {detail}"
            )
        return Built(self._model(network, options), vocabulary, _special(), int(options["words"]))

    def _network(
        self, entities: EntityIndex, tokens: int, options: dict[str, Any], rating_range: tuple[float, float]
    ) -> Any:
        sizes = {k: v for k, v in options.items() if k not in SHARED_OPTIONS}
        return self.make(len(entities.users), len(entities.items), tokens, sizes, rating_range)

    def _model(self, network: Any, options: dict[str, Any]) -> Any:
        from pepler_baselines.model import BaselineModel

        return BaselineModel(network, self.context_weight, int(options["words"]))


def _special() -> SpecialTokens:
    return SpecialTokens(bos=BOS, eos=EOS, pad=PAD)


def _same_type(name: str, value: Any, default: Any) -> Any:
    """A --model-option value as its default's type (a YAML file or the command line may give a string)."""
    if isinstance(default, bool):
        if isinstance(value, bool) or str(value).lower() in ("true", "false"):
            return value if isinstance(value, bool) else str(value).lower() == "true"
        raise PeplerError(f"--model-option {name}={value!r}: expected true or false", 2)
    try:
        converted = type(default)(value)
    except (TypeError, ValueError):
        raise PeplerError(f"--model-option {name}={value!r}: expected {type(default).__name__}", 2) from None
    if isinstance(default, (int, float)) and converted < 0:
        raise PeplerError(f"--model-option {name}={value!r}: expected a number of at least 0", 2)
    return converted


def _nrt(
    users: int, items: int, tokens: int, sizes: dict[str, Any], rating_range: tuple[float, float]
) -> Any:
    from pepler_baselines.nrt import NRT

    low, high = rating_range  # the rating's one-hot spans the data's range, as in the authors' code
    return NRT(users, items, tokens, **sizes, max_rating=high, min_rating=low)


def _att2seq(
    users: int, items: int, tokens: int, sizes: dict[str, Any], rating_range: tuple[float, float]
) -> Any:
    from pepler_baselines.att2seq import Att2Seq

    return Att2Seq(users, items, tokens, **sizes)


def _peter(
    users: int, items: int, tokens: int, sizes: dict[str, Any], rating_range: tuple[float, float]
) -> Any:
    from pepler_baselines.peter import PETER

    return PETER(users, items, tokens, **sizes)


# The authors' defaults (main.py of each repository at the commits in the facts of the network modules). Their
# early stopping counts every epoch that did not improve (patience_counts="total"), as pepler does here.
NRT = Baseline(
    name="nrt",
    description="NRT (Li et al., SIGIR 2017): GRU explanation decoder started from the predicted rating",
    make=_nrt,
    options={"emsize": 300, "nhid": 400, "nlayers": 4, **SHARED_OPTIONS},
    optimization=Optimization("adam", patience_counts="total"),
    learning_rate=1e-4,
    batch_size=200,
    rating_weight=1.0,
)
ATT2SEQ = Baseline(
    name="att2seq",
    description="Att2Seq (Dong et al., EACL 2017): 2-layer LSTM decoder started from the user and item",
    make=_att2seq,
    options={"emsize": 64, "nhid": 512, "nlayers": 2, "dropout": 0.2, **SHARED_OPTIONS},
    optimization=Optimization("adam", clip_norm=5.0, patience_counts="total"),
    learning_rate=1e-4,
    batch_size=50,
    rating_weight=0.0,
)
PETER = Baseline(
    name="peter",
    description="PETER (Li, Zhang, Chen, ACL 2021): small transformer from scratch; --feature-hint given: PETER+",
    make=_peter,
    options={
        "emsize": 512,
        "nhead": 2,
        "nhid": 2048,
        "nlayers": 2,
        "dropout": 0.2,
        "peter_mask": True,
        **SHARED_OPTIONS,
    },
    optimization=Optimization(
        "sgd", clip_norm=1.0, decay_on_plateau=0.25, patience_counts="total", selection_rating_weight=1.0
    ),
    learning_rate=1.0,
    batch_size=128,
    rating_weight=0.1,
    hints=True,
    features_in_vocabulary=True,
    context_weight=1.0,
)
