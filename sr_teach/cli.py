"""The `sr-teach` command line: `sr-teach info`, `evaluate`, `upscale`, `train`, `download`.

Every command reports bad input (missing or damaged images, unknown sets, unsupported scales,
existing output files) as one clear line on stderr and exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sr_teach import __version__
from sr_teach.datasets import available_datasets, resolve_data_dir
from sr_teach.device import DeviceNotAvailableError, pick_device
from sr_teach.tools.download import DownloadError
from sr_teach.images import ImageError, load_image, save_image
from sr_teach.interpolation import METHODS


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 1."""


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command_info(arguments: argparse.Namespace) -> None:
    import torch

    from sr_teach.device import describe_device

    print(f"sr_teach {__version__} on Python {platform.python_version()} ({platform.platform()})")
    for name in ("torch", "numpy", "pillow", "matplotlib", "ipywidgets", "jupyterlab", "jupyterlab_widgets"):
        print(f"  {name:<19}{package_version(name)}")
    device = pick_device("auto")
    print(f"training device: {describe_device(device)} (torch threads: {torch.get_num_threads()})")
    root = resolve_data_dir(arguments.data_dir)
    sets = available_datasets(arguments.data_dir)
    print(f"data directory:  {root} ({'found: ' + ', '.join(sets) if sets else 'no sets found'})")
    widgets_ok = package_version("ipywidgets") != "not installed" and (
        package_version("jupyterlab_widgets") != "not installed"
    )
    print(
        "widgets:         "
        + ("will render in JupyterLab and Notebook 7" if widgets_ok
           else "ipywidgets or jupyterlab_widgets missing: lessons fall back to static figures")
    )


def make_upscaler(arguments: argparse.Namespace) -> tuple[Callable[[torch.Tensor, int], torch.Tensor], str]:
    """The upscaler that --model (a shipped model or a checkpoint) or --method names, and its label."""
    from sr_teach.evaluation import interpolation_upscaler, model_upscaler

    if arguments.model is None:
        if arguments.method not in METHODS:
            raise CommandError(f"unknown method {arguments.method!r}; choose one of {', '.join(METHODS)}")
        return interpolation_upscaler(arguments.method), arguments.method
    from sr_teach.pretrained import load_model

    if float(arguments.scale) != int(arguments.scale):
        raise CommandError(f"trained models enlarge by whole factors; --scale {arguments.scale:g} is not one")
    model = load_model(arguments.model, int(arguments.scale), device=pick_device(arguments.device))

    return model_upscaler(model), str(arguments.model)


def command_evaluate(arguments: argparse.Namespace) -> None:
    from sr_teach.evaluation import evaluate

    upscaler, label = make_upscaler(arguments)
    result = evaluate(
        upscaler, arguments.dataset, arguments.scale, data_dir=arguments.data_dir, method=label,
        y_channel=not arguments.rgb, crop_border=arguments.crop_border,
    )
    print(json.dumps(result.to_dict(), indent=2) if arguments.json else result.table())


def command_upscale(arguments: argparse.Namespace) -> None:
    output = Path(arguments.output)
    if output.exists() and not arguments.force:
        raise CommandError(f"{output} exists; pass --force to overwrite it")
    if arguments.scale <= 0:
        raise CommandError(f"--scale must be positive, not {arguments.scale}")
    upscaler, label = make_upscaler(arguments)
    image = load_image(arguments.input)
    result = upscaler(image, int(arguments.scale) if arguments.model else arguments.scale)
    save_image(result, output, overwrite=arguments.force)
    print(f"wrote {output} ({result.shape[-1]}x{result.shape[-2]}, {label} x{arguments.scale:g})")


