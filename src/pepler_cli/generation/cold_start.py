"""What a run gives the users and items it knows little or nothing of: ``pepler generate --cold-start``.

A user (item) is *cold* for a run when the run never trained it — no record in the training part of the run's
split, or, explaining another dataset, no vector in the run — or when the run's split is a cold-user
(cold-item) split of the dataset (``prepare --cold-start K``, ``data/cold_start.py``) and it has at most K
training records there. A pair is cold when its user or item is; predictions say which (``Prediction.cold``:
``user``, ``item`` or ``user+item``).

``--cold-start`` says what every cold user (item) gets; the *warm* ones — trained, and not cold — stay as trained:

- ``error``: nothing new. A pair the run never trained is refused, or left out with ``--unknown skip``, as
  always; cold ones the run trained on their few records keep those vectors.
- ``mean``: the mean of the warm users' (items') vectors. Rows of ids training never saw are left out: nothing
  learned them.
- ``neighbours``: the mean vector of the :data:`NEIGHBOURS` warm users (items) closest to what is known of it:
  the features of its records in the run's training part, plus those ``--history`` gives. Closeness is the
  cosine between feature-count vectors (for a warm one: how many of its training records have each feature);
  equal ones go to the lower row. When nothing is known of it, or no warm one shares a feature with it, it gets
  the mean.
- ``features``: for a continuous prompt, the mean input word embedding of the tokens of its known features,
  joined as a discrete prompt joins features (``data/feature_prompts.py``: most frequent in training first,
  cut to 20 tokens); the mean when none is known. A discrete prompt is the features anyway: the features
  ``--history`` gives join those of the training part in its prompt.

Each is computed before any is installed, from the vectors as trained. A cold id with a row in the run gets the
new vector in that row (the model is loaded for this generation only); one without gets a row added.

``--history FILE`` is JSON lines, one object each: ``{"user": ID}`` or ``{"item": ID}`` with ``"features": [...]``
and/or ``"text": "..."`` (a review; the dataset's features it mentions count, found by
``evaluation.metrics.mentions.FeatureMatcher``). A line's features count once each, however they were given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from pepler_cli.data.cold_start import COLD_KINDS, ColdKind, ColdSplit
from pepler_cli.data.feature_prompts import FeatureIndex, encode_prompts
from pepler_cli.errors import PeplerError
from pepler_cli.files import describe, read_json_lines
from pepler_cli.modeling.base import PromptModel
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.entities import EntityIndex
from pepler_cli.plugins import ExplanationModel

if TYPE_CHECKING:
    from pepler_cli.data.prepared.records import Record
    from pepler_cli.plugins import Tokenizer

Method = Literal["error", "mean", "neighbours", "features"]
NEIGHBOURS = 10  # warm users (items) whose vectors a cold one's neighbours vector averages
HISTORY_KEYS = frozenset({"user", "item", "features", "text"})
COLD_CHUNK = 256  # cold ids scored against every warm one at a time (bounds the similarity matrix)


# ------------------------------------------------------------------------------------------- --history


@dataclass(frozen=True)
class HistoryLine:
    """One line of a ``--history`` file: what is known of one user or item."""

    kind: ColdKind
    id: str
    features: tuple[str, ...] = ()
    text: str | None = None


def read_history(path: Path) -> list[HistoryLine]:
    """Every line of ``path``, checked: a bad one is a PeplerError naming the file, line and field."""
    return [_history_line(row, where) for _, where, row in read_json_lines(Path(path), "history file")]


def _history_line(row: Any, where: str) -> HistoryLine:
    if not isinstance(row, dict):
        raise PeplerError(f"{where}: expected a JSON object, got {describe(row, json=True)}")
    unknown = sorted(set(row) - HISTORY_KEYS)
    if unknown:
        raise PeplerError(f"{where}: field {unknown[0]!r}: unknown (use user or item, features, text)")
    kinds = [kind for kind in COLD_KINDS if kind in row]
    if len(kinds) != 1:
        raise PeplerError(f"{where}: field 'user' or 'item': give exactly one of them")
    kind = kinds[0]
    if not isinstance(row[kind], str) or not row[kind]:
        raise PeplerError(
            f"{where}: field '{kind}': expected a non-empty string, got {describe(row[kind], json=True)}"
        )
    features = row.get("features")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) and f.strip() for f in features)
    ):
        raise PeplerError(f"{where}: field 'features': expected a list of non-empty strings")
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise PeplerError(f"{where}: field 'text': expected a string, got {describe(text, json=True)}")
    if features is None and text is None:
        raise PeplerError(f"{where}: field 'features' or 'text': give at least one of them")
    return HistoryLine(kind, row[kind], tuple(features or ()), text)


def history_features(
    lines: Iterable[HistoryLine], feature_set: Iterable[str]
) -> dict[ColdKind, dict[str, Counter[str]]]:
    """Feature counts per user and per item of a history: a line's given features and those of ``feature_set``
    its text mentions, each once."""
    from pepler_cli.evaluation.metrics.mentions import FeatureMatcher
    from pepler_cli.evaluation.metrics.tokens import normalize

    lines = list(lines)
    matcher = FeatureMatcher(feature_set) if any(line.text for line in lines) else None
    known: dict[ColdKind, dict[str, Counter[str]]] = {kind: {} for kind in COLD_KINDS}
    for line in lines:
        found = set(line.features)
        if line.text and matcher is not None:
            found |= matcher.find(normalize(line.text))
        known[line.kind].setdefault(line.id, Counter()).update(found)
    return known


# -------------------------------------------------------------------------------- who is cold, and what is known


@dataclass(frozen=True)
class Trained:
    """What a run learned from: the training records of its split, per user and per item."""

    counts: dict[ColdKind, Counter[str]]  # training records of each id
    features: dict[ColdKind, dict[str, Counter[str]]]  # id -> feature -> its training records with it
    feature_index: FeatureIndex  # orders features as a discrete prompt does

    @classmethod
    def of(cls, records: Sequence[Record], train_numbers: Sequence[int]) -> Trained:
        counts: dict[ColdKind, Counter[str]] = {kind: Counter() for kind in COLD_KINDS}
        features: dict[ColdKind, dict[str, Counter[str]]] = {kind: {} for kind in COLD_KINDS}
        for n in train_numbers:
            record = records[n]
            for kind, entity in zip(COLD_KINDS, (record.user, record.item)):
                counts[kind][entity] += 1
                features[kind].setdefault(entity, Counter())[record.feature] += 1
        return cls(counts, features, FeatureIndex.from_training(records, train_numbers))


@dataclass(frozen=True)
class ColdIds:
    """The cold users and items among the pairs to explain."""

    users: frozenset[str] = frozenset()
    items: frozenset[str] = frozenset()

    def of(self, kind: ColdKind) -> frozenset[str]:
        return self.users if kind == "user" else self.items

    def mark(self, user: str, item: str) -> str | None:
        """``Prediction.cold`` of the pair: "user", "item", "user+item", or None for a warm pair."""
        sides = [side for side, cold in (("user", user in self.users), ("item", item in self.items)) if cold]
        return "+".join(sides) or None


def find_cold(
    users: Sequence[str],
    items: Sequence[str],
    known_users: Container[Hashable],
    known_items: Container[Hashable],
    cold_split: ColdSplit | None = None,
    trained: Trained | None = None,
) -> ColdIds:
    """The cold ids of the pairs (``users[k]``, ``items[k]``): unknown to the run (not in ``known_*``) or, when
    the run's split is ``cold_split``, of its kind with at most K records in ``trained``."""
    cold: dict[ColdKind, set[str]] = {}
    for kind, ids, known in zip(COLD_KINDS, (users, items), (known_users, known_items)):
        few = cold_split is not None and trained is not None and cold_split.kind == kind
        limit = cold_split.max_train_records if cold_split is not None else -1
        counts = trained.counts[kind] if trained is not None else Counter()
        cold[kind] = {e for e in set(ids) if e not in known or (few and counts[e] <= limit)}
    return ColdIds(frozenset(cold["user"]), frozenset(cold["item"]))


