"""The README results table: its rows, its Markdown, and writing it between the README's markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_teach.tools.benchmark import (
    README_END,
    README_START,
    BenchmarkRow,
    frame_milliseconds,
    markdown_table,
    write_into_readme,
)
from sr_teach.evaluation import interpolation_upscaler

ROWS = [
    BenchmarkRow("bicubic", 3, 0, {"Set5": (30.391, 0.86791), "Set14": (27.534, 0.77381)},
                 {"Set5": 30.39, "Set14": 27.55}, 41.2),
    BenchmarkRow("espcn x3", 3, 22729, {"Set5": (32.681, 0.9081), "Set14": (29.214, 0.8213)},
                 {"Set5": 32.55, "Set14": 29.08}, 118.4),
]


def test_markdown_table_has_one_row_per_upscaler_with_published_numbers_beside() -> None:
    lines = markdown_table(ROWS).splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert lines[2] == "| x3 | bicubic | - | 30.39 / 0.8679 | 30.39 | 27.53 / 0.7738 | 27.55 | 41 |"
    assert lines[3] == "| x3 | espcn x3 | 22,729 | 32.68 / 0.9081 | 32.55 | 29.21 / 0.8213 | 29.08 | 118 |"


def test_the_table_replaces_only_the_text_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{README_START}\nold table\n{README_END}\nafter\n")
    write_into_readme("| new |", readme)
    assert readme.read_text() == f"# Title\n\nbefore\n{README_START}\n| new |\n{README_END}\nafter\n"
    write_into_readme("| newer |", readme)  # idempotent: the markers stay
    assert "| newer |" in readme.read_text() and "| new |\n" not in readme.read_text()
    unmarked = tmp_path / "plain.md"
    unmarked.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- benchmark-table:start -->"):
        write_into_readme("| table |", unmarked)
    assert unmarked.read_text() == "no markers"


def test_frame_time_is_measured_on_a_1080p_output() -> None:
    shapes = []

    def recording_upscaler(lr_image, scale):
        shapes.append(tuple(lr_image.shape))
        return interpolation_upscaler("bicubic")(lr_image, scale)

    assert frame_milliseconds(recording_upscaler, 4, repeats=2) > 0
    assert shapes == [(3, 270, 480)] * 2


def test_the_readme_has_the_markers() -> None:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    assert text.count(README_START) == 1 and text.count(README_END) == 1
