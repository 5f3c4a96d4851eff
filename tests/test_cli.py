"""The `sr-teach` command line, run in-process (`main([...])`) plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sr_teach
from sr_teach.cli import main
from sr_teach.images import load_image


def run(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    """Run `sr-teach ARGUMENTS` in this process; return (exit status, stdout, stderr)."""
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_help_in_a_real_subprocess() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "sr_teach.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    for command in ("info", "evaluate", "upscale", "download"):
        assert command in completed.stdout


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert sr_teach.__version__ in capsys.readouterr().out


def test_info(capsys, tmp_path: Path, tiny_images) -> None:
    (tmp_path / "data" / "Tiny" / "HR").mkdir(parents=True)
    (tmp_path / "data" / "Tiny" / "HR" / "a.png").write_bytes(tiny_images["colour"].read_bytes())
    status, out, err = run(capsys, "info", "--data-dir", str(tmp_path / "data"))
    assert status == 0, err
    assert f"sr_teach {sr_teach.__version__}" in out
    versions = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert versions["torch"] == torch.__version__
    assert "numpy" in out and "pillow" in out
    from sr_teach.device import describe_device, pick_device

    assert f"training device: {describe_device(pick_device('auto'))}" in out
    assert f"data directory:  {tmp_path / 'data'} (found: Tiny)" in out
    assert "widgets:" in out
    status, out, _ = run(capsys, "info", "--data-dir", str(tmp_path / "empty"))
    assert status == 0 and "no sets found" in out


@pytest.mark.needs_datasets("Set5")
def test_evaluate_json_matches_the_published_set5_x3(capsys, datasets_dir: Path) -> None:
    status, out, err = run(capsys, "evaluate", "--dataset", "Set5", "--scale", "3", "--json",
                           "--data-dir", str(datasets_dir))
    assert status == 0, err
    report = json.loads(out)
    assert report["mean"]["psnr"] == pytest.approx(30.39, abs=0.02)
    assert report["mean"]["ssim"] == pytest.approx(0.8682, abs=0.001)
    assert [image["name"] for image in report["images"]] == ["baby", "bird", "butterfly", "head", "woman"]
    assert all({"name", "psnr", "ssim"} <= set(image) for image in report["images"])
    assert report["scale"] == 3 and report["crop_border"] == 3 and report["y_channel"] is True


def test_evaluate_table(capsys, tmp_path: Path, tiny_images) -> None:
    (tmp_path / "Tiny").mkdir()
    for path in tiny_images.values():
        (tmp_path / "Tiny" / path.name).write_bytes(path.read_bytes())
    status, out, err = run(capsys, "evaluate", "--dataset", "Tiny", "--scale", "2", "--method", "bilinear",
                           "--data-dir", str(tmp_path))
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("bilinear on Tiny x2")
    assert lines[-1].split()[0] == "mean"
    assert {"colour", "gray", "odd"} <= {line.split()[0] for line in lines}


def test_evaluate_errors(capsys, tmp_path: Path) -> None:
    status, _, err = run(capsys, "evaluate", "--dataset", "Urban100", "--data-dir", str(tmp_path))
    assert_one_line_error(status, err, "Urban100", str(tmp_path), "SR_TEACH_DATA", "sr-teach download Urban100")
    status, _, err = run(capsys, "evaluate", "--dataset", "bundled", "--method", "magic")
    assert_one_line_error(status, err, "unknown method 'magic'")
    status, _, err = run(capsys, "evaluate", "--dataset", "bundled", "--scale", "1")
    assert_one_line_error(status, err, "shrinking its original", "scale of 2 or more")


# ---------------------------------------------------------------- upscale


def test_upscale_writes_the_enlarged_image(capsys, tiny_images) -> None:
    output = tiny_images["colour"].parent / "big.png"
    status, out, err = run(capsys, "upscale", str(tiny_images["colour"]), str(output), "--scale", "3")
    assert status == 0, err
    assert load_image(output).shape == (3, 78, 90)  # 26 x 30 times 3
    assert "wrote" in out and "90x78" in out


def test_upscale_non_integer_scale(capsys, tiny_images) -> None:
    output = tiny_images["gray"].parent / "big.png"
    status, _, err = run(capsys, "upscale", str(tiny_images["gray"]), str(output), "--scale", "2.5",
                         "--method", "lanczos")
    assert status == 0, err
    assert load_image(output).shape == (1, 60, 70)  # 24 x 28 times 2.5


def test_upscale_refuses_to_overwrite_without_force(capsys, tiny_images) -> None:
    output = tiny_images["odd"]  # an existing file
    original = output.read_bytes()
    status, _, err = run(capsys, "upscale", str(tiny_images["colour"]), str(output), "--scale", "2")
    assert_one_line_error(status, err, "--force")
    assert output.read_bytes() == original
    status, _, err = run(capsys, "upscale", str(tiny_images["colour"]), str(output), "--scale", "2", "--force")
    assert status == 0, err
    assert load_image(output).shape == (3, 52, 60)


def test_upscale_bad_inputs(capsys, tmp_path: Path, tiny_images) -> None:
    output = tmp_path / "out.png"
    status, _, err = run(capsys, "upscale", str(tmp_path / "missing.png"), str(output), "--scale", "2")
    assert_one_line_error(status, err, "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(tiny_images["colour"].read_bytes()[:60])
    status, _, err = run(capsys, "upscale", str(corrupt), str(output), "--scale", "2")
    assert_one_line_error(status, err, "corrupt.png")
    status, _, err = run(capsys, "upscale", str(tiny_images["colour"]), str(output), "--scale", "2",
                         "--method", "magic")
    assert_one_line_error(status, err, "unknown method 'magic'")
    status, _, err = run(capsys, "upscale", str(tiny_images["colour"]), str(output), "--scale", "0")
    assert_one_line_error(status, err, "--scale")
    status, _, err = run(capsys, "upscale", str(tiny_images["colour"]), str(tmp_path / "no" / "out.png"),
                         "--scale", "2")
    assert_one_line_error(status, err, "does not exist")
    assert not output.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corrupt.png", "tiny"]  # nothing half-written