# ------------------------------------------------------------------------------------------ the vectors


@dataclass
class ColdVectors:
    """The vectors cold ids get, and how many of them fell back to the mean."""

    vectors: dict[str, torch.Tensor] = field(default_factory=dict)
    fell_back: int = 0


def warm_rows(
    kind: ColdKind, trained: Trained, cold: ColdIds, rows: Mapping[str, int]
) -> list[tuple[str, int]]:
    """(id, row) of the warm users (items): trained, not cold, with a row in the run; in row order."""
    warm = [
        (entity, rows[entity])
        for entity in trained.counts[kind]
        if entity not in cold.of(kind) and entity in rows
    ]
    return sorted(warm, key=lambda pair: pair[1])


def known_features(
    kind: ColdKind, entity: str, trained: Trained, history: Mapping[ColdKind, Mapping[str, Counter[str]]]
) -> Counter[str]:
    """What is known of a cold one: the features of its training records, plus its history's."""
    known = Counter(trained.features[kind].get(entity, Counter()))
    known.update(history.get(kind, {}).get(entity, Counter()))
    return known


def mean_vectors(table: torch.Tensor, warm: Sequence[tuple[str, int]], cold: Iterable[str]) -> ColdVectors:
    """Every cold id gets the mean of the warm rows of ``table``."""
    mean = _mean_row(table, warm)
    return ColdVectors({entity: mean for entity in cold})


