"""Inference: run a super-resolution model on a whole image of any kind and any size.

`upscale(model, image)` is the one call a notebook needs after training. It takes care of what the
model itself does not:

- The kind of image. A PIL image, a NumPy array ((H, W) or (H, W, C), uint8 or float in [0, 1]) or
  a tensor ((C, H, W) or a batch (B, C, H, W)) goes in; the same kind comes back, bigger.
- The model's family. "pre" models (SRCNN, VDSR) sharpen an image that MATLAB-bicubic `resize` has
  already enlarged, so `upscale` enlarges first; "post" models (FSRCNN, ESPCN) take the small image.
- The channels. Models trained like the papers (`num_channels=1`) see only the luma Y of a colour
  image: the image goes to YCbCr (MATLAB's BT.601 convention), the model enlarges Y, bicubic enlarges
  Cb and Cr (the eye barely sees colour detail), and the three go back to RGB. A gray image given to
  an RGB model is repeated into three equal channels and turned back into gray afterwards.
- The memory. A 64-channel network keeps 64 feature maps of the whole image alive; for a 12-megapixel
  photo that is 3 GB per layer. So big images are cut into tiles. Each tile is run with a margin of
  context (`tile_overlap`) around it and only its centre is kept: a convolution's output pixel depends
  only on input pixels within its receptive field, so when the margin covers the model's
  `receptive_field_radius` the stitched result equals the untiled one up to float rounding. No
  blending, no seams.

Sizes of tiles and margins are counted in pixels of the *model's input*: low-resolution pixels for a
post model, pixels of the enlarged image for a pre model (whose bicubic enlargement is computed tile
by tile with the same weights `resize` uses for the whole image, so it never exists in full).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from sr_teach.images import pil_to_tensor, rgb_to_gray, rgb_to_ycbcr, tensor_to_pil, ycbcr_to_rgb
from sr_teach.interpolation import resize_matrix

# With tile_size=None, images whose output has at most this many pixels run in one piece, and bigger
# ones are cut into tiles of about this many output pixels. 2.5 megapixels lets a 1080p frame
# (2.07 MP) through whole, while a 64-channel float32 feature map of one tile stays near 640 MB:
# a few of those alive at once fit a laptop.
AUTO_TILE_OUTPUT_PIXELS = 2_500_000

# Automatic tiles are never smaller than this (model-input pixels), so the context margins do not
# end up costing more than the tiles themselves.
MIN_AUTO_TILE_SIZE = 64

# How big a blank image `receptive_field_radius` runs through the model to watch its layers.
RECEPTIVE_FIELD_PROBE_SIZE = 64

# Output rows (or columns) of a bicubic enlargement computed per matrix product: small enough that
# each product touches only the few input pixels near them, big enough to keep the loop short.
_BICUBIC_CHUNK = 64

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

    image: a PIL image (returned as "L" if gray, else "RGB"; transparency is composited over white),
        a NumPy array (H, W) or (H, W, C) of uint8 or floats in [0, 1] (returned with the same dtype
        and layout), or a float tensor in [0, 1] of shape (C, H, W) or a batch (B, C, H, W) (returned
        with the same shape layout, dtype and device). C is 1 (gray) or 3 (RGB).
    scale: a post model upsamples by its own `model.scale` (asking for another is an error); a pre
        model needs one, unless `model.scales` names exactly one or the model remembers the
        `model.scale` it was trained for. Pre models take any scale >= 1, even 2.5.
    tile_size: the side of a tile in model-input pixels. None: whole images when the output has at
        most AUTO_TILE_OUTPUT_PIXELS pixels, tiles of about that many output pixels otherwise.
    tile_overlap: context pixels (model-input pixels) on each side of a tile. None: the model's
        `receptive_field_radius`, the least that makes tiling exact.
    batch_size: how many tiles (or whole images of a batch) go through the model in one forward pass.
    device: where to run. None: where the model's parameters are. Otherwise the model is moved there
        (`nn.Module.to` moves it in place, and it stays there).

    The output is clamped to [0, 1]. The model runs in eval mode under `torch.no_grad()`, in its own
    dtype, and is put back in training mode afterwards if it was in it.

    >>> from sr_teach.models import ESPCN
    >>> upscale(ESPCN(scale=3), np.zeros((10, 20, 3), dtype=np.uint8)).shape
    (30, 60, 3)
    """
    upsampling, num_channels = _check_model(model)
    scale = resolve_scale(model, scale)
    if tile_size is not None and tile_size < 1:
        raise ValueError(f"tile_size must be at least 1 pixel (or None for automatic tiles), got {tile_size}")
    if tile_overlap is not None and tile_overlap < 0:
        raise ValueError(f"tile_overlap must be 0 or more pixels (or None for automatic), got {tile_overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    batch, convert_back = _to_image_batch(image)  # (B, C, H, W) float in [0, 1]
    model_device, model_dtype = _device_and_dtype(model)
    if device is not None:
        model_device = torch.device(device)
        model.to(model_device)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = _upscale_batch(
                model, batch, upsampling, num_channels, scale, tile_size, tile_overlap, batch_size,
                model_device, model_dtype,
            )  # (B, C, H_out, W_out)
    finally:
        model.train(was_training)
    return convert_back(result)


def resolve_scale(model: nn.Module, scale: float | None = None) -> float:
    """The scale `upscale` will use for `model`: checked against what the model can do."""
    upsampling, _ = _check_model(model)
    model_scales = getattr(model, "scales", None)
    if upsampling == "post":
        model_scale = getattr(model, "scale", None)
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
        elif getattr(model, "scale", None) is not None:
            scale = model.scale  # the scale the model was trained for, remembered in its config
        else:
            raise ValueError(
                f"{type(model).__name__} works at any scale (it sharpens an image that bicubic "
                "interpolation has already enlarged), so say which one: upscale(model, image, scale=3)"
            )
    if model_scales is not None and scale not in model_scales:
        raise ValueError(f"{type(model).__name__} serves the scales {tuple(model_scales)}, not x{scale}")
    if not scale >= 1:
        raise ValueError(f"upscale enlarges, so the scale must be at least 1, got {scale} (to shrink, use resize)")
    return scale


def receptive_field_radius(model: nn.Module, probe_size: int = RECEPTIVE_FIELD_PROBE_SIZE) -> int:
    """How far (in model-input pixels) an input pixel can reach: the context a tile needs on each side.

    A k x k convolution with dilation d lets an output pixel see (k - 1) / 2 * d pixels on each
    side of its own position; stacked layers add up. Layers that run on a larger grid than the
    input (after `nn.PixelShuffle` or a transposed convolution in a post model) count in input
    pixels: 1 pixel at 3x the resolution is 1/3 of an input pixel. A transposed convolution with
    stride s, kernel k and padding p reaches floor((d (k - 1) - p) / s) input pixels on one side and
    floor((s - 1 + p) / s) on the other.

    To see the layers in the order they run and the resolution they run at (and to count a layer
    that runs twice, twice), the model runs once on a blank probe_size x probe_size image with
    forward hooks on its `nn.Conv2d` and `nn.ConvTranspose2d` layers. Skip connections add nothing
    (their path is shorter), so the sum over all layers is an upper bound. Not seen: functional
    convolutions (`F.conv2d`) and layers that look at the whole image (global pooling, attention);
    with those, no finite margin makes tiling exact.

    >>> receptive_field_radius(nn.Sequential(nn.Conv2d(1, 8, kernel_size=9, padding=4),
    ...                                      nn.Conv2d(8, 1, kernel_size=5, padding=2)))
    6
    """
    num_channels = getattr(model, "num_channels", None)
    convolutions = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convolutions:
        return 0
    if num_channels is None:
        num_channels = convolutions[0].in_channels
    model_device, model_dtype = _device_and_dtype(model)

    # (layer, width of its input / width of the model's input), in the order the layers ran
    layer_calls: list[tuple[nn.Module, Fraction]] = []

    def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        layer_calls.append((layer, Fraction(inputs[0].shape[-1], probe_size)))

    handles = [layer.register_forward_hook(record) for layer in convolutions]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, num_channels, probe_size, probe_size, device=model_device, dtype=model_dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    radius = sum((_layer_reach(layer) / resolution for layer, resolution in layer_calls), Fraction(0))
    return math.ceil(radius)


def _layer_reach(layer: nn.Module) -> int:
    """How many of its own input pixels on each side (the larger side) one output pixel of `layer` sees."""
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


# ----------------------------------------------------------------------------------------------
# The steps of `upscale`


def _check_model(model: nn.Module) -> tuple[str, int]:
    """The model's family and channel count, with an explanation if the model does not say them."""
    upsampling = getattr(model, "upsampling", None)
    if upsampling not in ("pre", "post"):
        raise ValueError(
            f"upscale needs model.upsampling to be 'pre' (the model sharpens a bicubic-enlarged image) or "
            f"'post' (the model enlarges the small image itself), but {type(model).__name__} has {upsampling!r}"
        )
    num_channels = getattr(model, "num_channels", None)
    if num_channels not in (1, 3):
        raise ValueError(
            f"upscale needs model.num_channels to be 1 (the model works on the luma Y, as in the papers) "
            f"or 3 (RGB), but {type(model).__name__} has {num_channels!r}"
        )
    return upsampling, num_channels


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's parameters live and their float type (CPU float32 for a model without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _to_image_batch(
    image: Image.Image | np.ndarray | torch.Tensor,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """Turn any supported image into (B, C, H, W) floats in [0, 1], and a function that turns a result back."""
    if isinstance(image, Image.Image):
        tensor = pil_to_tensor(image)  # (C, H, W), C = 1 or 3
        return tensor[None], lambda result: tensor_to_pil(result[0])

    if isinstance(image, np.ndarray):
        return _numpy_to_image_batch(image)

    if isinstance(image, torch.Tensor):
        if image.ndim not in (3, 4):
            raise ValueError(
                f"a tensor image must be (C, H, W) or a batch (B, C, H, W), got shape {tuple(image.shape)}"
            )
        _check_channels(image.shape[-3], tuple(image.shape), "(C, H, W)")
        original_dtype, original_device, single = image.dtype, image.device, image.ndim == 3
        batch = image.detach()[None] if single else image.detach()
        if original_dtype == torch.uint8:
            batch = batch.float() / 255.0
        elif not batch.is_floating_point():
            raise ValueError(f"a tensor image must be float in [0, 1] or uint8, got dtype {original_dtype}")
        elif batch.dtype != torch.float64:
            batch = batch.float()
        _check_range(batch)

        def tensor_back(result: torch.Tensor) -> torch.Tensor:
            if original_dtype == torch.uint8:
                result = (result * 255.0).round()
            result = result.to(device=original_device, dtype=original_dtype)
            return result[0] if single else result

        return batch, tensor_back

    raise TypeError(
        f"upscale takes a PIL image, a NumPy array or a torch tensor, not {type(image).__name__}"
    )


def _numpy_to_image_batch(array: np.ndarray) -> tuple[torch.Tensor, Callable[[torch.Tensor], np.ndarray]]:
    """(H, W) or (H, W, C) uint8 / float in [0, 1] -> (1, C, H, W), and the way back."""
    if array.ndim == 2:
        channels_last = array[:, :, None]
    elif array.ndim == 3:
        if array.shape[2] not in (1, 3) and array.shape[0] in (1, 3):
            raise ValueError(
                f"a NumPy image is (H, W) or (H, W, C) with C = 1 or 3; shape {array.shape} looks like "
                "(C, H, W): use array.transpose(1, 2, 0)"
            )
        _check_channels(array.shape[2], array.shape, "(H, W, C)")
        channels_last = array
    else:
        raise ValueError(f"a NumPy image is (H, W) or (H, W, C), got shape {array.shape}")

    original_dtype, gray_without_axis = array.dtype, array.ndim == 2
    if original_dtype == np.uint8:
        tensor = torch.from_numpy(channels_last.astype(np.float32) / 255.0)
    elif np.issubdtype(original_dtype, np.floating):
        float_dtype = np.float64 if original_dtype == np.float64 else np.float32
        tensor = torch.from_numpy(np.ascontiguousarray(channels_last, dtype=float_dtype))
    else:
        raise ValueError(
            f"a NumPy image must be uint8 (0..255) or float (0..1), got dtype {original_dtype}; "
            "for 16-bit images divide by 65535.0 first"
        )
    batch = tensor.permute(2, 0, 1)[None]  # (1, C, H, W)
    _check_range(batch)

    def numpy_back(result: torch.Tensor) -> np.ndarray:
        image = result[0].permute(1, 2, 0).cpu()  # (H, W, C)
        if original_dtype == np.uint8:
            output = (image * 255.0).round().to(torch.uint8).numpy()
        else:
            output = image.numpy().astype(original_dtype)
        return output[:, :, 0] if gray_without_axis else output

    return batch, numpy_back


def _check_channels(num_channels: int, shape: tuple[int, ...], layout: str) -> None:
    if num_channels not in (1, 3):
        hint = " (RGBA? composite or drop the alpha channel first)" if num_channels == 4 else ""
        raise ValueError(
            f"an image must have 1 (gray) or 3 (RGB) channels, but shape {shape} read as {layout} has "
            f"{num_channels}{hint}"
        )


def _check_range(batch: torch.Tensor) -> None:
    if batch.numel() == 0 or batch.shape[-1] == 0 or batch.shape[-2] == 0:
        raise ValueError(f"the image is empty: shape {tuple(batch.shape)}")
    low, high = batch.min().item(), batch.max().item()
    if low < -1e-3 or high > 1 + 1e-3 or math.isnan(low) or math.isnan(high):
        raise ValueError(
            f"float images must hold values in [0, 1], but this one spans [{low:g}, {high:g}]; "
            "divide an image in 0..255 by 255"
        )


@dataclass(frozen=True)
class _Span:
    """One tile along one axis, in model-input pixels."""

    start: int  # the pixels this tile is responsible for: start .. stop - 1
    stop: int
    window_start: int  # what the model sees: the tile plus context, window_start .. window_stop - 1
    window_stop: int


def _spans(length: int, tile_size: int | None, overlap: int) -> list[_Span]:
    """Cut 0 .. length - 1 into near-equal tiles, each with `overlap` pixels of context on both sides.

    Every window has the same size (a window at the image border takes its context from the inside
    instead), so the windows of many tiles stack into one batch.
    """
    if tile_size is None or tile_size >= length:
        return [_Span(0, length, 0, length)]
    count = math.ceil(length / tile_size)
    size = math.ceil(length / count)  # as equal as possible: no thin last tile
    window = min(length, size + 2 * overlap)
    spans = []
    for start in range(0, length, size):
        window_start = min(max(start - overlap, 0), length - window)
        spans.append(_Span(start, min(start + size, length), window_start, window_start + window))
    return spans


class _Bicubic:
    """MATLAB-bicubic enlargement of an image by `scale`, computed for any window of the output.

    `interpolation.resize` multiplies the image by a (out_length, in_length) weight matrix along each
    axis. Output rows r0 .. r1 need only the matching rows of that matrix and the input rows where
    they are nonzero (a bicubic pixel mixes 4 neighbours per axis), so a window costs in proportion
    to its size, not the image's, and equals the same pixels of `resize(image, scale)` (same weights,
    float64, clamped to [0, 1]).
    """

    def __init__(self, height: int, width: int, scale: float, device: torch.device) -> None:
        self.output_size = (math.ceil(height * scale), math.ceil(width * scale))
        self.row_weights = resize_matrix(height, self.output_size[0], scale).to(device)  # (H_out, H)
        self.column_weights = resize_matrix(width, self.output_size[1], scale).to(device)  # (W_out, W)

    def window(self, image: torch.Tensor, rows: tuple[int, int], columns: tuple[int, int]) -> torch.Tensor:
        """(C, H, W) -> the (C, rows, columns) window of its enlargement, in image's dtype."""
        _, first_column, last_column = _band(self.column_weights[columns[0] : columns[1]])
        # Rows first, like `imresize` when both axes grow by the same factor. A few output rows at a
        # time, so each product uses only the input rows near them, not all H of them.
        pieces = []
        for start in range(rows[0], rows[1], _BICUBIC_CHUNK):
            weights, first, last = _band(self.row_weights[start : min(start + _BICUBIC_CHUNK, rows[1])])
            crop = image[:, first:last, first_column:last_column].to(torch.float64)  # (C, h, w)
            pieces.append(weights @ crop)  # (chunk, h) @ (C, h, w) -> (C, chunk, w)
        taller = torch.cat(pieces, dim=1)  # (C, rows, w)
        pieces = []
        for start in range(columns[0], columns[1], _BICUBIC_CHUNK):
            weights, first, last = _band(self.column_weights[start : min(start + _BICUBIC_CHUNK, columns[1])])
            crop = taller[:, :, first - first_column : last - first_column]  # (C, rows, w)
            enlarged = crop @ weights.T  # (C, rows, w) @ (w, chunk) -> (C, rows, chunk)
            pieces.append(enlarged.clamp_(0, 1).to(image.dtype))
        return torch.cat(pieces, dim=2)  # (C, rows, columns)


def _band(weights: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Trim the all-zero columns on both sides of a (out, in) weight matrix: (weights, first, last + 1)."""
    used = weights.ne(0).any(dim=0).nonzero()
    first, last = int(used[0]), int(used[-1]) + 1
    return weights[:, first:last], first, last


def _upscale_batch(
    model: nn.Module,
    batch: torch.Tensor,
    upsampling: str,
    num_channels: int,
    scale: float,
    tile_size: int | None,
    tile_overlap: int | None,
    batch_size: int,
    model_device: torch.device,
    model_dtype: torch.dtype,
) -> torch.Tensor:
    """The core of `upscale` for a (B, C, H, W) batch in [0, 1]; returns (B, C, H_out, W_out) in [0, 1]."""
    num_images, image_channels, height, width = batch.shape
    # What the model works on: the image itself, its YCbCr (model on Y), or gray repeated to RGB.
    on_luma = num_channels == 1 and image_channels == 3
    gray_as_rgb = num_channels == 3 and image_channels == 1
    if on_luma:
        working = rgb_to_ycbcr(batch)  # (B, 3, H, W): Y, Cb, Cr
    elif gray_as_rgb:
        working = batch.expand(-1, 3, -1, -1)  # (B, 3, H, W), three equal channels
    else:
        working = batch

    # Model-input grid and how many output pixels each of its pixels becomes.
    if upsampling == "pre":
        bicubic = _Bicubic(height, width, scale, batch.device)
        model_input_size = bicubic.output_size
        factor = 1
    else:
        bicubic = _Bicubic(height, width, scale, batch.device) if on_luma else None  # for Cb, Cr
        model_input_size = (height, width)
        factor = int(scale)
    output_size = (model_input_size[0] * factor, model_input_size[1] * factor)

    # Tiles.
    if tile_size is None and output_size[0] * output_size[1] > AUTO_TILE_OUTPUT_PIXELS:
        if tile_overlap is None:
            tile_overlap = receptive_field_radius(model)
        tile_side = math.isqrt(AUTO_TILE_OUTPUT_PIXELS) // factor - 2 * tile_overlap
        tile_size = max(MIN_AUTO_TILE_SIZE, tile_side)
    tiled = tile_size is not None and (tile_size < model_input_size[0] or tile_size < model_input_size[1])
    if tiled and tile_overlap is None:
        tile_overlap = receptive_field_radius(model)
    elif tiled:
        radius = receptive_field_radius(model)
        if tile_overlap < radius:
            warnings.warn(
                f"tile_overlap={tile_overlap} is smaller than the model's receptive field radius ({radius} "
                "pixels), so pixels near tile edges miss context and seams may show; leave tile_overlap=None",
                stacklevel=3,
            )
    row_spans = _spans(model_input_size[0], tile_size if tiled else None, tile_overlap or 0)
    column_spans = _spans(model_input_size[1], tile_size if tiled else None, tile_overlap or 0)
    tiles = [(index, rows, columns) for index in range(num_images) for rows in row_spans for columns in column_spans]

    result = torch.empty(num_images, image_channels, *output_size, dtype=batch.dtype, device=batch.device)
    model_channels = slice(0, num_channels)  # Y only, or all three
    for first in range(0, len(tiles), batch_size):
        chunk = tiles[first : first + batch_size]
        windows = []  # each (C_working, window_h, window_w)
        for index, rows, columns in chunk:
            row_window = (rows.window_start, rows.window_stop)
            column_window = (columns.window_start, columns.window_stop)
            if upsampling == "pre":
                windows.append(bicubic.window(working[index], row_window, column_window))
            else:
                windows.append(working[index, :, slice(*row_window), slice(*column_window)])
        model_input = torch.stack(windows)[:, model_channels]  # (n, num_channels, window_h, window_w)
        model_output = _run_model(model, model_input.to(device=model_device, dtype=model_dtype), factor)
        model_output = model_output.to(device=batch.device, dtype=batch.dtype)  # (n, num_channels, f*h, f*w)

        for (index, rows, columns), window, output in zip(chunk, windows, model_output):
            # the valid centre of this tile, in the window's output pixels and in the whole output
            top, left = (rows.start - rows.window_start) * factor, (columns.start - columns.window_start) * factor
            height_out, width_out = (rows.stop - rows.start) * factor, (columns.stop - columns.start) * factor
            centre = output[:, top : top + height_out, left : left + width_out]  # (num_channels, h_out, w_out)
            out_rows = slice(rows.start * factor, rows.stop * factor)
            out_columns = slice(columns.start * factor, columns.stop * factor)
            if on_luma:
                if upsampling == "pre":  # Cb, Cr: the bicubic input the model saw, without its margin
                    chroma = window[1:, top : top + height_out, left : left + width_out]
                else:
                    chroma = bicubic.window(
                        working[index, 1:], (out_rows.start, out_rows.stop), (out_columns.start, out_columns.stop)
                    )
                centre = ycbcr_to_rgb(torch.cat([centre, chroma]))  # (3, h_out, w_out)
            elif gray_as_rgb:
                centre = rgb_to_gray(centre.clamp(0, 1))  # (1, h_out, w_out)
            result[index, :, out_rows, out_columns] = centre.clamp(0, 1)
    return result


def _run_model(model: nn.Module, model_input: torch.Tensor, factor: int) -> torch.Tensor:
    """model(model_input), with errors that say what went wrong in terms of the image."""
    height, width = model_input.shape[-2:]
    if model_input.device.type == "cpu":
        # oneDNN's convolutions run about 1.5x faster on channels-last input on a CPU.
        model_input = model_input.contiguous(memory_format=torch.channels_last)
    try:
        output = model(model_input).contiguous()
    except RuntimeError as error:
        if any(fragment in str(error) for fragment in _TOO_SMALL_ERRORS):
            raise ValueError(
                f"the image is too small for this model: its layers cannot take a {height} x {width} input "
                f"(PyTorch said: {str(error).splitlines()[0]})"
            ) from error
        raise
    expected = (model_input.shape[0], model_input.shape[1], height * factor, width * factor)
    if tuple(output.shape) != expected:
        raise ValueError(
            f"for a {height} x {width} input the model returned shape {tuple(output.shape)}, but "
            f"upscale expected {expected}. Do model.upsampling and model.scale describe it? A model "
            "whose convolutions have no padding shrinks the image and cannot be used here."
        )
    return output
