"""What every lesson notebook does first: seeds, fast mode, and whether widgets can be shown.

Fast mode (the environment variable SR_TEACH_FAST=1, which CI sets) shrinks every training run of
the lessons so the whole course runs in a few minutes; results are then rougher but the code paths
are the same. An instructor can also set it before class for snappier demos.
"""

from __future__ import annotations

import importlib.util
import os
import random

import numpy as np
import torch

FAST_MODE_VARIABLE = "SR_TEACH_FAST"


def fast_mode() -> bool:
    """True when SR_TEACH_FAST is set to something other than "", "0", "false" or "no"."""
    return os.environ.get(FAST_MODE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def budget(full: int | float, fast: int | float) -> int | float:
    """Pick a size (steps, seconds, images) for a training run: `fast` in fast mode, else `full`."""
    return fast if fast_mode() else full


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch so that every screen in the room shows the same numbers.

    Returns a torch.Generator seeded likewise, for code that takes one explicitly. (The library
    itself never reseeds these global generators: its experiments seed their own.)
    """
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def widgets_available() -> bool:
    """True when ipywidgets is installed; lessons then add interactive controls.

    Where widgets cannot render (a static viewer such as GitHub), each lesson also draws a plain
    matplotlib figure of the same result, so nothing is lost.
    """
    return importlib.util.find_spec("ipywidgets") is not None


def check(correct: bool, right: str, hint: str) -> None:
    """Tell the learner whether an exercise is done: prints "Right: <right>" or "Not yet: <hint>".

    For exercises whose answer is something the learner did (changed a setting, ran a cell again)
    rather than a value they typed. (It returns nothing, so a notebook shows only the sentence.)
    """
    print(f"Right: {right}" if correct else f"Not yet: {hint}")


def check_answer(answer: object, expected: object, *, hint: str, right: str = "",
                 tolerance: float = 0.0) -> None:
    """Compare a learner's `answer` with the `expected` one, and say "Right" or "Not yet" with a hint.

    Numbers match within `tolerance` (absolute); text matches ignoring case and surrounding spaces;
    lists, tuples and sets match as sets of such items. An answer still None (or ...) is "not yet".
    """
    if answer is None or answer is Ellipsis:
        check(False, right, "write your answer in the cell above (in place of None) and run both cells again.")
    else:
        check(_same(answer, expected, tolerance), right or f"{expected!r}.", hint)


def _same(answer: object, expected: object, tolerance: float) -> bool:
    if isinstance(expected, (list, tuple, set, frozenset)):
        if not isinstance(answer, (list, tuple, set, frozenset)) or len(set(answer)) != len(set(expected)):
            return False
        return all(any(_same(item, wanted, tolerance) for item in answer) for wanted in expected)
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
    if isinstance(expected, bool) or isinstance(answer, bool):
        return answer is expected
    try:
        return abs(float(answer) - float(expected)) <= tolerance
    except (TypeError, ValueError):
        return False
