"""sr_teach.metrics: PSNR and SSIM by hand, and against scikit-image as an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr as skimage_rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr_teach.degradations import downscale
from sr_teach.images import load_sample
from sr_teach.interpolation import resize
from sr_teach.degradations import gaussian_kernel
from sr_teach.metrics import prepare, psnr, ssim


def random_image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def real_pair(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of a bundled photo (target) and its bicubic x2 down-and-up version (prediction)."""
    target = load_sample("astronaut")[:, 150 : 150 + size, 180 : 180 + size]
    return resize(downscale(target, 2), scale=2), target


# ---------------------------------------------------------------- PSNR


def test_psnr_hand_computed() -> None:
    zeros = torch.zeros(1, 1, 4, 4)
    assert float(psnr(zeros, torch.full((1, 1, 4, 4), 0.1))) == pytest.approx(20.0, abs=1e-5)
    half_off = zeros.clone()
    half_off[..., :2, :] = 0.5  # MSE = 0.5 * 0.25 = 0.125
    assert float(psnr(half_off, zeros)) == pytest.approx(10 * math.log10(8), abs=1e-5)
    one_level = torch.full((1, 3, 5, 5), 1 / 255)  # one 8-bit level everywhere: 20 log10(255)
    assert float(psnr(one_level, torch.zeros(1, 3, 5, 5))) == pytest.approx(48.1308, abs=1e-4)


def test_psnr_of_identical_images_is_infinite() -> None:
    image = random_image(2, 3, 8, 8)
    assert torch.equal(psnr(image, image.clone()), torch.full((2,), math.inf))


def test_psnr_crop_border() -> None:
    target = random_image(3, 10, 12)
    prediction = target.clone()
    prediction[:, 0, :] = 0  # damage only a one-pixel frame
    prediction[:, :, -1] = 1
    assert math.isfinite(float(psnr(prediction, target)))
    assert float(psnr(prediction, target, crop_border=1)) == math.inf
    with pytest.raises(ValueError, match="crop_border"):
        psnr(prediction, target, crop_border=5)


def test_psnr_y_channel() -> None:
    target = random_image(3, 16, 16) * 0.8
    prediction = target + 0.1  # the same change on R, G and B moves Y by 0.1 * 219 / 255
    assert float(psnr(prediction, target)) == pytest.approx(20.0, abs=1e-4)
    wanted = -20 * math.log10(0.1 * (65.481 + 128.553 + 24.966) / 255)
    assert float(psnr(prediction, target, y_channel=True)) == pytest.approx(wanted, abs=1e-4)
    gray = target[:1]
    assert float(psnr(gray + 0.1, gray, y_channel=True)) == pytest.approx(20.0, abs=1e-4)  # gray: as it is


def test_psnr_round_to_8bit() -> None:
    target = torch.zeros(1, 8, 8)
    prediction = torch.full((1, 8, 8), 0.4 / 255)  # rounds to level 0
    assert math.isfinite(float(psnr(prediction, target)))
    assert float(psnr(prediction, target, round_to_8bit=True)) == math.inf


def test_psnr_is_per_image() -> None:
    targets = random_image(4, 3, 12, 12, seed=1)
    predictions = (targets + 0.05 * random_image(4, 3, 12, 12, seed=2) * torch.arange(1, 5)[:, None, None, None]).clamp(0, 1)
    values = psnr(predictions, targets)
    assert values.shape == (4,)
    for index in range(4):
        assert float(values[index]) == pytest.approx(float(psnr(predictions[index], targets[index])), abs=1e-5)
    assert psnr(predictions[0], targets[0]).shape == (1,)  # one (C, H, W) image is a batch of one
    assert bool((values[:-1] > values[1:]).all())  # more noise, lower PSNR


@pytest.mark.parametrize("real", [False, True])
def test_psnr_matches_scikit_image(real: bool) -> None:
    if real:
        prediction, target = real_pair()
    else:
        target = random_image(3, 20, 24, seed=3)
        prediction = (target + 0.1 * random_image(3, 20, 24, seed=4) - 0.05).clamp(0, 1)
    reference = peak_signal_noise_ratio(target.double().numpy(), prediction.double().numpy(), data_range=1)
    assert float(psnr(prediction, target)) == pytest.approx(reference, abs=1e-4)


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))


# ---------------------------------------------------------------- SSIM


def luma_255(image: torch.Tensor, round_to_8bit: bool = False) -> np.ndarray:
    """Y on the 0..255 scale by scikit-image's rgb2ycbcr (independent of sr_teach's conversion)."""
    rgb = image.double().permute(1, 2, 0).numpy()
    if round_to_8bit:
        rgb = np.round(rgb * 255) / 255
    y = skimage_rgb2ycbcr(rgb)[..., 0]
    return np.round(y) if round_to_8bit else y


