"""Interpolation: the classical way to resize an image, and the baseline every SR network must beat.

`resize` changes the size of an image by any factor. Its default, "bicubic", is a port of MATLAB's
`imresize`: Keys' cubic kernel (a = -0.5), widened by 1/scale when shrinking so that it also
low-pass filters (antialiasing). The SR literature makes its low-resolution test images and its
bicubic baselines with exactly this function, so matching it makes our PSNR comparable with the
published tables. The other methods show what the choice changes: "nearest", "bilinear" and
"lanczos" on the same machinery; "torch_bicubic", "torch_bilinear", "torch_area" (PyTorch's
`F.interpolate`: no antialiasing, a = -0.75); "pil_bicubic" (Pillow: antialiased, but 8-bit).
`bicubic_filters` writes the bicubic enlargement by a whole scale as one 5 x 5 filter per output phase
(`symmetric_pad` makes MATLAB's border), for networks that add it to their own output in one convolution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sr_teach.images import check_pixels, quantize

BICUBIC_REACH = 2  # input pixels MATLAB's bicubic reads on each side of the one an enlarged pixel lies in


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's "bicubic"); support [-2, 2]."""
    absx = x.abs()
    absx2, absx3 = absx**2, absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2))


def triangle(x: torch.Tensor) -> torch.Tensor:
    """The linear kernel (bilinear interpolation); support [-1, 1]."""
    return (1 - x.abs()).clamp(min=0)


def box(x: torch.Tensor) -> torch.Tensor:
    """The box kernel (nearest neighbour); support [-0.5, 0.5)."""
    return ((x >= -0.5) & (x < 0.5)).to(x.dtype)


def lanczos3(x: torch.Tensor) -> torch.Tensor:
    """The Lanczos kernel with 3 lobes, sinc(x) sinc(x / 3); support [-3, 3]."""
    return torch.sinc(x) * torch.sinc(x / 3) * (x.abs() < 3)


# name -> (kernel, width of its support). MATLAB's `imresize` accepts the same kernels.
KERNELS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float]] = {
    "nearest": (box, 1.0),
    "bilinear": (triangle, 2.0),
    "bicubic": (cubic, 4.0),
    "lanczos": (lanczos3, 6.0),
}

METHODS = (
    "bicubic", "bilinear", "nearest", "lanczos", "torch_bicubic", "torch_bilinear", "torch_area", "pil_bicubic"
)


# A shrink so strong that one output pixel would average more input pixels than this along an axis
# is refused: its weights alone would fill the memory (scale=1e-9 asks for 4e9 per output pixel).
MAX_KERNEL_TAPS = 1_000_000
BAND_ROWS = 128  # output rows computed by one matrix product; a stripe that starts on a band is exact


@dataclass(frozen=True)
class ResizeWeights:
    """The resize along one axis, stored as MATLAB's weights per output pixel, not as a dense matrix.

    Output pixel i is sum_k weights[i, k] * input[first[i] + k]: a few numbers per output pixel
    (4 for bicubic enlarging), where the (out, in) matrix of `resize_matrix` is almost all zeros.
    """

    first: torch.Tensor  # (out_length,) int64: the first input pixel (0-based) that output pixel i reads
    weights: torch.Tensor  # (out_length, taps) float64: the weights of input pixels first[i], first[i] + 1, ...

    def rows(self, start: int, stop: int) -> tuple[ResizeWeights, slice]:
        """The weights of output pixels start..stop-1, counted from the first input pixel they read,
        and the input pixels they read: the slice to cut from the input."""
        first = self.first[start:stop]
        low, high = int(first.min()), int(first.max()) + self.weights.shape[1]
        return ResizeWeights(first - low, self.weights[start:stop]), slice(low, high)

    def matrix(self, in_length: int) -> torch.Tensor:
        """The dense (out_length, in_length) matrix: each row the weights at their input pixels, zeros elsewhere."""
        columns = self.first[:, None] + torch.arange(self.weights.shape[1])
        return torch.zeros(len(self.first), in_length, dtype=torch.float64).scatter_(1, columns, self.weights)


