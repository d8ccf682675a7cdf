"""Cross-entropy through the LM head without materialising a (tokens × vocabulary) logit matrix.

A plain ``cross_entropy(head(hidden))`` keeps every logit and its softmax alive until backward: 2,000 target
tokens × 50,257 words is 400 MB per batch in fp32, freshly allocated (and page-faulted) at every step. Here the
loss and both gradients are computed chunk by chunk in the forward pass, so only one chunk of logits exists at a
time; backward only scales the stored gradients. The FLOPs are those of the plain method.
"""

from __future__ import annotations

from typing import Any

import torch

# 512 rows × 50,257 fp32 logits ≈ 100 MB at a time. Measured on 2 CPU cores with GPT-2's vocabulary: 128-row
# chunks were slower than no chunking at all (small products), 512 and 2,048 were faster than both.
CHUNK_ROWS = 512


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        autocast_on = torch.is_autocast_enabled(hidden.device.type)
        compute = torch.get_autocast_dtype(hidden.device.type) if autocast_on else hidden.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            return _chunked(ctx, hidden, weight, targets, compute)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.grads
        grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype) if grad_hidden is not None else None
        grad_weight = grad_weight * grad_output.to(grad_weight.dtype) if grad_weight is not None else None
        return grad_hidden, grad_weight, None


def _chunked(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, compute: torch.dtype) -> torch.Tensor:
    need_hidden = ctx.needs_input_grad[0]
    need_weight = ctx.needs_input_grad[1]
    weight_c = weight.to(compute)
    grad_hidden = torch.empty_like(hidden) if need_hidden else None
    grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        h = hidden[rows].to(compute)
        t = targets[rows]
        logits = (h @ weight_c.T).float()
        log_normalizer = torch.logsumexp(logits, dim=-1)
        total += (log_normalizer - logits.gather(1, t[:, None]).squeeze(1)).sum()
        if need_hidden or need_weight:
            # d(loss)/d(logits) = softmax - one_hot(target), computed in place over the logits buffer.
            probs = logits.sub_(log_normalizer[:, None]).exp_()
            probs[torch.arange(t.shape[0], device=t.device), t] -= 1.0
            g = probs.to(compute)
            if grad_hidden is not None:
                grad_hidden[rows] = (g @ weight_c).to(hidden.dtype)
            if grad_weight is not None:
                # Accumulated in fp32 in place: no (vocabulary × width) temporary per chunk.
                grad_weight.addmm_(g.T.float(), h.float())
    ctx.grads = (grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None)
    return total


def linear_cross_entropy_sum(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over rows of -log softmax(hidden @ weight.T)[target]; differentiable in hidden and weight."""
    if not (hidden.requires_grad or weight.requires_grad) or not torch.is_grad_enabled():
        with torch.no_grad():
            return _no_grad_sum(hidden, weight, targets)
    return _LinearCrossEntropy.apply(hidden, weight, targets)


def _no_grad_sum(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], CHUNK_ROWS):
        logits = (hidden[start : start + CHUNK_ROWS] @ weight.T).float()
        t = targets[start : start + CHUNK_ROWS]
        total += (torch.logsumexp(logits, dim=-1) - logits.gather(1, t[:, None]).squeeze(1)).sum()
    return total
