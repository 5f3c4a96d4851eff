"""Re-parameterised networks: several branches while training, one 3 x 3 convolution per layer after.

ECBSR (Zhang, Zeng, Zhang, ACM MM 2021) trains each layer as a sum of branches: a 3 x 3
convolution, a 1 x 1 expansion then a 3 x 3, and 1 x 1 convolutions followed by fixed Sobel and
Laplacian filters. Every branch is linear, so their sum is one 3 x 3 convolution, whose kernel is
computed from theirs (`EdgeOrientedConvolutionBlock.kernel`). Training sees the richer parameters;
inference pays for plain 3 x 3 convolutions only (`ECBSR.collapse` builds that network).
The same idea: RepVGG (Ding et al., CVPR 2021) and SESR (Bhardwaj et al., MLSys 2022).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from sr_teach.models.base import ModelConfig, SRModel

# The fixed 3 x 3 filters of the edge branches (cross-correlation, as F.conv2d applies them). Each sums
# to zero: a flat image gives zero, so only edges (first derivatives) and curvature (second) pass.
EDGE_FILTERS: dict[str, tuple[tuple[float, ...], ...]] = {
    "sobel_x": ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0)),  # horizontal change: vertical edges
    "sobel_y": ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0)),  # vertical change: horizontal edges
    "laplacian": ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)),  # second derivative: thin lines, corners
}
BRANCHES = ("expand", *EDGE_FILTERS)  # every extra branch an ECB can train with, beside its 3 x 3


def compose(pointwise: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The 3 x 3 kernel of a 1 x 1 convolution (no bias) followed by a zero-padded 3 x 3 one.

    pointwise: (M, C_in, 1, 1), kernel: (C_out, M, 3, 3) -> (C_out, C_in, 3, 3). Output channel o at
    tap t takes sum_m kernel[o, m, t] * (sum_i pointwise[m, i] x_i): a product of the two matrices at
    every tap. Exact at the borders too: zero padding after a 1 x 1 without bias is zero padding before it.
    """
    return torch.einsum("omyx,mi->oiyx", kernel, pointwise[:, :, 0, 0])


class ExpandSqueeze(nn.Module):
    """ECB's second branch: a 1 x 1 convolution to `expansion` times the output's channels, then a 3 x 3
    back to them. Linear, so it is one 3 x 3 convolution with more parameters to train it by."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int) -> None:
        super().__init__()
        # No bias: before a linear 3 x 3 it would only add a constant, which the 3 x 3's bias can.
        self.pointwise = nn.Conv2d(in_channels, expansion * out_channels, kernel_size=1, bias=False)
        self.conv3x3 = nn.Conv2d(expansion * out_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv3x3(self.pointwise(features))  # (B, C_in, H, W) -> (B, eC_out, H, W) -> (B, C_out, H, W)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (C_out, C_in, 3, 3), bias (C_out,)): the one convolution this branch is."""
        return compose(self.pointwise.weight, self.conv3x3.weight), self.conv3x3.bias