@functools.lru_cache(maxsize=256)  # training resizes many patches of a few sizes; do not modify the result
def resize_weights(
    in_length: int, out_length: int, scale: float, kernel: str = "bicubic", antialiasing: bool = True
) -> ResizeWeights:
    """MATLAB's weights for resizing a signal of in_length pixels to out_length (see `resize_matrix`).

    Output pixel x (1-based) sits at u = x / scale + 0.5 (1 - 1 / scale) in input coordinates. Its
    value is a weighted sum of the input pixels within the kernel's reach, the weights normalised to
    sum to 1. Pixels beyond the border are mirrored (MATLAB's "symmetric" padding). When shrinking
    with antialiasing, the kernel is widened by 1 / scale: a low-pass filter against aliasing.
    """
    function, width = KERNELS[kernel]
    if scale < 1 and antialiasing and kernel != "nearest":
        weight_function = lambda x: scale * function(scale * x)
        width = width / scale
    else:
        weight_function = function
    taps = math.ceil(width) + 2
    if taps > MAX_KERNEL_TAPS:
        raise ValueError(f"scale {scale:g} shrinks too much: each output pixel would average {taps:,} input pixels "
                         f"along an axis (at most {MAX_KERNEL_TAPS:,}); give the output size instead (size=)")
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based
    weights = weight_function(u[:, None] - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror the indices that fall outside [1, in_length]: ... 2 1 | 1 2 ... n | n n-1 ...
    period = 2 * in_length
    zero_based = (indices.long() - 1) % period
    zero_based = torch.where(zero_based >= in_length, period - 1 - zero_based, zero_based)
    # Mirrored taps land inside the kernel's span, so a window of min(taps, in_length) pixels holds them all.
    window = min(taps, in_length)
    first = zero_based.min(dim=1).values.clamp(max=in_length - window)
    merged = torch.zeros(out_length, window, dtype=torch.float64)
    merged.scatter_add_(1, zero_based - first[:, None], weights)  # a pixel reached twice adds its weights
    return ResizeWeights(first, merged)


def resize_matrix(
    in_length: int, out_length: int, scale: float, kernel: str = "bicubic", antialiasing: bool = True
) -> torch.Tensor:
    """The (out_length, in_length) matrix M such that resized = M @ signal, as MATLAB computes it.

    Each row holds the weights of `resize_weights` at their input pixels, zeros elsewhere: the
    picture for a lesson (resize itself never builds it, it would be 0.8 GB for a 24 MP photo).
    """
    return resize_weights(in_length, out_length, scale, kernel, antialiasing).matrix(in_length)


@functools.lru_cache(maxsize=16)  # a few scales and channel counts; do not modify the result
def bicubic_filters(scale: int, channels: int = 1) -> torch.Tensor:
    """(channels scale^2, 1, 5, 5) float64: MATLAB's bicubic enlargement by a whole scale, as one 5 x 5 filter
    per phase. Output pixel (scale i + p, scale j + q) reads input pixels i-2..i+2, j-2..j+2 with the weights
    of phase (p, q): the outer product of `resize_weights`'s rows p and q (taken inside a signal,
    away from its mirrored borders). Channel c's filters are its scale^2 consecutive ones, as pixel_shuffle wants.
    """
    if scale < 1 or scale != int(scale):
        raise ValueError(f"bicubic_filters needs a whole scale of at least 1, got {scale}")
    length = 2 * BICUBIC_REACH + 4  # room for one pixel whose taps all lie inside
    weights, centre = resize_weights(length, length * scale, float(scale)), BICUBIC_REACH + 2
    phases = torch.zeros(scale, 2 * BICUBIC_REACH + 1, dtype=torch.float64)  # (phase, offset -2..2)
    for phase in range(scale):
        row = centre * scale + phase
        offsets = weights.first[row] + torch.arange(weights.weights.shape[1]) - centre
        used = weights.weights[row] != 0
        assert offsets[used].abs().max() <= BICUBIC_REACH, "bicubic reaches 2 pixels when enlarging"
        phases[phase].index_add_(0, offsets[used] + BICUBIC_REACH, weights.weights[row][used])
    filters = phases[:, None, :, None] * phases[None, :, None, :]  # (p, q, 5, 5): rows times columns
    return filters.reshape(scale * scale, 1, *filters.shape[-2:]).repeat(channels, 1, 1, 1)


def symmetric_pad(images: torch.Tensor, width: int = BICUBIC_REACH) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H + 2 width, W + 2 width), mirrored with the edge repeated, as MATLAB's
    imresize pads (... 2 1 | 1 2 ... n | n n-1 ...); a side of one pixel repeats that pixel."""
    for axis in (-2, -1):
        if images.shape[axis] == 1:
            images = torch.cat([images] * (2 * width + 1), dim=axis)
            continue
        if images.shape[axis] < width:
            raise ValueError(f"symmetric_pad needs sides of at least {width} pixels, got shape {tuple(images.shape)}")
        before = images.narrow(axis, 0, width).flip(axis)
        after = images.narrow(axis, images.shape[axis] - width, width).flip(axis)
        images = torch.cat([before, images, after], dim=axis)
    return images


def output_size(in_size: tuple[int, int], scale: float | None, size: tuple[int, int] | None) -> tuple[int, int]:
    """The (H, W) a resize produces: `size` if given, else ceil(scale * input size), as MATLAB; an
    ImageError if that is more pixels than `images.max_pixels()` allows."""
    what = f"resizing {in_size[0]} x {in_size[1]} by {scale:g}" if size is None else "the requested size"
    if size is None:
        if scale is None or not 0 < scale < math.inf:
            raise ValueError(f"give a positive, finite scale or an output size, not scale={scale}")
        check_pixels(in_size[0] * scale, in_size[1] * scale, what)  # before rounding: no int overflows
        size = (math.ceil(in_size[0] * scale), math.ceil(in_size[1] * scale))
    if min(size) < 1:
        raise ValueError(f"resizing {in_size[0]}x{in_size[1]} by {scale} gives an empty image; the image is too small")
    check_pixels(size[0], size[1], what)
    return int(size[0]), int(size[1])


def resize(
    image: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    method: str = "bicubic",
    clamp: bool = True,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Resize a (C, H, W) or (B, C, H, W) image in [0, 1] by `scale` (or to `size`) with `method`.

    scale > 1 enlarges (x2, x3, x4, x8 or any non-integer factor), scale < 1 shrinks; the output
    is ceil(scale * input size). The MATLAB kernels (KERNELS) apply `resize_weights` along rows and
    columns in float64, as MATLAB's `imresize(image, scale)`; clamp=False keeps the small overshoot
    past [0, 1] that MATLAB has before it converts back to uint8. rows=(start, stop) makes only those
    output rows, from the input rows they read (a stripe of a big image; MATLAB kernels only): the
    same numbers as in the whole result when start is a multiple of BAND_ROWS.

    >>> resize(torch.rand(3, 10, 10), scale=2.5).shape
    torch.Size([3, 25, 25])
    """
    if method not in METHODS:
        raise ValueError(f"unknown resize method {method!r}; choose one of {', '.join(METHODS)}")
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    (in_height, in_width), (out_height, out_width) = image.shape[-2:], output_size(image.shape[-2:], scale, size)
    start, stop = rows or (0, out_height)
    if not 0 <= start < stop <= out_height or (rows is not None and method not in KERNELS):
        raise ValueError(f"rows={rows} must be (start, stop) with 0 <= start < stop <= {out_height}, "
                         f"for one of the methods {', '.join(KERNELS)}")
    if method in KERNELS:
        scale_h, scale_w = (scale, scale) if size is None else (out_height / in_height, out_width / in_width)
        weights_h, needed_rows = resize_weights(in_height, out_height, scale_h, method).rows(start, stop)
        weights_w = resize_weights(in_width, out_width, scale_w, method)
        result = image[..., needed_rows, :].to(torch.float64)
        # MATLAB resizes along the dimension that shrinks most first (rows on a tie): a smaller middle image.
        passes = [(weights_h, -2), (weights_w, -1)]  # rows, then columns
        for weights, axis in passes if scale_h <= scale_w else reversed(passes):
            result = _resize_along(result, weights, axis)
        result = result.to(image.dtype)
    elif method == "pil_bicubic":
        result = _pil_resize(image, (out_height, out_width))
    else:
        batch = image if image.dim() == 4 else image[None]
        mode = method.removeprefix("torch_")
        options = {} if mode == "area" else {"align_corners": False}
        result = F.interpolate(batch, size=(out_height, out_width), mode=mode, **options)
        result = result if image.dim() == 4 else result[0]
    return result.clamp(0, 1) if clamp else result


