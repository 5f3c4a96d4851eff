"""Where tensors live: the one place in sr_teach that decides between CUDA, Apple MPS and the CPU.

Everything else takes a `device` argument and never calls `.cuda()`, so the same notebook runs on
a laptop, on a Mac and on a GPU server. "auto" picks the fastest available:

    >>> pick_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import os
import platform

import torch


class DeviceNotAvailableError(RuntimeError):
    """A device was asked for by name (say "cuda") but this machine or PyTorch build does not have it."""


def mps_available() -> bool:
    """True when Apple's Metal (MPS) backend can run tensors here: Apple silicon and a PyTorch with MPS."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1" or "mps" into a `torch.device` that exists on this machine.

    "auto" picks CUDA, then Apple MPS, then the CPU. An explicit name is honoured or refused with an
    explanation (DeviceNotAvailableError), never silently replaced: a run you believe is on the GPU
    but is on the CPU is 50 times slower and hard to notice.
    """
    text = str(preference).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise ValueError(f"unknown device {preference!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if "+cpu" in torch.__version__ else "a build that sees no CUDA GPU or driver"
        raise DeviceNotAvailableError(
            f"device {preference!r} was asked for, but CUDA is not available: this PyTorch ({torch.__version__}) "
            f"is {build}. Use device='auto' to take the best device present, or 'cpu'."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DeviceNotAvailableError(f"device {preference!r} was asked for, but this machine has {count} CUDA "
                                      f"GPU(s), numbered cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not mps_available():
        raise DeviceNotAvailableError(
            f"device {preference!r} was asked for, but Apple's MPS backend is not available: it needs a Mac with "
            "Apple silicon, macOS 12.3 or later and a PyTorch built with MPS. Use device='auto' or 'cpu'."
        )
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"sr_teach runs on 'cpu', 'cuda' or 'mps' devices, not {device.type!r}")
    return device


def describe_device(device: str | torch.device) -> str:
    """One line for a notebook's first cell: which device, and how big (GPU memory, CPU threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        return (f"cuda:{index}: {properties.name}, {properties.total_memory / 2**30:.1f} GiB memory, "
                f"compute capability {properties.major}.{properties.minor}")
    if device.type == "mps":
        return f"mps: Apple GPU ({platform.machine()})"
    processor = platform.processor() or platform.machine() or "unknown processor"
    return f"cpu: {processor}, {torch.get_num_threads()} threads used by PyTorch ({os.cpu_count()} logical cores)"
