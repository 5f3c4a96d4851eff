"""What every sr_teach network shares: a config with its scale and channels, and its family.

`upsampling` tells the families apart: "pre" models sharpen an image already enlarged by bicubic
interpolation (any scale); "post" models make their output at `scale` times their input's size
(one scale each; restoration models are post models at scale 1: same size in and out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass
class ModelConfig:
    """What every model's config has: the scale and the channels."""

    # Pre models: the scale they were trained for (their layers do not use it); post models: the
    # one scale their last layer makes.
    scale: int | None = None
    num_channels: int = 1  # the output's channels: 1 = the luma Y, as the papers (chroma by bicubic); 3 = RGB
    input_channels: int | None = None  # the input image's channels if not num_channels: 1 = gray in, colour out
    mask_input: bool = False  # one more input channel after the image's: 1 where pixels are missing (inpainting)

    def __post_init__(self) -> None:
        if self.num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 (Y or gray) or 3 (RGB), not {self.num_channels!r}")
        if self.input_channels not in (None, 1, 3):
            raise ValueError(f"input_channels must be 1 (gray), 3 (RGB) or None (as num_channels), not {self.input_channels!r}")
        if self.scale is not None and (isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1):
            raise ValueError(f"scale must be a whole number of at least 1, not {self.scale!r}")


class SRModel(nn.Module):
    """The base of every sr_teach model: its config, its family, and the scales it serves."""

    upsampling: ClassVar[str]  # "pre" or "post"
    changes_channels: ClassVar[bool] = False  # True where the input may have other channels than the output

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if (config.input_channels not in (None, config.num_channels) or config.mask_input) and not self.changes_channels:
            raise ValueError(f"{type(self).__name__} maps its channels to the same channels; for other inputs "
                             "(a mask, gray to colour) use a restoration model: dncnn, arcnn or unet")
        self.config = config

    @property
    def scale(self) -> int | None:
        return self.config.scale

    @property
    def num_channels(self) -> int:
        return self.config.num_channels

    @property
    def image_channels(self) -> int:
        """The input image's channels (without the mask)."""
        return self.config.num_channels if self.config.input_channels is None else self.config.input_channels

    @property
    def in_channels(self) -> int:
        """All the input's channels: the image's, then the mask if the model takes one."""
        return self.image_channels + int(self.config.mask_input)

    @property
    def scales(self) -> tuple[int, ...] | None:
        """The scales this network enlarges by; None for a pre model, which serves any."""
        return None if self.upsampling == "pre" else (self.config.scale,)

    def check_input(self, image: torch.Tensor) -> None:
        """What every forward starts with, worded for someone meeting the error for the first time."""
        name = type(self).__name__
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor, got {type(image).__name__}")
        if image.ndim != 4:
            raise ValueError(
                f"{name} expects a batch of images shaped (B, C, H, W), got shape {tuple(image.shape)}. "
                "For a single (C, H, W) image, add a batch dimension: image.unsqueeze(0)."
            )
        if image.shape[1] != self.in_channels:
            built = (f"num_channels={self.num_channels}" if self.in_channels == self.num_channels
                     else f"{self.in_channels} input channels (input_channels, mask_input)")
            raise ValueError(
                f"{name} was built with {built}, but the input has {image.shape[1]} "
                f"channels (shape {tuple(image.shape)}). Build it with num_channels=3 for RGB images, or "
                "num_channels=1 for the Y channel or a gray image (input_channels for a mask or gray in)."
            )
        if not image.is_floating_point():
            raise ValueError(f"{name} expects float pixels in [0, 1], got dtype {image.dtype}. "
                             "Convert 8-bit images with image.float() / 255.")
