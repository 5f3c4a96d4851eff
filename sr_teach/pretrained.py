"""Pretrained weights shipped inside the package, loadable offline in one call.

    model = load_pretrained("espcn", scale=3)

Each file in `sr_teach/weights/` is an ordinary checkpoint (`sr_teach.checkpoints`): the weights,
the model's config, and in `extra` the recipe, the data it saw and the results it measured on the
benchmark sets. A post-upsampling model has one file per scale (`espcn_x3.pt`); a multi-scale
pre-upsampling model one file for all its scales (`vdsr.pt`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_teach.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
from sr_teach.degradations import check_scale
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
    def restores(self) -> bool:
        """True for a restoration model (same size in and out: denoising, JPEG), False for an SR one."""
        return tuple(self.scales) == (1,)

    @property
    def label(self) -> str:
        """The file's stem for a restoration model or a variant (fsrcnn_gan_x4), else "espcn x3", "vdsr x2/3/4"."""
        plain = self.path.stem in (self.name, f"{self.name}_x{self.scales[0]}")
        return f"{self.name} x{'/'.join(map(str, self.scales))}" if plain and not self.restores else self.path.stem

    def load(self, scale: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        """This file's model, built to serve `scale` (default: its first)."""
        return _build(load_checkpoint(self.path), self.path, scale or self.scales[0], device)


def pretrained_models() -> list[PretrainedInfo]:
    """Every weights file shipped with this copy of sr_teach."""
    return [_info(path, load_checkpoint(path)) for path in sorted(WEIGHTS_FOLDER.glob("*.pt"))]


def load_pretrained(name: str, scale: int, device: str | torch.device = "cpu") -> nn.Module:
    """Load shipped weights: `load_pretrained("espcn", scale=3)`, or by file name: `load_pretrained("dncnn_gray",
    scale=1)`; no network access needed."""
    scale = check_scale(scale)
    # The zoo names a file after its recipe: NAME_xS.pt for one scale, NAME.pt for a multi-scale model.
    for path in (WEIGHTS_FOLDER / f"{name}_x{scale}.pt", WEIGHTS_FOLDER / f"{name}.pt"):
        checkpoint = load_checkpoint(path) if path.exists() else None
        named = checkpoint is not None and (checkpoint["model_name"] == name or path.stem == name)
        if named and scale in _info(path, checkpoint).scales:  # an architecture, or a file's name (dncnn_gray)
            return _build(checkpoint, path, scale, device)
    shipped = ", ".join(info.label for info in pretrained_models())
    raise ValueError(
        f"no pretrained weights for {name!r} at x{scale}; shipped: {shipped}. "
        f"Train your own with `sr-teach train --model {name} --scale {scale} --output {name}_x{scale}.pt`."
    )


def load_model(name_or_checkpoint: str | os.PathLike, scale: int, device: str | torch.device = "cpu") -> nn.Module:
    """A checkpoint file if `name_or_checkpoint` is a path, else shipped weights by name (the command
    line's `--model NAME|CKPT`), built to serve `scale`."""
    path = Path(name_or_checkpoint)
    # A shipped model's name is never taken for a file or folder of that name here (write ./espcn for one).
    if str(name_or_checkpoint) in MODELS or not (path.suffix in (".pt", ".pth", ".ckpt") or path.exists()):
        return load_pretrained(str(name_or_checkpoint), scale, device=device)
    return _build(load_checkpoint(path), path, scale, device)


def _info(path: Path, checkpoint: dict[str, Any]) -> PretrainedInfo:
    scales = checkpoint["extra"].get("scales") or [checkpoint["scale"]]
    return PretrainedInfo(checkpoint["model_name"], tuple(map(int, scales)), path, checkpoint["extra"])


def _build(checkpoint: dict[str, Any], path: Path, scale: int, device: str | torch.device) -> nn.Module:
    """The checkpoint's model for `scale`: a pre-upsampling model (one network for every scale) is built
    with it; a post-upsampling one must have been trained for it, or the checkpoint is refused."""
    if getattr(MODELS.get(checkpoint["model_name"]), "upsampling", None) == "pre":
        return model_from_checkpoint(checkpoint, device=device, scale=scale)
    model = model_from_checkpoint(checkpoint, device=device)
    if model.scale != scale:
        raise CheckpointError(
            f"{path} holds a x{model.scale} {type(model).__name__}, not x{scale}: a post-upsampling "
            f"network learns one scale, so use a x{scale} checkpoint (or train one)"
        )
    return model
