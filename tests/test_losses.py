"""Tests for sr_teach.losses and sr_teach.texture_loss: against torch.nn.functional, the library's
SSIM, NumPy's FFT and hand-computed cases; the Charbonnier -> L1 limit; what each loss ignores."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_teach.degradations import downscale, gaussian_blur
from sr_teach.images import load_sample
from sr_teach.interpolation import resize
from sr_teach.losses import (LOSSES, charbonnier_loss, fft_loss, get_loss, gradient_loss, l1_loss, l1_texture_loss,
                             mse_loss, ssim_loss)
from sr_teach.metrics import ssim
from sr_teach.texture_loss import MIN_SIZE, gram_matrix, random_features, random_filters, texture_loss


def random_pair(seed: int = 0, shape: tuple[int, ...] = (2, 3, 8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)


def test_mse_matches_torch() -> None:
    prediction, target = random_pair()
    torch.testing.assert_close(mse_loss(prediction, target), F.mse_loss(prediction, target))


def test_l1_matches_torch() -> None:
    prediction, target = random_pair()
    torch.testing.assert_close(l1_loss(prediction, target), F.l1_loss(prediction, target))


def test_gradients_match_torch() -> None:
    for ours, reference in [(mse_loss, F.mse_loss), (l1_loss, F.l1_loss)]:
        prediction, target = random_pair(seed=1)
        prediction.requires_grad_(True)
        ours(prediction, target).backward()
        our_gradient = prediction.grad.clone()
        prediction.grad = None
        reference(prediction, target).backward()
        torch.testing.assert_close(our_gradient, prediction.grad)


def test_losses_are_scalars_and_zero_for_equal_images() -> None:
    prediction, _ = random_pair(shape=(2, 3, 24, 24))  # the SSIM window and the texture pyramid need room
    for name, loss in LOSSES.items():
        value = loss(prediction, prediction.clone())
        assert value.shape == (), name
        if name != "charbonnier":
            assert value.item() == pytest.approx(0.0, abs=1e-6), name
    assert mse_loss(prediction, prediction) == 0 and l1_loss(prediction, prediction) == 0
    # Charbonnier of a perfect prediction is eps, its minimum, not 0
    assert charbonnier_loss(prediction, prediction, eps=1e-3).item() == pytest.approx(1e-3)


def test_charbonnier_formula() -> None:
    prediction, target = random_pair(seed=2)
    eps = 0.05
    expected = torch.sqrt((prediction - target) ** 2 + eps**2).mean()
    torch.testing.assert_close(charbonnier_loss(prediction, target, eps=eps), expected)


@pytest.mark.parametrize("eps", [1e-1, 1e-2, 1e-3, 1e-6])
def test_charbonnier_is_between_l1_and_l1_plus_eps(eps: float) -> None:
    prediction, target = random_pair(seed=3)
    l1 = l1_loss(prediction, target).item()
    charbonnier = charbonnier_loss(prediction, target, eps=eps).item()
    assert l1 <= charbonnier <= l1 + eps + 1e-6


def test_charbonnier_approaches_l1_for_small_eps() -> None:
    prediction, target = random_pair(seed=4)
    l1 = l1_loss(prediction, target).item()
    gaps = [charbonnier_loss(prediction, target, eps=eps).item() - l1 for eps in (1e-1, 1e-2, 1e-3)]
    assert gaps[0] > gaps[1] > gaps[2] >= 0
    assert charbonnier_loss(prediction, target, eps=1e-6).item() == pytest.approx(l1, abs=1e-5)


def test_charbonnier_is_smooth_where_l1_is_not() -> None:
    # at zero error |x| has no derivative; Charbonnier's gradient is 0 there
    prediction = torch.zeros(1, 1, 2, 2, requires_grad=True)
    charbonnier_loss(prediction, torch.zeros(1, 1, 2, 2)).backward()
    assert torch.equal(prediction.grad, torch.zeros(1, 1, 2, 2))


def test_mismatched_shapes_are_refused() -> None:
    # (B, 1, H, W) against (B, H, W) would otherwise broadcast to (B, B, H, W) without a word
    for loss in LOSSES.values():
        with pytest.raises(ValueError, match="same shape"):
            loss(torch.rand(4, 1, 8, 8), torch.rand(4, 8, 8))
        with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
            loss(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


def test_get_loss_by_name() -> None:
    assert get_loss("mse") is mse_loss
    assert get_loss("l1") is l1_loss
    assert get_loss("charbonnier") is charbonnier_loss
    assert get_loss("ssim") is ssim_loss and get_loss("gradient") is gradient_loss and get_loss("fft") is fft_loss
    assert get_loss("texture") is l1_texture_loss
    for name, loss in LOSSES.items():
        assert get_loss(name) is loss


def test_get_loss_returns_a_callable_unchanged() -> None:
    assert get_loss(F.smooth_l1_loss) is F.smooth_l1_loss

    def my_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().max()

    assert get_loss(my_loss) is my_loss


def test_get_loss_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown loss 'psnr'") as error:
        get_loss("psnr")
    for name in LOSSES:
        assert name in str(error.value)


def test_get_loss_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="loss name or a function"):
        get_loss(3)


# ---------------------------------------------------------------- SSIM, gradient, FFT and texture losses


def photo_pair(size: int = 64, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of a bundled photo (target, (1, C, size, size)) and its bicubic x2 down-and-up version."""
    target = load_sample("astronaut")[:channels, 150 : 150 + size, 180 : 180 + size]
    return resize(downscale(target, 2), scale=2)[None], target[None]


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_loss_is_one_minus_the_library_ssim(channels: int) -> None:
    prediction, target = photo_pair(channels=channels)
    batch = (torch.cat([prediction, target * 0.9]), torch.cat([target, target]))  # two images, two SSIMs
    reference = 1 - ssim(*batch).mean()  # no protocol: float64 on 0..255, per image, then averaged
    assert 0.01 < float(reference) < 0.5
    torch.testing.assert_close(ssim_loss(*batch), reference.float(), rtol=0, atol=2e-6)


