#!/usr/bin/env python3
r"""Set up sr_teach in a local virtual environment, then open the lessons, run the tests or sr-teach.

    python3 run.py                  # set up (first time only), then JupyterLab on the first lesson
    python3 run.py lab [OPTIONS]    # the same; OPTIONS go to JupyterLab, e.g. --port 9999 --no-browser
    python3 run.py test [OPTIONS]   # set up, then the whole test suite; OPTIONS go to pytest, e.g. -x
    python3 run.py sr-teach ARGS    # set up, then the sr-teach command, e.g. python3 run.py sr-teach info
    python3 run.py help             # this text (also -h, --help)

An option in first place means lab: `python3 run.py --allow-root`. As root (containers, cloud
notebooks) JupyterLab will not start without --allow-root, so run.py adds it and says so.

Needs only Python >= 3.10 (on Debian and Ubuntu also the python3-venv package). Everything goes
into ./.venv, about 1.7 GB with JupyterLab, the test tools and PyTorch; delete that folder to start
afresh. To type `sr-teach` yourself, activate it first: `source .venv/bin/activate` (Windows:
`.venv\Scripts\activate`).

PyTorch: without an NVIDIA GPU (and not on macOS), run.py installs the newest CPU-only build that
pip can find, on PyTorch's CPU index (https://download.pytorch.org/whl/cpu) or in pip's configured
sources: a download of about 190 MB, 750 MB installed, instead of several GB of CUDA libraries.
With an NVIDIA GPU, on macOS, or when no CPU-only build can be found, it installs pip's default
torch. Either way it prints which torch it installed, from where, and why. To choose yourself, set
SR_TEACH_TORCH to a pip requirement, e.g. SR_TEACH_TORCH="torch==2.13.0".
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SR_TEACH_VENV", ROOT / ".venv"))
FIRST_LESSON = ROOT / "notebooks" / "00_start_here.ipynb"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ACTIONS = ("lab", "test", "sr-teach", "help")
# Talking to PyTorch's CPU index: one quick retry, not pip's five with back-off, so an unreachable
# index costs seconds (pip then uses its other configured sources).
QUICK_NETWORK = ("--retries", "1", "--timeout", "15")


def default_data_dir() -> Path:
    """Where `sr-teach download` puts the benchmark sets (run.py runs outside the venv, so it
    cannot ask sr_teach.datasets)."""
    return Path.home() / ".cache" / "sr_teach" / "datasets"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(command: list[str | Path], **options) -> subprocess.CompletedProcess:
    """Every subprocess of run.py goes through here (the tests replace it with a fake)."""
    return subprocess.run([str(part) for part in command], check=False, **options)


def note(message: str) -> None:
    """run.py's own lines go to stderr, so `run.py sr-teach evaluate --json > out.json` stays JSON."""
    print(message, file=sys.stderr, flush=True)


