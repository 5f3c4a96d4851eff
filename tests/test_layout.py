"""The library's layout: the core never reaches for the lesson widgets, and every file stays small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sr_teach"
WIDGET_MODULES = ("ipywidgets", "IPython", "sr_teach.widgets")
OUTSIDE_WIDGETS = sorted(path for path in PACKAGE.rglob("*.py") if "widgets" not in path.relative_to(PACKAGE).parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", OUTSIDE_WIDGETS, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_core_never_imports_widgets(path: Path) -> None:
    widget_imports = {name for name in imported_modules(path)
                      if any(name == widget or name.startswith(widget + ".") for widget in WIDGET_MODULES)}
    assert not widget_imports, f"{path.name} imports {sorted(widget_imports)}"


def test_importing_every_core_module_loads_no_widget_code() -> None:
    modules = [".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts) for path in OUTSIDE_WIDGETS]
    code = (f"import sys\nfor name in {modules!r}:\n    __import__(name)\n"
            f"print(sorted(name for name in sys.modules if name.startswith({WIDGET_MODULES!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_every_module_is_small_and_opens_with_a_short_docstring(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= 500, f"{path.name} has {len(source.splitlines())} lines"
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring, f"{path.name} has no module docstring"
    assert len(docstring.strip().splitlines()) <= 12, f"{path.name}'s docstring has {len(docstring.splitlines())} lines"