def skimage_ssim(x: np.ndarray, y: np.ndarray, **options) -> float:
    # Wang et al.'s settings. scikit-image filters the whole image (mirrored edges) and then averages
    # only after cutting (win_size - 1) / 2 = 5 pixels from each edge: exactly the positions whose
    # 11 x 11 window lies inside the image, which is the 'valid' region sr_teach's convolution gives.
    return structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **options
    )


def test_ssim_window_is_wang_et_al() -> None:
    window = gaussian_kernel(sigma=1.5, size=11)
    assert window.shape == (11, 11)
    assert float(window.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float(window[5, 5] / window[5, 6]) == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_ssim_hand_computed_on_flat_images() -> None:
    # No variance: SSIM reduces to the luminance term (2 a b + C1) / (a^2 + b^2 + C1) on 0..255.
    a, b, c1 = 0.2 * 255, 0.4 * 255, (0.01 * 255) ** 2
    value = float(ssim(torch.full((1, 16, 16), 0.2), torch.full((1, 16, 16), 0.4)))
    assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-6)


def test_ssim_of_identical_images_is_one() -> None:
    image = random_image(2, 3, 16, 16)
    torch.testing.assert_close(ssim(image, image.clone()), torch.ones(2), rtol=0, atol=1e-6)


@pytest.mark.parametrize("real", [False, True])
def test_ssim_y_channel_matches_scikit_image(real: bool) -> None:
    if real:
        prediction, target = real_pair()
    else:
        target = random_image(3, 40, 36, seed=5)
        prediction = (0.7 * target + 0.3 * random_image(3, 40, 36, seed=6)).clamp(0, 1)
    reference = skimage_ssim(luma_255(prediction), luma_255(target))
    assert float(ssim(prediction, target, y_channel=True)) == pytest.approx(reference, abs=1e-6)


def test_ssim_with_the_full_protocol_matches_scikit_image() -> None:
    """8-bit output, 8-bit Y, border of 2 cut: the evaluation protocol, re-done with scikit-image."""
    prediction, target = real_pair(size=100)
    border = 2
    ours = float(ssim(prediction, target, crop_border=border, y_channel=True, round_to_8bit=True))
    x = luma_255(prediction, round_to_8bit=True)[border:-border, border:-border]
    y = luma_255(target, round_to_8bit=True)[border:-border, border:-border]
    assert ours == pytest.approx(skimage_ssim(x, y), abs=1e-6)
    ours_psnr = float(psnr(prediction, target, crop_border=border, y_channel=True, round_to_8bit=True))
    assert ours_psnr == pytest.approx(peak_signal_noise_ratio(y, x, data_range=255), abs=1e-4)


def test_ssim_rgb_is_the_mean_over_channels_as_in_scikit_image() -> None:
    prediction, target = real_pair(size=48)
    reference = skimage_ssim(
        prediction.double().permute(1, 2, 0).numpy() * 255, target.double().permute(1, 2, 0).numpy() * 255,
        channel_axis=-1,
    )
    assert float(ssim(prediction, target)) == pytest.approx(reference, abs=1e-6)


def test_ssim_is_per_image() -> None:
    targets = random_image(3, 1, 20, 20, seed=7)
    predictions = (targets + 0.2 * random_image(3, 1, 20, 20, seed=8)).clamp(0, 1)
    values = ssim(predictions, targets)
    assert values.shape == (3,)
    for index in range(3):
        assert float(values[index]) == pytest.approx(float(ssim(predictions[index], targets[index])), abs=1e-6)


def test_ssim_needs_11_by_11_pixels() -> None:
    with pytest.raises(ValueError, match="11 x 11"):
        ssim(torch.rand(1, 10, 30), torch.rand(1, 10, 30))
    with pytest.raises(ValueError, match="11 x 11"):
        ssim(torch.rand(3, 14, 14), torch.rand(3, 14, 14), crop_border=2)  # 10 x 10 left
    assert ssim(torch.rand(1, 11, 11), torch.rand(1, 11, 11)).shape == (1,)


def test_prepare_applies_the_protocol_steps() -> None:
    image = random_image(3, 12, 10)
    prepared = prepare(image, crop_border=2, y_channel=True, round_to_8bit=True)
    assert prepared.shape == (1, 1, 8, 6) and prepared.dtype == torch.float64
    assert torch.equal(prepared * 255, (prepared * 255).round())  # 8-bit levels


def test_checkerboard_strength_sees_a_block_pattern_and_nothing_else() -> None:
    from sr_teach.metrics import checkerboard_strength

    target = torch.rand(1, 60, 60)
    pattern = torch.zeros(3, 3)
    pattern[0, 0] = 3 / 255  # one of the nine block positions is 3 gray levels too bright
    checkered = target + pattern.repeat(20, 20)[None]
    expected = float(torch.tensor([3.0] + [0.0] * 8).std())
    assert checkerboard_strength(checkered, target, scale=3) == pytest.approx(expected, rel=1e-4)
    assert checkerboard_strength(target + 2 / 255, target, scale=3) == pytest.approx(0.0, abs=1e-4)