def test_ssim_loss_in_float64_is_the_metric_exactly() -> None:
    prediction, target = photo_pair()
    assert float(ssim_loss(prediction.double(), target.double())) == pytest.approx(1 - float(ssim(prediction, target)),
                                                                                   abs=1e-7)


def test_ssim_loss_weighs_brightness_relative_to_the_local_mean() -> None:
    _, target = photo_pair(channels=1)
    bright = 0.5 + 0.4 * target  # the photo in 0.5 .. 0.9
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0)) * 0.02
    # comparable L1 errors, but the shift leaves every local structure as it was
    assert l1_loss(bright + 0.02, bright) > 0.5 * l1_loss(bright + noise, bright)
    assert ssim_loss(bright + 0.02, bright) < 0.02 * ssim_loss(bright + noise, bright)
    # the same shift in a dark image costs far more: SSIM's luminance term is relative (Weber's law)
    dark = 0.02 + 0.1 * target
    assert ssim_loss(dark + 0.02, dark) > 20 * ssim_loss(bright + 0.02, bright)


def test_gradient_loss_by_hand_and_against_torch_diff() -> None:
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 3, 4) / 10  # rises by 0.1 per column
    # across: every difference off by 0.1; down: all 0. Mean of the two: 0.05
    assert float(gradient_loss(ramp, torch.zeros_like(ramp))) == pytest.approx(0.05)
    prediction, target = random_pair(seed=5)
    expected = ((torch.diff(prediction, dim=-1) - torch.diff(target, dim=-1)).abs().mean()
                + (torch.diff(prediction, dim=-2) - torch.diff(target, dim=-2)).abs().mean()) / 2
    torch.testing.assert_close(gradient_loss(prediction, target), expected)


def test_gradient_loss_ignores_a_constant_shift_but_not_a_blur() -> None:
    _, target = photo_pair()
    assert float(gradient_loss(target + 0.1, target)) == pytest.approx(0.0, abs=1e-6)
    assert l1_loss(target + 0.1, target).item() == pytest.approx(0.1)
    assert gradient_loss(gaussian_blur(target[0], 1.0)[None], target) > 0.005


def test_fft_loss_against_numpy() -> None:
    prediction, target = random_pair(seed=6, shape=(2, 3, 8, 10))
    spectrum = np.fft.rfft2((prediction - target).double().numpy(), norm="ortho")  # over the last two axes
    expected = (np.abs(spectrum.real) + np.abs(spectrum.imag)).mean()
    assert float(fft_loss(prediction, target)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("height", "width"), [(8, 8), (5, 7)])
