"""Images as tensors: loading, saving and the colour conversions of the SR literature.

One layout everywhere in sr_teach: an image is a float32 tensor of shape (C, H, W) with values in
[0, 1], C = 3 for colour (RGB) and C = 1 for gray. A batch adds a leading dimension: (B, C, H, W).

The SR papers measure quality on the luma channel Y of MATLAB's `rgb2ycbcr` (ITU-R BT.601,
"studio swing": Y in 16..235 for 8-bit images), so that is the convention here, not JPEG's
full-range YCbCr that Pillow uses.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from sr_teach.files import write_atomically

# Pillow's modes that carry an alpha channel, and the gray-only modes.
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_GRAY_MODES = {"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "LA", "La"}


class ImageError(ValueError):
    """An image file that exists but cannot be used: unreadable, empty, truncated or too small."""


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
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No image file at {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes)")
    image = decode_image(path, str(path))
    if mode == "rgb" and image.shape[0] == 1:
        image = image.expand(3, -1, -1).clone()
    elif mode == "gray" and image.shape[0] == 3:
        image = rgb_to_gray(image)
    return image


def decode_image(source: str | os.PathLike | bytes, name: str = "it") -> torch.Tensor:
    """An image file, or its bytes (say an upload), as (C, H, W) in [0, 1]; ImageError, using `name`
    for the file, if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as pil_image:
            pil_image.load()  # decode now, so a truncated file fails here and not later
            image = pil_to_tensor(pil_image)
    except UnidentifiedImageError as error:
        raise ImageError(f"{name} is not an image Pillow can read") from error
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow says "image file is truncated" or "broken data stream" for damaged files.
        raise ImageError(f"{name} could not be decoded (damaged or truncated?): {error}") from error
    if image.shape[-1] == 0 or image.shape[-2] == 0:
        raise ImageError(f"{name} has no pixels")
    return image


def pil_to_tensor(pil_image: Image.Image) -> torch.Tensor:
    """Convert a Pillow image of any mode to (C, H, W) float32 in [0, 1] (C = 1 or 3)."""
    mode = pil_image.mode
    if mode == "P":
        # Palette images may hide transparency in the palette; expand it first.
        mode_after = "RGBA" if "transparency" in pil_image.info else "RGB"
        pil_image, mode = pil_image.convert(mode_after), mode_after
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(pil_image, dtype=np.float64) / 65535.0
        return torch.from_numpy(np.clip(array, 0.0, 1.0)).float()[None]
    if mode == "F":
        return torch.from_numpy(np.clip(np.asarray(pil_image, dtype=np.float64), 0.0, 1.0)).float()[None]
    if mode in _ALPHA_MODES:
        gray = mode in _GRAY_MODES
        rgba = np.asarray(pil_image.convert("LA" if gray else "RGBA"), dtype=np.float64) / 255.0
        colour, alpha = rgba[..., :-1], rgba[..., -1:]
        array = colour * alpha + 1.0 * (1.0 - alpha)  # over a white background
        return torch.from_numpy(array).float().permute(2, 0, 1).contiguous()
    if mode in _GRAY_MODES:
        array = np.asarray(pil_image.convert("L"), dtype=np.float32) / 255.0
        return torch.from_numpy(array)[None]
    array = np.asarray(pil_image.convert("RGB"), dtype=np.float32) / 255.0  # RGB, CMYK, YCbCr, LAB, HSV
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """Convert (C, H, W) in [0, 1] to an 8-bit Pillow image (L or RGB), rounding to nearest."""
    return Image.fromarray(to_uint8(image))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8 array, rounded like MATLAB's im2uint8."""
    assert image.dim() == 3 and image.shape[0] in (1, 3), (
        f"expected one image of shape (C, H, W) with C = 1 or 3, got {tuple(image.shape)}"
    )
    array = (image.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels an 8-bit file can hold (what saving and reloading a PNG would do)."""
    return (image.clamp(0, 1) * 255.0).round() / 255.0


def save_image(image: torch.Tensor, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Save (C, H, W) in [0, 1] as an 8-bit PNG (or any format Pillow infers from the suffix).

    The file is written whole or not at all (`files.write_atomically`); with overwrite=False an
    existing file is an error.
    """
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"Cannot tell the image format from the suffix of {path} (use .png)")
    pil_image = tensor_to_pil(image)
    write_atomically(path, lambda file: pil_image.save(file, format=image_format), overwrite=overwrite)
    return path


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


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB -> YCbCr as MATLAB's rgb2ycbcr (BT.601, Y in [16, 235] / 255), over (..., 3, H, W)."""
    assert image.shape[-3] == 3, f"rgb_to_ycbcr needs 3 channels, got shape {tuple(image.shape)}"
    matrix, offset = _RGB_TO_YCBCR.to(image), _YCBCR_OFFSET.to(image)
    return torch.einsum("ij,...jhw->...ihw", matrix, image) + offset[:, None, None]


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_ycbcr` (MATLAB's ycbcr2rgb), over (..., 3, H, W); not clamped."""
    assert image.shape[-3] == 3, f"ycbcr_to_rgb needs 3 channels, got shape {tuple(image.shape)}"
    inverse = torch.linalg.inv(_RGB_TO_YCBCR).to(image)
    return torch.einsum("ij,...jhw->...ihw", inverse, image - _YCBCR_OFFSET.to(image)[:, None, None])


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
