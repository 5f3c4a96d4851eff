"""How long does a network trained from scratch on a laptop CPU take to beat bicubic?

ESPCN x2 on the Y channel, trained from scratch on the nine photos bundled with sr_teach (none of
them in Set5), measured on Set5 under the standard protocol (LR_bicubic inputs, Y channel, border 2)
at fixed moments of *training* wall time; the time spent evaluating is not counted. The Set5 score
is only reported, never used to choose weights.

    SR_TEACH_DATA=../shared/datasets python benchmarks/time_to_beat_bicubic.py [--variant paper|residual]

Prints one line per checkpoint in time and a summary: the training seconds until Set5 PSNR first
exceeds bicubic, and the PSNR after 60 s and after 300 s.
"""

from __future__ import annotations

import argparse
import time

import torch

from sr_teach.evaluation import evaluate, interpolation_upscaler, model_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.training import TrainConfig

CHECKPOINTS = (2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)  # seconds of training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=["residual", "paper"], default="residual",
                        help="residual: ESPCN + bicubic skip (global_residual=True); paper: ESPCN as published")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--data-dir", default=None)
    arguments = parser.parse_args()
    scale = arguments.scale

    bicubic = evaluate(interpolation_upscaler("bicubic"), "Set5", scale, method="bicubic", data_dir=arguments.data_dir).mean["psnr"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; Set5 x{scale} bicubic: {bicubic:.2f} dB")

    setup_start = time.perf_counter()
    experiment = Experiment(ExperimentConfig(
        model="espcn", scale=scale, model_options={"global_residual": arguments.variant == "residual"},
        validation_fraction=0.0, patch_size=17, batch_size=16, augment="flips",
        train=TrainConfig(learning_rate=arguments.learning_rate, loss="mse", total_steps=10**7,
                          validation_every=None),
    ))
    print(f"setup (loading photos, building the model): {time.perf_counter() - setup_start:.1f} s")

    def set5_psnr() -> float:
        return evaluate(model_upscaler(experiment.model), "Set5", scale, method="espcn", data_dir=arguments.data_dir).mean["psnr"]

    trained, passed_at, results = 0.0, None, {}
    print(f"{'train s':>8} {'steps':>6} {'Set5 PSNR':>10} {'vs bicubic':>10}")
    for checkpoint in (c for c in CHECKPOINTS if c <= arguments.seconds):
        experiment.train(seconds=checkpoint - trained)
        trained = experiment.history.wall_time[-1] if experiment.history.wall_time else checkpoint
        score = set5_psnr()
        results[checkpoint] = score
        print(f"{trained:8.1f} {experiment.trainer.step:6d} {score:10.2f} {score - bicubic:+10.2f}", flush=True)
        if passed_at is None and score > bicubic:
            passed_at = trained
    print(f"\nESPCN x{scale} ({arguments.variant}) from scratch on the bundled photos, Set5 Y-PSNR:")
    print(f"  passes bicubic ({bicubic:.2f} dB) after: "
          + (f"{passed_at:.1f} s of training (first checkpoint above it)" if passed_at else "not within the run"))
    for mark in (60, 120, 300):
        if mark in results:
            print(f"  after {mark:3d} s: {results[mark]:.2f} dB ({results[mark] - bicubic:+.2f} dB over bicubic)")


if __name__ == "__main__":
    main()
