"""Damage that keeps the size: the degradations of the course's second part, beside SR's shrinking.

Scratches and fold lines on old prints, holes to fill in (inpainting), watermarks, and a change of
look (day to dusk); noise and JPEG are in `degradations`. Each is a small function of one
(C, H, W) image in [0, 1] and a torch.Generator, so that a seed gives the same damage everywhere;
the ones that spoil a known region also return its mask, (1, H, W) with 1 where pixels were
spoiled: given to a network it makes inpainting; kept from it, blind repair. They compose, e.g.
`watermark(scratches(image, generator=g)[0], "sample", generator=g)`. Their sizes are fractions of the
image they are drawn on: `apply_damage_in_tiles` draws a whole photo's damage at a training patch's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _check_image(image: torch.Tensor) -> tuple[int, int]:
    if image.dim() != 3:
        raise ValueError(f"expected one image (C, H, W), got a tensor of shape {tuple(image.shape)}")
    return image.shape[-2], image.shape[-1]


def _paint(image: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor | float) -> torch.Tensor:
    """The image with `colour` where mask is 1, blended where it lies between 0 and 1."""
    return image * (1 - mask) + mask * colour


def _strokes_mask(height: int, width: int, strokes: list[list[tuple[float, float]]], line_width: int) -> torch.Tensor:
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for points in strokes:
        draw.line(points, fill=255, width=line_width, joint="curve")
    return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None]  # (1, H, W)


def _random_stroke(height: int, width: int, length: float, generator: torch.Generator | None,
                   bends: int = 4) -> list[tuple[float, float]]:
    """A wandering line of `bends` segments: a scratch or a brush stroke, not a ruler's line."""
    x, y = _uniform(generator, 0, width), _uniform(generator, 0, height)
    angle = _uniform(generator, 0, 2 * math.pi)
    points = [(x, y)]
    for _ in range(bends):
        angle += _uniform(generator, -0.5, 0.5)
        x, y = x + length / bends * math.cos(angle), y + length / bends * math.sin(angle)
        points.append((x, y))
    return points


