#!/usr/bin/env python3
"""Set up sr_teach in a local virtual environment, then open the lessons or run the tests.

    python3 run.py          # set up (first time only) and open JupyterLab on the first lesson
    python3 run.py test     # set up (first time only) and run the whole test suite

Needs only Python >= 3.10. Everything goes into ./.venv; delete that folder to start afresh.
PyTorch: a small CPU-only build is installed from PyTorch's CPU index when this machine has no
NVIDIA GPU; if that index cannot be reached, pip's default torch is installed. To choose yourself,
set SR_TEACH_TORCH to a pip requirement, e.g. SR_TEACH_TORCH="torch==2.13.0".
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SR_TEACH_VENV", ROOT / ".venv"))
FIRST_LESSON = ROOT / "notebooks" / "00_start_here.ipynb"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(command: list[str | Path], **options) -> subprocess.CompletedProcess:
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.run([str(part) for part in command], **options)


def pip(*arguments: str, check: bool = True) -> bool:
    result = run([venv_python(), "-m", "pip", *arguments])
    if check and result.returncode != 0:
        sys.exit(f"run.py: pip {' '.join(arguments)} failed (exit {result.returncode}); see the output above")
    return result.returncode == 0


def has_torch() -> bool:
    return run([venv_python(), "-c", "import torch"], capture_output=True).returncode == 0


def install_torch() -> None:
    """A CPU-only torch where that is what the machine can use: ~200 MB instead of several GB."""
    chosen = os.environ.get("SR_TEACH_TORCH")
    if chosen:
        pip("install", chosen)
        return
    if sys.platform != "darwin" and shutil.which("nvidia-smi") is None:
        if pip("install", "--timeout", "30", "--retries", "1", "torch", "--index-url", CPU_INDEX, check=False):
            return
        print("run.py: PyTorch's CPU index could not be reached; installing pip's default torch", flush=True)
    pip("install", "torch")


def set_up() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"run.py: sr_teach needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not venv_python().exists():
        print(f"Creating the virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Reinstall only when the project's requirements change.
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".sr_teach_installed"
    if stamp.exists() and stamp.read_text() == fingerprint and has_torch():
        return
    if not has_torch():
        install_torch()
    pip("install", "-e", f"{ROOT}[lab,test]")
    stamp.write_text(fingerprint)


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else "lab"
    if action not in ("lab", "test"):
        print(__doc__)
        return 2
    set_up()
    environment = dict(os.environ)
    if action == "test":
        # nbval runs every lesson; --nbval-lax compares only the outputs of cells marked
        # NBVAL_CHECK_OUTPUT (the others assert what they must). Fast mode keeps it quick.
        lessons = ["notebooks", "--nbval-lax"] if any((ROOT / "notebooks").glob("*.ipynb")) else []
        environment.setdefault("SR_TEACH_FAST", "1")
        command = [venv_python(), "-m", "pytest", "tests", *lessons, *sys.argv[2:]]
        return run(command, cwd=ROOT, env=environment).returncode
    lesson = FIRST_LESSON if FIRST_LESSON.exists() else ROOT / "notebooks"
    return run([venv_python(), "-m", "jupyter", "lab", str(lesson), *sys.argv[2:]], cwd=ROOT, env=environment).returncode


if __name__ == "__main__":
    sys.exit(main())
