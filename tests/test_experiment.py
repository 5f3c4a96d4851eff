"""Experiment wiring, shipped-weights loading and `sr-teach train`: small runs on tiny photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_teach.cli import main
from sr_teach.experiment import AUGMENTATIONS, Experiment, ExperimentConfig
from sr_teach.images import load_sample, save_image
from sr_teach.pretrained import load_model, load_pretrained, pretrained_models
from sr_teach.checkpoints import CheckpointError
from sr_teach.training import TrainConfig


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Four 96 x 96 crops of bundled photos: enough for patches and a validation image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, name in enumerate(["astronaut", "chelsea", "coffee", "rocket"]):
        image = load_sample(name, mode="rgb")[:, 40:136, 60:156]
        save_image(image, folder / f"{index}_{name}.png")
    return folder


def small_config(folder: Path, **overrides) -> ExperimentConfig:
    values = dict(
        model="espcn", scale=2, data=(str(folder),), patch_size=8, batch_size=4, validation_fraction=0.25,
        train=TrainConfig(learning_rate=1e-3, loss="mse", total_steps=100, validation_every=3, log_every=1),
    )
    values.update(overrides)
    return ExperimentConfig(**values)


def test_experiment_trains_validates_and_resumes_exactly(photo_folder: Path, tmp_path: Path) -> None:
    straight = Experiment(small_config(photo_folder))
    straight.train(steps=6)
    assert straight.trainer.step == 6
    assert len(straight.validation_paths) == 1 and len(straight.train_paths) == 3
    assert straight.history.validation_psnr, "validation ran every 3 steps"

    first_half = Experiment(small_config(photo_folder))
    first_half.train(steps=3)
    path = first_half.save(tmp_path / "half.pt")
    resumed = Experiment.resume(path)
    assert resumed.trainer.step == 3
    resumed.train(steps=3)
    for name, value in straight.model.state_dict().items():
        assert torch.allclose(value, resumed.model.state_dict()[name], atol=1e-6), name


def test_experiment_has_no_hidden_side_effects(photo_folder: Path) -> None:
    config = small_config(photo_folder)
    before = config.to_dict()
    torch.manual_seed(42)
    expected = torch.rand(4)
    torch.manual_seed(42)
    first = Experiment(config)
    assert torch.equal(torch.rand(4), expected), "building an Experiment must not reseed torch's global generator"
    first.trainer.config.learning_rate = 2e-3  # what the live panel's slider does
    first.train(steps=2)
    assert config.to_dict() == before, "the caller's config is read, never changed"
    second = Experiment(config)  # the same config builds the same initial weights, whatever came before
    third = Experiment(config)
    for name, value in second.model.state_dict().items():
        assert torch.equal(value, third.model.state_dict()[name]), name


def test_bicubic_line_is_the_psnr_of_bicubic_enlargement(photo_folder: Path) -> None:
    from sr_teach.data import load_validation_pairs
    from sr_teach.interpolation import resize
    from sr_teach.metrics import psnr

    for model in ("espcn", "srcnn"):  # post: enlarge the input; pre: the input is the bicubic already
        experiment = Experiment(small_config(photo_folder, model=model))
        pairs = load_validation_pairs(experiment.validation_paths, 2, 1, pre_upsample=False, max_size=256)
        expected = [float(psnr(resize(lr[None], scale=2), hr[None], crop_border=2)) for lr, hr in pairs]
        assert experiment.bicubic_psnr() == pytest.approx(sum(expected) / len(expected), abs=1e-4)


def test_save_refuses_to_overwrite_and_load_model_checks_the_scale(photo_folder: Path, tmp_path: Path) -> None:
    experiment = Experiment(small_config(photo_folder))
    experiment.train(steps=2)
    path = experiment.save(tmp_path / "espcn_x2.pt")
    with pytest.raises(FileExistsError):
        experiment.save(path)
    model = load_model(path, scale=2)
    assert model.scale == 2 and not model.training
    with pytest.raises(CheckpointError, match="x2"):
        load_model(path, scale=3)


def test_pre_upsampling_experiment_learns_several_scales(photo_folder: Path, tmp_path: Path) -> None:
    config = small_config(photo_folder, model="vdsr", extra_scales=(3,), model_options={"depth": 3})
    experiment = Experiment(config)
    experiment.train(steps=2)
    path = experiment.save(tmp_path / "vdsr.pt")
    model = load_model(path, scale=3)  # one pre-upsampling model serves both scales
    assert model.upsampling == "pre" and model.scale == 3
    # It is validated at both scales: each held-out image twice, its x2 and its x3 version.
    pairs = experiment.trainer.validation_pairs
    assert len(pairs) == 2 * len(experiment.validation_paths) > 0
    assert experiment.trainer.validation_border == 3


def test_an_experiment_without_validation_trains_and_saves_its_latest_weights(photo_folder: Path, tmp_path: Path) -> None:
    experiment = Experiment(small_config(photo_folder, validation_fraction=0.0))
    assert experiment.validation_paths == [] and experiment.trainer.validation_pairs == []
    history = experiment.train(steps=3)
    assert history.stop_reason == "steps" and history.validation_step == []
    assert load_model(experiment.save(tmp_path / "no_validation.pt"), scale=2).scale == 2


def test_post_upsampling_experiment_refuses_several_scales(photo_folder: Path) -> None:
    with pytest.raises(ValueError, match="one model per scale"):
        Experiment(small_config(photo_folder, extra_scales=(3,)))
    with pytest.raises(ValueError, match="unknown augmentation"):
        Experiment(small_config(photo_folder, augment="sideways"))
    assert set(AUGMENTATIONS) == {"none", "flips", "full"}


@pytest.mark.parametrize("model", ["espcn", "fsrcnn", "srcnn", "vdsr"])
def test_scale_one_with_noise_trains_a_denoiser(photo_folder: Path, model: str) -> None:
    """x1 is restoration without enlargement: the same recipe, with a degradation that spoils pixels.
    The "bicubic" line is then the noisy input itself, and every model keeps the image's size."""
    from sr_teach.degradations import DegradationConfig
    from sr_teach.inference import upscale
    from sr_teach.metrics import psnr

    torch.manual_seed(0)
    experiment = Experiment(small_config(
        photo_folder, model=model, scale=1, patch_size=16, degradation=DegradationConfig(noise_sigma=25),
        model_options={"vdsr": {"depth": 4}, "fsrcnn": {"global_residual": True}}.get(model, {}),
        train=TrainConfig(learning_rate=1e-3, loss="mse", validation_every=None),
    ))
    noisy_input = experiment.bicubic_psnr()
    assert 19 < noisy_input < 22  # 20 log10(255 / 25) = 20.2 dB, a little more where clipping helps
    experiment.train(steps=150)  # at 80 steps FSRCNN was +1.1 dB with one noise draw and +6 with others
    assert experiment.trainer.evaluate() > noisy_input + 2  # removing noise is learned in a few steps

    image = load_sample("camera")[:, :40, :50]
    assert upscale(experiment.model, image, scale=1).shape == image.shape
    assert psnr(upscale(experiment.model, image, scale=1)[None], image[None]).item() > 20


