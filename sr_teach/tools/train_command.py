"""`sr-teach train`: start a training run from the command line, or continue a saved one.

A run is an `ExperimentConfig` built from the options; `--resume` continues a checkpoint exactly and
refuses options that would make it another run (another model, scale, data or degradation).
Under torchrun each process runs this command: they share every batch, and rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path

from sr_teach import distributed
from sr_teach.cli import CommandError, check_number, check_output
from sr_teach.checkpoints import load_checkpoint
from sr_teach.damage import DAMAGES, MASKED_DAMAGES
from sr_teach.degradations import DegradationConfig
from sr_teach.experiment import AUGMENTATIONS, Experiment, ExperimentConfig
from sr_teach.losses import LOSSES
from sr_teach.models import MODELS
from sr_teach.training import TrainConfig

# `sr-teach train` options: their defaults, the ExperimentConfig field each sets, and the TrainConfig
# fields a resumed run may change (the rest describes the run and stays as saved).
TRAIN_DEFAULTS = {
    "extra_scales": [], "data": [], "lr": 1e-3, "schedule": "constant", "batch_size": 16, "patch_size": 17,
    "loss": "mse", "augment": "flips", "degradation": "bicubic", "channels": 1, "validation_fraction": 0.1,
    "validation_every": 200, "device": "auto", "seed": 0,
}
RUN_FIELDS = {
    "model": "model", "scale": "scale", "extra_scales": "extra_scales", "channels": "num_channels",
    "data": "data", "patch_size": "patch_size", "batch_size": "batch_size", "augment": "augment", "seed": "seed",
    "validation_fraction": "validation_fraction", "degradation": "degradation.method", "loss": "train.loss",
    "noise_sigma": "degradation.noise_sigma", "jpeg_quality": "degradation.jpeg_quality",
    "damage": "degradation.damage", "mask_input": "degradation.mask_input", "gray_input": "degradation.grayscale",
}
RESUME_CHANGES = {
    "lr": "learning_rate", "schedule": "lr_schedule", "total_steps": "total_steps",
    "validation_every": "validation_every", "device": "device",
}


def command_train(arguments: argparse.Namespace) -> int:
    given = {name: value for name, value in vars(arguments).items() if name in TRAIN_DEFAULTS or name in RUN_FIELDS
             or name in RESUME_CHANGES}
    for name in ("noise_sigma", "jpeg_quality"):  # one number, or a range (low, high) drawn for each patch
        if name in given:
            if len(given[name]) > 2:
                raise CommandError(f"--{name.replace('_', '-')} takes one value or a range LOW HIGH, not {len(given[name])} values")
            given[name] = given[name][0] if len(given[name]) == 1 else given[name]
    resume_in_place = arguments.resume is not None and Path(arguments.resume).resolve() == Path(arguments.output).resolve()
    output = check_output(arguments.output, arguments.force or resume_in_place,
                          f", or --resume {arguments.output} to continue it")
    if arguments.steps is None and arguments.seconds is None:
        raise CommandError("say how long to train: --steps N and/or --seconds T")
    check_number("--steps", arguments.steps, 1, "at least 1")
    check_number("--seconds", arguments.seconds, 0.001, "a positive number of seconds")
    check_number("--total-steps", given.get("total_steps"), 1, "at least 1")
    check_number("--lr", given.get("lr"), 1e-300, "a positive number")
    if arguments.resume:
        check_resume_options(arguments.resume, given)
        changes = {RESUME_CHANGES[name]: value for name, value in given.items() if name in RESUME_CHANGES}
        experiment = Experiment.resume(arguments.resume, **changes)
        distributed.say(f"resuming {arguments.resume} at step {experiment.trainer.step}"
                        + (f" with {', '.join(f'{key}={value}' for key, value in changes.items())}" if changes else ""))
    else:
        experiment = Experiment(new_run_config({**TRAIN_DEFAULTS, **given}, arguments.steps))
    config = experiment.config
    processes = f" in {distributed.world_size()} processes" if distributed.active() else ""
    distributed.say(f"training {config.model} x{'/'.join(map(str, config.scales))} on {len(experiment.train_paths)} "
                    f"images ({len(experiment.validation_paths)} held out for validation) on {experiment.trainer.device}"
                    f"{processes}")
    history = experiment.train(steps=arguments.steps, seconds=arguments.seconds, progress=not arguments.quiet)
    if history.stop_message:
        distributed.say(history.stop_message)
    experiment.save(output, overwrite=True)
    trainer = experiment.trainer
    summary = [f"stopped after step {trainer.step} ({history.stop_reason})"]
    if trainer.best_state is not None:
        summary.append(f"validation PSNR {trainer.best_validation_psnr:.2f} dB (step {trainer.best_validation_step})")
    distributed.say("; ".join([*summary, f"wrote {output}"]))
    distributed.finish()
    if history.stop_reason == "interrupted":  # saved; now say so to the shell, as an interrupted program does
        return 128 + (signal.SIGTERM if history.stop_message.startswith("SIGTERM") else signal.SIGINT)
    return 0


def new_run_config(options: dict, steps: int | None) -> ExperimentConfig:
    """The ExperimentConfig of a fresh `sr-teach train` run (the schedule spans --total-steps, else --steps)."""
    for name in ("model", "scale"):
        if name not in options:
            raise CommandError(f"--{name} is needed to start a run (or --resume CHECKPOINT to continue one)")
    return ExperimentConfig(
        model=options["model"], scale=options["scale"], extra_scales=tuple(options["extra_scales"]),
        num_channels=options["channels"], data=tuple(options["data"]), patch_size=options["patch_size"],
        batch_size=options["batch_size"], augment=options["augment"], seed=options["seed"],
        validation_fraction=options["validation_fraction"],
        degradation=restoration_degradation(options),
        train=TrainConfig(
            learning_rate=options["lr"], loss=options["loss"],
            total_steps=options.get("total_steps") or steps or 10**6,
            lr_schedule=options["schedule"], device=options["device"], validation_every=options["validation_every"],
        ),
    )


def restoration_degradation(options: dict) -> DegradationConfig:
    """The DegradationConfig of the options: the shrinking method, and what spoils the pixels (all a x1 run has)."""
    spoils = {name: options[name] for name in ("noise_sigma", "jpeg_quality", "damage") if name in options}
    if options["scale"] == 1 and not spoils and not options.get("gray_input"):
        raise CommandError("at --scale 1 nothing is shrunk, so say what to undo: --noise-sigma, --jpeg-quality, "
                           "--damage or --gray-input (otherwise the network would learn to copy its input)")
    try:
        return DegradationConfig(method=options["degradation"], noise_clip=False,
                                 mask_input=options.get("mask_input", False), grayscale=options.get("gray_input", False),
                                 **spoils)  # DegradationConfig reads a [low, high] list as a range
    except ValueError as error:
        raise CommandError(str(error)) from None


def check_resume_options(path: str, given: dict) -> None:
    """Refuse options that would describe another run than the saved one (another model, scale, data...)."""
    saved = load_checkpoint(path)["extra"].get("experiment") or {}
    for name, value in given.items():
        if name not in RUN_FIELDS:
            continue
        saved_value = saved
        for key in RUN_FIELDS[name].split("."):
            saved_value = saved_value.get(key) if isinstance(saved_value, dict) else None
        same = list(saved_value) == list(value) if isinstance(value, list) else saved_value == value
        if not same:
            option = "--" + name.replace("_", "-")
            raise CommandError(f"{path} is a run with {option} {saved_value}, which cannot change on resume; "
                               f"drop {option} to continue it, or start a new run with another --output")


def add_train_command(commands: argparse._SubParsersAction, add_max_pixels: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `train` subcommand and its options."""
    train = commands.add_parser("train", help="train a model and write a checkpoint (or continue one: --resume)")
    unset = argparse.SUPPRESS  # run options keep no value unless given, so --resume can tell what changed

    def option(*names: str, text: str, **settings) -> None:
        default = TRAIN_DEFAULTS.get(names[0].lstrip("-").replace("-", "_"))
        shown = f" (default: {default})" if default not in (None, []) else ""
        train.add_argument(*names, default=unset, help=text + shown, **settings)

    option("--model", choices=list(MODELS), text="architecture (needed unless --resume)")
    option("--scale", type=int, text="the enlargement the model learns, 1 or more (needed unless --resume)")
    option("--extra-scales", type=int, nargs="*", text="more scales for a pre-upsampling model")
    option("--data", nargs="*", text="folders of HR training images (default: the bundled photos)")
    train.add_argument("--steps", type=int, help="optimizer steps to run")
    train.add_argument("--seconds", type=float, help="wall-clock seconds to run (whichever of steps/seconds ends first)")
    option("--total-steps", type=int, text="length of the planned run for the learning-rate schedule")
    option("--lr", type=float, text="learning rate (Adam); may change on --resume")
    option("--schedule", choices=["constant", "cosine", "step"], text="learning-rate schedule; may change on --resume")
    option("--batch-size", type=int, text="patches per step")
    option("--patch-size", type=int, text="LR patch side in pixels")
    option("--loss", choices=list(LOSSES), text="what the optimizer minimises")
    option("--augment", choices=list(AUGMENTATIONS), text="how training patches are varied")
    option("--degradation", text="how LR images are made (see sr_teach.degradations)")
    option("--channels", type=int, choices=[1, 3], text="1 = Y channel (as the papers), 3 = RGB")
    option("--noise-sigma", type=float, nargs="+", metavar="SIGMA",
           text="Gaussian noise on the 0..255 scale (not clipped, as the denoising tables), or LOW HIGH: blind")
    option("--jpeg-quality", type=int, nargs="+", metavar="Q", text="JPEG at quality 1-95, or LOW HIGH drawn per patch")
    option("--damage", choices=list(DAMAGES), text="damage that keeps the size (with --scale 1)")
    option("--mask-input", action="store_true", text=f"give the damage's mask to the network ({', '.join(MASKED_DAMAGES)})")
    option("--gray-input", action="store_true", text="the network gets gray and gives --channels 3 colour (colourisation)")
    option("--validation-fraction", type=float, text="training images held out to pick the best weights")
    option("--validation-every", type=int, text="steps between validations")
    option("--device", text="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    option("--seed", type=int, text="seeds the weights, the patches and the validation split")
    train.add_argument("--resume", help="continue the run saved in this checkpoint (--output may be the same file)")
    train.add_argument("--output", required=True, help="checkpoint file to write")
    train.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_max_pixels(train)
    train.set_defaults(run=command_train)
