"""Regions: the square details that comparisons zoom into, and where to find the telling ones.

At full size bicubic and a network look alike; in a 64-pixel crop blown up on screen they do not.
So every comparison is about a `Region`, chosen by the learner or preset: the busiest details (where
enlargement methods disagree) and the place where one result gains most over another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sr_teach.images import rgb_to_gray


@dataclass(frozen=True)
class Region:
    """A square detail of an image: `size` x `size` pixels with its top-left corner at (top, left)."""

    top: int
    left: int
    size: int

    def clamped(self, height: int, width: int) -> Region:
        """The same region shrunk and moved, if needed, to lie inside a height x width image."""
        size = max(1, min(self.size, height, width))
        return Region(min(max(self.top, 0), height - size), min(max(self.left, 0), width - size), size)

    def scaled(self, factor: int) -> Region:
        """The region in an image `factor` times larger (LR -> SR coordinates)."""
        return Region(self.top * factor, self.left * factor, self.size * factor)

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (C, size, size), after clamping the region to the image."""
        region = self.clamped(*image.shape[-2:])
        return image[..., region.top : region.top + region.size, region.left : region.left + region.size]


def default_region_size(height: int, width: int) -> int:
    """An eighth of the shorter side (at least 8 pixels): small enough to show single pixels."""
    return max(8, min(height, width) // 8)


def choose_region(region: Region | str, presets: Mapping[str, Region], height: int, width: int) -> Region:
    """A Region, or the name of one of `presets`, clamped into a height x width image."""
    if isinstance(region, str):
        if region not in presets:
            raise ValueError(f"no region named {region!r}; the presets are {', '.join(presets)}")
        region = presets[region]
    return region.clamped(height, width)


def _window_scores(values: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
    """The mean of (H, W) `values` over size x size windows a quarter window apart: (scores, stride)."""
    stride = max(1, size // 4)
    scores = F.avg_pool2d(values[None, None], kernel_size=size, stride=stride)[0, 0]  # (h', w')
    return scores, stride


def _window_region(index: int, scores: torch.Tensor, stride: int, size: int) -> Region:
    """The region of window number `index` of `_window_scores` (counted row by row)."""
    return Region((index // scores.shape[1]) * stride, (index % scores.shape[1]) * stride, size)


def busiest_regions(image: torch.Tensor, size: int, count: int = 3) -> list[Region]:
    """The `count` non-overlapping size x size regions with the most detail (mean gradient magnitude).

    Detail is where enlargement methods differ: on a clear sky they all give the same blue.
    """
    height, width = image.shape[-2:]
    size = max(1, min(size, height, width))
    gray = rgb_to_gray(image.float())[0]  # (H, W)
    across = (gray[:, 1:] - gray[:, :-1]).abs()[:-1, :]  # (H-1, W-1)
    down = (gray[1:, :] - gray[:-1, :]).abs()[:, :-1]  # (H-1, W-1)
    energy = F.pad(across + down, (0, 1, 0, 1))  # (H, W)
    scores, stride = _window_scores(energy, size)
    chosen: list[Region] = []
    for index in scores.flatten().argsort(descending=True).tolist():
        candidate = _window_region(index, scores, stride, size)
        if all(abs(candidate.top - r.top) >= size or abs(candidate.left - r.left) >= size for r in chosen):
            chosen.append(candidate)
            if len(chosen) == count:
                break
    return chosen


def largest_gain_region(worse: torch.Tensor, better: torch.Tensor, reference: torch.Tensor, size: int) -> Region:
    """The size x size region where `better` gains most over `worse` in squared error to `reference`.

    Where a network helps is rarely uniform: mostly at edges and textures. This finds the place to
    look first (the other presets show typical places, so the view is not only the best case).
    """
    height, width = reference.shape[-2:]
    size = max(1, min(size, height, width))
    gain = ((worse - reference) ** 2 - (better - reference) ** 2).float().sum(dim=0)  # (H, W)
    scores, stride = _window_scores(gain, size)
    return _window_region(int(scores.flatten().argmax()), scores, stride, size)


def preset_regions(image: torch.Tensor, size: int, named: Mapping[str, Region] | None = None) -> dict[str, Region]:
    """Regions for a dropdown: the caller's named ones, the three busiest, and the centre."""
    height, width = image.shape[-2:]
    presets = dict(named or {})
    for number, region in enumerate(busiest_regions(image, size), start=1):
        presets[f"detail {number}"] = region
    presets["centre"] = Region((height - size) // 2, (width - size) // 2, size).clamped(height, width)
    return presets
