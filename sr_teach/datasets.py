"""Where the images are: the bundled demo photos and the standard SR benchmark sets.

The sets of the literature (Set5, Set14, BSD100, T91, DIV2K, ...) have no licence that lets us
ship them, so sr_teach reads them from a *data directory* laid out as

    DATA_DIR/NAME/HR/<image>.png                 high-resolution ground truth (or NAME/*.png)
    DATA_DIR/NAME/LR_bicubic/X<s>/<image>.png    optional: the MATLAB-bicubic LR inputs at scale s

The data directory is the `data_dir` argument (`--data-dir`), else $SR_TEACH_DATA, else
~/.cache/sr_teach/datasets (where `sr-teach download` puts sets). The set "bundled" is the
CC0/public-domain photos shipped with the package, so every lesson runs offline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sr_teach.degradations import check_scale, downscale, mod_crop
from sr_teach.images import data_folder, load_image, quantize

ENVIRONMENT_VARIABLE = "SR_TEACH_DATA"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BUNDLED = "bundled"


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: `explicit`, else $SR_TEACH_DATA, else ~/.cache/sr_teach/datasets."""
    if explicit is not None:
        return Path(explicit).expanduser()
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_environment:
        return Path(from_environment).expanduser()
    return Path.home() / ".cache" / "sr_teach" / "datasets"


def find_images(folders: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """All image files under `folders`, recursively, sorted.

    Works for flat folders (T91/*.png) and for the benchmark layout NAME/HR/*.png: where a folder has
    an `HR` subfolder, only that one is searched, so NAME/LR_bicubic/ never passes for HR images.
    Hidden files and folders (.ipynb_checkpoints) are skipped.
    """
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    found: list[Path] = []
    for folder in map(Path, folders):
        if folder.is_file():
            raise NotADirectoryError(f"{folder} is a file; give the folder that holds the images ({folder.parent})")
        if not folder.is_dir():
            raise FileNotFoundError(f"The image folder {folder} does not exist")
        in_folder = []
        for root, subfolders, files in os.walk(folder):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            high_resolution = [name for name in subfolders if name.lower() == "hr"]
            if high_resolution:
                subfolders[:] = high_resolution
            in_folder += [
                Path(root) / name
                for name in files
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
            ]
        if not in_folder:
            raise FileNotFoundError(f"No images ({' '.join(IMAGE_SUFFIXES)}) found in {folder}")
        found += in_folder
    return sorted(set(found))


def dataset_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of a set (its images are `find_images(folder)`), with a helpful error when it is missing."""
    if name == BUNDLED:
        return data_folder()
    root = resolve_data_dir(data_dir)
    if _holds_a_set(root / name):
        return root / name
    found = available_datasets(data_dir)
    raise FileNotFoundError(
        f"Dataset {name!r} was not found in the data directory {root} (looked for {root / name / 'HR'}). "
        f"Sets found there: {', '.join(found) or 'none'}. Point --data-dir or ${ENVIRONMENT_VARIABLE} at a "
        f"folder laid out as NAME/HR/*.png, run `sr-teach download {name}` if you are online, or use "
        f"the dataset {BUNDLED!r} (the photos shipped with sr_teach)."
    )


def available_datasets(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the sets found in the data directory (folders holding images or an HR folder)."""
    root = resolve_data_dir(data_dir)
    return sorted(folder.name for folder in root.iterdir() if _holds_a_set(folder)) if root.is_dir() else []


def _holds_a_set(folder: Path) -> bool:
    """A visible folder with images in it, or in its HR folder (the benchmark layout)."""
    if not folder.is_dir() or folder.name.startswith("."):
        return False
    images_here = folder / "HR" if (folder / "HR").is_dir() else folder
    return any(path.suffix.lower() in IMAGE_SUFFIXES for path in images_here.iterdir())


@dataclass
class BenchmarkImage:
    """One test image under the standard protocol: HR mod-cropped to the scale, and its LR input."""

    name: str
    lr_image: torch.Tensor  # (C, H, W)
    hr_image: torch.Tensor  # (C, scale H, scale W)
    lr_from_file: bool  # True: read from LR_bicubic; False: made here by MATLAB-bicubic downscale


def benchmark_images(
    name: str, scale: int, data_dir: str | os.PathLike | None = None, max_images: int | None = None
) -> list[BenchmarkImage]:
    """Load a set under the standard protocol at `scale`.

    The LR input is read from NAME/LR_bicubic/X<scale> when that file exists, otherwise made by
    `downscale` (MATLAB-compatible bicubic) and rounded to 8 bits, which reproduces those files. A gray HR image (such as
    Set14's bridge) is paired with a gray LR image, so both are measured alike.
    """
    scale = check_scale(scale)
    if scale == 1:
        raise ValueError("the benchmark protocol makes each input by shrinking its original, so at x1 every method "
                         "would be scored against the original itself; use a scale of 2 or more")
    hr_paths = find_images(dataset_folder(name, data_dir))[:max_images]
    lr_folder = None if name == BUNDLED else resolve_data_dir(data_dir) / name / "LR_bicubic" / f"X{scale}"
    images = []
    for hr_path in hr_paths:
        hr_image = mod_crop(load_image(hr_path), scale)
        mode = "gray" if hr_image.shape[0] == 1 else "rgb"
        lr_path = lr_folder / f"{hr_path.stem}.png" if lr_folder is not None else None
        if lr_path is not None and lr_path.exists():
            lr_image = load_image(lr_path, mode=mode)
            expected = (hr_image.shape[-2] // scale, hr_image.shape[-1] // scale)
            if tuple(lr_image.shape[-2:]) != expected:
                raise ValueError(
                    f"{lr_path} is {tuple(lr_image.shape[-2:])} pixels but the mod-cropped HR image at "
                    f"x{scale} needs {expected}: is it the LR of another scale?"
                )
            images.append(BenchmarkImage(hr_path.stem, lr_image, hr_image, lr_from_file=True))
        else:
            lr_image = quantize(downscale(hr_image, scale))  # 8-bit, like the LR files it stands in for
            images.append(BenchmarkImage(hr_path.stem, lr_image, hr_image, lr_from_file=False))
    return images
