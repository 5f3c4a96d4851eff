"""MS-SSIM, GMSD and NIQE: against torchmetrics, OpenCV, MATLAB's published NIQE and BasicSR's NIQE."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_teach.degradations import downscale, gaussian_blur, gaussian_noise
from sr_teach.images import load_image, load_sample
from sr_teach.interpolation import resize
from sr_teach.metrics import HIGHER_IS_BETTER, MS_SSIM_WEIGHTS, _halve, gmsd, ms_ssim, niqe, prepare, psnr, quality_scores, ssim
from sr_teach.niqe import MODEL_FOLDER, fit_aggd, niqe_of_gray, pristine_model


def random_image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def real_pair(height: int = 200, width: int = 208) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of a bundled photo (target) and its bicubic x2 down-and-up version (prediction)."""
    target = load_sample("astronaut")[:, 100 : 100 + height, 120 : 120 + width]
    return resize(downscale(target, 2), scale=2), target


# ---------------------------------------------------------------- MS-SSIM


def test_ms_ssim_of_identical_images_is_one() -> None:
    image = random_image(2, 1, 177, 181)  # odd sizes: the mirrored halving too
    torch.testing.assert_close(ms_ssim(image, image.clone()), torch.ones(2), rtol=0, atol=1e-6)


def test_ms_ssim_hand_computed_on_flat_images() -> None:
    # No variance at any scale: every contrast-structure term is (0 + C2) / (0 + C2) = 1, so only the
    # luminance term of the coarsest scale is left, raised to the last weight (0.1333).
    a, b, c1 = 0.2 * 255, 0.4 * 255, (0.01 * 255) ** 2
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    value = float(ms_ssim(torch.full((1, 176, 176), 0.2), torch.full((1, 176, 176), 0.4)))
    assert value == pytest.approx(luminance**0.1333, abs=1e-6)


