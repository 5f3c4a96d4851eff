"""ECBSR against VDSR: PSNR beside parameters and multiply-adds, after a fixed training time.

ECBSR (sr_teach.models.reparameterized) is trained at one scale for a wall-clock budget on T91 (or
other folders), the best weights chosen on a held-out 10% of the training images (never on a test
set), then collapsed into plain 3 x 3 convolutions and scored on Set5 and Set14 (Y channel, border =
scale, 8-bit output), beside the published VDSR (Kim et al. 2016) and the shipped `vdsr` (as
`sr-teach evaluate --model vdsr` scores it). Multiply-adds per output pixel come from
sr_teach.tools.cost. The cosine schedule needs a length: a short throwaway run measures the step rate.
Adam at 1e-3 and L1 won 600-step x2 probes on the validation split (against 5e-4, 2e-3 and MSE), with
batches of 16 LR patches of 32 x 32, the defaults here.

    SR_TEACH_DATA=../shared/datasets python benchmarks/reparameterized.py --seconds 1800 --device cuda
    python benchmarks/reparameterized.py --seconds 60 --compare-forward   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from sr_teach.datasets import dataset_folder
from sr_teach.device import pick_device
from sr_teach.evaluation import evaluate, interpolation_upscaler, model_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.models import ECBSR, VDSR, count_parameters
from sr_teach.pretrained import load_pretrained
from sr_teach.tools.cost import macs_per_output_pixel, measure_training_step
from sr_teach.tools.zoo import PUBLISHED
from sr_teach.training import TrainConfig

TEST_SETS = ("Set5", "Set14")
CALIBRATION_STEPS = 20  # timed steps of the throwaway run that measures the step rate (after 5 untimed)


def experiment_config(arguments: argparse.Namespace, total_steps: int, validate: bool = True) -> ExperimentConfig:
    """The run: ECBSR at one scale, Adam with a cosine decay over `total_steps`, no mixed precision
    (bf16 rounds the small x2 residuals coarser than the 37 dB being aimed at)."""
    folders = tuple(str(dataset_folder(name, arguments.data_dir)) if not Path(name).is_dir() else name
                    for name in arguments.data)
    options: dict[str, Any] = {"num_blocks": arguments.num_blocks, "num_features": arguments.num_features,
                               "train_branches": arguments.train_branches}
    if arguments.branches is not None:
        options["branches"] = tuple(arguments.branches)
    return ExperimentConfig(
        model="ecbsr", scale=arguments.scale, model_options=options, data=folders, validation_fraction=0.1 if validate else 0.0,
        validation_max_size=256, patch_size=arguments.patch_size, batch_size=arguments.batch_size,
        augment="flips", seed=arguments.seed,
        train=TrainConfig(learning_rate=arguments.lr, loss=arguments.loss, total_steps=total_steps,
                          lr_schedule="cosine", cosine_final_fraction=0.01, device=arguments.device,
                          mixed_precision="off", validation_every=arguments.validation_every if validate else None,
                          log_every=50),
    )


def seconds_per_step(arguments: argparse.Namespace) -> float:
    """The step rate of this run on this machine (data, forward, backward, update), from a throwaway run."""
    experiment = Experiment(experiment_config(arguments, total_steps=10**9, validate=False))
    experiment.train(steps=5)
    start = time.perf_counter()
    experiment.train(steps=CALIBRATION_STEPS)
    return (time.perf_counter() - start) / CALIBRATION_STEPS


def forward_costs(arguments: argparse.Namespace) -> dict[str, float]:
    """Milliseconds per training step with every branch run (the paper's code) and with the merged
    kernel (the default), on random batches of the run's shape."""
    scale, patch, batch = arguments.scale, arguments.patch_size, arguments.batch_size
    costs = {}
    for train_branches in (True, False):
        model = ECBSR(scale=scale, num_blocks=arguments.num_blocks, num_features=arguments.num_features,
                      train_branches=train_branches)
        cost = measure_training_step(model, (batch, 1, patch, patch), (batch, 1, scale * patch, scale * patch),
                                     device=arguments.device, threads=torch.get_num_threads(), loss=arguments.loss)
        costs["branches" if train_branches else "merged"] = 1000 * cost.seconds_per_step
    return costs


def scores(model: torch.nn.Module, label: str, scale: int, data_dir: str | None) -> dict[str, float]:
    return {name: evaluate(model_upscaler(model), name, scale, method=label, data_dir=data_dir).mean["psnr"]
            for name in TEST_SETS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1800, help="training budget, wall clock")
    parser.add_argument("--steps", type=int, default=None, help="a number of steps instead (no time limit)")
    parser.add_argument("--no-test", action="store_true", help="stop after training: validation only (probes)")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--data", nargs="+", default=["T91"], help="training sets (names in the data directory, or folders)")
    parser.add_argument("--data-dir", default=None, help="the folder holding the sets (default: $SR_TEACH_DATA)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (on a GPU: for the data)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, decayed by a cosine")
    parser.add_argument("--loss", default="l1", help="l1 (the paper's code) or mse")
    parser.add_argument("--patch-size", type=int, default=32, help="LR patch side")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-blocks", type=int, default=10, help="M")
    parser.add_argument("--num-features", type=int, default=32, help="C")
    parser.add_argument("--branches", nargs="*", default=None, help="the ECB's extra branches (none: a plain network)")
    parser.add_argument("--train-branches", action="store_true", help="run every branch while training (slower)")
    parser.add_argument("--validation-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the run's checkpoint here")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--compare-forward", action="store_true", help="time merged against branch-by-branch steps")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    device = pick_device(arguments.device)
    scale = arguments.scale
    print(f"torch {torch.__version__} on {device} ({torch.get_num_threads()} CPU thread(s)); ECBSR-M{arguments.num_blocks}"
          f"C{arguments.num_features} x{scale}, {arguments.seconds:g} s on {' + '.join(arguments.data)}", flush=True)
    results: dict[str, Any] = {"arguments": vars(arguments), "device": str(device)}
    if arguments.compare_forward:
        results["ms_per_step"] = forward_costs(arguments)
        print("ms per training step: " + ", ".join(f"{k} {v:.1f}" for k, v in results["ms_per_step"].items()), flush=True)

    if arguments.steps is None:
        step_seconds = seconds_per_step(arguments)
        total_steps = max(1, int(0.97 * arguments.seconds / step_seconds))  # 3% for the validations
        print(f"{1000 * step_seconds:.1f} ms a step: the cosine runs over {total_steps:,} steps", flush=True)
    else:
        total_steps = arguments.steps
    experiment = Experiment(experiment_config(arguments, total_steps))
    bicubic_validation = experiment.bicubic_psnr()
    start = time.perf_counter()
    experiment.train(steps=total_steps, seconds=None if arguments.steps else arguments.seconds)
    minutes = (time.perf_counter() - start) / 60
    trainer = experiment.trainer
    print(f"{trainer.step:,} steps in {minutes:.1f} min; validation PSNR {trainer.best_validation_psnr:.2f} dB at step "
          f"{trainer.best_validation_step:,} (bicubic {bicubic_validation:.2f} dB)", flush=True)
    if arguments.output:
        experiment.save(arguments.output, overwrite=True)
    results.update(steps=trainer.step, minutes=minutes, total_steps=total_steps,
                   best_validation_psnr=trainer.best_validation_psnr, validation_bicubic_psnr=bicubic_validation,
                   best_validation_step=trainer.best_validation_step, history=trainer.history.to_dict())
    if not arguments.no_test:
        results |= test(experiment, arguments)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=1, default=str) + "\n")


