"""Batches of (user, item, explanation) examples as tensors, padded to their own longest sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch


@dataclass
class PromptInputs:
    """What a prompt is built from: ids for the continuous prompt, left-padded tokens for the discrete one, and
    the feature hint's tokens (``--feature-hint``), left-padded, placed after either prompt."""

    users: torch.Tensor  # (B,) long
    items: torch.Tensor  # (B,) long
    prompt_tokens: torch.Tensor | None = None  # (B, P) long, left-padded
    prompt_mask: torch.Tensor | None = None  # (B, P) bool, False on padding
    hint_tokens: torch.Tensor | None = None  # (B, H) long, left-padded
    hint_mask: torch.Tensor | None = None  # (B, H) bool, False on padding

    def select(self, rows: torch.Tensor) -> PromptInputs:
        def pick(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return tensor[rows] if tensor is not None else None

        return PromptInputs(
            self.users[rows],
            self.items[rows],
            pick(self.prompt_tokens),
            pick(self.prompt_mask),
            pick(self.hint_tokens),
            pick(self.hint_mask),
        )

    def to(self, device: torch.device) -> PromptInputs:
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return tensor.to(device, non_blocking=True) if tensor is not None else None

        return PromptInputs(
            move(self.users),
            move(self.items),
            move(self.prompt_tokens),
            move(self.prompt_mask),
            move(self.hint_tokens),
            move(self.hint_mask),
        )


@dataclass
class Batch:
    """``tokens`` holds ``<bos> explanation <eos>`` right-padded; ``token_mask`` marks the real tokens."""

    users: torch.Tensor  # (B,) long
    items: torch.Tensor  # (B,) long
    tokens: torch.Tensor  # (B, T) long
    token_mask: torch.Tensor  # (B, T) bool
    ratings: torch.Tensor  # (B,) float
    prompt_tokens: torch.Tensor | None = None  # (B, P) long, left-padded (discrete prompt)
    prompt_mask: torch.Tensor | None = None  # (B, P) bool
    hint_tokens: torch.Tensor | None = None  # (B, H) long, left-padded (feature hints)
    hint_mask: torch.Tensor | None = None  # (B, H) bool

    def to(self, device: torch.device) -> Batch:
        """Move to ``device``; pinned host memory makes the copy asynchronous on CUDA."""
        if device.type != "cuda":
            return self
        moved = {}
        for field in fields(self):
            value: torch.Tensor | None = getattr(self, field.name)
            moved[field.name] = (
                value.pin_memory().to(device, non_blocking=True) if value is not None else None
            )
        return Batch(**moved)

    @property
    def size(self) -> int:
        return int(self.users.shape[0])

    def prompt_inputs(self) -> PromptInputs:
        return PromptInputs(
            self.users, self.items, self.prompt_tokens, self.prompt_mask, self.hint_tokens, self.hint_mask
        )


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding, so a left-padded prompt starts at position 0 like an unpadded one."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(ids) for ids in sequences)
    tokens = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.bool)
    for row, ids in enumerate(sequences):
        tokens[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = True
    return tokens, mask


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left padding keeps every prompt's last token next to <bos>; the mask hides the padding."""
    longest = max(max(len(ids) for ids in sequences), 1)
    tokens = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.bool)
    for row, ids in enumerate(sequences):
        if ids:
            tokens[row, longest - len(ids) :] = torch.as_tensor(ids, dtype=torch.long)
            mask[row, longest - len(ids) :] = True
    return tokens, mask


def collate(
    users: Sequence[int],
    items: Sequence[int],
    token_ids: Sequence[Sequence[int]],
    ratings: Sequence[float],
    pad_id: int,
    prompt_ids: Sequence[Sequence[int]] | None = None,
    hint_ids: Sequence[Sequence[int]] | None = None,
) -> Batch:
    """Pad to the longest sequence of this batch only, never to the dataset's longest."""
    tokens, mask = pad_right(token_ids, pad_id)
    prompt_tokens, prompt_mask = pad_left(prompt_ids, pad_id) if prompt_ids is not None else (None, None)
    hint_tokens, hint_mask = pad_left(hint_ids, pad_id) if hint_ids is not None else (None, None)
    return Batch(
        users=torch.as_tensor(users, dtype=torch.long),
        items=torch.as_tensor(items, dtype=torch.long),
        tokens=tokens,
        token_mask=mask,
        ratings=torch.as_tensor(ratings, dtype=torch.float32),
        prompt_tokens=prompt_tokens,
        prompt_mask=prompt_mask,
        hint_tokens=hint_tokens,
        hint_mask=hint_mask,
    )