@pytest.mark.parametrize("y_channel", [False, True])
def test_ms_ssim_matches_torchmetrics(y_channel: bool) -> None:
    """torchmetrics' multiscale SSIM (normalize=None: the paper's product) on a real pair, colour and Y.
    Even sizes: for odd ones torchmetrics drops the last row when it halves, where MATLAB mirrors it."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    prediction, target = real_pair()
    reference = multiscale_structural_similarity_index_measure(
        prepare(prediction, y_channel=y_channel) * 255, prepare(target, y_channel=y_channel) * 255,
        data_range=255.0, kernel_size=11, sigma=1.5, betas=MS_SSIM_WEIGHTS, normalize=None, reduction="none",
    )
    assert float(ms_ssim(prediction, target, y_channel=y_channel)) == pytest.approx(float(reference[0]), abs=1e-6)


def test_ms_ssim_is_per_image_and_falls_with_damage() -> None:
    target = load_sample("camera")[:, :192, :192]
    noisy = torch.stack([gaussian_noise(target, sigma, generator=torch.Generator().manual_seed(1)) for sigma in (5, 20)])
    values = ms_ssim(noisy, torch.stack([target, target]))
    assert values.shape == (2,) and bool(values[0] > values[1])
    assert float(values[1]) == pytest.approx(float(ms_ssim(noisy[1], target)), abs=1e-7)


def test_halving_treats_an_odd_edge_as_matlab_does() -> None:
    image = torch.tensor([[1.0, 3.0, 5.0], [3.0, 5.0, 7.0], [10.0, 20.0, 30.0]])[None, None]
    # MS-SSIM: imfilter 'symmetric' mirrors the odd last row and column; GMSD: conv2 'same' pads zeros.
    assert _halve(image, mirror=True)[0, 0].tolist() == [[3.0, 6.0], [15.0, 30.0]]
    assert _halve(image, mirror=False)[0, 0].tolist() == [[3.0, 3.0], [7.5, 7.5]]


def test_ms_ssim_refuses_images_too_small_for_five_scales() -> None:
    with pytest.raises(ValueError, match="176 x 176"):
        ms_ssim(torch.rand(1, 175, 300), torch.rand(1, 175, 300))
    with pytest.raises(ValueError, match="176 x 176"):
        ms_ssim(torch.rand(3, 180, 180), torch.rand(3, 180, 180), crop_border=4)  # 172 x 172 left
    with pytest.raises(ValueError, match="same shape"):
        ms_ssim(torch.rand(3, 180, 180), torch.rand(1, 180, 180))


# ---------------------------------------------------------------- GMSD


def test_gmsd_of_identical_images_is_zero() -> None:
    image = random_image(2, 3, 33, 40)
    assert torch.equal(gmsd(image, image.clone()), torch.zeros(2))


@pytest.mark.parametrize("real", [False, True])
def test_gmsd_matches_opencv(real: bool) -> None:
    """OpenCV's cv2.quality.QualityGMSD follows the authors' MATLAB code (2 x 2 average and halve,
    Prewitt / 3, c = 170) but reports the population standard deviation of the GMS map, where MATLAB's
    std2 divides by N - 1: its score x sqrt(N / (N - 1)) must equal ours. Even sizes only: on odd ones
    OpenCV's halving rounds the size down where MATLAB's keeps the last row."""
    import cv2

    if real:
        prediction, target = real_pair()
    else:
        target = random_image(1, 64, 48, seed=3)
        prediction = (target + 0.2 * random_image(1, 64, 48, seed=4) - 0.1).clamp(0, 1)
    x = (prepare(prediction, y_channel=True)[0, 0] * 255).numpy()
    y = (prepare(target, y_channel=True)[0, 0] * 255).numpy()
    score, quality_map = cv2.quality.QualityGMSD_compute(x, y)
    pixels = quality_map.size
    assert pixels == (x.shape[0] // 2) * (x.shape[1] // 2)
    reference = score[0] * math.sqrt(pixels / (pixels - 1))
    assert float(gmsd(prediction, target, y_channel=True)) == pytest.approx(reference, abs=1e-6)


def test_gmsd_grows_with_blur_and_is_per_image() -> None:
    target = load_sample("camera")[:, 100:228, 100:228]
    blurred = torch.stack([gaussian_blur(target, sigma) for sigma in (0.8, 1.6, 3.2)])
    values = gmsd(blurred, target.expand(3, -1, -1, -1))
    assert values.shape == (3,) and bool((values[1:] > values[:-1]).all())
    assert float(values[2]) == pytest.approx(float(gmsd(blurred[2], target)), abs=1e-7)


def test_gmsd_bad_input() -> None:
    with pytest.raises(ValueError, match="4 x 4"):
        gmsd(torch.rand(1, 3, 8), torch.rand(1, 3, 8))
    with pytest.raises(ValueError, match="same shape"):
        gmsd(torch.rand(1, 8, 8), torch.rand(1, 8, 9))


# ---------------------------------------------------------------- NIQE


def test_pristine_model_is_a_covariance_of_36_features() -> None:
    mean, covariance = pristine_model()
    assert mean.shape == (36,) and covariance.shape == (36, 36)
    assert torch.equal(covariance, covariance.T)
    assert float(torch.linalg.eigvalsh(covariance).min()) > 0
    notice = (MODEL_FOLDER / "NOTICE.txt").read_text()  # the licence of these numbers travels with them
    assert "Copyright (c) 2011 The University of Texas at Austin" in notice


@pytest.mark.parametrize(("shape", "alpha"), [("normal", 2.0), ("laplace", 1.0)])
def test_fit_aggd_recovers_the_shape_of_known_distributions(shape: str, alpha: float) -> None:
    """Moment matching on 200,000 draws: a normal distribution is a generalised Gaussian with alpha 2
    and beta = sigma sqrt(2); a Laplace one has alpha 1 and beta = its scale."""
    generator = np.random.default_rng(0)
    if shape == "normal":
        draws, beta = generator.normal(0, 3, size=200_000), 3 * math.sqrt(2)
    else:
        draws, beta = generator.laplace(0, 3, size=200_000), 3.0
    fitted_alpha, beta_left, beta_right = fit_aggd(torch.from_numpy(draws)[None])
    assert float(fitted_alpha[0]) == pytest.approx(alpha, abs=0.03)
    assert float(beta_left[0]) == pytest.approx(beta, rel=0.02) and float(beta_right[0]) == pytest.approx(beta, rel=0.02)


@pytest.mark.needs_datasets("Set14")
def test_niqe_matches_matlab_on_baboon(datasets_dir: Path) -> None:
    """MATLAB R2021a with the LIVE release gives 5.72957338 for baboon's 8-bit Y, as BasicSR's
    `calculate_niqe` docstring reports (BasicSR v1.4.2, basicsr/metrics/niqe.py); BasicSR's baboon is
    Set14's with its last 8 columns cut, which NIQE never reads (it uses the top-left 480 x 480).
    We give 5.72996. Tolerance 1e-3: NIQE picks each alpha from a grid of step 0.001, so baboon's
    score moves by up to 1e-3 when 1e-9 of noise is added to the image (float32 vs float64 arithmetic
    does as much); real mistakes move it further (PyTorch's bicubic for MATLAB's: +1.9, sigma 1 window: +1.9,
    covariance over N: +0.04, gray instead of Y: +0.0016)."""
    baboon = load_image(datasets_dir / "Set14" / "HR" / "baboon.png")
    assert float(niqe(baboon)) == pytest.approx(5.72957338, abs=1e-3)


@pytest.mark.parametrize(("name", "reference"), [("chelsea", 2.6255243812915023), ("coins", 3.622671715936883)])
def test_niqe_matches_basicsr_on_bundled_photos(name: str, reference: float) -> None:
    """No MATLAB value is published for these bundled CC0 photos: the reference is BasicSR's own NIQE
    (v1.4.2, commit 8d56e3a0, `calculate_niqe(img, 0, convert_to='y')`, run as shipped on the PNG read
    by OpenCV), an independent implementation. Its float32 arithmetic puts it 3e-6 (chelsea) and 7e-6
    (coins) from our float64; 1e-9 of noise moves these two images by under 1e-10."""
    assert float(niqe(load_sample(name))) == pytest.approx(reference, abs=1e-4)


def test_niqe_is_lower_for_the_clean_photo_than_for_blurred_or_noisy_copies() -> None:
    photo = load_sample("chelsea")
    clean = float(niqe(photo))
    blurred = float(niqe(gaussian_blur(photo, 1.5)))
    noisy = float(niqe(gaussian_noise(photo, 15, generator=torch.Generator().manual_seed(0))))
    assert clean < 3 and min(blurred, noisy) > 6  # measured: 2.63, 7.14 and 7.44


def test_niqe_is_per_image() -> None:
    photos = torch.stack([load_sample("chelsea")[:, :, :200], load_sample("chelsea")[:, :, 200:400]])
    values = niqe(photos)
    assert values.shape == (2,)
    assert float(values[1]) == pytest.approx(float(niqe(photos[1])), abs=1e-6)
    assert niqe(photos[0]).shape == ()  # one (C, H, W) image gives a 0-d tensor


def test_niqe_bad_input() -> None:
    with pytest.raises(ValueError, match="two 96 x 96 blocks"):
        niqe(torch.rand(1, 100, 150))  # one whole block
    with pytest.raises(ValueError, match="two 96 x 96 blocks"):
        niqe(torch.rand(1, 200, 200), crop_border=10)  # 180 x 180: one block
    with pytest.raises(ValueError, match="one channel"):
        niqe(torch.rand(3, 200, 200), y_channel=False)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        niqe(torch.rand(200, 200))
    with pytest.raises(ValueError, match="two 96 x 96 blocks"):
        niqe_of_gray(torch.rand(1, 200, 200))


def test_quality_scores_are_each_metric_under_one_protocol() -> None:
    generator = torch.Generator().manual_seed(3)
    reference = torch.rand(3, 200, 200, generator=generator)
    image = (reference + 0.05 * torch.randn(3, 200, 200, generator=generator)).clamp(0, 1)
    protocol = {"crop_border": 4, "y_channel": True, "round_to_8bit": True}
    scores = quality_scores(image, reference, **protocol)
    assert list(scores) == list(HIGHER_IS_BETTER)
    pair = (image[None], reference[None])
    expected = {"PSNR": psnr(*pair, **protocol), "SSIM": ssim(*pair, **protocol), "MS-SSIM": ms_ssim(*pair, **protocol),
                "GMSD": gmsd(*pair, **protocol), "NIQE": niqe(image, **protocol)}
    for name, value in expected.items():
        assert scores[name] == pytest.approx(float(value.reshape(-1)[0]), abs=1e-12), name
