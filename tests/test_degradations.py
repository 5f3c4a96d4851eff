"""sr_teach.degradations: mod-crop, the MATLAB-bicubic downscale, blur, noise, JPEG, and the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from sr_teach.degradations import (
    DOWNSCALE_METHODS,
    DegradationConfig,
    check_scale,
    corrupt,
    degrade,
    downscale,
    gaussian_blur,
    gaussian_kernel,
    gaussian_noise,
    jpeg_compress,
    mod_crop,
    shrink,
)
from sr_teach.images import ImageError, load_image, load_sample, to_uint8
from sr_teach.metrics import psnr


def test_mod_crop_keeps_the_top_left_multiple_of_the_scale() -> None:
    image = torch.rand(3, 13, 17, generator=torch.Generator().manual_seed(0))
    for scale, size in [(2, (12, 16)), (3, (12, 15)), (4, (12, 16)), (13, (13, 13))]:
        cropped = mod_crop(image, scale)
        assert cropped.shape == (3, *size)
        assert torch.equal(cropped, image[:, : size[0], : size[1]])
    assert mod_crop(image[None], 4).shape == (1, 3, 12, 16)
    assert torch.equal(mod_crop(image[:, :12, :16], 4), image[:, :12, :16])  # already a multiple


@pytest.mark.parametrize("scale, size", [(2, (6, 8)), (3, (4, 5)), (4, (3, 4))])
@pytest.mark.parametrize("method", DOWNSCALE_METHODS)
def test_downscale_shapes(scale: int, size: tuple[int, int], method: str) -> None:
    image = torch.rand(3, 13, 17, generator=torch.Generator().manual_seed(1))
    assert downscale(image, scale, method).shape == (3, *size)
    assert downscale(image[None].expand(2, -1, -1, -1), scale, method).shape == (2, 3, *size)
    assert downscale(image[:1], scale, method).shape == (1, *size)


@pytest.mark.needs_datasets("Set5")
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_downscale_reproduces_the_lr_files(datasets_dir: Path, scale: int) -> None:
    identical = total = 0
    for hr_path in sorted((datasets_dir / "Set5" / "HR").glob("*.png")):
        ours = to_uint8(downscale(load_image(hr_path), scale)).astype(np.int16)
        lr_file = np.asarray(Image.open(datasets_dir / "Set5" / "LR_bicubic" / f"X{scale}" / hr_path.name))
        assert ours.shape == lr_file.shape, f"{hr_path.name}: {ours.shape} vs {lr_file.shape}"
        difference = np.abs(ours - lr_file.astype(np.int16))
        identical += int((difference == 0).sum())
        total += difference.size
        assert difference.max() <= 1, f"{hr_path.name}: differs by {difference.max()} levels"
    print(f"\nSet5 x{scale}: downscale equals LR_bicubic on {identical / total:.4%} of {total} values")
    assert identical / total >= 0.999


@pytest.mark.parametrize("scale", [0, -2, 2.5, True, 1.5, float("inf")])
def test_unsupported_scales(scale) -> None:
    with pytest.raises(ValueError, match="whole number"):
        check_scale(scale)
    with pytest.raises(ValueError):
        downscale(torch.rand(3, 16, 16), scale)


@pytest.mark.parametrize("method", DOWNSCALE_METHODS)
def test_scale_one_keeps_the_image(method) -> None:
    """x1 is restoration without enlargement: downscale by 1 returns the image, whatever the kernel."""
    image = torch.rand(3, 17, 23)
    assert check_scale(1.0) == 1
    assert torch.equal(downscale(image, 1, method), image)


def test_whole_float_scales_are_accepted() -> None:
    assert check_scale(4.0) == 4 and isinstance(check_scale(4.0), int)
    assert downscale(torch.rand(3, 16, 16), 4.0).shape == (3, 4, 4)


def test_unknown_downscale_method() -> None:
    with pytest.raises(ValueError, match="unknown downscale method"):
        downscale(torch.rand(3, 16, 16), 2, "lanczos7")


def test_too_small_image() -> None:
    with pytest.raises(ImageError, match="too small"):
        downscale(torch.rand(3, 3, 40), 4)
    with pytest.raises(ImageError, match="too small"):
        mod_crop(torch.rand(1, 40, 2), 3)


# ---------------------------------------------------------------- blur, noise, JPEG


def test_gaussian_kernel_sums_to_one_and_is_symmetric() -> None:
    for sigma, size in [(0.5, 5), (1.0, 7), (1.5, 9), (2.0, 13)]:  # 2 round(3 sigma) + 1
        kernel = gaussian_kernel(sigma)
        assert kernel.shape == (size, size)
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)
        assert torch.equal(kernel, kernel.T) and torch.equal(kernel, kernel.flip(0))


def test_gaussian_blur_preserves_a_constant_image_and_sigma_zero_is_identity() -> None:
    constant = torch.full((3, 20, 24), 0.4)
    blurred = gaussian_blur(constant, 1.5)
    assert blurred.shape == constant.shape
    torch.testing.assert_close(blurred, constant, rtol=0, atol=1e-6)
    assert float(blurred.mean()) == pytest.approx(0.4, abs=1e-6)
    image = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    assert torch.equal(gaussian_blur(image, 0), image)
    assert gaussian_blur(image, 0) is not image  # a copy, safe to change


@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.0])
def test_gaussian_blur_matches_scipy(sigma: float) -> None:
    image = torch.rand(3, 20, 23, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    radius = gaussian_kernel(sigma).shape[-1] // 2
    # scipy's "mirror" is torch's "reflect" (d c b | a b c d); truncate chosen to give the same radius
    reference = np.stack([
        gaussian_filter(channel, sigma, mode="mirror", truncate=(radius + 0.25) / sigma) for channel in image.numpy()
    ])
    ours = gaussian_blur(image, sigma)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=1e-6)  # our kernel is float32
    assert float(ours.std()) < float(image.std())


def test_gaussian_blur_of_a_too_small_image() -> None:
    with pytest.raises(ImageError, match="too small"):
        gaussian_blur(torch.rand(1, 4, 40), 2.0)


def test_gaussian_noise_has_the_requested_std_and_a_seed_reproduces_it() -> None:
    image = torch.full((3, 64, 64), 0.5)

    def noisy(seed: int) -> torch.Tensor:
        return gaussian_noise(image, 10, generator=torch.Generator().manual_seed(seed))

    first = noisy(0)
    assert first.shape == image.shape
    assert float((first - image).std()) == pytest.approx(10 / 255, rel=0.05)
    assert abs(float((first - image).mean())) < 0.002
    assert torch.equal(first, noisy(0))
    assert not torch.equal(first, noisy(1))
    clipped = gaussian_noise(torch.ones(1, 16, 16), 50, generator=torch.Generator().manual_seed(0))
    assert float(clipped.max()) <= 1.0 and float(clipped.min()) < 1.0  # stays a valid image


def test_jpeg_quality() -> None:
    image = load_sample("astronaut")[:, 100:164, 200:280]
    high = jpeg_compress(image, 95)
    low = jpeg_compress(image, 5)
    assert high.shape == low.shape == image.shape
    psnr_high, psnr_low = float(psnr(high, image)), float(psnr(low, image))
    assert psnr_high > 35, f"quality 95 gave only {psnr_high:.1f} dB"
    assert psnr_low < 27, f"quality 5 gave {psnr_low:.1f} dB, suspiciously good"
    assert psnr_high - psnr_low > 10
    gray = jpeg_compress(image[:1], 50)
    assert gray.shape == (1, 64, 80)
    assert jpeg_compress(torch.stack([image, image]), 50).shape == (2, 3, 64, 80)
    for quality in (0, 96, -5, 100):
        with pytest.raises(ValueError, match="quality"):
            jpeg_compress(image, quality)


def test_degrade_pipeline() -> None:
    hr_image = load_sample("astronaut")[:, :50, :50]
    assert torch.equal(degrade(hr_image, 4), downscale(hr_image, 4))  # no extras: just the bicubic shrink
    config = DegradationConfig(blur_sigma=1.0, noise_sigma=5, jpeg_quality=70)
    lr_image = degrade(hr_image, 4, config, generator=torch.Generator().manual_seed(0))
    assert lr_image.shape == (3, 12, 12)
    assert 0 <= float(lr_image.min()) and float(lr_image.max()) <= 1
    assert not torch.equal(lr_image, downscale(hr_image, 4))
    batch = degrade(hr_image[None].expand(2, -1, -1, -1).contiguous(), 2, DegradationConfig("torch_area", noise_sigma=3))
    assert batch.shape == (2, 3, 25, 25)
    again = degrade(hr_image, 4, config, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lr_image, again)
    # shrink changes the size, corrupt spoils the pixels: degrade is the one after the other
    assert torch.equal(again, corrupt(shrink(hr_image, 4, config), config, torch.Generator().manual_seed(0)))