def neighbour_vectors(
    table: torch.Tensor,
    warm: Sequence[tuple[str, int]],
    warm_features: Mapping[str, Counter[str]],
    cold_features: Mapping[str, Counter[str]],
    neighbours: int = NEIGHBOURS,
) -> ColdVectors:
    """Each cold id (a key of ``cold_features``) gets the mean row of its ``neighbours`` closest warm ones by
    cosine of feature counts, among those sharing a feature with it; the mean of all warm rows when none does
    (counted in ``fell_back``)."""
    mean = _mean_row(table, warm)
    out = ColdVectors()
    cold = sorted(cold_features)
    vocabulary = {f: j for j, f in enumerate(sorted({f for c in cold_features.values() for f in c}))}
    pool = _unit_rows([warm_features.get(entity, Counter()) for entity, _ in warm], vocabulary)
    warm_index = torch.tensor([row for _, row in warm], dtype=torch.long)
    for start in range(0, len(cold), COLD_CHUNK):
        chunk = cold[start : start + COLD_CHUNK]
        wanted = _unit_rows([cold_features[c] for c in chunk], vocabulary).to_dense().T
        scores = torch.sparse.mm(pool, wanted).T.contiguous()  # (chunk, warm): the cosines
        # The k-th best score of each row; topk's order among equal scores is unspecified, so the chosen
        # are those above it and, of those equal to it, the lowest rows of the table (warm is in row order).
        kth = torch.topk(scores, min(neighbours, scores.shape[1]), dim=1).values[:, -1].tolist()
        for position, entity in enumerate(chunk):
            chosen = _closest(scores[position], kth[position], neighbours)
            if chosen.numel() == 0:
                out.vectors[entity] = mean
                out.fell_back += 1
            else:
                out.vectors[entity] = table[warm_index[chosen].to(table.device)].float().mean(dim=0)
    return out


def _closest(scores: torch.Tensor, kth: float, neighbours: int) -> torch.Tensor:
    """Positions of the ``neighbours`` highest positive ``scores`` (``kth`` is the k-th highest), equal ones
    taken in position order."""
    if kth <= 0:
        return (scores > 0).nonzero().flatten()
    above = (scores > kth).nonzero().flatten()
    tied = (scores == kth).nonzero().flatten()[: neighbours - above.numel()]
    return torch.cat([above, tied])


