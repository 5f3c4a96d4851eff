"""How long the patch sampler takes per batch, next to one training step of a small SR network.

The question: on a 2-core CPU, does training wait for data? For each data setting it prints the
sampler's time per batch and the time of one training step (forward + backward + Adam) of
- ESPCN (Shi et al. 2016; 5x5x64, 3x3x32, 3x3x(C s^2), pixel shuffle), which runs on the LR patch,
- SRCNN (Dong et al. 2014; 9x9x64, 5x5x32, 5x5xC), which runs on the pre-upsampled input,
and then a short training loop with the batches made inline, as the Trainer does.

    PYTHONPATH=. .venv/bin/python benchmarks/data_throughput.py            # torch's default threads
    PYTHONPATH=. .venv/bin/python benchmarks/data_throughput.py --threads 1

Timings are medians over --repeats runs, after a warm-up (which also fills the sampler's cache of
shrunk photos). Other processes on the machine inflate them: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from sr_teach.augmentation import AugmentConfig
from sr_teach.data import DataConfig, PatchSampler
from sr_teach.datasets import find_images
from sr_teach.images import data_folder


def espcn(num_channels: int, scale: int) -> nn.Module:
    """ESPCN as in the paper: two feature layers on the LR image, then sub-pixel convolution."""
    return nn.Sequential(
        nn.Conv2d(num_channels, 64, kernel_size=5, padding=2),
        nn.Tanh(),
        nn.Conv2d(64, 32, kernel_size=3, padding=1),
        nn.Tanh(),
        nn.Conv2d(32, num_channels * scale**2, kernel_size=3, padding=1),
        nn.PixelShuffle(scale),  # (B, C s^2, h, w) -> (B, C, h s, w s)
    )


def srcnn(num_channels: int) -> nn.Module:
    """SRCNN 9-5-5 with padding, on the bicubic-upscaled input."""
    return nn.Sequential(
        nn.Conv2d(num_channels, 64, kernel_size=9, padding=4),
        nn.ReLU(),
        nn.Conv2d(64, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.Conv2d(32, num_channels, kernel_size=5, padding=2),
    )


def median_milliseconds(function: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall-clock and CPU (this process, all threads) milliseconds per call.

    CPU time barely moves when other programs share the cores; wall time is what training feels.
    """
    for _ in range(warmup):
        function()
    wall_times, cpu_times = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        function()
        wall_times.append(time.perf_counter() - wall_start)
        cpu_times.append(time.process_time() - cpu_start)
    return 1000 * statistics.median(wall_times), 1000 * statistics.median(cpu_times)


def training_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    input_batch, target_batch = batch

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(input_batch), target_batch)
        loss.backward()
        optimizer.step()

    return step


def training_loop_milliseconds(paths: list[Path], config: DataConfig, steps: int) -> float:
    """Wall-clock milliseconds per step of an ESPCN training loop that takes its batches from a sampler."""
    sampler = PatchSampler(paths, config)
    model = espcn(config.num_channels, config.scales[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step() -> None:
        input_batch, target_batch = sampler.next_batch()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(input_batch), target_batch).backward()
        optimizer.step()

    for _ in range(2 * len(paths)):  # warm up, and shrink every photo once
        train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    return 1000 * (time.perf_counter() - start) / steps


def default_folder() -> Path:
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "T91"
    return shared if shared.is_dir() else data_folder()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--folder", type=Path, default=default_folder(), help="HR training photos (default: T91)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--patch-size", type=int, default=17)
    parser.add_argument("--batch-size", type=int, default=16)
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    warnings.simplefilter("ignore")  # a small photo skipped is not news here
    paths = find_images(arguments.folder)
    scale, repeats = arguments.scale, arguments.repeats
    print(
        f"{len(paths)} photos from {arguments.folder}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"batch {arguments.batch_size}, LR patch {arguments.patch_size}, x{scale}; median of {repeats}\n")

    flips = AugmentConfig(hflip=True, vflip=True, rot90=True)
    jitter = AugmentConfig(
        hflip=True, vflip=True, rot90=True, brightness=0.2, contrast=0.2, hue=20, gamma=0.2
    )
    rotation = AugmentConfig(hflip=True, vflip=True, rot90=True, rotate_degrees=30)
    print("sampler = one batch from PatchSampler; step = forward + backward + Adam on that batch.")
    print("wall / cpu: median milliseconds of wall-clock and of this process's CPU time;")
    print("data/step: sampler CPU time / step CPU time (robust when other programs share the cores).\n")
    header = (
        f"{'chan':<5}{'input':<6}{'augmentation':<24}{'sampler wall/cpu':>17}{'model':>7}"
        f"{'step wall/cpu':>15}{'data/step':>11}"
    )
    print(header)
    print("-" * len(header))
    for num_channels in (1, 3):
        for pre_upsample in (False, True):
            for name, augment in (
                ("flips+rot90 (shortcut)", flips),
                ("+ value jitter", jitter),
                ("+ rotation 30 deg", rotation),
            ):
                config = DataConfig(
                    scales=(scale,),
                    patch_size=arguments.patch_size,
                    batch_size=arguments.batch_size,
                    num_channels=num_channels,
                    pre_upsample=pre_upsample,
                    augment=augment,
                )
                sampler = PatchSampler(paths, config)
                sampler_wall, sampler_cpu = median_milliseconds(
                    sampler.next_batch, repeats, warmup=2 * len(paths)
                )
                model = srcnn(num_channels) if pre_upsample else espcn(num_channels, scale)
                step_wall, step_cpu = median_milliseconds(
                    training_step(model, sampler.next_batch()), repeats, 10
                )
                print(
                    f"{'Y' if num_channels == 1 else 'RGB':<5}{'pre' if pre_upsample else 'LR':<6}{name:<24}"
                    f"{sampler_wall:>9.2f} /{sampler_cpu:>6.2f}{'SRCNN' if pre_upsample else 'ESPCN':>7}"
                    f"{step_wall:>8.2f} /{step_cpu:>6.2f}{sampler_cpu / step_cpu:>11.0%}"
                )

    images = PatchSampler(paths, DataConfig(num_channels=3)).images
    megabytes = sum(image.numel() for image in images) / 1e6
    print(
        f"\nphotos in memory (RGB): {megabytes:.0f} MB as uint8, would be {4 * megabytes:.0f} MB as float32"
    )

    # The end-to-end question: an ESPCN training loop with its batches made inline.
    steps = max(20, repeats // 2)
    print(f"\nESPCN training loop, {steps} steps, Y channel, LR input, ms per step (wall):")
    for name, augment in (("flips+rot90 (shortcut)", flips), ("+ value jitter", jitter)):
        config = DataConfig(scales=(scale,), patch_size=arguments.patch_size, batch_size=arguments.batch_size,
                            augment=augment)
        print(f"  {name:<24} {training_loop_milliseconds(paths, config, steps):7.2f}")

if __name__ == "__main__":
    main()
