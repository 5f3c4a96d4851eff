"""Checkpoints you can trust: weights and how to rebuild the model, in a file that cannot run code.

A checkpoint holds only tensors and plain Python values (`state_dict` + the model's config, the
training history, and optionally the trainer's whole state for an exact resume), so it loads with
`torch.load(path, weights_only=True)`, which refuses to run code hidden in a downloaded file. It is
written to a temporary file and renamed into place, so a crash never leaves half a file.

    save_checkpoint("espcn_x3.pt", model, trainer.history, trainer.config)
    model = model_from_checkpoint(load_checkpoint("espcn_x3.pt", model_name="espcn", scale=3))
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sr_teach import models
from sr_teach.device import pick_device
from sr_teach.files import write_atomically

if TYPE_CHECKING:
    from sr_teach.training import History, TrainConfig

FORMAT = "sr_teach-checkpoint"
VERSION = 1
KEYS = ("model_name", "model_config", "state_dict", "history", "train_config", "extra")


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be used: corrupt, foreign, or for another model."""


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    history: History | None = None,
    train_config: TrainConfig | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    scale: int | None = None,
    model_name: str | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    trainer_state: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the model's weights and how to rebuild it, loadable with weights_only=True.

    model_name defaults to the model's name in sr_teach.models.MODELS; state_dict to the model's
    current weights (pass trainer.best_state to save the best); trainer_state, trainer.state_dict(),
    lets the run resume exactly. (Tensors of another device load onto the CPU.)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    config = getattr(model, "config", None)  # sr_teach's models: a dataclass; others may have a config()
    model_config = asdict(config) if is_dataclass(config) else dict(config()) if callable(config) else {}
    if scale is None and isinstance(model_config.get("scale"), int):
        scale = model_config["scale"]
    weights = state_dict if state_dict is not None else model.state_dict()
    checkpoint = {
        "format": FORMAT,
        "format_version": VERSION,
        "model_name": model_name if model_name is not None else models.model_name(model),
        "model_config": model_config,
        "scale": scale,
        "state_dict": {name: value.detach().cpu() for name, value in weights.items()},
        "history": history.to_dict() if history is not None else None,
        "train_config": train_config.to_dict() if train_config is not None else None,
        "extra": dict(extra) if extra is not None else {},
        "trainer_state": trainer_state,
    }
    _check_plain(checkpoint, "checkpoint")

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda file: torch.save(checkpoint, file), overwrite=overwrite)


def load_checkpoint(
    path: str | os.PathLike, model_name: str | None = None, scale: int | None = None
) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint, with weights_only=True, and check it.

    model_name / scale, when given, must match the checkpoint's, so that ESPCN x3 weights are never
    silently used as x2 or loaded into SRCNN. Raises FileNotFoundError or CheckpointError.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint (damaged, truncated or another kind of file)")
    _check_integrity(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(_refusal(path, str(error))) from None
    except Exception as error:  # torch raises many types for bad files: zip, EOF, Runtime
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint (damaged or truncated?): "
                              f"{type(error).__name__}: {_first_sentence(str(error))}") from error

    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not an sr_teach checkpoint (no 'format': '{FORMAT}' entry); "
            "write checkpoints with sr_teach.checkpoints.save_checkpoint"
        )
    missing = [key for key in KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is an incomplete sr_teach checkpoint: missing {missing}")
    for key, kind in (("model_name", str), ("model_config", dict), ("state_dict", dict), ("extra", dict)):
        if not isinstance(checkpoint[key], kind):
            raise CheckpointError(f"{path} is not a valid sr_teach checkpoint: its {key!r} is a "
                                  f"{type(checkpoint[key]).__name__}, not a {kind.__name__}")
    if checkpoint.get("format_version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer sr_teach (format {checkpoint['format_version']}, "
                              f"this one reads up to {VERSION}); update sr_teach")
    broken = [name for name, value in checkpoint["state_dict"].items()
              if not isinstance(value, torch.Tensor) or (value.is_floating_point() and not value.isfinite().all())]
    if broken:
        raise CheckpointError(f"{path} holds NaN or infinite weights (in {broken[0]}): the run that wrote it diverged; "
                              "use an earlier checkpoint, or train again with a smaller learning rate")
    if model_name is not None and checkpoint["model_name"] != model_name:
        raise CheckpointError(f"{path} holds weights for model {checkpoint['model_name']!r}, not {model_name!r}")
    saved_scale = checkpoint.get("scale")
    if scale is not None and saved_scale is not None and int(saved_scale) != int(scale):
        raise CheckpointError(
            f"{path} was trained for scale x{saved_scale}, not x{scale}: a network learns one scale, "
            f"so use a x{scale} checkpoint (or train one)"
        )
    return checkpoint


def model_from_checkpoint(
    checkpoint: Mapping[str, Any],
    build_model: Callable[..., nn.Module] | None = None,
    device: str | torch.device = "cpu",
    **config_changes: Any,
) -> nn.Module:
    """Rebuild the model of a loaded checkpoint and load its weights (in eval mode).

    build_model(name, **config) defaults to sr_teach.models.build_model; config_changes replace
    entries of the saved config (say the scale a multi-scale model should serve).
    """
    name, config = checkpoint["model_name"], {**checkpoint["model_config"], **config_changes}
    try:
        model = (build_model or models.build_model)(name, **config)
    except (TypeError, ValueError) as error:  # an unknown model, a setting it does not take, a bad value
        raise CheckpointError(f"the checkpoint's model {name!r} cannot be rebuilt from its saved config {config}: "
                              f"{error}") from error
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"the weights do not fit the rebuilt {checkpoint['model_name']!r} model: {error}") from error
    return model.to(pick_device(device)).eval()


def _check_integrity(path: Path) -> None:
    """Refuse a file whose bytes changed since it was written: torch.load does not check the CRC-32
    that the zip archive stores for every entry, so a flipped byte would load as wrong weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # reads every entry and compares its CRC-32
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise CheckpointError(f"{path} is damaged ({error}); get a fresh copy of it, or train again") from error
    if damaged is not None:
        raise CheckpointError(f"{path} is damaged: the bytes of its entry {damaged!r} do not match the checksum "
                              "stored when it was written; get a fresh copy of it, or train again")


def _refusal(path: Path, message: str) -> str:
    """What to say when weights_only loading refused a file (PyTorch's message is long and suggests
    weights_only=False, which would run whatever the file holds)."""
    found = re.search(r"GLOBAL (\S+)", message)
    what = f" (it asks to call or build {found.group(1)})" if found else ""
    return (f"{path} contains Python code or objects, not only weights{what}, so it was not loaded: loading it "
            "could run code hidden in the file. sr_teach reads checkpoints written by save_checkpoint "
            "(for a model saved whole with torch.save(model), save its state_dict instead)")


def _first_sentence(message: str) -> str:
    return message.strip().split("\n")[0].split(". ")[0][:200]


def _check_plain(value: Any, where: str) -> None:
    """Refuse values that weights_only loading would reject, naming where they are."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; use str keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; checkpoints hold only tensors, numbers, strings, lists "
        "and dicts so that they load with weights_only=True"
    )