def feature_word_vectors(
    embeddings: torch.Tensor,
    mean: torch.Tensor,
    cold_features: Mapping[str, Counter[str]],
    feature_index: FeatureIndex,
    tokenizer: Tokenizer,
) -> ColdVectors:
    """Each cold id gets the mean input embedding (``embeddings``: the LM's word table) of its known features'
    tokens, joined and cut as a discrete prompt; ``mean`` when it has none (counted in ``fell_back``)."""
    out = ColdVectors()
    cold = sorted(cold_features)
    texts = [" ".join(feature_index.ordered(set(cold_features[c]))) for c in cold]
    for entity, ids in zip(cold, encode_prompts(texts, tokenizer)):
        if ids:
            index = torch.tensor(ids, dtype=torch.long, device=embeddings.device)
            out.vectors[entity] = embeddings[index].float().mean(dim=0)
        else:
            out.vectors[entity] = mean
            out.fell_back += 1
    return out


def _mean_row(table: torch.Tensor, warm: Sequence[tuple[str, int]]) -> torch.Tensor:
    if not warm:
        raise PeplerError("the run has no warm trained vector to give a cold one (every trained one is cold)")
    index = torch.tensor([row for _, row in warm], dtype=torch.long, device=table.device)
    return table[index].float().mean(dim=0)


def _unit_rows(counts: Sequence[Counter[str]], vocabulary: Mapping[str, int]) -> torch.Tensor:
    """A sparse (rows, vocabulary) float64 matrix of the counts over ``vocabulary``, each row of length 1 over
    all its features (those outside the vocabulary add to the length: they are shared with no cold one)."""
    rows: list[int] = []
    columns: list[int] = []
    values: list[float] = []
    for r, counter in enumerate(counts):
        norm = sum(c * c for c in counter.values()) ** 0.5
        for feature, count in counter.items():
            j = vocabulary.get(feature)
            if j is not None and count:
                rows.append(r)
                columns.append(j)
                values.append(count / norm)
    indices = torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1)
    shape = (len(counts), len(vocabulary))
    values_tensor = torch.tensor(values, dtype=torch.float64)
    return torch.sparse_coo_tensor(indices, values_tensor, shape, check_invariants=True).coalesce()


