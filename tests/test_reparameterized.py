"""ECBSR: branches that merge into one 3 x 3 (float64 exactly, float32 within 1e-5), fixed edge masks,
gradients in training form, shapes, inference size and cost, and the way through Experiment and checkpoints."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_teach.experiment import Experiment
from sr_teach.inference import receptive_field_radius, upscale
from sr_teach.models import ECBSR, MODELS, VDSR, CollapsedECBSR, build_model, count_parameters
from sr_teach.models.reparameterized import (
    BRANCHES, EDGE_FILTERS, EdgeFilter, EdgeOrientedConvolutionBlock, ExpandSqueeze, compose,
)
from sr_teach.pretrained import load_model
from sr_teach.tools.cost import macs_per_output_pixel
from test_experiment import photo_folder, small_config  # noqa: F401  (photo_folder is a fixture)

SCALES = [2, 3, 4]


def trained_looking(model: torch.nn.Module, noise: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """The model with every parameter moved by noise, so each branch (not only the 3 x 3) matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(noise * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scale", SCALES)
def test_output_is_scale_times_the_input_in_every_form(scale: int, channels: int) -> None:
    lr_image = torch.rand(2, channels, 5, 7)  # odd sides
    expanded = ECBSR(scale=scale, num_channels=channels, num_blocks=2, num_features=8, train_branches=True)
    for output in (expanded.train()(lr_image), expanded.eval()(lr_image), expanded.collapse()(lr_image)):
        assert output.shape == (2, channels, 5 * scale, 7 * scale)
    assert expanded.upsampling == "post" and expanded.scales == (scale,)


@pytest.mark.parametrize("scale", SCALES)
def test_collapsed_equals_expanded_exactly_in_float64(scale: int) -> None:
    torch.manual_seed(scale)
    expanded = trained_looking(ECBSR(scale=scale, num_channels=3, num_blocks=3, num_features=8,
                                     train_branches=True).double()).train()
    lr_image = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    branch_by_branch = expanded(lr_image)  # every branch run, as the paper trains
    collapsed = expanded.collapse()
    assert all(type(module) in (torch.nn.Conv2d, torch.nn.PReLU, torch.nn.PixelShuffle, torch.nn.Sequential,
                                CollapsedECBSR) for module in collapsed.modules())
    torch.testing.assert_close(collapsed(lr_image), branch_by_branch, rtol=0, atol=1e-10)
    torch.testing.assert_close(expanded.eval()(lr_image), branch_by_branch, rtol=0, atol=1e-10)


def test_collapsed_equals_expanded_within_1e5_in_float32() -> None:
    torch.manual_seed(1)
    # the default M10C32; noise 0.02 keeps the outputs near [0, 1], where images live, yet 0.16 from the skip
    expanded = trained_looking(ECBSR(scale=2, train_branches=True), noise=0.02).train()
    lr_image = torch.rand(1, 1, 12, 12)
    branch_by_branch = expanded(lr_image)
    assert (branch_by_branch - F.interpolate(lr_image, scale_factor=2)).abs().mean() > 0.1
    collapsed = expanded.collapse()
    assert (collapsed(lr_image) - branch_by_branch).abs().max() < 1e-5
    # eval mode runs the same merged kernels as the collapsed network: the same numbers
    torch.testing.assert_close(expanded.eval()(lr_image), collapsed(lr_image), rtol=0, atol=1e-6)


def test_each_branch_merges_into_one_convolution() -> None:
    torch.manual_seed(2)
    features = torch.rand(1, 4, 6, 5, dtype=torch.float64)
    branches = [ExpandSqueeze(4, 3, expansion=2), *(EdgeFilter(4, 3, mask) for mask in EDGE_FILTERS.values())]
    for branch in branches:
        branch = trained_looking(branch.double())  # includes the edge scales, which start at 1e-3
        weight, bias = branch.merged()
        torch.testing.assert_close(F.conv2d(features, weight, bias, padding=1), branch(features), rtol=0, atol=1e-12)
    pointwise, kernel = torch.randn(5, 4, 1, 1), torch.randn(3, 5, 3, 3)
    composed = compose(pointwise, kernel)  # (3, 4, 3, 3)
    torch.testing.assert_close(composed[1, 2], sum(kernel[1, m] * pointwise[m, 2, 0, 0] for m in range(5)))


def test_edge_filters_measure_slopes_and_curvature() -> None:
    # An independent reference: on a ramp the Sobel-x response is -8 x the slope (the weights 1, 2, 1
    # times a difference of 2 pixels), Sobel-y and the Laplacian see nothing; on x^2 the Laplacian is 2.
    columns = torch.arange(9, dtype=torch.float64)
    ramp = (3 * columns).expand(9, 9)[None, None]  # (1, 1, 9, 9): slope 3 along x
    parabola = (columns**2).expand(9, 9)[None, None]

    def response(name: str, image: torch.Tensor) -> torch.Tensor:
        branch = EdgeFilter(1, 1, EDGE_FILTERS[name]).double()
        with torch.no_grad():
            branch.pointwise.weight.fill_(1.0)
            branch.scale.fill_(1.0)
        return branch(image)[0, 0, 1:-1, 1:-1]  # inside the zero-padded border

    assert torch.all(response("sobel_x", ramp) == -24)
    assert torch.all(response("sobel_y", ramp) == 0) and torch.all(response("laplacian", ramp) == 0)
    assert torch.all(response("laplacian", parabola) == 2)


def test_edge_masks_are_fixed_never_trained_nor_saved() -> None:
    torch.manual_seed(3)
    model = ECBSR(num_blocks=1, num_features=8, train_branches=True)
    masks = {name: buffer.clone() for name, buffer in model.named_buffers() if name.endswith("mask")}
    assert len(masks) == 3 * len(model.blocks())  # Sobel x, Sobel y, Laplacian in each ECB
    assert not any(name.endswith("mask") for name, _ in model.named_parameters())
    assert not any(name.endswith("mask") for name in model.state_dict())  # constants, rebuilt by the code
    scales_before = {name: p.clone() for name, p in model.named_parameters() if name.endswith("scale")}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    lr_image, target = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 16, 16)
    for _ in range(3):
        optimizer.zero_grad()
        F.mse_loss(model(lr_image), target).backward()
        optimizer.step()
    for name, buffer in model.named_buffers():
        kind = name.split(".")[-2]  # ...branches.<kind>.mask
        assert torch.equal(buffer, torch.tensor(EDGE_FILTERS[kind])) and torch.equal(buffer, masks[name])
        assert not buffer.requires_grad
    assert all(not torch.equal(p, scales_before[name]) for name, p in model.named_parameters() if name in scales_before)


