"""Meaning metrics (issue 18): sentence-embedding cosine and BERTScore F1 with all-MiniLM-L6-v2, checked
against the same formulas written out in plain torch; and the model's extraction from its wheel."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch

from pepler_cli.errors import PeplerError
from pepler_cli.evaluation.metrics import meaning
from pepler_cli.evaluation.metrics.meaning import (
    EMBEDDING_DISTRIBUTION,
    MEANING_INSTALL,
    EmbeddingModel,
    bertscore_f1,
    embedding_cosine,
    extract_model,
    find_embedding_model,
)


def _missing() -> str | None:
    """What is not installed for the model-based tests, as one skip reason (None when all is there)."""
    try:
        metadata.distribution(EMBEDDING_DISTRIBUTION)
        has_model = True
    except metadata.PackageNotFoundError:
        has_model = False
    if has_model and importlib.util.find_spec("bert_score") is not None:
        return None
    return f"needs bert-score and the all-MiniLM-L6-v2 wheel: {MEANING_INSTALL}"


MISSING = _missing()
needs_model = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

ROOM = "the room was very clean and the staff were friendly"
ROOM_PARAPHRASE = "the staff was nice and our room was spotless"
UNRELATED = "this guitar strap holds the instrument securely"


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingModel:
    """The model extracted once for this module, into a temporary cache (never the user's)."""
    found = find_embedding_model(tmp_path_factory.mktemp("cache"))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def encoder(minilm: EmbeddingModel):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm.path), AutoModel.from_pretrained(minilm.path).eval()


def token_vectors(encoder, text: str) -> torch.Tensor:
    """Last-layer vectors of every word piece of ``text``, [CLS] and [SEP] included, encoded alone."""
    tokenizer, model = encoder
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]


# ---- the model and its cache ------------------------------------------------------------------------------


@needs_model
def test_the_model_is_found_extracted_and_identified(minilm):
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.sha256.startswith("53aa5117")  # DESIGN.md
    assert (minilm.path / "model.safetensors").is_file() and (minilm.path / "tokenizer.json").is_file()


@needs_model
def test_a_second_call_reuses_the_extraction_and_a_damaged_one_is_replaced(minilm):
    weights = minilm.path / "model.safetensors"
    before = weights.stat().st_ino
    again = find_embedding_model(minilm.path.parent.parent)
    assert again == minilm and weights.stat().st_ino == before  # not extracted again
    (minilm.path / "tokenizer.json").write_text("{}", encoding="utf-8")  # a damaged file: another size
    repaired = find_embedding_model(minilm.path.parent.parent)
    assert repaired == minilm
    assert (minilm.path / "tokenizer.json").stat().st_size > 1000


def test_the_cache_honours_pepler_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PEPLER_CACHE", str(tmp_path / "here"))
    assert meaning.cache_directory() == tmp_path / "here"
    monkeypatch.delenv("PEPLER_CACHE")
    assert meaning.cache_directory() == Path.home() / ".cache" / "pepler"


def test_no_wheel_means_no_model(monkeypatch, tmp_path):
    def absent(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(meaning.metadata, "distribution", absent)
    assert find_embedding_model(tmp_path) is None


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


MODEL_FILES = {"config.json": b"{}", "model.safetensors": b"weights", "sub/vocab.txt": b"a\nb\n"}


def test_extraction_is_complete_reused_and_redone_when_interrupted(tmp_path):
    archive = make_zip(tmp_path / "model.zip", MODEL_FILES)
    target = tmp_path / "cache" / "model"
    assert extract_model(archive, target) == target
    assert (target / "sub" / "vocab.txt").read_bytes() == b"a\nb\n"
    assert [p.name for p in target.parent.iterdir()] == ["model"]  # no staging directory left behind
    mtime = (target / "config.json").stat().st_mtime_ns
    extract_model(archive, target)
    assert (target / "config.json").stat().st_mtime_ns == mtime  # reused
    os.remove(target / meaning._MANIFEST)  # as if a copy made by hand, or an extraction cut short
    (target / "model.safetensors").write_bytes(b"cut")
    extract_model(archive, target)
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert [p.name for p in target.parent.iterdir()] == ["model"]


@pytest.mark.parametrize(
    "entry", ["../escape.txt", "sub/../../escape.txt", "/etc/escape.txt", "C:/escape.txt"]
)
def test_a_zip_entry_outside_the_directory_is_refused(tmp_path, entry):
    archive = make_zip(tmp_path / "model.zip", {**MODEL_FILES, entry: b"x"})
    with pytest.raises(PeplerError, match="points outside"):
        extract_model(archive, tmp_path / "cache" / "model")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "cache" / "model").exists()


