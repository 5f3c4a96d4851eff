"""Comparing enlarged images: a zoomed detail side by side, a swipe between two results, and the
before-and-after workbench of lesson 07.

Differences between SR methods hide in the details: at full size bicubic and a network look alike,
in a 64-pixel crop blown up on screen they do not. So every comparison here is about a *region*.

Each comparison is a plain state class that holds the images and numbers, and a thin ipywidgets
view on top of it (the tests drive the state and the views without a browser):

- `ZoomComparison` / `ZoomView`: one photo made small (MATLAB-bicubic, the papers' protocol) and
  enlarged back by several methods (nearest, bilinear, bicubic, Lanczos, trained models) at x2, x4,
  x8; the same detail of each, and its PSNR against the original.
- `SwipeComparison` / `SwipeView`: two images of the same size (bicubic | model) composited left |
  right at a split you drag, with a thin divider, plus zoomed crops of both.
- `BeforeAfter` / `BeforeAfterView`: pick a bundled photo or upload your own, a scale and a model
  (trained in the notebook, in short chunks so the page stays responsive, or shipped pretrained),
  and compare it with bicubic.

`plot_zoom` and `plot_swipe` draw the same comparisons as static matplotlib figures, for viewers that
cannot run widgets (GitHub's notebook preview).
"""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw, UnidentifiedImageError
from torch import nn

from sr_teach.degradations import downscale, mod_crop
from sr_teach.evaluation import Upscaler, interpolation_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.images import load_sample, pil_to_tensor, rgb_to_gray, sample_names, tensor_to_pil
from sr_teach.inference import upscale
from sr_teach.metrics import psnr
from sr_teach.training import DivergenceWarning

# The classical methods of lesson 01, in order of sophistication.
INTERPOLATION_METHODS = ("nearest", "bilinear", "bicubic", "lanczos")

# Yellow: visible on photos of any colour, and on gray ones.
MARK_COLOUR = (255, 210, 0)


