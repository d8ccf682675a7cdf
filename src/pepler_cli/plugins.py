"""Plugin protocols and the one registry of backbones and rating heads.

The core never imports a plugin by name: everything arrives through the entry-point groups
``pepler.backbones`` and ``pepler.rating_heads``. The built-in GPT-2 backbones and MF/MLP heads are ordinary
packages under ``plugins/`` that register exactly as a third party would. Tests add fakes with
``registry.register`` and remove them with ``registry.unregister``.
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

Kind = Literal["backbone", "rating_head"]
ENTRY_POINT_GROUPS: dict[Kind, str] = {
    "backbone": "pepler.backbones",
    "rating_head": "pepler.rating_heads",
}


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
        self._registered: dict[Kind, dict[str, _Entry]] = {"backbone": {}, "rating_head": {}}

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
            label = "backbone" if kind == "backbone" else "rating head"
            raise PeplerError(f"unknown {label} {name!r}; available: {available}", exit_code=2)
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
