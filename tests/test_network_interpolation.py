"""The interpolation explorer: its ends are the two networks, each blend is measured once, and it draws."""

from __future__ import annotations

import pytest
import torch

from sr_teach.degradations import downscale
from sr_teach.images import load_sample, rgb_to_luma
from sr_teach.metrics import niqe, psnr
from sr_teach.pretrained import load_pretrained
from sr_teach.widgets.network_interpolation import InterpolationExplorer


@pytest.fixture(scope="module")
def explorer() -> InterpolationExplorer:
    psnr_model = load_pretrained("fsrcnn", scale=4)
    gan_model = load_pretrained("fsrcnn", scale=4)
    with torch.no_grad():
        for parameter in gan_model.parameters():  # a stand-in "GAN": the same network, its weights moved
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)))
    hr_image = rgb_to_luma(load_sample("astronaut", mode="rgb")[:, :208, :208])
    return InterpolationExplorer(psnr_model, gan_model, [(downscale(hr_image, 4), hr_image)], border=4)


def test_the_ends_are_the_two_networks(explorer: InterpolationExplorer) -> None:
    (lr_image, hr_image), = explorer.pairs
    for alpha, model in ((0.0, explorer.psnr_model), (1.0, explorer.gan_model)):
        with torch.no_grad():
            output = model(lr_image[None]).clamp(0, 1)
        point = explorer.measure(alpha)
        assert point.psnr == pytest.approx(psnr(output, hr_image[None], crop_border=4).item(), abs=1e-4)
        assert point.niqe == pytest.approx(niqe(output, crop_border=4).item(), abs=1e-4)
    assert explorer.measure(0.0).psnr > explorer.measure(1.0).psnr  # the moved weights are worse


def test_each_blend_is_measured_once_and_the_plane_is_drawn(explorer: InterpolationExplorer) -> None:
    before = dict(explorer.points)
    point = explorer.measure(0.5)
    assert explorer.measure(0.5) is point and set(explorer.points) == set(before) | {0.5}
    assert explorer.plot(alpha=0.5)[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_pairs_is_refused() -> None:
    model = load_pretrained("fsrcnn", scale=4)
    with pytest.raises(ValueError, match="at least one"):
        InterpolationExplorer(model, model, [])


def test_the_view_moves_with_its_slider(explorer: InterpolationExplorer) -> None:
    pytest.importorskip("ipywidgets")
    from sr_teach.widgets.network_interpolation import InterpolationView

    view = InterpolationView(explorer)
    view.slider.value = 0.3
    assert "alpha 0.3" in view.caption.value and 0.3 in explorer.points
