"""The lessons' exercises: each has a check and a solution to unfold, the solutions pass the checks,
and every setting an exercise suggests runs the whole lesson without tripping its own assertions.

An exercise is a markdown cell under "## Exercises" that opens with "### Exercise". Its metadata
`sr_teach.exercise` may hold `solution` (assignments that answer it, e.g. {"best_rate": "1e-3"}) and
`try` (a list of such assignments, each a setting the exercise suggests). A test runs the lesson in
fast mode with each: the assignment goes right after the statement that first sets the name.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CHECKS = re.compile(r"\bcheck(_answer)?\(")


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def exercises(cells: list[dict]) -> list[tuple[int, dict, list[dict]]]:
    """(index, its metadata, the cells up to the next heading) for each exercise of a lesson."""
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and re.match(r"\s*### Exercise\b", source(cell)):
            end = next((later for later in range(index + 1, len(cells)) if cells[later]["cell_type"] == "markdown"
                        and re.match(r"\s*#", source(cells[later]))), len(cells))
            found.append((index, cell["metadata"].get("sr_teach", {}).get("exercise", {}), cells[index + 1:end]))
    return found


def lesson_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_every_exercise_has_a_check_and_a_solution_to_unfold(path: Path) -> None:
    cells = lesson_cells(path)
    assert not any(re.search(r"^#+ Try this", source(cell), re.M) for cell in cells), \
        f"{path.name}: a 'Try this' list is left; make each item an exercise"
    assert any(re.search(r"^## Exercises\s*$", source(cell), re.M) for cell in cells), f"{path.name}: no '## Exercises'"
    found = exercises(cells)
    assert found, f"{path.name}: no '### Exercise' under '## Exercises'"
    for index, _, body in found:
        title = source(cells[index]).splitlines()[0]
        assert any(cell["cell_type"] == "code" and CHECKS.search(source(cell)) for cell in body), \
            f"{path.name}, {title}: no cell runs check(...) or check_answer(...)"
        assert any(cell["cell_type"] == "markdown" and "<details>" in source(cell) and "Solution" in source(cell)
                   for cell in body), f"{path.name}, {title}: no <details> with the solution"


def assign_after_definition(cells: list, name: str, value: str) -> None:
    """Put `name = value` right after the first top-level statement of a code cell that assigns `name`."""
    for cell in cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics
            continue
        for statement in tree.body:
            targets = statement.targets if isinstance(statement, ast.Assign) else \
                [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                lines = cell.source.splitlines()
                lines.insert(statement.end_lineno, f"{name} = {value}  # set by tests/test_exercises.py")
                cell.source = "\n".join(lines)
                return
    raise AssertionError(f"no code cell assigns {name!r} at its top level, so an exercise cannot set it")


def run_lesson(path: Path, assignments: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    for name, value in assignments.items():
        assign_after_definition(notebook.cells, name, value)
    monkeypatch.setenv("SR_TEACH_FAST", "1")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("output_type") == "stream")


def solution_runs() -> list:
    runs = []
    for path in LESSONS:
        solution = {}
        for _, metadata, _ in exercises(lesson_cells(path)):
            solution.update(metadata.get("solution", {}))
        runs.append(pytest.param(path, solution, id=path.stem))
    return runs


def suggested_runs() -> list:
    runs = []
    for path in LESSONS:
        for index, metadata, _ in exercises(lesson_cells(path)):
            for number, setting in enumerate(metadata.get("try", [])):
                runs.append(pytest.param(path, setting, id=f"{path.stem}-cell{index}-{number}"))
    return runs


@pytest.mark.parametrize(("path", "solution"), solution_runs())
def test_the_solutions_pass_the_checks(path: Path, solution: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_lesson(path, solution, monkeypatch)
    for index, _, body in exercises(notebook.cells):
        title = notebook.cells[index].source.splitlines()[0]
        verdicts = [printed(cell) for cell in body if cell.cell_type == "code" and CHECKS.search(cell.source)]
        assert verdicts and all(verdict.startswith("Right") for verdict in verdicts), f"{path.name}, {title}: {verdicts}"


@pytest.mark.parametrize(("path", "setting"), suggested_runs())
def test_a_suggested_setting_runs_the_whole_lesson(path: Path, setting: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    run_lesson(path, setting, monkeypatch)  # raises CellExecutionError on a failing cell or assertion


@pytest.mark.parametrize(("answer", "expected", "tolerance", "verdict"), [
    (None, 3.0, 0.0, "Not yet: write your answer"),
    (3.04, 3.0, 0.05, "Right"),
    (3.1, 3.0, 0.05, "Not yet: look again"),
    (" ESPCN", "espcn", 0.0, "Right"),
    ("fsrcnn", "espcn", 0.0, "Not yet"),
    ((1e-3, 1e-4), [1e-4, 1e-3], 0.0, "Right"),
    ((1e-3,), [1e-4, 1e-3], 0.0, "Not yet"),
    ("3", 3, 0.0, "Right"),
    ("three", 3, 0.0, "Not yet"),
    (True, 1, 0.0, "Not yet"),
])
def test_check_answer_says_right_or_not_yet(answer, expected, tolerance, verdict, capsys) -> None:
    from sr_teach.lessons import check_answer

    check_answer(answer, expected, hint="look again", tolerance=tolerance)
    said = capsys.readouterr().out
    assert said.startswith(verdict), said
