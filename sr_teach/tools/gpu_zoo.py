"""The whole SR zoo at its papers' sizes, trained at once on one GPU: `sr-teach zoo train --all --device cuda`.

On a laptop CPU the zoo makes do with the steps that fit in minutes, and with a VDSR folded to 10 x 32. One GPU
has room for every SR recipe at its paper's size at the same time (the models are small): one process each.
A run has a time budget instead of a number of steps: it measures its own speed beside the others, stretches
its learning-rate schedule over the steps that fit, trains, and keeps whichever validates better on the same
held-out split, its weights or the shipped ones (never Set5 or Set14: they are only measured, afterwards).

    sr-teach zoo train --all --device cuda --minutes 10     # logs and run states in gpu_runs/
    sr-teach zoo train --all --only espcn_x3 --device cpu --minutes 0.2 --into /tmp/weights   # a smoke test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sr_teach.checkpoints import load_checkpoint
from sr_teach.models import MODELS
from sr_teach.tools.zoo import ZooRecipe, all_recipes, build_experiment, export_weights, recipe_named, weights_path

DEFAULT_RUNS_FOLDER = Path("gpu_runs")
FULL_VDSR = {"depth": 20, "num_features": 64, "pixel_unshuffle": 1, "reconstruction_std": 1e-3}  # Kim et al. 2016
WARM_UP_STEPS, TIMED_STEPS = 20, 100  # the speed is timed after the first steps (memory, kernels' first runs)
SCHEDULE_FRACTION = 0.9  # the schedule is fitted to 90% of the budget, for validations and a slower moment


def paper_names() -> list[str]:
    """The SR recipes (not the restoration or GAN ones): SRCNN, FSRCNN, ESPCN at x2-x4, VDSR, and others added."""
    return [name for name, recipe in all_recipes().items()
            if recipe.experiment.scale > 1 and not recipe.experiment.adversarial and recipe.experiment.model in MODELS]


def paper_recipe(name: str, device: str) -> ZooRecipe:
    """The recipe of `name` at its paper's size, from scratch: the runs go side by side, so none waits for another."""
    recipe = replace(recipe_named(name), finetune_from=None)
    experiment = recipe.experiment
    if experiment.model == "vdsr":
        experiment = replace(experiment, model_options=FULL_VDSR)  # 20 layers of 64 filters, at full size
    return replace(recipe, experiment=replace(experiment, train=replace(experiment.train, device=device)))


def steps_that_fit(steps_timed: int, seconds_timed: float, seconds_left: float, steps_done: int) -> int:
    """The total steps of a run that has `seconds_left`, at the speed just measured."""
    return steps_done + max(1, int(SCHEDULE_FRACTION * seconds_left * steps_timed / seconds_timed))


def train_for_minutes(name: str, minutes: float, device: str, runs_folder: str | os.PathLike = DEFAULT_RUNS_FOLDER,
                      data_dir: str | os.PathLike | None = None, into: str | os.PathLike | None = None) -> Path:
    """Train `name` at its paper's size for `minutes`; write its weights over the shipped ones (into `into`, if
    given) when they validate better, else beside its run state. Returns the weights file written."""
    started = time.perf_counter()
    recipe = paper_recipe(name, device)
    experiment = build_experiment(recipe, data_dir)
    trainer = experiment.trainer
    experiment.train(steps=WARM_UP_STEPS + TIMED_STEPS)
    timed = trainer.history.wall_time[-1] - trainer.history.wall_time[WARM_UP_STEPS - 1]
    total = steps_that_fit(TIMED_STEPS, timed, minutes * 60 - (time.perf_counter() - started), trainer.step)
    trainer.config = replace(trainer.config, total_steps=total, validation_every=max(1, total // 20))
    print(f"{name}: {TIMED_STEPS / timed:.0f} steps/s here, so {total:,} steps (cosine schedule over them)", flush=True)
    history = experiment.train(steps=total - trainer.step, seconds=minutes * 60 - (time.perf_counter() - started))
    runs = Path(runs_folder)
    experiment.save(runs / f"{name}.pt", overwrite=True)
    shipped = weights_path(name)
    shipped_psnr = load_checkpoint(shipped)["extra"].get("best_validation_psnr") if shipped.exists() else None
    better = history.stop_reason != "diverged" and (shipped_psnr is None or trainer.best_validation_psnr > shipped_psnr)
    if not better:
        target = runs / f"{name}_weights.pt"  # kept beside the run state, for a look
    else:
        target = Path(into) / shipped.name if into else shipped
    command = f"sr-teach zoo train --all --device {device} --minutes {minutes}"
    path = export_weights(replace(recipe, steps=trainer.step), experiment, data_dir, path=target, command=command)
    versus = "none shipped" if shipped_psnr is None else f"shipped {shipped_psnr:.3f} dB"
    print(f"{name}: {trainer.step:,} steps in {trainer.training_seconds / 60:.1f} min of training, validation "
          f"{trainer.best_validation_psnr:.3f} dB ({versus}): {'kept, ' if better else 'not kept, '}{path}", flush=True)
    return path


def train_all(minutes: float, device: str, names: Sequence[str] | None = None,
              runs_folder: str | os.PathLike = DEFAULT_RUNS_FOLDER, data_dir: str | os.PathLike | None = None,
              into: str | os.PathLike | None = None) -> int:
    """Start one process per recipe, all at once, and wait for them; 0 if every run ended well."""
    names = list(names or paper_names())
    runs = Path(runs_folder)
    runs.mkdir(parents=True, exist_ok=True)
    threads = str(max(1, (os.cpu_count() or 1) // len(names)))  # the CPU cores shared out (they make the patches)
    options = [*(["--data-dir", str(data_dir)] if data_dir else []), *(["--into", str(into)] if into else [])]
    running = {}
    for name in names:
        command = [sys.executable, "-m", "sr_teach.tools.gpu_zoo", name, "--minutes", str(minutes), "--device", device,
                   "--runs", str(runs), *options]
        log = open(runs / f"{name}.log", "w")  # closed when its process ends
        running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "OMP_NUM_THREADS": threads}), log)
    print(f"training {len(names)} recipes at once on {device}, {minutes} min each; logs in {runs}/", flush=True)
    failed = 0
    for name, (process, log) in running.items():
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C reached the runs too: they save their state; wait for them
                print("interrupted: the runs are saving their state", flush=True)
        log.close()
        lines = (runs / f"{name}.log").read_text().strip().splitlines()
        failed += code != 0
        print(f"failed (exit {code}): {name}, see {runs / name}.log" if code else lines[-1], flush=True)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """One run of `train_all`, in its own process."""
    parser = argparse.ArgumentParser(prog="python -m sr_teach.tools.gpu_zoo", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=paper_names())
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--runs", default=str(DEFAULT_RUNS_FOLDER))
    parser.add_argument("--data-dir")
    parser.add_argument("--into")
    arguments = parser.parse_args(argv)
    train_for_minutes(arguments.name, arguments.minutes, arguments.device, arguments.runs, arguments.data_dir,
                      arguments.into)
    return 0


if __name__ == "__main__":
    sys.exit(main())
