"""Evaluate an upscaler on a benchmark set the way the published tables do.

An *upscaler* is any function (lr_image, scale) -> sr_image on (C, H, W) tensors in [0, 1]: an
interpolation method, or a trained network wrapped by `sr_teach.inference`. `evaluate` feeds it
every LR image of the set and scores the result against the HR image with PSNR and SSIM under the
standard protocol (8-bit output, Y channel, border of `scale` pixels cropped).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from sr_teach.datasets import BenchmarkImage, benchmark_images
from sr_teach.inference import upscale
from sr_teach.interpolation import resize
from sr_teach.metrics import psnr, ssim

Upscaler = Callable[[torch.Tensor, int], torch.Tensor]

# Published bicubic baselines (Y channel, border = scale), from the SRCNN/VDSR papers' tables.
PUBLISHED_BICUBIC = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
}


def interpolation_upscaler(method: str = "bicubic") -> Upscaler:
    """An upscaler that enlarges with one of `sr_teach.interpolation.METHODS`."""
    def upscale_by_interpolation(lr_image: torch.Tensor, scale: int) -> torch.Tensor:
        return resize(lr_image, scale=scale, method=method)
    return upscale_by_interpolation


def model_upscaler(model: torch.nn.Module) -> Upscaler:
    """An upscaler that super-resolves with a trained network (`sr_teach.inference.upscale`).

    It carries the model's `scales` (None: any scale, a pre-upsampling model), so a comparison can
    ask a x3 ESPCN for x3 only.
    """
    def upscale_with_model(lr_image: torch.Tensor, scale: int) -> torch.Tensor:
        return upscale(model, lr_image, scale=scale)
    upscale_with_model.scales = getattr(model, "scales", None)  # type: ignore[attr-defined]
    return upscale_with_model


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    seconds: float  # time the upscaler took on this image


@dataclass
class Evaluation:
    """Per-image and mean scores of one upscaler on one set at one scale."""

    dataset: str
    scale: int
    method: str
    y_channel: bool
    crop_border: int
    lr_source: str  # "LR_bicubic files" or "made by MATLAB-bicubic downscale"; for restoration, the protocol
    images: list[ImageScore] = field(default_factory=list)
    task: str = ""  # restoration (scale 1): what spoiled the inputs, e.g. "sigma 25" or "JPEG q10"
    published: dict[str, float] = field(default_factory=dict)  # published PSNR of other methods, for the table

    @property
    def mean(self) -> dict[str, float]:
        count = max(len(self.images), 1)
        return {
            "psnr": sum(score.psnr for score in self.images) / count,
            "ssim": sum(score.ssim for score in self.images) / count,
            "seconds": sum(score.seconds for score in self.images) / count,
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": self.mean}

    def table(self) -> str:
        """A plain-text table of the per-image and mean scores."""
        width = max([len(score.name) for score in self.images] + [4])
        lines = [
            (f"{self.method} on {self.dataset} {self.task or f'x{self.scale}'} "
             f"({'Y channel' if self.y_channel else 'RGB'}, border {self.crop_border}, "
             f"{'protocol' if self.task else 'LR'}: {self.lr_source})"),
            f"{'image':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}",
        ]
        lines += [f"{s.name:<{width}}  {s.psnr:9.2f}  {s.ssim:6.4f}" for s in self.images]
        lines.append(f"{'mean':<{width}}  {self.mean['psnr']:9.2f}  {self.mean['ssim']:6.4f}")
        published = PUBLISHED_BICUBIC.get((self.dataset, self.scale))
        if published and self.method == "bicubic" and self.y_channel and self.crop_border == self.scale:
            lines.append(f"{'published':<{width}}  {published[0]:9.2f}  {published[1]:6.4f}")
        lines += [f"{'published ' + name}: {value:.2f}" for name, value in self.published.items()]
        return "\n".join(lines)


def evaluate(
    upscaler: Upscaler,
    dataset: str,
    scale: int,
    *,
    method: str,
    data_dir: str | os.PathLike | None = None,
    y_channel: bool = True,
    crop_border: int | None = None,
    max_images: int | None = None,
) -> Evaluation:
    """Score `upscaler` on `dataset` at `scale`, under the label `method` ("bicubic", "espcn x3", ...).

    crop_border defaults to the scale, as in the papers. Only an evaluation labelled "bicubic" is
    compared with the published bicubic numbers in `Evaluation.table()`.
    """
    crop_border = scale if crop_border is None else crop_border
    images = benchmark_images(dataset, scale, data_dir, max_images=max_images)
    from_files = all(image.lr_from_file for image in images)
    result = Evaluation(
        dataset, scale, method, y_channel, crop_border,
        lr_source="LR_bicubic files" if from_files else "made by MATLAB-bicubic downscale",
    )
    return score_images(result, images, upscaler)


def score_images(result: Evaluation, images: list[BenchmarkImage], upscaler: Upscaler) -> Evaluation:
    """Run `upscaler` on every image's input and add its scores to `result` (under result's protocol)."""
    for image in images:
        start = time.perf_counter()
        sr_image = upscaler(image.lr_image, result.scale)
        seconds = time.perf_counter() - start
        if sr_image.shape != image.hr_image.shape:
            raise ValueError(f"the method returned {tuple(sr_image.shape)} for {image.name}, "
                             f"expected {tuple(image.hr_image.shape)}")
        options = {"crop_border": result.crop_border, "y_channel": result.y_channel, "round_to_8bit": True}
        result.images.append(ImageScore(
            image.name,
            float(psnr(sr_image, image.hr_image, **options)),
            float(ssim(sr_image, image.hr_image, **options)),
            seconds,
        ))
    return result
