"""Restoration networks: the same size in and out (post models at scale 1), for the second part.

- DnCNN (Zhang et al. 2017): a plain stack of 3 x 3 convolutions that predicts the noise, which is
  then taken away: residual learning. The paper's 17 x 64 is `DnCNN(**DnCNN.PAPER)`; the default is
  small, and works on 2 x 2 blocks folded into channels as FFDNet does, so it trains in minutes here.
- AR-CNN (Dong et al. 2015): four layers, like SRCNN with one more, for JPEG artefacts.
- U-Net (Ronneberger et al. 2015): halve, halve, halve, then back up with the skipped features, for
  tasks that must see far (a hole's whole neighbourhood, a whole object's colour).
Each may take other channels than it gives (gray in, colour out) and a mask after the image
(`mask_input`); each adds its output to the input image (the gray copied to R, G and B), so it
learns the correction (DnCNN and AR-CNN start near "change nothing").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from sr_teach.models.base import ModelConfig, SRModel


class RestorationModel(SRModel):
    """A model that keeps the size: scale 1, any input channels, output = input image + correction."""

    upsampling = "post"
    changes_channels = True

    def __init__(self, config: ModelConfig) -> None:
        if config.scale not in (None, 1):
            raise ValueError(f"{type(self).__name__} restores at the same size: scale must be 1, not {config.scale}")
        super().__init__(replace(config, scale=1))

    def initialise(self, last_layer: nn.Conv2d) -> None:
        """He et al. (2015) weights, so a deep stack of ReLU layers neither fades nor explodes (PyTorch's
        default shrinks each layer's signal, and 12 plain layers then barely train), zero biases, and
        a last layer near zero: the untrained model returns its input image, and learns the correction."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(last_layer.weight, std=1e-3)

    def input_image(self, inputs: torch.Tensor) -> torch.Tensor:
        """The image part of the input with the output's channels: (B, C_in + mask, H, W) -> (B, C, H, W)."""
        image = inputs[:, : self.image_channels]
        return image.expand(-1, self.num_channels, -1, -1) if image.shape[1] != self.num_channels else image


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Repeat the last row and column until height and width are multiples of `multiple`."""
    height, width = image.shape[-2:]
    return F.pad(image, (0, -width % multiple, 0, -height % multiple), mode="replicate") if multiple > 1 else image


@dataclass
class DnCNNConfig(ModelConfig):
    depth: int = 12  # convolution layers; the paper: 17 for one noise level, 20 for blind noise and JPEG
    num_features: int = 48  # the paper: 64
    # The paper's, to speed up training. Off by default (plain layers are easier to read and fine for
    # a lesson's few hundred steps); the shipped models use it: +0.9 dB on validation in equal time.
    batch_norm: bool = False
    # Fold each 2 x 2 block into 4 channels first (FFDNet): 1/4 of the positions, so 4 times cheaper
    # per layer and twice the reach. 1 = the paper's full-size layers.
    pixel_unshuffle: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.depth < 2 or self.num_features < 1 or self.pixel_unshuffle < 1:
            raise ValueError(f"DnCNN needs depth >= 2, num_features >= 1 and pixel_unshuffle >= 1, not "
                             f"{self.depth}, {self.num_features}, {self.pixel_unshuffle}")


class DnCNN(RestorationModel):
    """conv+ReLU, (depth - 2) x conv(+BN)+ReLU, conv: the noise (or artefacts), taken from the input."""

    PAPER: ClassVar[dict[str, Any]] = {"depth": 17, "num_features": 64, "batch_norm": True, "pixel_unshuffle": 1}

    def __init__(self, config: DnCNNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or DnCNNConfig(), **changes))
        config, fold = self.config, self.config.pixel_unshuffle
        features, blocks = config.num_features, fold * fold
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels * blocks, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(config.depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, config.num_channels * blocks, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.fold, self.unfold = nn.PixelUnshuffle(fold), nn.PixelShuffle(fold)
        self.initialise(self.layers[-1])

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        self.check_input(noisy)
        height, width = noisy.shape[-2:]
        blocks = self.fold(pad_to_multiple(noisy, self.config.pixel_unshuffle))  # (B, C_in f^2, H / f, W / f)
        noise = self.unfold(self.layers(blocks))[..., :height, :width]  # (B, C, H, W)
        return self.input_image(noisy) - noise  # residual learning: the network estimates what to remove


@dataclass
class ARCNNConfig(ModelConfig):
    kernel_sizes: tuple[int, int, int, int] = (9, 7, 1, 5)  # extraction, enhancement, mapping, reconstruction
    num_features: tuple[int, int, int] = (64, 32, 16)
    residual: bool = True  # add the input back (the paper maps to the clean image; this starts at "no change")

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(size % 2 == 0 for size in self.kernel_sizes):
            raise ValueError(f"AR-CNN's kernels must be odd to keep the size, not {self.kernel_sizes}")


class ARCNN(RestorationModel):
    """Four convolutions: feature extraction, feature enhancement, mapping, reconstruction."""

    def __init__(self, config: ARCNNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or ARCNNConfig(), **changes))
        config = self.config
        widths = (self.in_channels, *config.num_features, config.num_channels)
        layers: list[nn.Module] = []
        for index, kernel_size in enumerate(config.kernel_sizes):
            layers.append(nn.Conv2d(widths[index], widths[index + 1], kernel_size, padding=kernel_size // 2))
            if index < len(config.kernel_sizes) - 1:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)
        self.initialise(self.layers[-1])

    def forward(self, compressed: torch.Tensor) -> torch.Tensor:
        self.check_input(compressed)
        output = self.layers(compressed)  # (B, C, H, W)
        return self.input_image(compressed) + output if self.config.residual else output


@dataclass
class UNetConfig(ModelConfig):
    num_features: int = 32  # channels at full size, doubled at each level down
    levels: int = 3  # how many times the image is halved: each level doubles how far a pixel sees

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_features < 1 or self.levels < 1:
            raise ValueError(f"U-Net needs num_features >= 1 and levels >= 1, not {self.num_features}, {self.levels}")


def _two_convolutions(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(RestorationModel):
    """Encoder (two convolutions, then halve) x levels, bottom, decoder (double, join the skip, two convolutions)."""

    def __init__(self, config: UNetConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or UNetConfig(), **changes))
        config = self.config
        widths = [config.num_features * 2**level for level in range(config.levels + 1)]  # F, 2F, 4F, ...
        self.encoders = nn.ModuleList([_two_convolutions(self.in_channels, widths[0])])
        self.encoders.extend(_two_convolutions(widths[level - 1], widths[level]) for level in range(1, config.levels + 1))
        self.halve = nn.MaxPool2d(2)
        self.doublers = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2) for level in range(config.levels)
        )
        self.decoders = nn.ModuleList(_two_convolutions(2 * widths[level], widths[level]) for level in range(config.levels))
        # PyTorch's default weights: with He's, the U-Net learned more slowly in lessons 11 and 12
        # (colourisation 19.8 against 21.4 dB after 300 steps); its skips keep the signal alive anyway.
        self.output = nn.Conv2d(widths[0], config.num_channels, 1)

    @property
    def grid(self) -> int:
        """The image is padded to a multiple of this (2^levels), so a tile must start on one to match."""
        return 2**self.config.levels

    def forward(self, damaged: torch.Tensor) -> torch.Tensor:
        self.check_input(damaged)
        height, width = damaged.shape[-2:]
        features = self.encoders[0](pad_to_multiple(damaged, self.grid))  # (B, F, H, W)
        skips = []
        for encoder in self.encoders[1:]:
            skips.append(features)
            features = encoder(self.halve(features))  # (B, 2^l F, H / 2^l, W / 2^l)
        for level in reversed(range(self.config.levels)):
            doubled = self.doublers[level](features)  # (B, 2^l F, H / 2^l, W / 2^l)
            features = self.decoders[level](torch.cat([doubled, skips[level]], dim=1))
        correction = self.output(features)[..., :height, :width]  # (B, C, H, W)
        return self.input_image(damaged) + correction
