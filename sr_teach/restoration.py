"""Restoration benchmarks: denoising and JPEG test sets scored the way their published tables are.

A task is what spoils the clean test image: Gaussian noise of a known sigma, or JPEG at quality q.
The protocol follows the scripts behind the tables (see PROTOCOLS): noise is added to the image in
[0, 1] from a generator reset for every image, not clipped and not rounded; JPEG is Pillow's encoder
on the 8-bit image (gray sets as gray); PSNR/SSIM on the output rounded to 8 bits, no border.
`evaluate_restoration` returns the same `Evaluation` as the super-resolution benchmark.

    result = evaluate_restoration(model_restorer(model), "Set12", RestorationTask("denoise", 25), method="dncnn")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sr_teach.datasets import BenchmarkImage, dataset_folder, find_images
from sr_teach.degradations import gaussian_noise, jpeg_compress
from sr_teach.evaluation import Evaluation, score_images
from sr_teach.images import load_image
from sr_teach.inference import super_resolve, upscale

Restorer = Callable[[torch.Tensor], torch.Tensor]  # damaged (C, H, W) -> restored (C, H, W), in [0, 1]
TASKS = ("denoise", "jpeg")

# Published gray PSNR (dB), {(set, task, level): {method: psnr}}: ../shared/datasets/README.md's sources
# (DnCNN README, DPIR and FFDNet tables for noise; the FBCNN table for JPEG).
PUBLISHED_RESTORATION: dict[tuple[str, str, int], dict[str, float]] = {
    ("Set12", "denoise", 15): {"BM3D": 32.37, "DnCNN-S": 32.86, "DnCNN-B": 32.68, "FFDNet": 32.75},
    ("Set12", "denoise", 25): {"BM3D": 29.97, "DnCNN-S": 30.44, "DnCNN-B": 30.36, "FFDNet": 30.43},
    ("Set12", "denoise", 50): {"BM3D": 26.72, "DnCNN-S": 27.18, "DnCNN-B": 27.21, "FFDNet": 27.32},
    **{("Classic5", "jpeg", quality): dict(zip(("JPEG", "AR-CNN", "DnCNN-3", "FBCNN"), values)) for quality, values in (
        (10, (27.82, 29.03, 29.40, 30.12)), (20, (30.12, 31.15, 31.63, 32.31)),
        (30, (31.48, 32.51, 32.91, 33.54)), (40, (32.43, 33.32, 33.77, 34.35)))},
    **{("LIVE1_gray", "jpeg", quality): dict(zip(("JPEG", "AR-CNN", "DnCNN-3", "FBCNN"), values)) for quality, values in (
        (10, (27.77, 28.96, 29.19, 29.75)), (20, (30.07, 31.29, 31.59, 32.13)),
        (30, (31.41, 32.67, 32.98, 33.54)), (40, (32.35, 33.61, 33.96, 34.53)))},
}

PROTOCOLS = {
    "denoise": "clean 8-bit image in [0, 1] + sigma/255 * randn (torch generator seeded 0 for every image), "
               "not clipped, not rounded; PSNR on the output rounded to 8 bits, no border",
    "jpeg": "8-bit image (gray stays gray) encoded by Pillow (libjpeg) at quality q and decoded; "
            "PSNR on the output rounded to 8 bits, no border",
}


@dataclass(frozen=True)
class RestorationTask:
    """What spoils a test image: "denoise" at `level` = sigma (0..255 scale), or "jpeg" at `level` = quality."""

    kind: str
    level: float
    seed: int = 0  # noise generator seed, reset for every image (as the published scripts do)
    clip: bool = False  # clip the noisy image to [0, 1]; the tables' scripts do not

    def __post_init__(self) -> None:
        if self.kind not in TASKS:
            raise ValueError(f"unknown task {self.kind!r}; choose one of {', '.join(TASKS)}")
        if self.kind == "denoise" and not 0 < self.level <= 255:
            raise ValueError(f"the noise sigma must be above 0 and at most 255 (0..255 scale, e.g. 25), not {self.level:g}")
        if self.kind == "jpeg" and (self.level != int(self.level) or not 1 <= self.level <= 95):
            raise ValueError(f"the JPEG quality must be a whole number from 1 to 95 (e.g. 10), not {self.level:g}")

    def __str__(self) -> str:
        return f"sigma {self.level:g}" if self.kind == "denoise" else f"JPEG q{self.level:g}"

    def damage(self, clean: torch.Tensor) -> torch.Tensor:
        """The test input made from a clean (C, H, W) image by the protocol."""
        if self.kind == "jpeg":
            return jpeg_compress(clean, int(self.level))
        return gaussian_noise(clean, self.level, torch.Generator().manual_seed(self.seed), clip=self.clip)


def restoration_images(
    dataset: str, task: RestorationTask, data_dir: str | os.PathLike | None = None, max_images: int | None = None,
) -> list[BenchmarkImage]:
    """The set's clean images (as stored: gray stays gray) and their damaged copies (in `lr_image`)."""
    paths = find_images(dataset_folder(dataset, data_dir))[:max_images]
    images = []
    for path in paths:
        clean = load_image(path)  # (C, H, W), C = 1 for gray files
        images.append(BenchmarkImage(path.stem, task.damage(clean), clean, lr_from_file=False))
    return images


def model_restorer(model: torch.nn.Module) -> Restorer:
    """A restorer that runs a same-size network (tiled on large images, Y only for a gray model on colour).

    The denoising protocol's input is not clipped, so it holds values below 0 and above 1, which
    `upscale` refuses (it takes them for a badly scaled image): such an input goes to the network as
    it is, whole, through `super_resolve`. The result is clamped to [0, 1] either way."""
    def restore_with_model(damaged: torch.Tensor) -> torch.Tensor:
        if damaged.min() >= 0 and damaged.max() <= 1:
            return upscale(model, damaged, scale=1)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return super_resolve(model, damaged[None], scale=1)[0]  # (1, C, H, W) -> (C, H, W)
        finally:
            model.train(was_training)
    return restore_with_model


def evaluate_restoration(
    restorer: Restorer,
    dataset: str,
    task: RestorationTask,
    *,
    method: str,
    data_dir: str | os.PathLike | None = None,
    y_channel: bool = True,
    max_images: int | None = None,
) -> Evaluation:
    """Score `restorer` on `dataset` under `task`'s protocol; the label `method` names it in the table."""
    images = restoration_images(dataset, task, data_dir, max_images)
    result = Evaluation(dataset, 1, method, y_channel, crop_border=0, lr_source=PROTOCOLS[task.kind], task=str(task),
                        published=PUBLISHED_RESTORATION.get((dataset, task.kind, int(task.level)), {}))
    return score_images(result, images, lambda image, _: restorer(image))
