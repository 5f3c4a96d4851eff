"""Bad inputs and faults found by probing: each gets one clear line, a non-zero exit, and loses nothing.

Each test here failed before its fix (issue 11's list, item by item).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sr_teach.checkpoints import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from sr_teach.cli import main
from sr_teach.files import current_umask, write_atomically
from sr_teach.images import save_image
from sr_teach.models import ESPCN
from sr_teach.pretrained import load_pretrained


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


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path: Path) -> None:
    model = ESPCN(scale=2)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    path = save_checkpoint(tmp_path / "diverged.pt", model)
    with pytest.raises(CheckpointError, match="NaN or infinite weights .*smaller learning rate"):
        load_checkpoint(path)


# ---------------------------------------------------------------- the command line


def run_cli(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_refused(status: int, err: str, *fragments: str) -> None:
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, lines
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.mark.parametrize(("arguments", "fragment"), [
    (["--seconds", "nan"], "--seconds must be a positive number"),
    (["--seconds", "-5"], "--seconds must be a positive number"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "2", "--scale", "0"], "at least 1"),
    (["--steps", "2", "--lr", "nan"], "--lr must be a positive number"),
])
def test_train_refuses_bad_numbers_before_any_work(capsys, tmp_path: Path, arguments: list[str],
                                                   fragment: str) -> None:
    base = ["train", "--model", "espcn", "--scale", "3", "--output", str(tmp_path / "run.pt")]
    status, _, err = run_cli(capsys, *base, *arguments)
    assert_refused(status, err, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("arguments", "fragment"), [
    (["evaluate", "--dataset", "bundled", "--crop-border", "-1"], "--crop-border must be 0 or more"),
    (["benchmark", "--repeats", "0"], "--repeats must be at least 1"),
    (["benchmark", "--scales", "5"], "not x5"),
])
def test_evaluate_and_benchmark_refuse_bad_numbers(capsys, arguments: list[str], fragment: str) -> None:
    status, _, err = run_cli(capsys, *arguments)
    assert_refused(status, err, fragment)


@pytest.mark.parametrize("scale", ["nan", "inf", "-inf", "0.5", "1e-9"])
def test_upscale_refuses_scales_that_do_not_enlarge(capsys, tmp_path: Path, tiny_images, scale: str) -> None:
    status, _, err = run_cli(capsys, "upscale", str(tiny_images["colour"]), str(tmp_path / "out.png"),
                             f"--scale={scale}")
    assert_refused(status, err, "--scale must be a finite factor of at least 1")


def test_upscale_checks_the_output_before_computing(capsys, tmp_path: Path, tiny_images) -> None:
    results = tmp_path / "results"
    results.mkdir()
    status, _, err = run_cli(capsys, "upscale", str(tiny_images["colour"]), str(results / "out.xyz"),
                             "--scale", "2", "--model", "vdsr")
    assert_refused(status, err, "suffix of", ".png")
    status, _, err = run_cli(capsys, "upscale", str(tiny_images["colour"]), str(results), "--scale", "2")
    assert_refused(status, err, "is a folder")
    assert list(results.iterdir()) == []


def test_a_folder_named_like_a_shipped_model_does_not_shadow_it(capsys, tmp_path: Path, tiny_images,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "espcn").mkdir()
    status, out, err = run_cli(capsys, "upscale", str(tiny_images["colour"]), "big.png", "--scale", "3",
                               "--model", "espcn")
    assert status == 0, err
    assert "espcn x3" in out


def test_pretrained_hints_never_suggest_a_scale_that_cannot_be_trained() -> None:
    for scale in (0, None, 2.5):
        with pytest.raises(ValueError) as error:
            load_pretrained("espcn", scale)
        assert "sr-teach train" not in str(error.value)
        assert "at least 1" in str(error.value)
    with pytest.raises(ValueError, match="sr-teach train --model espcn --scale 1 "):  # a denoiser can be trained
        load_pretrained("espcn", 1)


# ---------------------------------------------------------------- 6, 7, 12. train, resume


def small_run(tmp_path: Path, *extra: str) -> list[str]:
    return ["train", "--steps", "3", "--batch-size", "2", "--validation-every", "2", "--quiet", *extra]


def test_resume_honours_a_new_learning_rate_and_refuses_another_model(capsys, tmp_path: Path) -> None:
    path = str(tmp_path / "run.pt")
    status, _, err = run_cli(capsys, *small_run(tmp_path, "--model", "espcn", "--scale", "3", "--output", path))
    assert status == 0, err
    status, out, err = run_cli(capsys, *small_run(tmp_path, "--resume", path, "--output", path, "--lr", "1e-4"))
    assert status == 0, err  # continuing in place is allowed
    assert "learning_rate=0.0001" in out and "training espcn x3" in out
    checkpoint = load_checkpoint(path)
    assert checkpoint["train_config"]["learning_rate"] == 1e-4
    assert checkpoint["history"]["learning_rate"][-1] == 1e-4 and checkpoint["history"]["learning_rate"][0] == 1e-3
    for option, value in (("--model", "srcnn"), ("--scale", "2"), ("--batch-size", "8")):
        before = Path(path).read_bytes()
        status, _, err = run_cli(capsys, *small_run(tmp_path, "--resume", path, "--output", path, option, value))
        assert_refused(status, err, f"{option}", "cannot change on resume")
        assert Path(path).read_bytes() == before


def test_no_validation_gives_a_clean_summary(capsys, tmp_path: Path) -> None:
    status, out, err = run_cli(capsys, *small_run(tmp_path, "--model", "espcn", "--scale", "3",
                                                  "--validation-fraction", "0", "--output", str(tmp_path / "a.pt")))
    assert status == 0, err
    assert "; ;" not in out and "stopped after step 3 (steps); wrote" in out


def test_a_bad_image_in_the_validation_split_is_skipped(tmp_path: Path, tiny_images) -> None:
    from sr_teach.data import load_validation_pairs

    broken = tmp_path / "broken.png"
    broken.write_bytes(tiny_images["colour"].read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        pairs = load_validation_pairs([broken, tiny_images["colour"]], 2, 1, pre_upsample=False)
    assert len(pairs) == 1
    with pytest.warns(UserWarning, match="without validation"):
        assert load_validation_pairs([broken], 2, 1, pre_upsample=False) == []


# ---------------------------------------------------------------- 11. stopping


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize(("signal_number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_run_and_exits_with_the_signal_status(tmp_path: Path, signal_number: int,
                                                                 status: int) -> None:
    output = tmp_path / "run.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "sr_teach.cli", "train", "--model", "espcn", "--scale", "3", "--seconds", "120",
         "--quiet", "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().startswith("training espcn x3")  # the loop is about to start
        time.sleep(1.0)
        process.send_signal(signal_number)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == status, err
    assert "(interrupted); " in out and "wrote" in out
    assert load_checkpoint(output)["trainer_state"]["step"] > 0


# ---------------------------------------------------------------- 3. an image over the pixel limit


def test_an_image_over_the_pixel_limit_is_skipped_in_training_and_refused_by_upscale(
    capsys, tmp_path: Path, tiny_images, monkeypatch
) -> None:
    from PIL import Image

    monkeypatch.delenv("SR_TEACH_MAX_PIXELS", raising=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("colour", "gray", "odd"):
        for copy in range(3):
            (photos / f"{name}{copy}.png").write_bytes(tiny_images[name].read_bytes())
    Image.new("1", (1500, 1000)).save(photos / "bomb.png")  # 1.5 megapixels in a few hundred bytes
    limit = ["--max-pixels", "1000000"]
    status, out, err = run_cli(capsys, *small_run(tmp_path, "--model", "espcn", "--scale", "2", "--patch-size", "6",
                                                  "--data", str(photos), "--output", str(tmp_path / "a.pt"), *limit))
    assert status == 0, err
    assert "stopped after step 3" in out
    status, _, err = run_cli(capsys, "upscale", str(photos / "bomb.png"), str(tmp_path / "big.png"), "--scale", "2",
                             *limit)
    assert_refused(status, err, "1.5 megapixels, over the limit of 1.0 megapixels", "--max-pixels")
    status, _, err = run_cli(capsys, "upscale", str(photos / "colour0.png"), str(tmp_path / "big.png"),
                             "--scale", "1000", *limit)
    assert_refused(status, err, "megapixels", "--max-pixels")
    assert not (tmp_path / "big.png").exists()
    assert os.environ.get("SR_TEACH_MAX_PIXELS") is None  # the flag does not outlive the command
