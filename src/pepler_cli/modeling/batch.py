"""A batch of (user, item, explanation) examples as tensors, padded to its own longest sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """``tokens`` holds ``<bos> explanation <eos>`` right-padded; ``token_mask`` marks the real tokens."""

    users: torch.Tensor  # (B,) long
    items: torch.Tensor  # (B,) long
    tokens: torch.Tensor  # (B, T) long
    token_mask: torch.Tensor  # (B, T) bool
    ratings: torch.Tensor  # (B,) float

    def to(self, device: torch.device) -> Batch:
        """Move to ``device``; pinned host memory makes the copy asynchronous on CUDA."""
        if device.type != "cuda":
            return self
        moved = {}
        for field in fields(self):
            value: torch.Tensor = getattr(self, field.name)
            moved[field.name] = value.pin_memory().to(device, non_blocking=True)
        return Batch(**moved)

    @property
    def size(self) -> int:
        return int(self.users.shape[0])


def collate(
    users: Sequence[int],
    items: Sequence[int],
    token_ids: Sequence[Sequence[int]],
    ratings: Sequence[float],
    pad_id: int,
) -> Batch:
    """Pad to the longest sequence of this batch only, never to the dataset's longest."""
    longest = max(len(ids) for ids in token_ids)
    tokens = torch.full((len(token_ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), longest), dtype=torch.bool)
    for row, ids in enumerate(token_ids):
        tokens[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = True
    return Batch(
        users=torch.as_tensor(users, dtype=torch.long),
        items=torch.as_tensor(items, dtype=torch.long),
        tokens=tokens,
        token_mask=mask,
        ratings=torch.as_tensor(ratings, dtype=torch.float32),
    )
