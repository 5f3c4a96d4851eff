"""Zoom comparison (lesson 01): one photo shrunk and enlarged back by several methods, one detail.

`ZoomComparison` holds the state: the photo made small (MATLAB bicubic, the papers' protocol) and
enlarged back by nearest, bilinear, bicubic, Lanczos or trained models at x2, x4, x8; the same
detail of each, and its PSNR against the original. `ZoomView` is its ipywidgets view, `plot_zoom`
the same comparison as a static figure for viewers that cannot run widgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure

from sr_teach.degradations import downscale, mod_crop
from sr_teach.evaluation import Upscaler, interpolation_upscaler
from sr_teach.metrics import protocol_psnr
from sr_teach.widgets.pictures import (
    TileRow,
    WidgetView,
    encode_image,
    for_imshow,
    image_widget,
    mark_region,
    outline_region,
)
from sr_teach.widgets.regions import Region, choose_region, default_region_size, preset_regions

# The classical methods of lesson 01, in order of sophistication.
INTERPOLATION_METHODS = ("nearest", "bilinear", "bicubic", "lanczos")


def supports(upscaler: Upscaler, scale: int) -> bool:
    """Whether `upscaler` enlarges by `scale` (interpolation: always; a post model: its own scale)."""
    scales = getattr(upscaler, "scales", None)
    return scales is None or scale in scales


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
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected one (C, H, W) image with 1 or 3 channels, got shape {tuple(image.shape)}")
        if not scales:
            raise ValueError("a zoom comparison needs at least one scale")
        self.image = image
        self.upscalers: dict[str, Upscaler] = {method: interpolation_upscaler(method) for method in methods}
        self.upscalers.update(upscalers or {})
        self.scales = tuple(int(s) for s in scales)
        self.image_is_low_resolution = image_is_low_resolution
        self.regions = preset_regions(image, region_size or default_region_size(*image.shape[-2:]), regions)
        self.scale = self.scales[0]
        self.set_scale(scale if scale is not None else (4 if 4 in self.scales else self.scales[0]))
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
        self.region = choose_region(region, self.regions, *self.image.shape[-2:])

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
                name: float(protocol_psnr(sr_image, hr_image, scale))
                for name, sr_image in self.enlarged(scale).items()
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
    overview.imshow(for_imshow(comparison.image), cmap="gray", vmin=0, vmax=1)
    outline_region(overview, comparison.region)
    overview.set_axis_off()
    for row, (scale, crops, scores) in enumerate(rows):
        for column, (name, crop) in enumerate(crops.items(), start=1):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(for_imshow(crop), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            title = f"x{scale} {name}" if column == 1 else name
            axis.set_title(f"{title}\n{scores[name]:.2f} dB" if name in scores else f"{title}\n", fontsize=8)
            axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    return figure


class ZoomView(WidgetView):
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
        self.overview = image_widget()
        self.tiles = TileRow(display_size)
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

    def _on_scale(self, change: dict) -> None:
        self.comparison.set_scale(change["new"])
        self.refresh()

    def _on_preset(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self.comparison.set_region(change["new"])
        self.refresh()

    def _on_slider(self, change: dict) -> None:
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
        self.overview.value = encode_image(mark_region(comparison.image, comparison.region, self.overview_size))
        scores = comparison.psnr()
        self.tiles.show({
            name: (f"<b>{name}</b><br>{f'{scores[name]:.2f} dB' if name in scores else '&nbsp;'}", crop)
            for name, crop in comparison.crops().items()
        })
