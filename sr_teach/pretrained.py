"""Pretrained weights shipped inside the package, loadable offline in one call.

    model = load_pretrained("espcn", scale=3)

Each file in `sr_teach/weights/` is an ordinary sr_teach checkpoint (see `sr_teach.checkpoints`):
the weights, the model's configuration, and in `extra` the training recipe, the data it saw and the
results measured on the benchmark sets. `pretrained_models()` lists them with those results.
A post-upsampling model has one file per scale (`espcn_x3.pt`); a multi-scale pre-upsampling model
one file for all its scales (`vdsr.pt`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_teach.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
from sr_teach.models import MODELS

WEIGHTS_FOLDER = Path(__file__).parent / "weights"


@dataclass
class PretrainedInfo:
    """What a shipped weights file holds, for tables and dropdowns."""

    name: str  # architecture name in sr_teach.models.MODELS, e.g. "espcn"
    scales: tuple[int, ...]  # scales these weights serve
    path: Path
    extra: dict[str, Any]  # recipe, training data and measured results

    @property
    def label(self) -> str:
        return f"{self.name} x{'/'.join(map(str, self.scales))}"


def _scales_of(checkpoint: dict[str, Any]) -> tuple[int, ...]:
    scales = checkpoint["extra"].get("scales")
    if scales:
        return tuple(int(scale) for scale in scales)
    return (int(checkpoint["scale"]),) if checkpoint.get("scale") is not None else ()


def pretrained_models() -> list[PretrainedInfo]:
    """Every weights file shipped with this copy of sr_teach."""
    if not WEIGHTS_FOLDER.is_dir():
        return []
    found = []
    for path in sorted(WEIGHTS_FOLDER.glob("*.pt")):
        checkpoint = load_checkpoint(path)
        found.append(PretrainedInfo(checkpoint["model_name"], _scales_of(checkpoint), path, checkpoint["extra"]))
    return found


def pretrained_path(name: str, scale: int) -> Path:
    """The shipped file for architecture `name` at `scale`, or a clear error listing what exists."""
    for info in pretrained_models():
        if info.name == name and scale in info.scales:
            return info.path
    available = ", ".join(info.label for info in pretrained_models()) or "none"
    raise ValueError(
        f"no pretrained weights for {name!r} at x{scale}; shipped: {available}. "
        f"Train your own with `sr-teach train --model {name} --scale {scale} --output {name}_x{scale}.pt`."
    )


def load_pretrained(name: str, scale: int, device: str = "cpu") -> nn.Module:
    """Load shipped weights: `load_pretrained("espcn", scale=3)`; no network access needed."""
    return _load(pretrained_path(name, scale), scale, device)


def load_model(name_or_checkpoint: str | os.PathLike, scale: int, device: str = "cpu") -> nn.Module:
    """A checkpoint file if `name_or_checkpoint` is an existing path, else shipped weights by name.

    This is what the command line's `--model NAME|CKPT` means. A checkpoint trained for another
    scale is refused (a post-upsampling network learns one scale).
    """
    path = Path(name_or_checkpoint)
    if not (path.suffix in (".pt", ".pth", ".ckpt") or path.exists()):
        return load_pretrained(str(name_or_checkpoint), scale, device=device)
    return _load(path, scale, device)


def _load(path: Path, scale: int, device: str | torch.device) -> nn.Module:
    """The model of a checkpoint file, built to serve `scale`: a pre-upsampling model (one network for
    every scale) is built with it; a post-upsampling one must have been trained for it."""
    checkpoint = load_checkpoint(path)
    if getattr(MODELS.get(checkpoint["model_name"]), "upsampling", None) == "pre":
        return model_from_checkpoint(checkpoint, device=device, scale=scale)
    model = model_from_checkpoint(checkpoint, device=device)
    if model.scale != scale:
        raise CheckpointError(
            f"{path} holds a x{model.scale} {type(model).__name__}, not x{scale}: a post-upsampling "
            f"network learns one scale, so use a x{scale} checkpoint (or train one)"
        )
    return model
