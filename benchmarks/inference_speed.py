"""How fast do the sr_teach models upscale on this CPU, by every way of running them, and how much memory?

    .venv/bin/python benchmarks/inference_speed.py --models espcn fsrcnn --markdown   # README's table, alone on 2 threads

For each model at its default settings (the papers' Y channel; --shipped: the shipped weights) at x2-x4
(pre models: x3), each variant: the readable forward ("reference"), channels-last, torch.compile, ONNX
Runtime, and for ESPCN / FSRCNN `export.fast_model`'s sub-pixel rewrite run the same three ways. Per
variant: ms per 1080p frame of the network and of the whole colour `upscale`, GFLOP/s as % of the bound
(the faster of a plain 64 -> 64 3 x 3 convolution in NCHW or channels-last, measured first), its largest
difference from the reference; with memory, the reference's peak when tiling to 4000 x 3000 (fresh process).
Times are the best of a few runs (others can only slow a run); a variant that cannot run says why.
THP_MEM_ALLOC_ENABLE=1 before it lets PyTorch take big tensors in huge pages: fewer page faults, faster eager runs.
OMP_WAIT_POLICY=PASSIVE before it makes PyTorch's OpenMP threads sleep as soon as a step ends; by default they
spin for some milliseconds, on the cores ONNX Runtime's threads want next (an ONNX Runtime variant's "all" column).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from sr_teach.export import OnnxRuntimeModel, SubPixelNetwork, fast_model, onnx_bytes  # noqa: E402
from sr_teach.inference import upscale  # noqa: E402
from sr_teach.models import SR_MODELS as MODELS  # noqa: E402  (the enlarging ones)
from sr_teach.tools.cost import macs_per_output_pixel  # noqa: E402

FRAME_SIZE = (1080, 1920)  # 1080p output, (H, W)
PHOTO_SIZE = (3000, 4000)  # a 12-megapixel photo, (H, W)
PRE_SCALES = (3,)  # pre models cost the same at any scale: the network runs on the output grid
POST_SCALES = (2, 3, 4)
TIME_BUDGET_SECONDS = 20.0  # per measurement: slow cases get fewer repeats
CHANNELS_LAST = torch.channels_last

# variant -> how to build it from the reference model (an eval-mode model; built anew, never changed)
VARIANTS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "reference": lambda model: model,
    "channels-last": lambda model: copy.deepcopy(model).to(memory_format=CHANNELS_LAST),
    "compiled": lambda model: torch.compile(copy.deepcopy(model).to(memory_format=CHANNELS_LAST),
                                            options={"freezing": True}),
    "onnxruntime": lambda model: OnnxRuntimeModel(onnx_bytes(model, sub_pixel=False)),
    "sub-pixel": lambda model: fast_model(model, "torch"),
    "sub-pixel compiled": lambda model: fast_model(model, "compile"),
    "sub-pixel onnxruntime": lambda model: fast_model(model, "onnxruntime"),
}
NCHW_VARIANTS = ("reference", "onnxruntime", "sub-pixel onnxruntime")  # the rest get channels-last inputs


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
    on the "meta" device (nothing is computed, so a 4K frame is instant). Activations, biases and the
    pixel shuffle are not counted: a few FLOPs per value, against hundreds for a convolution.
    """
    with torch.no_grad():
        output = copy.deepcopy(model).to("meta")(torch.empty(model_input_shape, device="meta"))
    output_pixels = output.shape[0] * output.shape[-2] * output.shape[-1]
    return round(2 * macs_per_output_pixel(model, model_input_shape) * output_pixels)


def convolution_bound(repeats: int) -> dict[str, float]:
    """GFLOP/s of one plain 64 -> 64 channel 3 x 3 convolution on a 540 x 960 image (a quarter of 1080p),
    in NCHW and in channels-last memory; "bound" is the faster."""
    layer = nn.Conv2d(64, 64, kernel_size=3, padding=1).eval()
    features = torch.rand(1, 64, 540, 960)
    flops = convolution_flops(layer, tuple(features.shape))
    result = {}
    with torch.no_grad():
        for name, memory_format in (("nchw", torch.contiguous_format), ("channels_last", CHANNELS_LAST)):
            layer, features = layer.to(memory_format=memory_format), features.contiguous(memory_format=memory_format)
            result[name] = flops / best_time(lambda: layer(features), max(repeats, 5)) / 1e9
    return {**result, "bound": max(result.values())}


def build(name: str, scale: int, shipped: bool) -> nn.Module:
    """MODELS[name] at its default settings built for `scale` (a pre model only remembers it), or its shipped weights."""
    if shipped:
        from sr_teach.pretrained import load_pretrained

        return load_pretrained(name, scale).eval()
    return MODELS[name](scale=scale).eval()


