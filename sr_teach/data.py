"""Training data: folders of HR photos -> random patches -> augmentation -> degradation -> (input, target).

SR training pairs are made on the fly: cut a patch from a high-resolution (HR) photo, augment it,
degrade it into a low-resolution (LR) patch, and ask the network to go back. Small patches (an LR
patch of 17 pixels at x3 for ESPCN) are enough, because a convolutional network only ever sees a
small neighbourhood of each pixel. `PatchSampler` makes them, reproducibly from a seed, equal to
the patches of the degraded whole photo; `load_validation_pairs` makes whole held-out images.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sr_teach.augmentation import (
    AugmentChoice,
    AugmentConfig,
    apply_geometric,
    apply_photometric_batch,
    center_crop,
    draw_augmentation,
    rotate,
)
from sr_teach.degradations import DegradationConfig, check_scale, corrupt, degrade, gaussian_kernel, mod_crop, shrink
from sr_teach.images import ImageError, load_image, rgb_to_gray, rgb_to_luma
from sr_teach.interpolation import resize



@dataclass
class DataConfig:
    """What the training batches look like."""

    scales: tuple[int, ...] = (3,)  # several train one multi-scale model (VDSR); each batch draws one
    patch_size: int = 17  # side of the LR patch (ESPCN: 17 at x3); the HR target is patch_size * scale
    # Or the same HR patch side at every scale (VDSR's 41 x 41), so a multi-scale model gets as many
    # target pixels of each scale; the LR side is then hr_patch_size / scale. It overrides patch_size.
    hr_patch_size: int | None = None
    batch_size: int = 16  # patches per step: more gives smoother gradients but costs memory and time
    num_channels: int = 1  # 1 = the luma Y of YCbCr, as SRCNN/ESPCN/VDSR train; 3 = RGB, as EDSR
    luma: bool = True  # one channel is Y (16-235, the SR papers); False: full-range gray (the denoising papers)
    pre_upsample: bool = False  # True for SRCNN/VDSR: the input is the LR bicubic-upscaled to the HR size
    degradation: DegradationConfig = field(default_factory=DegradationConfig)  # defines the task to undo
    # flips + quarter turns: exact, and 8 times the data
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(hflip=True, vflip=True, rot90=True))
    seed: int = 0  # the same seed gives the same batches, so runs can be compared and repeated

    def __post_init__(self) -> None:
        if isinstance(self.scales, int):
            self.scales = (self.scales,)
        self.scales = tuple(check_scale(scale) for scale in self.scales)
        if not self.scales:
            raise ValueError("scales needs at least one scale, e.g. (3,)")
        if self.patch_size < 1 or self.batch_size < 1:
            raise ValueError(f"patch_size and batch_size must be positive, not {self.patch_size}, {self.batch_size}")
        hr_patch = self.hr_patch_size
        if hr_patch is not None and (hr_patch < 1 or any(hr_patch % scale for scale in self.scales)):
            raise ValueError(f"hr_patch_size {hr_patch} must be a positive multiple of every scale {self.scales}")
        if self.num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 (Y channel) or 3 (RGB), not {self.num_channels}")

    def lr_patch_size(self, scale: int) -> int:
        """Side of the LR patches at this scale."""
        return self.patch_size if self.hr_patch_size is None else self.hr_patch_size // scale


# ----- finding and loading images -----


def split_train_validation(
    paths: Sequence[Path], validation_fraction: float, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Hold out a random `validation_fraction` of the training images, to choose checkpoints on.

    Never validate on a test set (Set5, Set14, ...): choosing the best checkpoint by its test score
    makes that score optimistic. Returns (train_paths, validation_paths), each sorted; at least one
    image goes to each side when validation_fraction > 0.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), not {validation_fraction}")
    paths = sorted(map(Path, paths))
    if validation_fraction == 0.0:
        return paths, []
    if len(paths) < 2:
        raise ValueError(f"need at least 2 images to hold some out for validation, got {len(paths)}")
    count = min(max(1, round(len(paths) * validation_fraction)), len(paths) - 1)
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
    validation = sorted(paths[index] for index in order[:count])
    train = sorted(paths[index] for index in order[count:])
    return train, validation


def load_training_image(path: str | os.PathLike, num_channels: int, luma: bool = True) -> torch.Tensor:
    """Load an image as the sampler keeps it: (C, H, W) uint8, C = num_channels (1 = luma Y, or gray).

    uint8 takes a quarter of the memory of float32 (T91 + BSD200 in RGB: 110 MB instead of 440 MB),
    and the Y channel is rounded to 8 bits as MATLAB's rgb2ycbcr does for 8-bit photos.
    """
    image = load_image(path, mode="rgb" if num_channels == 3 else "keep")  # (C, H, W) in [0, 1]
    if num_channels == 1:
        image = rgb_to_luma(image) if luma else rgb_to_gray(image)  # (1, H, W); gray photos stay as they are
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def _load_images(
    paths: Sequence[Path], num_channels: int, min_size: int, why_min_size: str, purpose: str = "training",
    luma: bool = True,
) -> tuple[list[Path], list[torch.Tensor]]:
    """Load every usable image; warn about (and skip) unreadable ones and ones smaller than min_size.
    None usable is an error for training; for validation ("validation") a warning and an empty list."""
    kept_paths, images, unreadable, too_small = [], [], [], []
    for path in paths:
        try:
            image = load_training_image(path, num_channels, luma)
        except (ImageError, OSError) as error:
            unreadable.append(f"{path} ({error})")
            continue
        height, width = image.shape[-2:]
        if min(height, width) < min_size:
            too_small.append(f"{path} ({height}x{width})")
            continue
        kept_paths.append(Path(path))
        images.append(image)
    if unreadable:
        warnings.warn(f"Skipped {len(unreadable)} unreadable image(s): " + "; ".join(unreadable), stacklevel=3)
    if too_small:
        warnings.warn(f"Skipped {len(too_small)} image(s) smaller than {min_size}x{min_size} pixels ({why_min_size}): "
                      + "; ".join(too_small), stacklevel=3)
    if not images and purpose == "training":
        raise ValueError(f"None of the {len(paths)} image(s) can be used for training ({len(unreadable)} unreadable, "
                         f"{len(too_small)} smaller than {min_size}x{min_size} pixels: {why_min_size})")
    if not images:
        warnings.warn(f"None of the {len(paths)} held-out image(s) can be used for validation: training goes on "
                      "without validation, and the last weights are kept", stacklevel=3)
    return kept_paths, images


# ----- aligned crops, and shrinking with margins -----


def crop_pair(
    lr_image: torch.Tensor, hr_image: torch.Tensor, top: int, left: int, patch_size: int, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned patches: the LR patch_size x patch_size at (top, left), and the HR patch it covers,
    scale times as large at scale * (top, left). Both must fit in their images."""
    lr_height, lr_width = lr_image.shape[-2:]
    if not (0 <= top <= lr_height - patch_size and 0 <= left <= lr_width - patch_size):
        raise ValueError(f"an LR patch of {patch_size} at ({top}, {left}) does not fit in {lr_height}x{lr_width}")
    if hr_image.shape[-2] < lr_height * scale or hr_image.shape[-1] < lr_width * scale:
        raise ValueError(f"the HR image {tuple(hr_image.shape[-2:])} is smaller than {scale} times the LR image "
                         f"{lr_height}x{lr_width}")
    lr_patch = lr_image[..., top : top + patch_size, left : left + patch_size]
    hr_patch = hr_image[..., top * scale : (top + patch_size) * scale, left * scale : (left + patch_size) * scale]
    return lr_patch, hr_patch


