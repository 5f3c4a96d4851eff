"""sr_teach.datasets: where the data directory is, the layouts it reads, and its error messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_teach.datasets import (
    available_datasets,
    benchmark_images,
    dataset_folder,
    find_images,
    resolve_data_dir,
)
from sr_teach.degradations import downscale, mod_crop
from sr_teach.images import data_folder, load_image, quantize, save_image


def make_set(root: Path, name: str, tiny_images: dict[str, Path], with_hr_level: bool = True) -> Path:
    """Copy the tiny images into root/name/HR (or root/name when flat); return that folder."""
    folder = root / name / "HR" if with_hr_level else root / name
    folder.mkdir(parents=True)
    for path in tiny_images.values():
        shutil.copy(path, folder / path.name)
    return folder


# ---------------------------------------------------------------- the data directory


def test_resolve_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_TEACH_DATA", str(tmp_path / "from_environment"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"  # the argument wins
    assert resolve_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "from_environment"  # then the variable
    monkeypatch.delenv("SR_TEACH_DATA")
    assert resolve_data_dir() == Path.home() / ".cache" / "sr_teach" / "datasets"  # then the default
    monkeypatch.setenv("SR_TEACH_DATA", "")  # an empty variable counts as unset
    assert resolve_data_dir() == Path.home() / ".cache" / "sr_teach" / "datasets"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir("~/sets") == tmp_path / "home" / "sets"  # ~ is expanded


def test_a_missing_set_has_a_helpful_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_TEACH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        benchmark_images("Set5", 2)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "SR_TEACH_DATA" in message
    assert "sr-teach download Set5" in message
    assert "bundled" in message  # the offline alternative


def test_missing_message_lists_the_sets_that_are_there(tmp_path: Path, tiny_images) -> None:
    make_set(tmp_path / "data", "Tiny", tiny_images)
    with pytest.raises(FileNotFoundError, match="Sets found there: Tiny"):
        dataset_folder("Set14", tmp_path / "data")


def test_available_datasets(tmp_path: Path, tiny_images) -> None:
    root = tmp_path / "data"
    make_set(root, "Nested", tiny_images)
    make_set(root, "Flat", tiny_images, with_hr_level=False)
    (root / "NoImages").mkdir()
    (root / "NoImages" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    assert available_datasets(root) == ["Flat", "Nested"]
    assert available_datasets(tmp_path / "does_not_exist") == []


def test_find_images_skips_hidden_and_other_files(tmp_path: Path, tiny_images) -> None:
    folder = make_set(tmp_path, "Set", tiny_images, with_hr_level=False)
    (folder / "README.txt").write_text("hello")
    shutil.copy(tiny_images["gray"], folder / ".partial.png")
    (folder / "sub.png").mkdir()
    assert [path.name for path in find_images(folder)] == ["colour.png", "gray.png", "odd.png"]


def test_find_images_flat_nested_and_benchmark_layout(tmp_path):
    image = torch.rand(3, 8, 8)
    for relative in [
        "flat/a.png",
        "flat/sub/b.JPG",
        "flat/.ipynb_checkpoints/a-checkpoint.png",
        "flat/notes.txt",
        "Set5/HR/baby.png",
        "Set5/LR_bicubic/X2/baby.png",
        "sets/Set14/HR/x.bmp",
        "sets/Set14/LR_bicubic/X3/x.png",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".txt"):
            (tmp_path / relative).write_text("not an image")
        else:
            save_image(image, tmp_path / relative)
    assert find_images(tmp_path / "flat") == [tmp_path / "flat/a.png", tmp_path / "flat/sub/b.JPG"]
    assert find_images(tmp_path / "Set5") == [tmp_path / "Set5/HR/baby.png"]
    assert find_images([tmp_path / "sets", str(tmp_path / "Set5")]) == [
        tmp_path / "Set5/HR/baby.png",
        tmp_path / "sets/Set14/HR/x.bmp",
    ]


def test_find_images_names_the_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="empty"):
        find_images(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing"):
        find_images(tmp_path / "missing")


# ---------------------------------------------------------------- layouts


@pytest.mark.parametrize("with_hr_level", [True, False])
def test_layouts_and_lr_made_by_downscale(tmp_path: Path, tiny_images, with_hr_level: bool) -> None:
    folder = make_set(tmp_path, "Tiny", tiny_images, with_hr_level)
    assert dataset_folder("Tiny", tmp_path) == tmp_path / "Tiny"
    assert find_images(dataset_folder("Tiny", tmp_path)) == [folder / f"{name}.png" for name in ("colour", "gray", "odd")]
    images = benchmark_images("Tiny", 3, data_dir=tmp_path)
    assert [image.name for image in images] == ["colour", "gray", "odd"]
    for image in images:
        hr_image = mod_crop(load_image(folder / f"{image.name}.png"), 3)
        assert torch.equal(image.hr_image, hr_image)
        assert not image.lr_from_file
        assert torch.equal(image.lr_image, quantize(downscale(hr_image, 3)))  # 8-bit, like LR files
        assert image.hr_image.shape[-2:] == (3 * image.lr_image.shape[-2], 3 * image.lr_image.shape[-1])
    assert images[2].hr_image.shape == (3, 24, 36)  # odd: 25 x 37 cropped to multiples of 3
    assert len(benchmark_images("Tiny", 3, data_dir=tmp_path, max_images=2)) == 2


def test_lr_files_are_used_when_present(tmp_path: Path, tiny_images) -> None:
    make_set(tmp_path, "Tiny", tiny_images)
    lr_folder = tmp_path / "Tiny" / "LR_bicubic" / "X2"
    lr_folder.mkdir(parents=True)
    marked = downscale(load_image(tiny_images["colour"]), 2) * 0 + 0.5  # not what downscale would give
    save_image(marked, lr_folder / "colour.png")
    images = {image.name: image for image in benchmark_images("Tiny", 2, data_dir=tmp_path)}
    assert images["colour"].lr_from_file
    assert torch.allclose(images["colour"].lr_image, torch.full_like(images["colour"].lr_image, 128 / 255))
    assert not images["odd"].lr_from_file  # no file for it: made by downscale


def test_lr_of_the_wrong_size(tmp_path: Path, tiny_images) -> None:
    make_set(tmp_path, "Tiny", tiny_images)
    lr_folder = tmp_path / "Tiny" / "LR_bicubic" / "X2"
    lr_folder.mkdir(parents=True)
    hr_image = load_image(tiny_images["colour"])  # 26 x 30
    save_image(downscale(hr_image, 3), lr_folder / "colour.png")  # the x3 image filed under X2
    with pytest.raises(ValueError, match="another scale"):
        benchmark_images("Tiny", 2, data_dir=tmp_path)


def test_gray_hr_pairs_with_one_channel_lr(tmp_path: Path, tiny_images) -> None:
    make_set(tmp_path, "Tiny", {"gray": tiny_images["gray"]})
    lr_folder = tmp_path / "Tiny" / "LR_bicubic" / "X2"
    lr_folder.mkdir(parents=True)
    gray_lr = downscale(load_image(tiny_images["gray"]), 2)
    save_image(gray_lr.expand(3, -1, -1), lr_folder / "gray.png")  # stored as RGB, as in the shared sets
    (image,) = benchmark_images("Tiny", 2, data_dir=tmp_path)
    assert image.lr_from_file
    assert image.hr_image.shape == (1, 24, 28)
    assert image.lr_image.shape == (1, 12, 14)
    assert torch.equal((image.lr_image * 255).round(), (gray_lr * 255).round())


def test_colour_hr_with_a_gray_lr_file_gets_three_channels(tmp_path: Path, tiny_images) -> None:
    make_set(tmp_path, "Tiny", {"colour": tiny_images["colour"]})
    lr_folder = tmp_path / "Tiny" / "LR_bicubic" / "X2"
    lr_folder.mkdir(parents=True)
    Image.fromarray(np.full((13, 15), 90, dtype=np.uint8)).save(lr_folder / "colour.png")
    (image,) = benchmark_images("Tiny", 2, data_dir=tmp_path)
    assert image.lr_image.shape == (3, 13, 15)


def test_bundled_needs_no_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_TEACH_DATA", str(tmp_path / "nothing_here"))
    assert dataset_folder("bundled") == data_folder()
    (image,) = benchmark_images("bundled", 4, max_images=1)
    assert image.name == "astronaut" and not image.lr_from_file
    assert image.lr_image.shape == (3, 128, 128)


def test_unsupported_scale() -> None:
    with pytest.raises(ValueError, match="whole number"):
        benchmark_images("bundled", 0)
    with pytest.raises(ValueError, match="scored against the original itself"):  # x1: nothing to restore
        benchmark_images("bundled", 1)


# ---------------------------------------------------------------- the shared sets


@pytest.mark.needs_datasets("Set14", "T91")
def test_shared_sets(datasets_dir: Path) -> None:
    assert {"Set5", "Set14", "T91"} <= set(available_datasets(datasets_dir))
    assert "matlab_reference" not in available_datasets(datasets_dir)  # no images at its top level
    assert find_images(dataset_folder("T91", datasets_dir))[0].parent == datasets_dir / "T91"  # the flat layout
    assert find_images(dataset_folder("Set14", datasets_dir))[0] == datasets_dir / "Set14" / "HR" / "baboon.png"
    images = benchmark_images("Set14", 4, data_dir=datasets_dir, max_images=3)
    assert [image.name for image in images] == ["baboon", "barbara", "bridge"]
    assert all(image.lr_from_file for image in images)
    bridge = images[2]  # single-channel HR, LR file stored as RGB
    assert bridge.hr_image.shape[0] == 1 and bridge.lr_image.shape[0] == 1
    assert images[0].hr_image.shape[0] == 3 and images[0].lr_image.shape[0] == 3
