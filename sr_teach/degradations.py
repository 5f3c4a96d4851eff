"""Degradations: how we make low-quality inputs from good images, to teach a network to undo them.

SR training pairs are made, not found: take a high-resolution (HR) photo, degrade it (shrink it,
perhaps blur it, add noise or JPEG artefacts) and ask the network to recover the original. The
degradation defines the task: a network trained on MATLAB-bicubic shrinking learns to undo exactly
that, and does worse on images shrunk another way (notebook 02 measures how much).

All functions take (C, H, W) or (B, C, H, W) tensors in [0, 1] and return the same layout.
"""

from __future__ import annotations

import io
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from sr_teach.damage import DAMAGES, MASKED_DAMAGES, apply_damage, apply_damage_in_tiles
from sr_teach.images import ImageError, pil_to_tensor, rgb_to_gray, tensor_to_pil
from sr_teach.interpolation import resize

DOWNSCALE_METHODS = ("bicubic", "pil_bicubic", "torch_bicubic", "torch_bilinear", "torch_area", "nearest")


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom and right edges so height and width are multiples of `scale`.

    The benchmark protocol crops from the top-left corner, so that LR pixel (i, j) covers exactly
    HR pixels (scale i .. scale i + scale - 1, same for j).
    """
    height, width = image.shape[-2:]
    if height < scale or width < scale:
        raise ImageError(f"an image of {height}x{width} pixels is too small for scale {scale}")
    return image[..., : height - height % scale, : width - width % scale]


def check_scale(scale: float) -> int:
    """Return `scale` as an int if it is a whole factor >= 1, else raise a clear ValueError.

    Scale 1 is restoration without enlargement (denoising, JPEG artefacts): the same recipe, with a
    degradation that spoils pixels instead of removing them.
    """
    if (isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale)
            or scale != int(scale) or scale < 1):
        raise ValueError(f"scale must be a whole number of at least 1 (1 = same size, 2, 3, 4, 8, ...), not {scale!r}")
    return int(scale)


def downscale(image: torch.Tensor, scale: int, method: str = "bicubic") -> torch.Tensor:
    """Make the low-resolution image: mod-crop to a multiple of `scale`, then shrink by 1/scale.

    "bicubic" is MATLAB's antialiased `imresize`, the protocol of the published tables; the other
    methods (see DOWNSCALE_METHODS) are there to show how much the choice of kernel matters.
    """
    scale = check_scale(scale)
    if method not in DOWNSCALE_METHODS:
        raise ValueError(f"unknown downscale method {method!r}; choose one of {', '.join(DOWNSCALE_METHODS)}")
    if scale == 1:  # nothing to shrink (Pillow's kernel would still round the image to 8 bits)
        return image.clone()
    hr_image = mod_crop(image, scale)
    size = (hr_image.shape[-2] // scale, hr_image.shape[-1] // scale)
    return resize(hr_image, size=size, method=method)


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """A normalised 2-D Gaussian, size x size (default: the odd size covering +-3 sigma), float64."""
    if size is None:
        size = 2 * max(1, round(3 * sigma)) + 1
    coordinates = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    profile = torch.exp(-(coordinates**2) / (2 * sigma**2))
    kernel = torch.outer(profile, profile)
    return kernel / kernel.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur with a Gaussian of standard deviation `sigma` pixels (mirrored borders)."""
    if sigma <= 0:
        return image.clone()
    kernel = gaussian_kernel(sigma).to(image)
    batch = image if image.dim() == 4 else image[None]
    channels = batch.shape[1]
    pad = kernel.shape[-1] // 2
    if pad >= min(batch.shape[-2:]):
        raise ImageError(f"image of {tuple(batch.shape[-2:])} pixels is too small to blur with sigma {sigma}")
    padded = F.pad(batch, (pad, pad, pad, pad), mode="reflect")
    weight = kernel.expand(channels, 1, *kernel.shape)
    blurred = F.conv2d(padded, weight, groups=channels)
    return blurred if image.dim() == 4 else blurred[0]


def gaussian_noise(
    image: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None, clip: bool = True
) -> torch.Tensor:
    """Add white Gaussian noise; `sigma` is on the 0..255 scale as in denoising papers (e.g. 25), one
    number or one per image of a batch. clip=False keeps values outside [0, 1], as the published
    denoising tables do (a camera clips; their test scripts do not)."""
    sigma = torch.as_tensor(sigma, dtype=image.dtype)
    if sigma.dim() == 1:  # one sigma per image: (B,) -> (B, 1, 1, 1)
        sigma = sigma.view(-1, *[1] * (image.dim() - 1))
    noise = torch.randn(image.shape, generator=generator, dtype=image.dtype) * (sigma / 255.0)
    noisy = image + noise.to(image.device)
    return noisy.clamp(0, 1) if clip else noisy


def jpeg_compress(image: torch.Tensor, quality: int | Sequence[int]) -> torch.Tensor:
    """Encode as JPEG at `quality` (1-95) with Pillow and decode again: blocking and ringing artefacts.
    A gray image is encoded as gray (one channel, as the JPEG tables do); a batch may have one quality per image."""
    if image.dim() == 4:
        qualities = [quality] * len(image) if isinstance(quality, numbers.Number) else list(quality)
        return torch.stack([jpeg_compress(single, each) for single, each in zip(image, qualities)])
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be between 1 and 95, not {quality}")
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        decoded.load()
        return pil_to_tensor(decoded).to(image.device)