# ------------------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class Region:
    """A square detail of an image: `size` x `size` pixels with its top-left corner at (top, left)."""

    top: int
    left: int
    size: int

    def clamped(self, height: int, width: int) -> Region:
        """The same region shrunk and moved, if needed, to lie inside a height x width image."""
        size = max(1, min(self.size, height, width))
        return Region(min(max(self.top, 0), height - size), min(max(self.left, 0), width - size), size)

    def scaled(self, factor: int) -> Region:
        """The region in an image `factor` times larger (LR -> SR coordinates)."""
        return Region(self.top * factor, self.left * factor, self.size * factor)

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (C, size, size), after clamping the region to the image."""
        region = self.clamped(*image.shape[-2:])
        return image[..., region.top : region.top + region.size, region.left : region.left + region.size]


def busiest_regions(image: torch.Tensor, size: int, count: int = 3) -> list[Region]:
    """The `count` non-overlapping size x size regions with the most detail (mean gradient magnitude).

    Detail is where enlargement methods differ: on a clear sky they all give the same blue.
    """
    height, width = image.shape[-2:]
    size = max(1, min(size, height, width))
    gray = rgb_to_gray(image.float())[None]  # (1, 1, H, W)
    across = (gray[..., :, 1:] - gray[..., :, :-1]).abs()[..., :-1, :]  # (1, 1, H-1, W-1)
    down = (gray[..., 1:, :] - gray[..., :-1, :]).abs()[..., :, :-1]  # (1, 1, H-1, W-1)
    energy = F.pad(across + down, (0, 1, 0, 1))  # (1, 1, H, W)
    stride = max(1, size // 4)
    scores = F.avg_pool2d(energy, kernel_size=size, stride=stride)[0, 0]  # (h', w')
    chosen: list[Region] = []
    for index in scores.flatten().argsort(descending=True).tolist():
        top, left = (index // scores.shape[1]) * stride, (index % scores.shape[1]) * stride
        if all(abs(top - r.top) >= size or abs(left - r.left) >= size for r in chosen):
            chosen.append(Region(top, left, size))
            if len(chosen) == count:
                break
    return chosen


def largest_gain_region(worse: torch.Tensor, better: torch.Tensor, reference: torch.Tensor, size: int) -> Region:
    """The size x size region where `better` gains most over `worse` in squared error to `reference`.

    Where a network helps is rarely uniform: mostly at edges and textures. This finds the place to
    look first (the other presets show typical places, so the view is not only the best case).
    """
    height, width = reference.shape[-2:]
    size = max(1, min(size, height, width))
    gain = ((worse - reference) ** 2 - (better - reference) ** 2).float().sum(dim=0)[None, None]  # (1, 1, H, W)
    stride = max(1, size // 4)
    scores = F.avg_pool2d(gain, kernel_size=size, stride=stride)[0, 0]  # (h', w')
    index = int(scores.flatten().argmax())
    return Region((index // scores.shape[1]) * stride, (index % scores.shape[1]) * stride, size)


def preset_regions(image: torch.Tensor, size: int, named: Mapping[str, Region] | None = None) -> dict[str, Region]:
    """Regions for a dropdown: the caller's named ones, the three busiest, and the centre."""
    height, width = image.shape[-2:]
    presets = dict(named or {})
    for number, region in enumerate(busiest_regions(image, size), start=1):
        presets[f"detail {number}"] = region
    presets["centre"] = Region((height - size) // 2, (width - size) // 2, size).clamped(height, width)
    return presets


# ----------------------------------------------------------------------------- picture helpers


def to_png(image: torch.Tensor) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes, for `ipywidgets.Image` (fast compression: it is redrawn live)."""
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def blow_up(crop: torch.Tensor, display_size: int) -> torch.Tensor:
    """Enlarge a small crop for the screen with nearest neighbour, so every pixel shows as a block."""
    return F.interpolate(crop[None].float(), size=(display_size, display_size), mode="nearest")[0]


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """(1 or 3, H, W) -> (3, H, W): gray repeated, so coloured marks can be drawn on it."""
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def mark_region(image: torch.Tensor, region: Region, max_side: int = 256) -> torch.Tensor:
    """A thumbnail of `image` (at most max_side pixels a side) with `region` outlined in yellow."""
    height, width = image.shape[-2:]
    shrink = min(1.0, max_side / max(height, width))
    thumbnail = tensor_to_pil(as_rgb(image)).resize(
        (max(1, round(width * shrink)), max(1, round(height * shrink))), Image.Resampling.BILINEAR
    )
    region = region.clamped(height, width)
    box = [region.left * shrink, region.top * shrink,
           (region.left + region.size) * shrink - 1, (region.top + region.size) * shrink - 1]
    ImageDraw.Draw(thumbnail).rectangle(box, outline=MARK_COLOUR, width=2)
    return pil_to_tensor(thumbnail)


def supports(upscaler: Upscaler, scale: int) -> bool:
    """Whether `upscaler` enlarges by `scale` (interpolation: always; a post model: its own scale)."""
    scales = getattr(upscaler, "scales", None)
    return scales is None or scale in scales


def protocol_psnr(sr_image: torch.Tensor, hr_image: torch.Tensor, scale: int) -> float:
    """PSNR under the published protocol: 8-bit output, luma Y, a border of `scale` pixels cropped."""
    return float(psnr(sr_image, hr_image, crop_border=scale, y_channel=True, round_to_8bit=True))


# ------------------------------------------------------------------------------ zoom comparison


class ZoomComparison:
    """One image enlarged by several methods at several scales, compared on one detail region.

    image: the original photo, shrunk by each scale with MATLAB bicubic (`downscale`) to make the
        input; the results are then measured against it (PSNR). With image_is_low_resolution=True
        the image itself is the input (a photo of your own): it is enlarged as it is and there is no
        ground truth, so no PSNR.
    methods: interpolation methods (`sr_teach.interpolation.METHODS`); upscalers adds more by name,
        e.g. {"ESPCN": sr_teach.evaluation.model_upscaler(model)}.
    region: the detail, in pixels of `image`; `regions` names extra presets for the dropdown.
    """

    def __init__(
        self,
        image: torch.Tensor,
        methods: Sequence[str] = INTERPOLATION_METHODS,
        upscalers: Mapping[str, Upscaler] | None = None,
        scales: Sequence[int] = (2, 4, 8),
        scale: int | None = None,
        region: Region | str | None = None,
        regions: Mapping[str, Region] | None = None,
        region_size: int | None = None,
        image_is_low_resolution: bool = False,
    ) -> None:
        assert image.dim() == 3 and image.shape[0] in (1, 3), f"expected one (C, H, W) image, got {tuple(image.shape)}"
        self.image = image
        self.upscalers: dict[str, Upscaler] = {method: interpolation_upscaler(method) for method in methods}
        self.upscalers.update(upscalers or {})
        self.scales = tuple(int(s) for s in scales)
        self.image_is_low_resolution = image_is_low_resolution
        height, width = image.shape[-2:]
        region_size = region_size or max(8, min(height, width) // 8)
        self.regions = preset_regions(image, region_size, regions)
        self.scale = self.scales[0]
        self.set_scale(scale if scale is not None else (4 if 4 in self.scales else self.scales[0]))
        self.region = next(iter(self.regions.values()))
        self.set_region(region if region is not None else next(iter(self.regions)))
        self._enlarged: dict[int, dict[str, torch.Tensor]] = {}  # scale -> method -> result, computed once
        self._psnr: dict[int, dict[str, float]] = {}  # scale -> method -> dB, likewise

    @property
    def has_ground_truth(self) -> bool:
        return not self.image_is_low_resolution

    def set_scale(self, scale: int) -> None:
        if scale not in self.scales:
            raise ValueError(f"scale {scale} is not one of this comparison's scales {self.scales}")
        self.scale = int(scale)

    def set_region(self, region: Region | str) -> None:
        """Choose the detail: a Region in pixels of `image`, or the name of a preset."""
        if isinstance(region, str):
            if region not in self.regions:
                raise ValueError(f"no region named {region!r}; the presets are {', '.join(self.regions)}")
            region = self.regions[region]
        self.region = region.clamped(*self.image.shape[-2:])

    def ground_truth(self, scale: int | None = None) -> torch.Tensor | None:
        """The original, mod-cropped to a multiple of the scale (None for a low-resolution input)."""
        return None if self.image_is_low_resolution else mod_crop(self.image, scale or self.scale)

    def low_resolution(self, scale: int | None = None) -> torch.Tensor:
        """The input the methods enlarge at this scale."""
        scale = scale or self.scale
        return self.image if self.image_is_low_resolution else downscale(self.image, scale)

    def enlarged(self, scale: int | None = None) -> dict[str, torch.Tensor]:
        """Every method's enlargement of the input at `scale` (methods that cannot do it are left out)."""
        scale = scale or self.scale
        if scale not in self._enlarged:
            lr_image = self.low_resolution(scale)
            self._enlarged[scale] = {
                name: upscaler(lr_image, scale)
                for name, upscaler in self.upscalers.items()
                if supports(upscaler, scale)
            }
        return self._enlarged[scale]

    def psnr(self, scale: int | None = None) -> dict[str, float]:
        """PSNR (dB) of each method against the original at `scale`; empty without ground truth."""
        scale = scale or self.scale
        hr_image = self.ground_truth(scale)
        if hr_image is None:
            return {}
        if scale not in self._psnr:
            self._psnr[scale] = {
                name: protocol_psnr(sr_image, hr_image, scale) for name, sr_image in self.enlarged(scale).items()
            }
        return self._psnr[scale]

    def output_region(self, scale: int | None = None) -> Region:
        """The detail in pixels of the enlarged images."""
        scale = scale or self.scale
        region = self.region.scaled(scale) if self.image_is_low_resolution else self.region
        height, width = next(iter(self.enlarged(scale).values())).shape[-2:]
        return region.clamped(height, width)

    def crops(self, scale: int | None = None) -> dict[str, torch.Tensor]:
        """The detail as each method shows it, preceded by the original (or the input) detail."""
        scale = scale or self.scale
        region = self.output_region(scale)
        if self.image_is_low_resolution:
            first = {"input": self.region.crop(self.image)}
        else:
            first = {"original": region.crop(self.ground_truth(scale))}
        return first | {name: region.crop(image) for name, image in self.enlarged(scale).items()}

    def table(self) -> str:
        """PSNR of every method at every scale, as plain text (methods as rows, scales as columns)."""
        if not self.has_ground_truth:
            return "no ground truth: the image was enlarged as it is, so there is nothing to measure against"
        scores = {scale: self.psnr(scale) for scale in self.scales}
        width = max(len(name) for name in self.upscalers)
        lines = [
            "PSNR (dB) against the original (Y channel, border = scale, 8-bit)",
            f"{'method':<{width}}" + "".join(f"{'x' + str(scale):>8}" for scale in self.scales),
        ]
        for name in self.upscalers:
            cells = [f"{scores[scale][name]:8.2f}" if name in scores[scale] else f"{'-':>8}" for scale in self.scales]
            lines.append(f"{name:<{width}}" + "".join(cells))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- swipe comparison


class SwipeComparison:
    """Two images of the same size shown as one: `left` up to the split, `right` after it.

    A divider line marks the split. `reference` (the ground truth, when there is one) joins the
    zoomed crops, so a detail can be checked against what it should be.
    """

    def __init__(
        self,
        left: torch.Tensor,
        right: torch.Tensor,
        left_label: str = "bicubic",
        right_label: str = "model",
        reference: torch.Tensor | None = None,
        split: float = 0.5,
        region: Region | str | None = None,
        region_size: int | None = None,
        divider_width: int = 2,
    ) -> None:
        assert left.shape == right.shape, (
            f"a swipe needs two images of the same shape, got {tuple(left.shape)} and {tuple(right.shape)}"
        )
        assert reference is None or reference.shape == left.shape, (
            f"the reference must have the images' shape {tuple(left.shape)}, got {tuple(reference.shape)}"
        )
        self.left, self.right, self.reference = left, right, reference
        self.left_label, self.right_label = left_label, right_label
        self.divider_width = divider_width
        height, width = left.shape[-2:]
        region_size = region_size or max(8, min(height, width) // 8)
        named = {}
        if reference is not None:
            named[f"largest gain of {right_label}"] = largest_gain_region(left, right, reference, region_size)
        self.regions = preset_regions(reference if reference is not None else right, region_size, named)
        self.split = 0.5
        self.set_split(split)
        self.region = next(iter(self.regions.values()))
        self.set_region(region if region is not None else next(iter(self.regions)))

    def set_split(self, split: float) -> None:
        """Where the images meet, as a fraction of the width: 0 shows only `right`, 1 only `left`."""
        self.split = min(max(float(split), 0.0), 1.0)

    def set_region(self, region: Region | str) -> None:
        """Choose the zoomed detail: a Region in pixels of the images, or a preset's name."""
        if isinstance(region, str):
            if region not in self.regions:
                raise ValueError(f"no region named {region!r}; the presets are {', '.join(self.regions)}")
            region = self.regions[region]
        self.region = region.clamped(*self.left.shape[-2:])

    @property
    def split_column(self) -> int:
        """The first column that shows `right`."""
        return round(self.split * self.left.shape[-1])

    def composite(self) -> torch.Tensor:
        """(3, H, W): left | right at the split, with a divider line of `divider_width` pixels."""
        column, width = self.split_column, self.left.shape[-1]
        composite = as_rgb(self.right).clone()
        composite[:, :, :column] = as_rgb(self.left)[:, :, :column]
        start = min(max(column - self.divider_width // 2, 0), width - self.divider_width)
        colour = torch.tensor(MARK_COLOUR, dtype=composite.dtype) / 255
        composite[:, :, start : start + self.divider_width] = colour[:, None, None]
        return composite

    def crops(self) -> dict[str, torch.Tensor]:
        """The zoomed detail of each image: left, right and, if given, the reference."""
        crops = {self.left_label: self.region.crop(self.left), self.right_label: self.region.crop(self.right)}
        if self.reference is not None:
            crops["original"] = self.region.crop(self.reference)
        return crops


# -------------------------------------------------------------------------------- static figures


def plot_zoom(comparison: ZoomComparison, scales: Sequence[int] | None = None, panel_size: float = 1.4,
              dpi: int = 75) -> Figure:
    """The whole image with the detail marked, then one row per scale of the detail as each method
    enlarges it, PSNR in the titles."""
    scales = tuple(scales or comparison.scales)
    rows = [(scale, comparison.crops(scale), comparison.psnr(scale)) for scale in scales]
    columns = max(len(crops) for _, crops, _ in rows)
    image_height, image_width = comparison.image.shape[-2:]
    overview_width = len(rows) * image_width / image_height  # as tall as all the rows together
    figure = Figure(figsize=(panel_size * (columns + overview_width), (panel_size + 0.35) * len(rows)), dpi=dpi)
    grid = figure.add_gridspec(len(rows), columns + 1, width_ratios=[overview_width] + [1] * columns)
    overview = figure.add_subplot(grid[:, 0])
    overview.imshow(_for_imshow(comparison.image), cmap="gray", vmin=0, vmax=1)
    region = comparison.region
    overview.add_patch(Rectangle((region.left, region.top), region.size, region.size,
                                 fill=False, edgecolor=[c / 255 for c in MARK_COLOUR], linewidth=1.5))
    overview.set_axis_off()
    for row, (scale, crops, scores) in enumerate(rows):
        for column, (name, crop) in enumerate(crops.items(), start=1):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(_for_imshow(crop), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            title = f"x{scale} {name}" if column == 1 else name
            axis.set_title(f"{title}\n{scores[name]:.2f} dB" if name in scores else f"{title}\n", fontsize=8)
            axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    return figure


def plot_swipe(comparison: SwipeComparison, height: float = 3.0, dpi: int = 75,
               scores: Mapping[str, float] | None = None) -> Figure:
    """The swipe composite and the zoomed crops in one row (`scores`: PSNR per label, for titles)."""
    scores = scores or {}
    crops = comparison.crops()
    image_height, image_width = comparison.left.shape[-2:]
    composite_width = height * image_width / image_height
    ratios = [composite_width] + [height * 0.75] * len(crops)
    figure = Figure(figsize=(sum(ratios), height + 0.4), dpi=dpi)
    axes = figure.subplots(1, 1 + len(crops), gridspec_kw={"width_ratios": ratios})
    axes[0].imshow(_for_imshow(comparison.composite()))
    region = comparison.region
    axes[0].add_patch(Rectangle((region.left, region.top), region.size, region.size,
                                fill=False, edgecolor=[c / 255 for c in MARK_COLOUR], linewidth=1.5))
    axes[0].axvline(comparison.split_column - 0.5, color=[c / 255 for c in MARK_COLOUR], linewidth=1.5)
    axes[0].set_title(f"{comparison.left_label}  |  {comparison.right_label}", fontsize=9)
    for axis, (name, crop) in zip(axes[1:], crops.items()):
        axis.imshow(_for_imshow(crop), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(f"{name}\n{scores[name]:.2f} dB" if name in scores else name, fontsize=8)
    for axis in axes:
        axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    return figure


def _for_imshow(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> what imshow takes: (H, W) for gray, (H, W, 3) for colour, clamped to [0, 1]."""
    image = image.detach().float().clamp(0, 1).cpu()
    return (image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)).numpy()


# ------------------------------------------------------------------------------ lesson 07 state


@dataclass
class Picture:
    """The image a before-and-after comparison starts from."""

    name: str
    image: torch.Tensor  # (C, H, W) in [0, 1]
    # True: a good photo, shrunk to make the input, so the result can be measured against it.
    # False: the input itself (say a small photo of your own): enlarged as it is, no PSNR.
    is_ground_truth: bool = True
    note: str = ""  # what was done to it (cropped to keep things quick, ...)


@dataclass
class BeforeAfterResult:
    """Bicubic and every available model on one picture at one scale."""

    picture: str
    scale: int
    lr_image: torch.Tensor  # (C, h, w), the input
    outputs: dict[str, torch.Tensor]  # label -> (C, H, W); "bicubic" first
    hr_image: torch.Tensor | None  # (C, H, W) ground truth, when the input was made by shrinking
    psnr: dict[str, float] = field(default_factory=dict)  # label -> dB; empty without ground truth

    def table(self) -> str:
        """The PSNR of each result and its gain over bicubic, as plain text."""
        if not self.psnr:
            return (f"{self.picture} enlarged x{self.scale}: no ground truth (your image was the input), "
                    "so judge by eye")
        width = max(len(label) for label in self.psnr)
        baseline = self.psnr["bicubic"]
        lines = [f"{self.picture} x{self.scale}: PSNR against the original (Y channel, border {self.scale})",
                 f"{'method':<{width}}  {'PSNR (dB)':>9}  {'vs bicubic':>10}"]
        for label, value in self.psnr.items():
            gain = 0.0 if value == baseline else value - baseline  # identical images: inf - inf
            lines.append(f"{label:<{width}}  {value:9.2f}  {gain:+10.2f}")
        return "\n".join(lines)


@dataclass
class TrainedModel:
    """A model that can enter the comparison, and the scales it enlarges by (None: any)."""

    model: nn.Module
    scales: tuple[int, ...] | None


def espcn_config(scale: int) -> ExperimentConfig:
    """The quick model of lesson 07: ESPCN learning only what bicubic misses (a global residual)."""
    return ExperimentConfig(model="espcn", scale=scale, model_options={"global_residual": True})


class TrainingRun:
    """An Experiment trained in short chunks, so a widget stays responsive and Stop works in between.

    `run_chunk()` trains for `chunk_seconds` and says whether to call it again. A learning rate that
    makes the loss explode does not crash anything: the trainer stops, restores good weights, and
    `message` says what happened.
    """

    def __init__(self, experiment: Experiment, seconds: float, steps: int | None = None) -> None:
        self.experiment = experiment
        self.seconds = seconds  # training time budget for the whole run
        self.steps = steps  # and an optional step budget: whichever ends first
        self.done = False
        self.stop_requested = False
        self.message = "ready"

    @property
    def trained_seconds(self) -> float:
        wall_time = self.experiment.history.wall_time
        return wall_time[-1] if wall_time else 0.0

    def run_chunk(self, chunk_seconds: float = 0.5) -> bool:
        """Train a little more; True while the run has time (and steps) left."""
        if self.done:
            return False
        left_seconds = self.seconds - self.trained_seconds
        left_steps = None if self.steps is None else self.steps - self.experiment.trainer.step
        if self.stop_requested or left_seconds <= 0 or (left_steps is not None and left_steps <= 0):
            return self._finish("stopped" if self.stop_requested else "done")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # shown as `message` instead
            history = self.experiment.train(steps=left_steps, seconds=min(chunk_seconds, left_seconds))
        if history.stop_reason == "diverged":
            return self._finish("diverged", history.stop_message)
        self.message = self._progress()
        return True

    def stop(self) -> None:
        """Ask the run to end before its next chunk (the Stop button)."""
        self.stop_requested = True
        self.experiment.trainer.stop()

    def _progress(self) -> str:
        history = self.experiment.history
        text = f"step {self.experiment.trainer.step}, {self.trained_seconds:.0f} of {self.seconds:g} s"
        if history.validation_psnr:
            text += f", validation PSNR {history.validation_psnr[-1]:.2f} dB"
        return text

    def _finish(self, reason: str, detail: str = "") -> bool:
        self.done = True
        trainer = self.experiment.trainer
        if trainer.best_state is not None:
            trainer.restore_best_state()  # the weights that did best on the held-out photo
        prefix = {"done": "finished", "stopped": "stopped", "diverged": "training diverged"}[reason]
        self.message = f"{prefix}: {self._progress()}" + (f". {detail}" if detail else "")
        return False


class BeforeAfter:
    """Lesson 07's workbench: a picture, a scale, the models that can enlarge it, and their results.

    models: label -> TrainedModel (or an nn.Module, whose own `scales` are used).
    held_out: names of bundled photos no model trained on; the others are marked "seen in
        training" in the table, since a score on a training photo flatters the model.
    max_output_side: bigger pictures are cropped around their centre so the result is at most this
        many pixels a side, which keeps every comparison under a second or so on a laptop.
    """

    def __init__(
        self,
        models: Mapping[str, TrainedModel | nn.Module] | None = None,
        sample: str = "rocket",
        scale: int = 3,
        scales: Sequence[int] = (2, 3, 4),
        held_out: Sequence[str] | None = None,
        max_output_side: int = 768,
        training_seconds: float = 60.0,
        training_data: Sequence[str] = (),
    ) -> None:
        self.models: dict[str, TrainedModel] = {}
        for label, model in (models or {}).items():
            self.add_model(label, model)
        self.scales = tuple(scales)
        self.scale = scale
        self.held_out = None if held_out is None else set(held_out)
        self.max_output_side = max_output_side
        self.training_seconds = training_seconds  # for the Train button
        self.training_data = tuple(training_data)  # HR folders; empty = the bundled photos
        self.training: TrainingRun | None = None
        self.message = ""
        self.result: BeforeAfterResult | None = None
        self.picture = self._sample_picture(sample)
        self.set_scale(scale)

    # --- choices
    def add_model(self, label: str, model: TrainedModel | nn.Module) -> None:
        if isinstance(model, nn.Module):
            model = TrainedModel(model, getattr(model, "scales", None))
        self.models[label] = model

    def models_for(self, scale: int | None = None) -> list[str]:
        """Labels of the models that enlarge by `scale` (default: the chosen scale)."""
        scale = scale or self.scale
        return [label for label, entry in self.models.items() if entry.scales is None or scale in entry.scales]

    def set_scale(self, scale: int) -> None:
        if scale not in self.scales:
            raise ValueError(f"scale must be one of {self.scales}, not {scale!r}")
        self.scale = int(scale)

    def choose_sample(self, name: str) -> None:
        """Use a bundled photo (shrunk to make the input, so PSNR can be measured)."""
        self.picture = self._sample_picture(name)
        self.message = self.picture.note

    def choose_upload(self, content: bytes, filename: str = "upload", is_ground_truth: bool = True) -> bool:
        """Use an uploaded image file. On a bad file, keep the current picture, explain, return False.

        is_ground_truth=True shrinks it first so the result can be measured; False enlarges it as it
        is (your own small photo), with no PSNR.
        """
        try:
            with Image.open(io.BytesIO(bytes(content))) as pil_image:
                pil_image.load()
                image = pil_to_tensor(pil_image)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            reason = "it is not an image file Pillow can read" if isinstance(error, UnidentifiedImageError) else (
                f"it could not be decoded ({error})")
            self.message = f"Could not use {filename!r}: {reason}. Try a PNG or JPEG photo."
            return False
        self.picture = Picture(filename, image, is_ground_truth, note=f"using your image {filename!r}")
        self.message = self.picture.note
        return True

    def set_ground_truth(self, is_ground_truth: bool) -> None:
        """Shrink the picture first (True, measurable) or enlarge it as it is (False)."""
        self.picture = replace(self.picture, is_ground_truth=is_ground_truth)

    # --- results
    def run(self) -> BeforeAfterResult | None:
        """Enlarge the picture with bicubic and every model for the scale. None (and a message) if it
        cannot be done, e.g. a picture too small for the scale."""
        scale = self.scale
        problem = self._size_problem(scale)
        if problem:
            self.message, self.result = problem, None
            return None
        image, cropped = self._fit(self.picture.image, scale)
        if self.picture.is_ground_truth:
            hr_image = mod_crop(image, scale)
            lr_image = downscale(hr_image, scale)
        else:
            hr_image, lr_image = None, image
        outputs = {"bicubic": interpolation_upscaler("bicubic")(lr_image, scale)}
        for label in self.models_for(scale):
            outputs[label] = upscale(self.models[label].model, lr_image, scale)
        scores = {label: protocol_psnr(output, hr_image, scale) for label, output in outputs.items()} if (
            hr_image is not None) else {}
        name = self.picture.name
        if self.held_out is not None and name in sample_names():
            name += " (held out)" if name in self.held_out else " (seen in training)"
        self.result = BeforeAfterResult(name, scale, lr_image, outputs, hr_image, scores)
        notes = [self.picture.note] if self.picture.note else []
        if cropped:
            side = max(image.shape[-2:]) * (1 if self.picture.is_ground_truth else scale)
            notes.append(f"cropped around the centre to at most {side} pixels a side, to stay quick")
        if len(outputs) == 1:
            notes.append(f"no model for x{scale} yet: train one with the button")
        self.message = "; ".join(notes)
        return self.result

    def swipe(self, label: str | None = None, **options) -> SwipeComparison:
        """Bicubic | `label` (default: the first model) for the last `run`."""
        if self.result is None:
            raise ValueError("nothing to compare yet: call run() first")
        outputs = self.result.outputs
        label = label or next((name for name in outputs if name != "bicubic"), "bicubic")
        return SwipeComparison(outputs["bicubic"], outputs[label], "bicubic", label,
                               reference=self.result.hr_image, **options)

    # --- training
    def start_training(self, seconds: float | None = None, steps: int | None = None) -> TrainingRun:
        """Prepare an ESPCN run at the chosen scale (call `training.run_chunk()` until it is done)."""
        config = espcn_config(self.scale)
        config.data = self.training_data
        self.training = TrainingRun(Experiment(config), seconds or self.training_seconds, steps)
        return self.training

    def finish_training(self) -> str:
        """Add the trained model to the comparison under its label and return the label."""
        assert self.training is not None and self.training.done, "finish the training run first"
        scale = self.training.experiment.config.scale
        label = f"ESPCN x{scale} (trained here)"
        self.add_model(label, self.training.experiment.model)
        if self.held_out is None:
            self.held_out = {path.stem for path in self.training.experiment.validation_paths}
        return label

    # --- helpers
    def _sample_picture(self, name: str) -> Picture:
        if name not in sample_names():
            raise ValueError(f"no bundled photo {name!r}; choose one of {', '.join(sample_names())}")
        return Picture(name, load_sample(name), is_ground_truth=True)

    def _size_problem(self, scale: int) -> str:
        height, width = self.picture.image.shape[-2:]
        smallest = 16 * scale if self.picture.is_ground_truth else 16
        if min(height, width) < smallest:
            what = "shrink it" if self.picture.is_ground_truth else "enlarge it"
            return (f"{self.picture.name} is {width}x{height} pixels: too small to {what} at x{scale} "
                    f"(needs at least {smallest} pixels a side)")
        return ""

    def _fit(self, image: torch.Tensor, scale: int) -> tuple[torch.Tensor, bool]:
        """Crop around the centre so the output is at most max_output_side pixels a side."""
        limit = self.max_output_side if self.picture.is_ground_truth else max(16, self.max_output_side // scale)
        height, width = image.shape[-2:]
        if height <= limit and width <= limit:
            return image, False
        new_height, new_width = min(height, limit), min(width, limit)
        top, left = (height - new_height) // 2, (width - new_width) // 2
        return image[:, top : top + new_height, left : left + new_width], True


# ---------------------------------------------------------------------------------------- views


def _image_widget(image: torch.Tensor | None = None, width: int | None = None):
    import ipywidgets as widgets

    widget = widgets.Image(format="png", value=to_png(image) if image is not None else b"")
    if width is not None:
        widget.layout.width = f"{width}px"
    return widget


class _Tiles:
    """A row of captioned images, one per name, reused between redraws (new widgets only for new
    names, and the ones no longer shown are closed, so nothing piles up in the kernel)."""

    def __init__(self, display_size: int) -> None:
        import ipywidgets as widgets

        self.display_size = display_size
        self.row = widgets.HBox()
        self.captions: dict[str, object] = {}
        self.images: dict[str, object] = {}
        self._tiles: dict[str, object] = {}

    def show(self, tiles: Mapping[str, tuple[str, torch.Tensor]]) -> None:
        """tiles: name -> (caption HTML, crop); each crop is blown up to display_size."""
        import ipywidgets as widgets

        for name in list(self._tiles):
            if name not in tiles:
                for widget in (self._tiles.pop(name), self.captions.pop(name), self.images.pop(name)):
                    widget.close()
        for name, (caption, crop) in tiles.items():
            if name not in self._tiles:
                self.captions[name] = widgets.HTML()
                self.images[name] = _image_widget(width=self.display_size)
                self._tiles[name] = widgets.VBox([self.captions[name], self.images[name]])
            self.captions[name].value = caption
            self.images[name].value = to_png(blow_up(crop, self.display_size))
        self.row.children = [self._tiles[name] for name in tiles]


class _View:
    """What the views share: showing as their widget, with a short text for static viewers."""

    widget: object
    static_text = "Interactive comparison: run the notebook (Jupyter, Colab or Binder) to use it."

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata)
            bundle[0]["text/plain"] = self.static_text
        elif isinstance(bundle, dict):
            bundle["text/plain"] = self.static_text
        return bundle


class ZoomView(_View):
    """Widgets for a ZoomComparison: scale buttons, a region dropdown and sliders, one tile a method."""

    def __init__(self, comparison: ZoomComparison, display_size: int = 160, overview_size: int = 240) -> None:
        import ipywidgets as widgets

        self.comparison = comparison
        self.display_size = display_size
        self.overview_size = overview_size
        image_height, image_width = comparison.image.shape[-2:]
        region = comparison.region
        self.scale = widgets.ToggleButtons(
            options=[(f"x{s}", s) for s in comparison.scales], value=comparison.scale, description="Scale"
        )
        self.preset = widgets.Dropdown(
            options=list(comparison.regions), value=self._preset_name(), description="Detail"
        )
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        self.left = widgets.IntSlider(value=region.left, min=0, max=image_width - 1, description="x", **slider)
        self.top = widgets.IntSlider(value=region.top, min=0, max=image_height - 1, description="y", **slider)
        self.size = widgets.IntSlider(value=region.size, min=8, max=min(image_height, image_width),
                                      description="size", **slider)
        self.overview = _image_widget()
        self.tiles = _Tiles(display_size)
        self.labels, self.images = self.tiles.captions, self.tiles.images  # name -> widget
        self._updating = False
        self.scale.observe(self._on_scale, names="value")
        self.preset.observe(self._on_preset, names="value")
        for control in (self.left, self.top, self.size):
            control.observe(self._on_slider, names="value")
        controls = widgets.VBox([self.scale, self.preset, self.left, self.top, self.size])
        self.widget = widgets.VBox([widgets.HBox([self.overview, controls]), self.tiles.row])
        self.refresh()

    def _preset_name(self) -> str | None:
        return next((name for name, region in self.comparison.regions.items()
                     if region.clamped(*self.comparison.image.shape[-2:]) == self.comparison.region), None)

    def _on_scale(self, change) -> None:
        self.comparison.set_scale(change["new"])
        self.refresh()

    def _on_preset(self, change) -> None:
        if self._updating or change["new"] is None:
            return
        self.comparison.set_region(change["new"])
        self.refresh()

    def _on_slider(self, change) -> None:
        if self._updating:
            return
        self.comparison.set_region(Region(self.top.value, self.left.value, self.size.value))
        self.refresh()

    def refresh(self) -> None:
        """Redraw everything from the comparison's state."""
        comparison = self.comparison
        self._updating = True
        try:  # the controls follow the state (a preset moves the sliders, a clamp corrects them)
            region = comparison.region
            self.left.value, self.top.value, self.size.value = region.left, region.top, region.size
            self.preset.value = self._preset_name()
        finally:
            self._updating = False
        self.overview.value = to_png(mark_region(comparison.image, comparison.region, self.overview_size))
        scores = comparison.psnr()
        self.tiles.show({
            name: (f"<b>{name}</b><br>{f'{scores[name]:.2f} dB' if name in scores else '&nbsp;'}", crop)
            for name, crop in comparison.crops().items()
        })


class SwipeView(_View):
    """Widgets for a SwipeComparison: the composite with a "Swipe" slider, and zoomed crops."""

    def __init__(self, comparison: SwipeComparison, display_size: int = 160,
                 scores: Mapping[str, float] | None = None) -> None:
        import ipywidgets as widgets

        self.display_size = display_size
        self.swipe = widgets.FloatSlider(
            value=comparison.split, min=0.0, max=1.0, step=0.01, description="Swipe",
            continuous_update=False, readout_format=".2f",
        )
        self.swipe.add_class("sr-swipe-slider")
        self.image = _image_widget()
        self.image.add_class("sr-swipe-image")
        self.caption = widgets.HTML()
        self.preset = widgets.Dropdown(description="Detail")
        self.tiles = _Tiles(display_size)
        self.crops = self.tiles.row
        self.swipe.observe(self._on_swipe, names="value")
        self.preset.observe(self._on_preset, names="value")
        self.widget = widgets.VBox([self.caption, self.swipe, self.image, self.preset, self.crops])
        self.set_comparison(comparison, scores)

    def set_comparison(self, comparison: SwipeComparison, scores: Mapping[str, float] | None = None) -> None:
        """Show another pair (e.g. after a new model or picture), keeping the split where it was."""
        self.comparison = comparison
        self.scores = dict(scores or {})
        comparison.set_split(self.swipe.value)
        self.preset.unobserve(self._on_preset, names="value")
        self.preset.options = list(comparison.regions)
        self.preset.value = next(iter(comparison.regions))
        comparison.set_region(self.preset.value)
        self.preset.observe(self._on_preset, names="value")
        self.caption.value = (f"<b>&#9664; {comparison.left_label}</b> &nbsp;|&nbsp; "
                              f"<b>{comparison.right_label} &#9654;</b> &nbsp; (drag <i>Swipe</i>)")
        # one screen pixel per image pixel, unless the page is narrower
        self.image.layout.width = f"{comparison.left.shape[-1]}px"
        self.image.layout.max_width = "100%"
        self.refresh()

    def _on_swipe(self, change) -> None:
        self.comparison.set_split(change["new"])
        self.image.value = to_png(self.comparison.composite())

    def _on_preset(self, change) -> None:
        if change["new"] is not None:
            self.comparison.set_region(change["new"])
            self._draw_crops()

    def refresh(self) -> None:
        self.image.value = to_png(self.comparison.composite())
        self._draw_crops()

    def _draw_crops(self) -> None:
        self.tiles.show({
            name: (f"<b>{name}</b>" + (f"<br>{self.scores[name]:.2f} dB" if name in self.scores else ""), crop)
            for name, crop in self.comparison.crops().items()
        })


class BeforeAfterView(_View):
    """Widgets for lesson 07: picture, upload, scale, model, Train/Stop, the table and the swipe."""

    def __init__(self, state: BeforeAfter, chunk_seconds: float = 0.5) -> None:
        import ipywidgets as widgets

        self.state = state
        self.chunk_seconds = chunk_seconds
        self.picture = widgets.Dropdown(options=sample_names(), description="Photo")
        if state.picture.name in sample_names():
            self.picture.value = state.picture.name
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your image")
        self.use_as = widgets.ToggleButtons(
            options=[("shrink it, then enlarge (PSNR)", True), ("enlarge it as it is", False)],
            value=state.picture.is_ground_truth, description="Use as",
        )
        self.scale = widgets.ToggleButtons(options=[(f"x{s}", s) for s in state.scales], value=state.scale,
                                           description="Scale")
        self.model = widgets.Dropdown(description="Model")
        self.train_button = widgets.Button(description="Train ESPCN", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.swipe_view: SwipeView | None = None
        self.swipe_box = widgets.VBox()
        self._task = None

        self.picture.observe(self._on_picture, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.use_as.observe(self._on_use_as, names="value")
        self.scale.observe(self._on_scale, names="value")
        self.model.observe(self._on_model, names="value")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.widget = widgets.VBox([
            widgets.HBox([self.picture, self.upload]), self.use_as, self.scale,
            widgets.HBox([self.model, self.train_button, self.stop_button]),
            self.status, self.table, self.swipe_box,
        ])
        self.rerun()

    # --- events
    def _on_picture(self, change) -> None:
        self.state.choose_sample(change["new"])
        if not self.use_as.value:
            self.use_as.value = True  # a bundled photo is ground truth; _on_use_as reruns
            return
        self.rerun()

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[-1]
        if self.state.choose_upload(upload["content"], upload["name"], is_ground_truth=self.use_as.value):
            self.rerun()
        else:
            self._show_status()

    def _on_use_as(self, change) -> None:
        self.state.set_ground_truth(change["new"])
        self.rerun()

    def _on_scale(self, change) -> None:
        self.state.set_scale(change["new"])
        self.rerun()

    def _on_model(self, change) -> None:
        if change["new"] is not None and self.state.result is not None:
            self._show_swipe()

    def _on_train(self, _button=None) -> None:
        if self.state.training is not None and not self.state.training.done:
            return  # already training
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.state.start_training()
        self.status.value = f"training ESPCN at x{self.state.scale}..."
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script or a test): train right here, to the end
            while self.state.training.run_chunk(self.chunk_seconds):
                self._show_status()
            self._training_finished()
            return
        self._task = loop.create_task(self._train_in_background())

    async def _train_in_background(self) -> None:
        # Between chunks the kernel's event loop handles button clicks (Stop) and slider moves.
        training = self.state.training
        try:
            while training.run_chunk(self.chunk_seconds):
                self._show_status()
                await asyncio.sleep(0.02)
        except Exception as error:  # a background task has nobody to raise to: say it on screen
            training.stop()
            training.run_chunk()  # ends the run and keeps the best weights so far
            self.train_button.disabled, self.stop_button.disabled = False, True
            self.status.value = f"training failed: {type(error).__name__}: {error}"
            raise
        self._training_finished()

    def _on_stop(self, _button=None) -> None:
        if self.state.training is not None:
            self.state.training.stop()

    def _training_finished(self) -> None:
        label = self.state.finish_training()
        message = self.state.training.message
        self.train_button.disabled, self.stop_button.disabled = False, True
        self.rerun(select=label)
        self.status.value = "<br>".join(text for text in (message, self.state.message) if text)

    # --- drawing
    def rerun(self, select: str | None = None) -> None:
        """Recompute the comparison for the current choices and redraw the table and the swipe."""
        self.train_button.description = f"Train ESPCN x{self.state.scale}"
        result = self.state.run()
        self._show_status()
        if result is None:
            self.table.value = ""
            self.model.options = []
            self.swipe_box.children = []
            return
        self.table.value = f"<pre>{result.table()}</pre>"
        labels = [label for label in result.outputs if label != "bicubic"]
        self.model.unobserve(self._on_model, names="value")
        self.model.options = labels
        self.model.value = select if select in labels else (labels[0] if labels else None)
        self.model.observe(self._on_model, names="value")
        self._show_swipe()

    def _show_swipe(self) -> None:
        result = self.state.result
        comparison = self.state.swipe(self.model.value)
        if self.swipe_view is None:
            self.swipe_view = SwipeView(comparison, scores=result.psnr)
            self.swipe_box.children = [self.swipe_view.widget]
        else:
            self.swipe_view.set_comparison(comparison, scores=result.psnr)
            self.swipe_box.children = [self.swipe_view.widget]

    def _show_status(self) -> None:
        training = self.state.training
        text = self.state.message
        if training is not None and not training.done:
            text = f"training: {training.message}"
        self.status.value = text
