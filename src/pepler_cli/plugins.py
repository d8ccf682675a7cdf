"""Plugin protocols and the one registry of models, backbones and rating heads.

The core never imports a plugin by name: everything arrives through the entry-point groups ``pepler.models``,
``pepler.backbones`` and ``pepler.rating_heads``. A model (:class:`ModelPlugin`) is a whole explanation model:
PEPLER (registered by pepler-cli itself, ``modeling/pepler_plugin.py``) or the paper's baselines
(``plugins/pepler-baselines``); PEPLER's backbones and rating heads are plugins of their own. The built-in ones are
ordinary packages that register exactly as a third party would. Tests add fakes with ``registry.register`` and
remove them with ``registry.unregister``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pepler_cli.errors import PeplerError

if TYPE_CHECKING:
    import torch

    from pepler_cli.config import TrainConfig
    from pepler_cli.data.prepared.records import PreparedDataset
    from pepler_cli.distributed import World
    from pepler_cli.modeling.base import Losses
    from pepler_cli.modeling.batch import Batch, PromptInputs
    from pepler_cli.modeling.entities import EntityIndex
    from pepler_cli.strategies import Stage

Kind = Literal["model", "backbone", "rating_head"]
ENTRY_POINT_GROUPS: dict[Kind, str] = {
    "model": "pepler.models",
    "backbone": "pepler.backbones",
    "rating_head": "pepler.rating_heads",
}
KIND_LABELS: dict[Kind, str] = {"model": "model", "backbone": "backbone", "rating_head": "rating head"}


class KeyValueCache(Protocol):
    """The keys and values a decoder keeps between steps (transformers' ``Cache``)."""

    def reorder_cache(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given batch rows, in that order: beam search moves hypotheses with it."""
        ...


class DecoderOutput(Protocol):
    last_hidden_state: torch.Tensor  # (B, T, width)
    cache: KeyValueCache | None  # with use_cache=True


class DecoderBody(Protocol):
    """The transformer without its output layer (``model.base_model``): embeddings in, hidden states out."""

    def __call__(
        self,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KeyValueCache | None = None,
        use_cache: bool = False,
    ) -> DecoderOutput: ...


class CausalLM(Protocol):
    """What pepler uses of a causal language model: the whole of it a ``transformers`` causal LM offers.

    The prompt goes in through the input embeddings, the explanation's loss and every decoding step go
    through the body and the output layer separately (so no logits are computed where none are needed).
    """

    base_model: DecoderBody

    def get_input_embeddings(self) -> torch.nn.Embedding: ...
    def get_output_embeddings(self) -> torch.nn.Linear: ...
    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


class Tokenizer(Protocol):
    """What pepler uses of a tokenizer (a ``transformers`` tokenizer offers all of it)."""

    eos_token_id: int | None
    bos_token_id: int | None
    pad_token_id: int | None

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> Any:
        """``result["input_ids"]``: one list of ids per text."""
        ...

    def batch_decode(self, ids: list[list[int]], **options: Any) -> list[str]: ...
    def save_pretrained(self, directory: str) -> Any: ...


@runtime_checkable
class Backbone(Protocol):
    """A causal language model family that writes the explanations."""

    name: str
    description: str

    def load_tokenizer(self, path: str | None = None) -> Tokenizer:
        """The tokenizer; ``path`` is a local directory that overrides the built-in or hub source.

        Read as data, never by running code that came with the files (a run's ``tokenizer/`` directory is
        loaded through here too): pass ``trust_remote_code=False`` to transformers, never leave it unset.
        """
        ...

    def load_model(self, path: str | None = None, *, trust_remote_code: bool = False) -> CausalLM:
        """The causal LM with its pretrained weights (hub id, or the local directory ``path``), read from
        safetensors (never a pickle). Code that comes with a model (``auto_map`` in its config.json) may run
        only with ``trust_remote_code`` (``pepler train --trust-remote-code``; the run records it). Plugins
        that never run such code may leave the keyword out: pepler passes it only when it is true.
        """
        ...

    def describe_weights(self, path: str | None = None) -> dict[str, Any]:
        """Where ``load_model(path)`` takes its weights from, as plain data (a hub id, a directory, a file and
        its sha256): recorded in a run that references the backbone, and checked when the run is loaded."""
        ...

    def architecture(self, model: CausalLM) -> dict[str, Any]:
        """The model's architecture as plain JSON data: what ``build_model`` needs to make it again."""
        ...

    def build_model(self, architecture: dict[str, Any]) -> CausalLM:
        """A model of that architecture (weights not yet loaded): a tuned backbone is rebuilt from its run."""
        ...

    def embedding_width(self, model: CausalLM) -> int:
        """Width of the word embeddings, which the prompt vectors must match."""
        ...

    def save_tuned(self, model: CausalLM, path: Path) -> None:
        """Write tuned weights as safetensors (never a pickle)."""
        ...

    def load_tuned(self, model: CausalLM, path: Path) -> None:
        """Read weights written by ``save_tuned`` into ``model``."""
        ...


@runtime_checkable
class RatingHead(Protocol):
    """Predicts a rating from the user and item vectors (recommendation as regularization)."""

    name: str
    description: str

    def build(self, width: int) -> torch.nn.Module:
        """A module mapping (user (B, width), item (B, width)) to ratings (B,)."""
        ...


class IncrementalDecoder(Protocol):
    """A model fed one token per row per step: what greedy, beam and sampling decoding drive (``generation/``).

    ``logits`` are always the next token's, (rows, vocabulary) in fp32; made from the prompt and ``bos`` when
    the decoder is created. A model caches what it can between steps (PEPLER: the LM's keys and values; an RNN
    its state).
    """

    logits: torch.Tensor

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed (rows,) tokens; returns and keeps the next token's logits."""
        ...

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given rows, in that order: beam search moves its hypotheses with it."""
        ...


class ExplanationModel(Protocol):
    """A trained or training explanation model: a ``torch.nn.Module`` with these members besides its own.

    ``parameter_groups`` names what a stage may train (``strategies.Stage.trains``); ``losses`` is one batch's
    summed losses (``modeling.base.Losses``); ``decoder`` starts decoding a batch of prompts; ``predict_ratings`` is
    None for a model that predicts none. ``prompt_kind`` says what a prompt is made of: "continuous" (user and item
    vectors), "discrete" (PEPLER-D's feature words, which generation builds for it) or "ids" (a model that embeds
    the ids itself). ``lead``: tokens between the prompt and ``bos`` (a chat model's answer opening; else empty).
    """

    prompt_kind: str
    lead: tuple[int, ...]

    def losses(self, batch: Batch) -> Losses: ...
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]: ...
    def decoder(self, inputs: PromptInputs, bos: int) -> IncrementalDecoder: ...
    def predict_ratings(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | None: ...
    @property
    def predicts_ratings(self) -> bool: ...
    def parameters(self) -> Iterator[torch.nn.Parameter]: ...
    def named_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...
    def to(self, device: torch.device) -> Any: ...


@dataclass(frozen=True)
class TrainingSetup:
    """What a model is built from as training starts: the resolved options, the dataset and the split's parts."""

    config: TrainConfig
    dataset: PreparedDataset
    entities: EntityIndex  # user and item ids, a row each (users.txt, items.txt)
    train_numbers: list[int]
    valid_numbers: list[int]
    world: World


@dataclass(frozen=True)
class SpecialTokens:
    """The token ids that frame an explanation (``modeling/special_tokens.py`` makes them for a backbone's
    tokenizer; a model with a vocabulary of its own gives its own)."""

    bos: int  # fed right before the explanation's first word
    eos: int
    pad: int
    lead: tuple[int, ...] = ()  # between the prompt and bos: the rest of a chat model's answer opening

    @property
    def start(self) -> list[int]:
        """Every token an explanation follows, in order: ``lead`` then ``bos``."""
        return [*self.lead, self.bos]


@dataclass
class Built:
    """A model as training starts (or as a run loads): the model, how its text is tokenized and framed."""

    model: ExplanationModel
    tokenizer: Tokenizer  # saved in the run's tokenizer/ and loaded back by the plugin
    special: SpecialTokens
    # Explanations are cut to this many tokens for training, and generation writes at most this many by default
    # (the baselines' authors: 15 words); None: as prepared (PEPLER: 20 BPE tokens, cut by `pepler prepare`).
    max_tokens: int | None = None
    manifest: dict[str, Any] | None = None  # fields this model adds to the run's manifest as training starts


@runtime_checkable
class ModelPlugin(Protocol):
    """A whole explanation model that ``pepler train`` trains and every other command uses without knowing it.

    The shared machinery (training loop, checkpoints and resume, early stopping, seeds, locks, integrity checks,
    precision, torchrun, decoding, scoring, sweeps, reports) needs only this and :class:`ExplanationModel`.
    """

    name: str
    description: str

    def resolve(self, config: TrainConfig) -> TrainConfig:
        """``config`` with this model's defaults filled in (learning rate, batch size, λ…); an option that does
        not apply to the model is refused with a ``PeplerError`` naming it."""
        ...

    def build(self, setup: TrainingSetup) -> Built:
        """The model as training starts, seeded by ``setup.config.seed``: the same options, the same tensors."""
        ...

    def stages(self, config: TrainConfig) -> tuple[Stage, ...]:
        """The training stages in order: which parameter groups each trains, and how (``Optimization``)."""
        ...

    def write(self, built: Built, setup: TrainingSetup, directory: Path) -> dict[str, Any]:
        """Write the trained model's tensors (safetensors, never a pickle) and any files of its own into the run
        ``directory``; returns the fields it adds to the manifest. pepler writes the tokenizer, users.txt,
        items.txt and the manifest itself, and lists every file's sha256."""
        ...

    def load(
        self,
        run: Path,
        manifest: dict[str, Any],
        entities: EntityIndex,
        device: torch.device,
        trust_remote_code: bool = False,
    ) -> Built:
        """The model of a finished run (its files already checked against the manifest's hashes; ``entities``
        read from its users.txt and items.txt); pepler moves it to the device. A field it cannot use is one line
        naming the file and field."""
        ...


@dataclass(frozen=True)
class PluginInfo:
    """One row of ``pepler plugins``."""

    name: str
    kind: Kind
    package: str
    version: str
    description: str


@dataclass
class _Entry:
    name: str
    kind: Kind
    package: str
    version: str
    loader: Any  # an EntryPoint, or the plugin object itself when registered by hand
    loaded: Any = None

    def load(self) -> Any:
        if self.loaded is None:
            self.loaded = self.loader.load() if isinstance(self.loader, metadata.EntryPoint) else self.loader
        return self.loaded


class Registry:
    """Every plugin pepler knows: installed entry points plus any registered at run time."""

    def __init__(self) -> None:
        self._discovered: dict[Kind, dict[str, _Entry]] | None = None
        self._registered: dict[Kind, dict[str, _Entry]] = {kind: {} for kind in ENTRY_POINT_GROUPS}

    def _entries(self, kind: Kind) -> dict[str, _Entry]:
        if self._discovered is None:
            self._discovered = {k: _discover(k) for k in ENTRY_POINT_GROUPS}
        merged = dict(self._discovered[kind])
        merged.update(self._registered[kind])
        return merged

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries(kind))

    def get(self, kind: Kind, name: str) -> Any:
        entries = self._entries(kind)
        if name not in entries:
            available = ", ".join(sorted(entries)) or "none installed"
            raise PeplerError(f"unknown {KIND_LABELS[kind]} {name!r}; available: {available}", exit_code=2)
        try:
            return entries[name].load()
        except PeplerError:
            raise
        except Exception as error:  # a broken third-party plugin must not crash with a traceback
            entry = entries[name]
            raise PeplerError(
                f"plugin {name!r} from package {entry.package} failed to load: {error}"
            ) from error

    def register(
        self, kind: Kind, plugin: Any, package: str = "(registered at run time)", version: str = ""
    ) -> None:
        self._registered[kind][plugin.name] = _Entry(plugin.name, kind, package, version, plugin, plugin)

    def unregister(self, kind: Kind, name: str) -> None:
        self._registered[kind].pop(name, None)

    def info(self) -> list[PluginInfo]:
        rows = []
        for kind in ENTRY_POINT_GROUPS:
            for name, entry in sorted(self._entries(kind).items()):
                try:
                    description = str(getattr(entry.load(), "description", ""))
                except Exception as error:
                    description = f"(fails to load: {error})"
                rows.append(PluginInfo(name, kind, entry.package, entry.version, description))
        return rows

    def version_of(self, kind: Kind, name: str) -> dict[str, str]:
        """Package and version of a plugin, for run manifests."""
        entry = self._entries(kind)[name]
        return {"name": name, "package": entry.package, "version": entry.version}


def _discover(kind: Kind) -> dict[str, _Entry]:
    found: dict[str, _Entry] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUPS[kind]):
        dist = point.dist
        package = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        found[point.name] = _Entry(point.name, kind, package, version, point)
    return found


registry = Registry()


def get_backbone(name: str) -> Backbone:
    return registry.get("backbone", name)


def load_backbone_model(backbone: Backbone, path: str | None, trust_remote_code: bool = False) -> CausalLM:
    """``backbone.load_model(path)``, passing ``trust_remote_code=True`` only when asked: a plugin whose
    ``load_model`` has no such keyword runs no model code, and is refused when asked to."""
    if not trust_remote_code:
        return backbone.load_model(path)
    try:
        parameters = inspect.signature(backbone.load_model).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    accepts = "trust_remote_code" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    if not accepts:
        raise PeplerError(
            f"--trust-remote-code: backbone {backbone.name!r} does not take it (its load_model has no "
            "trust_remote_code keyword); leave the flag out",
            2,
        )
    return backbone.load_model(path, trust_remote_code=True)


def get_rating_head(name: str) -> RatingHead:
    return registry.get("rating_head", name)


def get_model(name: str) -> ModelPlugin:
    return registry.get("model", name)
