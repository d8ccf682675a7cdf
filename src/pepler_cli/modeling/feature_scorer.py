"""The learned feature predictor: a small scorer on a run's user and item vectors, fitted as training ends.

``--feature-hint predicted --feature-predictor learned`` chooses among the same candidates as the counts
predictor (``data.feature_prediction``: the item's training features) by

    score(f) = tanh(W [u; i] + b) · e_f + b_f + a · log(1 + n_item(f))

where u and i are the run's trained user and item vectors (held fixed), e_f a learned feature vector, b_f its
bias and a a learned weight on the item's own count of f. It is fitted after the text stages on every record of
the training part (a softmax over each record's candidates, the feature it was reviewed with the target),
full-batch Adam, keeping the epoch with the best hit rate on the validation part. It needs user and item
vectors: a continuous prompt.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pepler_cli.data.feature_prediction import FeatureCounts
from pepler_cli.errors import PeplerError
from pepler_cli.modeling.continuous import ContinuousPromptModel
from pepler_cli.modeling.entities import EntityIndex

HIDDEN = 64
EPOCHS = 300
PATIENCE = 30  # epochs without a better validation hit rate
LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-4


class FeatureScorer(nn.Module):
    def __init__(self, width: int, features: Sequence[str]) -> None:
        super().__init__()
        self.features = list(features)
        self.project = nn.Linear(2 * width, HIDDEN)
        self.feature_vectors = nn.Embedding(len(self.features), HIDDEN)
        self.feature_bias = nn.Parameter(torch.zeros(len(self.features)))
        self.count_weight = nn.Parameter(torch.ones(()))

    def forward(self, users: torch.Tensor, items: torch.Tensor, item_counts: torch.Tensor) -> torch.Tensor:
        """(B, F) scores of every feature from (B, width) user and item vectors and (B, F) item counts."""
        hidden = torch.tanh(self.project(torch.cat([users, items], dim=1)))
        return (
            hidden @ self.feature_vectors.weight.T
            + self.feature_bias
            + self.count_weight * item_counts.log1p()
        )


@dataclass
class _Rows:
    """Tensors of a part: vectors, the item's counts over the vocabulary, the candidate mask, the targets."""

    users: torch.Tensor
    items: torch.Tensor
    counts: torch.Tensor
    candidates: torch.Tensor
    targets: torch.Tensor


