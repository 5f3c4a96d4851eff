"""Super-resolution networks, each written to read like its paper.

Two families, told apart by the class attribute `upsampling`:

- "pre" (SRCNN, VDSR): the low-resolution image is first interpolated (bicubic) to the output
  size, and the network only sharpens it. Input and output have the same size, so the same
  weights run at any scale: `model.scales` is None. (SRCNN's paper trains one model per scale;
  VDSR's trains one model on several scales at once.) They still accept `scale=` so that
  `build_model(name, scale=..., num_channels=...)` works the same for every model and a
  checkpoint remembers the scale it was trained for; the layers do not use it.
- "post" (FSRCNN, ESPCN, PostUpsamplingNet): the network takes the small image itself and
  learns the upsampling in its last layer, so it is cheaper (every convolution but the last runs
  on H x W, not on scale*H x scale*W) but serves exactly one scale: `model.scales == (scale,)`.

Every model has `num_channels=1` by default (the papers super-resolve the luma Y channel and
upsample the chroma bicubically; use 3 for RGB), a `config()` returning its constructor keyword
arguments (a checkpoint is `state_dict` + `config()`), and checks its input in `forward`.
Outputs are not clamped to [0, 1]: training needs the raw values; clamp when you evaluate.
"""

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from sr_teach.interpolation import resize


def _check_image_batch(image: torch.Tensor, num_channels: int, model_name: str) -> None:
    """The asserts every forward starts with, worded for someone meeting the error for the first time."""
    assert isinstance(image, torch.Tensor), f"{model_name} expects a torch.Tensor, got {type(image).__name__}"
    assert image.ndim == 4, (
        f"{model_name} expects a batch of images shaped (B, C, H, W), got shape {tuple(image.shape)}. "
        "For a single (C, H, W) image, add a batch dimension: image.unsqueeze(0)."
    )
    assert image.shape[1] == num_channels, (
        f"{model_name} was built with num_channels={num_channels}, but the input has {image.shape[1]} "
        f"channels (shape {tuple(image.shape)}). Build it with num_channels=3 for RGB images, or "
        "num_channels=1 for the Y channel or a gray image."
    )
    assert image.is_floating_point(), (
        f"{model_name} expects float pixels in [0, 1], got dtype {image.dtype}. "
        "Convert 8-bit images with image.float() / 255."
    )


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
    assert kernel_size >= 1 and scale >= 1, f"need kernel_size >= 1 and scale >= 1, got {kernel_size}, {scale}"
    assert scale > 1 or kernel_size % 2 == 1, (
        "with stride 1 only an odd kernel keeps the size (output_padding must be 0), "
        f"got kernel_size={kernel_size}"
    )
    if kernel_size >= scale:
        padding = math.ceil((kernel_size - scale) / 2)
        output_padding = 2 * padding - (kernel_size - scale)  # 0 or 1
    else:  # a kernel smaller than the stride leaves gaps; output_padding fills the last one
        padding = 0
        output_padding = scale - kernel_size
    return padding, output_padding


def icnr_(
    weight: torch.Tensor, scale: int, init: Callable[[torch.Tensor], Any] = nn.init.kaiming_normal_
) -> torch.Tensor:
    """Initialise, in place, the weight of the convolution before `nn.PixelShuffle(scale)` with ICNR.

    Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution" (arXiv:1707.02937).
    A randomly initialised sub-pixel convolution gives each of the scale x scale positions inside
    an output block its own random kernel, so the untrained network already paints a checkerboard
    that training must then remove. ICNR ("initialised to convolution NN resize") draws one kernel
    per output channel with `init` and copies it to all scale**2 channels that PixelShuffle puts
    into that channel's blocks: at initialisation, the layer is a convolution followed by
    nearest-neighbour upsampling, and every scale x scale block of its output is constant.

    weight: shape (out_channels * scale**2, in_channels, kH, kW). Zero (or repeat) the bias too,
    or the bias alone brings the checkerboard back.
    """
    assert weight.ndim == 4, f"icnr_ expects a Conv2d weight (out, in, kH, kW), got shape {tuple(weight.shape)}"
    out_channels, in_channels, kernel_height, kernel_width = weight.shape
    assert out_channels % (scale * scale) == 0, (
        f"a convolution feeding PixelShuffle({scale}) needs a multiple of {scale * scale} output channels, "
        f"got {out_channels}"
    )
    sub_kernel = torch.empty(
        out_channels // (scale * scale), in_channels, kernel_height, kernel_width,
        dtype=weight.dtype, device=weight.device,
    )
    init(sub_kernel)
    # PixelShuffle sends channel c * scale**2 + k to output channel c: each kernel repeats scale**2 times in a row.
    with torch.no_grad():
        weight.copy_(sub_kernel.repeat_interleave(scale * scale, dim=0))
    return weight