class EdgeFilter(nn.Module):
    """ECB's edge branches: a 1 x 1 convolution, then each channel filtered by a fixed 3 x 3 mask (Sobel
    or Laplacian) times a learned scale, plus a learned bias. Only the 1 x 1, the scales and the bias
    train; the mask is a buffer, not a parameter, so the branch stays an edge detector."""

    def __init__(self, in_channels: int, out_channels: int, mask: tuple[tuple[float, ...], ...]) -> None:
        super().__init__()
        # No bias: a constant through a zero-sum filter gives zero, so it would never learn anything.
        self.pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.scale = nn.Parameter(1e-3 * torch.randn(out_channels))  # small: the branch joins in gently (as the paper)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("mask", torch.tensor(mask), persistent=False)  # (3, 3), never trained nor saved

    def depthwise_kernel(self) -> torch.Tensor:
        """Each channel's own filter: its scale times the mask, (C_out, 1, 3, 3)."""
        return self.scale[:, None, None, None] * self.mask

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mixed = self.pointwise(features)  # (B, C_out, H, W)
        # groups=C_out: channel o is filtered alone (a depthwise convolution)
        return F.conv2d(mixed, self.depthwise_kernel(), self.bias, padding=1, groups=mixed.shape[1])  # (B, C_out, H, W)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (C_out, C_in, 3, 3), bias (C_out,)): the depthwise filter as a full kernel that
        is zero between different channels, composed with the 1 x 1."""
        channels = self.scale.shape[0]
        eye = torch.eye(channels, dtype=self.scale.dtype, device=self.scale.device)
        full = eye[:, :, None, None] * self.depthwise_kernel()  # (C_out, C_out, 3, 3): diagonal in channels
        return compose(self.pointwise.weight, full), self.bias


class EdgeOrientedConvolutionBlock(nn.Module):
    """ECB: a 3 x 3 convolution plus extra linear branches, summed, then PReLU (or nothing, last layer).

    `branches` names the extras: "expand" (ExpandSqueeze), "sobel_x", "sobel_y", "laplacian"
    (EdgeFilter); () leaves a plain convolution. Training runs every branch when `train_branches`
    (as the paper draws it); otherwise, and always in eval mode, the block computes its merged kernel
    and runs the one 3 x 3 convolution: the same function, with the same gradients (SESR's way).
    """

    def __init__(self, in_channels: int, out_channels: int, branches: tuple[str, ...], expansion: int,
                 activation: bool, train_branches: bool) -> None:
        super().__init__()
        self.conv3x3 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.branches = nn.ModuleDict({
            name: ExpandSqueeze(in_channels, out_channels, expansion) if name == "expand"
            else EdgeFilter(in_channels, out_channels, EDGE_FILTERS[name])
            for name in branches
        })
        self.activation = nn.PReLU(out_channels) if activation else None
        self.train_branches = train_branches

    def kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (C_out, C_in, 3, 3), bias (C_out,)) of the one convolution equal to all branches summed:
        convolution is linear, so the sum of convolutions is the convolution with the summed kernels."""
        weight, bias = self.conv3x3.weight, self.conv3x3.bias
        for branch in self.branches.values():
            branch_weight, branch_bias = branch.merged()
            weight, bias = weight + branch_weight, bias + branch_bias
        return weight, bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.training and self.train_branches:
            output = self.conv3x3(features)  # (B, C_out, H, W)
            for branch in self.branches.values():
                output = output + branch(features)  # (B, C_out, H, W)
        else:
            weight, bias = self.kernel()
            # The 3 x 3 layer run with the merged kernel in place of its own: one convolution, and one
            # that hooks on nn.Conv2d see (sr_teach.tools.cost counts it, tiling finds its reach).
            output = functional_call(self.conv3x3, {"weight": weight, "bias": bias}, (features,))
        return output if self.activation is None else self.activation(output)  # (B, C_out, H, W)


@dataclass
class ECBSRConfig(ModelConfig):
    scale: int = 2  # r: the tail makes C r^2 channels, which PixelShuffle turns into r x r output pixels
    num_blocks: int = 10  # M: ECBs between the head and the tail (ECBSR-M10C32: 94K weights at x2 on Y)
    num_features: int = 32  # C: channels of every hidden layer (the paper: 8, 16, 32 or 64)
    expansion: int = 2  # the "expand" branch's 1 x 1 widens to expansion x C (the paper's depth multiplier)
    branches: tuple[str, ...] = BRANCHES  # the extra branches every ECB trains with; () = a plain network
    # True: training runs every branch, as the paper's code; False: it runs the merged kernel, the same
    # function and gradients in under a third of the time (one CPU thread, M10C32, batch 16 of 32 x 32:
    # 0.17 s a step against 0.61 s; benchmarks/reparameterized.py measures it where it runs).
    train_branches: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.branches = tuple(self.branches)  # a checkpoint may give a list
        unknown = [name for name in self.branches if name not in BRANCHES]
        if unknown or len(set(self.branches)) != len(self.branches):
            raise ValueError(f"branches are some of {BRANCHES}, each once, not {self.branches}")
        if self.scale < 2:
            raise ValueError(f"ECBSR enlarges: its scale is 2 or more, not {self.scale}")
        if self.num_blocks < 0 or self.num_features < 1 or self.expansion < 1:
            raise ValueError(f"ECBSR needs num_blocks >= 0 and num_features, expansion >= 1, not "
                             f"{self.num_blocks}, {self.num_features}, {self.expansion}")


class ECBSR(SRModel):
    """ECBSR: ECBs on the small image, PixelShuffle, and the input added to every sub-pixel.

    Zhang, Zeng, Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution on Mobile
    Devices", ACM MM 2021. Head: an ECB from the image to C channels; body: M ECBs of C; tail: an ECB
    to C r^2 channels without activation; the LR input, repeated r^2 times, is added before the
    PixelShuffle, so every r x r block starts at its LR pixel (nearest-neighbour enlargement: no
    bicubic needed on a phone). The tail starts near zero, so the untrained network is that skip.
    He init on the other 3 x 3 branches: with the paper code's default init the features faded six-fold
    over 11 layers, and 600 steps reached 28.9 dB on validation at x2, against 32.6 dB (bicubic 30.8).
    `collapse()`: the plain inference network.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(self, config: ECBSRConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or ECBSRConfig(), **changes))
        config, width = self.config, self.config.num_features

        def block(in_channels: int, out_channels: int, activation: bool = True) -> EdgeOrientedConvolutionBlock:
            return EdgeOrientedConvolutionBlock(in_channels, out_channels, config.branches, config.expansion,
                                                activation, config.train_branches)

        self.head = block(self.num_channels, width)
        self.body = nn.Sequential(*(block(width, width) for _ in range(config.num_blocks)))
        self.tail = block(width, self.num_channels * config.scale**2, activation=False)
        self.pixel_shuffle = nn.PixelShuffle(config.scale)
        for block in self.blocks():
            if block is self.tail:  # learned kernels small (the edge scales already are): start as the skip
                for name, parameter in block.named_parameters():
                    if name.endswith("conv3x3.weight"):
                        nn.init.normal_(parameter, std=1e-3)
            else:  # He et al. for a PReLU whose slope starts at 0.25, on the 3 x 3 branch, which leads
                nn.init.kaiming_normal_(block.conv3x3.weight, a=0.25, nonlinearity="leaky_relu")
            for name, parameter in block.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(parameter)

    def blocks(self) -> list[EdgeOrientedConvolutionBlock]:
        """Head, body and tail in order: the layers `collapse` turns into plain convolutions."""
        return [self.head, *self.body, self.tail]

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        self.check_input(lr_image)
        features = self.head(lr_image)  # (B, C, H, W)
        features = self.body(features)  # (B, C, H, W)
        sub_pixels = self.tail(features) + lr_image.repeat_interleave(self.scale**2, dim=1)  # (B, ch r^2, H, W)
        return self.pixel_shuffle(sub_pixels)  # (B, ch, r H, r W)

    @torch.no_grad()
    def collapse(self) -> CollapsedECBSR:
        """The inference network: each ECB's merged kernel in a plain Conv2d (+ its PReLU), same outputs."""
        reference = self.head.conv3x3.weight
        plain = CollapsedECBSR(self.config).to(device=reference.device, dtype=reference.dtype)
        for block, layer in zip(self.blocks(), plain.blocks()):
            weight, bias = block.kernel()
            layer[0].weight.copy_(weight)
            layer[0].bias.copy_(bias)
            if block.activation is not None:
                layer[1].weight.copy_(block.activation.weight)
        return plain.eval()


class CollapsedECBSR(SRModel):
    """ECBSR as it runs after training: 3 x 3 convolutions, PReLU, the skip and PixelShuffle, nothing else.

    Built by `ECBSR.collapse()` (or from an ECBSRConfig, with random weights: then it is a plain
    network of ECBSR's shape, trained without re-parameterisation). Its parameters are what inference
    stores: 94,308 for the default ECBSR-M10C32 at x2 on the Y channel.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(self, config: ECBSRConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or ECBSRConfig(), **changes))
        width, scale = self.config.num_features, self.config.scale

        def layer(in_channels: int, out_channels: int, activation: bool = True) -> nn.Sequential:
            convolution = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
            return nn.Sequential(convolution, nn.PReLU(out_channels)) if activation else nn.Sequential(convolution)

        self.head = layer(self.num_channels, width)
        self.body = nn.Sequential(*(layer(width, width) for _ in range(self.config.num_blocks)))
        self.tail = layer(width, self.num_channels * scale**2, activation=False)
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def blocks(self) -> list[nn.Sequential]:
        return [self.head, *self.body, self.tail]

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        self.check_input(lr_image)
        features = self.body(self.head(lr_image))  # (B, C, H, W)
        sub_pixels = self.tail(features) + lr_image.repeat_interleave(self.scale**2, dim=1)  # (B, ch r^2, H, W)
        return self.pixel_shuffle(sub_pixels)  # (B, ch, r H, r W)
