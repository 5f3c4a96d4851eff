"""Ambiguity: many sharp images shrink to the same small one, and their average is blurry.

Why a network trained with the MSE loss gives soft results: for one low-resolution (LR) image there
are many high-resolution (HR) images that shrink to it, and the image with the smallest mean squared
error to all of them is their average, whose differing details cancel out. `plausible_candidates`
builds such a family: the bicubic enlargement of the LR image plus the detail (high frequencies) of
other photos, each pulled onto {x : shrink(x) = LR} by iterative back-projection (Irani and Peleg
1991). `against_candidates` measures any image (the average, a network's output) against them.
Shrinking is MATLAB's bicubic `imresize` (`sr_teach.interpolation.resize`), as the published tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sr_teach.interpolation import resize


@dataclass
class CandidateConfig:
    """How `plausible_candidates` builds and projects its images."""

    # Largest |shrink(candidate) - LR| allowed, on the [0, 1] scale: 1e-6 is 1/4000 of an 8-bit gray
    # level, so every candidate stored as an 8-bit LR file gives exactly the same file.
    tolerance: float = 1e-6
    # Back-projection usually reaches 1e-6 in 20 to 40 steps at x4; a candidate still short of the
    # tolerance after this many is an error rather than a silently wrong "same LR" claim.
    max_iterations: int = 500
    # RMS of the borrowed detail, on the [0, 1] scale; None keeps each source's own. Photos differ in
    # how much detail they hold (a blurry patch lends almost none), so equal amounts make fair rivals.
    detail_rms: float | None = None
    # Clip every step to [0, 1] (projection onto the valid pixel values, alternating with the LR
    # constraint), so each candidate is an image a file could hold.
    keep_in_range: bool = True


@dataclass
class BackProjection:
    """The result of `back_project`: the image, how many corrections it took, how close it came."""

    image: torch.Tensor  # (C, H, W) float64
    iterations: int
    max_error: float  # max |shrink(image) - lr_image| on the [0, 1] scale


def _check_size(image: torch.Tensor, scale: int) -> None:
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    if scale < 2 or image.shape[-2] % scale or image.shape[-1] % scale:
        raise ValueError(f"the image's height and width ({tuple(image.shape[-2:])}) must be multiples of the "
                         f"scale {scale} (at least 2): crop it first, e.g. with sr_teach.degradations.mod_crop")


def shrink_linear(image: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB's bicubic shrink by `scale` without the final clip to [0, 1], in float64: a linear map,
    (..., H, W) -> (..., H / scale, W / scale). On images whose shrink stays in [0, 1] it equals
    `sr_teach.degradations.downscale`."""
    _check_size(image, scale)
    size = (image.shape[-2] // scale, image.shape[-1] // scale)
    return resize(image.to(torch.float64), size=size, method="bicubic", clamp=False)


def enlarge_linear(lr_image: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB's bicubic enlargement by `scale`, unclipped, in float64: (..., h, w) -> (..., scale h, scale w)."""
    size = (lr_image.shape[-2] * scale, lr_image.shape[-1] * scale)
    return resize(lr_image.to(torch.float64), size=size, method="bicubic", clamp=False)


def high_frequencies(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The detail that a shrink by `scale` loses: image - enlarge(shrink(image)), same shape, float64."""
    return image.to(torch.float64) - enlarge_linear(shrink_linear(image, scale), scale)


def back_project(
    image: torch.Tensor, lr_image: torch.Tensor, scale: int, config: CandidateConfig | None = None
) -> BackProjection:
    """Correct `image` (C, H, W) until it shrinks to `lr_image` (C, H / scale, W / scale).

    Iterative back-projection (Irani and Peleg 1991): shrink the guess, enlarge the error with
    bicubic and add it back, x <- x + enlarge(lr - shrink(x)), clipped to [0, 1] if asked; repeat
    until max |lr - shrink(x)| <= config.tolerance. Raises a ValueError if it never gets there.
    """
    config = config or CandidateConfig()
    _check_size(image, scale)
    if lr_image.shape != (*image.shape[:-2], image.shape[-2] // scale, image.shape[-1] // scale):
        raise ValueError(f"an image of shape {tuple(image.shape)} shrinks x{scale} to "
                         f"{(*image.shape[:-2], image.shape[-2] // scale, image.shape[-1] // scale)}, "
                         f"not to the LR image's {tuple(lr_image.shape)}")
    lr_image = lr_image.to(torch.float64)
    guess = image.to(torch.float64)
    for iteration in range(config.max_iterations + 1):
        error = lr_image - shrink_linear(guess, scale)  # (C, h, w)
        max_error = float(error.abs().max())
        if max_error <= config.tolerance:
            return BackProjection(guess, iteration, max_error)
        guess = guess + enlarge_linear(error, scale)  # (C, H, W)
        if config.keep_in_range:
            guess = guess.clamp(0, 1)
    raise ValueError(f"back-projection stopped {max_error:.2e} away from the LR image after "
                     f"{config.max_iterations} steps (tolerance {config.tolerance:g}); raise max_iterations, "
                     "or check that the LR image lies in [0, 1]")


def random_patches(
    images: Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator
) -> torch.Tensor:
    """`count` square crops of size x size, the i-th from images[i % len(images)] at a position drawn
    from `generator`: (count, C, size, size). All images need the same number of channels C."""
    if not images or count < 1:
        raise ValueError("random_patches needs at least one image and count >= 1")
    if len({image.shape[0] for image in images}) != 1:
        raise ValueError("the images must have the same number of channels (convert them all to gray, or to Y)")
    patches = []
    for index in range(count):
        image = images[index % len(images)]  # (C, H, W)
        height, width = image.shape[-2:]
        if min(height, width) < size:
            raise ValueError(f"image {index % len(images)} is {height} x {width}, smaller than a {size} x {size} patch")
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        patches.append(image[:, top : top + size, left : left + size])
    return torch.stack(patches).to(torch.float64)


def plausible_candidates(
    lr_image: torch.Tensor, scale: int, detail_sources: torch.Tensor, config: CandidateConfig | None = None
) -> torch.Tensor:
    """One HR candidate per detail source, each shrinking to `lr_image`: (K, C, scale h, scale w), float64.

    lr_image: (C, h, w) in [0, 1]; detail_sources: (K, C, scale h, scale w), patches of other photos.
    Candidate k starts as bicubic(lr_image) + the high frequencies of source k (rescaled to
    config.detail_rms if given), and is then back-projected onto shrink(x) = lr_image.
    """
    config = config or CandidateConfig()
    if lr_image.dim() != 3 or detail_sources.dim() != 4:
        raise ValueError(f"expected lr_image (C, h, w) and detail_sources (K, C, H, W), got shapes "
                         f"{tuple(lr_image.shape)} and {tuple(detail_sources.shape)}")
    expected = (lr_image.shape[0], lr_image.shape[1] * scale, lr_image.shape[2] * scale)
    if tuple(detail_sources.shape[1:]) != expected:
        raise ValueError(f"each detail source must be {expected} (the HR size of the LR image), "
                         f"got {tuple(detail_sources.shape[1:])}")
    start = enlarge_linear(lr_image, scale)  # (C, H, W): the smooth part all candidates share
    candidates = []
    for source in detail_sources:
        detail = high_frequencies(source, scale)  # (C, H, W)
        if config.detail_rms is not None:
            rms = float(detail.pow(2).mean().sqrt())
            detail = detail * (config.detail_rms / rms) if rms > 0 else detail
        guess = (start + detail).clamp(0, 1) if config.keep_in_range else start + detail
        candidates.append(back_project(guess, lr_image, scale, config).image)
    return torch.stack(candidates)


def gradient_energy(images: torch.Tensor) -> torch.Tensor:
    """How sharp an image is: the mean squared difference between neighbouring pixels, across and
    down, summed; one value per image, (B, C, H, W) -> (B,) (a (C, H, W) image gives a 0-d tensor).
    Blur lowers it, detail and noise raise it."""
    batch = images if images.dim() == 4 else images[None]
    batch = batch.to(torch.float64)
    across = (batch[..., :, 1:] - batch[..., :, :-1]).pow(2).mean(dim=(1, 2, 3))
    down = (batch[..., 1:, :] - batch[..., :-1, :]).pow(2).mean(dim=(1, 2, 3))
    energy = across + down  # (B,)
    return energy if images.dim() == 4 else energy[0]


@dataclass
class CandidateScores:
    """How one image relates to a family of candidates (`against_candidates`)."""

    psnr: torch.Tensor  # (K,) dB against each candidate (+inf against itself)
    # The mean over candidates of the MSE: what an MSE loss would average if each candidate were the
    # truth equally often. The average of the candidates has the smallest possible value.
    mean_squared_distance: float
    gradient_energy: float  # its sharpness (`gradient_energy`)

    @property
    def expected_psnr(self) -> float:
        """10 log10(1 / mean_squared_distance): the PSNR that the mean squared distance stands for."""
        return math.inf if self.mean_squared_distance == 0 else -10 * math.log10(self.mean_squared_distance)


def against_candidates(image: torch.Tensor, candidates: torch.Tensor) -> CandidateScores:
    """PSNR against each candidate, mean squared distance to them and sharpness of a (C, H, W) image;
    candidates: (K, C, H, W) in [0, 1]."""
    if candidates.dim() != 4 or image.shape != candidates.shape[1:]:
        raise ValueError(f"expected an image (C, H, W) and candidates (K, C, H, W) of the same size, got "
                         f"{tuple(image.shape)} and {tuple(candidates.shape)}")
    squared_errors = (candidates.to(torch.float64) - image.to(torch.float64)).pow(2).mean(dim=(1, 2, 3))  # (K,)
    return CandidateScores(psnr=-10 * torch.log10(squared_errors),
                           mean_squared_distance=float(squared_errors.mean()),
                           gradient_energy=float(gradient_energy(image)))
