"""The `sr-teach` command line: `sr-teach info`, `evaluate`, `upscale`, `download`.

Every command reports bad input (missing or damaged images, unknown sets, unsupported scales,
existing output files) as one clear line on stderr and exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from sr_teach import __version__
from sr_teach.datasets import available_datasets, resolve_data_dir
from sr_teach.download import DownloadError
from sr_teach.images import ImageError, load_image, save_image
from sr_teach.interpolation import METHODS, resize


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 1."""


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command_info(arguments: argparse.Namespace) -> None:
    import torch

    from sr_teach.device import describe_device, pick_device

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


def command_evaluate(arguments: argparse.Namespace) -> None:
    from sr_teach.evaluation import evaluate, interpolation_upscaler

    if arguments.method not in METHODS:
        raise CommandError(f"unknown method {arguments.method!r}; choose one of {', '.join(METHODS)}")
    result = evaluate(
        interpolation_upscaler(arguments.method), arguments.dataset, arguments.scale,
        data_dir=arguments.data_dir, method=arguments.method, y_channel=not arguments.rgb,
        crop_border=arguments.crop_border,
    )
    print(json.dumps(result.to_dict(), indent=2) if arguments.json else result.table())


def command_upscale(arguments: argparse.Namespace) -> None:
    output = Path(arguments.output)
    if output.exists() and not arguments.force:
        raise CommandError(f"{output} exists; pass --force to overwrite it")
    if arguments.method not in METHODS:
        raise CommandError(f"unknown method {arguments.method!r}; choose one of {', '.join(METHODS)}")
    if arguments.scale <= 0:
        raise CommandError(f"--scale must be positive, not {arguments.scale}")
    image = load_image(arguments.input)
    result = resize(image, scale=arguments.scale, method=arguments.method)
    save_image(result, output, overwrite=arguments.force)
    print(f"wrote {output} ({result.shape[-1]}x{result.shape[-2]}, {arguments.method} x{arguments.scale:g})")


def command_download(arguments: argparse.Namespace) -> None:
    from sr_teach.download import download_dataset

    for name in arguments.names:
        path = download_dataset(
            name, resolve_data_dir(arguments.data_dir), force=arguments.force,
            allow_unverified=arguments.allow_unverified,
        )
        print(f"{name}: ready in {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sr-teach", description="Learn image super-resolution by doing.")
    parser.add_argument("--version", action="version", version=f"sr_teach {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_data_dir(command: argparse.ArgumentParser) -> None:
        command.add_argument("--data-dir", help="folder of datasets (default: $SR_TEACH_DATA or ~/.cache/sr_teach/datasets)")

    info = commands.add_parser("info", help="versions, training device, data directory, widgets")
    add_data_dir(info)
    info.set_defaults(run=command_info)

    evaluate = commands.add_parser("evaluate", help="PSNR/SSIM of an upscaler on a benchmark set")
    evaluate.add_argument("--method", default="bicubic", help=f"one of: {', '.join(METHODS)}")
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
    upscale.add_argument("--method", default="bicubic", help=f"one of: {', '.join(METHODS)}")
    upscale.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    upscale.set_defaults(run=command_upscale)

    download = commands.add_parser("download", help="fetch standard sets from their public sources")
    download.add_argument("names", nargs="+", help="e.g. Set5 Set14 BSD100 Urban100")
    download.add_argument("--force", action="store_true", help="replace a set that is already there")
    download.add_argument(
        "--allow-unverified", action="store_true",
        help="install a set whose source publishes no checksum (the computed SHA-256 is printed)",
    )
    add_data_dir(download)
    download.set_defaults(run=command_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (CommandError, DownloadError, ImageError, OSError, ValueError) as error:
        print(f"sr-teach {arguments.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sr-teach {arguments.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
