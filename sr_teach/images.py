"""Images as tensors: loading, saving and the colour conversions of the SR literature.

One layout everywhere in sr_teach: an image is a float32 tensor of shape (C, H, W) with values in
[0, 1], C = 3 for colour (RGB) and C = 1 for gray. A batch adds a leading dimension: (B, C, H, W).

The SR papers measure quality on the luma channel Y of MATLAB's `rgb2ycbcr` (ITU-R BT.601,
"studio swing": Y in 16..235 for 8-bit images), so that is the convention here, not JPEG's
full-range YCbCr that Pillow uses.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from sr_teach.files import write_atomically

# Pillow's modes that carry an alpha channel, and the gray-only modes.
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_GRAY_MODES = {"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "LA", "La"}


class ImageError(ValueError):
    """An image that cannot be used: unreadable, empty, truncated, too small, too big, or in an unknown range."""


MAX_PIXELS_VARIABLE = "SR_TEACH_MAX_PIXELS"  # `sr-teach ... --max-pixels N` sets it
# The default allows a 100-megapixel output twice over (8-bit RGB: 600 MB), and refuses what would
# not fit a laptop: a 13000 x 13000 PNG (190 KB when flat) enlarged x4 is 2.7 gigapixels.
DEFAULT_MAX_PIXELS = 200_000_000


def max_pixels() -> int:
    """The most pixels (height x width) an image read or made by sr_teach may have: $SR_TEACH_MAX_PIXELS
    if set (read at each call), else DEFAULT_MAX_PIXELS."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{MAX_PIXELS_VARIABLE}={text!r} is not a number of pixels; set it to one like 400000000")
    return int(value)


def check_pixels(height: float, width: float, what: str = "the image") -> None:
    """ImageError, before anything is allocated, if `what` would have more pixels than `max_pixels()`."""
    limit = max_pixels()
    if height * width > limit:
        raise ImageError(f"{what} is {width:,.0f} x {height:,.0f} = {_in_words(height * width)}, over the limit of "
                         f"{_in_words(limit)}; to allow more, set {MAX_PIXELS_VARIABLE} or pass --max-pixels (a "
                         "number of pixels)")


def _in_words(pixels: float) -> str:
    """2,704 megapixels, 1.5 megapixels or 441 pixels."""
    megapixels = pixels / 1e6
    if megapixels >= 10:
        return f"{megapixels:,.0f} megapixels"
    return f"{megapixels:.1f} megapixels" if megapixels >= 0.1 else f"{pixels:,.0f} pixels"


def load_image(path: str | os.PathLike, mode: str = "keep") -> torch.Tensor:
    """Read any image Pillow understands into a (C, H, W) float32 tensor in [0, 1].

    mode: "keep" gives 1 channel for gray files and 3 for everything else; "rgb" always gives 3
    (gray repeated); "gray" always gives 1 (full-range BT.601 luma, as Pillow's "L" mode).
    Transparent images are composited over white, as a viewer would show them. 16-bit files
    (mode I;16) keep their precision: 65535 maps to 1.0.

    >>> load_image(sample_path("astronaut")).shape
    torch.Size([3, 512, 512])
    """
    if mode not in ("keep", "rgb", "gray"):
        raise ValueError(f"mode must be 'keep', 'rgb' or 'gray', not {mode!r}")
    path = _image_file(path)
    image = decode_image(path, str(path))
    if mode == "rgb" and image.shape[0] == 1:
        image = image.expand(3, -1, -1).clone()
    elif mode == "gray" and image.shape[0] == 3:
        image = rgb_to_gray(image)
    return image


EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how the camera was held


def decode_image(source: str | os.PathLike | bytes, name: str = "it") -> torch.Tensor:
    """An image file, or its bytes (say an upload), as (C, H, W) in [0, 1], turned upright as its EXIF
    orientation says (phone photos); ImageError, naming the file `name`, if it cannot be used."""
    with _opened(source, name) as pil_image:
        pil_image.load()  # decode now, so a truncated file fails here and not later
        ImageOps.exif_transpose(pil_image, in_place=True)
        try:
            image = pil_to_tensor(pil_image)
        except ImageError as error:
            raise ImageError(f"{name}: {error}") from None
    if image.shape[-1] == 0 or image.shape[-2] == 0:
        raise ImageError(f"{name} has no pixels")
    return image