def pip(*arguments: str, failure_hint: str = "") -> str:
    """Run pip in the venv with its output captured; return the output, or show its end and stop."""
    result = run([venv_python(), "-m", "pip", *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        print("\n".join(result.stdout.strip().splitlines()[-15:]), file=sys.stderr)
        sys.exit(f"run.py: pip {arguments[0]} failed (exit {result.returncode}); the end of its output is above. {failure_hint}")
    return result.stdout


def has_torch() -> bool:
    return run([venv_python(), "-c", "import torch"], capture_output=True).returncode == 0


def torch_requirement() -> str:
    """pyproject's torch requirement, e.g. "torch>=2.1". Installed together with the chosen torch, so
    pip checks both now and `pip install -e .` later has no reason to swap in another build."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'"(torch(?![\w.-])[^"]*)"', pyproject)
    return found.group(1).replace(" ", "") if found else "torch"


def newest_cpu_torch() -> str | None:
    """The newest CPU-only torch ("2.13.0+cpu") pip can see on PyTorch's CPU index or in its other
    configured sources (pip.conf's extra-index-url, find-links), or None."""
    result = run(
        [venv_python(), "-m", "pip", "index", "versions", "torch", "--index-url", CPU_INDEX, *QUICK_NETWORK],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Available versions:"):
            versions = [version.strip() for version in line.split(":", 1)[1].split(",")]
            cpu_versions = [version for version in versions if version.endswith("+cpu")]
            return cpu_versions[0] if cpu_versions else None  # pip lists the newest first
    return None


def wheel_source(pip_output: str) -> str:
    """Where pip took the torch wheel from, read off its log: PyTorch's CPU index, a folder or a host."""
    found = re.search(r"^(Processing|Downloading|Using cached) (\S*torch-[^\s/]+\.whl)", pip_output, re.MULTILINE)
    if found is None:
        return "pip's configured sources"
    verb, location = found.groups()
    if "pytorch.org/whl/cpu/" in location:  # download.pytorch.org, or the CDN it links to
        return "PyTorch's CPU index"
    if "://" in location:
        return urlsplit(location).netloc
    if os.path.dirname(location):
        return os.path.dirname(location)
    return "PyPI" if verb == "Downloading" else "pip's cache"  # pip names PyPI's files without a URL


def installed_torch_version() -> str:
    # From the package's metadata: importing torch before numpy is installed prints a warning.
    query = "from importlib.metadata import version; print(version('torch'))"
    result = run([venv_python(), "-c", query], stdout=subprocess.PIPE, text=True)
    return result.stdout.strip() or "(version unknown)"


def install_torch() -> None:
    """Choose a torch for this machine, install it, and say which one, from where and why."""
    requirement = torch_requirement()
    chosen = os.environ.get("SR_TEACH_TORCH")
    if chosen:
        reason, arguments = f"SR_TEACH_TORCH={chosen}", [chosen, requirement]
    elif sys.platform == "darwin":
        reason, arguments = "macOS: pip's default torch", [requirement]
    elif shutil.which("nvidia-smi"):
        reason, arguments = "NVIDIA GPU found: pip's default torch, with CUDA", [requirement]
    else:
        cpu_version = newest_cpu_torch()
        if cpu_version:
            # Pinned with its "+cpu" label: pip would otherwise take a higher version from any other
            # configured source, and on Linux that is PyPI's CUDA build.
            reason = "no NVIDIA GPU found"
            arguments = [f"torch=={cpu_version}", requirement, "--index-url", CPU_INDEX, *QUICK_NETWORK]
        else:
            reason = "no NVIDIA GPU found, but no CPU-only build either: pip's default torch"
            note("run.py: pip sees no CPU-only torch (a +cpu version) on PyTorch's CPU index, which may be "
                 "unreachable, or elsewhere; installing pip's default torch (on Linux x86 several GB with "
                 "CUDA). To choose, set SR_TEACH_TORCH.")
            arguments = [requirement]
    note(f"run.py: installing torch ({reason})...")
    output = pip("install", *arguments, "--progress-bar", "off",
                 failure_hint="To choose a torch yourself, set SR_TEACH_TORCH (python3 run.py --help).")
    note(f"run.py: torch {installed_torch_version()} from {wheel_source(output)} ({reason})")


def install_sr_teach() -> None:
    note("run.py: installing sr_teach, JupyterLab and the test tools (a few minutes the first time)...")
    output = pip("install", "-e", f"{ROOT}[lab,test]", "--progress-bar", "off")
    installed = re.search(r"^Successfully installed (.*)$", output, re.MULTILINE)
    count = len(installed.group(1).split()) if installed else 0
    note(f"run.py: {count} packages installed into {VENV}")


def create_venv() -> None:
    note(f"run.py: creating the virtual environment {VENV}")
    existed = VENV.exists()
    try:
        venv.EnvBuilder(with_pip=True).create(VENV)
    except (subprocess.CalledProcessError, OSError) as error:
        # Debian and Ubuntu ship Python without ensurepip. The venv would be left without pip, and
        # next time taken for a finished one.
        if existed:
            venv_python().unlink(missing_ok=True)
        else:
            shutil.rmtree(VENV, ignore_errors=True)
        sys.exit(f"run.py: could not create {VENV} with pip in it ({error}). On Debian or Ubuntu, "
                 "install the python3-venv package (sudo apt install python3-venv), then run again.")


def set_up() -> None:
    # run.py runs under whatever python3 the student has, not the project's Python.
    if sys.version_info < (3, 10):  # noqa: UP036
        sys.exit(f"run.py: sr_teach needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if not venv_python().exists():
        create_venv()
    # Reinstall only when the project's requirements change.
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".sr_teach_installed"
    if stamp.exists() and stamp.read_text() == fingerprint and has_torch():
        return
    if not has_torch():
        install_torch()
    install_sr_teach()
    stamp.write_text(fingerprint)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def open_lab(options: list[str]) -> int:
    if running_as_root() and "--allow-root" not in options:
        note("run.py: running as root, so JupyterLab is started with --allow-root")
        options = ["--allow-root", *options]
    lesson = FIRST_LESSON if FIRST_LESSON.exists() else ROOT / "notebooks"
    command = [venv_python(), "-m", "jupyter", "lab", str(lesson), *options]
    note("+ " + " ".join(str(part) for part in command))
    return run(command, cwd=ROOT).returncode


def run_tests(options: list[str]) -> int:
    environment = dict(os.environ)
    # nbval runs every lesson; --nbval-lax compares only the outputs of cells marked
    # NBVAL_CHECK_OUTPUT (the others assert what they must). Fast mode keeps it quick.
    lessons = ["notebooks", "--nbval-lax"] if any((ROOT / "notebooks").glob("*.ipynb")) else []
    environment.setdefault("SR_TEACH_FAST", "1")
    if "SR_TEACH_DATA" not in environment and default_data_dir().is_dir():
        environment["SR_TEACH_DATA"] = str(default_data_dir())
        note(f"run.py: the tests read the benchmark sets from {default_data_dir()} (SR_TEACH_DATA chooses)")
    command = [venv_python(), "-m", "pytest", "tests", *lessons, *worker_options(options), *options]
    note("+ " + " ".join(str(part) for part in command))
    return run(command, cwd=ROOT, env=environment).returncode


def worker_options(options: list[str]) -> list[str]:
    """Spread the tests over every CPU core with pytest-xdist, unless the options choose (`-n 0`:
    one process, as `--pdb` needs). Each test file, and each class, stays on one worker: a lesson's
    cells share one kernel, and a module's fixtures (JupyterLab for the browser test) start once."""
    if any(option.startswith(("-n", "--numprocesses")) for option in options):
        return []
    return ["-n", "auto", "--dist", "loadscope"]


def parse(arguments: list[str]) -> tuple[str, list[str]]:
    """The action and what follows it; nothing, or an option in first place, means lab."""
    if arguments and arguments[0] in ("-h", "--help"):
        return "help", []
    if not arguments or arguments[0].startswith("-"):
        return "lab", arguments
    return arguments[0], arguments[1:]


def main(arguments: list[str] | None = None) -> int:
    action, rest = parse(sys.argv[1:] if arguments is None else arguments)
    if action == "help":
        print(__doc__)
        return 0
    if action not in ACTIONS:
        note(f"run.py: unknown action {action!r}; the actions are lab, test, sr-teach and help (python3 run.py --help)")
        return 2
    set_up()
    if action == "test":
        return run_tests(rest)
    if action == "sr-teach":
        # The console script `sr-teach` is this module; through python it needs no activated venv.
        return run([venv_python(), "-m", "sr_teach.cli", *rest]).returncode
    return open_lab(rest)


if __name__ == "__main__":
    sys.exit(main())
