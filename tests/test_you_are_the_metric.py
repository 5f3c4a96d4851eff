"""Lesson 14's "you are the metric" widget: the pairs, the picks, the rankings and their agreement with
the metrics, driven without a browser."""

from __future__ import annotations

import math

import pytest
import torch

from sr_teach.ambiguity import gradient_energy
from sr_teach.degradations import gaussian_blur, gaussian_noise
from sr_teach.images import load_sample
from sr_teach.metrics import gmsd, niqe, psnr
from sr_teach.widgets.you_are_the_metric import (
    HIGHER_IS_BETTER,
    YouAreTheMetric,
    YouAreTheMetricView,
    average_ranks,
    kendall_tau_b,
    spearman_rho,
    zoomed,
)


@pytest.fixture(scope="module")
def crops() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A 192 x 192 colour crop of a bundled photo and four spoiled copies of it, mildest first."""
    reference = load_sample("astronaut")[:, 100:292, 160:352]  # (3, 192, 192)
    spoiled = {
        "noise 3": gaussian_noise(reference, 3, torch.Generator().manual_seed(0)),
        "blur 1": gaussian_blur(reference, 1.0),
        "blur 2": gaussian_blur(reference, 2.0),
        "noise 30": gaussian_noise(reference, 30, torch.Generator().manual_seed(1)),
    }
    return spoiled, reference


@pytest.fixture()
def game(crops) -> YouAreTheMetric:
    return YouAreTheMetric(*crops, seed=3)


def pick_like(game: YouAreTheMetric, order: list[str]) -> None:
    """Judge every pair as someone who ranks the crops in `order` (best first) would."""
    while game.current is not None:
        left, right = game.current
        game.pick("left" if order.index(left) < order.index(right) else "right")


# ------------------------------------------------------------------------------- rank statistics


def test_average_ranks_share_ties():
    assert average_ranks([5, 7, 5]) == [1.5, 3.0, 1.5]
    assert average_ranks([3, 1, 2]) == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("seed", range(6))
def test_rank_correlations_match_scipy_with_and_without_ties(seed):
    stats = pytest.importorskip("scipy.stats")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (7,), generator=generator).tolist()  # small integers: ties are common
    y = torch.rand(7, generator=generator).tolist() if seed % 2 else torch.randint(0, 3, (7,), generator=generator).tolist()
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_rank_correlations_of_same_reversed_and_constant_orders():
    assert kendall_tau_b([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman_rho([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([2, 2, 2], [1, 2, 3]))
    assert math.isnan(spearman_rho([1, 2, 3], [5, 5, 5]))


# ------------------------------------------------------------------------------------- the state


def test_every_pair_is_dealt_once_in_a_seeded_order(crops):
    game = YouAreTheMetric(*crops, seed=3)
    names = list(crops[0])
    assert len(game.pairs) == 6
    assert {frozenset(pair) for pair in game.pairs} == {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:]}
    assert game.pairs == YouAreTheMetric(*crops, seed=3).pairs
    assert game.pairs != YouAreTheMetric(*crops, seed=4).pairs
    # the sides are drawn too: a crop is not always on the left because it came first in the dict
    assert any(names.index(left) > names.index(right) for left, right in game.pairs)


def test_the_metrics_are_measured_on_the_8_bit_luma(game, crops):
    spoiled, reference = crops
    for name, crop in spoiled.items():
        assert game.scores["PSNR"][name] == pytest.approx(
            float(psnr(crop[None], reference[None], y_channel=True, round_to_8bit=True)[0]))
        assert game.scores["GMSD"][name] == pytest.approx(
            float(gmsd(crop[None], reference[None], y_channel=True, round_to_8bit=True)[0]))
        assert game.scores["NIQE"][name] == pytest.approx(float(niqe(crop)))
    assert set(game.scores) == set(HIGHER_IS_BETTER)
    # the full-reference metrics put the mildest damage first and the heaviest last
    for metric in ("PSNR", "SSIM", "MS-SSIM", "GMSD"):
        ranking = game.ranking(metric)
        assert ranking[0] == "noise 3" and ranking[-1] in ("noise 30", "blur 2"), (metric, ranking)


def test_picks_wins_undo_and_their_errors(game):
    left, right = game.current
    game.pick("left")
    game.pick("same")
    assert game.wins()[left] >= 1.0
    assert sum(game.wins().values()) == 2.0
    game.undo()
    assert len(game.picks) == 1 and game.source == "you"
    with pytest.raises(ValueError, match="choose one of"):
        game.pick("both")
    with pytest.raises(ValueError, match="judge all 6 pairs first"):
        game.rank_correlations()
    while not game.finished:
        game.pick("right")
    assert sum(game.wins().values()) == len(game.pairs)
    with pytest.raises(ValueError, match="undo"):
        game.pick("left")
    game.reset()
    assert game.picks == [] and game.current == game.pairs[0]


def test_picks_in_psnr_order_agree_with_psnr_and_reversed_ones_disagree(game):
    pick_like(game, game.ranking("PSNR"))
    assert game.ranking() == game.ranking("PSNR")
    tau, rho = game.rank_correlations()["PSNR"]
    assert tau == pytest.approx(1.0) and rho == pytest.approx(1.0)
    game.reset()
    pick_like(game, game.ranking("PSNR")[::-1])
    tau, rho = game.rank_correlations()["PSNR"]
    assert tau == pytest.approx(-1.0) and rho == pytest.approx(-1.0)


def test_all_same_leaves_the_correlations_undefined(game):
    while not game.finished:
        game.pick("same")
    assert all(math.isnan(tau) and math.isnan(rho) for tau, rho in game.rank_correlations().values())


def test_a_rule_can_pick_in_your_place_and_says_so(game):
    game.pick("left")
    rule = "the sharper one by gradient energy"
    game.pick_by_rule(lambda crop: float(gradient_energy(crop)), rule)
    assert game.finished and game.source == f"you and {rule}"
    game.reset()
    game.pick_by_rule(lambda crop: float(gradient_energy(crop)), rule)
    assert game.source == rule
    assert game.ranking()[0] == "noise 30"  # noise is the "sharpest" of all: why this rule is only a stand-in
    game.reset()
    game.pick_by_rule(lambda crop: 1.0, rule, same_within=0.0)  # equal scores: every pair the same
    assert set(game.wins().values()) == {1.5}


def test_the_table_lists_every_crop_and_the_agreement(game):
    pick_like(game, ["blur 1", "noise 3", "blur 2", "noise 30"])
    table = game.table()
    for name in game.names:
        assert name in table
    assert "Kendall tau" in table and "picks by you" in table
    assert table.index("blur 1") < table.index("noise 30")  # rows in the picks' order


def test_bad_inputs_are_refused_in_words(crops):
    spoiled, reference = crops
    with pytest.raises(ValueError, match="at least three"):
        YouAreTheMetric(dict(list(spoiled.items())[:2]), reference)
    with pytest.raises(ValueError, match="every crop must be"):
        YouAreTheMetric({**spoiled, "small": reference[:, :100]}, reference)


# -------------------------------------------------------------------------------------- the view


def test_zoomed_repeats_each_pixel():
    crop = torch.arange(4.0).reshape(1, 2, 2)
    assert torch.equal(zoomed(crop, 2)[0], torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))


def test_the_view_is_driven_by_its_buttons(game):
    pytest.importorskip("ipywidgets")
    view = YouAreTheMetricView(game, zoom=2)
    first_left = view.left_image.value
    assert first_left and view.progress.max == 6 and view.results.value == ""
    view.buttons["left"].click()
    assert len(game.picks) == 1 and game.picks[0].choice == "left"
    assert view.progress.value == 1 and "1 of 6" in view.progress_text.value
    view.undo_button.click()
    assert game.picks == [] and view.left_image.value == first_left
    for choice in ("right", "same", "left", "left", "right", "same"):
        view.buttons[choice].click()
    assert game.finished and all(button.disabled for button in view.buttons.values())
    assert "Kendall tau" in view.results.value
    view.buttons["left"].click()  # a click after the end changes nothing
    assert len(game.picks) == 6