def _image_file(path: str | os.PathLike) -> Path:
    """`path`, if it is a file that is not empty; else an error that says what it is."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No image file at {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes)")
    return path


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file as `load_image` would give it, from its header alone."""
    path = _image_file(path)
    with _opened(path, str(path)) as pil_image:
        width, height = pil_image.size
        # Image.getexif reads what the header holds (PNG's own getexif would decode the pixels first)
        if Image.Image.getexif(pil_image).get(EXIF_ORIENTATION) in (5, 6, 7, 8):  # turned by 90 degrees
            width, height = height, width
    return height, width


@contextlib.contextmanager
def _opened(source: str | os.PathLike | bytes, name: str) -> Iterator[Image.Image]:
    """Pillow's image of a file or bytes, not decoded yet, its size within `max_pixels()`; Pillow's
    errors, here or in the `with` block, as one ImageError naming `name`."""
    limit = max_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own bomb check: it warns above this, refuses above twice it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixels says more
            with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as pil_image:
                check_pixels(pil_image.height, pil_image.width, name)
                yield pil_image
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name} is over {2 * limit / 1e6:,.0f} megapixels (a decompression bomb?): "
                         f"{error} To allow it, set {MAX_PIXELS_VARIABLE} or pass --max-pixels") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"{name} is not an image Pillow can read") from error
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow says "image file is truncated" or "broken data stream" for damaged files.
        raise ImageError(f"{name} could not be decoded (damaged or truncated?): {error}") from error


def pil_to_tensor(pil_image: Image.Image) -> torch.Tensor:
    """Convert a Pillow image of any mode to (C, H, W) float32 in [0, 1] (C = 1 or 3).

    Integer mode I and float mode F say nothing of their range, so it is read from the values
    (`_white_level`: 8- or 16-bit integers, 0..1 or 0..255 floats); 16-bit modes (I;16, and I
    from a 16-bit PGM/PPM) map 65535 to 1.
    """
    mode = pil_image.mode
    if mode == "P":
        # Palette images may hide transparency in the palette; expand it first.
        mode_after = "RGBA" if "transparency" in pil_image.info else "RGB"
        pil_image, mode = pil_image.convert(mode_after), mode_after
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(pil_image, dtype=np.float64)
        if mode == "F":
            white = _white_level(array, (1.0, 255.0), "floats")
        elif mode != "I" or pil_image.format == "PPM":  # Pillow scales a 16-bit PGM's maxval to 65535
            white = 65535.0
        else:
            white = _white_level(array, (255.0, 65535.0), "32-bit integers")
        return torch.from_numpy(np.clip(array / white, 0.0, 1.0)).float()[None]
    if mode in _ALPHA_MODES:
        gray = mode in _GRAY_MODES
        rgba = np.asarray(pil_image.convert("LA" if gray else "RGBA"), dtype=np.float64) / 255.0
        colour, alpha = rgba[..., :-1], rgba[..., -1:]
        array = colour * alpha + 1.0 * (1.0 - alpha)  # over a white background
        return torch.from_numpy(array).float().permute(2, 0, 1).contiguous()
    gray = mode in _GRAY_MODES
    if mode not in ("L", "RGB"):  # 1, CMYK, YCbCr, LAB, HSV
        pil_image = pil_image.convert("L" if gray else "RGB")
    levels = np.asarray(pil_image)  # (H, W) or (H, W, 3) uint8
    levels = np.array(levels[None] if gray else levels.transpose(2, 0, 1))  # (C, H, W): a 1-byte copy, not a float one
    return torch.from_numpy(levels).float().div_(255.0)