def test(experiment: Experiment, arguments: argparse.Namespace) -> dict[str, Any]:
    """Collapse the best-on-validation weights, check them against the branches, score beside VDSR."""
    trainer, scale = experiment.trainer, arguments.scale
    trainer.restore_best_state()
    model = experiment.model.eval()
    collapsed = model.collapse()
    by_branch = ECBSR(replace(model.config, train_branches=True)).to(trainer.device).train()  # the paper's form
    by_branch.load_state_dict(model.state_dict())
    probe = torch.rand(1, 1, 48, 48, device=trainer.device)
    with torch.no_grad():
        gap = (collapsed(probe) - by_branch(probe)).abs().max().item()

    lr_shape, hr_shape = (1, 1, 48, 48), (1, 1, 48 * scale, 48 * scale)
    vdsr_paper, vdsr_shipped = VDSR(), load_pretrained("vdsr", scale)
    rows = [  # label, inference parameters, multiply-adds per output pixel, {set: PSNR}
        ("bicubic", 0, 0.0, {name: evaluate(interpolation_upscaler("bicubic"), name, scale, method="bicubic",
                                            data_dir=arguments.data_dir).mean["psnr"] for name in TEST_SETS}),
        ("VDSR 20 x 64 (published)", count_parameters(vdsr_paper), macs_per_output_pixel(vdsr_paper, hr_shape),
         {name: PUBLISHED["vdsr"][(name, scale)] for name in TEST_SETS if (name, scale) in PUBLISHED["vdsr"]}),
        ("vdsr (shipped)", count_parameters(vdsr_shipped), macs_per_output_pixel(vdsr_shipped, hr_shape),
         scores(vdsr_shipped, "vdsr", scale, arguments.data_dir)),
        (f"ECBSR-M{arguments.num_blocks}C{arguments.num_features} {'plain' if arguments.branches == [] else 'collapsed'}",
         count_parameters(collapsed),
         macs_per_output_pixel(collapsed, lr_shape), scores(collapsed, "ecbsr", scale, arguments.data_dir)),
    ]
    vdsr_macs = rows[1][2]
    print(f"\nx{scale}; ECBSR trained {trainer.step:,} steps, {count_parameters(model):,} weights while training; "
          f"collapsed - branch by branch: {gap:.1e} at most\n")
    print(f"| model | parameters | MACs per output pixel | of VDSR's | {' | '.join(TEST_SETS)} |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(TEST_SETS))
    for label, parameters, macs, psnrs in rows:
        cells = " | ".join(f"{psnrs[name]:.2f}" if name in psnrs else "-" for name in TEST_SETS)
        print(f"| {label} | {parameters:,} | {macs:,.0f} | {macs / vdsr_macs:.3f} | {cells} |")
    return {"collapse_gap": gap, "config": asdict(model.config),
            "rows": [dict(zip(("model", "parameters", "macs_per_output_pixel", "psnr"), row)) for row in rows]}


if __name__ == "__main__":
    main()