def command_train(arguments: argparse.Namespace) -> None:
    from sr_teach.degradations import DegradationConfig
    from sr_teach.experiment import Experiment, ExperimentConfig
    from sr_teach.training import TrainConfig

    output = Path(arguments.output)
    if output.exists() and not arguments.force and arguments.resume != arguments.output:
        raise CommandError(f"{output} exists; pass --force to overwrite it, or --resume {output} to continue it")
    if arguments.steps is None and arguments.seconds is None:
        raise CommandError("say how long to train: --steps N and/or --seconds T")
    if arguments.resume:
        experiment = Experiment.resume(arguments.resume)
        print(f"resuming {arguments.resume} at step {experiment.trainer.step}")
    else:
        total = arguments.total_steps or arguments.steps or 10**6
        config = ExperimentConfig(
            model=arguments.model, scale=arguments.scale, extra_scales=tuple(arguments.extra_scales),
            num_channels=arguments.channels, data=tuple(arguments.data), patch_size=arguments.patch_size,
            batch_size=arguments.batch_size, augment=arguments.augment, seed=arguments.seed,
            validation_fraction=arguments.validation_fraction,
            degradation=DegradationConfig(method=arguments.degradation),
            train=TrainConfig(
                learning_rate=arguments.lr, loss=arguments.loss, total_steps=total,
                lr_schedule=arguments.schedule, device=arguments.device,
                validation_every=arguments.validation_every,
            ),
        )
        experiment = Experiment(config)
    device = experiment.trainer.device
    print(f"training {arguments.model} x{arguments.scale} on {len(experiment.train_paths)} images "
          f"({len(experiment.validation_paths)} held out for validation) on {device}")
    history = experiment.train(steps=arguments.steps, seconds=arguments.seconds, progress=not arguments.quiet)
    if history.stop_message:
        print(history.stop_message)
    experiment.save(output, overwrite=True)
    best = experiment.trainer.best_validation_psnr
    summary = f"validation PSNR {best:.2f} dB (step {experiment.trainer.best_validation_step})" if best > -1e9 else ""
    print(f"stopped after step {experiment.trainer.step} ({history.stop_reason}); {summary}; wrote {output}")


def command_download(arguments: argparse.Namespace) -> None:
    from sr_teach.tools.download import download_dataset
    from sr_teach.tools.sources import find_source

    names = list(dict.fromkeys(arguments.names))  # `download Set5 Set5` installs Set5 once
    for name in names:
        find_source(name)  # a misspelt name stops the command before anything is downloaded
    if arguments.from_path is not None and len(names) > 1:
        raise CommandError(
            f"--from installs one set from one archive or folder; give one NAME, e.g. "
            f"`sr-teach download {names[0]} --from {arguments.from_path}`, then the same for {', '.join(names[1:])}"
        )
    for name in names:
        download_dataset(
            name, resolve_data_dir(arguments.data_dir), force=arguments.force,
            allow_unverified=arguments.allow_unverified, from_path=arguments.from_path,
        )  # prints "NAME: installed in DIR"


def command_zoo(arguments: argparse.Namespace) -> None:
    from sr_teach.tools.zoo import main as zoo_main

    zoo_main(arguments.zoo_arguments)


