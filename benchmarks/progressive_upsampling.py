"""Progressive (LapSRN), iterative (DBPN) and one-shot (ESPCN) upsampling in equal training seconds.

Each network is trained from scratch on T91 for the same wall-clock budget at each scale (x4 and
x8 by default; one CPU thread, MSE, Adam at 1e-3, 16 LR patches of 16 x 16 pixels), then measured
on Set5 under the SR protocol (LR from MATLAB's bicubic, Y channel, border = scale, 8-bit output).
Set5 is only reported; nothing is chosen on it (no validation split: the last weights are scored).

    SR_TEACH_DATA=../shared/datasets python benchmarks/progressive_upsampling.py [--seconds 30]

The one-shot network is ESPCN with the bicubic skip (global_residual, ReLU: the shipped ESPCNs'
recipe): the course's post-upsampling reference, and the fairest at hand. It has about the size of
LapSRN's default (25K against 24K parameters at x4, 39K against 35K at x8); PostUpsamplingNet would
have to learn interpolation from scratch, which LapSRN (bilinear image branch) and DBPN (given the
same bicubic skip here) do not. DBPN's parameters grow with the scale (12 x 12 kernels at x8).
"""

from __future__ import annotations

import argparse
import time

import torch

from sr_teach.datasets import benchmark_images, dataset_folder
from sr_teach.evaluation import evaluate, interpolation_upscaler, model_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.inference import upscale
from sr_teach.models import count_parameters
from sr_teach.training import TrainConfig

# name -> (architecture in sr_teach.models.MODELS, its options): the three ways to enlarge.
CONTENDERS: dict[str, tuple[str, dict]] = {
    "ESPCN (one shot)": ("espcn", {"global_residual": True, "activation": "relu"}),
    "LapSRN (progressive)": ("lapsrn", {}),
    "DBPN (iterative)": ("dbpn", {"global_residual": True}),
}


def milliseconds_per_image(model: torch.nn.Module, scale: int, data_dir: str | None, repeats: int = 3) -> float:
    """Mean over Set5 of the best of `repeats` runs of `upscale` (colour in and out, Y through the network)."""
    images = benchmark_images("Set5", scale, data_dir)
    upscale(model, images[0].lr_image)  # warm-up: first calls allocate
    best = []
    for image in images:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            upscale(model, image.lr_image)
            times.append(time.perf_counter() - start)
        best.append(min(times))
    return 1000 * sum(best) / len(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="training seconds per network and scale")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8], choices=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for training and timing")
    parser.add_argument("--data-dir", default=None, help="the folder holding T91 and Set5 (default: $SR_TEACH_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    t91 = str(dataset_folder("T91", arguments.data_dir))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {arguments.seconds:g} s of training "
          f"per network and scale on T91; Set5 Y PSNR, border = scale", flush=True)

    rows = []
    for scale in arguments.scales:
        bicubic = evaluate(interpolation_upscaler("bicubic"), "Set5", scale, method="bicubic",
                           data_dir=arguments.data_dir).mean["psnr"]
        rows.append((scale, "bicubic", None, None, bicubic, bicubic, None))
        for label, (name, options) in CONTENDERS.items():
            experiment = Experiment(ExperimentConfig(
                model=name, scale=scale, model_options=options, data=(t91,), validation_fraction=0.0,
                patch_size=16, batch_size=16, augment="flips", seed=arguments.seed,
                train=TrainConfig(loss="mse", learning_rate=1e-3, total_steps=10**7, validation_every=None),
            ))
            experiment.train(seconds=arguments.seconds)
            model = experiment.model.eval()
            score = evaluate(model_upscaler(model), "Set5", scale, method=label, data_dir=arguments.data_dir)
            rows.append((scale, label, count_parameters(model), experiment.trainer.step, score.mean["psnr"], bicubic,
                         milliseconds_per_image(model, scale, arguments.data_dir)))
            print(f"x{scale} {label}: {experiment.trainer.step} steps, Set5 {score.mean['psnr']:.2f} dB", flush=True)

    print(f"\n| scale | model | parameters | steps in {arguments.seconds:g} s | Set5 PSNR (dB) | vs bicubic | "
          f"ms per Set5 image ({arguments.threads} thread) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for scale, label, parameters, steps, psnr, bicubic, milliseconds in rows:
        print(f"| x{scale} | {label} | {'-' if parameters is None else f'{parameters:,}'} | "
              f"{'-' if steps is None else f'{steps:,}'} | {psnr:.2f} | {psnr - bicubic:+.2f} | "
              f"{'-' if milliseconds is None else f'{milliseconds:.0f}'} |")


if __name__ == "__main__":
    main()