def _resize_along(image: torch.Tensor, weights: ResizeWeights, axis: int) -> torch.Tensor:
    """`weights` applied along `axis` (-2 rows, -1 columns), a band of BAND_ROWS output pixels at a time.

    A bicubic output pixel mixes 4 input pixels per axis when enlarging, so a band of output pixels
    reads only the few input pixels its weights reach: one small dense product per band (the band's
    rows of `resize_matrix`, cut to the columns that hold a weight), the same sums as the whole one.
    """
    pieces = []
    for start in range(0, len(weights.first), BAND_ROWS):
        band, inputs = weights.rows(start, start + BAND_ROWS)
        matrix = band.matrix(inputs.stop - inputs.start)
        used = matrix.ne(0).any(dim=0).nonzero()
        first, last = inputs.start + int(used[0]), inputs.start + int(used[-1]) + 1
        matrix = matrix[:, int(used[0]) : int(used[-1]) + 1].to(image.device)
        if axis == -2:
            pieces.append(matrix @ image[..., first:last, :])  # (b, h_in) @ (..., h_in, w)
        else:
            pieces.append(image[..., first:last] @ matrix.T)  # (..., h, w_in) @ (w_in, b)
    return torch.cat(pieces, dim=axis)


def _pil_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's bicubic resize, one 8-bit channel at a time (Pillow has no float RGB mode)."""
    flat = quantize(image).reshape(-1, *image.shape[-2:])
    channels = []
    for channel in flat:
        pil_channel = Image.fromarray((channel * 255).round().to(torch.uint8).numpy())
        resized = pil_channel.resize((size[1], size[0]), resample=Image.Resampling.BICUBIC)
        channels.append(torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0))
    return torch.stack(channels).reshape(*image.shape[:-2], *size)
