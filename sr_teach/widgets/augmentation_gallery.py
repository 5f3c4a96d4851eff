"""Augmentation gallery (lesson 06): every transform of sr_teach.augmentation, and one draw on an LR/HR pair.

`transform_examples` shows each transform once at a clearly visible strength. `AugmentationGallery`
holds one random draw of an `AugmentConfig` and shows it twice: on the photo (what the sampler does
to an HR photo before degrading it) and on an aligned (LR, HR) pair (the *same* choice on both),
with the check that makes augmentation safe for SR: shrinking the augmented HR must give the
augmented LR. `AugmentationGalleryView` puts checkboxes and sliders on the config's fields.

    gallery = AugmentationGallery("astronaut")
    gallery.new_draw()
    gallery.description, gallery.pair_difference
"""

from __future__ import annotations

import io
from dataclasses import fields, replace
from typing import TYPE_CHECKING

import torch

from sr_teach.augmentation import (
    AugmentChoice,
    AugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    adjust_hue,
    apply_geometric,
    apply_photometric,
    center_crop,
    crop,
    draw_augmentation,
    hflip,
    rot90,
    rotate,
    vflip,
)
from sr_teach.data import crop_pair
from sr_teach.degradations import downscale
from sr_teach.experiment import AUGMENTATIONS
from sr_teach.images import load_sample, sample_names
from sr_teach.interpolation import resize
from sr_teach.widgets.pictures import encode_image, for_imshow

if TYPE_CHECKING:
    from IPython.display import Image
    from matplotlib.figure import Figure

DISPLAY_SIZE = 192  # side of the square photo the gallery works on: small PNGs, quick redraws


def display_image(name: str, size: int = DISPLAY_SIZE) -> torch.Tensor:
    """A bundled photo as a size x size square: its centre square, shrunk with MATLAB bicubic."""
    image = load_sample(name)  # (C, H, W), C = 1 or 3
    side = min(image.shape[-2:])
    return resize(center_crop(image, side, side), size=(size, size), method="bicubic")  # (C, size, size)


def transform_examples(image: torch.Tensor, generator: torch.Generator) -> list[tuple[str, torch.Tensor]]:
    """(title, image) for each transform of sr_teach.augmentation, at a visible strength.

    The two crops keep two thirds of each side; the random one draws its position from `generator`.
    """
    height, width = image.shape[-2:]
    crop_height, crop_width = 2 * height // 3, 2 * width // 3
    top = int(torch.randint(0, height - crop_height + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - crop_width + 1, (1,), generator=generator))
    return [
        ("original", image),
        ("hflip", hflip(image)),
        ("vflip", vflip(image)),
        ("rot90, 1 turn", rot90(image, 1)),
        ("rotate 25°, cropped", rotate(image, 25.0, crop=True)),
        ("random crop", crop(image, top, left, crop_height, crop_width)),
        ("centre crop", center_crop(image, crop_height, crop_width)),
        ("brightness x1.4", adjust_brightness(image, 1.4)),
        ("contrast x0.5", adjust_contrast(image, 0.5)),
        ("hue +90°", adjust_hue(image, 90.0)),
        ("gamma 0.5", adjust_gamma(image, 0.5)),
        ("gamma 2", adjust_gamma(image, 2.0)),
    ]


def gallery_figure(examples: list[tuple[str, torch.Tensor]], columns: int = 6, dpi: int = 72) -> Figure:
    """A grid of the examples (a matplotlib Figure), each with its title."""
    from matplotlib.figure import Figure

    rows = -(-len(examples) // columns)
    figure = Figure(figsize=(1.6 * columns, 1.75 * rows), dpi=dpi, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, image) in zip(axes.flat, examples):
        ax.imshow(for_imshow(image), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title}\n{image.shape[-2]}x{image.shape[-1]}", fontsize=8)
    return figure


def describe(choice: AugmentChoice) -> str:
    """The draw in words, e.g. "mirrored left-right, 1 quarter turn, brightness x1.12"."""
    parts = []
    if choice.hflip:
        parts.append("mirrored left-right")
    if choice.vflip:
        parts.append("mirrored top-bottom")
    if choice.rot90_turns:
        parts.append(f"{choice.rot90_turns} quarter turn{'s' if choice.rot90_turns > 1 else ''}")
    if choice.rotate_degrees:
        parts.append(f"rotated {choice.rotate_degrees:+.1f}°")
    if choice.brightness_factor != 1.0:
        parts.append(f"brightness x{choice.brightness_factor:.2f}")
    if choice.contrast_factor != 1.0:
        parts.append(f"contrast x{choice.contrast_factor:.2f}")
    if choice.hue_degrees:
        parts.append(f"hue {choice.hue_degrees:+.1f}°")
    if choice.gamma != 1.0:
        parts.append(f"gamma {choice.gamma:.2f}")
    return ", ".join(parts) if parts else "unchanged (this draw changed nothing)"


def as_jpeg(figure: Figure, quality: int = 85) -> Image:
    """A matplotlib figure of photos as an IPython JPEG image, for display(): a PNG of photos is
    several times larger, and an executed notebook keeps every figure."""
    from IPython.display import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="jpeg", pil_kwargs={"quality": quality})
    return Image(data=buffer.getvalue(), format="jpeg")


