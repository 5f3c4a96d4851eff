"""The GAN pieces: the relativistic losses against their formula, the discriminator's shapes, a loss
object that trains its discriminator and resumes exactly, network interpolation, and the fine-tune
wired through Experiment and the zoo."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sr_teach.adversarial import (
    AdversarialConfig, AdversarialLoss, PatchDiscriminator, interpolate_weights, interpolated_model, relativistic_losses,
)
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.images import load_sample, save_image
from sr_teach.models import ESPCN
from sr_teach.pretrained import load_pretrained
from sr_teach.tools.zoo import FSRCNN_OPTIONS, RECIPES
from sr_teach.training import TrainConfig


def test_relativistic_losses_follow_the_formula() -> None:
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(3, 1, 4, 4, generator=generator), torch.randn(3, 1, 4, 4, generator=generator) - 1
    d_real = torch.sigmoid(real - fake.mean())  # D_Ra(x_r, x_f)
    d_fake = torch.sigmoid(fake - real.mean())  # D_Ra(x_f, x_r)
    expected_d = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean()) / 2
    expected_g = -(torch.log(1 - d_real).mean() + torch.log(d_fake).mean()) / 2
    discriminator, generator_loss = relativistic_losses(real, fake)
    assert discriminator.item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert generator_loss.item() == pytest.approx(expected_g.item(), rel=1e-5)


def test_a_discriminator_that_cannot_tell_gives_log_2_and_a_sure_one_gives_zero() -> None:
    same = torch.full((2, 1, 3, 3), 0.7)
    assert [value.item() for value in relativistic_losses(same, same)] == pytest.approx([math.log(2)] * 2)
    discriminator, generator = relativistic_losses(torch.full((2, 1, 3, 3), 10.0), torch.full((2, 1, 3, 3), -10.0))
    assert discriminator.item() < 1e-6 and generator.item() > 19  # the generator is told how far it is


def test_the_discriminator_gives_one_verdict_per_patch_and_its_features() -> None:
    logits, features = PatchDiscriminator(num_channels=3, num_features=8)(torch.rand(2, 3, 48, 64))
    assert logits.shape == (2, 1, 6, 8)
    assert [tuple(feature.shape) for feature in features] == [(2, 8, 24, 32), (2, 16, 12, 16), (2, 32, 6, 8)]


def test_each_call_trains_the_discriminator_and_the_loss_reaches_the_generator() -> None:
    loss = AdversarialLoss(AdversarialConfig(discriminator_features=4), num_channels=1)
    before = {name: value.clone() for name, value in loss.discriminator.state_dict().items()}
    prediction = torch.rand(2, 1, 32, 32, requires_grad=True)
    value = loss(prediction, torch.rand(2, 1, 32, 32))
    value.backward()
    assert value.dim() == 0 and prediction.grad is not None and prediction.grad.abs().sum() > 0
    changed = [name for name, tensor in loss.discriminator.state_dict().items() if not torch.equal(tensor, before[name])]
    assert changed, "one discriminator step per call"
    assert {name: len(values) for name, values in loss.history.items()} == dict.fromkeys(loss.history, 1)
    config = loss.config
    parts = loss.last_parts
    assert value.item() == pytest.approx((config.pixel_weight * parts["pixel"] + config.adversarial_weight
                                          * parts["adversarial"] + config.feature_weight * parts["feature"]).item())


def test_the_loss_resumes_exactly_from_its_state() -> None:
    images = torch.rand(4, 2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    small = AdversarialConfig(discriminator_features=4)
    straight, first = AdversarialLoss(small), AdversarialLoss(small)
    for prediction, target in images[:2]:
        straight(prediction[None], target[None])
        first(prediction[None], target[None])
    resumed = AdversarialLoss(AdversarialConfig(discriminator_features=4, seed=5))  # other weights, then loaded
    resumed.load_state_dict(first.state_dict())
    for prediction, target in images[2:]:
        expected = straight(prediction[None], target[None]).item()
        assert resumed(prediction[None], target[None]).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("bad", [dict(pixel_weight=-1.0), dict(pixel_weight=0, adversarial_weight=0, feature_weight=0),
                                 dict(discriminator_learning_rate=0.0)])
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        AdversarialConfig(**bad)


def test_network_interpolation_blends_every_weight() -> None:
    psnr_model, gan_model = ESPCN(scale=2), ESPCN(scale=2)
    for parameter in gan_model.parameters():
        torch.nn.init.constant_(parameter, 1.0)
    for alpha in (0.0, 0.25, 1.0):
        blended = interpolated_model(psnr_model, gan_model, alpha)
        for (name, value), psnr_value in zip(blended.state_dict().items(), psnr_model.state_dict().values()):
            assert torch.allclose(value, (1 - alpha) * psnr_value + alpha * 1.0, atol=1e-6), name
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(psnr_model.state_dict(), gan_model.state_dict(), 1.5)
    with pytest.raises(ValueError, match="different layers"):
        interpolate_weights(psnr_model.state_dict(), gan_model.state_dict() | {"extra": torch.ones(1)}, 0.5)
    with pytest.raises(ValueError, match="in one network"):
        interpolate_weights(psnr_model.state_dict(), ESPCN(scale=3).state_dict(), 0.5)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, name in enumerate(["astronaut", "chelsea", "coffee", "rocket"]):
        save_image(load_sample(name, mode="rgb")[:, 20:148, 40:168], folder / f"{index}_{name}.png")
    return folder


def gan_config(folder: Path) -> ExperimentConfig:
    return ExperimentConfig(
        model="fsrcnn", scale=4, model_options=FSRCNN_OPTIONS, data=(str(folder),), patch_size=8, batch_size=2,
        validation_fraction=0.25, initial_weights="fsrcnn_x4", adversarial=AdversarialConfig(discriminator_features=4),
        train=TrainConfig(learning_rate=1e-4, loss="l1", total_steps=20, validation_every=None, log_every=1),
    )


def test_a_gan_fine_tune_starts_from_shipped_weights_and_resumes_exactly(photo_folder: Path, tmp_path: Path) -> None:
    experiment = Experiment(gan_config(photo_folder))
    assert experiment.trainer.config.divergence_factor is None  # a GAN's loss swings: only NaN/inf stops it
    shipped = load_pretrained("fsrcnn", scale=4).state_dict()
    assert all(torch.equal(value, shipped[name]) for name, value in experiment.model.state_dict().items())
    experiment.train(steps=2)
    path = experiment.save(tmp_path / "gan.pt", use_best=False)
    resumed = Experiment.resume(path)
    assert resumed.trainer.loss_function.history == experiment.trainer.loss_function.history
    experiment.train(steps=2)
    resumed.train(steps=2)
    for name, value in experiment.model.state_dict().items():
        assert torch.allclose(value, resumed.model.state_dict()[name], atol=1e-6), name


def test_initial_weights_that_do_not_fit_are_refused_in_words(photo_folder: Path) -> None:
    config = gan_config(photo_folder)
    with pytest.raises(ValueError, match="do not fit"):
        Experiment(ExperimentConfig(**{**config.__dict__, "model_options": {**FSRCNN_OPTIONS, "num_mapping_layers": 2}}))


def test_the_zoo_ships_the_gan_as_trained_not_as_its_best_psnr() -> None:
    recipe = RECIPES["fsrcnn_gan_x4"]
    assert not recipe.keep_best and recipe.experiment.adversarial is not None
    assert recipe.published == {}  # FSRCNN's published PSNR is not this model's target
    assert recipe.experiment.initial_weights == "fsrcnn_x4"
