"""Super-resolution networks, each written to read like its paper.

Two families, told apart by the class attribute `upsampling`:
- "pre" (SRCNN, VDSR): the low-resolution image is first enlarged by bicubic interpolation and the
  network only sharpens it; the same weights serve any scale (`model.scales` is None).
- "post" (FSRCNN, ESPCN, PostUpsamplingNet): the network takes the small image and learns the
  upsampling in its last layer: cheaper (every other layer runs on H x W, not on scale H x scale W),
  but one model per scale (`model.scales == (scale,)`).

Each model's hyperparameters are a small config dataclass (as nanoGPT's GPTConfig), with the
paper's defaults; `ESPCN(scale=2)` changes one of them. A checkpoint is `state_dict` + the config.
Models work on the luma Y by default (`num_channels=1`), as the papers do. Outputs are not clamped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sr_teach.interpolation import resize
from sr_teach.models.base import ModelConfig, SRModel


def transposed_conv_padding(kernel_size: int, scale: int) -> tuple[int, int]:
    """`(padding, output_padding)` so `nn.ConvTranspose2d(stride=scale)` maps H to exactly scale * H.

    A transposed convolution outputs (H - 1) * scale - 2 * padding + kernel_size + output_padding
    pixels. Setting that to scale * H gives 2 * padding - output_padding = kernel_size - scale.
    padding = ceil((kernel_size - scale) / 2) also centres the output: the kernel's middle tap of
    low-resolution pixel i lands on high-resolution pixel i * scale + (scale - 1) / 2 (rounded),
    the centre of the block that pixel i covers. output_padding (which PyTorch requires to be
    smaller than the stride) adds the one odd pixel on the bottom/right.

    >>> transposed_conv_padding(kernel_size=9, scale=3)
    (3, 0)
    >>> transposed_conv_padding(kernel_size=9, scale=2)
    (4, 1)
    """
    if kernel_size < 1 or scale < 1:
        raise ValueError(f"need kernel_size >= 1 and scale >= 1, got {kernel_size}, {scale}")
    if scale == 1 and kernel_size % 2 == 0:
        raise ValueError(f"with stride 1 only an odd kernel keeps the size, got kernel_size={kernel_size}")
    if kernel_size < scale:  # a kernel smaller than the stride leaves gaps; output_padding fills the last one
        return 0, scale - kernel_size
    padding = math.ceil((kernel_size - scale) / 2)
    return padding, 2 * padding - (kernel_size - scale)  # output_padding is 0 or 1


def icnr_(
    weight: torch.Tensor, scale: int, init: Callable[[torch.Tensor], Any] = nn.init.kaiming_normal_
) -> torch.Tensor:
    """Initialise, in place, the weight of the convolution before `nn.PixelShuffle(scale)` with ICNR.

    Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution" (arXiv:1707.02937).
    A randomly initialised sub-pixel convolution gives each of the scale x scale positions inside
    an output block its own random kernel, so the untrained network already paints a checkerboard.
    ICNR draws one kernel per output channel with `init` and copies it to the scale**2 channels that
    PixelShuffle puts into that channel's blocks: the layer starts as a convolution followed by
    nearest-neighbour upsampling. weight: (out_channels * scale**2, in_channels, kH, kW). Zero the
    bias too, or the bias alone brings the checkerboard back.
    """
    if weight.ndim != 4 or weight.shape[0] % (scale * scale):
        raise ValueError(f"icnr_ needs a Conv2d weight (out, in, kH, kW) with a multiple of {scale * scale} "
                         f"output channels, got shape {tuple(weight.shape)}")
    out_channels, *rest = weight.shape
    sub_kernel = torch.empty(out_channels // (scale * scale), *rest, dtype=weight.dtype, device=weight.device)
    init(sub_kernel)
    # PixelShuffle sends channel c * scale**2 + k to output channel c: each kernel repeats scale**2 times in a row.
    with torch.no_grad():
        return weight.copy_(sub_kernel.repeat_interleave(scale * scale, dim=0))


@dataclass
class SRCNNConfig(ModelConfig):
    kernel_sizes: tuple[int, int, int] = (9, 5, 5)  # f1-f2-f3: 9-5-5 is the paper's best, 9-1-5 its base
    num_features: tuple[int, int] = (64, 32)  # n1, n2: the widths of the first two layers
    # "replicate" (ours: an image's edge continues) or "zeros" (a black frame around each border patch)
    padding_mode: str = "replicate"
    init: str = "he"  # "he" (ReLU-aware) or "paper" (N(0, 0.001^2): thousands of steps to get going)
    residual: bool = False  # add the input to the output (VDSR's idea): learn only what bicubic misses

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kernel_sizes, self.num_features = tuple(self.kernel_sizes), tuple(self.num_features)
        if len(self.kernel_sizes) != 3 or any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"SRCNN has three layers with odd kernels (f1, f2, f3), got {self.kernel_sizes}")
        if len(self.num_features) != 2:
            raise ValueError(f"num_features is (n1, n2), the first two layers' widths, got {self.num_features}")
        if self.padding_mode not in ("replicate", "zeros") or self.init not in ("he", "paper"):
            raise ValueError(f"padding_mode is 'replicate' or 'zeros' and init 'he' or 'paper', "
                             f"got {self.padding_mode!r} and {self.init!r}")


class SRCNN(SRModel):
    """SRCNN: three convolutions on a bicubically upscaled image.

    Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016
    (arXiv:1501.00092). The three layers are the three steps of sparse-coding SR, written as
    convolutions: patch extraction and representation (f1 x f1, n1 filters), non-linear mapping
    (f2 x f2, n2 filters), reconstruction (f3 x f3, one filter per channel).

    Padding: the paper pads nothing and scores only the valid pixels. We pad each layer by k // 2
    so the output has the input's size, replicating the edge rather than adding zeros: in [0, 1],
    zeros show a 9 x 9 filter a black frame, and the borders of a young network come out dark.
    Initialisation: the paper's N(0, 0.001^2) and some 10^8 SGD steps are too slow for a lesson,
    so the default is He et al. 2015, which keeps the signal's variance steady through each ReLU.
    """

    upsampling = "pre"  # input: the low-resolution image already interpolated to the output size

    def __init__(self, config: SRCNNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or SRCNNConfig(), **changes))
        (f1, f2, f3), (n1, n2) = self.config.kernel_sizes, self.config.num_features
        padding_mode, channels = self.config.padding_mode, self.config.num_channels
        self.patch_extraction = nn.Conv2d(channels, n1, kernel_size=f1, padding=f1 // 2, padding_mode=padding_mode)
        self.nonlinear_mapping = nn.Conv2d(n1, n2, kernel_size=f2, padding=f2 // 2, padding_mode=padding_mode)
        self.reconstruction = nn.Conv2d(n2, channels, kernel_size=f3, padding=f3 // 2, padding_mode=padding_mode)
        self.relu = nn.ReLU()
        for layer in (self.patch_extraction, self.nonlinear_mapping, self.reconstruction):
            if self.config.init == "paper" or (self.config.residual and layer is self.reconstruction):
                nn.init.normal_(layer.weight, mean=0.0, std=0.001)  # residual: start as the input itself
            else:  # no ReLU after the last layer
                nn.init.kaiming_normal_(layer.weight, nonlinearity="linear" if layer is self.reconstruction else "relu")
            nn.init.zeros_(layer.bias)

    def forward(self, interpolated_image: torch.Tensor) -> torch.Tensor:
        self.check_input(interpolated_image)
        features = self.relu(self.patch_extraction(interpolated_image))  # (B, n1, H, W)
        features = self.relu(self.nonlinear_mapping(features))  # (B, n2, H, W)
        output = self.reconstruction(features)  # (B, C, H, W)
        return interpolated_image + output if self.config.residual else output


@dataclass
class VDSRConfig(ModelConfig):
    depth: int = 20  # convolutional layers, the first and the reconstruction included
    num_features: int = 64  # filters per layer
    # Not in the paper: fold f x f blocks into channels, so every layer costs f^2 times less.
    pixel_unshuffle: int = 1
    # Not in the paper: draw the last layer from N(0, std^2) so the untrained network returns bicubic.
    reconstruction_std: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.depth < 2 or self.pixel_unshuffle < 1:
            raise ValueError(f"VDSR needs depth >= 2 (an input and a reconstruction layer) and a folding factor "
                             f"pixel_unshuffle >= 1, got {self.depth} and {self.pixel_unshuffle}")


class VDSR(SRModel):
    """VDSR: a 20-layer network that learns the residual between the upscaled image and the truth.

    Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
    CVPR 2016 (arXiv:1511.04587). `depth` layers of 3 x 3 convolutions, 64 filters each, ReLU
    after all but the last, zero padding. Output = input + residual ("residual learning"): the
    interpolated image is already right at low frequencies, so the network predicts only the
    missing detail, small and near zero, which lets such a deep plain network train quickly.
    Trained on x2, x3 and x4 together, one model serves every scale. He et al. 2015 init.

    pixel_unshuffle=f (not in the paper) folds each f x f block of the interpolated image into f^2
    channels (`F.pixel_unshuffle`, lossless), runs the convolutions on that f times smaller grid,
    and unfolds the result (`F.pixel_shuffle`, ESPCN's sub-pixel step), as FFDNet (2018) does.
    """

    upsampling = "pre"  # input: the low-resolution image already interpolated to the output size

    def __init__(self, config: VDSRConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or VDSRConfig(), **changes))
        folded_channels = self.config.num_channels * self.config.pixel_unshuffle**2
        width = self.config.num_features
        self.input_layer = nn.Conv2d(folded_channels, width, kernel_size=3, padding=1)
        hidden_layers: list[nn.Module] = []
        for _ in range(self.config.depth - 2):
            hidden_layers += [nn.Conv2d(width, width, kernel_size=3, padding=1), nn.ReLU()]
        self.hidden_layers = nn.Sequential(*hidden_layers)
        self.reconstruction = nn.Conv2d(width, folded_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.config.reconstruction_std is not None:
            nn.init.normal_(self.reconstruction.weight, mean=0.0, std=self.config.reconstruction_std)

    def forward(self, interpolated_image: torch.Tensor) -> torch.Tensor:
        self.check_input(interpolated_image)
        f = self.config.pixel_unshuffle
        height, width = interpolated_image.shape[-2:]
        # Folding needs sides that f divides: extend the edges, and crop the result back.
        padded = F.pad(interpolated_image, (0, -width % f, 0, -height % f), mode="replicate")
        folded = F.pixel_unshuffle(padded, f)  # (B, C f^2, H / f, W / f)
        features = self.relu(self.input_layer(folded))  # (B, F, H / f, W / f)
        features = self.hidden_layers(features)  # (B, F, H / f, W / f)
        residual = F.pixel_shuffle(self.reconstruction(features), f)  # (B, C, H, W), padded
        return interpolated_image + residual[..., :height, :width]  # (B, C, H, W)


@dataclass
class FSRCNNConfig(ModelConfig):
    scale: int = 3
    num_features: int = 56  # d: the width of the feature extraction and expanding layers
    num_shrunk_features: int = 12  # s: the width of the mapping layers
    num_mapping_layers: int = 4  # m: FSRCNN(56, 12, 4) is the paper's model, FSRCNN(32, 5, 1) its FSRCNN-s
    global_residual: bool = False  # add the bicubic enlargement (not in the paper): starts at bicubic


class FSRCNN(SRModel):
    """FSRCNN: SRCNN made fast by working on the small image and upsampling at the end.

    Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural Network", ECCV 2016
    (arXiv:1608.00367). FSRCNN(d, s, m) has five parts: feature extraction (5 x 5, d filters),
    shrinking (1 x 1, d -> s), mapping (m layers of 3 x 3, s filters), expanding (1 x 1, s -> d),
    each followed by PReLU, and deconvolution (9 x 9 transposed convolution with stride = scale).
    Only the deconvolution depends on the scale, which is how the paper switches scales by
    fine-tuning that one layer. Init as in the paper: He (for PReLU), N(0, 0.001^2) for the last.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(self, config: FSRCNNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or FSRCNNConfig(), **changes))
        d, s, scale = self.config.num_features, self.config.num_shrunk_features, self.config.scale
        self.feature_extraction = nn.Sequential(nn.Conv2d(self.num_channels, d, kernel_size=5, padding=2), nn.PReLU(d))
        self.shrinking = nn.Sequential(nn.Conv2d(d, s, kernel_size=1), nn.PReLU(s))
        mapping_layers: list[nn.Module] = []
        for _ in range(self.config.num_mapping_layers):
            mapping_layers += [nn.Conv2d(s, s, kernel_size=3, padding=1), nn.PReLU(s)]
        self.mapping = nn.Sequential(*mapping_layers)
        self.expanding = nn.Sequential(nn.Conv2d(s, d, kernel_size=1), nn.PReLU(d))
        padding, output_padding = transposed_conv_padding(kernel_size=9, scale=scale)
        self.deconvolution = nn.ConvTranspose2d(
            d, self.num_channels, kernel_size=9, stride=scale, padding=padding, output_padding=output_padding
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # He et al.'s init for a PReLU whose slope starts at 0.25
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.deconvolution.weight, mean=0.0, std=0.001)
        nn.init.zeros_(self.deconvolution.bias)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        self.check_input(lr_image)
        features = self.feature_extraction(lr_image)  # (B, d, H, W)
        features = self.shrinking(features)  # (B, s, H, W)
        features = self.mapping(features)  # (B, s, H, W)
        features = self.expanding(features)  # (B, d, H, W)
        sr_image = self.deconvolution(features)  # (B, C, scale H, scale W)
        if self.config.global_residual:
            sr_image = sr_image + resize(lr_image, scale=self.scale, clamp=False)
        return sr_image


