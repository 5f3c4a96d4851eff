"""Augmentation: one random choice, applied to LR and HR alike, keeping them aligned."""

from __future__ import annotations

import math

import pytest
import torch

from sr_teach.augmentation import (
    AugmentChoice,
    AugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    adjust_hue,
    apply_geometric,
    apply_photometric,
    apply_photometric_batch,
    draw_augmentation,
    hflip,
    hue_rotation_matrix,
    largest_rotated_rectangle,
    rot90,
    rotate,
    vflip,
)
from sr_teach.degradations import downscale
from sr_teach.images import rgb_to_luma, rgb_to_ycbcr, ycbcr_to_rgb

SCALE = 3


def smooth_image(channels: int = 3, height: int = 24, width: int = 30, seed: int = 0) -> torch.Tensor:
    """A random but smooth image in [0.2, 0.8] (away from the clamp), (C, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, height // 3, width // 3, generator=generator)
    image = torch.nn.functional.interpolate(
        coarse, size=(height, width), mode="bilinear", align_corners=False
    )[0]
    return 0.2 + 0.6 * image


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def augment_both(lr_image, hr_image, config: AugmentConfig, generator: torch.Generator):
    """One draw applied to LR and HR alike: what the sampler does to a pair (rotation aside)."""
    choice = draw_augmentation(config, generator)
    return tuple(apply_photometric(apply_geometric(image, choice), choice) for image in (lr_image, hr_image))


@pytest.mark.parametrize(
    "transform",
    [
        hflip,
        vflip,
        lambda image: rot90(image, 1),
        lambda image: rot90(image, 2),
        lambda image: rot90(image, 3),
    ],
    ids=["hflip", "vflip", "rot90", "rot180", "rot270"],
)
def test_exact_transforms_commute_with_the_bicubic_downscale(transform):
    hr_image = smooth_image(height=24, width=30)  # not square, so a quarter turn changes the shape
    lr_image = downscale(hr_image, SCALE)
    torch.testing.assert_close(downscale(transform(hr_image), SCALE), transform(lr_image), atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", range(8))
def test_augment_pair_keeps_the_lr_the_downscale_of_the_hr(seed):
    hr_image = smooth_image(seed=seed)
    lr_image = downscale(hr_image, SCALE)
    config = AugmentConfig(hflip=True, vflip=True, rot90=True)
    lr_augmented, hr_augmented = augment_both(lr_image, hr_image, config, generator(seed))
    torch.testing.assert_close(downscale(hr_augmented, SCALE), lr_augmented, atol=1e-6, rtol=0)


def test_flips_and_quarter_turns_reach_all_eight_symmetries():
    config = AugmentConfig(hflip=True, vflip=True, rot90=True)
    image = torch.arange(4.0).reshape(1, 2, 2)
    shared = generator(1)
    seen = set()
    for _ in range(200):
        lr_augmented, _ = augment_both(
            image, image.repeat_interleave(2, -1).repeat_interleave(2, -2), config, shared
        )
        seen.add(tuple(lr_augmented.flatten().tolist()))
    assert len(seen) == 8


def test_draws_are_reproducible_and_independent_of_other_switches():
    config = AugmentConfig(hflip=True, vflip=True, rot90=True, brightness=0.3, gamma=0.2)
    assert draw_augmentation(config, generator(5)) == draw_augmentation(config, generator(5))
    without_brightness = AugmentConfig(hflip=True, vflip=True, rot90=True, gamma=0.2)
    first, second = (
        draw_augmentation(config, generator(5)),
        draw_augmentation(without_brightness, generator(5)),
    )
    assert (first.hflip, first.vflip, first.rot90_turns, first.gamma) == (
        second.hflip,
        second.vflip,
        second.rot90_turns,
        second.gamma,
    )
    assert second.brightness_factor == 1.0


def test_an_off_config_changes_nothing():
    hr_image = smooth_image()
    lr_image = downscale(hr_image, SCALE)
    lr_augmented, hr_augmented = augment_both(lr_image, hr_image, AugmentConfig(), generator())
    assert torch.equal(lr_augmented, lr_image) and torch.equal(hr_augmented, hr_image)


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(brightness=0.5),
        AugmentConfig(contrast=0.5),
        AugmentConfig(hue=90),
        AugmentConfig(gamma=0.5),
    ],
    ids=["brightness", "contrast", "hue", "gamma"],
)
def test_photometric_jitter_is_identical_on_both(config):
    colour = torch.tensor([0.6, 0.4, 0.3])[:, None, None]
    lr_image, hr_image = colour.expand(3, 5, 5).clone(), colour.expand(3, 15, 15).clone()
    lr_augmented, hr_augmented = augment_both(lr_image, hr_image, config, generator(3))
    assert not torch.allclose(lr_augmented, lr_image, atol=1e-3), "the jitter should have changed the colour"
    assert torch.equal(lr_augmented[:, :1, :1].expand_as(lr_augmented), lr_augmented)  # still one colour
    torch.testing.assert_close(hr_augmented[:, :5, :5], lr_augmented, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "adjust, value",
    [(adjust_brightness, 1.2), (adjust_contrast, 0.7), (adjust_hue, 40.0)],
    ids=["brightness", "contrast", "hue"],
)
def test_affine_jitter_commutes_with_the_downscale(adjust, value):
    hr_image = 0.5 + 0.25 * (smooth_image() - 0.5)  # pale colours: nothing reaches the clamp
    torch.testing.assert_close(
        downscale(adjust(hr_image, value), SCALE),
        adjust(downscale(hr_image, SCALE), value),
        atol=1e-5,
        rtol=0,
    )


def test_hue_rotation_matches_the_ycbcr_steps_and_keeps_luma():
    image = smooth_image()
    # The three steps written out, against the single matrix.
    ycbcr = rgb_to_ycbcr(image.double())
    angle = math.radians(25)
    blue, red = ycbcr[1] - 128 / 255, ycbcr[2] - 128 / 255
    turned = torch.stack(
        [
            ycbcr[0],
            math.cos(angle) * blue - math.sin(angle) * red + 128 / 255,
            math.sin(angle) * blue + math.cos(angle) * red + 128 / 255,
        ]
    )
    expected = ycbcr_to_rgb(turned).clamp(0, 1).float()
    torch.testing.assert_close(adjust_hue(image, 25.0), expected, atol=1e-6, rtol=0)
    unclamped = torch.einsum("ij,jhw->ihw", hue_rotation_matrix(25.0).float(), image)
    torch.testing.assert_close(rgb_to_luma(unclamped), rgb_to_luma(image), atol=1e-6, rtol=0)
    torch.testing.assert_close(adjust_hue(image, 360.0), image, atol=1e-6, rtol=0)
    gray = torch.full((3, 4, 4), 0.37)
    torch.testing.assert_close(adjust_hue(gray, 77.0), gray, atol=1e-6, rtol=0)
    assert torch.equal(adjust_hue(image[:1], 30.0), image[:1])  # a Y image has no hue


def test_gamma_moves_midtones_only():
    values = torch.tensor([0.0, 0.25, 1.0]).reshape(1, 1, 3)
    torch.testing.assert_close(adjust_gamma(values, 2.0), torch.tensor([0.0, 0.0625, 1.0]).reshape(1, 1, 3))


def test_batch_photometric_equals_a_loop():
    batch = torch.stack([smooth_image(seed=seed) for seed in range(4)])
    config = AugmentConfig(brightness=0.3, contrast=0.3, hue=30, gamma=0.3)
    choices = [draw_augmentation(config, generator(seed)) for seed in range(4)]
    expected = torch.stack([apply_photometric(image, choice) for image, choice in zip(batch, choices)])
    torch.testing.assert_close(apply_photometric_batch(batch, choices), expected, atol=1e-6, rtol=0)


def test_rotate_by_quarter_turns_equals_rot90():
    image = torch.rand(3, 8, 8, generator=generator())
    torch.testing.assert_close(rotate(image, 90.0), rot90(image, 1), atol=1e-5, rtol=0)  # counter-clockwise
    torch.testing.assert_close(rotate(image, 180.0), rot90(image, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(image, -90.0), rot90(image, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(image, 0.0), image, atol=1e-6, rtol=0)


def test_rotate_crops_the_largest_valid_rectangle():
    assert largest_rotated_rectangle(100, 100, 0) == (100, 100)
    assert largest_rotated_rectangle(100, 100, 45) == (70, 70)  # 100 / sqrt(2)
    assert largest_rotated_rectangle(100, 60, 90) == (60, 60)  # the frame limits it
    image = torch.rand(1, 40, 40, generator=generator())
    assert rotate(image, 30.0).shape == (1, *largest_rotated_rectangle(40, 40, 30.0))
    assert rotate(image, 30.0).shape == (1, 29, 29)  # 40 / (cos 30 + sin 30) = 29.3
    assert rotate(image, 30.0, crop=False).shape == image.shape


def test_rotate_takes_one_angle_per_image():
    batch = torch.rand(3, 1, 12, 12, generator=generator())
    angles = torch.tensor([10.0, -20.0, 33.0])
    expected = torch.stack([rotate(image, float(angle), crop=False) for image, angle in zip(batch, angles)])
    torch.testing.assert_close(rotate(batch, angles, crop=False), expected, atol=1e-6, rtol=0)


def test_a_drawn_rotation_crops_to_the_largest_rectangle():
    hr_image = smooth_image(height=30, width=30)
    choice = draw_augmentation(AugmentConfig(rotate_degrees=20), generator())
    assert 0 < abs(choice.rotate_degrees) <= 20
    rotated = rotate(hr_image, choice.rotate_degrees)
    assert rotated.shape[-2:] == largest_rotated_rectangle(30, 30, choice.rotate_degrees)
    with pytest.raises(ValueError, match="one per image"):
        rotate(torch.rand(2, 1, 8, 8), torch.tensor([1.0, 2.0]), crop=True)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="brightness"):
        AugmentConfig(brightness=1.5)
    with pytest.raises(ValueError, match="rotate_degrees"):
        AugmentConfig(rotate_degrees=-5)
    with pytest.raises(ValueError, match="gamma"):
        AugmentConfig(gamma=-0.1)
    assert AugmentConfig(hflip=True).is_geometric_only and not AugmentConfig(hue=5).is_geometric_only
    assert AugmentChoice() == draw_augmentation(AugmentConfig(), generator())


@pytest.mark.parametrize("height, width", [(40, 40), (30, 50), (50, 20)])
@pytest.mark.parametrize("degrees", [5.0, 30.0, 45.0, -60.0, 100.0])
def test_the_rotated_rectangle_lies_inside_the_rotated_image(height, width, degrees):
    new_height, new_width = largest_rotated_rectangle(height, width, degrees)
    angle = math.radians(degrees)
    for x in (-new_width / 2, new_width / 2):
        for y in (-new_height / 2, new_height / 2):
            # Turn each corner back into the input's frame: it must be inside the input.
            back_x = x * math.cos(angle) - y * math.sin(angle)
            back_y = x * math.sin(angle) + y * math.cos(angle)
            assert abs(back_x) <= width / 2 + 1e-9 and abs(back_y) <= height / 2 + 1e-9
    assert new_height <= height and new_width <= width
