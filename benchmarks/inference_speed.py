"""How fast do the sr_teach models upscale on this CPU, and how much memory does a 12-megapixel photo take?

    PYTHONPATH=. python benchmarks/inference_speed.py                  # every model, every scale
    PYTHONPATH=. python benchmarks/inference_speed.py --models espcn --skip-memory

For each model of `sr_teach.models.MODELS` at its default settings (the papers' Y channel, so the
colour work of `upscale` is included) at x3, and x2 and x4 for post-upsampling models, it prints:

- time per 1080p frame (1920 x 1080 output) of `upscale` on an RGB image, the output megapixels per
  second that makes, and the time of the model's forward pass alone;
- FLOPs per output pixel: 2 x the multiply-adds of the convolutions and transposed convolutions,
  counted from the layers' shapes (activations, biases and PixelShuffle are not counted: they are
  a few FLOPs per value, against hundreds for a convolution);
- achieved GFLOP/s of the forward pass, and that as a percentage of what a plain 64 -> 64 3 x 3
  convolution reaches on this CPU, measured first: the practical ceiling for these networks;
- peak memory (resident set size) of upscaling to about 4000 x 3000 with `upscale`'s automatic
  tiles, each case in a fresh subprocess so that one case's memory does not hide another's.
  (tracemalloc only sees Python's allocator, not PyTorch's, so it would report almost nothing.)

Timings are the best of a few runs: the other programs on a shared machine can only slow a run down.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from sr_teach.tools.cost import macs_per_output_pixel  # noqa: E402
from sr_teach.inference import upscale  # noqa: E402
from sr_teach.models import SR_MODELS as MODELS  # noqa: E402  (the enlarging ones)

FRAME_SIZE = (1080, 1920)  # 1080p output, (H, W)
PHOTO_SIZE = (3000, 4000)  # a 12-megapixel photo, (H, W)
PRE_SCALES = (3,)  # pre models cost the same at any scale: the network runs on the output grid
POST_SCALES = (2, 3, 4)
TIME_BUDGET_SECONDS = 20.0  # per measurement: slow cases get fewer repeats


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of `repeats` runs after one warm-up run (fewer repeats if runs are slow)."""
    start = time.perf_counter()
    run()
    warm_up = time.perf_counter() - start
    repeats = max(1, min(repeats, int(TIME_BUDGET_SECONDS / max(warm_up, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def convolution_flops(model: nn.Module, model_input_shape: tuple[int, ...]) -> int:
    """FLOPs (2 per multiply-add) of the model's convolutions for one forward pass.

    The multiply-adds are counted by `sr_teach.tools.cost.macs_per_output_pixel` from the layers' shapes
    on the "meta" device (nothing is computed, so a 4K frame is instant).
    """
    with torch.no_grad():
        output = copy.deepcopy(model).to("meta")(torch.empty(model_input_shape, device="meta"))
    output_pixels = output.shape[0] * output.shape[-2] * output.shape[-1]
    return round(2 * macs_per_output_pixel(model, model_input_shape) * output_pixels)


def convolution_bound(repeats: int) -> float:
    """GFLOP/s of one plain 64 -> 64 channel 3 x 3 convolution on a 540 x 960 image (a quarter of 1080p)."""
    layer = nn.Conv2d(64, 64, kernel_size=3, padding=1).eval()
    features = torch.rand(1, 64, 540, 960)
    flops = convolution_flops(layer, tuple(features.shape))
    with torch.no_grad():
        seconds = best_time(lambda: layer(features), max(repeats, 5))
    return flops / seconds / 1e9


def build(name: str, scale: int) -> nn.Module:
    """MODELS[name] at its default settings, built for `scale` (a pre model only remembers it)."""
    return MODELS[name](scale=scale).eval()


def cases(names: list[str]) -> list[tuple[str, int]]:
    """(model name, scale) pairs: x3 for pre models, x2, x3, x4 for post models (those each can build:
    LapSRN and DBPN enlarge by powers of two only)."""
    pairs = []
    for name in names:
        scales = PRE_SCALES if MODELS[name].upsampling == "pre" else POST_SCALES
        pairs += [(name, scale) for scale in scales if builds(name, scale)]
    return pairs


def builds(name: str, scale: int) -> bool:
    try:
        build(name, scale)
    except ValueError:
        return False
    return True


def low_resolution_size(output_size: tuple[int, int], scale: int) -> tuple[int, int]:
    return math.ceil(output_size[0] / scale), math.ceil(output_size[1] / scale)


def measure_speed(name: str, scale: int, repeats: int, bound: float) -> dict[str, float | str | int]:
    """Time one model at one scale on a 1080p output frame."""
    torch.manual_seed(0)
    model = build(name, scale)
    lr_height, lr_width = low_resolution_size(FRAME_SIZE, scale)
    lr_image = torch.rand(3, lr_height, lr_width)  # RGB: upscale does the Y / CbCr work too
    if model.upsampling == "pre":
        model_input = torch.rand(1, model.num_channels, *FRAME_SIZE)  # already enlarged
    else:
        model_input = torch.rand(1, model.num_channels, lr_height, lr_width)
    with torch.no_grad():
        forward_seconds = best_time(lambda: model(model_input), repeats)
    upscale_seconds = best_time(lambda: upscale(model, lr_image, scale=scale), repeats)
    output_pixels = FRAME_SIZE[0] * FRAME_SIZE[1]
    flops = convolution_flops(model, tuple(model_input.shape))
    achieved = flops / forward_seconds / 1e9
    return {
        "model": name,
        "upsampling": model.upsampling,
        "scale": scale,
        "input": f"{lr_width}x{lr_height}",
        "flops_per_pixel": flops / output_pixels,
        "gflop_per_frame": flops / 1e9,
        "forward_ms": forward_seconds * 1e3,
        "upscale_ms": upscale_seconds * 1e3,
        "megapixels_per_second": output_pixels / upscale_seconds / 1e6,
        "gflops": achieved,
        "percent_of_bound": 100 * achieved / bound,
    }


def resident_memory_mib() -> tuple[float, float]:
    """(peak, current) resident memory of this process, in MiB.

    On Linux from /proc/self/status: VmHWM, the high-water mark of this program's memory, and VmRSS.
    Not `resource.getrusage(...).ru_maxrss`: Linux carries the *parent's* peak into a subprocess
    across exec (subprocess starts children with vfork), so a child of this benchmark would report
    the benchmark's own peak. Elsewhere (macOS) ru_maxrss is all there is, in bytes.
    """
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024  # kB -> MiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return peak, peak


def memory_case(name: str, scale: int) -> dict[str, float]:
    """In this (fresh) process: upscale to about 4000 x 3000 with automatic tiles; report peak memory."""
    torch.manual_seed(0)
    model = build(name, scale)
    lr_image = torch.rand(3, *low_resolution_size(PHOTO_SIZE, scale))
    _, before = resident_memory_mib()  # torch, the model and the input
    start = time.perf_counter()
    result = upscale(model, lr_image, scale=scale)
    seconds = time.perf_counter() - start
    peak, _ = resident_memory_mib()
    return {
        "peak_mib": peak,
        "before_mib": before,
        "output_bytes_mib": result.numel() * result.element_size() / 2**20,
        "seconds": seconds,
        "output": f"{result.shape[-1]}x{result.shape[-2]}",
    }


def measure_memory(name: str, scale: int) -> dict[str, float] | None:
    """Run `memory_case` in a subprocess, so that its peak is its own."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run(
        [sys.executable, __file__, "--memory-case", name, str(scale)],
        capture_output=True, text=True, env=environment,
    )
    if completed.returncode != 0:
        print(f"  memory case {name} x{scale} failed:\n{completed.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="which models")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best is kept)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 12-megapixel memory runs")
    parser.add_argument("--memory-case", nargs=2, metavar=("MODEL", "SCALE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.memory_case:  # the subprocess of measure_memory
        name, scale = arguments.memory_case
        print(json.dumps(memory_case(name, int(scale))))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical cores")
    bound = convolution_bound(arguments.repeats)
    print(f"bound: a plain 64->64 3x3 convolution on 540x960 reaches {bound:.0f} GFLOP/s\n")

    header = (
        f"{'model':<8}{'up':<5}{'scale':>5} {'LR input':>10}{'kFLOP/px':>10}{'GFLOP/frame':>12}"
        f"{'forward ms':>11}{'upscale ms':>11}{'MP/s':>8}{'GFLOP/s':>9}{'% bound':>8}"
    )
    memory_header = f"{'peak MiB':>9}{'(+run)':>8}{'12MP s':>8}"
    print(header + ("" if arguments.skip_memory else memory_header))
    for name, scale in cases(arguments.models):
        row = measure_speed(name, scale, arguments.repeats, bound)
        line = (
            f"{row['model']:<8}{row['upsampling']:<5}{row['scale']:>5} {row['input']:>10}"
            f"{row['flops_per_pixel'] / 1e3:>10.1f}{row['gflop_per_frame']:>12.1f}"
            f"{row['forward_ms']:>11.0f}{row['upscale_ms']:>11.0f}{row['megapixels_per_second']:>8.2f}"
            f"{row['gflops']:>9.1f}{row['percent_of_bound']:>7.0f}%"
        )
        if not arguments.skip_memory:
            memory = measure_memory(name, scale)
            if memory is None:
                line += f"{'failed':>9}"
            else:
                line += (
                    f"{memory['peak_mib']:>9.0f}{memory['peak_mib'] - memory['before_mib']:>+8.0f}"
                    f"{memory['seconds']:>8.1f}"
                )
        print(line, flush=True)
    if not arguments.skip_memory:
        print(
            f"\npeak MiB: resident memory of a fresh process upscaling to about {PHOTO_SIZE[1]}x{PHOTO_SIZE[0]} "
            "with automatic tiles (the float32 RGB result alone is ~137 MiB); (+run): above what torch, the "
            "model and the input already took; 12MP s: how long that took."
        )


if __name__ == "__main__":
    main()
