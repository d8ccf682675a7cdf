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
    """bf16 autocast where the GPU supports it; CPU autocast is slower than fp32 on most machines."""
    if precision == "fp32" or device.type != "cuda":
        if precision == "bf16" and device.type != "cuda":
            raise PeplerError("--precision bf16 needs a CUDA device", exit_code=2)
        return False
    supported = torch.cuda.is_bf16_supported()
    if precision == "bf16" and not supported:
        raise PeplerError("--precision bf16: this GPU does not support bfloat16", exit_code=2)
    return supported
