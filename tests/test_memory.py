"""upscale_file's memory: a file is enlarged a stripe at a time, so memory grows by less than the result.

Each case runs in a fresh process (a process's peak RSS only grows, so one case would hide the
next) and reports how far its peak grew during `upscale_file`. `benchmarks/memory.py` measures the
same on a 24-megapixel photo; this is the quick version.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

resource = pytest.importorskip("resource")  # peak RSS as the kernel counts it (POSIX)

CASE = """
import json, resource, sys, tempfile, torch
from pathlib import Path
from sr_teach import inference
from sr_teach.images import save_image
from sr_teach.inference import upscale_file
from sr_teach.interpolation import resize
from sr_teach.models import ESPCN

folder = Path(tempfile.mkdtemp())
photo = resize(torch.rand(3, 50, 75, generator=torch.Generator().manual_seed(0)), size=(750, 1000))
save_image(photo, folder / "photo.png")
del photo
upscaler = ESPCN(scale=4) if sys.argv[1] == "espcn" else sys.argv[1]
inference.STRIPE_OUTPUT_PIXELS = 1  # stripes of one band of 128 rows: their memory is small beside the result's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = upscale_file(folder / "photo.png", folder / "result.png", upscaler, 4)
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"size": size, "growth": growth * (1 if sys.platform == "darwin" else 1024)}))
"""


@pytest.mark.parametrize("upscaler", ["bicubic", "espcn"])
def test_a_file_grows_memory_by_less_than_half_a_float_copy_of_the_result(upscaler: str) -> None:
    completed = subprocess.run([sys.executable, "-c", CASE, upscaler], capture_output=True, text=True, check=True)
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    assert measured["size"] == [3000, 4000]
    float_copy = 3000 * 4000 * 3 * 4  # the (3, H, W) float32 result that upscale would return: 137 MiB
    assert measured["growth"] < float_copy / 2, f"peak RSS grew by {measured['growth'] / 2**20:.0f} MiB"