class SRCNN(nn.Module):
    """SRCNN: three convolutions on a bicubically upscaled image.

    Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016
    (arXiv:1501.00092; first version ECCV 2014). The three layers are the three steps of
    sparse-coding SR, written as convolutions: patch extraction and representation (f1 x f1, n1
    filters), non-linear mapping (f2 x f2, n2 filters), reconstruction (f3 x f3, one filter per
    channel). The paper's base setting is 9-1-5; 9-5-5 (the default here) is its better one.

    Padding: the paper pads nothing, so its output is (f1 + f2 + f3 - 3) pixels smaller, and
    scores only those valid pixels. We pad each layer by k // 2 so the output has the input's
    size, and pad by replicating the edge pixels ("replicate") rather than with zeros: images are
    in [0, 1], so zero padding shows a 9 x 9 filter a black frame around every border patch, and
    the border pixels of an untrained (or briefly trained) network come out dark. Replicating the
    edge is the simplest guess of what lies beyond it. Pass padding_mode="zeros" to compare.

    Initialisation: the paper draws every weight from N(0, 0.001^2) (init="paper") and trains
    with SGD for some 10^8 back-propagations, with a 10x smaller learning rate on the last layer. Such tiny
    weights make the first thousands of steps almost useless, so the default is He et al. 2015
    init (init="he"), which keeps the signal's variance steady through each ReLU layer.

    residual=True (not in the paper; VDSR's "residual learning") adds the input to the output, so
    the three layers learn only the detail bicubic misses. It adds no parameters and the layers
    are unchanged; it makes training converge in far fewer steps.
    """

    upsampling = "pre"  # input: the low-resolution image already interpolated to the output size

    def __init__(
        self,
        scale: int | None = None,
        num_channels: int = 1,
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
        num_features: tuple[int, int] = (64, 32),
        padding_mode: Literal["replicate", "zeros"] = "replicate",
        init: Literal["he", "paper"] = "he",
        residual: bool = False,
    ) -> None:
        super().__init__()
        kernel_sizes = tuple(kernel_sizes)
        num_features = tuple(num_features)
        assert len(kernel_sizes) == 3, f"SRCNN has three layers: three kernel sizes (f1, f2, f3), got {kernel_sizes}"
        assert all(k % 2 == 1 for k in kernel_sizes), (
            f"kernel sizes must be odd so that padding k // 2 keeps the image size, got {kernel_sizes}"
        )
        assert len(num_features) == 2, f"num_features is (n1, n2), the first two layers' widths, got {num_features}"
        assert padding_mode in ("replicate", "zeros"), f"padding_mode: 'replicate' or 'zeros', got {padding_mode!r}"
        assert init in ("he", "paper"), f"init is 'he' or 'paper', got {init!r}"
        self.scale = scale
        self.num_channels = num_channels
        self.kernel_sizes = kernel_sizes
        self.num_features = num_features
        self.padding_mode = padding_mode
        self.init = init
        self.residual = residual

        f1, f2, f3 = kernel_sizes
        n1, n2 = num_features
        self.patch_extraction = nn.Conv2d(
            num_channels, n1, kernel_size=f1, padding=f1 // 2, padding_mode=padding_mode
        )
        self.nonlinear_mapping = nn.Conv2d(n1, n2, kernel_size=f2, padding=f2 // 2, padding_mode=padding_mode)
        self.reconstruction = nn.Conv2d(
            n2, num_channels, kernel_size=f3, padding=f3 // 2, padding_mode=padding_mode
        )
        self.relu = nn.ReLU()
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in (self.patch_extraction, self.nonlinear_mapping, self.reconstruction):
            if self.init == "paper" or (self.residual and layer is self.reconstruction):
                nn.init.normal_(layer.weight, mean=0.0, std=0.001)  # residual: start as the input itself
            elif layer is self.reconstruction:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")  # no ReLU after the last layer
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    @property
    def scales(self) -> tuple[int, ...] | None:
        """None: any scale, because the input is already at the output size."""
        return None

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, so a checkpoint can rebuild this model."""
        return {
            "scale": self.scale,
            "num_channels": self.num_channels,
            "kernel_sizes": self.kernel_sizes,
            "num_features": self.num_features,
            "padding_mode": self.padding_mode,
            "init": self.init,
            "residual": self.residual,
        }

    def forward(self, interpolated_image: torch.Tensor) -> torch.Tensor:
        _check_image_batch(interpolated_image, self.num_channels, "SRCNN")
        features = self.relu(self.patch_extraction(interpolated_image))  # (B, n1, H, W)
        features = self.relu(self.nonlinear_mapping(features))  # (B, n2, H, W)
        output = self.reconstruction(features)  # (B, C, H, W)
        return interpolated_image + output if self.residual else output


class VDSR(nn.Module):
    """VDSR: a 20-layer network that learns the residual between the upscaled image and the truth.

    Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
    CVPR 2016 (arXiv:1511.04587). `depth` layers of 3 x 3 convolutions, 64 filters each, ReLU
    after all but the last; zero padding keeps the size (the paper shows this works well even near
    the borders). Output = input + residual ("residual learning"): the interpolated image is
    already right at low frequencies, so the network only has to predict the missing detail,
    which is small and near zero; this is what lets such a deep plain network train quickly.
    Trained on x2, x3 and x4 together, one model serves every scale (`scales` is None).
    The paper trains with SGD at learning rate 0.1 and "adjustable gradient clipping"; Adam at
    about 1e-4 usually trains it without clipping. He et al. 2015 initialisation, as in the paper.

    Two options, not in the paper, make it affordable on a CPU; the defaults are the paper's model.
    - pixel_unshuffle=f folds each f x f block of the interpolated image into f^2 channels
      (`F.pixel_unshuffle`, lossless), runs the convolutions on that f times smaller grid, and
      unfolds the f^2 output channels back (`F.pixel_shuffle`, ESPCN's sub-pixel step). Each layer
      then costs f^2 times less and sees f times farther; the model still takes the interpolated
      image and serves every scale. FFDNet (Zhang et al. 2018) folds its input the same way.
    - reconstruction_std: draw the last layer's weights from N(0, std^2) (e.g. 1e-3) instead of He
      init, so the untrained network returns its input, the bicubic image, and learns from there.
    """

    upsampling = "pre"  # input: the low-resolution image already interpolated to the output size

    def __init__(
        self,
        scale: int | None = None,
        num_channels: int = 1,
        depth: int = 20,
        num_features: int = 64,
        pixel_unshuffle: int = 1,
        reconstruction_std: float | None = None,
    ) -> None:
        super().__init__()
        assert depth >= 2, f"VDSR needs an input and a reconstruction layer at least (depth >= 2), got {depth}"
        assert pixel_unshuffle >= 1, f"pixel_unshuffle is a folding factor of 1 or more, got {pixel_unshuffle}"
        self.scale = scale
        self.num_channels = num_channels
        self.depth = depth
        self.num_features = num_features
        self.pixel_unshuffle = pixel_unshuffle
        self.reconstruction_std = reconstruction_std

        folded_channels = num_channels * pixel_unshuffle**2  # channels of the folded image
        self.input_layer = nn.Conv2d(folded_channels, num_features, kernel_size=3, padding=1)
        hidden_layers: list[nn.Module] = []
        for _ in range(depth - 2):
            hidden_layers += [nn.Conv2d(num_features, num_features, kernel_size=3, padding=1), nn.ReLU()]
        self.hidden_layers = nn.Sequential(*hidden_layers)
        self.reconstruction = nn.Conv2d(num_features, folded_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.reconstruction_std is not None:
            nn.init.normal_(self.reconstruction.weight, mean=0.0, std=self.reconstruction_std)

    @property
    def scales(self) -> tuple[int, ...] | None:
        """None: any scale, because the input is already at the output size."""
        return None

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, so a checkpoint can rebuild this model."""
        return {
            "scale": self.scale,
            "num_channels": self.num_channels,
            "depth": self.depth,
            "num_features": self.num_features,
            "pixel_unshuffle": self.pixel_unshuffle,
            "reconstruction_std": self.reconstruction_std,
        }

    def forward(self, interpolated_image: torch.Tensor) -> torch.Tensor:
        _check_image_batch(interpolated_image, self.num_channels, "VDSR")
        f = self.pixel_unshuffle
        height, width = interpolated_image.shape[-2:]
        # Folding needs sides that f divides: extend the edges, and crop the result back.
        padded = F.pad(interpolated_image, (0, -width % f, 0, -height % f), mode="replicate")
        folded = F.pixel_unshuffle(padded, f)  # (B, C f^2, H / f, W / f)
        features = self.relu(self.input_layer(folded))  # (B, F, H / f, W / f)
        features = self.hidden_layers(features)  # (B, F, H / f, W / f)
        residual = F.pixel_shuffle(self.reconstruction(features), f)  # (B, C, H, W), padded
        return interpolated_image + residual[..., :height, :width]  # (B, C, H, W)


class FSRCNN(nn.Module):
    """FSRCNN: SRCNN made fast by working on the small image and upsampling at the end.

    Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
    ECCV 2016 (arXiv:1608.00367). Written FSRCNN(d, s, m) in the paper, with five parts:
    feature extraction (5 x 5, d filters), shrinking (1 x 1, d -> s), mapping (m layers of
    3 x 3, s filters), expanding (1 x 1, s -> d), each followed by PReLU, and deconvolution
    (9 x 9 transposed convolution with stride = scale). Only the deconvolution depends on the
    scale, which is how the paper switches scales by fine-tuning that one layer.
    Here d = num_features, s = num_shrunk_features, m = num_mapping_layers; FSRCNN(56, 12, 4)
    is the paper's main model and FSRCNN(32, 5, 1) its FSRCNN-s.

    Initialisation as in the paper: He et al. 2015 for the convolutions (in the variant for
    PReLU), N(0, 0.001^2) for the deconvolution.

    global_residual=True (not in the paper) adds the MATLAB-bicubic enlargement of the input, as
    ESPCN's option does: no parameters, and the network starts as good as bicubic.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(
        self,
        scale: int = 3,
        num_channels: int = 1,
        num_features: int = 56,
        num_shrunk_features: int = 12,
        num_mapping_layers: int = 4,
        global_residual: bool = False,
    ) -> None:
        super().__init__()
        assert isinstance(scale, int) and scale >= 1, f"scale must be a positive integer, got {scale!r}"
        self.scale = scale
        self.num_channels = num_channels
        self.num_features = num_features
        self.num_shrunk_features = num_shrunk_features
        self.num_mapping_layers = num_mapping_layers
        self.global_residual = global_residual

        d, s = num_features, num_shrunk_features
        self.feature_extraction = nn.Sequential(nn.Conv2d(num_channels, d, kernel_size=5, padding=2), nn.PReLU(d))
        self.shrinking = nn.Sequential(nn.Conv2d(d, s, kernel_size=1), nn.PReLU(s))
        mapping_layers: list[nn.Module] = []
        for _ in range(num_mapping_layers):
            mapping_layers += [nn.Conv2d(s, s, kernel_size=3, padding=1), nn.PReLU(s)]
        self.mapping = nn.Sequential(*mapping_layers)
        self.expanding = nn.Sequential(nn.Conv2d(s, d, kernel_size=1), nn.PReLU(d))
        padding, output_padding = transposed_conv_padding(kernel_size=9, scale=scale)
        self.deconvolution = nn.ConvTranspose2d(
            d, num_channels, kernel_size=9, stride=scale, padding=padding, output_padding=output_padding
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He et al.'s init for a PReLU whose negative slope starts at PyTorch's 0.25
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.deconvolution.weight, mean=0.0, std=0.001)
        nn.init.zeros_(self.deconvolution.bias)

    @property
    def scales(self) -> tuple[int, ...]:
        """The one scale this network upsamples by."""
        return (self.scale,)

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, so a checkpoint can rebuild this model."""
        return {
            "scale": self.scale,
            "num_channels": self.num_channels,
            "num_features": self.num_features,
            "num_shrunk_features": self.num_shrunk_features,
            "num_mapping_layers": self.num_mapping_layers,
            "global_residual": self.global_residual,
        }

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        _check_image_batch(lr_image, self.num_channels, "FSRCNN")
        features = self.feature_extraction(lr_image)  # (B, d, H, W)
        features = self.shrinking(features)  # (B, s, H, W)
        features = self.mapping(features)  # (B, s, H, W)
        features = self.expanding(features)  # (B, d, H, W)
        sr_image = self.deconvolution(features)  # (B, C, scale*H, scale*W)
        if self.global_residual:
            sr_image = sr_image + resize(lr_image, scale=self.scale, clamp=False)  # as ESPCN's option
        return sr_image


class ESPCN(nn.Module):
    """ESPCN: convolutions on the small image, then an efficient sub-pixel convolution layer.

    Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
    Convolutional Neural Network", CVPR 2016 (arXiv:1609.05158). Two feature-map extraction
    layers (5 x 5, 64 filters; 3 x 3, 32 filters) and a last 3 x 3 convolution with C * r^2
    filters, whose channels the periodic shuffling operator PS (`nn.PixelShuffle(r)`) rearranges
    into an image r times larger: channel c * r^2 + i * r + j becomes pixel (i, j) of each r x r
    block of output channel c. The paper found tanh better than ReLU here (activation="relu" to
    compare). Glorot init for the tanh layers (He for ReLU), since the paper does not give one.

    global_residual=True (not in the paper) adds the MATLAB-bicubic enlargement of the input to the output,
    VDSR's residual learning after the upsampling: the network starts as good as bicubic and only
    learns the missing detail, so it beats bicubic in seconds instead of minutes. The bicubic costs
    16 multiply-adds per output pixel, against about 2,700 for the convolutions at x3.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(
        self,
        scale: int = 3,
        num_channels: int = 1,
        activation: Literal["tanh", "relu"] = "tanh",
        global_residual: bool = False,
    ) -> None:
        super().__init__()
        assert isinstance(scale, int) and scale >= 1, f"scale must be a positive integer, got {scale!r}"
        assert activation in ("tanh", "relu"), f"activation is 'tanh' (the paper's) or 'relu', got {activation!r}"
        self.scale = scale
        self.num_channels = num_channels
        self.activation = activation
        self.global_residual = global_residual

        make_activation = nn.Tanh if activation == "tanh" else nn.ReLU
        self.feature_extraction = nn.Sequential(
            nn.Conv2d(num_channels, 64, kernel_size=5, padding=2),
            make_activation(),
            nn.Conv2d(64, 32, kernel_size=3, padding=1),
            make_activation(),
        )
        self.sub_pixel_convolution = nn.Conv2d(32, num_channels * scale * scale, kernel_size=3, padding=1)
        self.periodic_shuffling = nn.PixelShuffle(scale)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.feature_extraction:
            if isinstance(module, nn.Conv2d):
                if self.activation == "tanh":
                    nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain("tanh"))
                else:
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.global_residual:
            # Start as plain bicubic: a small residual, not the random image Glorot init would add.
            nn.init.normal_(self.sub_pixel_convolution.weight, std=1e-3)
        else:
            nn.init.xavier_uniform_(self.sub_pixel_convolution.weight)
        nn.init.zeros_(self.sub_pixel_convolution.bias)

    @property
    def scales(self) -> tuple[int, ...]:
        """The one scale this network upsamples by."""
        return (self.scale,)

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, so a checkpoint can rebuild this model."""
        return {
            "scale": self.scale, "num_channels": self.num_channels, "activation": self.activation,
            "global_residual": self.global_residual,
        }

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        _check_image_batch(lr_image, self.num_channels, "ESPCN")
        features = self.feature_extraction(lr_image)  # (B, 32, H, W)
        sub_pixels = self.sub_pixel_convolution(features)  # (B, C*r*r, H, W)
        sr_image = self.periodic_shuffling(sub_pixels)  # (B, C, r*H, r*W)
        if self.global_residual:
            # The baseline it must beat: MATLAB bicubic (torch's a = -0.75 kernel would start it 0.3 dB higher).
            sr_image = sr_image + resize(lr_image, scale=self.scale, clamp=False)
        return sr_image


class PostUpsamplingNet(nn.Module):
    """A small post-upsampling network whose upsampler you choose, to compare checkerboard artefacts.

    Head / body / upsampler, the anatomy of most SR networks since EDSR (Lim et al. 2017):
    head: 5 x 5 convolution + ReLU; body: `num_body_layers` 3 x 3 convolutions + ReLU, all on the
    low-resolution grid; upsampler, one of
    - "pixel_shuffle": a 3 x 3 convolution to C * r^2 channels + `nn.PixelShuffle(r)` (as ESPCN),
      initialised with ICNR (Aitken et al. 2017) unless icnr=False;
    - "transposed_conv": `nn.ConvTranspose2d` with stride r and kernel `transposed_kernel_size`,
      by default 3 * r: the same receptive field and almost the same number of weights as the
      3 x 3 sub-pixel convolution. The two layers can represent the same functions (Shi et al.
      2016, "Is the deconvolution layer the same as a convolutional layer?", arXiv:1609.07009);
      a random init paints a checkerboard with either (Odena et al. 2016, "Deconvolution and
      Checkerboard Artifacts", Distill), and ICNR removes it for the sub-pixel convolution.
      `icnr` is ignored here. A kernel size that is not a multiple of r also overlaps unevenly,
      another source of checkerboards.
    """

    upsampling = "post"  # input: the low-resolution image itself

    def __init__(
        self,
        scale: int = 3,
        num_channels: int = 1,
        num_features: int = 64,
        num_body_layers: int = 2,
        upsampler: Literal["pixel_shuffle", "transposed_conv"] = "pixel_shuffle",
        icnr: bool = True,
        transposed_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        assert isinstance(scale, int) and scale >= 1, f"scale must be a positive integer, got {scale!r}"
        assert upsampler in ("pixel_shuffle", "transposed_conv"), (
            f"upsampler is 'pixel_shuffle' or 'transposed_conv', got {upsampler!r}"
        )
        self.scale = scale
        self.num_channels = num_channels
        self.num_features = num_features
        self.num_body_layers = num_body_layers
        self.upsampler_name = upsampler
        self.icnr = icnr
        self.transposed_kernel_size = 3 * scale if transposed_kernel_size is None else transposed_kernel_size

        self.head = nn.Sequential(nn.Conv2d(num_channels, num_features, kernel_size=5, padding=2), nn.ReLU())
        body_layers: list[nn.Module] = []
        for _ in range(num_body_layers):
            body_layers += [nn.Conv2d(num_features, num_features, kernel_size=3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*body_layers)
        if upsampler == "pixel_shuffle":
            self.upsampler = nn.Sequential(
                nn.Conv2d(num_features, num_channels * scale * scale, kernel_size=3, padding=1),
                nn.PixelShuffle(scale),
            )
        else:
            kernel_size = self.transposed_kernel_size
            padding, output_padding = transposed_conv_padding(kernel_size=kernel_size, scale=scale)
            self.upsampler = nn.ConvTranspose2d(
                num_features, num_channels, kernel_size=kernel_size, stride=scale,
                padding=padding, output_padding=output_padding,
            )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in [*self.head, *self.body]:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        if self.upsampler_name == "pixel_shuffle":
            convolution = self.upsampler[0]
            if self.icnr:
                icnr_(convolution.weight, self.scale)
            else:
                nn.init.kaiming_normal_(convolution.weight)
            nn.init.zeros_(convolution.bias)  # one bias per sub-pixel would bring the checkerboard back
        else:
            # Each output pixel sums about num_features * (kernel_size / scale)^2 weighted inputs;
            # the He std for that fan-in matches the sub-pixel convolution's (kaiming_normal_ would
            # compute the fan-in of a ConvTranspose2d weight from the wrong dimensions).
            fan_in = self.num_features * (self.transposed_kernel_size / self.scale) ** 2
            nn.init.normal_(self.upsampler.weight, mean=0.0, std=math.sqrt(2.0 / fan_in))
            nn.init.zeros_(self.upsampler.bias)

    @property
    def scales(self) -> tuple[int, ...]:
        """The one scale this network upsamples by."""
        return (self.scale,)

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments, so a checkpoint can rebuild this model."""
        return {
            "scale": self.scale,
            "num_channels": self.num_channels,
            "num_features": self.num_features,
            "num_body_layers": self.num_body_layers,
            "upsampler": self.upsampler_name,
            "icnr": self.icnr,
            "transposed_kernel_size": self.transposed_kernel_size,
        }

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        _check_image_batch(lr_image, self.num_channels, "PostUpsamplingNet")
        features = self.head(lr_image)  # (B, F, H, W)
        features = self.body(features)  # (B, F, H, W)
        return self.upsampler(features)  # (B, C, scale*H, scale*W)


# The one place names map to classes, for dropdowns, the command line and checkpoints.
MODELS: dict[str, type[nn.Module]] = {
    "srcnn": SRCNN,
    "vdsr": VDSR,
    "fsrcnn": FSRCNN,
    "espcn": ESPCN,
    "post": PostUpsamplingNet,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by its name in MODELS: `build_model("fsrcnn", scale=2)`.

    To rebuild from a checkpoint: `build_model(name, **model.config())`.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the known models are: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    """The number of learnable numbers in the model (weights, biases, PReLU slopes)."""
    return sum(parameter.numel() for parameter in model.parameters())
