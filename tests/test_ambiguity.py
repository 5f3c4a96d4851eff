"""sr_teach.ambiguity: different sharp images that shrink to one LR image, and why their average is blurry."""

from __future__ import annotations

import pytest
import torch

from sr_teach.ambiguity import (
    CandidateConfig,
    against_candidates,
    back_project,
    enlarge_linear,
    gradient_energy,
    high_frequencies,
    plausible_candidates,
    random_patches,
    shrink_linear,
)
from sr_teach.degradations import downscale
from sr_teach.images import load_sample, rgb_to_luma

SCALE = 4


@pytest.fixture(scope="module")
def family() -> dict:
    """The luma of a bundled photo's 48 x 48 patch, its LR image and five candidates made from the
    detail of other bundled photos."""
    hr_image = rgb_to_luma(load_sample("astronaut"))[:, 180:228, 220:268].double()  # (1, 48, 48)
    lr_image = downscale(hr_image, SCALE)  # (1, 12, 12), the library's MATLAB bicubic, clipped
    others = [rgb_to_luma(load_sample(name)) for name in ("coffee", "chelsea", "rocket")] + [load_sample("camera")]
    sources = random_patches(others, size=48, count=5, generator=torch.Generator().manual_seed(0))
    detail_rms = float(high_frequencies(hr_image, SCALE).pow(2).mean().sqrt())
    candidates = plausible_candidates(lr_image, SCALE, sources, CandidateConfig(detail_rms=detail_rms))
    return {"hr": hr_image, "lr": lr_image, "sources": sources, "candidates": candidates}


def test_shrink_linear_is_downscale_without_the_clip():
    image = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1)).double()
    assert torch.allclose(shrink_linear(image, SCALE).clamp(0, 1), downscale(image, SCALE), atol=1e-12)
    # linear: the shrink of a sum is the sum of the shrinks (the clip would break this)
    other = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(2)).double() * 3 - 1
    assert torch.allclose(shrink_linear(image + other, SCALE), shrink_linear(image, SCALE) + shrink_linear(other, SCALE))


def test_high_frequencies_are_what_the_round_trip_loses():
    image = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(3)).double()
    detail = high_frequencies(image, SCALE)
    assert torch.allclose(enlarge_linear(shrink_linear(image, SCALE), SCALE) + detail, image)
    flat = torch.full((1, 16, 16), 0.4, dtype=torch.float64)
    assert high_frequencies(flat, SCALE).abs().max() < 1e-12  # a flat image loses nothing


def test_every_candidate_shrinks_to_the_given_lr_image(family):
    candidates, lr_image = family["candidates"], family["lr"]
    assert candidates.shape == (5, 1, 48, 48)
    assert candidates.min() >= 0 and candidates.max() <= 1
    for candidate in candidates:
        assert float((downscale(candidate, SCALE) - lr_image).abs().max()) <= 1e-6
    # so all of them give the same 8-bit LR file
    stored = [torch.round(downscale(candidate, SCALE) * 255) for candidate in candidates]
    assert all(torch.equal(image, torch.round(lr_image * 255)) for image in stored)


def test_the_candidates_differ_from_each_other_and_from_the_original(family):
    candidates, hr_image = family["candidates"], family["hr"]
    for i in range(len(candidates)):
        assert float((candidates[i] - hr_image).abs().max()) > 0.05
        for j in range(i + 1, len(candidates)):
            difference = (candidates[i] - candidates[j]).pow(2).mean().sqrt()
            assert float(difference) > 0.01, f"candidates {i} and {j} are nearly the same"


def test_the_average_is_smoother_than_each_candidate(family):
    candidates = family["candidates"]
    average = candidates.mean(dim=0)
    energies = gradient_energy(candidates)  # (K,)
    assert float(gradient_energy(average)) < float(energies.min())


def test_the_average_is_the_mse_optimal_point(family):
    candidates = family["candidates"]
    average = candidates.mean(dim=0)
    best = against_candidates(average, candidates)
    for candidate in [*candidates, family["hr"], enlarge_linear(family["lr"], SCALE)]:
        other = against_candidates(candidate, candidates)
        assert other.mean_squared_distance > best.mean_squared_distance
        # the bias-variance identity: E|p - c|^2 = E|average - c|^2 + |p - average|^2
        excess = float((candidate - average).pow(2).mean())
        assert other.mean_squared_distance == pytest.approx(best.mean_squared_distance + excess, rel=1e-9)
    assert best.expected_psnr == pytest.approx(-10 * torch.log10(torch.tensor(best.mean_squared_distance)).item())


def test_against_candidates_gives_psnr_per_candidate(family):
    candidates = family["candidates"]
    scores = against_candidates(candidates[0], candidates)
    assert scores.psnr.shape == (5,)
    assert scores.psnr[0] == float("inf")
    mse = float((candidates[0] - candidates[1]).pow(2).mean())
    assert float(scores.psnr[1]) == pytest.approx(10 * torch.log10(torch.tensor(1 / mse)).item())
    assert scores.gradient_energy == pytest.approx(float(gradient_energy(candidates[0])))


def test_back_project_reports_its_steps_and_refuses_to_stop_short():
    generator = torch.Generator().manual_seed(4)
    lr_image = torch.rand(1, 8, 8, generator=generator).double() * 0.8 + 0.1
    start = torch.rand(1, 32, 32, generator=generator).double()
    result = back_project(start, lr_image, SCALE)
    assert 0 < result.iterations < 500 and result.max_error <= 1e-6
    assert float((shrink_linear(result.image, SCALE) - lr_image).abs().max()) == pytest.approx(result.max_error)
    with pytest.raises(ValueError, match="max_iterations"):
        back_project(start, lr_image, SCALE, CandidateConfig(max_iterations=2))
    with pytest.raises(ValueError, match="shrinks x4"):
        back_project(start, lr_image[:, :4], SCALE)


def test_gradient_energy_of_known_images():
    stripes = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    stripes[..., :, 1::2] = 1  # columns 0 1 0 1: every horizontal step is 1, vertical 0
    assert float(gradient_energy(stripes)[0]) == pytest.approx(1.0)
    assert float(gradient_energy(torch.full((1, 4, 4), 0.3))) == 0.0


def test_random_patches_are_seeded_and_cycle_through_the_images():
    images = [torch.rand(1, 30, 40), torch.rand(1, 50, 20)]
    first = random_patches(images, 16, 4, torch.Generator().manual_seed(5))
    again = random_patches(images, 16, 4, torch.Generator().manual_seed(5))
    assert first.shape == (4, 1, 16, 16) and torch.equal(first, again)
    with pytest.raises(ValueError, match="smaller than"):
        random_patches(images, 32, 2, torch.Generator())


def test_sizes_that_do_not_fit_are_refused_in_words():
    with pytest.raises(ValueError, match="multiples of the scale"):
        shrink_linear(torch.rand(1, 10, 12), SCALE)
    with pytest.raises(ValueError, match="HR size"):
        plausible_candidates(torch.rand(1, 4, 4), SCALE, torch.rand(2, 1, 12, 12))
