"""Inference: a trained network on a whole image of any kind and size.

    upscale(model, image, scale=3)   # a PIL image, a NumPy array or a tensor in; the same kind out

For an image that fits in memory the path is four public steps, each callable alone:
`images.to_tensor`, then `super_resolve` (the colours a model works on, MATLAB-bicubic enlargement
first for a pre-upsampling model, `run_model`, the colours back), then `images.to_image`. Models
trained like the papers see only the luma Y: Cb and Cr are enlarged by bicubic. Only for images
too big to run whole, `run_model_tiled` cuts the model's input into tiles with enough context
around each (the model's `receptive_field_radius`) that the stitched result equals the untiled one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from PIL import Image
from torch import nn

from sr_teach.images import rgb_to_gray, rgb_to_ycbcr, to_image, to_tensor, ycbcr_to_rgb
from sr_teach.interpolation import resize

# With tile_size=None, images whose output has at most this many pixels run whole, bigger ones in
# tiles of about this many output pixels: a 1080p frame (2.07 MP) runs whole, while a 64-channel
# float32 feature map of one tile stays near 640 MB.
AUTO_TILE_OUTPUT_PIXELS = 2_500_000
MIN_AUTO_TILE_SIZE = 64  # automatic tiles are never smaller, so their margins do not cost more than they do

# Fragments of PyTorch's errors for an input smaller than a layer can take.
_TOO_SMALL_ERRORS = (
    "Kernel size can't be greater than actual input size",
    "Padding size should be less than",
    "Output size is too small",
    "input image is smaller than kernel",
)


def upscale(
    model: nn.Module,
    image: Image.Image | np.ndarray | torch.Tensor,
    scale: float | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
) -> Image.Image | np.ndarray | torch.Tensor:
    """Super-resolve `image` with `model` and return the same kind of image, `scale` times larger.

    image: a PIL image, a NumPy array or a tensor (see `images.to_tensor`); the result is clamped
        to [0, 1]. scale: a post model enlarges by its own `model.scale`, a pre model by any scale
        >= 1 (even 2.5), which it must be told unless it remembers the one it was trained for.
    tile_size, tile_overlap, batch_size: see `run_model_tiled`; None runs images whole while the
        output has at most AUTO_TILE_OUTPUT_PIXELS pixels. device: where to run (the model moves).

    >>> from sr_teach.models import ESPCN
    >>> upscale(ESPCN(scale=3), np.zeros((10, 20, 3), dtype=np.uint8)).shape
    (30, 60, 3)
    """
    scale = resolve_scale(model, scale)
    images, kind = to_tensor(image)  # (B, C, H, W) in [0, 1]
    if device is not None:
        model.to(device)
    if tile_size is None:
        tile_size = _automatic_tile_size(model, images, scale, tile_overlap)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = super_resolve(model, images, scale, tile_size, tile_overlap, batch_size)
    finally:
        model.train(was_training)
    return to_image(result, kind)


def super_resolve(
    model: nn.Module,
    images: torch.Tensor,
    scale: float,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    batch_size: int = 1,
) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, C, scale H, scale W): colours to the model's (YCbCr for a Y
    model: it sees Y), the MATLAB-bicubic enlargement first for a pre model, the model (in tiles
    with a tile_size), then Cb and Cr enlarged by bicubic and the colours back."""
    upsampling, num_channels = check_model(model)
    working = images
    if num_channels == 1 and images.shape[1] == 3:
        working = rgb_to_ycbcr(images)  # (B, 3, H, W): the model works on Y
    elif num_channels == 3 and images.shape[1] == 1:
        working = images.expand(-1, 3, -1, -1)  # three equal channels
    if upsampling == "pre":
        working = resize(working, scale=scale)  # (B, C', scale H, scale W), the model's input size
    factor = 1 if upsampling == "pre" else int(scale)
    model_input, chroma = working[:, :num_channels], working[:, num_channels:]
    if tile_size is None:
        output = run_model(model, model_input, factor)
    else:
        output = run_model_tiled(model, model_input, factor, tile_size, tile_overlap, batch_size)
    output = output.clamp(0, 1)  # (B, num_channels, scale H, scale W)
    if chroma.shape[1] == 0:  # the model made every channel
        return rgb_to_gray(output) if images.shape[1] == 1 else output
    if upsampling == "post":
        chroma = resize(chroma, scale=scale)  # Cb, Cr: the eye barely sees colour detail
    return ycbcr_to_rgb(torch.cat([output, chroma], dim=1)).clamp(0, 1)