def _white_level(array: np.ndarray, levels: tuple[float, ...], values: str) -> float:
    """The white level of an image whose mode says nothing of its range (Pillow's I and F): the first
    of `levels` whose range 0..level holds every value; anything else is refused rather than guessed."""
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    for level in levels:
        if low >= 0 and high <= level:  # NaN fails too
            return level
    ranges = " nor ".join(f"0..{level:g}" for level in levels)
    raise ImageError(f"its {values} run from {low:,g} to {high:,g}, neither {ranges}; rescale it to one of those "
                     "(say as a 16-bit PNG) and try again")


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """Convert (C, H, W) in [0, 1] to an 8-bit Pillow image (L or RGB), rounding to nearest."""
    return Image.fromarray(to_uint8(image))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8 array, rounded like MATLAB's im2uint8."""
    assert image.dim() == 3 and image.shape[0] in (1, 3), (
        f"expected one image of shape (C, H, W) with C = 1 or 3, got {tuple(image.shape)}"
    )
    array = np.empty((image.shape[1], image.shape[2], image.shape[0]), dtype=np.uint8)
    for rows, stripe in _stripes(image):
        array[rows] = _levels(stripe)  # a stripe at a time: no float copy of the whole image
    return array[..., 0] if array.shape[-1] == 1 else array


