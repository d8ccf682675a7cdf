"""Cross-entropy through the LM head without materialising a (tokens × vocabulary) logit matrix.

A plain ``cross_entropy(head(hidden))`` keeps every logit and its softmax alive until backward: 2,000 target
tokens × 50,257 words is 400 MB per batch in fp32, freshly allocated (and page-faulted) at every step. Here the
loss and both gradients are computed chunk by chunk in the forward pass, in two chunk-sized buffers that every
chunk reuses; backward only scales the stored gradients. The FLOPs are those of the plain method.
"""

from __future__ import annotations

from typing import Any

import torch

# 512 rows × 50,257 fp32 logits ≈ 100 MB per buffer. Measured on 2 CPU cores with GPT-2's vocabulary and 2,272
# target rows: 128 to 512-row chunks took about the same time, 1,024 rows and one unchunked pass 15% longer;
# on a GPU larger products only help, so the largest of the fast sizes.
CHUNK_ROWS = 512


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        compute = _compute_dtype(hidden)
        with torch.autocast(hidden.device.type, enabled=False):
            return _chunked(ctx, hidden, weight, targets, compute)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.grads
        grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype) if grad_hidden is not None else None
        grad_weight = grad_weight * grad_output.to(grad_weight.dtype) if grad_weight is not None else None
        return grad_hidden, grad_weight, None


def _chunked(
    ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, compute: torch.dtype
) -> torch.Tensor:
    need_hidden = ctx.needs_input_grad[0]
    need_weight = ctx.needs_input_grad[1]
    weight_c = weight.to(compute)
    grad_hidden = torch.empty_like(hidden) if need_hidden else None
    grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
    buffers = _ChunkBuffers(hidden, weight)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        h = hidden[rows].to(compute)
        t = targets[rows]
        log_probs = buffers.log_softmax(h, weight_c)
        total -= log_probs.gather(1, t[:, None]).sum()
        if need_hidden or need_weight:
            # d(loss)/d(logits) = softmax - one_hot(target), made in place from the log-probabilities.
            probs = log_probs.exp_()
            probs[torch.arange(t.shape[0], device=t.device), t] -= 1.0
            g = probs.to(compute)
            if grad_hidden is not None:
                if g.dtype == hidden.dtype:
                    torch.mm(g, weight_c, out=grad_hidden[rows])
                else:
                    grad_hidden[rows] = (g @ weight_c).to(hidden.dtype)
            if grad_weight is not None:
                # Accumulated in fp32 in place: no (vocabulary × width) temporary per chunk.
                grad_weight.addmm_(g.T.float(), h.float())
    ctx.grads = (grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None)
    return total


class _ChunkBuffers:
    """Two chunk-sized fp32 buffers that every chunk reuses: the logits and their log-softmax.

    Measured on 2 CPU cores (2,272 target tokens, GPT-2's vocabulary): the loss with both gradients took 1.55 s
    with a fresh logits tensor per chunk and ``logsumexp`` (whose temporaries are as big as the logits), 1.17 s
    like this: fresh 100 MB tensors cost page faults, and the fused log-softmax kernel sweeps each row once.
    """

    def __init__(self, hidden: torch.Tensor, weight: torch.Tensor) -> None:
        shape = (min(CHUNK_ROWS, hidden.shape[0]), weight.shape[0])
        self.logits = torch.empty(shape, dtype=torch.float32, device=hidden.device)
        self.log_probs = torch.empty(shape, dtype=torch.float32, device=hidden.device)

    def log_softmax(self, h: torch.Tensor, weight_c: torch.Tensor) -> torch.Tensor:
        """(rows, vocabulary) log-probabilities of ``h``'s next tokens, in the reused buffer."""
        rows = h.shape[0]
        logits = self.logits[:rows]
        if h.dtype == torch.float32:
            torch.mm(h, weight_c.T, out=logits)
        else:  # bf16 autocast: the product in bf16, the softmax in fp32
            logits.copy_(h @ weight_c.T)
        # The out= form of log_softmax (torch.log_softmax itself allocates its result).
        return torch.ops.aten._log_softmax.out(logits, -1, False, out=self.log_probs[:rows])


def linear_cross_entropy_sum(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Sum over rows of -log softmax(hidden @ weight.T)[target]; differentiable in hidden and weight."""
    if not (hidden.requires_grad or weight.requires_grad) or not torch.is_grad_enabled():
        compute = _compute_dtype(hidden)
        with torch.no_grad(), torch.autocast(hidden.device.type, enabled=False):
            return _no_grad_sum(hidden, weight, targets, compute)
    return _LinearCrossEntropy.apply(hidden, weight, targets)


def _compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    """The head's matmul dtype: autocast's (bf16 on CUDA) when it is on; the softmax is always fp32."""
    device = hidden.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype


def _no_grad_sum(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, compute: torch.dtype
) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    buffers = _ChunkBuffers(hidden, weight)
    weight_c = weight.to(compute)
    for start in range(0, hidden.shape[0], CHUNK_ROWS):
        t = targets[start : start + CHUNK_ROWS]
        log_probs = buffers.log_softmax(hidden[start : start + CHUNK_ROWS].to(compute), weight_c)
        total -= log_probs.gather(1, t[:, None]).sum()
    return total
