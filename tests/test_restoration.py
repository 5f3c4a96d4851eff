"""Restoration at the same size: the models, the degradations that make their pairs, the benchmark
protocols against the published tables, the classical baselines and the command line."""

from __future__ import annotations

import json

import pytest
import torch

from sr_teach import classical
from sr_teach.cli import main
from sr_teach.degradations import DegradationConfig, corrupt, gaussian_noise
from sr_teach.images import load_sample, rgb_to_gray, save_image
from sr_teach.metrics import psnr
from sr_teach.models import ARCNN, ESPCN, RESTORATION_MODELS, DnCNN, UNet, build_model, count_parameters
from sr_teach.restoration import PUBLISHED_RESTORATION, RestorationTask, evaluate_restoration, model_restorer


# ----- models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RESTORATION_MODELS))
@pytest.mark.parametrize("channels", [{"num_channels": 1}, {"num_channels": 3}, {"num_channels": 3, "input_channels": 1},
                                      {"num_channels": 1, "mask_input": True}, {"num_channels": 3, "input_channels": 1,
                                                                                "mask_input": True}])
def test_restoration_models_keep_the_size_with_any_channels(name: str, channels: dict) -> None:
    model = build_model(name, **channels, **({"num_features": 8} if name == "unet" else {}))
    assert model.scale == 1 and model.scales == (1,)
    image_channels = channels.get("input_channels", channels["num_channels"])
    assert model.in_channels == image_channels + channels.get("mask_input", False)
    with torch.no_grad():
        output = model(torch.rand(2, model.in_channels, 19, 26))  # odd sizes: padded inside, cropped back
    assert output.shape == (2, channels["num_channels"], 19, 26)


@pytest.mark.parametrize("model, last_layer", [
    (DnCNN(), lambda model: model.layers[-1]),
    (ARCNN(), lambda model: model.layers[-1]),
    (UNet(num_features=8, num_channels=3, input_channels=1, mask_input=True), lambda model: model.output),
])
def test_a_zero_last_layer_returns_the_input_image(model, last_layer) -> None:
    # residual learning: the network adds a correction to the input image (gray copied to R, G, B)
    with torch.no_grad():
        last_layer(model).weight.zero_()
        last_layer(model).bias.zero_()
        damaged = torch.rand(1, model.in_channels, 16, 16)
        expected = damaged[:, :model.image_channels].expand(-1, model.num_channels, -1, -1)
        assert torch.allclose(model(damaged), expected)


def test_parameter_counts_match_the_papers() -> None:
    # DnCNN-S: 17 layers of 64, batch norm in the 15 middle ones (0.56M); AR-CNN 64-32-16-1, 9-7-1-5 (106K)
    assert count_parameters(DnCNN(**DnCNN.PAPER)) == (9 * 64 + 64) + 15 * (9 * 64 * 64 + 2 * 64) + (9 * 64 + 1)
    assert count_parameters(ARCNN()) == (81 * 64 + 64) + (49 * 64 * 32 + 32) + (32 * 16 + 16) + (25 * 16 + 1)


def test_restoration_models_refuse_another_scale_and_sr_models_refuse_a_mask() -> None:
    with pytest.raises(ValueError, match="same size: scale must be 1"):
        DnCNN(scale=2)
    with pytest.raises(ValueError, match="restoration model"):
        ESPCN(mask_input=True)
    with pytest.raises(ValueError, match="input_channels"):
        DnCNN(input_channels=2)
    with pytest.raises(ValueError, match="built with 2 input channels"):
        DnCNN(mask_input=True)(torch.rand(1, 1, 8, 8))


def test_dncnn_folds_blocks_so_a_tile_must_start_on_them() -> None:
    # the 2 x 2 fold makes an odd shift change the result, as VDSR's does: tiles follow the fold
    torch.manual_seed(0)
    model = DnCNN().eval()
    image = torch.rand(1, 1, 80, 80)  # the 12 layers on 2 x 2 blocks reach 24 pixels: compare the middle
    with torch.no_grad():
        whole, even, odd = model(image), model(image[..., 2:, 2:]), model(image[..., 1:, 1:])
    assert torch.allclose(whole[..., 36:44, 36:44], even[..., 34:42, 34:42], atol=1e-5)
    assert not torch.allclose(whole[..., 36:44, 36:44], odd[..., 35:43, 35:43], atol=1e-3)


# ----- degradations -----------------------------------------------------------------------------


def test_noise_and_jpeg_ranges_draw_a_setting_per_image() -> None:
    clean = torch.full((8, 1, 32, 32), 0.5)
    noisy = corrupt(clean, DegradationConfig(noise_sigma=(5.0, 50.0), noise_clip=False), torch.Generator().manual_seed(0))
    sigmas = (noisy - clean).std(dim=(1, 2, 3)) * 255
    assert sigmas.min() > 3 and sigmas.max() < 55 and sigmas.max() - sigmas.min() > 10
    photo = load_sample("camera")[..., :64, :64]
    batch = photo.expand(6, -1, -1, -1)
    compressed = corrupt(batch, DegradationConfig(jpeg_quality=(5, 90)), torch.Generator().manual_seed(1))
    errors = {round(float((image - photo).abs().mean()), 5) for image in compressed}
    assert len(errors) > 2  # not one quality for the whole batch