def margin_for(scale: int, blur_sigma: float = 0.0) -> int:
    """LR pixels to cut beyond each side of a patch, so that shrinking it equals cutting the shrunk photo.

    The antialiased bicubic kernel of LR pixel i reaches 2 * scale HR pixels from its centre, which
    lies 1.5 * scale - 0.5 HR pixels inside the patch's edge for the outermost LR pixel; a blur first
    reaches its radius further.
    """
    blur_radius = gaussian_kernel(blur_sigma).shape[-1] // 2 if blur_sigma > 0 else 0
    return 2 + math.ceil(blur_radius / scale)


def _aligned_region(top: int, patch_size: int, margin: int, scale: int, lr_length: int) -> tuple[int, int, int]:
    """Along one axis: (HR start, HR length, LR offset of the patch in it) of a margin region."""
    region = min(patch_size + 2 * margin, lr_length)  # in LR pixels
    start = min(max(top - margin, 0), lr_length - region)
    return start * scale, region * scale, top - start


def crop_with_margin(
    hr_image: torch.Tensor, top: int, left: int, patch_size: int, scale: int, margin: int
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Cut the HR region around the LR patch at (top, left), with `margin` LR pixels on each side.

    Returns the region and the (top, left) of the patch in the region's LR grid: shrink the region,
    keep [top : top + patch_size, left : left + patch_size], and the result is the patch of the shrunk
    (mod-cropped) photo. The region stays on multiples of `scale` and is moved, not shrunk, to stay
    inside the photo: where it meets the photo's edge, it mirrors exactly as the whole photo would.
    """
    lr_height, lr_width = hr_image.shape[-2] // scale, hr_image.shape[-1] // scale
    assert 0 <= top <= lr_height - patch_size and 0 <= left <= lr_width - patch_size, (
        f"an LR patch of {patch_size} at ({top}, {left}) does not fit in the {lr_height}x{lr_width} LR image"
    )
    region_top, region_height, top_offset = _aligned_region(top, patch_size, margin, scale, lr_height)
    region_left, region_width, left_offset = _aligned_region(left, patch_size, margin, scale, lr_width)
    region = hr_image[..., region_top : region_top + region_height, region_left : region_left + region_width]
    return region, (top_offset, left_offset)


def rotation_region_size(hr_size: int, max_degrees: float) -> int:
    """Side of the HR square that, rotated by up to max_degrees, still holds an hr_size square."""
    worst = math.radians(min(max_degrees, 45.0))  # |cos| + |sin| is largest at 45 degrees
    return math.ceil(hr_size * (math.cos(worst) + math.sin(worst))) + 2  # + 2 for the bilinear taps


@dataclass
class _PatchDraw:
    """The random choices for one patch."""

    image_index: int
    top_fraction: float  # where the patch is, as fractions of the free room
    left_fraction: float
    augment: AugmentChoice


# ----- the sampler -----


class PatchSampler:
    """Random (input, target) training batches from a list of HR photos, reproducible from the seed.

    The photos are loaded once and kept in memory as uint8. Each batch draws one scale from
    `config.scales`, then for each patch: a photo (uniformly: each photo as likely as another, as
    BasicSR does), a position and the augmentations. Shapes, for LR patch p and scale s:
        input:  (B, C, p, p), or (B, C, p s, p s) with pre_upsample
        target: (B, C, p s, p s)

    Two details make the patches equal to the patches of the degraded whole photo:
    - Aligned crops (`crop_pair`): LR pixel (i, j) covers HR pixels s (i, j) ... s (i, j) + s - 1,
      so an LR patch at (top, left) goes with the HR patch at s (top, left), s times as large.
    - Margins (`crop_with_margin`): MATLAB's bicubic kernel reads about 2 s HR pixels beyond each LR
      pixel, so shrinking a patch alone would read mirrored pixels at its edges instead of the
      photo's real neighbours. The sampler shrinks a region with a margin and trims the margin off.
    Flips and quarter turns commute exactly with the shrink (its kernels are symmetric), so they are
    applied after shrinking, to both patches; except "nearest" at even scales, which keeps one of
    the two middle HR pixels of a block, so there the HR is flipped first. Without value jitter or
    free rotation, each whole photo is shrunk once and aligned pairs are cut from the two (faster).
    With `shard=(r, n)`, for one of n training processes (`sr_teach.distributed`), every process draws the
    choices of the whole batch and makes only its r-th share: together they make the batch one process would.

    >>> from sr_teach.datasets import find_images
    >>> from sr_teach.images import data_folder
    >>> config = DataConfig(scales=(2,), patch_size=8, batch_size=4)
    >>> [tuple(tensor.shape) for tensor in PatchSampler(find_images(data_folder()), config).next_batch()]
    [(4, 1, 8, 8), (4, 1, 16, 16)]
    """

    def __init__(self, paths: Sequence[str | os.PathLike], config: DataConfig, shard: tuple[int, int] = (0, 1)) -> None:
        self.config = config
        rank, count = shard  # (this process, how many): each of several training processes makes its share
        if count < 1 or not 0 <= rank < count or config.batch_size % count:
            raise ValueError(f"a batch of {config.batch_size} patches cannot be split into {count} equal shares "
                             f"(shard {shard}): choose a batch size divisible by the number of processes")
        self.shard = shard
        largest_scale = max(config.scales, key=lambda scale: config.lr_patch_size(scale) * scale)
        self.margin = {scale: margin_for(scale, config.degradation.blur_sigma) for scale in config.scales}
        lr_patch = config.lr_patch_size(largest_scale)
        min_size = lr_patch * largest_scale
        why = f"the HR patch for an LR patch of {lr_patch} at x{largest_scale}"
        if config.augment.rotate_degrees > 0:
            region = (lr_patch + 2 * self.margin[largest_scale]) * largest_scale
            min_size = rotation_region_size(region, config.augment.rotate_degrees)
            why += f", with margins and room to rotate by {config.augment.rotate_degrees} degrees"
        self.paths, self.images = _load_images(
            [Path(path) for path in paths], config.num_channels, min_size, why, luma=config.luma
        )
        self._generator = torch.Generator().manual_seed(config.seed)
        # Noise, JPEG qualities and damage come from a generator of their own, one seed per patch: the
        # patches are those of the clean task, and each is spoilt alike whichever process makes it.
        self._corruption_generator = torch.Generator().manual_seed(config.seed + 1)
        degradation = config.degradation
        self.draws_corruption = degradation.noise_sigma != 0 or degradation.jpeg_quality is not None or (
            degradation.damage is not None)
        # Flip after shrinking (cheaper: smaller patches, and the shortcut) where it gives the same LR.
        self.flips_after_shrink = config.degradation.method != "nearest" or all(s % 2 for s in config.scales)
        # Shrink whole photos once when patches of them equal the patches of the shrunk photo.
        self.shrinks_whole_images = config.augment.is_geometric_only and self.flips_after_shrink
        self._shrunk_images: dict[tuple[int, int], torch.Tensor] = {}  # (photo, scale) -> LR photo

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next_batch()

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (input, target) batch: one scale, then a photo, a position and augmentations per patch."""
        config, generator = self.config, self._generator
        scale = config.scales[int(torch.randint(len(config.scales), (1,), generator=generator))]
        draws = [self._draw_patch() for _ in range(config.batch_size)]  # the whole batch's, on every process
        seeds = torch.randint(2**62, (config.batch_size,), generator=self._corruption_generator).tolist() \
            if self.draws_corruption else []
        rank, count = self.shard
        mine = slice(rank * config.batch_size // count, (rank + 1) * config.batch_size // count)
        draws, seeds = draws[mine], seeds[mine]  # the share of the batch this process makes
        if self.shrinks_whole_images:
            pairs = [self._cut_from_shrunk_image(draw, scale) for draw in draws]
        else:
            pairs = self._cut_and_shrink(draws, scale)
        if self.flips_after_shrink:
            pairs = [
                (apply_geometric(lr, draw.augment), apply_geometric(hr, draw.augment))
                for draw, (lr, hr) in zip(draws, pairs)
            ]
        lr_patches = torch.stack([lr for lr, _ in pairs])  # (B, C, p, p)
        hr_patches = torch.stack([hr for _, hr in pairs])  # (B, C, p s, p s)
        if self.draws_corruption:  # noise, JPEG, damage: each patch its own, whichever process makes it
            lr_patches = torch.cat([corrupt(lr[None], config.degradation, torch.Generator().manual_seed(seed))
                                    for lr, seed in zip(lr_patches, seeds)])
        else:
            lr_patches = corrupt(lr_patches, config.degradation)  # nothing random: a gray input, a mask channel
        if config.pre_upsample:
            # (B, C, p, p) -> (B, C, p s, p s)
            lr_patches = resize(lr_patches, size=tuple(hr_patches.shape[-2:]), method="bicubic")
        return lr_patches, hr_patches

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where the random draws stand, so a resumed training run gets the same next batches."""
        return {"generator": self._generator.get_state(), "corruption": self._corruption_generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue drawing from the position saved by `state_dict`."""
        self._generator.set_state(state["generator"])
        if "corruption" in state:  # (absent from runs saved before it existed)
            self._corruption_generator.set_state(state["corruption"])

    # -- making one batch --

    def _draw_patch(self) -> _PatchDraw:
        generator = self._generator
        image_index = int(torch.randint(len(self.images), (1,), generator=generator))
        top_fraction, left_fraction = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        return _PatchDraw(
            image_index, top_fraction, left_fraction, draw_augmentation(self.config.augment, generator)
        )

    def _lr_position(self, draw: _PatchDraw, image: torch.Tensor, scale: int) -> tuple[int, int]:
        """Top-left of the LR patch in the shrunk (mod-cropped) photo."""
        patch = self.config.lr_patch_size(scale)
        free_height = image.shape[-2] // scale - patch + 1
        free_width = image.shape[-1] // scale - patch + 1
        return int(draw.top_fraction * free_height), int(draw.left_fraction * free_width)

    def _cut_from_shrunk_image(self, draw: _PatchDraw, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The shortcut: an aligned pair cut from the photo and from its shrunk copy (made once)."""
        image = self.images[draw.image_index]  # (C, H, W) uint8
        key = (draw.image_index, scale)
        if key not in self._shrunk_images:
            hr_image = mod_crop(image, scale).float() / 255
            self._shrunk_images[key] = shrink(hr_image[None], scale, self.config.degradation)[0]  # (C, H / s, W / s)
        top, left = self._lr_position(draw, image, scale)
        patch = self.config.lr_patch_size(scale)
        lr_patch, hr_patch = crop_pair(self._shrunk_images[key], image, top, left, patch, scale)
        return lr_patch, hr_patch.float() / 255

    def _cut_and_shrink(self, draws: list[_PatchDraw], scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The general way: cut HR regions with margins, rotate and jitter them, shrink them, trim.

        Returns (LR patch, HR patch) pairs; with flips_after_shrink, not yet flipped.
        """
        patch, margin = self.config.lr_patch_size(scale), self.margin[scale]
        rotating = self.config.augment.rotate_degrees > 0
        regions, offsets = [], []  # HR regions (C, h, w) uint8, and the patch's LR (top, left) in each
        for draw in draws:
            image = self.images[draw.image_index]
            if rotating:
                # A square large enough to hold the patch and its margins at any angle up to the limit.
                size = rotation_region_size((patch + 2 * margin) * scale, self.config.augment.rotate_degrees)
                top = int(draw.top_fraction * (image.shape[-2] - size + 1))
                left = int(draw.left_fraction * (image.shape[-1] - size + 1))
                region, offset = image[:, top : top + size, left : left + size], (margin, margin)
            else:
                position = self._lr_position(draw, image, scale)
                region, offset = crop_with_margin(image, *position, patch, scale, margin)
            if not self.flips_after_shrink:
                # Flip the HR region itself, and follow where the patch went in it (nowhere, in the
                # square cut for rotation: the patch is at its centre).
                if not rotating:
                    lr_height, lr_width = region.shape[-2] // scale, region.shape[-1] // scale
                    offset = _moved_square(offset, patch, lr_height, lr_width, draw.augment)
                region = apply_geometric(region, draw.augment)
            regions.append(region)
            offsets.append(offset)
        # Work on regions of the same size together (near a photo's edge a region may be smaller).
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, region in enumerate(regions):
            by_shape[tuple(region.shape)].append(index)
        pairs: list[tuple[torch.Tensor, torch.Tensor]] = [None] * len(regions)  # type: ignore[list-item]
        for indices in by_shape.values():
            hr_regions = torch.stack([regions[index] for index in indices]).float() / 255  # (b, C, h, w)
            choices = [draws[index].augment for index in indices]
            if rotating:
                angles = torch.tensor([choice.rotate_degrees for choice in choices])
                hr_size = (patch + 2 * margin) * scale
                hr_regions = center_crop(rotate(hr_regions, angles, crop=False), hr_size, hr_size)
            hr_regions = apply_photometric_batch(hr_regions, choices)
            lr_regions = shrink(hr_regions, scale, self.config.degradation)  # (b, C, h / s, w / s)
            for index, hr_region, lr_region in zip(indices, hr_regions, lr_regions):
                pairs[index] = crop_pair(lr_region, hr_region, *offsets[index], patch, scale)
        return pairs


def _moved_square(
    position: tuple[int, int], size: int, height: int, width: int, choice: AugmentChoice
) -> tuple[int, int]:
    """Where the size x size square at `position` of a height x width grid goes under `apply_geometric`."""
    top, left = position
    if choice.hflip:
        left = width - left - size
    if choice.vflip:
        top = height - top - size
    for _ in range(choice.rot90_turns % 4):  # a counter-clockwise quarter turn: right edge goes to the top
        top, left, height, width = width - left - size, top, width, height
    return top, left


# ----- validation -----


def load_validation_pairs(
    paths: Sequence[str | os.PathLike],
    scale: int,
    num_channels: int,
    pre_upsample: bool,
    max_size: int | None = None,
    degradation: DegradationConfig | None = None,
    seed: int = 0,
    luma: bool = True,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Whole held-out images as (input, target) pairs, (C, h, w) and (C, H, W), for validation PSNR.

    The target is the photo (Y or RGB, as in training) mod-cropped to a multiple of `scale`, and, with
    max_size, centre-cropped to at most max_size HR pixels a side to bound the time validation takes.
    The input is its degradation (bicubic by default; noise is drawn from `seed`, so it is the same at
    every validation), upscaled back with bicubic when pre_upsample. Unreadable images are skipped
    with a warning.
    """
    scale = check_scale(scale)
    if not paths:
        return []  # no held-out images (validation_fraction=0): nothing to validate on
    generator = torch.Generator().manual_seed(seed)
    _, images = _load_images(
        [Path(path) for path in paths], num_channels, scale, f"one LR pixel at x{scale}", purpose="validation",
        luma=luma,
    )
    pairs = []
    for image in images:
        target = mod_crop(image.float() / 255, scale)  # (C, H, W)
        if max_size is not None:
            side = max(scale, max_size - max_size % scale)
            target = center_crop(target, min(side, target.shape[-2]), min(side, target.shape[-1]))
        lr_image = degrade(target, scale, degradation, generator)  # (C, H / s, W / s)
        if pre_upsample:
            lr_image = resize(lr_image, size=tuple(target.shape[-2:]), method="bicubic")  # (C, H, W)
        pairs.append((lr_image, target))
    return pairs
