"""Where and in what precision a run computes, and what to record about the machine.

Introduced in notebook 03 (the device cell). ``"auto"`` picks what a student has: a CUDA
GPU (Colab), Apple's MPS on a Mac, else the CPU.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
from pathlib import Path

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else Apple's MPS, else the CPU. A clear error for a
    device that is not there."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; valid values are 'auto', 'cpu', 'cuda', 'cuda:N', "
                         f"'mps'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; use --device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but Apple's MPS is not available here; "
                         f"use --device cpu or auto")
    return device


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    flags = _cpuinfo()
    return " avx512_bf16" in flags or " amx_bf16" in flags


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 9R14", "Intel(R) Xeon(R) ..."), for the records: results
    are bit-exact only on the same CPU model (bf16 and fp32 kernels differ between them)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for ``precision``: "fp32", "bf16", or "auto".

    "auto" is bf16 on a CPU with native bf16 instructions (AVX512-BF16 or AMX), where the
    benchmark measures about twice fp32's training speed with results within seed noise
    (``docs/speed.md``); fp32 everywhere else, GPUs included. Weights, optimiser state and
    the loss stay fp32 in any case.
    """
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype):
    """bf16 autocast for the forward pass, or nothing for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def device_description(device: torch.device) -> str:
    """What results files record: the GPU's name, or the CPU model and the threads used."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"mps: {platform.machine()}"
    return f"cpu: {cpu_model()}, {torch.get_num_threads()} threads"


def git_commit() -> str | None:
    """The commit of the code that runs, when it runs from a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