def test_unclipped_noise_keeps_values_outside_the_range() -> None:
    black = torch.zeros(1, 64, 64)
    generator = torch.Generator().manual_seed(0)
    assert gaussian_noise(black, 25, generator, clip=False).min() < 0
    assert gaussian_noise(black, 25, generator).min() == 0
    assert abs(float(gaussian_noise(black, 25, generator, clip=False).std()) * 255 - 25) < 1.5


@pytest.mark.parametrize("bad", [{"noise_sigma": -1}, {"noise_sigma": (30, 10)}, {"jpeg_quality": 0},
                                 {"jpeg_quality": (5, 100)}, {"damage": "rain"}, {"mask_input": True},
                                 {"damage": "dusk", "mask_input": True}])
def test_bad_degradation_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        DegradationConfig(**bad)


def test_damage_gray_and_mask_compose_into_the_input() -> None:
    photo = load_sample("astronaut")[..., :48, :48]
    config = DegradationConfig(damage="holes", damage_options={"kind": "rectangles"}, grayscale=True, mask_input=True)
    damaged = corrupt(photo, config, torch.Generator().manual_seed(0))
    assert damaged.shape == (2, 48, 48)  # gray image + mask
    mask = damaged[1:] > 0
    assert mask.any() and (damaged[:1][mask] == 0).all()  # holes are filled with 0 where the mask says
    untouched = ~mask[0]
    assert torch.allclose(damaged[0][untouched], rgb_to_gray(photo)[0][untouched])


# ----- protocols and published tables ----------------------------------------------------------


@pytest.mark.needs_datasets("Classic5", "LIVE1_gray")
@pytest.mark.parametrize("dataset", ["Classic5", "LIVE1_gray"])
def test_the_jpeg_column_of_the_published_table_is_reproduced(datasets_dir, dataset: str) -> None:
    for quality in (10, 40):
        result = evaluate_restoration(lambda image: image, dataset, RestorationTask("jpeg", quality),
                                      method="JPEG", data_dir=datasets_dir)
        assert result.mean["psnr"] == pytest.approx(PUBLISHED_RESTORATION[(dataset, "jpeg", quality)]["JPEG"], abs=0.01)


@pytest.mark.needs_datasets("Set12")
def test_bm3d_on_a_set12_image_matches_its_published_score(datasets_dir) -> None:
    # BM3D's published 29.45 dB on Cameraman (Set12 01) at sigma 25; another noise draw moves it by hundredths
    result = evaluate_restoration(lambda image: classical.bm3d_denoise(image, 25), "Set12", RestorationTask("denoise", 25),
                                  method="bm3d", data_dir=datasets_dir, max_images=1)
    assert result.images[0].name == "01"
    assert result.mean["psnr"] == pytest.approx(29.45, abs=0.1)
    assert "sigma 25" in result.table() and "published BM3D: 29.97" in result.table()


def test_noise_protocol_resets_the_generator_for_every_image() -> None:
    task = RestorationTask("denoise", 25)
    clean = torch.full((1, 16, 16), 0.5)
    assert torch.equal(task.damage(clean), task.damage(clean))
    assert task.damage(clean).max() > 0.5 + 40 / 255  # not clipped, not rounded: the tables' scripts
    with pytest.raises(ValueError, match="quality"):
        RestorationTask("jpeg", 10.5)


# ----- classical baselines ----------------------------------------------------------------------


def test_classical_denoisers_improve_a_noisy_photo() -> None:
    clean = load_sample("camera")[..., 100:164, 100:164]
    noisy = gaussian_noise(clean, 25, torch.Generator().manual_seed(0))
    before = float(psnr(noisy, clean))
    for denoise in (classical.bm3d_denoise, classical.nlm_denoise):
        assert float(psnr(denoise(noisy, 25), clean)) > before + 3
    assert float(psnr(classical.tv_smooth(noisy, 0.1), clean)) > before + 2


def test_biharmonic_inpainting_fills_a_hole_from_its_border() -> None:
    ramp = torch.linspace(0, 1, 32).expand(1, 32, 32).clone()
    mask = torch.zeros(1, 32, 32)
    mask[:, 10:20, 10:20] = 1
    filled = classical.biharmonic_inpaint(ramp * (1 - mask), mask)
    assert torch.allclose(filled, ramp, atol=1e-3)  # a smooth surface is restored exactly


def test_gray_with_mean_chroma_keeps_the_gray_and_adds_one_colour() -> None:
    photo = load_sample("astronaut")
    chroma = classical.mean_chroma([photo])
    colourised = classical.gray_with_mean_chroma(rgb_to_gray(photo), chroma)
    assert colourised.shape == photo.shape
    # the gray stays, except where a colour would leave [0, 1] near black and white and is clipped
    assert float((rgb_to_gray(colourised) - rgb_to_gray(photo)).abs().mean()) < 0.005


# ----- command line -----------------------------------------------------------------------------