class AugmentationGallery:
    """One random draw of an AugmentConfig, applied to a photo and to an aligned LR/HR pair.

    Every draw starts from a saved state of the seeded generator, so changing the config re-applies
    the *same* draw: switching contrast on does not change the flips (see `draw_augmentation`).
    """

    def __init__(
        self,
        image_name: str = "astronaut",
        config: AugmentConfig | None = None,
        seed: int = 0,
        scale: int = 3,
        patch_size: int = 32,
        size: int = DISPLAY_SIZE,
    ) -> None:
        if size % scale != 0:
            raise ValueError(f"the display size {size} must be a multiple of the scale {scale}")
        if not 1 <= patch_size <= size // scale:
            raise ValueError(f"an LR patch of {patch_size} pixels does not fit in {size // scale} LR pixels")
        self.config = config if config is not None else replace(AUGMENTATIONS["full"])
        self.scale = scale
        self.patch_size = patch_size  # LR pixels; the HR patch is scale times larger
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.draw_count = 0
        self.set_image(image_name, redraw=False)
        self.new_draw()

    def set_image(self, image_name: str, redraw: bool = True) -> None:
        if image_name not in sample_names():
            raise ValueError(f"no bundled photo {image_name!r}; choose one of {sample_names()}")
        self.image_name = image_name
        self.image = display_image(image_name, self.size)  # (C, size, size): the HR photo
        self.lr_image = downscale(self.image, self.scale)  # (C, size / s, size / s)
        if redraw:
            self._apply()

    def update(self, **changes: float | bool) -> None:
        """Change fields of the AugmentConfig (hflip=True, gamma=0.3, ...) and re-apply the same draw."""
        known = {field.name for field in fields(AugmentConfig)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(
                f"unknown augmentation settings {sorted(unknown)}; AugmentConfig has {sorted(known)}"
            )
        self.config = replace(self.config, **changes)  # AugmentConfig checks the ranges
        self._apply()

    def new_draw(self) -> None:
        """Draw new random choices (and a new patch position) from the seeded generator."""
        self._draw_state = self.generator.get_state()
        self.draw_count += 1
        self._apply()
        self.generator.set_state(self._generator_after)

    def _replay(self) -> torch.Generator:
        """A generator at the state where the current draw started."""
        generator = torch.Generator()
        generator.set_state(self._draw_state)
        return generator

    @property
    def pair_choice(self) -> AugmentChoice:
        """The draw without its free rotation: the pair cannot rotate, since rotating LR and HR
        separately resamples each differently, so the LR is no longer the degraded HR."""
        return replace(self.choice, rotate_degrees=0.0)

    def _apply(self) -> None:
        generator = self._replay()
        self.choice = draw_augmentation(self.config, generator)
        # The photo: what the sampler does to an HR photo before degrading it.
        rotated = self.image
        if self.choice.rotate_degrees:
            rotated = rotate(self.image, self.choice.rotate_degrees, crop=True)
        self.augmented = apply_photometric(apply_geometric(rotated, self.choice), self.choice)
        # The pair: the same draw (minus the rotation), applied to LR and HR alike...
        pair_choice = self.pair_choice
        lr_augmented = apply_photometric(apply_geometric(self.lr_image, pair_choice), pair_choice)
        hr_augmented = apply_photometric(apply_geometric(self.image, pair_choice), pair_choice)
        # ...and the check: shrinking the augmented HR should give the augmented LR.
        difference = (downscale(hr_augmented, self.scale) - lr_augmented).abs()  # (C, size / s, size / s)
        self.pair_difference = float(difference.max())
        self.pair_fraction_off = float((difference > 1 / 255).float().mean())  # off by over one 8-bit level
        # Then an aligned crop of the pair, its position drawn after the augmentation.
        lr_height, lr_width = lr_augmented.shape[-2:]
        top = int(torch.randint(0, lr_height - self.patch_size + 1, (1,), generator=generator))
        left = int(torch.randint(0, lr_width - self.patch_size + 1, (1,), generator=generator))
        self.lr_patch, self.hr_patch = crop_pair(lr_augmented, hr_augmented, top, left, self.patch_size, self.scale)
        self._generator_after = generator.get_state()

    @property
    def description(self) -> str:
        return describe(self.choice)

    @property
    def pair_message(self) -> str:
        """What the pair check found, in words."""
        rotation = " (free rotation is left out of the pair: it must happen to the HR before degrading)" if (
            self.config.rotate_degrees > 0
        ) else ""
        if self.pair_difference < 1e-5:
            return (
                "shrink(augmented HR) = augmented LR exactly: flips and quarter turns commute with "
                f"shrinking{rotation}"
            )
        return (
            f"shrink(augmented HR) vs augmented LR: {self.pair_fraction_off:.1%} of the LR values differ "
            f"by more than one 8-bit level (at most by {self.pair_difference:.3f}): value changes commute "
            "with shrinking only up to clipping to [0, 1] (and gamma, a curve, not exactly at all), so the "
            f"sampler applies them to the HR before shrinking{rotation}"
        )

    def figure(self, dpi: int = 72) -> Figure:
        """The photo, its augmentation, and the augmented LR and HR patches (a matplotlib Figure)."""
        panels = [
            ("original", self.image),
            ("augmented", self.augmented),
            (f"LR patch {self.patch_size}x{self.patch_size}", self.lr_patch),
            (f"HR patch {self.patch_size * self.scale}x{self.patch_size * self.scale}", self.hr_patch),
        ]
        figure = gallery_figure(panels, columns=4, dpi=dpi)
        figure.suptitle(self.description, fontsize=9)
        return figure


class AugmentationGalleryView:
    """Checkboxes and sliders bound to the AugmentConfig of an AugmentationGallery, and a "New random
    draw" button; the images are ipywidgets.Image JPEGs, redrawn when a control is released.

    display(AugmentationGalleryView().widget)
    """

    def __init__(self, gallery: AugmentationGallery | None = None) -> None:
        import ipywidgets as widgets

        self.gallery = gallery if gallery is not None else AugmentationGallery()
        config = self.gallery.config
        self.image_name = widgets.Dropdown(
            options=sample_names(), value=self.gallery.image_name, description="photo"
        )
        self.toggles = {
            name: widgets.Checkbox(value=getattr(config, name), description=name, indent=False)
            for name in ("hflip", "vflip", "rot90")
        }
        # (field, largest value, step): the ranges AugmentConfig accepts, cut to what looks sensible.
        ranges = (("rotate_degrees", 45.0, 1.0), ("brightness", 1.0, 0.05), ("contrast", 1.0, 0.05),
                  ("hue", 180.0, 5.0), ("gamma", 1.0, 0.05))
        self.sliders = {
            name: widgets.FloatSlider(
                value=getattr(config, name), min=0.0, max=max(largest, getattr(config, name)), step=step,
                description=name,
                continuous_update=False, style={"description_width": "100px"},
            )
            for name, largest, step in ranges
        }
        self.new_draw_button = widgets.Button(description="New random draw", icon="refresh")
        display_size = self.gallery.size
        patch_display = 160
        self.original = widgets.Image(format="jpeg", width=display_size)
        self.augmented = widgets.Image(format="jpeg", width=display_size)
        self.lr_patch = widgets.Image(format="jpeg", width=patch_display)
        self.hr_patch = widgets.Image(format="jpeg", width=patch_display)
        self._patch_display = patch_display
        self.description = widgets.HTML()
        self.pair_message = widgets.HTML()

        self.image_name.observe(self._on_image, names="value")
        for control in (*self.toggles.values(), *self.sliders.values()):
            control.observe(self._on_setting, names="value")
        self.new_draw_button.on_click(self._on_new_draw)

        def captioned(image, caption):
            return widgets.VBox([widgets.HTML(f"<b>{caption}</b>"), image])

        sliders = list(self.sliders.values())
        self.widget = widgets.VBox([
            widgets.HBox([self.image_name, *self.toggles.values(), self.new_draw_button]),
            widgets.HBox([widgets.VBox(sliders[:3]), widgets.VBox(sliders[3:])]),
            self.description,
            widgets.HBox([
                captioned(self.original, "original"),
                captioned(self.augmented, "augmented (as the sampler does before degrading)"),
                captioned(self.lr_patch, "LR patch (the same draw, no rotation)"),
                captioned(self.hr_patch, "HR patch, same draw"),
            ]),
            self.pair_message,
        ])
        self.refresh()

    def _on_image(self, change: dict) -> None:
        self.gallery.set_image(change["new"])
        self.refresh()

    def _on_setting(self, change: dict) -> None:
        controls = {**self.toggles, **self.sliders}
        name = next(name for name, control in controls.items() if control is change["owner"])
        self.gallery.update(**{name: change["new"]})
        self.refresh()

    def _on_new_draw(self, button: object) -> None:
        self.gallery.new_draw()
        self.refresh()

    def refresh(self) -> None:
        gallery = self.gallery
        self.original.value = encode_image(gallery.image, "jpeg")
        self.augmented.value = encode_image(gallery.augmented, "jpeg")
        self.lr_patch.value = encode_image(gallery.lr_patch, "jpeg", size=self._patch_display)
        self.hr_patch.value = encode_image(gallery.hr_patch, "jpeg", size=self._patch_display)
        self.description.value = f"<b>draw {gallery.draw_count}:</b> {gallery.description}"
        self.pair_message.value = gallery.pair_message
