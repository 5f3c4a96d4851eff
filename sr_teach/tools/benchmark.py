"""The README's results table: bicubic and every shipped model on Set5 and Set14, measured now.

    sr-teach benchmark                      # print the table
    sr-teach benchmark --readme README.md   # and write it between the README's markers

For each scale and each upscaler (MATLAB bicubic, then every weights file in `sr_teach/weights/`
that serves the scale) it measures, under the published tables' protocol (LR from `LR_bicubic`,
Y channel, border = scale): PSNR and SSIM on Set5 and Set14; the parameter count; the CPU time of
`upscale` on one colour 1080p output frame (1920 x 1080; Y through the network, Cb/Cr by bicubic),
best of a few runs; and it sets the published PSNR of the same architecture beside ours.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sr_teach.evaluation import PUBLISHED_BICUBIC, evaluate, interpolation_upscaler, model_upscaler
from sr_teach.models import count_parameters
from sr_teach.pretrained import pretrained_models
from sr_teach.tools.zoo import BENCHMARK_SETS

FRAME_SIZE = (1080, 1920)  # a 1080p output frame, (H, W)
README_START = "<!-- benchmark-table:start -->"
README_END = "<!-- benchmark-table:end -->"


@dataclass
class BenchmarkRow:
    label: str  # "bicubic" or the weights' label, e.g. "espcn x3"
    scale: int
    parameters: int
    scores: dict[str, tuple[float, float]]  # dataset -> (PSNR, SSIM)
    published: dict[str, float]  # dataset -> published PSNR of the same architecture
    milliseconds_per_frame: float


def frame_milliseconds(upscaler: Callable[[torch.Tensor, int], torch.Tensor], scale: int, repeats: int = 3) -> float:
    """Best-of-`repeats` time to produce one colour 1080p frame from its LR image."""
    generator = torch.Generator().manual_seed(0)
    lr_frame = torch.rand(3, FRAME_SIZE[0] // scale, FRAME_SIZE[1] // scale, generator=generator)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        upscaler(lr_frame, scale)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def measure_row(
    label: str, upscaler: Callable[[torch.Tensor, int], torch.Tensor], scale: int, parameters: int,
    published: dict[str, float], data_dir: str | os.PathLike | None, repeats: int,
) -> BenchmarkRow:
    scores = {}
    for dataset in BENCHMARK_SETS:
        mean = evaluate(upscaler, dataset, scale, data_dir=data_dir, method=label).mean
        scores[dataset] = (mean["psnr"], mean["ssim"])
    return BenchmarkRow(label, scale, parameters, scores, published, frame_milliseconds(upscaler, scale, repeats))


def benchmark(
    scales: Sequence[int] = (2, 3, 4), data_dir: str | os.PathLike | None = None, repeats: int = 3,
    progress: Callable[[str], None] = print,
) -> list[BenchmarkRow]:
    """Measure bicubic and every shipped model at each scale (see the module docstring)."""
    known = sorted({scale for _, scale in PUBLISHED_BICUBIC})
    unknown = [scale for scale in scales if scale not in known]
    if unknown:
        raise ValueError(f"the benchmark compares with the published tables at x{', x'.join(map(str, known))}, "
                         f"not x{', x'.join(map(str, unknown))}; choose among those")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (the best of that many timing runs counts), not {repeats}")
    rows = []
    for scale in scales:
        published = {dataset: PUBLISHED_BICUBIC[(dataset, scale)][0] for dataset in BENCHMARK_SETS}
        rows.append(measure_row("bicubic", interpolation_upscaler("bicubic"), scale, 0, published, data_dir, repeats))
        progress(f"x{scale} bicubic done")
        for info in pretrained_models():
            if scale not in info.scales:
                continue
            model = info.load(scale)
            # what its recipe aims at, as the zoo wrote it into the file ({"Set5 x3": 32.55}; none for a GAN)
            recorded = info.extra.get("published", {})
            published = {dataset: recorded[f"{dataset} x{scale}"] for dataset in BENCHMARK_SETS
                         if f"{dataset} x{scale}" in recorded}
            label = info.path.stem.replace("_", " ")
            rows.append(measure_row(label, model_upscaler(model), scale, count_parameters(model), published, data_dir, repeats))
            progress(f"x{scale} {label} done")
    return rows


def markdown_table(rows: Sequence[BenchmarkRow]) -> str:
    """The rows as the README's Markdown table."""
    lines = [
        ("| scale | model | parameters | Set5 PSNR / SSIM | Set5 published | Set14 PSNR / SSIM | Set14 published "
         "| CPU ms per 1080p frame |"),
        "| --- | --- | ---: | --- | --- | --- | --- | ---: |",
    ]
    for row in rows:
        cells = [f"x{row.scale}", row.label, f"{row.parameters:,}" if row.parameters else "-"]
        for dataset in BENCHMARK_SETS:
            psnr_value, ssim_value = row.scores[dataset]
            cells.append(f"{psnr_value:.2f} / {ssim_value:.4f}")
            cells.append(f"{row.published[dataset]:.2f}" if dataset in row.published else "-")
        cells.append(f"{row.milliseconds_per_frame:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_into_readme(table: str, readme: str | os.PathLike) -> None:
    """Replace the text between README_START and README_END in `readme` with `table`."""
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_START} ... {README_END} markers to write the table between")
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    path.write_text(f"{before}{README_START}\n{table}\n{README_END}{after}", encoding="utf-8")
