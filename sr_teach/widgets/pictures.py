"""Pictures on screen: image tensors as PNG/JPEG bytes, enlarged crops, marked regions, and the
widget pieces the comparison views share (an image widget, a row of captioned tiles).

Everything takes (C, H, W) tensors in [0, 1], C = 1 (gray) or 3 (RGB). The widget pieces import
ipywidgets when they are built, so this module imports without it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from sr_teach.images import pil_to_tensor, tensor_to_pil
from sr_teach.widgets.regions import Region

# Yellow: visible on photos of any colour, and on gray ones.
MARK_COLOUR = (255, 210, 0)


def blow_up(crop: torch.Tensor, display_size: int) -> torch.Tensor:
    """Enlarge a small crop to display_size x display_size with nearest neighbour, so every pixel
    shows as a block."""
    return F.interpolate(crop[None].float(), size=(display_size, display_size), mode="nearest")[0]


def encode_image(image: torch.Tensor, image_format: str = "png", size: int | None = None) -> bytes:
    """(C, H, W) in [0, 1] -> PNG or JPEG bytes, for an `ipywidgets.Image`; blown up to size x size
    first when `size` is given.

    PNG is exact and quick to write (it is redrawn live); JPEG holds a photo in a fraction of the
    bytes, which matters because an executed notebook stores every image it shows.
    """
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"image_format must be 'png' or 'jpeg', not {image_format!r}")
    if size is not None:
        image = blow_up(image, size)
    buffer = io.BytesIO()
    options = {"compress_level": 1} if image_format == "png" else {"quality": 90}
    tensor_to_pil(image).save(buffer, format=image_format.upper(), **options)
    return buffer.getvalue()


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


# ----------------------------------------------------------------------------- matplotlib figures


def for_imshow(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> what imshow takes: (H, W) for gray, (H, W, 3) for colour, clamped to [0, 1]."""
    image = image.detach().float().clamp(0, 1).cpu()
    return (image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)).numpy()


def outline_region(axis: Any, region: Region) -> None:
    """Draw `region` as a yellow box on a matplotlib axis showing the image it belongs to."""
    from matplotlib.patches import Rectangle

    axis.add_patch(Rectangle((region.left, region.top), region.size, region.size,
                             fill=False, edgecolor=[c / 255 for c in MARK_COLOUR], linewidth=1.5))


# ------------------------------------------------------------------------------- widget pieces


def image_widget(image: torch.Tensor | None = None, width: int | None = None) -> Any:
    """An `ipywidgets.Image` showing `image` as PNG (empty if None), `width` screen pixels wide."""
    import ipywidgets as widgets

    widget = widgets.Image(format="png", value=encode_image(image) if image is not None else b"")
    if width is not None:
        widget.layout.width = f"{width}px"
    return widget


class TileRow:
    """A row of captioned images, one per name, reused between redraws (new widgets only for new
    names, and the ones no longer shown are closed, so nothing piles up in the kernel)."""

    def __init__(self, display_size: int) -> None:
        import ipywidgets as widgets

        self.display_size = display_size
        # Captions differ in height (one line, or a name and a PSNR): align the crops at the bottom.
        self.row = widgets.HBox(layout=widgets.Layout(align_items="flex-end"))
        self.row.add_class("sr-tile-row")  # for browser tests
        self.captions: dict[str, Any] = {}  # name -> widgets.HTML
        self.images: dict[str, Any] = {}  # name -> widgets.Image
        self._tiles: dict[str, Any] = {}

    def show(self, tiles: Mapping[str, tuple[str, torch.Tensor]]) -> None:
        """tiles: name -> (caption HTML, crop); each crop is blown up to display_size."""
        import ipywidgets as widgets

        for name in list(self._tiles):
            if name not in tiles:
                for widget in (self._tiles.pop(name), self.captions.pop(name), self.images.pop(name)):
                    widget.close()
        for name, (caption, crop) in tiles.items():
            if name not in self._tiles:
                # a caption as wide as its crop wraps instead of running into the next one
                self.captions[name] = widgets.HTML(layout=widgets.Layout(width=f"{self.display_size}px"))
                self.images[name] = image_widget(width=self.display_size)
                self._tiles[name] = widgets.VBox([self.captions[name], self.images[name]],
                                                 layout=widgets.Layout(margin="0 12px 0 0"))
            self.captions[name].value = caption
            self.images[name].value = encode_image(crop, size=self.display_size)
        self.row.children = [self._tiles[name] for name in tiles]


class WidgetView:
    """What the comparison views share: they display as their `widget`, with a short text for
    viewers that cannot run widgets."""

    widget: Any
    static_text = "Interactive comparison: run the notebook (Jupyter, Colab or Binder) to use it."

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata)
            bundle[0]["text/plain"] = self.static_text
        elif isinstance(bundle, dict):
            bundle["text/plain"] = self.static_text
        return bundle
