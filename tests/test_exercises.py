"""The lessons' exercises: each has a check and a solution to unfold, the solutions pass the checks,
and every setting an exercise suggests runs the whole lesson without tripping its own assertions.

An exercise is a markdown cell under "## Exercises" that opens with "### Exercise". Its metadata
`sr_teach.exercise` may hold `solution` (assignments that answer it, e.g. {"best_rate": "1e-3"}) and
`try` (a list of such assignments, each a setting the exercise suggests). A test runs the lesson in
fast mode with each (settings of different names share a run): the assignment goes right after the
statement that first sets the name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CHECKS = re.compile(r"\bcheck(_answer)?\(")


def exercises(cells: list) -> list[tuple[int, dict, list]]:
    """(index, its metadata, the cells up to the next heading) for each exercise of a lesson."""
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and re.match(r"\s*### Exercise\b", cell.source):
            end = next((later for later in range(index + 1, len(cells)) if cells[later].cell_type == "markdown"
                        and re.match(r"\s*#", cells[later].source)), len(cells))
            found.append((index, cell.metadata.get("sr_teach", {}).get("exercise", {}), cells[index + 1:end]))
    return found


def lesson_cells(path: Path) -> list[nbformat.NotebookNode]:
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_every_exercise_has_a_check_and_a_solution_to_unfold(path: Path) -> None:
    cells = lesson_cells(path)
    assert not any(re.search(r"^#+ Try this", cell.source, re.M) for cell in cells), \
        f"{path.name}: a 'Try this' list is left; make each item an exercise"
    assert any(re.search(r"^## Exercises\s*$", cell.source, re.M) for cell in cells), f"{path.name}: no '## Exercises'"
    found = exercises(cells)
    assert found, f"{path.name}: no '### Exercise' under '## Exercises'"
    for index, _, body in found:
        title = cells[index].source.splitlines()[0]
        assert any(cell.cell_type == "code" and CHECKS.search(cell.source) for cell in body), \
            f"{path.name}, {title}: no cell runs check(...) or check_answer(...)"
        assert any(cell.cell_type == "markdown" and "<details>" in cell.source and "Solution" in cell.source
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
                [statement.target] if isinstance(statement, ast.AnnAssign) else []
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


def setting_rounds(path: Path) -> list[dict[str, str]]:
    """Every suggested setting of a lesson, packed into as few runs as possible: settings that set
    different names share a run (each run costs a whole lesson), the values of one name get a run each."""
    rounds: list[dict[str, str]] = []
    for _, metadata, _ in exercises(lesson_cells(path)):
        for setting in metadata.get("try", []):
            fitting = next((chosen for chosen in rounds
                            if all(chosen.get(name, value) == value for name, value in setting.items())), None)
            if fitting is None:
                rounds.append(fitting := {})
            fitting.update(setting)
    return rounds


class LessonRuns:
    """The whole lesson, run in fast mode: once with the solutions, once per round of settings.

    One class per lesson (below), so that pytest-xdist (`--dist loadscope`) runs lessons side by side."""

    lesson: Path

    def test_the_solutions_pass_the_checks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        solution = {}
        for _, metadata, _ in exercises(lesson_cells(self.lesson)):
            solution.update(metadata.get("solution", {}))
        notebook = run_lesson(self.lesson, solution, monkeypatch)
        for index, _, body in exercises(notebook.cells):
            title = notebook.cells[index].source.splitlines()[0]
            verdicts = [printed(cell) for cell in body if cell.cell_type == "code" and CHECKS.search(cell.source)]
            assert verdicts and all(verdict.startswith("Right") for verdict in verdicts), \
                f"{self.lesson.name}, {title}: {verdicts}"

    def test_the_suggested_settings_run_the_whole_lesson(self, settings: dict, monkeypatch: pytest.MonkeyPatch) -> None:
        run_lesson(self.lesson, settings, monkeypatch)  # raises CellExecutionError on a failing cell or assertion


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "settings" in metafunc.fixturenames:
        rounds = setting_rounds(metafunc.cls.lesson)
        metafunc.parametrize("settings", rounds, ids=[",".join(settings) for settings in rounds])


for _lesson in LESSONS:
    _name = "TestLesson" + _lesson.stem.split("_")[0]
    globals()[_name] = type(_name, (LessonRuns,), {"lesson": _lesson, "__doc__": f"{_lesson.name}, run whole."})


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