def run_model(model: nn.Module, model_input: torch.Tensor, factor: int = 1) -> torch.Tensor:
    """model(model_input) on the model's device and dtype, back on the input's, with errors that
    say what went wrong in terms of the image. `factor`: how much larger the output must be."""
    model_device, model_dtype = _device_and_dtype(model)
    height, width = model_input.shape[-2:]
    batch = model_input.to(device=model_device, dtype=model_dtype)
    if batch.device.type == "cpu":
        batch = batch.contiguous(memory_format=torch.channels_last)  # oneDNN: about 1.5x faster on a CPU
    try:
        output = model(batch).contiguous()
    except RuntimeError as error:
        if any(fragment in str(error) for fragment in _TOO_SMALL_ERRORS):
            raise ValueError(
                f"the image is too small for this model: its layers cannot take a {height} x {width} input "
                f"(PyTorch said: {str(error).splitlines()[0]})"
            ) from error
        raise
    expected = (batch.shape[0], batch.shape[1], height * factor, width * factor)
    if tuple(output.shape) != expected:
        raise ValueError(
            f"for a {height} x {width} input the model returned shape {tuple(output.shape)}, but {expected} "
            "was expected. Do model.upsampling and model.scale describe it? A model whose convolutions "
            "have no padding shrinks the image and cannot be used here."
        )
    return output.to(device=model_input.device, dtype=model_input.dtype)


def run_model_tiled(
    model: nn.Module,
    model_input: torch.Tensor,
    factor: int,
    tile_size: int,
    tile_overlap: int | None = None,
    batch_size: int = 1,
) -> torch.Tensor:
    """`run_model` one tile at a time, for inputs whose feature maps would not fit in memory.

    Each tile runs with `tile_overlap` pixels of context on every side and only its centre is kept.
    An output pixel depends only on input pixels within the receptive field, so with an overlap of
    at least `receptive_field_radius(model)` (the default) the result equals the untiled one up to
    float rounding: no blending, no seams.
    """
    if tile_size < 1 or batch_size < 1 or (tile_overlap is not None and tile_overlap < 0):
        raise ValueError(f"tile_size and batch_size must be at least 1 and tile_overlap 0 or more, "
                         f"got {tile_size}, {batch_size}, {tile_overlap}")
    radius = receptive_field_radius(model)
    if tile_overlap is None:
        tile_overlap = radius
    elif tile_overlap < radius:
        warnings.warn(f"tile_overlap={tile_overlap} is smaller than the model's receptive field radius ({radius} "
                      "pixels), so pixels near tile edges miss context and seams may show; leave tile_overlap=None",
                      stacklevel=3)
    images, channels, height, width = model_input.shape
    tiles = [(index, rows, columns) for index in range(images)
             for rows in _spans(height, tile_size, tile_overlap) for columns in _spans(width, tile_size, tile_overlap)]
    result = model_input.new_empty(images, channels, height * factor, width * factor)
    for first in range(0, len(tiles), batch_size):
        chunk = tiles[first : first + batch_size]
        windows = torch.stack([model_input[index, :, rows.window, columns.window] for index, rows, columns in chunk])
        for (index, rows, columns), output in zip(chunk, run_model(model, windows, factor)):
            # the tile's own pixels: its window's output without the context margins
            top, left = (rows.start - rows.window.start) * factor, (columns.start - columns.window.start) * factor
            height_out, width_out = (rows.stop - rows.start) * factor, (columns.stop - columns.start) * factor
            result[index, :, rows.start * factor : rows.stop * factor, columns.start * factor : columns.stop * factor] = (
                output[:, top : top + height_out, left : left + width_out])
    return result


def resolve_scale(model: nn.Module, scale: float | None = None) -> float:
    """The scale `upscale` will use for `model`: checked against what the model can do."""
    upsampling, _ = check_model(model)
    model_scale, model_scales = getattr(model, "scale", None), getattr(model, "scales", None)
    if upsampling == "post":
        if model_scale is None:
            raise ValueError("a post-upsampling model must say which scale it was built for in `model.scale`")
        if scale is not None and scale != model_scale:
            raise ValueError(
                f"this {type(model).__name__} was built for x{model_scale}, so it cannot upscale x{scale}: "
                f"its last layer makes exactly {model_scale} x {model_scale} output pixels per input pixel. "
                f"Build (and train) a model with scale={scale}, or leave scale=None."
            )
        return model_scale
    if scale is None:
        if model_scales is not None and len(model_scales) == 1:
            scale = model_scales[0]
        elif model_scale is not None:
            scale = model_scale  # the scale the model was trained for, remembered in its config
        else:
            raise ValueError(f"{type(model).__name__} works at any scale (it sharpens an image that bicubic "
                             "interpolation has already enlarged), so say which one: upscale(model, image, scale=3)")
    if model_scales is not None and scale not in model_scales:
        raise ValueError(f"{type(model).__name__} serves the scales {tuple(model_scales)}, not x{scale}")
    if not (scale >= 1 and math.isfinite(scale)):
        raise ValueError(f"upscale enlarges, so the scale must be at least 1, got {scale} (to shrink, use resize)")
    return scale


