"""The shipped weights: they load without a network, record how they were made, and still score
what they say on Set5 (the published-table protocol, measured again here)."""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest
import torch

from sr_teach.cli import main
from sr_teach.images import load_image, load_sample, save_image
from sr_teach.pretrained import load_pretrained, pretrained_models
from sr_teach.tools.zoo import RECIPES, measure

SHIPPED = pretrained_models()
SHIPPED_CASES = [(info, scale) for info in SHIPPED for scale in info.scales]
SHIPPED_SR = [info for info in SHIPPED if not info.restores]


def test_the_zoo_ships_weights_for_every_recipe() -> None:
    assert sorted(info.path.stem for info in SHIPPED) == sorted(RECIPES)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*arguments, **options):
        raise AssertionError("sr_teach tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("info, scale", SHIPPED_CASES, ids=lambda case: getattr(case, "label", str(case)))
def test_weights_load_offline_and_upscale(no_network, info, scale: int) -> None:
    model = load_pretrained(info.path.stem if info.label == info.path.stem else info.name, scale=scale)  # by file name
    lr_image = torch.rand(1, model.in_channels, 12, 14, generator=torch.Generator().manual_seed(0))
    model_input = torch.nn.functional.interpolate(lr_image, scale_factor=scale) if model.upsampling == "pre" else lr_image
    with torch.no_grad():
        assert model(model_input).shape == (1, model.num_channels, 12 * scale, 14 * scale)


@pytest.mark.parametrize("info", SHIPPED, ids=lambda info: info.path.stem)
def test_each_file_records_its_recipe_data_and_results(info) -> None:
    extra = info.extra
    recipe = RECIPES[info.path.stem]
    assert extra["recipe"]["command"] == f"sr-teach zoo train {recipe.name}"
    assert extra["recipe"]["steps"] == recipe.steps  # the recipe in the code is the one that made the file
    assert extra["experiment"]["model_options"] == recipe.experiment.model_options
    assert extra["experiment"]["train"]["learning_rate"] == recipe.experiment.train.learning_rate
    assert extra["experiment"]["train"]["loss"] == recipe.experiment.train.loss
    assert extra["scales"] == list(recipe.scales)
    assert extra["experiment"]["data"] == ["T91", "BSD200"]
    assert len(extra["training_images"]) + len(extra["validation_images"]) == 291
    assert not set(extra["training_images"]) & set(extra["validation_images"])
    if info.restores:  # measured on its tasks' test sets, e.g. {"Set12": {"sigma 25": ...}}
        assert {(dataset, str(task)) for dataset, task in recipe.benchmarks} == {
            (dataset, setting) for dataset, by_setting in extra["results"].items() for setting in by_setting}
    else:
        assert set(extra["results"]) == {"Set5", "Set14"}
        assert sorted(int(scale) for scale in extra["results"]["Set5"]) == sorted(info.scales)


@functools.cache
def measured_on_set5(stem: str, data_dir: Path) -> dict[str, dict[str, float]]:
    """Set5 Y-PSNR/SSIM of a shipped file at each of its scales, measured now (once per test session)."""
    info = next(info for info in SHIPPED if info.path.stem == stem)
    return measure(info.load(), info.scales, data_dir, datasets=("Set5",))["Set5"]


@pytest.mark.needs_datasets("Set5")
@pytest.mark.parametrize("info", SHIPPED_SR, ids=lambda info: info.path.stem)
def test_each_model_still_reaches_its_documented_set5_psnr(datasets_dir: Path, info) -> None:
    measured = measured_on_set5(info.path.stem, datasets_dir)
    for scale, documented in info.extra["results"]["Set5"].items():
        assert measured[scale]["psnr"] == pytest.approx(documented["psnr"], abs=0.01), f"x{scale}"


def test_cli_uses_shipped_weights_by_name(no_network, tmp_path: Path, capsys) -> None:
    source = tmp_path / "small.png"
    save_image(load_sample("astronaut", mode="rgb")[:, :40, :50], source)
    assert main(["upscale", str(source), str(tmp_path / "big.png"), "--model", "espcn", "--scale", "3"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_image(tmp_path / "big.png").shape == (3, 120, 150)


@pytest.mark.needs_datasets("Set5")
def test_the_multi_scale_vdsr_beats_each_single_scale_srcnn(datasets_dir: Path) -> None:
    """One pre-upsampling model for x2, x3 and x4 against three SRCNNs, one per scale, measured on Set5."""
    vdsr = measured_on_set5("vdsr", datasets_dir)
    assert sorted(vdsr) == ["2", "3", "4"]
    for scale in vdsr:
        srcnn = measured_on_set5(f"srcnn_x{scale}", datasets_dir)
        assert vdsr[scale]["psnr"] > srcnn[scale]["psnr"], f"Set5 x{scale}"


@pytest.mark.needs_datasets("Set12", "Classic5")
@pytest.mark.parametrize("stem, dataset, task", [("dncnn_gray", "Set12", ("denoise", 25)),
                                                 ("dncnn_jpeg", "Classic5", ("jpeg", 10))])
def test_restoration_models_still_reach_their_documented_psnr(datasets_dir: Path, stem: str, dataset: str, task) -> None:
    from sr_teach.restoration import RestorationTask, evaluate_restoration, model_restorer

    task = RestorationTask(*task)
    info = next(info for info in SHIPPED if info.path.stem == stem)
    result = evaluate_restoration(model_restorer(load_pretrained(stem, 1)), dataset, task, method=stem,
                                  data_dir=datasets_dir)
    assert result.mean["psnr"] == pytest.approx(info.extra["results"][dataset][str(task)]["psnr"], abs=0.01)
