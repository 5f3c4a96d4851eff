"""The patch sampler and its helpers: reproducible, aligned, and equal to "shrink the photo, then cut"."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_teach.augmentation import AugmentChoice, AugmentConfig, apply_geometric
from sr_teach.data import (
    DataConfig,
    PatchSampler,
    _moved_square,  # private, but the flip bookkeeping deserves its own test
    crop_pair,
    crop_with_margin,
    load_training_image,
    load_validation_pairs,
    margin_for,
    split_train_validation,
)
from sr_teach.datasets import find_images
from sr_teach.degradations import DegradationConfig, degrade, downscale, mod_crop
from sr_teach.images import load_image, load_sample, rgb_to_luma, save_image
from sr_teach.interpolation import resize

FLIPS = AugmentConfig(hflip=True, vflip=True, rot90=True)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Four small photos cut from the bundled ones: RGB and gray, of awkward (non mod-3) sizes."""
    folder = tmp_path_factory.mktemp("photos")
    astronaut, camera = load_sample("astronaut"), load_sample("camera")
    save_image(astronaut[:, 100:190, 200:320], folder / "astronaut_a.png")  # 90 x 120
    save_image(astronaut[:, 300:377, 50:115], folder / "astronaut_b.png")  # 77 x 65
    save_image(camera[:, 200:280, 150:231], folder / "camera.png")  # 80 x 81, gray
    save_image(load_sample("chelsea")[:, 50:200, 100:210], folder / "chelsea.jpg")  # 150 x 110
    return folder


def sampler_for(folder: Path, **options) -> PatchSampler:
    options = {"scales": (3,), "patch_size": 8, "batch_size": 6, **options}
    return PatchSampler(find_images(folder), DataConfig(**options))


