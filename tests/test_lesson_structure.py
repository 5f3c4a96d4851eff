"""Every lesson opens with its objectives and ends with a summary of what this learner's run measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_a_lesson_opens_with_objectives_and_what_it_assumes(path: Path) -> None:
    opening = [text(cell) for cell in cells(path)[:4] if cell["cell_type"] == "markdown"]
    section = next((part for part in opening if re.search(r"^#+ Objectives\s*$", part, re.M)), None)
    assert section is not None, f"{path.name}: no 'Objectives' heading in its first cells"
    objectives = section.split("Objectives", 1)[1]
    bullets = [line for line in objectives.splitlines() if re.match(r"\s*([-*]|\d+\.)\s", line)]
    assert 3 <= len(bullets) <= 8, f"{path.name}: {len(bullets)} objectives and assumptions listed"
    assert re.search(r"\bassumes?\b", objectives, re.I), f"{path.name}: the objectives do not say what is assumed"


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_a_lesson_ends_with_a_summary_printed_from_its_run(path: Path) -> None:
    lesson = cells(path)
    headings = [index for index, cell in enumerate(lesson)
                if cell["cell_type"] == "markdown" and re.search(r"^## ", text(cell), re.M)]
    last = lesson[headings[-1]]
    assert re.search(r"^## Summary\s*$", text(last), re.M), f"{path.name}: the last section is not 'Summary'"
    code = [cell for cell in lesson[headings[-1] + 1 :] if cell["cell_type"] == "code"]
    assert code and any("print(" in text(cell) for cell in code), f"{path.name}: the summary prints nothing"
    printed = "".join("".join(output.get("text", "")) for cell in code for output in cell.get("outputs", []))
    assert re.search(r"\d", printed), f"{path.name}: the saved summary shows no measured number (re-execute it)"
