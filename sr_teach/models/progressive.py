"""Progressive and iterative upsampling: LapSRN (x2, then x2 again) and DBPN (up, down, up again).

Both take the small image (the "post" family: `upsampling = "post"`, one scale per model), but
neither enlarges only in its last layer:
- LapSRN (Lai et al., CVPR 2017) climbs a Laplacian pyramid one x2 step at a time. Each level
  enlarges the image of the level below and adds the detail (residual) it predicts; every level's
  output is an image (`LapSRN.pyramid`), so each can be supervised (`pyramid_loss`).
- DBPN (Haris et al., CVPR 2018) enlarges and shrinks its features over and over. An up-projection
  enlarges, shrinks the result back, compares it with what it enlarged, and enlarges that error to
  correct itself: the classical iterative back-projection (Irani and Peleg 1991), learned.
Each has a small default that trains in minutes on a CPU; `Model(**Model.PAPER)` is the paper's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from sr_teach.degradations import downscale
from sr_teach.interpolation import resize
from sr_teach.losses import LossFunction, charbonnier_loss
from sr_teach.models.base import ModelConfig, SRModel
from sr_teach.models.super_resolution import transposed_conv_padding

LEAKY_SLOPE = 0.2  # LapSRN's leaky ReLU: negative inputs keep a fifth of their value
PRELU_START = 0.25  # DBPN's PReLU: PyTorch's (and He et al.'s) starting slope


def he_std(fan_in: float, slope: float) -> float:
    """He et al. (2015)'s standard deviation for weights before a leaky ReLU with this negative slope:
    sqrt(2 / ((1 + slope^2) fan_in)), so the signal keeps its variance from layer to layer."""
    return math.sqrt(2.0 / ((1 + slope**2) * fan_in))


def init_transposed_(layer: nn.ConvTranspose2d, slope: float) -> None:
    """He init for a transposed convolution. Each output pixel sums in_channels x (kernel / stride)^2
    inputs on average; kaiming_normal_ would read the fan-in of a transposed weight wrongly."""
    (kernel_size, _), (stride, _) = layer.kernel_size, layer.stride
    fan_in = layer.in_channels // layer.groups * (kernel_size / stride) ** 2
    nn.init.normal_(layer.weight, std=he_std(fan_in, slope))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def bilinear_kernel() -> torch.Tensor:
    """The 4 x 4 kernel with which a stride-2 transposed convolution is bilinear x2 enlargement.

    Outer product of (1, 3, 3, 1) / 4 with itself: each output pixel takes 3/4 of its nearer and 1/4
    of its farther input neighbour along each axis, so the four weights it receives sum to 1.
    """
    profile = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4
    return torch.outer(profile, profile)  # (4, 4)


@dataclass
class LapSRNConfig(ModelConfig):
    scale: int = 4  # 2, 4 or 8: log2(scale) levels of x2 each
    num_features: int = 16  # the width of every convolution of the feature branch (the paper: 64)
    depth: int = 4  # d: 3 x 3 convolutions per level before its x2 (the paper: 10); each level costs 4x the last

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ValueError(f"LapSRN enlarges in steps of x2, so its scale must be a power of two (2, 4, 8), "
                             f"not {self.scale}; for x3 use a one-step network such as espcn or fsrcnn")
        if self.num_features < 1 or self.depth < 1:
            raise ValueError(f"LapSRN needs num_features >= 1 and depth >= 1, not {self.num_features} and {self.depth}")


class LapSRN(SRModel):
    """LapSRN: a Laplacian pyramid of x2 levels, each adding the detail it predicts to an enlarged image.

    Lai, Huang, Ahuja, Yang, "Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution",
    CVPR 2017 (arXiv:1704.03915). An input convolution, then per level two branches:
    - feature extraction: `depth` 3 x 3 convolutions on this level's grid, then a transposed
      convolution (stride 2) to the next grid, each with a leaky ReLU; then residual prediction, one
      3 x 3 convolution to an image of the missing detail (the level's band of the pyramid);
    - image reconstruction: the image of the level below, enlarged by a 4 x 4 transposed convolution
      that starts as bilinear x2 and is trained, plus that residual.
    Released models: 3 x 3 feature transposed convolutions, 812K weights at x4. Ours: the image is
    padded by its edge, not zeros (no dark frame), and residuals start near 0 (so the untrained model
    is bilinear, one x2 at a time); trained on its last level, or on all with `pyramid_loss`.
    """

    upsampling = "post"  # input: the low-resolution image itself
    PAPER: ClassVar[dict[str, Any]] = {"num_features": 64, "depth": 10}

    def __init__(self, config: LapSRNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or LapSRNConfig(), **changes))
        width, channels = self.config.num_features, self.num_channels
        self.input_convolution = nn.Sequential(nn.Conv2d(channels, width, kernel_size=3, padding=1),
                                               nn.LeakyReLU(LEAKY_SLOPE))
        padding, output_padding = transposed_conv_padding(kernel_size=3, scale=2)
        self.feature_extraction, self.residual_prediction, self.image_upsampling = (nn.ModuleList() for _ in range(3))
        for _ in range(self.num_levels):
            layers: list[nn.Module] = []
            for _ in range(self.config.depth):
                layers += [nn.Conv2d(width, width, kernel_size=3, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
            layers += [nn.ConvTranspose2d(width, width, kernel_size=3, stride=2, padding=padding,
                                          output_padding=output_padding), nn.LeakyReLU(LEAKY_SLOPE)]
            self.feature_extraction.append(nn.Sequential(*layers))
            self.residual_prediction.append(nn.Conv2d(width, channels, kernel_size=3, padding=1))
            # Each channel enlarged on its own (groups), from its edge-padded image: padding=3 undoes the pad.
            self.image_upsampling.append(nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=3,
                                                            groups=channels, bias=False))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=he_std(module.in_channels * 9, LEAKY_SLOPE))
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.ConvTranspose2d) and module.bias is not None:  # the feature branch's
                init_transposed_(module, LEAKY_SLOPE)
        with torch.no_grad():
            for prediction, upsampling in zip(self.residual_prediction, self.image_upsampling):
                nn.init.normal_(prediction.weight, std=1e-3)  # small detail at first: the image branch leads
                upsampling.weight.copy_(bilinear_kernel().expand_as(upsampling.weight))

    @property
    def num_levels(self) -> int:
        """How many x2 levels the pyramid has: log2(scale)."""
        return self.scale.bit_length() - 1

    def pyramid(self, lr_image: torch.Tensor) -> list[torch.Tensor]:
        """Every level's image, smallest first: x2, x4, ... up to x scale; (B, C, 2^k H, 2^k W) each."""
        self.check_input(lr_image)
        features = self.input_convolution(lr_image)  # (B, F, H, W)
        image, levels = lr_image, []
        for extraction, prediction, upsampling in zip(self.feature_extraction, self.residual_prediction,
                                                      self.image_upsampling):
            features = extraction(features)  # (B, F, 2h, 2w), twice the size of the level below
            residual = prediction(features)  # (B, C, 2h, 2w): the detail this level adds
            enlarged = upsampling(F.pad(image, (1, 1, 1, 1), mode="replicate"))  # (B, C, 2h, 2w)
            image = enlarged + residual  # (B, C, 2h, 2w)
            levels.append(image)
        return levels

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        return self.pyramid(lr_image)[-1]  # (B, C, scale H, scale W)


def pyramid_loss(levels: list[torch.Tensor], hr_image: torch.Tensor,
                 loss: LossFunction = charbonnier_loss) -> torch.Tensor:
    """LapSRN's multi-scale loss: the sum over levels of `loss`(level's image, HR shrunk to its size).

    levels: `LapSRN.pyramid`'s images, smallest first; hr_image: (B, C, H, W), the last level's size.
    Each level's target is the HR image shrunk by MATLAB's bicubic, as the paper makes its pyramid
    of ground truths; with the Charbonnier loss (eps = 1e-3) this is the paper's loss.
    """
    if not levels or levels[-1].shape != hr_image.shape:
        raise ValueError(f"the last level must be the HR image's size {tuple(hr_image.shape)}, got "
                         f"{[tuple(level.shape) for level in levels]}")
    total = hr_image.new_zeros(())
    for level in levels:
        factor = hr_image.shape[-1] // level.shape[-1]  # 2^(levels above this one)
        target = hr_image if factor == 1 else downscale(hr_image, factor).to(hr_image.dtype)
        total = total + loss(level, target)
    return total


# The paper's projection layers for each scale: (kernel_size, stride, padding). With them a transposed
# convolution maps H to exactly scale H, and a convolution scale H back to H.
PROJECTION_LAYERS: dict[int, tuple[int, int, int]] = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def projection_layer(channels: int, scale: int, up: bool, gain: float = 1.0) -> nn.Sequential:
    """One layer of a projection unit: enlarge (transposed convolution) or shrink (strided convolution)
    by `scale`, then a PReLU; He-initialised for the PReLU's starting slope, times `gain`."""
    kernel_size, stride, padding = PROJECTION_LAYERS[scale]
    if up:
        layer: nn.Module = nn.ConvTranspose2d(channels, channels, kernel_size, stride=stride, padding=padding)
        init_transposed_(layer, PRELU_START)
    else:
        layer = nn.Conv2d(channels, channels, kernel_size, stride=stride, padding=padding)
        nn.init.normal_(layer.weight, std=he_std(channels * kernel_size**2, PRELU_START))
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return nn.Sequential(layer, nn.PReLU(init=PRELU_START))


# The correcting layer of each unit starts at this fraction of He's weights: each unit then starts
# close to its plain enlargement (or shrinking), and the features keep their size from stage to stage
# (at full He weights H0 + correction doubles them at every unit, 16-fold after 4 stages).
CORRECTION_GAIN = 0.1


class UpProjection(nn.Module):
    """DBPN's up-projection unit: enlarge, shrink back, compare, and correct by the enlarged error.

    H0 = up(L);  E = down(H0) - L;  H = H0 + up_error(E). If shrinking H0 gives back L exactly, the
    error is zero and H = H0 (up to the layers' biases): the correction only adds what H0 got wrong.
    """

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.upsample, self.downsample = projection_layer(channels, scale, up=True), projection_layer(channels, scale, up=False)
        self.upsample_error = projection_layer(channels, scale, up=True, gain=CORRECTION_GAIN)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        high = self.upsample(low)  # (B, F, sH, sW): H0, a first enlargement
        error = self.downsample(high) - low  # (B, F, H, W): what H0 looks like shrunk, minus what it came from
        return high + self.upsample_error(error)  # (B, F, sH, sW): H0 corrected


class DownProjection(nn.Module):
    """DBPN's down-projection unit, the mirror image: L0 = down(H);  E = up(L0) - H;  L = L0 + down_error(E)."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.downsample, self.upsample = projection_layer(channels, scale, up=False), projection_layer(channels, scale, up=True)
        self.downsample_error = projection_layer(channels, scale, up=False, gain=CORRECTION_GAIN)

    def forward(self, high: torch.Tensor) -> torch.Tensor:
        low = self.downsample(high)  # (B, F, H, W): L0
        error = self.upsample(low) - high  # (B, F, sH, sW)
        return low + self.downsample_error(error)  # (B, F, H, W): L0 corrected


@dataclass
class DBPNConfig(ModelConfig):
    scale: int = 4  # 2, 4 or 8, each with the paper's kernel, stride and padding (PROJECTION_LAYERS)
    num_features: int = 32  # n0: the first 3 x 3 convolution's width (the paper: 256)
    num_projection_features: int = 8  # nR: the width inside the projection units (the paper: 64)
    num_stages: int = 2  # T: up-projection units, with T - 1 down-projections between them (the paper: 7)
    # Add the bicubic enlargement (not in the CVPR paper; its journal version, arXiv:1904.05677, adds
    # one): the network starts as bicubic and learns only the missing detail.
    global_residual: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale not in PROJECTION_LAYERS:
            raise ValueError(f"DBPN's projection layers are defined for x2, x4 and x8, not x{self.scale}")
        if min(self.num_features, self.num_projection_features, self.num_stages) < 1:
            raise ValueError(f"DBPN needs num_features, num_projection_features and num_stages of at least 1, not "
                             f"{self.num_features}, {self.num_projection_features}, {self.num_stages}")


class DBPN(SRModel):
    """DBPN: up- and down-projection units in turn, each correcting itself by its back-projected error.

    Haris, Shakhnarovich, Ukita, "Deep Back-Projection Networks For Super-Resolution", CVPR 2018
    (arXiv:1803.02735). Initial feature extraction (3 x 3, n0 filters; 1 x 1 to nR), T up-projection
    units with a down-projection unit between each two (enlarging by scale and shrinking by it, PReLU
    after every layer), and reconstruction: one 3 x 3 convolution over the T enlarged feature maps
    side by side, so every stage's view of the large image reaches the output. The paper's final
    D-DBPN also feeds every unit all earlier units' outputs (dense connections); this is the plain
    DBPN without them. He init as the paper's code, except each unit's correcting layer
    (CORRECTION_GAIN). At the paper's sizes (`DBPN(**DBPN.PAPER)`) this plain DBPN has 10.2M parameters at x4.
    """

    upsampling = "post"  # input: the low-resolution image itself
    PAPER: ClassVar[dict[str, Any]] = {"num_features": 256, "num_projection_features": 64, "num_stages": 7}

    def __init__(self, config: DBPNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or DBPNConfig(), **changes))
        config, channels = self.config, self.num_channels
        n0, nr, scale = config.num_features, config.num_projection_features, config.scale
        self.feature_extraction = nn.Sequential(
            nn.Conv2d(channels, n0, kernel_size=3, padding=1), nn.PReLU(init=PRELU_START),
            nn.Conv2d(n0, nr, kernel_size=1), nn.PReLU(init=PRELU_START),
        )
        self.up_projections = nn.ModuleList(UpProjection(nr, scale) for _ in range(config.num_stages))
        self.down_projections = nn.ModuleList(DownProjection(nr, scale) for _ in range(config.num_stages - 1))
        self.reconstruction = nn.Conv2d(config.num_stages * nr, channels, kernel_size=3, padding=1)
        for layer in self.feature_extraction[::2]:
            nn.init.normal_(layer.weight, std=he_std(layer.in_channels * layer.kernel_size[0] ** 2, PRELU_START))
            nn.init.zeros_(layer.bias)
        # No activation after the reconstruction; with the bicubic skip, start near "add nothing".
        std = 1e-3 if config.global_residual else he_std(self.reconstruction.in_channels * 9, 1.0)
        nn.init.normal_(self.reconstruction.weight, std=std)
        nn.init.zeros_(self.reconstruction.bias)

    def stages(self, lr_image: torch.Tensor) -> list[torch.Tensor]:
        """The enlarged feature maps of every up-projection unit, (B, nR, scale H, scale W) each."""
        self.check_input(lr_image)
        low = self.feature_extraction(lr_image)  # (B, nR, H, W)
        highs = []
        for stage, up_projection in enumerate(self.up_projections):
            highs.append(up_projection(low))  # (B, nR, sH, sW)
            if stage < len(self.down_projections):
                low = self.down_projections[stage](highs[-1])  # (B, nR, H, W): back down, corrected
        return highs

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        highs = self.stages(lr_image)  # T x (B, nR, sH, sW)
        sr_image = self.reconstruction(torch.cat(highs, dim=1))  # (B, C, sH, sW)
        if self.config.global_residual:
            sr_image = sr_image + resize(lr_image, scale=self.scale, clamp=False)  # MATLAB bicubic, as ESPCN's
        return sr_image
