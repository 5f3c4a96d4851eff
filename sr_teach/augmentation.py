"""Augmentation: more training pairs from the same photos, without breaking the LR/HR correspondence.

A network learns where each LR pixel's detail lies in the HR image, so every random choice (flip or
not, which angle, how much brighter) is drawn once (`draw_augmentation`) and applied to LR and HR
alike, as BasicSR does. Flips and quarter turns (the 8 symmetries of the square) move whole pixels
and commute exactly with MATLAB's symmetric shrink, which is why the SR papers use only those. A
free rotation resamples the image, so it belongs to the HR before degrading. Brightness, contrast
and hue are affine colour maps here (hue turns the CbCr plane, keeping Y), so they commute with the
linear shrink up to clipping; gamma, a curve, does not. `sr_teach.data.PatchSampler` applies each
where it is exact. Images are (C, H, W) or (B, C, H, W) floats in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr_teach.images import rgb_to_ycbcr


@dataclass
class AugmentConfig:
    """Which augmentations to draw, and how strong; 0 or False switches one off (the default)."""

    hflip: bool = False  # mirror left-right with probability 1/2: exact; photos have no preferred side
    vflip: bool = False  # mirror top-bottom with probability 1/2: exact; with the others, all 8 symmetries
    rot90: bool = False  # turn by 0, 90, 180 or 270 degrees, equally likely: exact, no resampling
    rotate_degrees: float = 0.0  # any angle in [-d, d]: resamples and crops, so HR before degrading only
    brightness: float = 0.0  # multiply by a factor in [1 - b, 1 + b]: robustness to exposure
    contrast: float = 0.0  # stretch about mid-gray by a factor in [1 - c, 1 + c]
    hue: float = 0.0  # rotate the CbCr plane by up to +-hue degrees: new colours, the same luma Y
    gamma: float = 0.0  # exponent in [1 / (1 + g), 1 + g], log-uniform: darker or lighter mid-tones

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 (off) and 1, not {value}")
        if not 0.0 <= self.rotate_degrees <= 180.0:
            raise ValueError(f"rotate_degrees must be between 0 (off) and 180, not {self.rotate_degrees}")
        if not 0.0 <= self.hue <= 180.0:
            raise ValueError(f"hue must be between 0 (off) and 180 degrees, not {self.hue}")
        if self.gamma < 0.0:
            raise ValueError(f"gamma must be 0 (off) or positive, not {self.gamma}")

    @property
    def is_geometric_only(self) -> bool:
        """True when every augmentation that is on is an exact symmetry (flips, quarter turns)."""
        return self.rotate_degrees == 0 and not self.has_photometric

    @property
    def has_photometric(self) -> bool:
        """True when brightness, contrast, hue or gamma jitter is on."""
        return any(value > 0 for value in (self.brightness, self.contrast, self.hue, self.gamma))


@dataclass
class AugmentChoice:
    """One draw of the random choices of an `AugmentConfig`: applied to LR and HR alike."""

    hflip: bool = False
    vflip: bool = False
    rot90_turns: int = 0  # quarter turns, counter-clockwise
    rotate_degrees: float = 0.0  # counter-clockwise
    brightness_factor: float = 1.0
    contrast_factor: float = 1.0
    hue_degrees: float = 0.0
    gamma: float = 1.0


def draw_augmentation(config: AugmentConfig, generator: torch.Generator) -> AugmentChoice:
    """Draw every random choice of `config` from `generator`.

    Always 8 numbers are drawn, whatever is switched on, so switching one augmentation on or off
    does not change the draws of the others (nor, in the sampler, which patches are cut).
    """
    uniform = torch.rand(8, generator=generator, dtype=torch.float64).tolist()  # each in [0, 1)
    symmetric = [2.0 * u - 1.0 for u in uniform]  # each in [-1, 1)
    return AugmentChoice(
        hflip=config.hflip and uniform[0] < 0.5,
        vflip=config.vflip and uniform[1] < 0.5,
        rot90_turns=int(uniform[2] * 4) if config.rot90 else 0,
        rotate_degrees=config.rotate_degrees * symmetric[3],
        brightness_factor=1.0 + config.brightness * symmetric[4],
        contrast_factor=1.0 + config.contrast * symmetric[5],
        hue_degrees=config.hue * symmetric[6],
        gamma=(1.0 + config.gamma) ** symmetric[7],
    )


# ----- geometric: exact -----


def hflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (the last axis)."""
    return image.flip(-1)


def vflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom (the second-to-last axis)."""
    return image.flip(-2)


def rot90(image: torch.Tensor, turns: int = 1) -> torch.Tensor:
    """Rotate by `turns` quarter turns counter-clockwise (as displayed); H and W swap for odd turns."""
    return torch.rot90(image, turns % 4, dims=(-2, -1))


def apply_geometric(image: torch.Tensor, choice: AugmentChoice) -> torch.Tensor:
    """Apply the exact transforms of `choice`, in a fixed order: hflip, vflip, quarter turns."""
    if choice.hflip:
        image = hflip(image)
    if choice.vflip:
        image = vflip(image)
    if choice.rot90_turns:
        image = rot90(image, choice.rot90_turns)
    return image


# ----- geometric: resampled -----


def largest_rotated_rectangle(height: int, width: int, degrees: float) -> tuple[int, int]:
    """(height, width) of the largest axis-aligned rectangle inside an image rotated by `degrees`.

    The rectangle is centred; outside it the rotated image would show its corners' empty triangles.
    For a square of side s it has side s / (|cos| + |sin|): 0.71 s at 45 degrees.
    """
    angle = math.radians(degrees)
    sin_angle, cos_angle = abs(math.sin(angle)), abs(math.cos(angle))
    long_side, short_side = max(height, width), min(height, width)
    if short_side <= 2.0 * sin_angle * cos_angle * long_side or abs(sin_angle - cos_angle) < 1e-10:
        # Thin image or 45 degrees: two corners of the rectangle touch the long sides.
        half = 0.5 * short_side
        along_long, along_short = half / sin_angle, half / cos_angle
        new_height, new_width = (along_short, along_long) if width >= height else (along_long, along_short)
    else:
        cos_double = cos_angle**2 - sin_angle**2
        new_width = (width * cos_angle - height * sin_angle) / cos_double
        new_height = (height * cos_angle - width * sin_angle) / cos_double
    # A whisker below the exact value, so that 0 degrees keeps the full size despite rounding; and
    # never more than the frame (a non-square image turned by 90 degrees).
    return min(height, math.floor(new_height + 1e-6)), min(width, math.floor(new_width + 1e-6))


def rotate(image: torch.Tensor, degrees: float | torch.Tensor, crop: bool = True) -> torch.Tensor:
    """Rotate counter-clockwise about the centre by any angle, with bilinear resampling.

    With crop=True the result is the largest axis-aligned rectangle free of empty corners (see
    `largest_rotated_rectangle`), so it is smaller than the input; with crop=False it keeps the
    input's size and the corners are filled by mirroring. Bilinear sampling blurs a little: a
    rotated HR target is slightly softer than a photo (one reason the SR papers skip this).
    `degrees` may also be a (B,) tensor, one angle per image of a batch (then crop must be False).
    """
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    batch = image if image.dim() == 4 else image[None]  # (B, C, H, W)
    height, width = batch.shape[-2:]
    angles = torch.deg2rad(torch.as_tensor(degrees, dtype=batch.dtype, device=batch.device)).reshape(-1)
    if angles.numel() not in (1, batch.shape[0]) or (angles.numel() > 1 and crop):
        raise ValueError(f"{angles.numel()} angles for {batch.shape[0]} images (one, or one per image with "
                         "crop=False: each angle crops differently)")
    cosine, sine = angles.cos(), angles.sin()
    zero = torch.zeros_like(angles)
    # affine_grid maps each output pixel to the input point it samples, in coordinates normalised to
    # [-1, 1] on each axis; the aspect ratios keep the rotation rigid on non-square images.
    theta = torch.stack(
        [
            torch.stack([cosine, -sine * height / width, zero], dim=-1),
            torch.stack([sine * width / height, cosine, zero], dim=-1),
        ],
        dim=-2,
    ).expand(batch.shape[0], 2, 3)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)  # (B, H, W, 2)
    rotated = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if crop:
        rotated = center_crop(rotated, *largest_rotated_rectangle(height, width, float(degrees)))
    return rotated if image.dim() == 4 else rotated[0]


# ----- crops -----


def crop(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The height x width window whose top-left pixel is (top, left); it must lie inside the image."""
    image_height, image_width = image.shape[-2:]
    if not (0 <= top and top + height <= image_height and 0 <= left and left + width <= image_width):
        raise ValueError(f"the window {height}x{width} at ({top}, {left}) does not fit in a "
                         f"{image_height}x{image_width} image")
    return image[..., top : top + height, left : left + width]


def center_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centred height x width window (rounding the offsets down)."""
    image_height, image_width = image.shape[-2:]
    return crop(image, (image_height - height) // 2, (image_width - width) // 2, height, width)


# ----- photometric -----
# Each takes one value for the image (or batch), or a (B,) tensor of values, one per image of a batch.


def _per_image(value: float | torch.Tensor, image: torch.Tensor) -> float | torch.Tensor:
    """A (B,) tensor of values as (B, 1, 1, 1), to broadcast over a (B, C, H, W) batch; a number as is."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        _check_one_per_image(value.shape[0], image)
        return value.to(image).reshape(-1, 1, 1, 1)
    return float(value)


