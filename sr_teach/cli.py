"""The `sr-teach` command line: `sr-teach info`, `evaluate`, `upscale`, `train`, `download`.

Every command reports bad input (missing or damaged images, unknown sets, unsupported scales,
existing output files) as one clear line on stderr and exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from sr_teach import __version__
from sr_teach.datasets import available_datasets, resolve_data_dir
from sr_teach.device import DeviceNotAvailableError, pick_device
from sr_teach.distributed import launched
from sr_teach.tools.download import DownloadError
from sr_teach.images import MAX_PIXELS_VARIABLE, ImageError
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


def chosen_upscaler(arguments: argparse.Namespace) -> tuple[torch.nn.Module | str, str]:
    """The model that --model names (a shipped model or a checkpoint), else the --method's name; and its label."""
    if arguments.model is None:
        if arguments.method not in METHODS:
            raise CommandError(f"unknown method {arguments.method!r}; choose one of {', '.join(METHODS)}")
        return arguments.method, arguments.method
    from sr_teach.pretrained import load_model

    if float(arguments.scale) != int(arguments.scale):
        raise CommandError(f"trained models enlarge by whole factors; --scale {arguments.scale:g} is not one")
    return load_model(arguments.model, int(arguments.scale), device=pick_device(arguments.device)), str(arguments.model)


def make_upscaler(arguments: argparse.Namespace) -> tuple[Callable[[torch.Tensor, int], torch.Tensor], str]:
    """The upscaler that --model or --method names, as a function of (image, scale), and its label."""
    from sr_teach.evaluation import interpolation_upscaler, model_upscaler

    upscaler, label = chosen_upscaler(arguments)
    return (interpolation_upscaler(upscaler) if isinstance(upscaler, str) else model_upscaler(upscaler)), label


RESTORATION_METHODS = {"denoise": ("input", "bm3d", "nlm"), "jpeg": ("input",)}


def restoration_method(arguments: argparse.Namespace, task) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """The restorer that --model or --method names for `task`, and its label."""
    from sr_teach import classical
    from sr_teach.restoration import model_restorer

    if arguments.model is not None:
        from sr_teach.pretrained import load_model

        return model_restorer(load_model(arguments.model, 1, device=pick_device(arguments.device))), str(arguments.model)
    method = "input" if arguments.method == "bicubic" else arguments.method  # bicubic is --method's SR default
    if method not in RESTORATION_METHODS[task.kind]:
        raise CommandError(f"--method {method} does not restore {task.kind}; choose one of "
                           f"{', '.join(RESTORATION_METHODS[task.kind])} (input = the damaged image as it is), or --model")
    restorers = {"input": lambda image: image, "bm3d": lambda image: classical.bm3d_denoise(image, task.level),
                 "nlm": lambda image: classical.nlm_denoise(image, task.level)}
    return restorers[method], method


def command_evaluate_restoration(arguments: argparse.Namespace) -> None:
    from sr_teach.restoration import RestorationTask, evaluate_restoration

    level = arguments.sigma if arguments.task == "denoise" else arguments.quality
    if level is None:
        raise CommandError(f"--task {arguments.task} needs {'--sigma (e.g. 25)' if arguments.task == 'denoise' else '--quality (e.g. 10)'}")
    if arguments.crop_border not in (None, 0):
        raise CommandError("restoration tables measure the whole image: leave out --crop-border with --task")
    try:
        task = RestorationTask(arguments.task, level)
    except ValueError as error:
        raise CommandError(str(error)) from None
    restorer, label = restoration_method(arguments, task)
    result = evaluate_restoration(restorer, arguments.dataset, task, method=label, data_dir=arguments.data_dir,
                                  y_channel=not arguments.rgb)
    print(json.dumps(result.to_dict(), indent=2) if arguments.json else result.table())


def command_evaluate(arguments: argparse.Namespace) -> None:
    from sr_teach.evaluation import evaluate

    check_number("--crop-border", arguments.crop_border, 0, "0 or more pixels")
    if arguments.task is not None:
        return command_evaluate_restoration(arguments)
    if arguments.sigma is not None or arguments.quality is not None:
        raise CommandError("--sigma and --quality set a restoration task: add --task denoise or --task jpeg")
    upscaler, label = make_upscaler(arguments)
    result = evaluate(
        upscaler, arguments.dataset, arguments.scale, data_dir=arguments.data_dir, method=label,
        y_channel=not arguments.rgb, crop_border=arguments.crop_border,
    )
    print(json.dumps(result.to_dict(), indent=2) if arguments.json else result.table())


def check_number(option: str, value: float | None, minimum: float, what: str) -> None:
    """Refuse a missing-the-point number (NaN, infinite, too small) given for `option`."""
    if value is not None and not (math.isfinite(value) and value >= minimum):
        raise CommandError(f"{option} must be {what}, not {value:g}")


def check_output(path: str, force: bool, also: str = "") -> Path:
    """Refuse an output that exists (without --force) or cannot be written, before any work is done."""
    output = Path(path)
    if output.is_dir():
        raise CommandError(f"{output} is a folder; give a file name, e.g. {output / 'result.png'}")
    if output.exists() and not force:
        raise CommandError(f"{output} exists; pass --force to overwrite it{also}")
    if not output.parent.is_dir():
        raise CommandError(f"the folder {output.parent} does not exist; create it first")
    if not os.access(output.parent, os.W_OK):
        raise CommandError(f"cannot write into the folder {output.parent} (no permission); choose another output")
    return output


