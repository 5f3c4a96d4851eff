"""Inference: a trained network on a whole image of any kind and size.

    upscale(model, image, scale=3)   # a PIL image, a NumPy array or a tensor in; the same kind out

For an image that fits in memory the path is four public steps, each callable alone:
`images.to_tensor`, then `super_resolve` (the colours a model works on, `enlarge`: MATLAB-bicubic
first for a pre-upsampling model, `run_model`, then the colours back), then `images.to_image`.
Models trained like the papers see only the luma Y: Cb and Cr are enlarged by bicubic. Beside that
path, for what is too big to run whole: `run_model_tiled` cuts the model's input into tiles with
enough context (the model's `receptive_field_radius`) that the stitched result equals the untiled
one, and `upscale_file` writes a file a stripe of rows at a time (`enlarge(rows=...)`).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from sr_teach.device import pick_device
from sr_teach.export import colours_from_luma, network_phases
from sr_teach.images import (
    image_size,
    load_image,
    rgb_to_gray,
    rgb_to_ycbcr,
    save_stripes,
    to_image,
    to_tensor,
    ycbcr_to_rgb,
)
from sr_teach.interpolation import BAND_ROWS, KERNELS, METHODS, output_size, resize

# With tile_size=None, images whose output has at most this many pixels run whole, bigger ones in
# tiles of about this many output pixels: a 1080p frame (2.07 MP) runs whole, while a 64-channel
# float32 feature map of one tile stays near 640 MB.
AUTO_TILE_OUTPUT_PIXELS = 2_500_000
MIN_AUTO_TILE_SIZE = 64  # automatic tiles are never smaller, so their margins do not cost more than they do
# upscale_file makes this many output pixels at a time (whole bands of BAND_ROWS rows, at least one),
# and runs the model on tiles this wide within a stripe: SRCNN's 64 feature maps of one take 20 MB.
STRIPE_OUTPUT_PIXELS = 1_000_000
STRIPE_TILE_SIZE = 512
CONTEXT_ROWS = 4  # input rows PyTorch's and Pillow's kernels may reach past a stripe when enlarging (bicubic: 2)

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
        output has at most AUTO_TILE_OUTPUT_PIXELS pixels. device: where to run, as `device.pick_device`
        takes it ("auto", "cpu", "cuda", "mps"); the model moves there.

    >>> from sr_teach.models import ESPCN
    >>> upscale(ESPCN(scale=3), np.zeros((10, 20, 3), dtype=np.uint8)).shape
    (30, 60, 3)
    """
    scale = resolve_scale(model, scale)
    images, kind = to_tensor(image)  # (B, C, H, W) in [0, 1]
    if tile_overlap is not None and tile_overlap < (radius := receptive_field_radius(model)):
        warnings.warn(f"tile_overlap={tile_overlap} is smaller than the model's receptive field radius ({radius} "
                      "pixels), so pixels near tile edges miss context and seams may show; leave tile_overlap=None",
                      stacklevel=2)
    if device is not None:
        model.to(pick_device(device))
    if tile_size is None:
        tile_size = _automatic_tile_size(model, images, scale, tile_overlap)
    with _evaluating(model):
        result = super_resolve(model, images, scale, tile_size, tile_overlap, batch_size)
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
    model: it sees Y), `enlarge` (MATLAB bicubic first for a pre model, the model in tiles with a
    tile_size, Cb and Cr by bicubic), then the colours back."""
    upsampling, num_channels = check_model(model)
    output_size(images.shape[-2:], scale, None)  # an ImageError if the result would be too big
    working = model_colours(images, num_channels)
    if upsampling == "post" and num_channels == 1 and images.shape[1] == 3:  # the same in fewer passes:
        luma = network_phases(model, working[:, :1]) if tile_size is None else None
        if luma is None:
            luma = enlarge(model, working[:, :1], scale, tile_size=tile_size, tile_overlap=tile_overlap,
                           batch_size=batch_size)
        return colours_from_luma(luma, working[:, 1:], int(scale))  # bicubic Cb, Cr and RGB in one convolution
    enlarged = enlarge(model, working, scale, tile_size=tile_size, tile_overlap=tile_overlap, batch_size=batch_size)
    return image_colours(enlarged, num_channels, images.shape[1])


def model_colours(images: torch.Tensor, num_channels: int) -> torch.Tensor:
    """(B, C, H, W) in the colours a model of `num_channels` works on: YCbCr for a Y model on a colour
    image (it sees Y; Cb and Cr ride along), three equal channels for an RGB model on a gray one."""
    if num_channels == 1 and images.shape[1] == 3:
        return rgb_to_ycbcr(images)  # (B, 3, H, W): the model works on Y
    if num_channels == 3 and images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)  # three equal channels
    return images


def image_colours(enlarged: torch.Tensor, num_channels: int, image_channels: int) -> torch.Tensor:
    """The inverse of `model_colours`, clamped to [0, 1]: YCbCr back to RGB, an RGB result of a gray image to gray."""
    if enlarged.shape[1] == num_channels:  # the model made every channel
        return rgb_to_gray(enlarged) if image_channels == 1 else enlarged
    return ycbcr_to_rgb(enlarged).clamp(0, 1)


def enlarge(
    model: nn.Module,
    working: torch.Tensor,
    scale: float,
    rows: tuple[int, int] | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    batch_size: int = 1,
) -> torch.Tensor:
    """The middle of `super_resolve`, in the model's colours: MATLAB-bicubic enlargement first for a
    pre model, the model on its channels (clamped to [0, 1]), the other channels (Cb, Cr) by bicubic.

    rows=(start, stop) makes only those output rows (a stripe, for `upscale_file`), from the input
    rows they need: the model sees its receptive field as context (as a tile does), tile_overlap
    pixels of it when given (pass `receptive_field_radius(model)` once for many stripes).
    """
    upsampling, num_channels = check_model(model)
    factor = 1 if upsampling == "pre" else int(scale)
    out_height = math.ceil(working.shape[-2] * scale)
    start, stop = rows or (0, out_height)
    context = 0 if rows is None else tile_overlap if tile_overlap is not None else receptive_field_radius(model)
    model_height = out_height if upsampling == "pre" else working.shape[-2]
    window = _window(start // factor, -(-stop // factor), context, model_height, _folding(model))
    keep = slice(start - window.start * factor, stop - window.start * factor)  # the stripe in the window's output
    if upsampling == "pre":
        working = resize(working, scale=scale, rows=(window.start, window.stop))  # (B, C', window, scale W)
        model_input, chroma = working[:, :num_channels], working[:, num_channels:, keep]
    else:
        model_input, chroma = working[:, :num_channels, window], working[:, num_channels:]
        if chroma.shape[1] > 0:
            chroma = resize(chroma, scale=scale, rows=(start, stop))  # Cb, Cr: the eye barely sees colour detail
    if tile_size is None:
        output = run_model(model, model_input, factor)
    else:
        output = run_model_tiled(model, model_input, factor, tile_size, tile_overlap, batch_size)
    output = output[..., keep, :].clamp(0, 1)  # (B, num_channels, stop - start, scale W)
    return output if chroma.shape[1] == 0 else torch.cat([output, chroma], dim=1)


def upscale_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    upscaler: nn.Module | str,
    scale: float | None = None,
    overwrite: bool = False,
    device: str | torch.device | None = None,
) -> tuple[int, int]:
    """Enlarge an image file into another with a model or an interpolation method (a name in
    `interpolation.METHODS`), and return the (height, width) written.

    The result is made and written a stripe of STRIPE_OUTPUT_PIXELS at a time, so memory holds the
    input and one stripe, never the whole result (README's "Memory"). The stripes equal the rows of
    `upscale` (for a MATLAB kernel exactly, for a model up to float rounding, as tiles).
    """
    output_path = Path(output_path)
    if output_path.exists() and not overwrite:
        raise FileExistsError(f"{output_path} exists; pass --force (overwrite=True) to replace it")
    if isinstance(upscaler, nn.Module):
        scale = resolve_scale(upscaler, scale)
        if device is not None:
            upscaler.to(pick_device(device))
    elif upscaler not in METHODS:
        raise ValueError(f"unknown upscaler {upscaler!r}: give a model or one of {', '.join(METHODS)}")
    elif scale is None:
        raise ValueError(f"say how much to enlarge with {upscaler}: upscale_file(..., scale=2)")
    output_size(image_size(input_path), scale, None)  # too big: refused before decoding
    image = load_image(input_path)[None]  # (1, C, H, W): the only whole-image tensor
    height, width = output_size(image.shape[-2:], scale, None)
    if not isinstance(upscaler, nn.Module):
        stripes = _interpolated_stripes(image, scale, upscaler, height, width)
        save_stripes(stripes, height, output_path, overwrite)
        return height, width
    _, num_channels = check_model(upscaler)
    working, image_channels = model_colours(image, num_channels), image.shape[1]
    del image  # the model's colours replace it
    overlap = receptive_field_radius(upscaler)  # found once (a probe run of the model), used by every stripe
    stripes = (image_colours(enlarge(upscaler, working, scale, rows, STRIPE_TILE_SIZE, overlap), num_channels,
                             image_channels)[0]
               for rows in _stripe_rows(height, width))
    with _evaluating(upscaler):
        save_stripes(stripes, height, output_path, overwrite)
    return height, width


def _interpolated_stripes(image: torch.Tensor, scale: float, method: str, height: int, width: int) -> Iterator:
    """The stripes of `resize(image, scale, method)`. PyTorch's and Pillow's methods enlarge a stripe of
    input rows with CONTEXT_ROWS more on each side and keep the middle: at a whole scale the same
    sums as the whole result (up to float rounding); at another scale they resize whole."""
    if method in KERNELS:
        for rows in _stripe_rows(height, width):
            yield resize(image, scale=scale, method=method, rows=rows)[0]
    elif scale != int(scale):
        yield resize(image, scale=scale, method=method)[0]
    else:
        factor, in_height = int(scale), image.shape[-2]
        step = max(1, STRIPE_OUTPUT_PIXELS // (width * factor))  # input rows per stripe
        for start in range(0, in_height, step):
            low, high = max(0, start - CONTEXT_ROWS), min(in_height, start + step + CONTEXT_ROWS)
            stripe = resize(image[..., low:high, :], scale=factor, method=method)[0]
            yield stripe[:, (start - low) * factor : (min(start + step, in_height) - low) * factor]


def _stripe_rows(height: int, width: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of output stripes of whole BAND_ROWS bands, about STRIPE_OUTPUT_PIXELS each."""
    step = max(1, STRIPE_OUTPUT_PIXELS // (width * BAND_ROWS)) * BAND_ROWS
    for start in range(0, height, step):
        yield start, min(start + step, height)


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """The model in eval mode without gradients, put back in training mode afterwards if it was."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


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
    at least `receptive_field_radius(model)` (the default; `upscale` warns about a smaller one) the
    result equals the untiled one up to float rounding: no blending, no seams.
    """
    if tile_size < 1 or batch_size < 1 or (tile_overlap is not None and tile_overlap < 0):
        raise ValueError(f"tile_size and batch_size must be at least 1 and tile_overlap 0 or more, "
                         f"got {tile_size}, {batch_size}, {tile_overlap}")
    if tile_overlap is None:
        tile_overlap = receptive_field_radius(model)
    images, channels, height, width = model_input.shape
    fold = _folding(model)
    if fold > 1:  # tiles on the model's f x f blocks: pad to whole blocks first, as the model itself does
        model_input = F.pad(model_input, (0, -width % fold, 0, -height % fold), mode="replicate")
    padded_height, padded_width = model_input.shape[-2:]
    tiles = [(index, rows, columns) for index in range(images)
             for rows in _spans(padded_height, tile_size, tile_overlap, fold)
             for columns in _spans(padded_width, tile_size, tile_overlap, fold)]
    result = model_input.new_empty(images, channels, padded_height * factor, padded_width * factor)
    for first in range(0, len(tiles), batch_size):
        chunk = tiles[first : first + batch_size]
        windows = torch.stack([model_input[index, :, rows.window, columns.window] for index, rows, columns in chunk])
        for (index, rows, columns), output in zip(chunk, run_model(model, windows, factor)):
            # the tile's own pixels: its window's output without the context margins
            top, left = (rows.start - rows.window.start) * factor, (columns.start - columns.window.start) * factor
            height_out, width_out = (rows.stop - rows.start) * factor, (columns.stop - columns.start) * factor
            result[index, :, rows.start * factor : rows.stop * factor, columns.start * factor : columns.stop * factor] = (
                output[:, top : top + height_out, left : left + width_out])
    return result[..., : height * factor, : width * factor]


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
        raise ValueError(f"upscale enlarges, so the scale must be a finite number of at least 1, not {scale} (to shrink, use resize)")
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
    if isinstance(getattr(model, "receptive_field_radius", None), int):  # a model that knows it (export.fast_model)
        return model.receptive_field_radius
    convolutions = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d))]
    if not convolutions:
        return 0
    num_channels = getattr(model, "in_channels", None) or getattr(model, "num_channels", None) or convolutions[0].in_channels
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
    reach = math.ceil(sum((_layer_reach(layer) / resolution for layer, resolution in layer_calls), Fraction(0)))
    return reach + _folding(model) - 1  # a pixel's f x f block reaches f - 1 pixels further than the pixel