def check_model(model: nn.Module) -> tuple[str, int]:
    """The model's family and channel count, with an explanation if the model does not say them."""
    upsampling, num_channels = getattr(model, "upsampling", None), getattr(model, "num_channels", None)
    if upsampling not in ("pre", "post"):
        raise ValueError(
            f"upscale needs model.upsampling to be 'pre' (the model sharpens a bicubic-enlarged image) or "
            f"'post' (the model enlarges the small image itself), but {type(model).__name__} has {upsampling!r}"
        )
    if num_channels not in (1, 3):
        raise ValueError(f"upscale needs model.num_channels to be 1 (the model works on the luma Y, as in the "
                         f"papers) or 3 (RGB), but {type(model).__name__} has {num_channels!r}")
    return upsampling, num_channels


def receptive_field_radius(model: nn.Module, probe_size: int = 64) -> int:
    """How far (in model-input pixels) an input pixel can reach: the context a tile needs on each side.

    A k x k convolution with dilation d reaches (k - 1) / 2 * d pixels on each side; stacked layers
    add up, and a layer on a grid 3x finer than the input (after a PixelShuffle) counts a third. The
    model runs once on a blank image with hooks on its convolutions, to see them in the order and at
    the resolution they run. Skips add nothing (an upper bound); functional convolutions and
    layers that see the whole image (pooling, attention) are not seen: no margin suffices for those.

    >>> receptive_field_radius(nn.Sequential(nn.Conv2d(1, 8, kernel_size=9, padding=4),
    ...                                      nn.Conv2d(8, 1, kernel_size=5, padding=2)))
    6
    """
    convolutions = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convolutions:
        return 0
    num_channels = getattr(model, "num_channels", None) or convolutions[0].in_channels
    layer_calls: list[tuple[nn.Module, Fraction]] = []  # (layer, its input's width / the model input's)
    handles = [layer.register_forward_hook(
        lambda layer, inputs, output: layer_calls.append((layer, Fraction(inputs[0].shape[-1], probe_size)))
    ) for layer in convolutions]
    model_device, model_dtype = _device_and_dtype(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, num_channels, probe_size, probe_size, device=model_device, dtype=model_dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return math.ceil(sum((_layer_reach(layer) / resolution for layer, resolution in layer_calls), Fraction(0)))


def _layer_reach(layer: nn.Module) -> int:
    """How many of its own input pixels on each side (the larger side) one output pixel of `layer` sees.

    A transposed convolution with stride s, kernel k and padding p reaches floor((d (k - 1) - p) / s)
    input pixels on one side and floor((s - 1 + p) / s) on the other.
    """
    reaches = []
    for axis in (0, 1):
        kernel, dilation, stride = layer.kernel_size[axis], layer.dilation[axis], layer.stride[axis]
        span = dilation * (kernel - 1)  # distance between the first and the last tap
        if isinstance(layer, nn.ConvTranspose2d):
            padding = layer.padding[axis]
            reaches.append(max(0, (span - padding) // stride, (stride - 1 + padding) // stride))
            continue
        if layer.padding == "same":
            padding = span // 2
        elif layer.padding == "valid":
            padding = 0
        else:
            padding = layer.padding[axis]
        # taps at offsets -padding .. span - padding; a stride moves the output grid by stride - 1 more
        reaches.append(max(padding, span - padding) + stride - 1)
    return max(reaches)


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their float type (CPU float32 for a model without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _automatic_tile_size(model: nn.Module, images: torch.Tensor, scale: float, tile_overlap: int | None) -> int | None:
    """None (run whole) while the output has at most AUTO_TILE_OUTPUT_PIXELS pixels, else a tile side."""
    batch, _, height, width = images.shape
    if batch * math.ceil(height * scale) * math.ceil(width * scale) <= AUTO_TILE_OUTPUT_PIXELS:
        return None
    factor = 1 if check_model(model)[0] == "pre" else int(scale)
    overlap = receptive_field_radius(model) if tile_overlap is None else tile_overlap
    return max(MIN_AUTO_TILE_SIZE, math.isqrt(AUTO_TILE_OUTPUT_PIXELS) // factor - 2 * overlap)


@dataclass(frozen=True)
class _Span:
    """One tile along one axis, in model-input pixels: its own pixels start .. stop - 1, and the
    window the model sees (the tile plus context)."""

    start: int
    stop: int
    window: slice


def _spans(length: int, tile_size: int, overlap: int) -> list[_Span]:
    """Cut 0 .. length - 1 into near-equal tiles, each with `overlap` pixels of context on both sides.

    Every window has the same size (at the image border the context comes from the inside instead),
    so the windows of many tiles stack into one batch.
    """
    if tile_size >= length:
        return [_Span(0, length, slice(0, length))]
    size = math.ceil(length / math.ceil(length / tile_size))  # as equal as possible: no thin last tile
    window = min(length, size + 2 * overlap)
    spans = []
    for start in range(0, length, size):
        window_start = min(max(start - overlap, 0), length - window)
        spans.append(_Span(start, min(start + size, length), slice(window_start, window_start + window)))
    return spans