@dataclass
class DegradationConfig:
    """How an HR image becomes its LR input: the classical model, blur, shrink, noise, JPEG."""

    method: str = "bicubic"  # the shrinking kernel; "bicubic" = MATLAB imresize, the published protocol
    blur_sigma: float = 0.0  # Gaussian blur of the HR before shrinking, in HR pixels; 0 = none
    # Gaussian noise on the LR, on the 0..255 scale (as denoising papers); 0 = none; (low, high) = a
    # sigma drawn for each image (blind denoising: the network is not told which)
    noise_sigma: float | tuple[float, float] = 0.0
    noise_clip: bool = True  # clip the noisy image to [0, 1]; the published denoising tables do not
    # JPEG-compress the LR at this quality (1-95); (low, high) = drawn for each image; None = no compression
    jpeg_quality: int | tuple[int, int] | None = None
    # Damage that keeps the size, by name in sr_teach.damage.DAMAGES ("scratches", "holes", "watermark",
    # "dusk", ...), with its keyword options, e.g. {"kind": "strokes"}; applied before noise and JPEG.
    damage: str | None = None
    damage_options: dict[str, Any] = field(default_factory=dict)
    # Draw the damage tile by tile at this size (its sizes are fractions of what it is drawn on), so
    # whole validation photos get the damage of the training patches; None = the whole image at once.
    damage_tile: int | None = None
    grayscale: bool = False  # the input loses its colour (full-range gray): colourisation
    mask_input: bool = False  # the damage's mask goes to the network as one more channel: inpainting, not repair

    def __post_init__(self) -> None:
        if self.method not in DOWNSCALE_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(DOWNSCALE_METHODS)}")
        self.noise_sigma = _setting("noise_sigma", self.noise_sigma, 0, 255)
        if self.blur_sigma < 0:
            raise ValueError("blur_sigma must be 0 (off) or positive")
        if self.jpeg_quality is not None:
            self.jpeg_quality = _setting("jpeg_quality", self.jpeg_quality, 1, 95, whole=True)
        if self.damage is not None and self.damage not in DAMAGES:
            raise ValueError(f"unknown damage {self.damage!r}; choose one of {', '.join(DAMAGES)} (or None)")
        if self.mask_input and self.damage not in MASKED_DAMAGES:
            raise ValueError(f"mask_input needs a damage that has a mask: one of {', '.join(MASKED_DAMAGES)}")


def _setting(name: str, value: Any, low: float, high: float, whole: bool = False) -> Any:
    """A number in [low, high], or a (low, high) range of them (lists, as JSON gives back, become tuples)."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    kind = "whole numbers" if whole else "numbers"
    if (len(values) not in (1, 2) or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
            or any(not low <= v <= high or (whole and v != int(v)) for v in values) or values != tuple(sorted(values))):
        raise ValueError(f"{name} must be one of the {kind} from {low} to {high}, or a range (low, high) of them, "
                         f"not {value!r}")
    return values if len(values) == 2 else values[0]


def draw_setting(value: float | tuple[float, float], count: int, generator: torch.Generator | None,
                 whole: bool = False) -> list[float]:
    """`count` values: the value itself, or uniform draws from a (low, high) range (whole numbers if asked)."""
    if not isinstance(value, tuple):
        return [value] * count
    low, high = value
    if whole:
        return torch.randint(int(low), int(high) + 1, (count,), generator=generator).tolist()
    return (low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)).tolist()


def shrink(hr_image: torch.Tensor, scale: int, config: DegradationConfig | None = None) -> torch.Tensor:
    """The part of a degradation that changes the size: blur (if asked), then `downscale`."""
    config = config or DegradationConfig()
    blurred = gaussian_blur(hr_image, config.blur_sigma) if config.blur_sigma > 0 else hr_image
    return downscale(blurred, scale, config.method)


def corrupt(
    lr_image: torch.Tensor, config: DegradationConfig | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The part that spoils pixels without changing the size: damage, gray, noise, JPEG (each if asked),
    then the damage's mask as one more channel if the network is to be told where it is."""
    config = config or DegradationConfig()
    if lr_image.dim() == 3:
        return corrupt(lr_image[None], config, generator)[0]
    count = len(lr_image)
    masks = None
    if config.damage is not None:
        damaged = [apply_damage(config.damage, image, generator, **config.damage_options) if config.damage_tile is None
                   else apply_damage_in_tiles(config.damage, image, config.damage_tile, generator, **config.damage_options)
                   for image in lr_image]
        lr_image = torch.stack([image for image, _ in damaged])
        masks = torch.stack([mask for _, mask in damaged]).to(lr_image)  # (B, 1, H, W)
    if config.grayscale:
        lr_image = rgb_to_gray(lr_image)  # (B, 1, H, W)
    if config.noise_sigma != 0:
        sigmas = torch.tensor(draw_setting(config.noise_sigma, count, generator))  # one per image
        lr_image = gaussian_noise(lr_image, sigmas, generator, clip=config.noise_clip)
    if config.jpeg_quality is not None:
        lr_image = jpeg_compress(lr_image, draw_setting(config.jpeg_quality, count, generator, whole=True))
    return torch.cat([lr_image, masks], dim=1) if config.mask_input else lr_image


def degrade(
    hr_image: torch.Tensor, scale: int, config: DegradationConfig | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The classical degradation model: blur, shrink, add noise, compress (in that order)."""
    return corrupt(shrink(hr_image, scale, config), config, generator)