def _layer_reach(layer: nn.Module) -> int:
    """How many of its own input pixels on each side (the larger side) one output pixel of `layer` sees.

    A transposed convolution with stride s, kernel k and padding p reaches floor((d (k - 1) - p) / s)
    input pixels on one side and floor((s - 1 + p) / s) on the other.
    """
    reaches = []
    pair = nn.modules.utils._pair
    for axis in (0, 1):
        kernel, stride = pair(layer.kernel_size)[axis], pair(layer.stride)[axis]
        dilation = pair(getattr(layer, "dilation", 1))[axis]  # pooling layers: a kernel and a stride too
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
            padding = pair(layer.padding)[axis]
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


def _spans(length: int, tile_size: int, overlap: int, grid: int = 1) -> list[_Span]:
    """Cut 0 .. length - 1 into near-equal tiles, each with `overlap` pixels of context on both sides.

    Every window has the same size (at the image border the context comes from the inside instead),
    so the windows of many tiles stack into one batch. With grid=f (a length of whole f-blocks) every
    tile and window starts on a multiple of f.
    """
    if tile_size >= length:
        return [_Span(0, length, slice(0, length))]
    size = math.ceil(length / math.ceil(length / tile_size))  # as equal as possible: no thin last tile
    size, overlap = _round_up(size, grid), _round_up(overlap, grid)
    window = min(length, size + 2 * overlap)
    spans = []
    for start in range(0, length, size):
        window_start = min(max(start - overlap, 0), length - window)
        spans.append(_Span(start, min(start + size, length), slice(window_start, window_start + window)))
    return spans


def _window(start: int, stop: int, context: int, length: int, grid: int) -> slice:
    """start .. stop - 1 widened by `context` on both sides within 0 .. length - 1, on multiples of `grid`."""
    return slice(max(0, start - context) // grid * grid, min(length, _round_up(stop + context, grid)))


def _round_up(number: int, multiple: int) -> int:
    return -(-number // multiple) * multiple


def _folding(model: nn.Module) -> int:
    """f for a model that folds f x f blocks of its input into channels (VDSR's pixel_unshuffle) or
    halves it f times over (a U-Net's `grid`), else 1: a window of its input must start on a multiple
    of f, or its blocks, and so its result, change."""
    return int(getattr(model, "grid", None) or getattr(getattr(model, "config", None), "pixel_unshuffle", 1) or 1)