def fit_feature_scorer(
    model: ContinuousPromptModel,
    entities: EntityIndex,
    records: Sequence,
    train_numbers: Sequence[int],
    valid_numbers: Sequence[int],
    seed: int,
) -> tuple[FeatureScorer, float]:
    """The fitted scorer and its validation hit rate (the module's docstring)."""
    counts = FeatureCounts.from_training(records, train_numbers)
    vocabulary = counts.vocabulary()
    generator = torch.Generator().manual_seed(seed)
    user_vectors = model.user_embeddings.weight.detach().float().cpu()
    item_vectors = model.item_embeddings.weight.detach().float().cpu()
    scorer = FeatureScorer(user_vectors.shape[1], vocabulary)
    with torch.no_grad():  # seeded on its own generator: the global one stays as training left it
        for parameter in (scorer.project.weight, scorer.feature_vectors.weight):
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
        scorer.project.bias.zero_()
    train = _rows(counts, vocabulary, entities, records, train_numbers, user_vectors, item_vectors)
    valid = _rows(counts, vocabulary, entities, records, valid_numbers, user_vectors, item_vectors)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    best, best_state, waited = -1.0, scorer.state_dict(), 0
    for _ in range(EPOCHS):
        scorer.train()
        optimizer.zero_grad()
        logits = _masked(scorer(train.users, train.items, train.counts), train.candidates)
        loss = nn.functional.cross_entropy(logits, train.targets)
        loss.backward()
        optimizer.step()
        rate = _hit_rate(scorer, valid)
        if rate > best:
            best, best_state, waited = rate, {k: v.clone() for k, v in scorer.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= PATIENCE:
                break
    scorer.load_state_dict(best_state)
    scorer.eval()
    return scorer, best


@torch.no_grad()
def predict_features(
    scorer: FeatureScorer,
    model: ContinuousPromptModel,
    counts: FeatureCounts,
    users: Sequence[str],
    items: Sequence[str],
    user_rows: torch.Tensor,
    item_rows: torch.Tensor,
) -> list[str]:
    """The best-scoring candidate of each pair (``counts.candidates``), for the pairs' vector rows."""
    vocabulary = scorer.features
    index = {f: k for k, f in enumerate(vocabulary)}
    item_counts = torch.zeros((len(users), len(vocabulary)))
    candidates = torch.zeros((len(users), len(vocabulary)), dtype=torch.bool)
    for row, (user, item) in enumerate(zip(users, items)):
        for feature, n in (counts.of_item.get(item) or {}).items():
            if feature in index:
                item_counts[row, index[feature]] = n
        for feature in counts.candidates(user, item):
            if feature in index:
                candidates[row, index[feature]] = True
    candidates[~candidates.any(dim=1), 0] = (
        True  # nothing known in the scorer's vocabulary: its most frequent
    )
    u = model.user_embeddings.weight.detach().float().cpu()[user_rows.cpu()]
    i = model.item_embeddings.weight.detach().float().cpu()[item_rows.cpu()]
    best = _masked(scorer(u, i, item_counts), candidates).argmax(dim=1).tolist()
    return [vocabulary[k] for k in best]


def _rows(
    counts: FeatureCounts,
    vocabulary: list[str],
    entities: EntityIndex,
    records: Sequence,
    numbers: Sequence[int],
    user_vectors: torch.Tensor,
    item_vectors: torch.Tensor,
) -> _Rows:
    index = {f: k for k, f in enumerate(vocabulary)}
    known = [n for n in numbers if records[n].feature in index]
    item_counts = torch.zeros((len(known), len(vocabulary)))
    candidates = torch.zeros((len(known), len(vocabulary)), dtype=torch.bool)
    for row, n in enumerate(known):
        record = records[n]
        for feature, count in (counts.of_item.get(record.item) or {}).items():
            item_counts[row, index[feature]] = count
        for feature in counts.candidates(record.user, record.item):
            candidates[row, index[feature]] = True
        candidates[row, index[record.feature]] = True  # the target is always a candidate while fitting
    users = torch.tensor([entities.user_row(records[n].user, "") for n in known], dtype=torch.long)
    items = torch.tensor([entities.item_row(records[n].item, "") for n in known], dtype=torch.long)
    return _Rows(
        user_vectors[users],
        item_vectors[items],
        item_counts,
        candidates,
        torch.tensor([index[records[n].feature] for n in known], dtype=torch.long),
    )


def _masked(logits: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~candidates, -math.inf)


@torch.no_grad()
def _hit_rate(scorer: FeatureScorer, rows: _Rows) -> float:
    if not rows.targets.numel():
        return 0.0
    scorer.eval()
    best = _masked(scorer(rows.users, rows.items, rows.counts), rows.candidates).argmax(dim=1)
    return float((best == rows.targets).float().mean())


def save_feature_scorer(scorer: FeatureScorer, path: Path, validation_hit_rate: float) -> None:
    tensors = {k: v.detach().contiguous() for k, v in scorer.state_dict().items()}
    metadata = {"features": json.dumps(scorer.features), "validation_hit_rate": f"{validation_hit_rate:.6f}"}
    save_file(tensors, str(path), metadata=metadata)


def load_feature_scorer(path: Path) -> FeatureScorer:
    """The scorer a run saved; a run trained without --feature-hint has none (an error naming the file)."""
    if not path.is_file():
        raise PeplerError(
            f"{path}: missing: --feature-predictor learned needs a run trained with --feature-hint and a "
            "continuous prompt"
        )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    tensors = load_file(str(path))
    features = json.loads(metadata.get("features", "[]"))
    scorer = FeatureScorer(tensors["project.weight"].shape[1] // 2, features)
    scorer.load_state_dict(tensors, strict=True)
    scorer.eval()
    return scorer