def test_fft_loss_of_an_impulse_and_of_a_constant(height: int, width: int) -> None:
    # one pixel off by a at the origin: every coefficient of the orthonormal spectrum is a / sqrt(H W), real
    impulse = torch.zeros(1, 1, height, width)
    impulse[..., 0, 0] = 0.6
    coefficients = height * (width // 2 + 1)
    assert float(fft_loss(impulse, torch.zeros_like(impulse))) == pytest.approx(0.6 / (height * width) ** 0.5)
    # a constant error c lives in the mean (DC) coefficient alone: c sqrt(H W), one of M coefficients
    constant = torch.full((1, 1, height, width), 0.2)
    assert float(fft_loss(constant, torch.zeros_like(constant))) == pytest.approx(
        0.2 * (height * width) ** 0.5 / coefficients)


def test_fft_loss_keeps_the_phase_so_a_shift_counts() -> None:
    _, target = photo_pair()
    shifted = target.roll(shifts=3, dims=-1)
    same_magnitudes = torch.fft.rfft2(shifted).abs() - torch.fft.rfft2(target).abs()
    assert float(same_magnitudes.abs().max()) < 1e-3  # a magnitude loss would see no difference
    assert fft_loss(shifted, target) > 0.5 * l1_loss(shifted, target)


def test_random_filters_are_seeded_cached_and_leave_the_global_generator_alone() -> None:
    random_filters.cache_clear()
    state = torch.random.get_rng_state()
    filters = random_filters(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert random_filters(3) is filters  # drawn once
    random_filters.cache_clear()
    assert torch.equal(random_filters(3), filters)  # and the same when drawn again
    assert not torch.equal(random_filters(3, seed=1), filters)
    assert filters.shape == (16, 3, 5, 5)
    torch.testing.assert_close(filters.mean(dim=(1, 2, 3)), torch.zeros(16), rtol=0, atol=1e-6)
    torch.testing.assert_close(filters.flatten(start_dim=1).norm(dim=1), torch.ones(16))


def test_gram_matrix_against_a_loop() -> None:
    features = random_pair(seed=7, shape=(2, 4, 5, 6))[0]
    expected = torch.stack([torch.stack([torch.stack([(features[b, i] * features[b, j]).mean() for j in range(4)])
                                         for i in range(4)]) for b in range(2)])
    torch.testing.assert_close(gram_matrix(features), expected)


def texture(seed: int, sigma: float, size: int = 64) -> torch.Tensor:
    """A stationary random texture: white noise blurred by sigma pixels, (1, 1, size, size) around 0.5."""
    noise = torch.randn(1, size, size, generator=torch.Generator().manual_seed(seed))
    blurred = gaussian_blur(noise, sigma)
    return (0.5 + 0.15 * blurred / blurred.std())[None]


def test_texture_loss_ignores_where_a_texture_sits() -> None:
    _, photo = photo_pair()
    for shifts in [(1, 0), (0, -3), (17, 22)]:
        shifted = photo.roll(shifts=shifts, dims=(-2, -1))
        assert float(texture_loss(shifted, photo)) == pytest.approx(0.0, abs=1e-7)
    assert l1_loss(shifted, photo) > 0.05
    # two different samples of one random texture: close, though no pixel agrees
    one, another = texture(seed=0, sigma=1.5, size=128), texture(seed=1, sigma=1.5, size=128)
    for other_statistics in (texture(seed=1, sigma=1.0, size=128), texture(seed=1, sigma=3.0, size=128)):
        assert texture_loss(one, another) < 0.4 * texture_loss(one, other_statistics)


def test_texture_loss_sees_a_change_of_statistics() -> None:
    _, photo = photo_pair()
    blurred = gaussian_blur(photo[0], 1.5)[None]  # the same scene, its fine texture gone
    assert texture_loss(blurred, photo) > 1e-4 and texture_loss(photo * 0.8 + 0.1, photo) > 1e-4  # contrast too
    features = random_features(photo)
    assert [tuple(level.shape) for level in features] == [(1, 16, 64, 64)] * 3


def test_l1_texture_loss_is_l1_plus_the_weighted_texture_term() -> None:
    prediction, target = photo_pair()
    expected = l1_loss(prediction, target) + 2.5 * texture_loss(prediction, target)
    torch.testing.assert_close(l1_texture_loss(prediction, target, texture_weight=2.5), expected)
    assert l1_texture_loss(prediction, target, texture_weight=0) == l1_loss(prediction, target)


@pytest.mark.parametrize("name", ["ssim", "gradient", "fft", "texture"])
def test_new_losses_have_correct_gradients(name: str) -> None:
    prediction, target = random_pair(seed=8, shape=(1, 1, MIN_SIZE, MIN_SIZE))
    prediction = prediction.double().requires_grad_(True)
    assert torch.autograd.gradcheck(LOSSES[name], (prediction, target.double()), eps=1e-6, atol=1e-5)


def test_every_loss_trains_a_network() -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 1, 24, 24)
    for name, loss in LOSSES.items():
        network = torch.nn.Conv2d(1, 1, kernel_size=3, padding=1)
        loss(network(images), images.flip(-1)).backward()
        assert network.weight.grad.abs().sum() > 0 and torch.isfinite(network.weight.grad).all(), name


@pytest.mark.parametrize(("loss", "size", "message"), [
    (ssim_loss, 10, "at least 11 x 11"), (gradient_loss, 1, "at least 2 x 2"),
    (texture_loss, MIN_SIZE - 1, f"at least {MIN_SIZE} x {MIN_SIZE}"), (l1_texture_loss, 8, "at least"),
])
def test_too_small_images_are_refused(loss, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        loss(torch.rand(1, 1, size, 64), torch.rand(1, 1, size, 64))


def test_a_negative_texture_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="texture_weight"):
        l1_texture_loss(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), texture_weight=-1.0)
