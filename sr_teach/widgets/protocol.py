"""The evaluation protocol (lesson 02), one choice at a time: how many dB each convention moves a PSNR.

"Bicubic on Set5 x2: 33.66 dB" is only comparable with another number measured the same way: on
the Y channel, `scale` border pixels cut off, 8-bit images, gray as gray, LR inputs made by MATLAB's
bicubic `imresize` (see `sr_teach.metrics`). `ProtocolExplorer` measures an upscaler under any mix
of those choices and what each alternative changes; `ProtocolExplorerView` puts it behind dropdowns.
`equal_psnr_distortions` builds distortions of equal PSNR but different structure: the case for SSIM.

    explorer = ProtocolExplorer("bundled", scale=2)
    print(explorer.delta_table())        # every alternative choice, in dB from the standard
    explorer.set(y_channel=False)        # measure on RGB instead
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import torch

from sr_teach.datasets import BUNDLED, BenchmarkImage, available_datasets, benchmark_images
from sr_teach.degradations import downscale, gaussian_blur, gaussian_noise
from sr_teach.images import quantize
from sr_teach.interpolation import METHODS, resize
from sr_teach.metrics import psnr, ssim

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# The benchmark sets the explorer offers when the data directory has them (larger sets would make
# every click take minutes on a laptop).
BENCHMARK_SETS = ("Set5", "Set14")
# "bundled" means the first five bundled photos: a Set5-sized set, two of them gray. The large
# ones (retina is 1411 x 1411) would make each measurement take seconds.
BUNDLED_IMAGE_COUNT = 5
SCALES = (2, 3, 4)


@dataclass(frozen=True)
class Protocol:
    """One way to turn (SR image, HR image) into a number; the defaults are the published protocol."""

    # Measure the luma Y of MATLAB's rgb2ycbcr, as the papers do (most SR methods only touch Y);
    # False: the mean over R, G and B.
    y_channel: bool = True
    # Cut `scale` pixels off every edge before measuring: near the border every method guesses.
    crop_border: bool = True
    # "matlab": the SR image rounded to 8 bits, and its Y rounded again (MATLAB's rgb2ycbcr on
    # uint8 images); "output": 8-bit SR image, Y kept in floating point; "none": all floating point.
    rounding: str = "matlab"
    # Gray images (Set14's bridge, the bundled camera and coins) measured as they are; False: as
    # the Y of a gray RGB image, which scales every error by 219/255 and adds 1.32 dB.
    gray_as_gray: bool = True
    # How the LR inputs were made from the HR images (sr_teach.degradations.downscale methods).
    # "bicubic" is MATLAB's antialiased imresize, the one the published LR files were made with.
    lr_kernel: str = "bicubic"


STANDARD = Protocol()

# Dropdown label -> value, for each field of Protocol (one literal dict, no string magic).
CHOICES: dict[str, dict[str, object]] = {
    "y_channel": {"Y channel": True, "RGB": False},
    "crop_border": {"scale pixels": True, "none": False},
    "rounding": {"8-bit image, 8-bit Y": "matlab", "8-bit image, float Y": "output", "none": "none"},
    "gray_as_gray": {"as gray": True, "as gray RGB": False},
    "lr_kernel": {
        "MATLAB bicubic": "bicubic",
        "Pillow bicubic": "pil_bicubic",
        "torch bicubic": "torch_bicubic",
        "torch bilinear": "torch_bilinear",
        "torch area": "torch_area",
    },
}
CHOICE_TITLES = {
    "y_channel": "measured on",
    "crop_border": "border crop",
    "rounding": "rounding",
    "gray_as_gray": "gray images",
    "lr_kernel": "LR made by",
}


def choice_label(field_name: str, value: object) -> str:
    """The dropdown label of a Protocol field's value, e.g. ("y_channel", False) -> "RGB"."""
    for label, choice in CHOICES[field_name].items():
        if choice == value:
            return label
    raise ValueError(f"{value!r} is not a choice for {field_name}; choose one of {list(CHOICES[field_name].values())}")


def signed(decibels: float) -> str:
    """A change in dB with its sign and two decimals; a change that rounds to zero is "+0.00", not "-0.00"."""
    return f"{round(decibels, 2) + 0.0:+.2f}"


