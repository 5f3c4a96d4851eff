"""Bad inputs and faults found by probing: each gets one clear line, a non-zero exit, and loses nothing.

Each test here failed before its fix (issue 11's list, item by item).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from sr_teach.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from sr_teach.files import current_umask, write_atomically
from sr_teach.images import save_image
from sr_teach.models import ESPCN


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- 2. file modes


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("save", ["image", "checkpoint"])
def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path: Path, save: str) -> None:
    def write(path: Path) -> None:
        if save == "image":
            save_image(torch.rand(3, 8, 8), path, overwrite=True)
        else:
            save_checkpoint(path, ESPCN(scale=2), overwrite=True)

    mask = os.umask(0o022)
    try:
        new = tmp_path / ("new.png" if save == "image" else "new.pt")
        write(new)
        assert mode_of(new) == 0o644
        os.umask(0o077)
        private = tmp_path / ("private.png" if save == "image" else "private.pt")
        write(private)
        assert mode_of(private) == 0o600
        os.umask(0o022)
        new.chmod(0o664)
        write(new)  # --force on an existing file keeps its mode
        assert mode_of(new) == 0o664
    finally:
        os.umask(mask)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no temporaries


def test_write_atomically_leaves_nothing_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "result.bin"
    target.write_bytes(b"old")

    def fail(file) -> None:
        file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, fail, overwrite=True)
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["result.bin"]


def test_reading_the_umask_leaves_it_as_it_was() -> None:
    saved = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # still set after being read
    finally:
        os.umask(saved)


# ---------------------------------------------------------------- 1, 9, 12. checkpoints


def flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_checkpoint_with_flipped_bytes_is_refused(tmp_path: Path) -> None:
    import zipfile

    path = save_checkpoint(tmp_path / "espcn.pt", ESPCN(scale=2))
    with zipfile.ZipFile(path) as archive:  # a byte in the middle of the largest weight tensor
        entry = max(archive.infolist(), key=lambda info: info.file_size)
        with open(path, "rb") as file:  # where the entry's bytes start: after its local header
            file.seek(entry.header_offset + 26)
            name_length, extra_length = (int.from_bytes(file.read(2), "little") for _ in range(2))
        start = entry.header_offset + 30 + name_length + extra_length
    flip_byte(path, start + entry.file_size // 2)
    with pytest.raises(CheckpointError, match=f"damaged: the bytes of its entry '{entry.filename}'"):
        load_checkpoint(path)


class _Calls:
    def __reduce__(self):
        return (os.system, ("echo this ran",))


def test_a_checkpoint_holding_code_is_refused_as_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "sr_teach-checkpoint", "payload": _Calls()}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "contains Python code" in message and "system" in message and "was not loaded" in message
    assert "damaged" not in message and "weights_only=False" not in message and "\n" not in message


@pytest.mark.parametrize("change", ["extra key", "not a dict", "unknown model"])
def test_a_checkpoint_with_a_bad_config_is_refused(tmp_path: Path, change: str) -> None:
    path = save_checkpoint(tmp_path / "espcn.pt", ESPCN(scale=2))
    checkpoint = torch.load(path, weights_only=True)
    if change == "extra key":
        checkpoint["model_config"]["dropout"] = 0.5
    elif change == "not a dict":
        checkpoint["model_config"] = [2, 1]
    else:
        checkpoint["model_name"] = "edsr"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="model_config.*list|cannot be rebuilt"):
        model_from_checkpoint(load_checkpoint(path))