# ------------------------------------------------------------------------------------- into the model


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_cold_start` did: the entity index with added ids, and how many cold users and items
    fell back to the mean (neighbours, features)."""

    entities: EntityIndex
    fell_back: dict[ColdKind, int]


def check_method(method: Method, model: ExplanationModel, where: object) -> None:
    """Refuse a method that needs vectors for a discrete prompt, which has none, and every method but error for a
    model whose prompt is not PEPLER's (the baselines embed the ids in their own tables)."""
    if method != "error" and model.prompt_kind not in ("continuous", "discrete"):
        raise PeplerError(
            f"{where}: --cold-start {method} places vectors or features in PEPLER's prompt; this run's model has "
            "neither (use --cold-start error, or --unknown skip)",
            exit_code=2,
        )
    if method in ("mean", "neighbours") and not isinstance(model, ContinuousPromptModel):
        raise PeplerError(
            f"{where}: --cold-start {method} gives cold users and items a vector, and this run's "
            f"{model.prompt_kind} prompt has none: use --cold-start features (its prompt is made of features)",
            exit_code=2,
        )


def apply_cold_start(
    method: Method,
    model: PromptModel,
    entities: EntityIndex,
    tokenizer: Tokenizer | None,
    cold: ColdIds,
    trained: Trained | None,
    history: Mapping[ColdKind, Mapping[str, Counter[str]]],
) -> Applied:
    """Give every cold id what ``method`` says (the module's docstring): vectors into the continuous prompt's
    tables, computed from the tables as trained; a row for each cold id the run has none for. ``trained`` is
    the run's training part (needed by every method but error)."""
    rows: dict[ColdKind, dict[str, int]] = {
        "user": row_index(entities.users),
        "item": row_index(entities.items),
    }
    new_ids = {kind: sorted(c for c in cold.of(kind) if c not in rows[kind]) for kind in COLD_KINDS}
    fell_back: dict[ColdKind, int] = {kind: 0 for kind in COLD_KINDS}
    if method == "error" or not isinstance(model, ContinuousPromptModel):
        # Nothing to compute: error keeps the trained vectors, and a discrete prompt's cold ones get their
        # features in the prompt (with_history); an added row is never read.
        return Applied(install_vectors(entities, None, {}, new_ids), fell_back)
    assert trained is not None, "every method but error needs the run's training part"
    tables: dict[ColdKind, torch.nn.Embedding] = {
        "user": model.user_embeddings,
        "item": model.item_embeddings,
    }
    vectors: dict[ColdKind, dict[str, torch.Tensor]] = {}
    for kind in COLD_KINDS:
        if not cold.of(kind):
            continue
        table = tables[kind].weight.detach()
        warm = warm_rows(kind, trained, cold, rows[kind])
        features = {c: known_features(kind, c, trained, history) for c in cold.of(kind)}
        if method == "mean":
            found = mean_vectors(table, warm, cold.of(kind))
        elif method == "neighbours":
            found = neighbour_vectors(table, warm, trained.features[kind], features)
        else:
            assert tokenizer is not None, "the features of a continuous prompt are tokenized"
            words = model.lm.get_input_embeddings().weight.detach()
            found = feature_word_vectors(
                words, _mean_row(table, warm), features, trained.feature_index, tokenizer
            )
        vectors[kind] = found.vectors
        fell_back[kind] = found.fell_back
    return Applied(install_vectors(entities, tables, vectors, new_ids), fell_back)


def with_history(
    features: FeatureIndex, cold: ColdIds, history: Mapping[ColdKind, Mapping[str, Counter[str]]]
) -> FeatureIndex:
    """A discrete prompt's feature index with what ``history`` knows of the cold ids added to their features."""
    added: dict[ColdKind, dict[str, frozenset[str]]] = {}
    for kind, known in zip(COLD_KINDS, (features.user_features, features.item_features)):
        of_kind = history.get(kind, {})
        extra = {c: frozenset(of_kind.get(c, ())) for c in cold.of(kind)}
        added[kind] = {**known, **{c: known.get(c, frozenset()) | f for c, f in extra.items() if f}}
    return FeatureIndex(added["user"], added["item"], features.counts)


def install_vectors(
    entities: EntityIndex,
    tables: Mapping[ColdKind, torch.nn.Embedding] | None,
    vectors: Mapping[ColdKind, Mapping[str, torch.Tensor]],
    new_ids: Mapping[ColdKind, Sequence[str]],
) -> EntityIndex:
    """Put each cold id's vector into its row of ``tables`` (the user and item prompt tables; None for a
    discrete prompt, which has none), adding rows at the end for ``new_ids`` (ids without a row); returns the
    entity index with the added ids."""
    users = (*entities.users, *new_ids.get("user", ()))
    items = (*entities.items, *new_ids.get("item", ()))
    extended = EntityIndex(users, items)
    if tables is None:
        return extended
    for kind, ids in zip(COLD_KINDS, (users, items)):
        table = tables[kind]
        own = vectors.get(kind, {})
        if not own and len(ids) == table.num_embeddings:
            continue
        with torch.no_grad():
            weight = table.weight
            grown = torch.cat([weight, weight.new_zeros(len(ids) - weight.shape[0], weight.shape[1])])
            rows = row_index(ids)
            for entity, vector in own.items():
                grown[rows[entity]] = vector.to(grown.dtype)
            table.weight = torch.nn.Parameter(grown, requires_grad=False)
            table.num_embeddings = grown.shape[0]
    return extended


def row_index(ids: Sequence[str]) -> dict[str, int]:
    return {entity: row for row, entity in enumerate(ids)}