def score(
    sr_image: torch.Tensor, hr_image: torch.Tensor, scale: int, protocol: Protocol, metric: Callable = psnr
) -> float:
    """PSNR (or SSIM, with metric=ssim) of one (C, H, W) SR image under `protocol`.

    The LR kernel is not used here: it decides how `sr_image` was made, not how it is measured.
    """
    if hr_image.shape[0] == 1 and not protocol.gray_as_gray:
        # What a script that reads every file as RGB does: the gray values, three times.
        sr_image, hr_image = sr_image.expand(3, -1, -1), hr_image.expand(3, -1, -1)
    if protocol.rounding == "output":
        sr_image = quantize(sr_image)
    return float(metric(
        sr_image[None], hr_image[None],
        crop_border=scale if protocol.crop_border else 0,
        y_channel=protocol.y_channel,
        round_to_8bit=protocol.rounding == "matlab",
    )[0])


@dataclass
class ImageResult:
    name: str
    psnr: float
    ssim: float | None  # None until asked for: SSIM costs about ten times more than PSNR


@dataclass
class Measurement:
    """Mean and per-image scores of one upscaler under one protocol."""

    protocol: Protocol
    images: list[ImageResult]

    @property
    def psnr(self) -> float:
        return sum(image.psnr for image in self.images) / len(self.images)

    @property
    def ssim(self) -> float | None:
        if any(image.ssim is None for image in self.images):
            return None
        return sum(image.ssim for image in self.images) / len(self.images)


@dataclass
class DeltaRow:
    """One alternative choice and how far it moves the mean PSNR from the standard protocol."""

    field_name: str  # a field of Protocol, or "" for the standard and "all" for a combination
    value: object  # the value of that field this row measures (None for "" and "all")
    label: str  # e.g. "measured on: RGB"
    psnr: float
    delta: float  # psnr minus the standard protocol's psnr, in dB


