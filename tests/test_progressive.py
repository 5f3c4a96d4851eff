"""LapSRN and DBPN: shapes, scales, the pyramid, bilinear and bicubic starts, the projection algebra,
published sizes, training, and the way through Experiment, checkpoints and `upscale`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.degradations import downscale
from sr_teach.experiment import Experiment
from sr_teach.inference import upscale
from sr_teach.interpolation import resize
from sr_teach.losses import charbonnier_loss
from sr_teach.models import DBPN, MODELS, LapSRN, build_model, count_parameters
from sr_teach.models.progressive import (
    PROJECTION_LAYERS, DownProjection, UpProjection, bilinear_kernel, pyramid_loss,
)
from sr_teach.pretrained import load_model
from test_experiment import photo_folder, small_config  # noqa: F401  (photo_folder is a fixture)

SCALES = [2, 4, 8]
FACTORIES = {
    "lapsrn": lambda scale, channels: LapSRN(scale=scale, num_channels=channels),
    "dbpn": lambda scale, channels: DBPN(scale=scale, num_channels=channels),
    "dbpn_residual": lambda scale, channels: DBPN(scale=scale, num_channels=channels, global_residual=True),
    "dbpn_three_stages": lambda scale, channels: DBPN(scale=scale, num_channels=channels, num_stages=3),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("variant", FACTORIES)
def test_output_is_scale_times_the_input(variant: str, scale: int, channels: int) -> None:
    model = FACTORIES[variant](scale, channels)
    with torch.no_grad():
        output = model(torch.rand(2, channels, 5, 7))  # odd sides: no size may be lost on the way up and down
    assert output.shape == (2, channels, 5 * scale, 7 * scale)
    assert model.upsampling == "post" and model.scales == (scale,)


@pytest.mark.parametrize("name", ["lapsrn", "dbpn"])
@pytest.mark.parametrize("scale", [1, 3, 6, 16])
def test_scales_without_the_papers_layers_are_refused(name: str, scale: int) -> None:
    if name == "dbpn" or scale != 16:  # LapSRN builds x16 (four levels); DBPN knows only 2, 4 and 8
        with pytest.raises(ValueError, match="LapSRN enlarges in steps of x2|defined for x2, x4 and x8"):
            build_model(name, scale=scale)
    else:
        assert build_model(name, scale=16).num_levels == 4


def test_bad_sizes_are_refused_in_plain_words() -> None:
    with pytest.raises(ValueError, match="depth >= 1"):
        LapSRN(depth=0)
    with pytest.raises(ValueError, match="num_stages of at least 1"):
        DBPN(num_stages=0)
    with pytest.raises(ValueError, match="num_channels=1.*3 channels"):
        DBPN()(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        LapSRN()(torch.rand(1, 8, 8))


@pytest.mark.parametrize("scale", SCALES)
def test_the_pyramid_has_one_image_per_x2_level(scale: int) -> None:
    model = LapSRN(scale=scale)
    lr_image = torch.rand(1, 1, 6, 5)
    with torch.no_grad():
        levels = model.pyramid(lr_image)
        assert [level.shape[-2:] for level in levels] == [(6 * 2**k, 5 * 2**k) for k in range(1, len(levels) + 1)]
        assert len(levels) == model.num_levels == {2: 1, 4: 2, 8: 3}[scale]
        assert torch.equal(levels[-1], model(lr_image))


def test_the_bilinear_kernel_is_torch_bilinear_x2() -> None:
    image = torch.rand(1, 1, 9, 8)
    layer = nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel()[None, None])
        enlarged = layer(F.pad(image, (1, 1, 1, 1), mode="replicate"))
    # Edges included: the edge padding plays the part of interpolate's clamping at the border.
    torch.testing.assert_close(enlarged, F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False))
    assert bilinear_kernel().sum() == pytest.approx(4.0)  # stride 2: each output pixel gets weights summing to 1


@pytest.mark.parametrize("scale", SCALES)
def test_untrained_lapsrn_is_bilinear_one_x2_at_a_time(scale: int) -> None:
    torch.manual_seed(0)
    model = LapSRN(scale=scale, num_channels=3)
    lr_image = torch.rand(2, 3, 7, 6)
    expected = lr_image
    for _ in range(model.num_levels):
        expected = F.interpolate(expected, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert (model(lr_image) - expected).abs().mean() < 0.01  # residuals start near zero
        for prediction in model.residual_prediction:
            prediction.weight.zero_()
        torch.testing.assert_close(model(lr_image), expected)  # the image branch alone
        # ...and three bilinear x2 steps are not one bilinear x8: the pyramid is its own path
        if scale == 8:
            one_step = F.interpolate(lr_image, scale_factor=8, mode="bilinear", align_corners=False)
            assert (model(lr_image) - one_step).abs().max() > 0.01


def test_pyramid_loss_compares_each_level_with_the_hr_image_shrunk_to_it() -> None:
    torch.manual_seed(0)
    hr_image = torch.rand(2, 1, 32, 24)
    targets = [downscale(hr_image, 4), downscale(hr_image, 2), hr_image]  # x2, x4, x8 of a 4 x 3 input
    levels = [target + 0.1 * torch.randn_like(target) for target in targets]
    expected = sum(charbonnier_loss(level, target.float()) for level, target in zip(levels, targets))
    torch.testing.assert_close(pyramid_loss(levels, hr_image), expected)
    # perfect levels leave only Charbonnier's floor, eps = 1e-3 per level
    assert pyramid_loss([target.float() for target in targets], hr_image).item() == pytest.approx(3e-3, rel=1e-3)
    with pytest.raises(ValueError, match="last level"):
        pyramid_loss(levels[:2], hr_image)


class Nearest(nn.Module):
    """Copy each pixel into a factor x factor block, times `gain`: a hand-made enlargement."""

    def __init__(self, factor: int, gain: float = 1.0) -> None:
        super().__init__()
        self.factor, self.gain = factor, gain

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.gain * image.repeat_interleave(self.factor, dim=-2).repeat_interleave(self.factor, dim=-1)


def test_up_projection_corrects_by_the_enlarged_error_on_a_hand_made_case() -> None:
    low = torch.rand(1, 2, 3, 4)
    unit = UpProjection(channels=2, scale=2)
    unit.upsample, unit.downsample, unit.upsample_error = Nearest(2), nn.AvgPool2d(2), Nearest(2)
    # Block averages undo block copies: the error is zero, nothing to correct.
    assert torch.equal(unit(low), Nearest(2)(low))
    # A shrink that halves: down(H0) - L = -L/2, enlarged and added: H = copy(L) - copy(L)/2.
    unit.downsample = nn.Sequential(nn.AvgPool2d(2), Nearest(1, gain=0.5))
    torch.testing.assert_close(unit(low), Nearest(2, gain=0.5)(low))


def test_down_projection_corrects_by_the_shrunk_error_on_a_hand_made_case() -> None:
    high = torch.rand(1, 2, 6, 8)
    unit = DownProjection(channels=2, scale=2)
    unit.downsample, unit.upsample, unit.downsample_error = nn.AvgPool2d(2), Nearest(2), nn.AvgPool2d(2)
    average = nn.AvgPool2d(2)(high)
    # copy(avg(H)) - H averages to zero over each block, whatever H holds: L = avg(H).
    torch.testing.assert_close(unit(high), average)
    # An enlargement that doubles: the error averages to L0, so L = L0 + L0.
    unit.upsample = Nearest(2, gain=2.0)
    torch.testing.assert_close(unit(high), 2 * average)


@pytest.mark.parametrize("scale", SCALES)
def test_projection_units_are_wired_as_the_paper_writes_them(scale: int) -> None:
    torch.manual_seed(0)
    up, down = UpProjection(4, scale), DownProjection(4, scale)
    low = torch.rand(2, 4, 5, 6)
    with torch.no_grad():
        h0 = up.upsample(low)
        torch.testing.assert_close(up(low), h0 + up.upsample_error(up.downsample(h0) - low))
        high = up(low)
        l0 = down.downsample(high)
        torch.testing.assert_close(down(high), l0 + down.downsample_error(down.upsample(l0) - high))
    kernel_size, stride, padding = PROJECTION_LAYERS[scale]
    assert (up.upsample[0].kernel_size, up.upsample[0].stride, up.upsample[0].padding) == \
        ((kernel_size,) * 2, (stride,) * 2, (padding,) * 2)


@pytest.mark.parametrize("scale", SCALES)
def test_dbpn_with_the_bicubic_skip_starts_as_matlab_bicubic(scale: int) -> None:
    torch.manual_seed(0)
    model = DBPN(scale=scale, global_residual=True, num_stages=4)
    lr_image = torch.rand(1, 1, 6, 7)
    bicubic = resize(lr_image, scale=scale, clamp=False)
    with torch.no_grad():
        assert (model(lr_image) - bicubic).abs().mean() < 0.01  # features stay small through four stages
        stages = model.stages(lr_image)
        assert len(stages) == 4 and all(stage.shape == (1, 8, 6 * scale, 7 * scale) for stage in stages)
        model.reconstruction.weight.zero_()
        torch.testing.assert_close(model(lr_image), bicubic)


def test_published_and_counted_sizes() -> None:
    # LapSRN x4 at the paper's size: 812K weights, as quoted by Lai et al., TPAMI 2018 (arXiv:1710.01992)
    model = LapSRN(scale=4, **LapSRN.PAPER)
    assert sum(p.numel() for name, p in model.named_parameters() if not name.endswith("bias")) == 812_768
    # DBPN counted by hand: features, T up and T - 1 down units of 3 layers (+ PReLU slopes), reconstruction
    for scale, (kernel_size, _, _) in PROJECTION_LAYERS.items():
        channels, n0, nr, stages = 1, 32, 8, 3
        layer = nr * nr * kernel_size**2 + nr + 1
        expected = (9 * channels * n0 + n0 + 1) + (n0 * nr + nr + 1) + (2 * stages - 1) * 3 * layer \
            + (stages * nr * 9 * channels + channels)
        assert count_parameters(DBPN(scale=scale, num_stages=stages)) == expected


@pytest.mark.parametrize("name", ["lapsrn", "dbpn"])
def test_each_trains_its_loss_falls_in_a_few_steps(name: str) -> None:
    torch.manual_seed(0)
    lr_image = torch.rand(4, 1, 12, 12)
    hr_image = Nearest(4)(lr_image)  # a target the network can learn exactly: blocks, not interpolation
    model = build_model(name, scale=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = F.mse_loss(model(lr_image), hr_image)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


def test_lapsrn_trains_on_every_level_with_the_pyramid_loss() -> None:
    torch.manual_seed(0)
    lr_image, model = torch.rand(4, 1, 12, 12), LapSRN(scale=4)
    hr_image = Nearest(4)(lr_image)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = pyramid_loss(model.pyramid(lr_image), hr_image).item()
    for _ in range(20):
        loss = pyramid_loss(model.pyramid(lr_image), hr_image)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first
    assert all(parameter.grad is not None for parameter in model.parameters())


@pytest.mark.parametrize("name, scale", [("lapsrn", 4), ("dbpn", 2)])
def test_through_experiment_checkpoint_and_upscale(name: str, scale: int, photo_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    assert MODELS[name] in (LapSRN, DBPN)
    experiment = Experiment(small_config(photo_folder, model=name, scale=scale, patch_size=8))
    history = experiment.train(steps=4)
    assert experiment.trainer.step == 4 and history.validation_psnr
    model = load_model(experiment.save(tmp_path / f"{name}.pt"), scale=scale)
    assert type(model) is MODELS[name] and model.config == experiment.model.config
    rebuilt = build_model(name, **asdict(model.config))  # the config alone rebuilds it
    rebuilt.load_state_dict(model.state_dict())
    photo = np.zeros((10, 13, 3), dtype=np.uint8)
    assert upscale(model, photo).shape == (10 * scale, 13 * scale, 3)
    with pytest.raises(ValueError, match="power of two"):
        Experiment(small_config(photo_folder, model="lapsrn", scale=3))