def test_restore_writes_a_denoised_file_and_refuses_to_overwrite(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    model = DnCNN(depth=3, num_features=4)
    checkpoint = tmp_path / "tiny_dncnn.pt"
    from sr_teach.checkpoints import save_checkpoint

    save_checkpoint(checkpoint, model, scale=1, model_name="dncnn")
    noisy = tmp_path / "noisy.png"
    save_image(gaussian_noise(load_sample("camera")[..., :40, :50], 25, torch.Generator().manual_seed(0)), noisy)
    output = tmp_path / "restored.png"
    assert main(["restore", str(noisy), str(output), "--model", str(checkpoint)]) == 0
    assert output.exists() and "50x40" in capsys.readouterr().out
    assert main(["restore", str(noisy), str(output), "--model", str(checkpoint)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--task", "denoise"], "needs --sigma"),
    (["--task", "jpeg", "--quality", "0"], "quality must be a whole number from 1 to 95"),
    (["--task", "jpeg", "--quality", "10", "--method", "bm3d"], "does not restore jpeg"),
    (["--sigma", "25"], "add --task denoise"),
    (["--task", "denoise", "--sigma", "25", "--crop-border", "4"], "leave out --crop-border"),
])
def test_evaluate_refuses_a_restoration_task_it_cannot_run(arguments, message, capsys) -> None:
    assert main(["evaluate", "--dataset", "bundled", *arguments]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.needs_datasets("Classic5")
def test_evaluate_json_for_a_jpeg_task(datasets_dir, capsys) -> None:
    assert main(["evaluate", "--task", "jpeg", "--quality", "10", "--dataset", "Classic5", "--data-dir",
                 str(datasets_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["mean"]) >= {"psnr", "ssim"} and len(result["images"]) == 5
    assert result["mean"]["psnr"] == pytest.approx(27.82, abs=0.01) and result["task"] == "JPEG q10"


def test_model_restorer_runs_a_gray_model_on_a_colour_photo() -> None:
    photo = load_sample("astronaut")[..., :40, :40]
    restored = model_restorer(DnCNN(depth=3, num_features=4).eval())(photo)
    assert restored.shape == photo.shape


def test_train_at_scale_one_needs_a_damage_and_resumes_only_the_same_one(tmp_path, capsys) -> None:
    output = tmp_path / "denoiser.pt"
    assert main(["train", "--model", "dncnn", "--scale", "1", "--steps", "1", "--output", str(output)]) == 1
    assert "say what to undo" in capsys.readouterr().err and not output.exists()
    assert main(["train", "--model", "dncnn", "--scale", "1", "--noise-sigma", "0", "55", "--steps", "2",
                 "--patch-size", "16", "--batch-size", "2", "--output", str(output), "--quiet"]) == 0
    from sr_teach.checkpoints import load_checkpoint

    saved = load_checkpoint(output)["extra"]["experiment"]["degradation"]
    assert tuple(saved["noise_sigma"]) == (0.0, 55.0) and saved["noise_clip"] is False
    assert main(["train", "--resume", str(output), "--noise-sigma", "25", "--steps", "1", "--output", str(output)]) == 1
    assert "cannot change on resume" in capsys.readouterr().err
    assert main(["train", "--model", "espcn", "--scale", "1", "--damage", "holes", "--mask-input", "--steps", "1",
                 "--output", str(tmp_path / "other.pt")]) == 1
    assert "use a restoration model" in capsys.readouterr().err


def test_receptive_field_counts_pooling_and_a_mask_channel() -> None:
    from sr_teach.inference import receptive_field_radius

    torch.manual_seed(0)
    model = UNet(num_features=4, levels=2, mask_input=True).eval()
    radius = receptive_field_radius(model)  # runs with the model's 2 input channels
    image = torch.rand(1, 2, 96, 96)
    changed = image.clone()
    changed[..., 48, 48] += 1  # one pixel's influence must stay within the radius (an upper bound)
    with torch.no_grad():
        difference = (model(changed) - model(image))[0, 0].abs()
    rows, columns = (difference > 0).nonzero(as_tuple=True)
    assert max(48 - int(rows.min()), int(rows.max()) - 48, 48 - int(columns.min()), int(columns.max()) - 48) <= radius
    assert radius > receptive_field_radius(DnCNN(depth=3, num_features=4))


def test_validation_photos_get_the_damage_of_the_training_patches(tiny_images) -> None:
    from sr_teach.experiment import Experiment, ExperimentConfig

    folder = str(next(iter(tiny_images.values())).parent)
    experiment = Experiment(ExperimentConfig(
        model="dncnn", scale=1, patch_size=8, batch_size=2, data=(folder,), validation_fraction=0.34,
        degradation=DegradationConfig(damage="holes", damage_options={"count": 1}, mask_input=True),
        model_options={"depth": 3, "num_features": 4}))
    damaged, _ = experiment.trainer.validation_pairs[0]
    mask = damaged[-1]
    # one hole per 8 x 8 tile, each at most a quarter of the tile's side: never one hole across the photo
    assert mask.any() and mask.sum() <= (2 * 2) * (-(-mask.shape[0] // 8)) * (-(-mask.shape[1] // 8))