@dataclass
class ESPCNConfig(ModelConfig):
    scale: int = 3  # r: the sub-pixel layer makes r x r output pixels per input pixel
    activation: str = "tanh"  # the paper found tanh better than ReLU ("relu") here
    # Add the bicubic enlargement (not in the paper): the network starts as good as bicubic and
    # learns only the missing detail, so it beats bicubic in seconds instead of minutes.
    global_residual: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation is 'tanh' (the paper's) or 'relu', got {self.activation!r}")


class ESPCN(SRModel):
    """ESPCN: convolutions on the small image, then an efficient sub-pixel convolution layer.

    Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
    Convolutional Neural Network", CVPR 2016 (arXiv:1609.05158). Two feature-map extraction
    layers (5 x 5, 64 filters; 3 x 3, 32 filters) and a last 3 x 3 convolution with C r^2 filters,
    whose channels the periodic shuffling operator PS (`nn.PixelShuffle(r)`) rearranges into an
    image r times larger: channel c r^2 + i r + j becomes pixel (i, j) of each r x r block of output
    channel c. Glorot init for the tanh layers (He for ReLU): the paper does not give one.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(self, config: ESPCNConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or ESPCNConfig(), **changes))
        make_activation = nn.Tanh if self.config.activation == "tanh" else nn.ReLU
        self.feature_extraction = nn.Sequential(
            nn.Conv2d(self.num_channels, 64, kernel_size=5, padding=2),
            make_activation(),
            nn.Conv2d(64, 32, kernel_size=3, padding=1),
            make_activation(),
        )
        self.sub_pixel_convolution = nn.Conv2d(32, self.num_channels * self.scale**2, kernel_size=3, padding=1)
        self.periodic_shuffling = nn.PixelShuffle(self.scale)
        for module in self.feature_extraction:
            if isinstance(module, nn.Conv2d):
                if self.config.activation == "tanh":
                    nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain("tanh"))
                else:
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.config.global_residual:  # start as plain bicubic: a small residual, not a random image
            nn.init.normal_(self.sub_pixel_convolution.weight, std=1e-3)
        else:
            nn.init.xavier_uniform_(self.sub_pixel_convolution.weight)
        nn.init.zeros_(self.sub_pixel_convolution.bias)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        self.check_input(lr_image)
        features = self.feature_extraction(lr_image)  # (B, 32, H, W)
        sub_pixels = self.sub_pixel_convolution(features)  # (B, C r r, H, W)
        sr_image = self.periodic_shuffling(sub_pixels)  # (B, C, r H, r W)
        if self.config.global_residual:
            # The baseline it must beat: MATLAB bicubic (torch's a = -0.75 kernel would start it 0.3 dB higher).
            sr_image = sr_image + resize(lr_image, scale=self.scale, clamp=False)
        return sr_image


@dataclass
class PostUpsamplingConfig(ModelConfig):
    scale: int = 3
    num_features: int = 64  # the width of the head and the body
    num_body_layers: int = 2  # 3 x 3 convolutions + ReLU on the low-resolution grid
    upsampler: str = "pixel_shuffle"  # or "transposed_conv", or "shuffle_conv" (a mix of the two)
    icnr: bool = True  # pixel_shuffle: ICNR init, no checkerboard at the start
    transposed_kernel_size: int | None = None  # transposed_conv: None means 3 x scale

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.upsampler not in ("pixel_shuffle", "transposed_conv", "shuffle_conv"):
            raise ValueError(f"upsampler is 'pixel_shuffle', 'transposed_conv' or 'shuffle_conv', got {self.upsampler!r}")


class PostUpsamplingNet(SRModel):
    """A small post-upsampling network whose upsampler you choose, to compare checkerboard artefacts.

    Head / body / upsampler, the anatomy of most SR networks since EDSR (Lim et al. 2017): head, a
    5 x 5 convolution + ReLU; body, `num_body_layers` 3 x 3 convolutions + ReLU; upsampler, either
    - "pixel_shuffle": a 3 x 3 convolution to C r^2 channels + `nn.PixelShuffle(r)` (as ESPCN),
      ICNR-initialised unless icnr=False;
    - "transposed_conv": `nn.ConvTranspose2d` with stride r and a kernel of 3 r by default: the same
      receptive field and almost the same weights as the sub-pixel convolution. The two layers can
      represent the same functions (Shi et al. 2016, arXiv:1609.07009); a random init paints a
      checkerboard with either (Odena et al. 2016, Distill), and a kernel that is not a multiple of
      r overlaps unevenly, another source of checkerboards;
    - "shuffle_conv": "pixel_shuffle", then a 3 x 3 convolution C -> C on the high-resolution grid,
      started as the identity. Like a transposed convolution it can blend neighbouring blocks (the
      shuffle alone fills each block from one low-resolution position); like ICNR it starts grid-free.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(self, config: PostUpsamplingConfig | None = None, **changes: Any) -> None:
        super().__init__(replace(config or PostUpsamplingConfig(), **changes))
        width, scale, channels = self.config.num_features, self.scale, self.num_channels
        self.head = nn.Sequential(nn.Conv2d(channels, width, kernel_size=5, padding=2), nn.ReLU())
        body_layers: list[nn.Module] = []
        for _ in range(self.config.num_body_layers):
            body_layers += [nn.Conv2d(width, width, kernel_size=3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*body_layers)
        kernel_size = self.config.transposed_kernel_size or 3 * scale
        if self.config.upsampler in ("pixel_shuffle", "shuffle_conv"):
            self.upsampler = nn.Sequential(
                nn.Conv2d(width, channels * scale * scale, kernel_size=3, padding=1), nn.PixelShuffle(scale)
            )
        else:
            padding, output_padding = transposed_conv_padding(kernel_size=kernel_size, scale=scale)
            self.upsampler = nn.ConvTranspose2d(width, channels, kernel_size=kernel_size, stride=scale,
                                                padding=padding, output_padding=output_padding)

        for module in [*self.head, *self.body]:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.config.upsampler in ("pixel_shuffle", "shuffle_conv"):
            convolution = self.upsampler[0]
            if self.config.icnr:
                icnr_(convolution.weight, scale)
            else:
                nn.init.kaiming_normal_(convolution.weight)
            nn.init.zeros_(convolution.bias)  # one bias per sub-pixel would bring the checkerboard back
        else:
            # Each output pixel sums about width (kernel_size / scale)^2 inputs: the He std for that
            # fan-in (kaiming_normal_ would read the fan-in of a transposed weight wrongly).
            nn.init.normal_(self.upsampler.weight, mean=0.0, std=math.sqrt(2.0 / (width * (kernel_size / scale) ** 2)))
            nn.init.zeros_(self.upsampler.bias)
        if self.config.upsampler == "shuffle_conv":
            # Built last, so that with the same seed every other layer starts as in "pixel_shuffle"; and
            # started as the identity, so the whole network does too: a comparison of the two is fair.
            mixing = nn.Conv2d(channels, channels, kernel_size=3, padding=1)  # on the scale H x scale W grid
            nn.init.dirac_(mixing.weight)
            nn.init.zeros_(mixing.bias)
            self.upsampler.append(mixing)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        self.check_input(lr_image)
        features = self.head(lr_image)  # (B, F, H, W)
        features = self.body(features)  # (B, F, H, W)
        return self.upsampler(features)  # (B, C, scale H, scale W)
