"""How much memory does upscaling a photo file take? Peak resident memory and seconds, one fresh process per case.

    .venv/bin/python benchmarks/memory.py                       # every case below
    .venv/bin/python benchmarks/memory.py --cases bicubic espcn
    PYTHONPATH=/tmp/old python benchmarks/memory.py --cli          # `sr-teach upscale` of any checkout

It makes a 6000 x 4000 colour photo (the bundled CC0 `coffee`, 600 x 400, enlarged x10 by Pillow's
Lanczos) and a 2500 x 2500 one (`astronaut`) in a temporary folder, then upscales each, file to
file, with `inference.upscale_file` (or with --cli the `sr-teach upscale` command of whatever
sr_teach PYTHONPATH finds): bicubic and every shipped model at x2 (a 96-megapixel output), and
bicubic and ESPCN at x4 of the smaller photo (a 100-megapixel output). Each case runs alone in a
new process, and its peak resident set size (RSS) comes from the kernel (`os.wait4`), so nothing
in the measured process is changed. RSS does not depend on the machine's load; seconds do.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPOSITORY = Path(__file__).resolve().parent.parent
PHOTO_SIZE = (4000, 6000)  # (H, W): a 24-megapixel photo
SMALL_PHOTO_SIZE = (2500, 2500)  # x4 makes a 100-megapixel output


@dataclass(frozen=True)
class Case:
    name: str  # what --cases selects
    upscaler: str  # a shipped model's name, or an interpolation method
    scale: int
    photo: str  # "photo" or "small_photo"

    @property
    def is_model(self) -> bool:
        return self.upscaler not in ("bicubic", "bilinear", "nearest", "lanczos")


CASES = [
    Case("bicubic", "bicubic", 2, "photo"),
    Case("espcn", "espcn", 2, "photo"),
    Case("fsrcnn", "fsrcnn", 2, "photo"),
    Case("srcnn", "srcnn", 2, "photo"),
    Case("vdsr", "vdsr", 2, "photo"),
    Case("bicubic_100mp", "bicubic", 4, "small_photo"),
    Case("espcn_100mp", "espcn", 4, "small_photo"),
]

LIBRARY_CALL = """
import sys
from sr_teach.inference import upscale_file
from sr_teach.pretrained import load_pretrained
source, target, upscaler, scale, is_model = sys.argv[1:]
upscaler = load_pretrained(upscaler, int(scale)) if is_model == "1" else upscaler
print(upscale_file(source, target, upscaler, float(scale), overwrite=True))
"""


def make_photo(name: str, size: tuple[int, int], path: Path) -> Path:
    """A bundled photo enlarged to `size` (H, W) by Pillow, saved as PNG."""
    with Image.open(REPOSITORY / "data" / f"{name}.png") as photo:
        photo.convert("RGB").resize((size[1], size[0]), Image.Resampling.LANCZOS).save(path)
    return path


def command(case: Case, source: Path, target: Path, cli: bool) -> list[str]:
    if not cli:
        return [sys.executable, "-c", LIBRARY_CALL, str(source), str(target), case.upscaler, str(case.scale),
                "1" if case.is_model else "0"]
    choice = ["--model", case.upscaler] if case.is_model else ["--method", case.upscaler]
    return [sys.executable, "-m", "sr_teach.cli", "upscale", str(source), str(target), "--scale", str(case.scale),
            *choice, "--force"]


def measure(arguments: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of a command run in a new process; an error if it fails."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(arguments[:4])}... failed:\n{errors.read().decode()[-2000:]}")
    kilobytes = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # macOS counts bytes
    return kilobytes / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=[case.name for case in CASES],
                        choices=[case.name for case in CASES])
    parser.add_argument("--cli", action="store_true", help="measure the `sr-teach upscale` command instead")
    arguments = parser.parse_args()
    print(f"| case | input | output | peak RSS | seconds |  ({'sr-teach upscale' if arguments.cli else 'upscale_file'})")
    print("| --- | --- | --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        photos = {"photo": make_photo("coffee", PHOTO_SIZE, Path(folder) / "photo.png"),
                  "small_photo": make_photo("astronaut", SMALL_PHOTO_SIZE, Path(folder) / "small_photo.png")}
        for case in (case for case in CASES if case.name in arguments.cases):
            height, width = PHOTO_SIZE if case.photo == "photo" else SMALL_PHOTO_SIZE
            target = Path(folder) / "result.png"
            rss, seconds = measure(command(case, photos[case.photo], target, arguments.cli))
            target.unlink()
            label = f"{case.upscaler} x{case.scale}"
            print(f"| {label} | {width} x {height} | {width * case.scale} x {height * case.scale} "
                  f"({height * width * case.scale**2 / 1e6:.0f} MP) | {rss:,.0f} MiB | {seconds:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
