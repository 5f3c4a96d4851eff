"""ESRGAN's network interpolation on a slider, with the perception-distortion plane drawn live.

`InterpolationExplorer` is plain Python: for a blend alpha of a PSNR-trained network and its GAN
fine-tune (`sr_teach.adversarial.interpolate_weights`) it makes the blended network's outputs on a
few images and scores them: PSNR against the originals (distortion, higher is better) and NIQE
without them (naturalness, lower is better). Each alpha is measured once, then remembered, so the
curve grows as the slider moves. `InterpolationView` is a thin ipywidgets view of it.

    explorer = InterpolationExplorer(psnr_model, gan_model, [(lr_image, hr_image), ...])
    explorer.measure_all()        # the whole curve (what a notebook does for its saved figure)
    InterpolationView(explorer)   # the slider
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sr_teach.adversarial import interpolated_model
from sr_teach.metrics import niqe, psnr
from sr_teach.widgets.pictures import WidgetView, encode_image, image_widget

ALPHAS = tuple(round(step / 10, 1) for step in range(11))  # the slider's stops: 0, 0.1, ..., 1


@dataclass
class PlanePoint:
    """One blend's place on the perception-distortion plane (means over the images)."""

    alpha: float
    psnr: float  # dB against the originals: distortion, higher is better
    niqe: float  # without the originals: how unlike a pristine photo, lower is better


class InterpolationExplorer:
    """Blends of two networks of one architecture, their outputs, and their (PSNR, NIQE) points.

    pairs: (lr_image, hr_image), (C, h, w) and (C, H, W) in [0, 1], C the models' channels (luma Y);
        each HR image needs two whole 96 x 96 blocks after the border is cut, for NIQE.
    border: pixels cut from each edge before scoring (the scale, as the SR tables do).
    """

    def __init__(self, psnr_model: nn.Module, gan_model: nn.Module,
                 pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], border: int = 4) -> None:
        if not pairs:
            raise ValueError("give at least one (lr_image, hr_image) pair to score the blends on")
        self.psnr_model, self.gan_model = psnr_model.eval(), gan_model.eval()
        self.pairs, self.border = list(pairs), border
        self._blend = copy.deepcopy(psnr_model)  # one network, its weights rewritten for each alpha
        self.points: dict[float, PlanePoint] = {}
        self._outputs: dict[float, list[torch.Tensor]] = {}  # alpha -> the blend's outputs, for the view
        self.original_niqe = float(torch.stack([niqe(hr, crop_border=border) for _, hr in self.pairs]).mean())

    @torch.no_grad()
    def outputs(self, alpha: float) -> list[torch.Tensor]:
        """The blended network's output for each pair's LR image, (C, H, W) in [0, 1] (made once per alpha)."""
        alpha = round(float(alpha), 3)
        if alpha not in self._outputs:
            model = interpolated_model(self.psnr_model, self.gan_model, alpha, into=self._blend)
            self._outputs[alpha] = [model(lr_image[None]).clamp(0, 1)[0] for lr_image, _ in self.pairs]
        return self._outputs[alpha]

    def measure(self, alpha: float) -> PlanePoint:
        """The blend's mean PSNR and NIQE (measured once per alpha, then remembered)."""
        alpha = round(float(alpha), 3)
        if alpha not in self.points:
            outputs = self.outputs(alpha)
            psnrs = [psnr(output, hr, crop_border=self.border) for output, (_, hr) in zip(outputs, self.pairs)]
            niqes = [niqe(output, crop_border=self.border) for output in outputs]
            self.points[alpha] = PlanePoint(alpha, float(torch.stack(psnrs).mean()), float(torch.stack(niqes).mean()))
        return self.points[alpha]

    def measure_all(self, alphas: Sequence[float] = ALPHAS) -> list[PlanePoint]:
        return [self.measure(alpha) for alpha in alphas]

    def plot(self, alpha: float | None = None, width: float = 4.5, height: float = 3.5, dpi: int = 80) -> bytes:
        """The plane as PNG bytes: every blend measured so far, the chosen one ringed, the originals' NIQE."""
        from matplotlib.figure import Figure  # not pyplot: drawing here must not touch the notebook's backend

        points = sorted(self.points.values(), key=lambda point: point.alpha)
        figure = Figure(figsize=(width, height), dpi=dpi)
        axis = figure.subplots()
        axis.plot([point.niqe for point in points], [point.psnr for point in points], "o-", color="tab:blue")
        for point in points:
            axis.annotate(f"{point.alpha:g}", (point.niqe, point.psnr), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if alpha is not None and round(alpha, 3) in self.points:
            chosen = self.points[round(alpha, 3)]
            axis.plot(chosen.niqe, chosen.psnr, "o", markersize=14, fillstyle="none", color="tab:red")
        axis.axvline(self.original_niqe, color="gray", linestyle="--", label=f"the originals' NIQE {self.original_niqe:.2f}")
        axis.set(xlabel="NIQE (lower: more natural)", ylabel="PSNR (dB, higher: closer)",
                 title="perception-distortion plane (label: alpha)")
        axis.legend(fontsize=7, loc="lower left")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


class InterpolationView(WidgetView):
    """A slider for alpha, the blend's output on the first image, and the plane with its point."""

    def __init__(self, explorer: InterpolationExplorer, display_size: int = 256) -> None:
        import ipywidgets as widgets

        self.explorer, self.display_size = explorer, display_size
        self.slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.1, description="alpha",
                                          continuous_update=False, readout_format=".1f")
        self.picture, self.plane = image_widget(width=display_size), widgets.Image(format="png")
        self.caption = widgets.HTML()
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.widget = widgets.VBox([self.slider, widgets.HBox([self.picture, self.plane]), self.caption])
        self.refresh()

    def refresh(self) -> None:
        alpha = round(self.slider.value, 1)
        point = self.explorer.measure(alpha)
        self.picture.value = encode_image(self.explorer.outputs(alpha)[0])
        self.plane.value = self.explorer.plot(alpha)
        self.caption.value = (f"alpha {alpha:.1f}: PSNR {point.psnr:.2f} dB, NIQE {point.niqe:.2f} "
                              f"(0 = the PSNR network, 1 = the GAN)")