def _levels(stripe: torch.Tensor) -> np.ndarray:
    """(C, rows, W) in [0, 1] -> (rows, W, C) uint8, rounded to nearest."""
    return (stripe.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _stripes(image: torch.Tensor, pixels: int = 1_000_000) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, image[..., rows, :]) for stripes of about `pixels` pixels, top to bottom."""
    step = max(1, pixels // max(1, image.shape[-1]))
    for start in range(0, image.shape[-2], step):
        yield slice(start, start + step), image[..., start : start + step, :]


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels an 8-bit file can hold (what saving and reloading a PNG would do)."""
    return (image.clamp(0, 1) * 255.0).round() / 255.0


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Save (C, H, W) in [0, 1] as an 8-bit PNG (or any format Pillow infers from the suffix).

    The file is written whole or not at all (`files.write_atomically`); with overwrite=False an
    existing file is an error.
    """
    return save_stripes((stripe for _, stripe in _stripes(image)), image.shape[-2], path, overwrite)


def save_stripes(stripes: Iterable[torch.Tensor], height: int, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Save an image that comes as stripes of rows, each (C, rows, W) in [0, 1], top to bottom, `height`
    rows in all: a PNG is compressed stripe by stripe (`write_png`), so the whole image is never in
    memory; other formats gather the 8-bit rows for Pillow. Otherwise as `save_image`."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"Cannot tell the image format from the suffix of {path} (use .png)")
    levels = (_levels(stripe) for stripe in stripes)  # (rows, W, C) uint8

    def write(file: BinaryIO) -> None:
        if image_format == "PNG":
            write_png(file, levels, height)
        else:
            array = np.concatenate(list(levels))  # (height, W, C) uint8, then Pillow's copy of it
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(file, format=image_format)

    return write_atomically(path, write, overwrite=overwrite)


def write_png(file: BinaryIO, stripes: Iterable[np.ndarray], height: int) -> None:
    """Write 8-bit rows as a PNG, one stripe (rows, W, C) at a time (C = 1 gray or 3 RGB).

    A PNG is a signature and chunks of (length, type, data, CRC-32): IHDR gives the size and pixel
    format, IDAT chunks carry one zlib stream of the rows, IEND closes. Each row starts with its
    filter type; filter 2 ("up") stores the row minus the row above, which compresses photos well.
    """
    def chunk(kind: bytes, data: bytes) -> None:
        file.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    compressor, above, rows_written = zlib.compressobj(6), None, 0
    for stripe in stripes:
        rows = stripe.reshape(len(stripe), -1)  # (rows, W * C)
        if above is None:
            file.write(b"\x89PNG\r\n\x1a\n")
            colour_type = {1: 0, 3: 2}[stripe.shape[2]]  # gray or RGB, 8 bits each
            chunk(b"IHDR", struct.pack(">IIBBBBB", stripe.shape[1], height, 8, colour_type, 0, 0, 0))
            above = np.zeros_like(rows[:1])
        up = rows - np.concatenate([above, rows[:-1]])  # uint8 arithmetic wraps modulo 256, as PNG's does
        compressed = compressor.compress(np.concatenate([np.full((len(rows), 1), 2, np.uint8), up], axis=1))
        if compressed:
            chunk(b"IDAT", compressed)
        above, rows_written = rows[-1:], rows_written + len(rows)
    if rows_written != height or height == 0:
        raise ValueError(f"the stripes held {rows_written} rows, not the {height} the image should have")
    chunk(b"IDAT", compressor.flush())
    chunk(b"IEND", b"")


@dataclass(frozen=True)
class ImageKind:
    """How an image came in, so that a result can go back as the same kind (see `to_tensor`)."""

    container: str  # "pil", "numpy" or "tensor"
    dtype: Any = None  # the NumPy or torch dtype (uint8 results are rounded back to 0..255)
    device: Any = None  # a tensor's device
    batched: bool = False  # a tensor batch (B, C, H, W) rather than one (C, H, W) image
    no_channel_axis: bool = False  # a NumPy (H, W) gray image


def to_tensor(image: Image.Image | np.ndarray | torch.Tensor) -> tuple[torch.Tensor, ImageKind]:
    """Any image as a (B, C, H, W) float batch in [0, 1] (B = 1 unless a batch came in), and its kind.

    A PIL image of any mode; a NumPy (H, W) or (H, W, C) array of uint8 or floats in [0, 1]; a tensor
    (C, H, W) or (B, C, H, W), uint8 or float in [0, 1]. C is 1 (gray) or 3 (RGB). Float64 stays float64.
    """
    if isinstance(image, Image.Image):
        return pil_to_tensor(image)[None], ImageKind("pil")
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] not in (1, 3) and image.shape[0] in (1, 3):
            raise ValueError(f"a NumPy image is (H, W) or (H, W, C) with C = 1 or 3; shape {image.shape} looks "
                             "like (C, H, W): use array.transpose(1, 2, 0)")
        if image.ndim not in (2, 3):
            raise ValueError(f"a NumPy image is (H, W) or (H, W, C), got shape {image.shape}")
        kind = ImageKind("numpy", image.dtype, no_channel_axis=image.ndim == 2)
        batch = torch.from_numpy(np.ascontiguousarray(image if image.ndim == 3 else image[:, :, None]))
        batch = batch.permute(2, 0, 1)[None]  # (1, C, H, W)
    elif isinstance(image, torch.Tensor):
        if image.ndim not in (3, 4):
            raise ValueError(f"a tensor image must be (C, H, W) or a batch (B, C, H, W), got shape {tuple(image.shape)}")
        kind = ImageKind("tensor", image.dtype, image.device, batched=image.ndim == 4)
        batch = image.detach() if image.ndim == 4 else image.detach()[None]
    else:
        raise TypeError(f"expected a PIL image, a NumPy array or a torch tensor, not {type(image).__name__}")
    if batch.shape[1] not in (1, 3):
        layout = "(H, W, C)" if kind.container == "numpy" else "(C, H, W)"
        hint = " (RGBA? composite or drop the alpha channel first)" if batch.shape[1] == 4 else ""
        raise ValueError(f"an image must have 1 (gray) or 3 (RGB) channels, but shape {tuple(image.shape)} read "
                         f"as {layout} has {batch.shape[1]}{hint}")
    if batch.dtype == torch.uint8:
        batch = batch.float() / 255.0
    elif not batch.is_floating_point():
        raise ValueError(f"an image must be uint8 (0..255) or float (0..1), got dtype {batch.dtype}; "
                         "for 16-bit images divide by 65535.0 first")
    elif batch.dtype != torch.float64:
        batch = batch.float()
    if min(batch.shape[-2:]) == 0 or batch.numel() == 0:
        raise ValueError(f"the image is empty: shape {tuple(image.shape)}")
    low, high = batch.min().item(), batch.max().item()
    if not (-1e-3 <= low and high <= 1 + 1e-3):  # NaN fails too
        raise ValueError(f"float images must hold values in [0, 1], but this one spans [{low:g}, {high:g}]; "
                         "divide an image in 0..255 by 255")
    return batch, kind


def to_image(batch: torch.Tensor, kind: ImageKind) -> Image.Image | np.ndarray | torch.Tensor:
    """A (B, C, H, W) batch in [0, 1] back as the kind of image `to_tensor` was given."""
    if kind.container == "pil":
        return tensor_to_pil(batch[0])
    uint8 = kind.dtype in (np.uint8, torch.uint8)
    if uint8:
        batch = (batch.clamp(0, 1) * 255.0).round()
    if kind.container == "tensor":
        batch = batch.to(device=kind.device, dtype=kind.dtype)
        return batch if kind.batched else batch[0]
    array = batch[0].permute(1, 2, 0).cpu().numpy().astype(kind.dtype)  # (H, W, C)
    return array[:, :, 0] if kind.no_channel_axis else array


# MATLAB rgb2ycbcr for images in [0, 1]: Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255.
_RGB_TO_YCBCR = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=torch.float64
) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_YCBCR_TO_RGB = torch.linalg.inv(_RGB_TO_YCBCR)  # MATLAB's ycbcr2rgb, computed once


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB -> YCbCr as MATLAB's rgb2ycbcr (BT.601, Y in [16, 235] / 255), over (..., 3, H, W)."""
    assert image.shape[-3] == 3, f"rgb_to_ycbcr needs 3 channels, got shape {tuple(image.shape)}"
    matrix, offset = _RGB_TO_YCBCR.to(image), _YCBCR_OFFSET.to(image)
    return _by_stripes(image, lambda rgb: torch.einsum("ij,...jhw->...ihw", matrix, rgb) + offset[:, None, None])


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_ycbcr` (MATLAB's ycbcr2rgb), over (..., 3, H, W); not clamped."""
    assert image.shape[-3] == 3, f"ycbcr_to_rgb needs 3 channels, got shape {tuple(image.shape)}"
    inverse, offset = _YCBCR_TO_RGB.to(image), _YCBCR_OFFSET.to(image)
    return _by_stripes(image, lambda ycbcr: torch.einsum("ij,...jhw->...ihw", inverse, ycbcr - offset[:, None, None]))


def _by_stripes(image: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """transform(image) for a per-pixel transform, a stripe of rows at a time on a big image: its
    temporaries are then a stripe's, not the whole image's (a 24 MP photo's are 290 MB each)."""
    if image.shape[-2] * image.shape[-1] <= 1_000_000:
        return transform(image)
    result = torch.empty_like(image)
    for rows, stripe in _stripes(image):
        result[..., rows, :] = transform(stripe)
    return result


def rgb_to_gray(image: torch.Tensor) -> torch.Tensor:
    """Full-range gray, 0.299 R + 0.587 G + 0.114 B (Pillow's "L"): (..., 3, H, W) -> (..., 1, H, W).

    Unlike `rgb_to_luma`, a gray image stored as RGB comes back exactly as its gray values.
    """
    if image.shape[-3] == 1:
        return image
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
    return torch.einsum("c,...chw->...hw", weights, image).unsqueeze(-3)


def rgb_to_luma(image: torch.Tensor) -> torch.Tensor:
    """The Y channel the SR literature measures on: (..., 3, H, W) -> (..., 1, H, W).

    A gray image (1 channel) is returned unchanged: the benchmark scripts of the papers only convert
    images that have three channels.
    """
    if image.shape[-3] == 1:
        return image
    return rgb_to_ycbcr(image)[..., :1, :, :]


def data_folder() -> Path:
    """The folder of the bundled demo photos (works from a clone, an editable or a wheel install)."""
    packaged = Path(__file__).parent / "data"  # where the wheel puts them
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "data"  # a clone or an editable install


def sample_names() -> list[str]:
    """Names of the bundled CC0/public-domain photos, e.g. ["astronaut", "camera", ...]."""
    return sorted(p.stem for p in data_folder().iterdir() if p.suffix.lower() in (".png", ".jpg"))


def sample_path(name: str) -> Path:
    """Path of a bundled photo by name (see `sample_names`)."""
    for suffix in (".png", ".jpg"):
        candidate = data_folder() / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    raise ValueError(f"No bundled image {name!r}; choose one of {sample_names()}")


def load_sample(name: str, mode: str = "keep") -> torch.Tensor:
    """Load a bundled photo by name as (C, H, W) in [0, 1]."""
    return load_image(sample_path(name), mode=mode)
