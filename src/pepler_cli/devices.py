"""Choosing the device and numeric precision."""

from __future__ import annotations

import torch

from pepler_cli.errors import PeplerError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PeplerError("--device cuda: no CUDA device is available (torch sees none)", exit_code=2)
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: ``bf16`` on any device that supports it (CUDA with bf16, or a
    CPU); ``auto`` only on a CUDA device with bf16, since on most CPUs bf16 autocast is slower than fp32."""
    if precision == "fp32":
        return False
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if precision == "bf16" and not supported:
            raise PeplerError("--precision bf16: this GPU does not support bfloat16", exit_code=2)
        return supported
    return precision == "bf16"
