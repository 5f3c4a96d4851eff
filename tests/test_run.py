"""run.py, the two-command setup: its actions, and how it chooses and reports PyTorch.

run.py is imported as a module and its subprocesses (pip, JupyterLab, pytest) are replaced by a
fake that records each command and answers with canned pip output, so nothing is installed and
the tests take a second. One real `python3 run.py --help` checks the script end to end.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def load_run_py() -> ModuleType:
    specification = importlib.util.spec_from_file_location("run_py", ROOT / "run.py")
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


class FakeSubprocesses:
    """Stands in for run.run: records every command; `answer` gives (exit status, output) for one."""

    def __init__(self, answer: Callable[[list[str]], tuple[int, str]]) -> None:
        self.answer = answer
        self.commands: list[list[str]] = []
        self.options: list[dict] = []

    def __call__(self, command, **options) -> subprocess.CompletedProcess:
        command = [str(part) for part in command]
        self.commands.append(command)
        self.options.append(options)
        status, output = self.answer(command)
        return subprocess.CompletedProcess(command, status, stdout=output, stderr="")

    def pip_installs(self) -> list[list[str]]:
        return [command[command.index("install") + 1:] for command in self.commands if "install" in command]


# What pip 23 prints on this kind of machine: the CPU index unreachable, a CPU wheel in find-links,
# and PyPI's CUDA build (a higher version) on a configured extra index.
INDEX_VERSIONS = "torch (2.14.1)\nAvailable versions: 2.14.1, 2.13.0+cpu\n"
INSTALL_OUTPUT = (
    "Looking in indexes: https://download.pytorch.org/whl/cpu, file:///opt/pypi-more/simple\n"
    "Looking in links: /opt/wheels\n"
    "Processing /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl\n"
    "Collecting filelock (from torch==2.13.0+cpu)\n"
    "Successfully installed filelock-3.13.1 torch-2.13.0+cpu\n"
)


def pip_answers(index_versions: str = INDEX_VERSIONS, install_output: str = INSTALL_OUTPUT,
                install_status: int = 0, torch_version: str = "2.13.0+cpu"):
    def answer(command: list[str]) -> tuple[int, str]:
        if "index" in command and "versions" in command:
            return 0, index_versions
        if "install" in command:
            return install_status, install_output
        if "-c" in command:  # asking the new environment which torch it has
            return 0, torch_version + "\n"
        return 0, ""
    return answer


@pytest.fixture
def run_py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    module = load_run_py()
    monkeypatch.setattr(module, "VENV", tmp_path / "venv")
    monkeypatch.delenv("SR_TEACH_TORCH", raising=False)
    return module


def run_main(run_py: ModuleType, monkeypatch: pytest.MonkeyPatch, *arguments: str,
             root: bool = False) -> tuple[int, FakeSubprocesses]:
    """`python3 run.py ARGUMENTS` with set-up skipped and the subprocess faked."""
    fake = FakeSubprocesses(lambda command: (0, ""))
    monkeypatch.setattr(run_py, "run", fake)
    monkeypatch.setattr(run_py, "set_up", lambda: None)
    monkeypatch.setattr(run_py.os, "geteuid", lambda: 0 if root else 1000, raising=False)
    monkeypatch.setattr(sys, "argv", ["run.py", *arguments])
    return run_py.main(), fake


# ----- item 14: help and unknown actions -----

def test_help_in_a_real_subprocess_exits_0_and_lists_every_action() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    for action in ("python3 run.py lab", "python3 run.py test", "python3 run.py sr-teach"):
        assert action in completed.stdout


@pytest.mark.parametrize("flag", ["-h", "help"])
def test_short_help_and_help_word_exit_0(run_py, monkeypatch, capsys, flag: str) -> None:
    status, fake = run_main(run_py, monkeypatch, flag)
    assert status == 0
    assert fake.commands == []
    assert "python3 run.py sr-teach" in capsys.readouterr().out  # help goes to stdout


def test_an_unknown_action_is_a_one_line_error_naming_the_actions(run_py, monkeypatch, capsys) -> None:
    status, fake = run_main(run_py, monkeypatch, "tset")
    assert status == 2
    assert fake.commands == []
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in ("tset", "lab", "test", "sr-teach", "help"):
        assert fragment in lines[0]
    assert captured.out == ""


# ----- item 13: arguments through to JupyterLab, and root -----

def lab_arguments(fake: FakeSubprocesses) -> list[str]:
    (command,) = fake.commands
    assert command[1:4] == ["-m", "jupyter", "lab"]
    return command[5:]  # after the lesson to open


def test_lab_passes_extra_arguments_to_jupyterlab(run_py, monkeypatch, capsys) -> None:
    status, fake = run_main(run_py, monkeypatch, "lab", "--port", "9999")
    assert status == 0
    assert lab_arguments(fake) == ["--port", "9999"]
    assert "--allow-root" not in capsys.readouterr().err


def test_a_leading_option_means_lab_with_that_option(run_py, monkeypatch) -> None:
    status, fake = run_main(run_py, monkeypatch, "--allow-root")
    assert status == 0
    assert lab_arguments(fake) == ["--allow-root"]


def test_as_root_lab_gets_allow_root_and_says_so(run_py, monkeypatch, capsys) -> None:
    status, fake = run_main(run_py, monkeypatch, root=True)
    assert status == 0
    assert lab_arguments(fake) == ["--allow-root"]
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("run.py:")]
    assert len(notes) == 1 and "root" in notes[0]


def test_as_root_allow_root_is_not_given_twice(run_py, monkeypatch) -> None:
    _, fake = run_main(run_py, monkeypatch, "lab", "--allow-root", "--port", "9999", root=True)
    assert lab_arguments(fake) == ["--allow-root", "--port", "9999"]


# ----- item 15: the sr-teach command through run.py -----

def test_sr_teach_action_runs_the_cli_in_the_venv_with_the_rest_of_the_arguments(run_py, monkeypatch) -> None:
    status, fake = run_main(run_py, monkeypatch, "sr-teach", "info", "--data-dir", "d")
    assert status == 0
    (command,) = fake.commands
    assert command == [str(run_py.venv_python()), "-m", "sr_teach.cli", "info", "--data-dir", "d"]


def test_readme_says_how_to_get_sr_teach_on_path() -> None:
    command_line = README.split("## The command line", 1)[1].split("```", 1)[0]
    assert "source .venv/bin/activate" in command_line
    assert ".venv\\Scripts\\activate" in command_line
    assert "python3 run.py sr-teach info" in command_line


# ----- the test action stays what .ci/run relies on -----

def test_test_action_runs_tests_and_lessons_with_extra_pytest_arguments(run_py, monkeypatch) -> None:
    monkeypatch.delenv("SR_TEACH_FAST", raising=False)
    status, fake = run_main(run_py, monkeypatch, "test", "-x", "-k", "psnr")
    assert status == 0
    (command,) = fake.commands
    assert command[1:] == ["-m", "pytest", "tests", "notebooks", "--nbval-lax", "-n", "auto", "--dist", "loadscope",
                           "-x", "-k", "psnr"]
    assert fake.options[0]["env"]["SR_TEACH_FAST"] == "1"


@pytest.mark.parametrize("choice", [["-n", "0"], ["-n0"], ["--numprocesses=3"]])
def test_test_action_leaves_the_number_of_workers_to_the_user(run_py, monkeypatch, choice) -> None:
    _, fake = run_main(run_py, monkeypatch, "test", *choice)
    (command,) = fake.commands
    assert command[-len(choice):] == choice and "auto" not in command


def test_test_action_reads_sets_from_where_sr_teach_download_puts_them(run_py, monkeypatch, tmp_path) -> None:
    home = tmp_path / "home"
    (home / ".cache" / "sr_teach" / "datasets" / "Set5").mkdir(parents=True)
    monkeypatch.setattr(run_py.Path, "home", staticmethod(lambda: home))
    monkeypatch.delenv("SR_TEACH_DATA", raising=False)
    _, fake = run_main(run_py, monkeypatch, "test")
    assert fake.options[0]["env"]["SR_TEACH_DATA"] == str(home / ".cache" / "sr_teach" / "datasets")
    # An explicit SR_TEACH_DATA (CI sets one) wins.
    monkeypatch.setenv("SR_TEACH_DATA", "/elsewhere")
    _, fake = run_main(run_py, monkeypatch, "test")
    assert fake.options[0]["env"]["SR_TEACH_DATA"] == "/elsewhere"


# ----- item 17: which torch, from where, and why -----

def install_torch(run_py, monkeypatch, answer, gpu: bool = False, platform: str = "linux") -> FakeSubprocesses:
    fake = FakeSubprocesses(answer)
    monkeypatch.setattr(run_py, "run", fake)
    monkeypatch.setattr(run_py.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if gpu else None)
    monkeypatch.setattr(run_py.sys, "platform", platform)
    run_py.install_torch()
    return fake


def test_without_a_gpu_the_newest_cpu_build_is_pinned_even_when_a_cuda_build_is_newer(run_py, monkeypatch, capsys) -> None:
    fake = install_torch(run_py, monkeypatch, pip_answers())
    (install,) = fake.pip_installs()
    assert "torch==2.13.0+cpu" in install  # not 2.14.1, PyPI's CUDA build that pip would prefer
    assert run_py.torch_requirement() in install  # and what pyproject asks for, so pip checks both
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == "run.py: torch 2.13.0+cpu from /opt/wheels (no NVIDIA GPU found)"


def test_the_cpu_index_is_named_when_the_wheel_came_from_it(run_py, monkeypatch, capsys) -> None:
    output = ("Downloading https://download.pytorch.org/whl/cpu/torch-2.14.1%2Bcpu-cp311-cp311-"
              "manylinux_2_28_x86_64.whl (190.4 MB)\nSuccessfully installed torch-2.14.1+cpu\n")
    answer = pip_answers("Available versions: 2.14.1+cpu, 2.14.1, 2.13.0+cpu\n", output, torch_version="2.14.1+cpu")
    install_torch(run_py, monkeypatch, answer)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "run.py: torch 2.14.1+cpu from PyTorch's CPU index (no NVIDIA GPU found)"


def test_pip_output_is_captured_and_summarised_not_streamed(run_py, monkeypatch, capsys) -> None:
    fake = install_torch(run_py, monkeypatch, pip_answers())
    for command, options in zip(fake.commands, fake.options):
        if "pip" in command:
            assert options.get("stdout") == subprocess.PIPE, command
        if "install" in command:
            assert "--progress-bar" in command
    printed = capsys.readouterr()
    assert printed.out == ""  # run.py's own lines go to stderr: `run.py sr-teach ... --json > f` stays JSON
    printed = printed.err
    assert "Looking in indexes" not in printed and "Processing" not in printed
    assert len(printed.strip().splitlines()) <= 2


def test_a_failed_install_shows_the_tail_of_pips_output_and_stops(run_py, monkeypatch, capsys) -> None:
    output = "".join(f"line {number}\n" for number in range(100)) + "ERROR: No matching distribution\n"
    with pytest.raises(SystemExit) as stopped:
        install_torch(run_py, monkeypatch, pip_answers(install_output=output, install_status=1))
    printed = capsys.readouterr()
    assert "ERROR: No matching distribution" in printed.out + printed.err
    assert "line 10\n" not in printed.out + printed.err  # only the tail
    assert "SR_TEACH_TORCH" in str(stopped.value)


def test_without_any_cpu_build_pips_default_torch_is_installed_and_the_reason_given(run_py, monkeypatch, capsys) -> None:
    answer = pip_answers("Available versions: 2.14.1\n", "Downloading torch-2.14.1-cp311.whl\nSuccessfully "
                         "installed torch-2.14.1\n", torch_version="2.14.1")
    fake = install_torch(run_py, monkeypatch, answer)
    (install,) = fake.pip_installs()
    assert not any(part.startswith("torch==") for part in install)
    assert run_py.torch_requirement() in install
    printed = capsys.readouterr().err
    assert "no CPU-only torch" in printed and "SR_TEACH_TORCH" in printed
    assert "run.py: torch 2.14.1 from" in printed


def test_sr_teach_torch_overrides_the_choice_and_is_checked_against_pyproject(run_py, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SR_TEACH_TORCH", "torch==2.13.0")
    fake = install_torch(run_py, monkeypatch, pip_answers())
    (install,) = fake.pip_installs()
    assert install[:2] == ["torch==2.13.0", run_py.torch_requirement()]
    assert not any("index" in command and "versions" in command for command in fake.commands)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "run.py: torch 2.13.0+cpu from /opt/wheels (SR_TEACH_TORCH=torch==2.13.0)"
    )


@pytest.mark.parametrize("gpu, platform, reason", [(True, "linux", "NVIDIA GPU found"), (False, "darwin", "macOS")])
def test_with_a_gpu_or_on_macos_pips_default_torch(run_py, monkeypatch, capsys, gpu, platform, reason) -> None:
    fake = install_torch(run_py, monkeypatch, pip_answers(), gpu=gpu, platform=platform)
    (install,) = fake.pip_installs()
    assert install[0] == run_py.torch_requirement()
    assert reason in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_torch_requirement_comes_from_pyproject(run_py) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    requirement = run_py.torch_requirement()
    assert requirement.startswith("torch") and f'"{requirement}"' in pyproject


# ----- item 16: the sizes are the measured ones -----

def test_no_claim_of_a_200_mb_install() -> None:
    docstring = load_run_py().__doc__
    setup = README.split("## The lessons", 1)[0]
    for text in (docstring, setup):
        assert "200 MB" not in text
        assert "1.7 GB" in text


# ----- a fresh machine without ensurepip (Debian's python3 without python3-venv) -----

def test_a_venv_that_cannot_get_pip_is_removed_and_the_fix_named(run_py, monkeypatch) -> None:
    class EnvBuilderWithoutEnsurepip:
        def __init__(self, **options) -> None:
            pass

        def create(self, folder: Path) -> None:
            (Path(folder) / "bin").mkdir(parents=True)
            (Path(folder) / "bin" / "python").write_text("")
            raise subprocess.CalledProcessError(1, ["python", "-m", "ensurepip"])

    monkeypatch.setattr(run_py.venv, "EnvBuilder", EnvBuilderWithoutEnsurepip)
    with pytest.raises(SystemExit) as stopped:
        run_py.set_up()
    assert "python3-venv" in str(stopped.value)
    assert not run_py.VENV.exists()  # a half-made venv would be taken for a good one next time
