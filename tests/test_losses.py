"""Tests for sr_teach.losses: against torch.nn.functional, and the Charbonnier -> L1 limit."""

import pytest
import torch
import torch.nn.functional as F

from sr_teach.losses import LOSSES, charbonnier_loss, get_loss, l1_loss, mse_loss


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
    prediction, _ = random_pair()
    for name, loss in LOSSES.items():
        value = loss(prediction, prediction.clone())
        assert value.shape == (), name
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
