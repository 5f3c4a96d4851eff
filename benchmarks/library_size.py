"""How big is the library a student reads? Lines per module, the longest functions, and the path
from `upscale(model, image)` to the model's forward.

    python benchmarks/library_size.py            # the figures of the "small library" issue

Lines are physical lines (`wc -l`), docstrings and comments included. The calls on the path are
the distinct sr_teach functions that run between entering `upscale` and the first call of the
model's `forward`, traced with `sys.setprofile` on a 20 x 20 colour image through a Y-channel ESPCN.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sr_teach"
CORE = ("images", "interpolation", "degradations", "metrics", "datasets", "evaluation", "models", "losses",
        "augmentation", "data", "training", "checkpoints", "guards", "experiment", "inference", "device", "pretrained")


def lines_per_module() -> dict[str, int]:
    return {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in sorted(PACKAGE.rglob("*.py"))}


def longest_functions(count: int = 5) -> list[tuple[int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)[:count]


def calls_from_upscale_to_forward() -> list[str]:
    import numpy as np

    from sr_teach.inference import upscale
    from sr_teach.models import ESPCN

    model = ESPCN(scale=3)
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    seen: list[str] = []
    state = {"inside": False, "done": False}

    def profile(frame, event, argument):
        if event != "call" or state["done"]:
            return
        code = frame.f_code
        if code.co_name == "upscale" and code.co_filename.endswith("inference.py"):
            state["inside"] = True
        if not state["inside"]:
            return
        if code.co_name == "forward" and frame.f_locals.get("self") is model:
            state["done"] = True
            return
        if str(PACKAGE) in code.co_filename:
            name = f"{Path(code.co_filename).stem}.{code.co_name}"
            if name not in seen:
                seen.append(name)

    sys.setprofile(profile)
    try:
        upscale(model, image)
    finally:
        sys.setprofile(None)
    return seen


def main() -> None:
    sizes = lines_per_module()
    width = max(map(len, sizes))
    for name, lines in sizes.items():
        print(f"{name:<{width}} {lines:5d}")
    core = {name: lines for name, lines in sizes.items() if name.removesuffix(".py") in CORE}
    print(f"{'all of sr_teach':<{width}} {sum(sizes.values()):5d}")
    print(f"{'core (' + str(len(core)) + ' modules)':<{width}} {sum(core.values()):5d}")
    print(f"largest file: {max(sizes, key=sizes.get)} ({max(sizes.values())} lines)")
    print("longest functions:")
    for length, where in longest_functions():
        print(f"  {length:4d} lines  {where}")
    path = calls_from_upscale_to_forward()
    modules = sorted({name.split(".")[0] for name in path})
    print(f"from upscale to the model's forward: {len(path)} sr_teach functions in {len(modules)} modules")
    print("  " + " -> ".join(path))


if __name__ == "__main__":
    main()
