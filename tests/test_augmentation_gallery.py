"""Tests for sr_teach.widgets.augmentation_gallery: the transform examples, the gallery's draws and its view."""

from __future__ import annotations

import pytest
import torch

from sr_teach.augmentation import (
    AugmentChoice,
    AugmentConfig,
    adjust_contrast,
    adjust_gamma,
    apply_geometric,
    center_crop,
    rotate,
)
from sr_teach.degradations import downscale
from sr_teach.widgets.augmentation_gallery import (
    AugmentationGallery,
    AugmentationGalleryView,
    as_jpeg,
    describe,
    display_image,
    gallery_figure,
    transform_examples,
)

FLIPS = AugmentConfig(hflip=True, vflip=True, rot90=True)


def test_display_image_is_a_small_square() -> None:
    image = display_image("chelsea", size=96)
    assert image.shape == (3, 96, 96)
    assert 0 <= float(image.min()) and float(image.max()) <= 1


def test_transform_examples_cover_every_transform() -> None:
    image = display_image("astronaut", size=60)
    examples = dict(transform_examples(image, torch.Generator().manual_seed(0)))
    assert len(examples) == 12
    assert torch.equal(examples["hflip"], image.flip(-1))
    assert torch.equal(examples["vflip"], image.flip(-2))
    assert torch.equal(examples["rot90, 1 turn"], torch.rot90(image, 1, dims=(-2, -1)))
    assert examples["rotate 25°, cropped"].shape[-1] < 60  # the empty corners are cut away
    assert examples["random crop"].shape == examples["centre crop"].shape == (3, 40, 40)
    assert torch.equal(examples["centre crop"], center_crop(image, 40, 40))
    assert torch.equal(examples["gamma 2"], adjust_gamma(image, 2.0))
    figure = gallery_figure(list(examples.items()))
    assert len(figure.axes) == 12
    assert as_jpeg(figure).data.startswith(b"\xff\xd8")


def test_describe() -> None:
    assert describe(AugmentChoice()) == "unchanged (this draw changed nothing)"
    text = describe(AugmentChoice(hflip=True, rot90_turns=2, brightness_factor=1.25))
    assert text == "mirrored left-right, 2 quarter turns, brightness x1.25"


def test_same_seed_same_draws() -> None:
    first, second = AugmentationGallery(seed=3), AugmentationGallery(seed=3)
    for _ in range(3):
        first.new_draw()
        second.new_draw()
    assert first.choice == second.choice
    assert torch.equal(first.augmented, second.augmented)
    assert torch.equal(first.hr_patch, second.hr_patch)


def test_new_draw_changes_the_choice() -> None:
    gallery = AugmentationGallery()
    before = gallery.choice
    gallery.new_draw()
    assert gallery.draw_count == 2
    assert gallery.choice != before


def test_changing_the_config_replays_the_same_draw() -> None:
    gallery = AugmentationGallery()
    brightness, angle = gallery.choice.brightness_factor, gallery.choice.rotate_degrees
    gallery.update(hflip=False, vflip=False, rot90=False)
    assert not gallery.choice.hflip and gallery.choice.rot90_turns == 0
    assert gallery.choice.brightness_factor == brightness  # the other draws did not move
    assert gallery.choice.rotate_degrees == angle
    gallery.update(brightness=0.0)
    assert gallery.choice.brightness_factor == 1.0
    assert gallery.draw_count == 1


def test_geometric_augmentation_is_exact_on_the_pair() -> None:
    gallery = AugmentationGallery(config=FLIPS)
    for _ in range(4):
        gallery.new_draw()
        assert gallery.pair_difference < 1e-6
        assert "exactly" in gallery.pair_message


def test_photometric_augmentation_is_close_but_not_exact_on_the_pair() -> None:
    gallery = AugmentationGallery(config=AugmentConfig(contrast=0.3))
    assert 0 < gallery.pair_difference < 0.2
    assert 0 < gallery.pair_fraction_off < 0.5
    assert "clipping" in gallery.pair_message


def test_patches_are_aligned_crops_of_the_same_draw() -> None:
    gallery = AugmentationGallery(config=FLIPS, patch_size=16)
    assert gallery.lr_patch.shape == (3, 16, 16)
    assert gallery.hr_patch.shape == (3, 48, 48)
    # With exact augmentations, the LR patch is the shrunk HR patch away from the patch's edges
    # (where shrinking the patch alone sees mirrored pixels instead of the photo's).
    shrunk = downscale(gallery.hr_patch, 3)
    assert torch.allclose(shrunk[:, 3:-3, 3:-3], gallery.lr_patch[:, 3:-3, 3:-3], atol=1e-5)


def test_the_photo_is_rotated_then_flipped_then_adjusted() -> None:
    config = AugmentConfig(hflip=True, rot90=True, rotate_degrees=30.0, contrast=0.3)
    gallery = AugmentationGallery(config=config, seed=2)
    choice = gallery.choice
    assert choice.rotate_degrees != 0 and choice.contrast_factor != 1
    expected = adjust_contrast(apply_geometric(rotate(gallery.image, choice.rotate_degrees), choice),
                               choice.contrast_factor)
    assert torch.equal(gallery.augmented, expected)


def test_rotation_is_left_out_of_the_pair() -> None:
    gallery = AugmentationGallery(config=AugmentConfig(rotate_degrees=30.0))
    assert gallery.augmented.shape[-1] < gallery.image.shape[-1]  # the photo was rotated and cropped
    assert gallery.choice.rotate_degrees != 0.0 and gallery.pair_choice.rotate_degrees == 0.0
    assert gallery.pair_difference < 1e-6  # without the rotation, nothing else changed the pair
    assert "rotation is left out" in gallery.pair_message


def test_bad_settings_raise() -> None:
    gallery = AugmentationGallery()
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        gallery.update(sharpness=0.5)
    with pytest.raises(ValueError, match="brightness"):
        gallery.update(brightness=2.0)
    with pytest.raises(ValueError, match="no bundled photo"):
        gallery.set_image("lenna")
    with pytest.raises(ValueError, match="multiple of the scale"):
        AugmentationGallery(size=100, scale=3)
    with pytest.raises(ValueError, match="does not fit"):
        AugmentationGallery(patch_size=65, scale=3)


def test_view_follows_the_controls() -> None:
    pytest.importorskip("ipywidgets")
    view = AugmentationGalleryView(AugmentationGallery(seed=1))
    augmented, description = bytes(view.augmented.value), view.description.value
    assert augmented.startswith(b"\xff\xd8")  # a JPEG

    view.new_draw_button.click()
    assert view.gallery.draw_count == 2
    assert view.description.value != description
    assert bytes(view.augmented.value) != augmented

    view.toggles["hflip"].value = False
    assert view.gallery.config.hflip is False
    view.sliders["gamma"].value = 0.0
    assert view.gallery.config.gamma == 0.0
    assert view.gallery.choice.gamma == 1.0

    view.image_name.value = "camera"
    assert view.gallery.image_name == "camera"
    assert view.gallery.image.shape[0] == 1  # a gray photo stays gray
    assert bytes(view.original.value).startswith(b"\xff\xd8")
    assert "draw 2" in view.description.value
