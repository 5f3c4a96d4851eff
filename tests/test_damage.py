"""The damage of the course's second part: seeded, size-keeping, and honest about its masks."""

from __future__ import annotations

import pytest
import torch

from sr_teach.damage import (
    apply_damage_in_tiles,
    dusk,
    fold_lines,
    holes,
    scratches,
    watermark,
)
from sr_teach.images import load_sample

MASKED = {
    "scratches": lambda image, generator: scratches(image, generator=generator),
    "fold_lines": lambda image, generator: fold_lines(image, generator=generator),
    "rectangles": lambda image, generator: holes(image, "rectangles", generator=generator),
    "strokes": lambda image, generator: holes(image, "strokes", generator=generator),
    "watermark": lambda image, generator: watermark(image, generator=generator),
}


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_sample("astronaut")[:, 100:228, 150:310]  # (3, 128, 160)


@pytest.mark.parametrize("name", MASKED)
def test_masked_damage_touches_only_its_mask_and_repeats_with_its_seed(photo, name) -> None:
    damaged, mask = MASKED[name](photo, torch.Generator().manual_seed(1))
    assert damaged.shape == photo.shape and mask.shape == (1, *photo.shape[-2:])
    assert damaged.min() >= 0 and damaged.max() <= 1 and mask.min() >= 0 and mask.max() <= 1
    assert 0.001 < float(mask.mean()) < 0.5, "some pixels are damaged, most are not"
    untouched = (mask == 0).expand_as(photo)
    assert torch.equal(damaged[untouched], photo[untouched])
    assert (damaged - photo).abs()[(mask > 0.2).expand_as(photo)].mean() > 0.05
    again, same_mask = MASKED[name](photo, torch.Generator().manual_seed(1))
    other, other_mask = MASKED[name](photo, torch.Generator().manual_seed(2))
    assert torch.equal(again, damaged) and torch.equal(same_mask, mask)
    assert not torch.equal(other_mask, mask)


def test_holes_are_filled_with_the_fill_value(photo) -> None:
    damaged, mask = holes(photo, "rectangles", count=2, fill=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.all(damaged[mask.expand_as(photo) == 1] == 0.5)
    with pytest.raises(ValueError, match="rectangles"):
        holes(photo, "circles")


def test_watermark_opacity_stays_in_its_range(photo) -> None:
    _, mask = watermark(photo, "TEST", opacity_range=(0.4, 0.4), generator=torch.Generator().manual_seed(3))
    assert 0.35 < float(mask.max()) <= 0.4 + 1e-6  # antialiased glyphs: the opacity at their core


def test_dusk_darkens_warms_and_vignettes(photo) -> None:
    evening = dusk(photo)
    assert torch.equal(dusk(photo, strength=0), photo.clamp(0, 1))
    assert evening.mean() < photo.mean() - 0.05
    red_to_blue = lambda image: float(image[0].mean() / image[2].mean())  # noqa: E731
    assert red_to_blue(evening) > red_to_blue(photo) * 1.2
    flat = dusk(torch.full((1, 33, 33), 0.5))
    assert flat[0, 16, 16] > flat[0, 0, 0] + 0.05  # the corners darker than the centre
    with pytest.raises(ValueError, match="strength"):
        dusk(photo, strength=2)


def test_damage_in_tiles_draws_each_tile_at_the_size_of_a_patch(photo) -> None:
    gray = photo[:1, :96, :144]  # (1, 96, 144): 2 x 3 tiles of 48
    damaged, mask = apply_damage_in_tiles("holes", gray, 48, torch.Generator().manual_seed(0), count=1, max_fraction=0.25)
    assert damaged.shape == gray.shape and mask.shape == (1, 96, 144)
    for top in (0, 48):
        for left in (0, 48, 96):
            tile = mask[0, top:top + 48, left:left + 48]
            assert 0 < float(tile.mean()) <= 0.25**2, "one hole per tile, at most a quarter of its side"
    untouched = mask == 0
    assert torch.equal(damaged[untouched], gray[untouched])
    again, _ = apply_damage_in_tiles("holes", gray, 48, torch.Generator().manual_seed(0), count=1, max_fraction=0.25)
    assert torch.equal(again, damaged)
    with pytest.raises(ValueError, match="tile_size"):
        apply_damage_in_tiles("holes", gray, 0)