def test_unknown_pretrained_name_names_what_is_shipped() -> None:
    shipped = {(info.name, scale) for info in pretrained_models() for scale in info.scales}
    assert ("espcn", 7) not in shipped
    with pytest.raises(ValueError, match="no pretrained weights for 'espcn' at x7"):
        load_pretrained("espcn", scale=7)


def test_cli_train_then_upscale_and_evaluate_with_the_checkpoint(photo_folder: Path, tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "run.pt"
    arguments = ["train", "--model", "espcn", "--scale", "2", "--data", str(photo_folder), "--steps", "3",
                 "--patch-size", "8", "--batch-size", "4", "--quiet", "--output", str(checkpoint)]
    assert main(arguments) == 0
    assert checkpoint.exists()
    assert main(arguments) == 1  # refuses to overwrite without --force
    assert "exists" in capsys.readouterr().err
    assert main(arguments[:-2] + ["--output", str(checkpoint), "--resume", str(checkpoint)]) == 0
    assert "resuming" in capsys.readouterr().out

    output = tmp_path / "up.png"
    source = next(photo_folder.iterdir())
    assert main(["upscale", str(source), str(output), "--model", str(checkpoint), "--scale", "2"]) == 0
    from PIL import Image
    with Image.open(output) as result:
        assert result.size == (192, 192)
    assert main(["upscale", str(source), str(tmp_path / "up3.png"), "--model", str(checkpoint), "--scale", "3"]) == 1
    assert "x2" in capsys.readouterr().err

    assert main(["evaluate", "--model", str(checkpoint), "--dataset", "bundled", "--scale", "2", "--json"]) == 0
    import json
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == str(checkpoint) and len(result["images"]) == 9


def test_cli_train_needs_a_duration_and_reports_bad_checkpoints(tmp_path: Path, capsys) -> None:
    assert main(["train", "--model", "espcn", "--scale", "2", "--output", str(tmp_path / "x.pt")]) == 1
    assert "--steps" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    image = tmp_path / "in.png"
    save_image(torch.rand(3, 16, 16), image)
    assert main(["upscale", str(image), str(tmp_path / "out.png"), "--model", str(garbage), "--scale", "2"]) == 1
    assert "could not be read" in capsys.readouterr().err
