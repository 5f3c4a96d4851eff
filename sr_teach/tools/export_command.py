"""`sr-teach export --onnx MODEL OUT.onnx`: a shipped model or a checkpoint as an ONNX file for ONNX Runtime.

The file runs images of any size, says its scale, family and channels in its metadata (for
`sr_teach.export.OnnxRuntimeModel`), and is written only after ONNX Runtime's output on a random image
matched the model's own forward within 1e-4. ESPCN and FSRCNN go out as their `SubPixelNetwork`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sr_teach.cli import CommandError, check_output
from sr_teach.models import MODELS


def command_export(arguments: argparse.Namespace) -> None:
    from sr_teach.export import require_onnx, export_onnx
    from sr_teach.pretrained import load_model

    name, output_path = arguments.onnx
    output = check_output(output_path, arguments.force)
    if output.suffix.lower() != ".onnx":
        raise CommandError(f"name the ONNX file with the suffix .onnx, e.g. {output.with_suffix('.onnx')}")
    require_onnx()  # before the model is loaded: a missing package is the first thing to hear about
    model = load_model(name, model_scale(name, arguments.scale), device="cpu")
    difference = export_onnx(model, output, overwrite=arguments.force)
    scale = f"x{model.scale}" if model.scale else "any scale"
    print(f"wrote {output} ({name}, {type(model).__name__} {scale}; ONNX Runtime matches PyTorch within {difference:.1g})")


def model_scale(name: str, scale: int | None) -> int:
    """The scale to build MODEL for: --scale, else the one its shipped file or checkpoint was trained for."""
    from sr_teach.checkpoints import load_checkpoint
    from sr_teach.pretrained import pretrained_models

    if scale is not None:
        if scale < 1:
            raise CommandError(f"--scale must be a whole number of at least 1, not {scale}")
        return scale
    path = Path(name)
    if name not in MODELS and (path.suffix in (".pt", ".pth", ".ckpt") or path.exists()):
        return load_checkpoint(path)["scale"] or 1  # the same test as pretrained.load_model: a file
    shipped = [info for info in pretrained_models() if name in (info.name, info.path.stem)]
    if not shipped:
        known = ", ".join(info.path.stem for info in pretrained_models())
        raise CommandError(f"no shipped model or checkpoint file called {name!r}; shipped: {known}")
    if len(shipped) > 1:
        raise CommandError(f"{name} is shipped at {', '.join(f'x{info.scales[0]}' for info in shipped)}: add --scale, "
                           f"or name one file, e.g. {shipped[0].path.stem}")
    return shipped[0].scales[0]


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """`sr-teach export` on the command line's parser (cli.build_parser calls this)."""
    export = commands.add_parser("export", help="write a model as an ONNX file for ONNX Runtime")
    export.add_argument("--onnx", nargs=2, required=True, metavar=("MODEL", "OUTPUT"),
                        help="a shipped model (e.g. espcn_x3) or a checkpoint file, and the .onnx file to write")
    export.add_argument("--scale", type=int, help="the scale to build it for (default: the one it was trained for)")
    export.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    export.set_defaults(run=command_export)