def scratches(image: torch.Tensor, count: int = 6, width: int = 2,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Thin light scratches, as on an old print: `count` wandering strokes `width` pixels wide.

    Returns (damaged image, mask)."""
    height, image_width = _check_image(image)
    length = 0.6 * max(height, image_width)
    strokes = [_random_stroke(height, image_width, _uniform(generator, 0.3, 1.0) * length, generator)
               for _ in range(count)]
    mask = _strokes_mask(height, image_width, strokes, width)
    brightness = _uniform(generator, 0.8, 1.0)  # scratches take the emulsion off: near white
    return _paint(image, mask, brightness), mask


def fold_lines(image: torch.Tensor, count: int = 2, width: int = 3,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Straight creases from edge to edge, as where a print was folded: a light line with a darker rim.

    Returns (damaged image, mask)."""
    height, image_width = _check_image(image)
    lines = []
    for _ in range(count):
        if float(torch.rand((), generator=generator)) < 0.5:  # roughly vertical
            lines.append([(_uniform(generator, 0, image_width), 0.0), (_uniform(generator, 0, image_width), float(height))])
        else:  # roughly horizontal
            lines.append([(0.0, _uniform(generator, 0, height)), (float(image_width), _uniform(generator, 0, height))])
    crease = _strokes_mask(height, image_width, lines, width)
    rim = (_strokes_mask(height, image_width, lines, width + 4) - crease).clamp(0, 1)
    damaged = _paint(_paint(image, rim, image * 0.6), crease, 0.9)
    return damaged, (crease + rim).clamp(0, 1)


def holes(image: torch.Tensor, kind: str = "rectangles", count: int = 3, max_fraction: float = 0.25,
          fill: float = 0.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Missing regions to fill in (inpainting): `count` rectangles, or brush strokes, set to `fill`.

    Each rectangle's sides are up to `max_fraction` of the image's; a stroke is as wide as a tenth of
    that. Returns (damaged image, mask)."""
    height, width = _check_image(image)
    if kind == "rectangles":
        mask = torch.zeros(1, height, width)
        for _ in range(count):
            box_height = max(1, round(_uniform(generator, 0.3, 1.0) * max_fraction * height))
            box_width = max(1, round(_uniform(generator, 0.3, 1.0) * max_fraction * width))
            top = int(_uniform(generator, 0, height - box_height + 1))
            left = int(_uniform(generator, 0, width - box_width + 1))
            mask[:, top:top + box_height, left:left + box_width] = 1
    elif kind == "strokes":
        brush = max(2, round(max_fraction * min(height, width) / 3))
        strokes = [_random_stroke(height, width, max_fraction * 2 * max(height, width), generator) for _ in range(count)]
        mask = (_strokes_mask(height, width, strokes, brush) > 0).float()
    else:
        raise ValueError(f"kind is 'rectangles' or 'strokes', not {kind!r}")
    return _paint(image, mask, fill), mask


def watermark(image: torch.Tensor, text: str = "© sr_teach", opacity_range: tuple[float, float] = (0.3, 0.6),
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Semi-transparent white text at a random place, size and opacity (Pillow's own font).

    Returns (damaged image, mask); the mask holds each pixel's opacity, 0 where the image is untouched."""
    height, width = _check_image(image)
    size = max(8, round(_uniform(generator, 0.08, 0.2) * min(height, width)))
    font = ImageFont.load_default(size=size)
    text_mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(text_mask)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = _uniform(generator, -left, max(-left, width - right))
    y = _uniform(generator, -top, max(-top, height - bottom))
    draw.text((x, y), text, fill=255, font=font)
    opacity = _uniform(generator, *opacity_range)
    mask = torch.from_numpy(np.asarray(text_mask, dtype=np.float32) / 255)[None] * opacity  # (1, H, W)
    return _paint(image, mask, 1.0), mask


def dusk(image: torch.Tensor, strength: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A change of look learned from pairs: day to dusk, as a darker tone curve, a warmer colour
    temperature and a vignette. `strength` 0 leaves the image alone, 1 is the full change (nothing
    is random: `generator` is there only so that every damage is called alike).

    Real changes of season or weather have no such formula and no aligned pairs (the same view, in
    summer and in winter, from the same spot): they need unpaired methods such as CycleGAN (Zhu et
    al. 2017), which learn from two unmatched collections.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    height, width = _check_image(image)
    toned = image.clamp(0, 1) ** (1 + 0.8 * strength)  # a tone curve: midtones darker, black and white stay
    if image.shape[0] == 3:  # warmer: more red, less blue (about 6500 K towards 3500 K)
        warmth = torch.tensor([1 + 0.12 * strength, 1.0, 1 - 0.25 * strength]).view(3, 1, 1)
        toned = toned * warmth
    rows = torch.linspace(-1, 1, height).view(height, 1)
    columns = torch.linspace(-1, 1, width).view(1, width)
    vignette = 1 - 0.35 * strength * ((rows**2 + columns**2) / 2)  # (H, W): 1 at the centre
    return (toned * vignette).clamp(0, 1)


# Every damage by name, for DegradationConfig(damage=...): those with a mask, then the changes of look.
MASKED_DAMAGES: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "scratches": scratches, "fold_lines": fold_lines, "holes": holes, "watermark": watermark,
}
LOOKS: dict[str, Callable[..., torch.Tensor]] = {"dusk": dusk}
DAMAGES = (*MASKED_DAMAGES, *LOOKS)


def apply_damage(name: str, image: torch.Tensor, generator: torch.Generator | None = None,
                 **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Damage one (C, H, W) image by name with its keyword options: (damaged, mask), the mask (1, H, W)
    all zero for a change of look, which spoils no region."""
    if name in LOOKS:
        return LOOKS[name](image, generator=generator, **options), torch.zeros_like(image[:1])
    if name not in MASKED_DAMAGES:
        raise ValueError(f"unknown damage {name!r}; choose one of {', '.join(DAMAGES)}")
    return MASKED_DAMAGES[name](image, generator=generator, **options)


def apply_damage_in_tiles(name: str, image: torch.Tensor, tile_size: int, generator: torch.Generator | None = None,
                          **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Damage each tile_size x tile_size tile of one (C, H, W) image on its own (the last row and column
    of tiles may be smaller): (damaged, mask) as `apply_damage`.

    The sizes of holes, strokes and text are fractions of the image they are drawn on, so a network
    trained on patches of 48 pixels has seen holes a few pixels wide; damaging a whole photo in tiles
    of the patch size gives it damage of the size and density it learned, where damaging it at once
    would draw holes as wide as a fifth of the photo."""
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1:
        raise ValueError(f"tile_size must be a whole number of pixels, at least 1, not {tile_size!r}")
    height, width = _check_image(image)
    damaged, mask = image.clone(), torch.zeros_like(image[:1])
    for top in range(0, height, tile_size):
        for left in range(0, width, tile_size):
            tile = (slice(None), slice(top, top + tile_size), slice(left, left + tile_size))
            damaged[tile], mask[tile] = apply_damage(name, image[tile], generator, **options)
    return damaged, mask