def _check_one_per_image(count: int, image: torch.Tensor) -> None:
    if image.dim() != 4 or count != image.shape[0]:
        raise ValueError(f"{count} values need a batch of as many images, got shape {tuple(image.shape)}")


def adjust_brightness(image: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Multiply every value by `factor` (1 = unchanged), clamped to [0, 1]."""
    return (image * _per_image(factor, image)).clamp(0, 1)


def adjust_contrast(image: torch.Tensor, factor: float | torch.Tensor) -> torch.Tensor:
    """Stretch (factor > 1) or flatten (< 1) about mid-gray: 0.5 + factor (x - 0.5), clamped.

    torchvision pivots on the image's mean gray instead; a fixed pivot makes this the same affine
    map on the LR and the HR image, whose means differ slightly.
    """
    return (0.5 + _per_image(factor, image) * (image - 0.5)).clamp(0, 1)


# The linear part of MATLAB's rgb2ycbcr (YCbCr = matrix @ RGB + offset), read off images.rgb_to_ycbcr:
# column i is where pure red, green or blue goes, less where black goes.
_UNIT_COLOURS = torch.eye(3, dtype=torch.float64)[:, :, None, None]  # (3 colours, 3 channels, 1, 1)
_YCBCR_MATRIX = (rgb_to_ycbcr(_UNIT_COLOURS) - rgb_to_ycbcr(torch.zeros(3, 1, 1, dtype=torch.float64)))[
    ..., 0, 0
].T


def hue_rotation_matrix(degrees: float | torch.Tensor) -> torch.Tensor:
    """The RGB matrix of `adjust_hue`: to YCbCr, turn (Cb, Cr) about gray by `degrees`, back to RGB.

    The offsets of YCbCr cancel (gray has Cb = Cr = 128 / 255, the centre of the turn), so the three
    steps make one linear map, M = A^-1 R A: shape (3, 3), or (B, 3, 3) for a (B,) tensor of angles.
    """
    angles = torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float64))
    cosine, sine = angles.cos(), angles.sin()
    one, zero = torch.ones_like(angles), torch.zeros_like(angles)
    turn = torch.stack(
        [
            torch.stack([one, zero, zero], dim=-1),  # Y stays
            torch.stack([zero, cosine, -sine], dim=-1),  # Cb
            torch.stack([zero, sine, cosine], dim=-1),  # Cr
        ],
        dim=-2,
    )  # (3, 3) or (B, 3, 3)
    return torch.linalg.inv(_YCBCR_MATRIX) @ turn @ _YCBCR_MATRIX


def adjust_hue(image: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """Rotate the colour plane (Cb, Cr) of YCbCr by `degrees` about gray, keeping the luma Y; clamped.

    Chosen over the H of HSV because it is a linear map of RGB (so it commutes with resizing) and
    leaves Y, what the papers train and measure on, untouched. A 1-channel image is returned as is.
    """
    if image.shape[-3] == 1:
        return image
    matrix = hue_rotation_matrix(degrees).to(image)
    if matrix.dim() == 3:  # one matrix per image of the batch
        _check_one_per_image(matrix.shape[0], image)
        return torch.einsum("bij,bjhw->bihw", matrix, image).clamp(0, 1)
    return torch.einsum("ij,...jhw->...ihw", matrix, image).clamp(0, 1)


def adjust_gamma(image: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """x ** gamma: gamma < 1 lightens the mid-tones, > 1 darkens them; 0 and 1 stay put."""
    return image.clamp(0, 1) ** _per_image(gamma, image)


# Value changes in a fixed order: (field of AugmentChoice, its "no change" value, the adjustment).
PHOTOMETRIC_STEPS = (
    ("brightness_factor", 1.0, adjust_brightness),
    ("contrast_factor", 1.0, adjust_contrast),
    ("hue_degrees", 0.0, adjust_hue),
    ("gamma", 1.0, adjust_gamma),
)


def apply_photometric(image: torch.Tensor, choice: AugmentChoice) -> torch.Tensor:
    """Apply the value changes of `choice` to an image (or a whole batch): brightness, contrast, hue, gamma."""
    for name, neutral, adjust in PHOTOMETRIC_STEPS:
        if getattr(choice, name) != neutral:
            image = adjust(image, getattr(choice, name))
    return image


def apply_photometric_batch(batch: torch.Tensor, choices: list[AugmentChoice]) -> torch.Tensor:
    """`apply_photometric` with a different choice for each image of a (B, C, H, W) batch: the same as
    a loop over the images (up to float rounding), in one pass per adjustment."""
    if len(choices) != batch.shape[0]:
        raise ValueError(f"{len(choices)} choices for a batch of {batch.shape[0]} images")
    for name, neutral, adjust in PHOTOMETRIC_STEPS:
        values = [getattr(choice, name) for choice in choices]
        if any(value != neutral for value in values):
            batch = adjust(batch, torch.tensor(values, dtype=torch.float64))
    return batch