def test_a_zip_without_the_weights_is_refused(tmp_path):
    archive = make_zip(tmp_path / "model.zip", {"config.json": b"{}"})
    with pytest.raises(PeplerError, match="no model.safetensors"):
        extract_model(archive, tmp_path / "cache" / "model")
    assert list((tmp_path / "cache").iterdir()) == []


# ---- embedding cosine -------------------------------------------------------------------------------------


@needs_model
def test_identical_texts_have_cosine_one(minilm):
    assert embedding_cosine([ROOM, UNRELATED], [ROOM, UNRELATED], minilm) == pytest.approx(1.0, abs=1e-4)


@needs_model
def test_embedding_cosine_by_hand(minilm, encoder):
    references = [ROOM, "great sound"]
    generated = [ROOM_PARAPHRASE, "the strap is too short for me"]
    # By hand: each text encoded alone (no padding), its vectors averaged over all its word pieces, then
    # cos = a.b / (|a| |b|) per pair, then the mean of the two cosines.
    cosines = []
    for reference, candidate in zip(references, generated):
        a = token_vectors(encoder, reference).mean(dim=0)
        b = token_vectors(encoder, candidate).mean(dim=0)
        cosines.append(float(a @ b / (a.norm() * b.norm())))
    expected = sum(cosines) / 2
    assert embedding_cosine(references, generated, minilm, batch_size=3) == pytest.approx(expected, abs=1e-5)


@needs_model
def test_a_repeated_text_counts_once_per_pair(minilm):
    one = embedding_cosine([ROOM], [UNRELATED], minilm)
    two = embedding_cosine([ROOM_PARAPHRASE], [UNRELATED], minilm)
    both = embedding_cosine([ROOM, ROOM, ROOM_PARAPHRASE], [UNRELATED] * 3, minilm)
    assert both == pytest.approx((2 * one + two) / 3, abs=1e-6)


@needs_model
def test_a_paraphrase_is_closer_than_an_unrelated_sentence(minilm):
    paraphrase = embedding_cosine([ROOM], [ROOM_PARAPHRASE], minilm)
    unrelated = embedding_cosine([ROOM], [UNRELATED], minilm)
    assert paraphrase > 0.6 and unrelated < 0.3


def test_pairs_must_match():
    model = EmbeddingModel("m", Path("nowhere"), "0" * 64)
    with pytest.raises(ValueError, match="2 references but 1 generated"):
        embedding_cosine(["a", "b"], ["a"], model)
    with pytest.raises(ValueError, match="at least one pair"):
        bertscore_f1([], [], model)


# ---- BERTScore --------------------------------------------------------------------------------------------


@needs_model
def test_identical_texts_have_bertscore_one(minilm):
    assert bertscore_f1([ROOM, UNRELATED], [ROOM, UNRELATED], minilm) == pytest.approx(1.0, abs=1e-4)


@needs_model
def test_bertscore_by_hand(minilm, encoder):
    references = [ROOM, "great sound"]
    generated = [ROOM_PARAPHRASE, "the sound is great"]
    # By hand (Zhang et al., no idf): unit-length last-layer vectors of every word piece; precision = mean
    # over the candidate's words (not [CLS]/[SEP]) of the best cosine with any reference piece, recall the
    # same the other way round, F1 = 2PR/(P+R); then the mean of the two F1s.
    f1s = []
    for reference, candidate in zip(references, generated):
        x = torch.nn.functional.normalize(token_vectors(encoder, reference), dim=-1)
        y = torch.nn.functional.normalize(token_vectors(encoder, candidate), dim=-1)
        similarity = y @ x.T  # candidate pieces × reference pieces
        precision = similarity[1:-1].max(dim=1).values.mean()
        recall = similarity[:, 1:-1].max(dim=0).values.mean()
        f1s.append(float(2 * precision * recall / (precision + recall)))
    expected = sum(f1s) / 2
    assert bertscore_f1(references, generated, minilm) == pytest.approx(expected, abs=1e-5)


@needs_model
def test_bertscore_ranks_a_paraphrase_above_an_unrelated_sentence(minilm):
    assert bertscore_f1([ROOM], [ROOM_PARAPHRASE], minilm) > bertscore_f1([ROOM], [UNRELATED], minilm)


@needs_model
def test_a_pair_with_an_empty_side_scores_zero(minilm, capfd):
    alone = bertscore_f1([ROOM], [ROOM_PARAPHRASE], minilm)
    mixed = bertscore_f1([ROOM, "", ROOM], [ROOM_PARAPHRASE, ROOM, "  "], minilm)
    assert mixed == pytest.approx(alone / 3, abs=1e-6)
    assert bertscore_f1([""], [""], minilm) == 0.0
    assert capfd.readouterr().err == ""  # no progress bars or warnings on the terminal