@pytest.mark.parametrize("train_branches", [True, False])
def test_gradients_reach_every_parameter_in_training_form(train_branches: bool) -> None:
    torch.manual_seed(4)
    model = ECBSR(scale=3, num_blocks=2, num_features=8, train_branches=train_branches).train()
    output = model(torch.rand(2, 1, 6, 6))
    F.mse_loss(output, torch.rand_like(output)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"no gradient reached {name}"


def test_merged_and_branch_training_have_the_same_gradients() -> None:
    torch.manual_seed(5)
    by_branch = trained_looking(ECBSR(num_blocks=2, num_features=8, train_branches=True).double()).train()
    merged = ECBSR(num_blocks=2, num_features=8, train_branches=False).double().train()
    merged.load_state_dict(by_branch.state_dict())
    lr_image = torch.rand(2, 1, 7, 6, dtype=torch.float64)
    target = torch.rand(2, 1, 14, 12, dtype=torch.float64)
    for model in (by_branch, merged):
        F.mse_loss(model(lr_image), target).backward()
    for (name, branch_parameter), merged_parameter in zip(by_branch.named_parameters(), merged.parameters()):
        torch.testing.assert_close(merged_parameter.grad, branch_parameter.grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("scale", SCALES)
def test_inference_size_and_cost_of_the_default(scale: int) -> None:
    model = ECBSR(scale=scale)  # ECBSR-M10C32 on the Y channel
    collapsed = model.collapse()
    width, blocks, sub_pixels = 32, 10, scale**2
    weights = (9 * width + 2 * width) + blocks * (9 * width * width + 2 * width) + (9 * width + 1) * sub_pixels
    assert count_parameters(collapsed) == weights <= 100_000  # 94,308 at x2; 97,776 at x4
    assert count_parameters(model) > 3 * weights  # what training has to work with
    # multiply-adds per output pixel: every layer runs on the LR grid, scale^2 output pixels per position
    macs = 9 * (width + blocks * width * width + width * sub_pixels) / sub_pixels
    assert macs_per_output_pixel(collapsed, (1, 1, 8, 8)) == pytest.approx(macs)
    assert macs_per_output_pixel(model.eval(), (1, 1, 8, 8)) == pytest.approx(macs)  # eval runs the merged kernels
    assert macs <= macs_per_output_pixel(VDSR(), (1, 1, 8, 8)) / 7  # the goal's budget (23,400 vs 664,704 at x2)


def test_the_untrained_network_is_nearest_neighbour_enlargement() -> None:
    torch.manual_seed(6)
    lr_image = torch.rand(1, 1, 10, 10)
    nearest = F.interpolate(lr_image, scale_factor=3, mode="nearest")
    with torch.no_grad():
        output = ECBSR(scale=3)(lr_image)
    # the tail starts near zero, so the skip is (almost) all there is
    assert (output - nearest).abs().mean() < 0.01 and (output - nearest).abs().max() < 0.05


def test_no_branches_is_a_plain_network_of_the_same_shape() -> None:
    plain = ECBSR(branches=(), num_blocks=2, num_features=8)
    assert count_parameters(plain) == count_parameters(plain.collapse())
    assert set(BRANCHES) == {"expand", "sobel_x", "sobel_y", "laplacian"}


@pytest.mark.parametrize("options, message", [
    ({"branches": ("expand", "sobel_z")}, "branches are some of"),
    ({"branches": ("expand", "expand")}, "each once"),
    ({"scale": 1}, "scale is 2 or more"),
    ({"num_features": 0}, "num_features"),
    ({"num_blocks": -1}, "num_blocks >= 0"),
])
def test_bad_settings_are_refused_in_plain_words(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ECBSR(**options)


def test_block_without_activation_is_linear() -> None:
    block = EdgeOrientedConvolutionBlock(2, 3, BRANCHES, expansion=2, activation=False, train_branches=True)
    first, second = torch.rand(1, 2, 5, 5), torch.rand(1, 2, 5, 5)
    with torch.no_grad():
        bias = block(torch.zeros(1, 2, 5, 5))
        torch.testing.assert_close(block(first + second) - bias, (block(first) - bias) + (block(second) - bias))


def test_tiles_know_the_receptive_field_of_the_merged_layers() -> None:
    model = ECBSR(num_blocks=4, num_features=8)
    assert receptive_field_radius(model) == receptive_field_radius(model.collapse()) == 6  # 6 layers of 3 x 3


def test_through_experiment_checkpoint_load_and_upscale(photo_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    experiment = Experiment(small_config(photo_folder, model="ecbsr", scale=2, patch_size=8,
                                         model_options={"num_blocks": 2, "num_features": 8}))
    history = experiment.train(steps=4)
    assert experiment.trainer.step == 4 and history.validation_psnr
    model = load_model(experiment.save(tmp_path / "ecbsr.pt"), scale=2)  # the library's ordinary load path
    assert type(model) is MODELS["ecbsr"] and not model.training and model.config == experiment.model.config
    rebuilt = build_model("ecbsr", **asdict(model.config))
    rebuilt.load_state_dict(model.state_dict())  # strict: the masks are not in the file, the code makes them
    lr_image = torch.rand(1, 1, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(model(lr_image), model.collapse()(lr_image), rtol=0, atol=1e-6)
    photo = np.zeros((10, 13, 3), dtype=np.uint8)
    assert upscale(model, photo).shape == upscale(model.collapse(), photo).shape == (20, 26, 3)