def command_benchmark(arguments: argparse.Namespace) -> None:
    from sr_teach.tools.benchmark import benchmark, markdown_table, write_into_readme

    def report(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = benchmark(tuple(arguments.scales), data_dir=arguments.data_dir, repeats=arguments.repeats, progress=report)
    table = markdown_table(rows)
    print(table)
    if arguments.readme:
        write_into_readme(table, arguments.readme)
        print(f"wrote the table into {arguments.readme}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sr-teach", description="Learn image super-resolution by doing.")
    parser.add_argument("--version", action="version", version=f"sr_teach {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_data_dir(command: argparse.ArgumentParser) -> None:
        command.add_argument("--data-dir", help="folder of datasets (default: $SR_TEACH_DATA or ~/.cache/sr_teach/datasets)")

    info = commands.add_parser("info", help="versions, training device, data directory, widgets")
    add_data_dir(info)
    info.set_defaults(run=command_info)

    def add_model(command: argparse.ArgumentParser) -> None:
        command.add_argument("--method", default="bicubic", help=f"interpolation, one of: {', '.join(METHODS)}")
        command.add_argument("--model", help="a shipped model name (e.g. espcn) or a checkpoint file; overrides --method")
        command.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")

    evaluate = commands.add_parser("evaluate", help="PSNR/SSIM of an upscaler on a benchmark set")
    add_model(evaluate)
    evaluate.add_argument("--dataset", default="Set5", help="a set in the data directory, or 'bundled'")
    evaluate.add_argument("--scale", type=int, default=2)
    evaluate.add_argument("--crop-border", type=int, default=None, help="pixels cut from each edge (default: the scale)")
    evaluate.add_argument("--rgb", action="store_true", help="measure on RGB instead of the Y channel")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_dir(evaluate)
    evaluate.set_defaults(run=command_evaluate)

    upscale = commands.add_parser("upscale", help="enlarge an image file")
    upscale.add_argument("input", help="an image file Pillow can read")
    upscale.add_argument("output", help="where to write the result (PNG recommended)")
    upscale.add_argument("--scale", type=float, required=True, help="enlargement factor, e.g. 2, 3, 4 or 2.5")
    add_model(upscale)
    upscale.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    upscale.set_defaults(run=command_upscale)

    from sr_teach.experiment import AUGMENTATIONS
    from sr_teach.losses import LOSSES
    from sr_teach.models import MODELS

    train = commands.add_parser("train", help="train a model and write a checkpoint")
    train.add_argument("--model", required=True, choices=list(MODELS), help="architecture")
    train.add_argument("--scale", type=int, required=True)
    train.add_argument("--extra-scales", type=int, nargs="*", default=[], help="more scales for a pre-upsampling model")
    train.add_argument("--data", nargs="*", default=[], help="folders of HR training images (default: the bundled photos)")
    train.add_argument("--steps", type=int, help="optimizer steps to run")
    train.add_argument("--seconds", type=float, help="wall-clock seconds to run (whichever of steps/seconds ends first)")
    train.add_argument("--total-steps", type=int, help="length of the planned run for the learning-rate schedule")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (Adam)")
    train.add_argument("--schedule", default="constant", choices=["constant", "cosine", "step"])
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--patch-size", type=int, default=17, help="LR patch side in pixels")
    train.add_argument("--loss", default="mse", choices=list(LOSSES))
    train.add_argument("--augment", default="flips", choices=list(AUGMENTATIONS))
    train.add_argument("--degradation", default="bicubic", help="how LR images are made (see sr_teach.degradations)")
    train.add_argument("--channels", type=int, default=1, choices=[1, 3], help="1 = Y channel (as the papers), 3 = RGB")
    train.add_argument("--validation-fraction", type=float, default=0.1, help="training images held out to pick the best weights")
    train.add_argument("--validation-every", type=int, default=200, help="steps between validations")
    train.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", help="continue the run saved in this checkpoint")
    train.add_argument("--output", required=True, help="checkpoint file to write")
    train.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=command_train)

    download = commands.add_parser("download", help="fetch standard sets from their public sources")
    download.add_argument("names", nargs="+", help="e.g. Set5 Set14 BSD100 Urban100")
    download.add_argument("--force", action="store_true", help="replace a set that is already there")
    download.add_argument(
        "--from", dest="from_path", metavar="ARCHIVE_OR_FOLDER",
        help="no internet: install one set from its archive fetched on another machine (checked by the same "
        "checksum), or from the folder it was unpacked into (needs --allow-unverified)",
    )
    download.add_argument(
        "--allow-unverified", action="store_true",
        help="install a set whose source publishes no checksum (the computed SHA-256 is printed)",
    )
    add_data_dir(download)
    download.set_defaults(run=command_download)

    zoo = commands.add_parser(
        "zoo", add_help=False, help="train the shipped models: `sr-teach zoo train espcn_x3`, `sr-teach zoo status`",
    )
    zoo.add_argument("zoo_arguments", nargs=argparse.REMAINDER, help="see `sr-teach zoo --help`")
    zoo.set_defaults(run=command_zoo)

    bench = commands.add_parser("benchmark", help="the README's results table: bicubic and every shipped model")
    bench.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    bench.add_argument("--repeats", type=int, default=3, help="timing runs per 1080p frame (the best counts)")
    bench.add_argument("--readme", help="also write the table between the markers of this README file")
    add_data_dir(bench)
    bench.set_defaults(run=command_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (CommandError, DeviceNotAvailableError, DownloadError, ImageError, OSError, ValueError) as error:
        print(f"sr-teach {arguments.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sr-teach {arguments.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