def command_restore(arguments: argparse.Namespace) -> None:
    from sr_teach.inference import upscale_file
    from sr_teach.pretrained import load_model

    output = check_output(arguments.output, arguments.force)
    if Image.registered_extensions().get(output.suffix.lower()) is None:
        raise CommandError(f"cannot tell an image format from the suffix of {output}; use .png (lossless) or .jpg")
    model = load_model(arguments.model, 1, device=pick_device(arguments.device))
    if model.in_channels != model.num_channels:
        raise CommandError(f"{arguments.model} takes {model.in_channels} input channels (a mask or gray in, colour out); "
                           "restore runs models that map an image to the same kind of image: use it from Python")
    height, width = upscale_file(arguments.input, output, model, 1, overwrite=arguments.force)
    print(f"wrote {output} ({width}x{height}, restored by {arguments.model})")


def command_upscale(arguments: argparse.Namespace) -> None:
    from sr_teach.inference import upscale_file

    output = check_output(arguments.output, arguments.force)
    if Image.registered_extensions().get(output.suffix.lower()) is None:
        raise CommandError(f"cannot tell an image format from the suffix of {output}; use .png (lossless) or .jpg")
    check_number("--scale", arguments.scale, 1, "a finite factor of at least 1 (upscale enlarges; sr_teach."
                 "degradations.downscale makes smaller images)")
    upscaler, label = chosen_upscaler(arguments)
    scale = arguments.scale if isinstance(upscaler, str) else int(arguments.scale)
    # A stripe at a time, from file to file: a 24-megapixel photo at x2 within a laptop's memory.
    height, width = upscale_file(arguments.input, output, upscaler, scale, overwrite=arguments.force)
    print(f"wrote {output} ({width}x{height}, {label} x{arguments.scale:g})")


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

    check_number("--repeats", arguments.repeats, 1, "at least 1")
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

    def add_max_pixels(command: argparse.ArgumentParser) -> None:
        command.add_argument("--max-pixels", type=int, help=f"largest image, in pixels, to read or make "
                             f"(default: ${MAX_PIXELS_VARIABLE} or sr_teach.images' limit)")

    def add_model(command: argparse.ArgumentParser) -> None:
        add_max_pixels(command)
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
    evaluate.add_argument("--task", choices=("denoise", "jpeg"),
                          help="restoration at the same size instead of enlarging: a set of clean images (Set12, "
                               "LIVE1_gray, Classic5), damaged by the published protocol")
    evaluate.add_argument("--sigma", type=float, help="with --task denoise: noise level on the 0..255 scale, e.g. 25")
    evaluate.add_argument("--quality", type=float, help="with --task jpeg: JPEG quality 1-95, e.g. 10")
    add_data_dir(evaluate)
    evaluate.set_defaults(run=command_evaluate)

    upscale = commands.add_parser("upscale", help="enlarge an image file")
    upscale.add_argument("input", help="an image file Pillow can read")
    upscale.add_argument("output", help="where to write the result (PNG recommended)")
    upscale.add_argument("--scale", type=float, required=True,
                         help="enlargement factor, at least 1: e.g. 2, 3, 4 or 2.5 (upscale never shrinks)")
    add_model(upscale)
    upscale.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    upscale.set_defaults(run=command_upscale)

    restore = commands.add_parser("restore", help="restore an image file at its size (denoise, remove JPEG artefacts)")
    restore.add_argument("input", help="an image file Pillow can read")
    restore.add_argument("output", help="where to write the result (PNG recommended)")
    restore.add_argument("--model", required=True, help="a shipped restoration model (e.g. dncnn_gray) or a checkpoint")
    restore.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    add_max_pixels(restore)
    restore.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    restore.set_defaults(run=command_restore)

    from sr_teach.tools.export_command import add_export_command
    from sr_teach.tools.train_command import add_train_command

    add_train_command(commands, add_max_pixels)
    add_export_command(commands)

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
    saved_limit = os.environ.get(MAX_PIXELS_VARIABLE)
    if getattr(arguments, "max_pixels", None) is not None:
        os.environ[MAX_PIXELS_VARIABLE] = str(arguments.max_pixels)  # read by sr_teach.images.check_pixels
    command = f"sr-teach {arguments.command}" + (f" (rank {os.environ.get('RANK')})" if launched() else "")
    try:
        status = arguments.run(arguments) or 0
    except (CommandError, DeviceNotAvailableError, DownloadError, ImageError, ImportError, OSError, ValueError) as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # under torchrun: another process failed (its own message is above), so this one stops
        if not launched():
            raise
        print(f"{command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    finally:  # main() may run inside a notebook or a test: leave the environment as it was
        if saved_limit is None:
            os.environ.pop(MAX_PIXELS_VARIABLE, None)
        else:
            os.environ[MAX_PIXELS_VARIABLE] = saved_limit
    return status


if __name__ == "__main__":  # python -m sr_teach.cli (torchrun -m sr_teach.cli): run the imported module's main,
    from sr_teach.cli import main as package_main  # whose CommandError is the one the subcommands raise

    sys.exit(package_main())
