"""Swipe comparison: two enlargements of one photo shown as one, split where you drag.

`SwipeComparison` composites `left` (say bicubic) up to the split and `right` (a network) after
it, with a thin divider, and keeps zoomed crops of both (and of the original, when there is one).
`SwipeView` is its ipywidgets view, `plot_swipe` the same as a static figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from sr_teach.widgets.pictures import (
    MARK_COLOUR,
    TileRow,
    WidgetView,
    as_rgb,
    encode_image,
    for_imshow,
    image_widget,
    outline_region,
)
from sr_teach.widgets.regions import Region, choose_region, default_region_size, largest_gain_region, preset_regions


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
        if left.shape != right.shape:
            raise ValueError(
                f"a swipe needs two images of the same shape, got {tuple(left.shape)} and {tuple(right.shape)}"
            )
        if reference is not None and reference.shape != left.shape:
            raise ValueError(
                f"the reference must have the images' shape {tuple(left.shape)}, got {tuple(reference.shape)}"
            )
        self.left, self.right, self.reference = left, right, reference
        self.left_label, self.right_label = left_label, right_label
        self.divider_width = divider_width
        region_size = region_size or default_region_size(*left.shape[-2:])
        named = {}
        if reference is not None:
            named[f"largest gain of {right_label}"] = largest_gain_region(left, right, reference, region_size)
        self.regions = preset_regions(reference if reference is not None else right, region_size, named)
        self.set_split(split)
        self.set_region(region if region is not None else next(iter(self.regions)))

    def set_split(self, split: float) -> None:
        """Where the images meet, as a fraction of the width: 0 shows only `right`, 1 only `left`."""
        self.split = min(max(float(split), 0.0), 1.0)

    def set_region(self, region: Region | str) -> None:
        """Choose the zoomed detail: a Region in pixels of the images, or a preset's name."""
        self.region = choose_region(region, self.regions, *self.left.shape[-2:])

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
    axes[0].imshow(for_imshow(comparison.composite()))
    outline_region(axes[0], comparison.region)
    axes[0].axvline(comparison.split_column - 0.5, color=[c / 255 for c in MARK_COLOUR], linewidth=1.5)
    axes[0].set_title(f"{comparison.left_label}  |  {comparison.right_label}", fontsize=9)
    for axis, (name, crop) in zip(axes[1:], crops.items()):
        axis.imshow(for_imshow(crop), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(f"{name}\n{scores[name]:.2f} dB" if name in scores else name, fontsize=8)
    for axis in axes:
        axis.set_axis_off()
    figure.tight_layout(pad=0.3)
    return figure


class SwipeView(WidgetView):
    """Widgets for a SwipeComparison: the composite with a "Swipe" slider, and zoomed crops.

    The slider and the picture carry the CSS classes sr-swipe-slider and sr-swipe-image, for
    browser tests.
    """

    def __init__(self, comparison: SwipeComparison, display_size: int = 160,
                 scores: Mapping[str, float] | None = None) -> None:
        import ipywidgets as widgets

        self.display_size = display_size
        self.swipe = widgets.FloatSlider(
            value=comparison.split, min=0.0, max=1.0, step=0.01, description="Swipe",
            continuous_update=False, readout_format=".2f",
        )
        self.swipe.add_class("sr-swipe-slider")
        self.image = image_widget()
        self.image.add_class("sr-swipe-image")
        self.caption = widgets.HTML()
        # as wide as its longest option ("largest gain of ESPCN x3 (trained here)"), so none is cut off
        self.preset = widgets.Dropdown(description="Detail", layout=widgets.Layout(width="max-content"))
        self.tiles = TileRow(display_size)
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
        # one screen pixel per image pixel, unless the page is narrower; the slider spans the image
        for widget in (self.image, self.swipe):
            widget.layout.width = f"{comparison.left.shape[-1]}px"
            widget.layout.max_width = "100%"
        self.refresh()

    def _on_swipe(self, change: dict) -> None:
        self.comparison.set_split(change["new"])
        self.image.value = encode_image(self.comparison.composite())

    def _on_preset(self, change: dict) -> None:
        if change["new"] is not None:
            self.comparison.set_region(change["new"])
            self._draw_crops()

    def refresh(self) -> None:
        self.image.value = encode_image(self.comparison.composite())
        self._draw_crops()

    def _draw_crops(self) -> None:
        self.tiles.show({
            name: (f"<b>{name}</b>" + (f"<br>{self.scores[name]:.2f} dB" if name in self.scores else ""), crop)
            for name, crop in self.comparison.crops().items()
        })