def batches(sampler: PatchSampler, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [sampler.next_batch() for _ in range(count)]


# ----- reproducibility -----


@pytest.mark.parametrize(
    "augment",
    [FLIPS, AugmentConfig(hflip=True, brightness=0.3, hue=20, gamma=0.3), AugmentConfig(rotate_degrees=20)],
    ids=["flips", "jitter", "rotation"],
)
def test_the_same_seed_gives_the_same_batches(photo_folder, augment):
    options = {"num_channels": 3, "augment": augment, "degradation": DegradationConfig(noise_sigma=5)}
    first = batches(sampler_for(photo_folder, seed=7, **options), 3)
    second = batches(sampler_for(photo_folder, seed=7, **options), 3)
    other = batches(sampler_for(photo_folder, seed=8, **options), 3)
    for (input_a, target_a), (input_b, target_b), (_, target_c) in zip(first, second, other):
        assert torch.equal(input_a, input_b) and torch.equal(target_a, target_b)
        assert not torch.equal(target_a, target_c)


def test_batches_differ_from_one_another(photo_folder):
    (_, first), (_, second) = batches(sampler_for(photo_folder), 2)
    assert not torch.equal(first, second)


# ----- shapes -----


@pytest.mark.parametrize("num_channels", [1, 3])
@pytest.mark.parametrize("pre_upsample", [False, True])
def test_shapes(photo_folder, num_channels, pre_upsample):
    sampler = sampler_for(photo_folder, num_channels=num_channels, pre_upsample=pre_upsample, batch_size=5)
    input_batch, target_batch = sampler.next_batch()
    input_size = 24 if pre_upsample else 8
    assert input_batch.shape == (5, num_channels, input_size, input_size)
    assert target_batch.shape == (5, num_channels, 24, 24)
    for tensor in (input_batch, target_batch):
        assert tensor.dtype == torch.float32 and tensor.min() >= 0 and tensor.max() <= 1


@pytest.mark.parametrize("pre_upsample", [False, True])
def test_multi_scale_batches_are_at_one_scale_each(photo_folder, pre_upsample):
    sampler = sampler_for(photo_folder, scales=(2, 3, 4), patch_size=6, pre_upsample=pre_upsample)
    seen = set()
    for input_batch, target_batch in batches(sampler, 15):
        scale = target_batch.shape[-1] // 6
        assert target_batch.shape[-2:] == (6 * scale, 6 * scale) and scale in (2, 3, 4)
        assert input_batch.shape[-1] == (6 * scale if pre_upsample else 6)
        seen.add(scale)
    assert seen == {2, 3, 4}


@pytest.mark.parametrize("augment", [FLIPS, AugmentConfig(rotate_degrees=20)], ids=["shortcut", "general"])
def test_one_hr_patch_size_for_every_scale(photo_folder, augment):
    """hr_patch_size: the same target size at every scale (VDSR's way), the LR side hr_patch_size / scale."""
    sampler = sampler_for(photo_folder, scales=(2, 3, 4), hr_patch_size=24, augment=augment)
    seen = set()
    for lr_batch, hr_batch in batches(sampler, 15):
        scale = 24 // lr_batch.shape[-1]
        assert hr_batch.shape[-2:] == (24, 24) and lr_batch.shape[-2:] == (24 // scale, 24 // scale)
        inside = (..., slice(2, -2), slice(2, -2))  # the shrink's kernel reaches 2 LR pixels out
        torch.testing.assert_close(lr_batch[inside], downscale(hr_batch, scale)[inside], atol=1e-5, rtol=0)
        seen.add(scale)
    assert seen == {2, 3, 4}
    with pytest.raises(ValueError, match="multiple of every scale"):
        DataConfig(scales=(2, 3), hr_patch_size=20)


def test_pre_upsampled_input_is_the_bicubic_upscale_of_the_lr(photo_folder):
    ((lr_batch, target),) = batches(sampler_for(photo_folder, seed=4), 1)
    ((upscaled, same_target),) = batches(sampler_for(photo_folder, seed=4, pre_upsample=True), 1)
    assert torch.equal(target, same_target)
    torch.testing.assert_close(upscaled, resize(lr_batch, size=(24, 24), method="bicubic"))


# ----- the pairs are right -----


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("blur_sigma", [0.0, 1.2])
def test_shrinking_a_margin_region_equals_shrinking_the_whole_photo(scale, blur_sigma):
    hr_image = load_sample("astronaut")[:, 150:253, 220:330]  # 103 x 110: not multiples of the scale
    whole = degrade(mod_crop(hr_image, scale), scale, DegradationConfig(blur_sigma=blur_sigma))
    patch, margin = 7, margin_for(scale, blur_sigma)
    lr_height, lr_width = whole.shape[-2:]
    positions = [(0, 0), (lr_height - patch, lr_width - patch), (1, lr_width - patch - 1), (5, 3), (9, 13)]
    for top, left in positions:
        region, (region_top, region_left) = crop_with_margin(hr_image, top, left, patch, scale, margin)
        lr_region = degrade(region, scale, DegradationConfig(blur_sigma=blur_sigma))
        lr_patch = lr_region[:, region_top : region_top + patch, region_left : region_left + patch]
        torch.testing.assert_close(
            lr_patch, whole[:, top : top + patch, left : left + patch], atol=1e-6, rtol=0
        )
        hr_patch = region[:, region_top * scale : (region_top + patch) * scale, region_left * scale :][
            ..., : patch * scale
        ]
        assert torch.equal(
            hr_patch, hr_image[:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale]
        )
    # Without the margin the patch's border is wrong: that is why the margin is there.
    region, _ = crop_with_margin(hr_image, 5, 3, patch, scale, margin=0)
    assert not torch.allclose(degrade(region, scale, DegradationConfig(blur_sigma=blur_sigma)), whole[:, 5:12, 3:10], atol=1e-3)


@pytest.mark.parametrize("num_channels", [1, 3])
@pytest.mark.parametrize("blur_sigma", [0.0, 1.0])
def test_the_shortcut_and_the_general_way_give_the_same_patches(photo_folder, num_channels, blur_sigma):
    options = {
        "num_channels": num_channels,
        "augment": FLIPS,
        "degradation": DegradationConfig(blur_sigma=blur_sigma),
    }
    shortcut = sampler_for(photo_folder, seed=11, **options)
    general = sampler_for(photo_folder, seed=11, **options)
    assert shortcut.shrinks_whole_images
    general.shrinks_whole_images = False  # force the margin regions
    for (input_a, target_a), (input_b, target_b) in zip(batches(shortcut, 4), batches(general, 4)):
        assert torch.equal(target_a, target_b)
        torch.testing.assert_close(input_a, input_b, atol=1e-6, rtol=0)


def test_shortcut_patches_are_cut_from_the_shrunk_photo(photo_folder):
    sampler = sampler_for(photo_folder, num_channels=3, augment=AugmentConfig(), batch_size=16)
    lr_batch, hr_batch = sampler.next_batch()
    photos = [image.float() / 255 for image in sampler.images]
    shrunk = [downscale(photo, 3) for photo in photos]
    for lr_patch, hr_patch in zip(lr_batch, hr_batch):
        # Find where the HR patch came from, and check the LR patch is the same place of the shrunk photo.
        found = False
        for photo, lr_photo in zip(photos, shrunk):
            for top in range(0, photo.shape[-2] - 23, 3):
                for left in range(0, photo.shape[-1] - 23, 3):
                    if torch.equal(photo[:, top : top + 24, left : left + 24], hr_patch):
                        lr_expected = lr_photo[:, top // 3 : top // 3 + 8, left // 3 : left // 3 + 8]
                        torch.testing.assert_close(lr_patch, lr_expected, atol=1e-6, rtol=0)
                        found = True
        assert found, "every HR patch is an aligned crop of a photo"


@pytest.mark.parametrize(
    "augment",
    [
        FLIPS,
        AugmentConfig(hflip=True, rot90=True, brightness=0.3, contrast=0.3, hue=30, gamma=0.4),
        AugmentConfig(rotate_degrees=30, gamma=0.3),
    ],
    ids=["flips", "jitter", "rotation"],
)
def test_the_lr_is_the_degradation_of_the_target(photo_folder, augment):
    """Whatever the augmentation, the input is the bicubic shrink of the target (away from the patch's border,
    which the sampler gets from the margin and a shrink of the target alone cannot know)."""
    sampler = sampler_for(photo_folder, num_channels=3, augment=augment, batch_size=8, patch_size=10)
    lr_batch, hr_batch = sampler.next_batch()
    inside = (..., slice(2, -2), slice(2, -2))
    torch.testing.assert_close(lr_batch[inside], downscale(hr_batch, 3)[inside], atol=1e-5, rtol=0)


def test_y_channel_is_the_8_bit_luma_of_the_photo(photo_folder):
    path = photo_folder / "astronaut_a.png"
    luma = load_training_image(path, num_channels=1)
    assert luma.shape == (1, 90, 120) and luma.dtype == torch.uint8
    expected = (rgb_to_luma(load_image(path)) * 255).round()
    assert torch.equal(luma.float(), expected)


def test_noise_and_jpeg_degrade_the_lr(photo_folder):
    clean = sampler_for(photo_folder, seed=2).next_batch()
    noisy = sampler_for(photo_folder, seed=2, degradation=DegradationConfig(noise_sigma=10)).next_batch()
    compressed = sampler_for(
        photo_folder, seed=2, degradation=DegradationConfig(jpeg_quality=20)
    ).next_batch()
    assert torch.equal(clean[1], noisy[1]) and torch.equal(clean[1], compressed[1])  # same targets
    assert 5 / 255 < (noisy[0] - clean[0]).std() < 15 / 255
    assert not torch.allclose(compressed[0], clean[0], atol=1e-3)


# ----- finding, loading and skipping images -----


def test_corrupt_and_small_images_are_skipped_with_a_warning(photo_folder, tmp_path):
    paths = find_images(photo_folder)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "empty.jpg").write_bytes(b"")
    save_image(torch.rand(3, 20, 30), tmp_path / "tiny.png")
    extra = [tmp_path / "broken.png", tmp_path / "empty.jpg", tmp_path / "tiny.png"]
    with pytest.warns(UserWarning) as records:
        sampler = PatchSampler(paths + extra, DataConfig(scales=(3,), patch_size=8, batch_size=4))
    messages = " ".join(str(record.message) for record in records)
    assert "broken.png" in messages and "empty.jpg" in messages and "tiny.png (20x30)" in messages
    assert sampler.paths == paths
    assert sampler.next_batch()[1].shape == (4, 1, 24, 24)


def test_no_usable_image_is_a_clear_error(tmp_path):
    save_image(torch.rand(3, 20, 30), tmp_path / "tiny.png")
    with pytest.warns(UserWarning, match="tiny.png"), pytest.raises(ValueError, match="None of the 1 image"):
        PatchSampler([tmp_path / "tiny.png"], DataConfig(scales=(3,), patch_size=17))


def test_rotation_needs_room(photo_folder):
    with pytest.warns(UserWarning, match="rotate"):
        sampler = sampler_for(photo_folder, augment=AugmentConfig(rotate_degrees=45), patch_size=14)
    # (14 + 2 margins of 2) * 3 = 54 HR pixels turned by 45 degrees need a 79-pixel square: not 77 x 65.
    assert [path.name for path in sampler.paths] == ["astronaut_a.png", "camera.png", "chelsea.jpg"]
    assert sampler.next_batch()[1].shape == (6, 1, 42, 42)


# ----- validation -----


def test_split_train_validation():
    paths = [Path(f"image_{index:02d}.png") for index in range(20)]
    train, validation = split_train_validation(paths, 0.2, seed=1)
    assert len(validation) == 4 and len(train) == 16
    assert sorted(train + validation) == paths and not set(train) & set(validation)
    assert (train, validation) == split_train_validation(list(reversed(paths)), 0.2, seed=1)
    assert validation != split_train_validation(paths, 0.2, seed=2)[1]
    assert split_train_validation(paths[:2], 0.01)[1] != []  # at least one held out
    assert split_train_validation(paths, 0.0) == (paths, [])
    with pytest.raises(ValueError):
        split_train_validation(paths, 1.0)


@pytest.mark.parametrize("num_channels", [1, 3])
@pytest.mark.parametrize("pre_upsample", [False, True])
def test_validation_pairs(photo_folder, num_channels, pre_upsample):
    paths = find_images(photo_folder)
    pairs = load_validation_pairs(paths, 3, num_channels, pre_upsample)
    assert len(pairs) == len(paths)
    for (input_image, target), path in zip(pairs, paths):
        expected_target = mod_crop(load_training_image(path, num_channels).float() / 255, 3)
        assert torch.equal(target, expected_target)
        expected_input = downscale(target, 3)
        if pre_upsample:
            expected_input = resize(expected_input, size=tuple(target.shape[-2:]))
        torch.testing.assert_close(input_image, expected_input)
    cropped = load_validation_pairs(paths, 3, num_channels, pre_upsample, max_size=50)
    for input_image, target in cropped:
        assert max(target.shape[-2:]) <= 48 and target.shape[-1] % 3 == 0
        assert input_image.shape[-1] == (target.shape[-1] if pre_upsample else target.shape[-1] // 3)
    assert load_validation_pairs([], 3, num_channels, pre_upsample) == []  # nothing held out: nothing to load


def test_config_checks():
    assert DataConfig(scales=[2, 4]).scales == (2, 4)
    assert DataConfig(scales=(1,)).scales == (1,)  # restoration without enlargement
    with pytest.raises(ValueError, match="scale"):
        DataConfig(scales=(0,))
    with pytest.raises(ValueError, match="num_channels"):
        DataConfig(num_channels=2)
    with pytest.raises(ValueError, match="method"):
        DegradationConfig(method="magic")


@pytest.mark.parametrize("scale", [2, 3])
def test_nearest_at_even_scales_flips_before_shrinking(photo_folder, scale):
    """Nearest-neighbour shrinking keeps one pixel of each block; at even scales a flip changes which one,
    so there the sampler flips the HR first: the LR is then exactly the shrink of the target."""
    degradation = DegradationConfig(method="nearest")
    sampler = sampler_for(
        photo_folder, scales=(scale,), augment=FLIPS, degradation=degradation, batch_size=16
    )
    assert sampler.flips_after_shrink == (scale % 2 == 1)
    for lr_batch, hr_batch in batches(sampler, 2):
        torch.testing.assert_close(lr_batch, downscale(hr_batch, scale, method="nearest"), atol=1e-6, rtol=0)
    jittered = sampler_for(
        photo_folder,
        scales=(scale,),
        augment=AugmentConfig(hflip=True, rot90=True, gamma=0.3),
        degradation=degradation,
        batch_size=16,
    )
    lr_batch, hr_batch = jittered.next_batch()
    torch.testing.assert_close(lr_batch, downscale(hr_batch, scale, method="nearest"), atol=1e-6, rtol=0)


def test_a_flipped_region_keeps_track_of_its_patch():
    height, width, top, left, size = 7, 10, 1, 5, 3
    marked = torch.zeros(1, height, width)
    marked[:, top : top + size, left : left + size] = 1
    for hflip in (False, True):
        for vflip in (False, True):
            for turns in range(4):
                choice = AugmentChoice(hflip=hflip, vflip=vflip, rot90_turns=turns)
                moved = apply_geometric(marked, choice)
                new_top, new_left = _moved_square((top, left), size, height, width, choice)
                assert moved[0, new_top : new_top + size, new_left : new_left + size].sum() == size * size


def test_crop_pair_cuts_aligned_patches_and_refuses_what_does_not_fit():
    hr_image = torch.rand(3, 24, 30)
    lr_image = downscale(hr_image, 3)  # (3, 8, 10)
    lr_patch, hr_patch = crop_pair(lr_image, hr_image, 6, 8 - 2, 2, 3)  # the bottom-right corner
    assert torch.equal(lr_patch, lr_image[:, 6:8, 6:8]) and torch.equal(hr_patch, hr_image[:, 18:24, 18:24])
    with pytest.raises(ValueError, match="does not fit"):
        crop_pair(lr_image, hr_image, 7, 0, 2, 3)
    with pytest.raises(ValueError, match="smaller than 3 times"):
        crop_pair(lr_image, hr_image[:, :21], 0, 0, 2, 3)