def cases(names: list[str], scales: list[int] | None, shipped: bool) -> list[tuple[str, int]]:
    """(model name, scale) pairs: x3 for pre models, x2, x3, x4 for post models (those each can build:
    LapSRN and DBPN enlarge by powers of two only), or the `scales` asked for."""
    pairs = []
    for name in names:
        wanted = scales or (PRE_SCALES if MODELS[name].upsampling == "pre" else POST_SCALES)
        pairs += [(name, scale) for scale in wanted if builds(name, scale, shipped)]
    return pairs


def builds(name: str, scale: int, shipped: bool) -> bool:
    try:
        build(name, scale, shipped)
    except ValueError:
        return False
    return True


def low_resolution_size(output_size: tuple[int, int], scale: int) -> tuple[int, int]:
    return math.ceil(output_size[0] / scale), math.ceil(output_size[1] / scale)


def variant_names(model: nn.Module, asked: list[str]) -> list[str]:
    """The variants asked for that apply: the sub-pixel ones rewrite ESPCN and FSRCNN only."""
    try:
        SubPixelNetwork(model)
        rewritable = True
    except ValueError:
        rewritable = False
    return [name for name in asked if rewritable or not name.startswith("sub-pixel")]


def measure_speed(name: str, scale: int, repeats: int, bound: float, variants: list[str], shipped: bool,
                  report: Callable[[dict], None]) -> None:
    """Time one model at one scale on a 1080p output frame, every variant; report each row as it is made."""
    torch.manual_seed(0)
    model = build(name, scale, shipped)
    lr_height, lr_width = low_resolution_size(FRAME_SIZE, scale)
    lr_image = torch.rand(3, lr_height, lr_width)  # RGB: upscale does the Y / CbCr work too
    if model.upsampling == "pre":
        model_input = torch.rand(1, model.num_channels, *FRAME_SIZE)  # already enlarged
    else:
        model_input = torch.rand(1, model.num_channels, lr_height, lr_width)
    output_pixels = FRAME_SIZE[0] * FRAME_SIZE[1]
    flops = convolution_flops(model, tuple(model_input.shape))
    with torch.no_grad():
        expected = model(model_input)
    row = {"model": name, "upsampling": model.upsampling, "scale": scale, "input": f"{lr_width}x{lr_height}",
           "flops_per_pixel": flops / output_pixels, "gflop_per_frame": flops / 1e9}
    for variant in variant_names(model, variants):
        features = model_input if variant in NCHW_VARIANTS else model_input.contiguous(memory_format=CHANNELS_LAST)
        try:
            network = VARIANTS[variant](model)
            with torch.no_grad():
                start = time.perf_counter()
                difference = (network(features) - expected).abs().max().item()  # the first run: compiles
                first_seconds = time.perf_counter() - start
                forward_seconds = best_time(lambda: network(features), repeats)
            upscale_seconds = best_time(lambda: upscale(network, lr_image, scale=scale), repeats)
        except Exception as error:  # no C++ compiler, no onnxruntime, an operator the exporter lacks, ...
            report({**row, "variant": variant, "error": f"{type(error).__name__}: {str(error).strip().splitlines()[0][:90]}"})
            continue
        achieved = flops / forward_seconds / 1e9
        report({**row, "variant": variant, "difference": difference, "first_run_s": first_seconds,
                "forward_ms": forward_seconds * 1e3, "upscale_ms": upscale_seconds * 1e3,
                "megapixels_per_second": output_pixels / upscale_seconds / 1e6, "gflops": achieved,
                "percent_of_bound": 100 * achieved / bound})


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


def memory_case(name: str, scale: int, shipped: bool) -> dict[str, float]:
    """In this (fresh) process: upscale to about 4000 x 3000 with automatic tiles; report peak memory."""
    torch.manual_seed(0)
    model = build(name, scale, shipped)
    lr_image = torch.rand(3, *low_resolution_size(PHOTO_SIZE, scale))
    _, before = resident_memory_mib()  # torch, the model and the input
    start = time.perf_counter()
    result = upscale(model, lr_image, scale=scale)
    seconds = time.perf_counter() - start
    peak, _ = resident_memory_mib()
    return {"peak_mib": peak, "before_mib": before, "seconds": seconds,
            "output_bytes_mib": result.numel() * result.element_size() / 2**20,
            "output": f"{result.shape[-1]}x{result.shape[-2]}"}


