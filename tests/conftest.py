"""Shared fixtures: the data directory of benchmark sets, and tiny synthetic images.

Tests that need real benchmark images (Set5, Set14, the MATLAB reference files) take the
`datasets_dir` fixture and name the sets they need with a marker:

    @pytest.mark.needs_datasets("Set5", "matlab_reference")
    def test_something(datasets_dir): ...

The folder comes from the environment variable SR_TEACH_DATA (CI: ../shared/datasets). On a laptop
without it the test is skipped with the reason; on CI (CI=true) a missing set is a failure, so the
published-number checks can never silently stop running.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_datasets(*names): the sets the test reads from $SR_TEACH_DATA (default: Set5)"
    )


def running_on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail on CI, where the data must be present."""
    if running_on_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error rather than a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def datasets_dir(request: pytest.FixtureRequest) -> Path:
    """The data directory from $SR_TEACH_DATA, checked to hold the sets the test's marker names."""
    marker = request.node.get_closest_marker("needs_datasets")
    needed = marker.args if marker is not None and marker.args else ("Set5",)
    from_environment = os.environ.get("SR_TEACH_DATA")
    if not from_environment:
        skip_or_fail(f"SR_TEACH_DATA is not set; this test needs the data set(s) {', '.join(needed)}")
    root = Path(from_environment).expanduser()
    missing = [name for name in needed if not (root / name).is_dir()]
    if missing:
        skip_or_fail(f"SR_TEACH_DATA={root} lacks the set(s) {', '.join(missing)}")
    return root


# What `tiny_images` writes: name -> (height, width, channels). Odd sizes on purpose, so mod-crop
# has something to do.
TINY_SHAPES = {"colour": (26, 30, 3), "odd": (25, 37, 3), "gray": (24, 28, 1)}


def tiny_array(name: str) -> np.ndarray:
    """The uint8 pixels of one tiny image: smooth gradients plus a little seeded noise."""
    height, width, channels = TINY_SHAPES[name]
    rows, columns = np.mgrid[0:height, 0:width]
    generator = np.random.default_rng(sum(map(ord, name)))
    planes = [
        40 + 150 * (rows / height) * (0.5 + channel / 4) + 50 * np.sin(columns / 4 + channel)
        + generator.normal(0, 6, size=(height, width))
        for channel in range(channels)
    ]
    array = np.clip(np.stack(planes, axis=-1), 0, 255).round().astype(np.uint8)
    return array[..., 0] if channels == 1 else array


@pytest.fixture
def tiny_images(tmp_path: Path) -> dict[str, Path]:
    """Small synthetic PNGs in tmp_path/tiny: {"colour": RGB 26x30, "odd": RGB 25x37, "gray": L 24x28}."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    paths = {}
    for name in TINY_SHAPES:
        paths[name] = folder / f"{name}.png"
        Image.fromarray(tiny_array(name)).save(paths[name])
    return paths