class ProtocolExplorer:
    """Measure an upscaler on a set under any protocol; every choice's effect in dB.

    State: `dataset`, `scale`, `method` (the upscaler, one of sr_teach.interpolation.METHODS) and
    `protocol`. Scores are cached, so going back to a setting already seen is instant; images are
    kept only for the current dataset and scale, so memory stays bounded however long one clicks.
    """

    def __init__(
        self,
        dataset: str = BUNDLED,
        scale: int = 2,
        method: str = "bicubic",
        protocol: Protocol = STANDARD,
        data_dir: str | os.PathLike | None = None,
        max_images: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.max_images = max_images  # None: BUNDLED_IMAGE_COUNT for "bundled", all for a benchmark set
        self.dataset, self.scale, self.method, self.protocol = BUNDLED, 2, "bicubic", STANDARD
        self._images: dict[tuple, list[BenchmarkImage]] = {}
        self._lr_images: dict[tuple, list[torch.Tensor]] = {}
        self._sr_images: dict[tuple, list[torch.Tensor]] = {}
        self._scores: dict[tuple, list[float]] = {}
        protocol_fields = {field.name: getattr(protocol, field.name) for field in fields(Protocol)}
        self.set(dataset=dataset, scale=scale, method=method, **protocol_fields)

    def datasets(self) -> list[str]:
        """"bundled", then the benchmark sets found in the data directory."""
        found = available_datasets(self.data_dir)
        return [BUNDLED] + [name for name in BENCHMARK_SETS if name in found]

    def set(self, **changes: object) -> None:
        """Change dataset, scale, method or any Protocol field, e.g. set(y_channel=False, scale=4).

        Everything is checked before anything changes, so a bad value leaves the state as it was.
        """
        dataset = changes.pop("dataset", self.dataset)
        scale = changes.pop("scale", self.scale)
        method = changes.pop("method", self.method)
        if dataset != BUNDLED and dataset not in self.datasets():
            raise ValueError(f"dataset {dataset!r} is not available; choose one of {self.datasets()}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
        if method not in METHODS:
            raise ValueError(f"unknown upscaling method {method!r}; choose one of {', '.join(METHODS)}")
        for name, value in changes.items():
            if name not in CHOICES:
                raise ValueError(f"unknown setting {name!r}; settings: dataset, scale, method, {', '.join(CHOICES)}")
            choice_label(name, value)  # raises a clear error for a value that is not offered
        self.dataset, self.scale, self.method = dataset, int(scale), method
        self.protocol = replace(self.protocol, **changes)

    def reset(self) -> None:
        """Back to the standard protocol (dataset, scale and method stay)."""
        self.protocol = STANDARD

    # --- the images, made once and cached ---

    def images(self) -> list[BenchmarkImage]:
        """The set's images at the current scale (HR mod-cropped, standard LR)."""
        key = (self.dataset, self.scale)
        if key not in self._images:
            # A new set or scale: forget the images of the previous one (their scores stay cached).
            self._images.clear()
            self._lr_images.clear()
            self._sr_images.clear()
            count = self.max_images if self.max_images is not None else (
                BUNDLED_IMAGE_COUNT if self.dataset == BUNDLED else None
            )
            self._images[key] = benchmark_images(self.dataset, self.scale, self.data_dir, max_images=count)
        return self._images[key]

    def lr_images(self, kernel: str) -> list[torch.Tensor]:
        """The LR inputs made with `kernel`, stored in 8 bits like the LR files of the benchmarks."""
        key = (self.dataset, self.scale, kernel)
        if key not in self._lr_images:
            lr_images = []
            for image in self.images():
                if kernel == "bicubic":
                    lr_image = image.lr_image  # the LR_bicubic file where there is one
                else:
                    lr_image = downscale(image.hr_image, self.scale, kernel)
                lr_images.append(quantize(lr_image))
            self._lr_images[key] = lr_images
        return self._lr_images[key]

    def sr_images(self, kernel: str) -> list[torch.Tensor]:
        """The LR inputs made with `kernel`, enlarged by the current method."""
        key = (self.dataset, self.scale, kernel, self.method)
        if key not in self._sr_images:
            self._sr_images[key] = [
                resize(lr_image, scale=self.scale, method=self.method) for lr_image in self.lr_images(kernel)
            ]
        return self._sr_images[key]

    def scores(self, protocol: Protocol, metric: Callable = psnr) -> list[float]:
        """Per-image PSNR (or SSIM) under `protocol`, cached."""
        key = (self.dataset, self.scale, self.method, protocol, metric.__name__)
        if key not in self._scores:
            self._scores[key] = [
                score(sr_image, image.hr_image, self.scale, protocol, metric)
                for sr_image, image in zip(self.sr_images(protocol.lr_kernel), self.images())
            ]
        return self._scores[key]

    # --- what the lesson shows ---

    def measure(self, protocol: Protocol | None = None, with_ssim: bool = True) -> Measurement:
        """Per-image and mean PSNR (and SSIM) under `protocol` (default: the current one)."""
        protocol = self.protocol if protocol is None else protocol
        psnrs = self.scores(protocol, psnr)
        ssims = self.scores(protocol, ssim) if with_ssim else [None] * len(psnrs)
        names = [image.name for image in self.images()]
        return Measurement(protocol, [ImageResult(*row) for row in zip(names, psnrs, ssims)])

    def deltas(self) -> list[DeltaRow]:
        """The standard protocol's mean PSNR, then every alternative choice alone, then the current mix."""
        standard = self.measure(STANDARD, with_ssim=False).psnr
        rows = [DeltaRow("", None, "standard protocol", standard, 0.0)]
        for field_name, choices in CHOICES.items():
            for label, value in choices.items():
                if value == getattr(STANDARD, field_name):
                    continue
                value_psnr = self.measure(replace(STANDARD, **{field_name: value}), with_ssim=False).psnr
                rows.append(DeltaRow(
                    field_name, value, f"{CHOICE_TITLES[field_name]}: {label}", value_psnr, value_psnr - standard
                ))
        current = self.measure(with_ssim=False).psnr
        rows.append(DeltaRow("all", None, "your protocol", current, current - standard))
        return rows

    def describe(self, protocol: Protocol | None = None) -> str:
        """The protocol in words, e.g. "measured on RGB, border crop none, rounding none, ..."."""
        protocol = self.protocol if protocol is None else protocol
        return ", ".join(
            f"{CHOICE_TITLES[name]} {choice_label(name, getattr(protocol, name))}" for name in CHOICES
        )

    def delta_table(self) -> str:
        """A plain-text table of `deltas()` (deterministic: notebooks check it)."""
        rows = self.deltas()
        width = max(len(row.label) for row in rows)
        lines = [
            f"{self.method} on {self.dataset} x{self.scale}, {len(self.images())} images",
            f"{'protocol':<{width}}  {'PSNR (dB)':>9}  {'change (dB)':>11}",
        ]
        for row in rows:
            change = "" if row.field_name == "" else f"{signed(row.delta):>11}"
            lines.append(f"{row.label:<{width}}  {row.psnr:9.2f}  {change:>11}")
        return "\n".join(lines)

    def summary(self) -> str:
        """The current protocol's PSNR and SSIM next to the standard protocol's."""
        standard, current = self.measure(STANDARD), self.measure()
        return (
            f"{self.method} on {self.dataset} x{self.scale}: standard protocol {standard.psnr:.2f} dB / "
            f"SSIM {standard.ssim:.4f}; yours ({self.describe()}) {current.psnr:.2f} dB / SSIM "
            f"{current.ssim:.4f}, {signed(current.psnr - standard.psnr)} dB"
        )


def plot_deltas(rows: list[DeltaRow], ax: Axes | None = None, title: str | None = None) -> Axes:
    """A horizontal bar chart of the dB change of each alternative choice (static figure for notebooks)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2), dpi=75)
    shown = [row for row in rows if row.field_name not in ("", "all")]
    labels = [row.label for row in shown]
    values = [row.delta for row in shown]
    colours = ["tab:green" if value > 0 else "tab:red" for value in values]
    ax.barh(range(len(shown)), values, color=colours)
    ax.set_yticks(range(len(shown)), labels)
    ax.set_ylim(len(shown) - 0.5, -0.5)  # first row on top (set, not inverted: safe with sharey)
    ax.axvline(0, color="black", linewidth=0.8)
    for position, value in enumerate(values):
        ax.annotate(signed(value), (value, position), xytext=(3 if value >= 0 else -3, 0),
                    textcoords="offset points", va="center", ha="left" if value >= 0 else "right", fontsize=8)
    ax.set_xlabel("change of the mean PSNR (dB)")
    if title:
        ax.set_title(title)
    ax.margins(x=0.25)
    return ax


# --- Equal PSNR, different structure: why SSIM ---


def _bisect(distort: Callable[[float], torch.Tensor], image: torch.Tensor, target_psnr: float,
            low: float, high: float, steps: int = 30) -> tuple[float, torch.Tensor]:
    """The parameter in [low, high] whose distortion has PSNR `target_psnr` (PSNR falls as it grows),
    and that distortion. Stops once within 0.001 dB; a ValueError when the range cannot reach it."""
    def distorted_and_psnr(parameter: float) -> tuple[torch.Tensor, float]:
        distorted = distort(parameter)
        return distorted, float(psnr(distorted[None], image[None])[0])

    mildest, strongest = distorted_and_psnr(low)[1], distorted_and_psnr(high)[1]
    if not strongest - 0.01 <= target_psnr <= mildest + 0.01:
        raise ValueError(f"cannot reach {target_psnr} dB: over its range ({low:g} to {high:g}) this distortion "
                         f"gives {strongest:.2f} to {mildest:.2f} dB; choose a target in between")
    for _ in range(steps):
        middle = (low + high) / 2
        distorted, value = distorted_and_psnr(middle)
        if abs(value - target_psnr) < 1e-3:
            break
        low, high = (middle, high) if value > target_psnr else (low, middle)
    return middle, distorted


def equal_psnr_distortions(
    image: torch.Tensor, target_psnr: float = 26.0, seed: int = 0
) -> dict[str, tuple[float, torch.Tensor]]:
    """Three distortions of a (C, H, W) image, each with PSNR `target_psnr` (to ~0.01 dB).

    Returns {name: (parameter, distorted image)}: a brightness shift (the parameter is the shift on
    0..255), a Gaussian blur (sigma in pixels) and Gaussian noise (sigma on 0..255, seeded). Equal
    MSE, so equal PSNR; SSIM tells them apart.
    """
    def brighter(shift: float) -> torch.Tensor:
        return (image + shift / 255.0).clamp(0, 1)

    def blurred(sigma: float) -> torch.Tensor:
        return gaussian_blur(image, sigma)

    def noisy(sigma: float) -> torch.Tensor:
        return gaussian_noise(image, sigma, generator=torch.Generator().manual_seed(seed))

    return {
        "brightness shift": _bisect(brighter, image, target_psnr, 0.0, 255.0),
        # Up to sigma = 16: a 97 x 97 kernel, enough for 20 dB on the bundled photos (camera: sigma ~12.5).
        "Gaussian blur": _bisect(blurred, image, target_psnr, 0.01, 16.0),
        "Gaussian noise": _bisect(noisy, image, target_psnr, 0.0, 255.0),
    }


# --- The widget view ---


class ProtocolExplorerView:
    """Dropdowns for dataset, scale, upscaler and each protocol choice; the scores and the dB deltas.

    `widget` is the box to display. Every control writes to the explorer and refreshes the tables;
    a "Standard protocol" button resets the choices.
    """

    def __init__(self, explorer: ProtocolExplorer | None = None) -> None:
        import ipywidgets as widgets

        self.explorer = explorer if explorer is not None else ProtocolExplorer()
        state = self.explorer
        style = {"description_width": "110px"}
        layout = widgets.Layout(width="300px")
        self.dataset = widgets.Dropdown(options=state.datasets(), value=state.dataset, description="dataset",
                                        style=style, layout=layout)
        self.scale = widgets.Dropdown(options=[(f"x{s}", s) for s in SCALES], value=state.scale,
                                      description="scale", style=style, layout=layout)
        self.method = widgets.Dropdown(options=list(METHODS), value=state.method, description="upscaler",
                                       style=style, layout=layout)
        self.choices = {
            name: widgets.Dropdown(options=list(options.items()), value=getattr(state.protocol, name),
                                   description=CHOICE_TITLES[name], style=style, layout=layout)
            for name, options in CHOICES.items()
        }
        self.reset_button = widgets.Button(description="Standard protocol", icon="undo")
        self.status = widgets.HTML()
        self.result = widgets.HTML()
        self.table = widgets.HTML()
        self.per_image = widgets.HTML()
        for control in (self.dataset, self.scale, self.method, *self.choices.values()):
            control.observe(self._on_change, names="value")
        self.reset_button.on_click(self._on_reset)
        controls = widgets.VBox([self.dataset, self.scale, self.method, *self.choices.values(), self.reset_button])
        tables = widgets.VBox([self.result, widgets.HBox([self.table, self.per_image])])
        self.widget = widgets.VBox([widgets.HBox([controls, tables]), self.status])
        self._updating = False
        self.refresh()

    def _on_change(self, change: dict) -> None:
        if self._updating:
            return
        settings = {"dataset": self.dataset.value, "scale": self.scale.value, "method": self.method.value}
        settings.update({name: control.value for name, control in self.choices.items()})
        self.explorer.set(**settings)
        self.refresh()

    def _on_reset(self, _button: object = None) -> None:
        self.explorer.reset()
        self._updating = True  # one refresh for the whole reset, not one per dropdown
        try:
            for name, control in self.choices.items():
                control.value = getattr(self.explorer.protocol, name)
        finally:
            self._updating = False
        self.refresh()

    def refresh(self) -> None:
        """Recompute (from the cache where possible) and redraw the tables."""
        self.status.value = "<i>measuring…</i>"
        try:
            rows = self.explorer.deltas()
            standard, current = self.explorer.measure(STANDARD), self.explorer.measure()
        except (OSError, ValueError) as error:  # e.g. a data directory that vanished: say so, never crash
            self.status.value = f"<b>Could not measure:</b> {html.escape(str(error))}"
            return
        self.result.value = (
            f"<b>{html.escape(self.explorer.method)} on {html.escape(self.explorer.dataset)} x{self.explorer.scale}</b>"
            f"<br>standard protocol: <b>{standard.psnr:.2f} dB</b>, SSIM {standard.ssim:.4f}"
            f"<br>your protocol: <b>{current.psnr:.2f} dB</b>, SSIM {current.ssim:.4f} "
            f"(<b>{signed(current.psnr - standard.psnr)} dB</b>)"
        )
        self.table.value = self._delta_html(rows)
        self.per_image.value = self._per_image_html(standard, current)
        self.status.value = ""

    def _delta_html(self, rows: list[DeltaRow]) -> str:
        protocol = self.explorer.protocol
        lines = ["<table><tr><th style='text-align:left'>one change from the standard</th>"
                 "<th>PSNR</th><th>dB</th></tr>"]
        for row in rows:
            chosen = row.field_name in CHOICES and getattr(protocol, row.field_name) == row.value
            weight = "bold" if chosen or row.field_name == "all" else "normal"
            change = "" if row.field_name == "" else signed(row.delta)
            lines.append(
                f"<tr style='font-weight:{weight}'><td>{html.escape(row.label)}{' ◀' if chosen else ''}</td>"
                f"<td style='text-align:right'>{row.psnr:.2f}</td><td style='text-align:right'>{change}</td></tr>"
            )
        return "\n".join(lines + ["</table>"])

    @staticmethod
    def _per_image_html(standard: Measurement, current: Measurement) -> str:
        lines = ["<table><tr><th style='text-align:left'>image (PSNR)</th><th>standard</th><th>yours</th></tr>"]
        for ours, theirs in zip(standard.images, current.images):
            lines.append(f"<tr><td>{html.escape(ours.name)}</td><td style='text-align:right'>{ours.psnr:.2f}</td>"
                         f"<td style='text-align:right'>{theirs.psnr:.2f}</td></tr>")
        return "\n".join(lines + ["</table>"])