def measure_memory(name: str, scale: int, shipped: bool) -> dict[str, float] | None:
    """Run `memory_case` in a subprocess, so that its peak is its own."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run(
        [sys.executable, __file__, "--memory-case", name, str(scale), *(["--shipped"] if shipped else [])],
        capture_output=True, text=True, env=environment,
    )
    if completed.returncode != 0:
        print(f"  memory case {name} x{scale} failed:\n{completed.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def text_row(row: dict) -> str:
    """One printed line of the table."""
    start = f"{row['model']:<8}{row['scale']:>3} {row['variant']:<23}"
    if "error" in row:
        return start + f"unavailable: {row['error']}"
    return start + (f"{row['forward_ms']:>9.0f}{row['upscale_ms']:>9.0f}{row['megapixels_per_second']:>7.1f}"
                    f"{row['gflops']:>8.1f}{row['percent_of_bound']:>7.0f}%{row['difference']:>10.1e}"
                    f"{row['first_run_s']:>8.1f}")


def markdown_table(rows: list[dict], memory: dict[tuple[str, int], dict | None]) -> str:
    """README's table: one line per model, scale and variant (an unavailable variant says so)."""
    lines = ["| model | scale | variant | network forward | whole colour upscale | share of the conv bound "
             "| largest difference from the reference |" + (" peak memory at 4000 x 3000 (tiled) |" if memory else ""),
             "| --- | --- | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if memory else "")]
    for row in rows:
        cells = [row["model"].upper() if row["model"] in ("espcn", "fsrcnn", "srcnn", "vdsr") else row["model"],
                 f"x{row['scale']}", row["variant"]]
        if "error" in row:
            cells += ["unavailable", "-", "-", "-"]
        else:
            cells += [f"{row['forward_ms']:,.0f} ms", f"{row['upscale_ms']:,.0f} ms", f"{row['percent_of_bound']:.0f}%",
                      f"{row['difference']:.0e}"]
        if memory:
            peak = memory.get((row["model"], row["scale"])) if row["variant"] == "reference" else None
            cells.append(f"{peak['peak_mib']:,.0f} MiB" if peak else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="which models")
    parser.add_argument("--scales", nargs="+", type=int, help="which scales (default: x3 for pre models, x2-x4 for post)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="which variants")
    parser.add_argument("--threads", type=int, default=2, help="torch's and ONNX Runtime's threads (the target: 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (best is kept)")
    parser.add_argument("--shipped", action="store_true", help="the shipped weights (espcn_x3.pt, ...), not fresh models")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 12-megapixel memory runs")
    parser.add_argument("--markdown", action="store_true", help="also print the README's table in Markdown")
    parser.add_argument("--memory-case", nargs=2, metavar=("MODEL", "SCALE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.memory_case:  # the subprocess of measure_memory
        name, scale = arguments.memory_case
        print(json.dumps(memory_case(name, int(scale), arguments.shipped)))
        return

    torch.set_num_threads(arguments.threads)
    torch._logging.set_logs(dynamo=logging.ERROR)  # compiling a readable forward breaks its graph at Python (resize):
    warnings.filterwarnings("ignore", module=r"torch\._dynamo")  # said once here, not in pages of warnings
    huge_pages = os.environ.get("THP_MEM_ALLOC_ENABLE", "0") not in ("", "0")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical cores, "
          f"{'shipped weights' if arguments.shipped else 'default models (random weights)'}, PyTorch's huge pages for big "
          f"tensors {'on' if huge_pages else 'off'} (THP_MEM_ALLOC_ENABLE=1, read when torch starts), OpenMP's "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY') or 'unset (threads spin after each step)'}")
    bound = convolution_bound(arguments.repeats)
    print(f"bound: a plain 64->64 3x3 convolution on 540x960 reaches {bound['nchw']:.0f} GFLOP/s in NCHW and "
          f"{bound['channels_last']:.0f} in channels-last; the bound is {bound['bound']:.0f} GFLOP/s\n")
    print(f"{'model':<8}{'x':>3} {'variant':<23}{'fwd ms':>9}{'all ms':>9}{'MP/s':>7}{'GFLOP/s':>8}{'bound':>8}"
          f"{'max diff':>10}{'1st s':>8}")
    rows: list[dict] = []
    memory: dict[tuple[str, int], dict | None] = {}

    def report(row: dict) -> None:
        rows.append(row)
        print(text_row(row), flush=True)

    for name, scale in cases(arguments.models, arguments.scales, arguments.shipped):
        measure_speed(name, scale, arguments.repeats, bound["bound"], arguments.variants, arguments.shipped, report)
        if not arguments.skip_memory:
            memory[name, scale] = result = measure_memory(name, scale, arguments.shipped)
            if result is not None:
                print(f"{'':<12}reference, upscaled to {result['output']} with automatic tiles: peak {result['peak_mib']:,.0f} "
                      f"MiB ({result['peak_mib'] - result['before_mib']:+,.0f} for the run), {result['seconds']:.1f} s")
    print("\nfwd: the network alone; all: the whole colour upscale (Y through the network, Cb / Cr by bicubic); "
          "bound: GFLOP/s of the forward as a share of the bound; max diff: largest |output - reference output|; "
          "1st s: the first run (compiling, for a compiled variant).")
    if arguments.markdown:
        print("\n" + markdown_table(rows, memory))


if __name__ == "__main__":
    main()
