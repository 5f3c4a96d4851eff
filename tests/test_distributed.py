"""Training in several processes (torchrun, gloo on this CPU) takes the steps one process takes.

Each test starts real processes with `torch.distributed.run`, as a user's torchrun does, on the bundled photos.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from sr_teach import distributed
from sr_teach.checkpoints import load_checkpoint
from sr_teach.cli import main
from sr_teach.data import DataConfig, PatchSampler
from sr_teach.datasets import find_images
from sr_teach.degradations import DegradationConfig
from sr_teach.images import data_folder
from sr_teach.training import Trainer, TrainConfig

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="this PyTorch has no torch.distributed")

RUN = ["--model", "espcn", "--scale", "2", "--batch-size", "8", "--patch-size", "12", "--validation-every", "1000",
       "--quiet", "--seed", "3"]
REPOSITORY = Path(__file__).resolve().parent.parent


def torchrun(processes: int, arguments: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node N ARGUMENTS`, with one thread per process (two share this machine's cores)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


def train_in_processes(processes: int, *arguments: str) -> None:
    result = torchrun(processes, ["-m", "sr_teach.cli", "train", *RUN, *arguments])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"in {processes} processes" in result.stdout and result.stdout.count("wrote") == 1  # rank 0 speaks


def train_here(*arguments: str) -> None:
    assert main(["train", *RUN, *arguments]) == 0


def assert_same_weights(first: Path, second: Path) -> None:
    first_state, second_state = (load_checkpoint(path)["trainer_state"] for path in (first, second))
    assert first_state["step"] == second_state["step"]
    # Summing the gradients in another order changes their last bits; Adam divides each by its own size, so
    # where one is within rounding of zero its step may differ by a small fraction of the learning rate (1e-3).
    for name, value in first_state["model"].items():
        torch.testing.assert_close(value, second_state["model"][name], rtol=1e-5, atol=2e-5, msg=name)


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory) -> Path:
    """Six steps of batches of 8 in this process: the run the others must reproduce."""
    output = tmp_path_factory.mktemp("single") / "six_steps.pt"
    train_here("--steps", "6", "--output", str(output))
    return output


def test_two_processes_take_the_steps_of_one(one_process_run, tmp_path):
    output = tmp_path / "two.pt"
    train_in_processes(2, "--steps", "6", "--output", str(output))
    assert_same_weights(one_process_run, output)
    losses = [load_checkpoint(path)["history"]["loss"] for path in (one_process_run, output)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # rank 0 logs the loss of the whole batch


def test_the_documented_commands(tmp_path):
    """The README's two commands, as typed: torchrun's own script, then `sr-teach evaluate` on the result."""
    binaries = Path(sys.executable).parent
    output = tmp_path / "OUT.pt"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([str(binaries / "torchrun"), "--nproc-per-node", "2", "-m", "sr_teach.cli", "train", "--model", "espcn",
                    "--scale", "2", "--steps", "20", "--output", str(output)], check=True, timeout=240, env=environment)
    evaluation = subprocess.run([str(binaries / "sr-teach"), "evaluate", "--model", str(output), "--dataset", "bundled",
                                 "--scale", "2"], check=True, timeout=240, capture_output=True, text=True, env=environment)
    assert "mean" in evaluation.stdout


def test_a_run_resumes_under_another_number_of_processes(one_process_run, tmp_path):
    two, then_one = tmp_path / "two.pt", tmp_path / "then_one.pt"
    train_in_processes(2, "--steps", "3", "--total-steps", "6", "--output", str(two))
    train_here("--steps", "3", "--resume", str(two), "--output", str(then_one))
    assert_same_weights(one_process_run, then_one)
    one, then_two = tmp_path / "one.pt", tmp_path / "then_two.pt"
    train_here("--steps", "3", "--total-steps", "6", "--output", str(one))
    train_in_processes(2, "--steps", "3", "--resume", str(one), "--output", str(then_two))
    assert_same_weights(one_process_run, then_two)


def test_sigterm_stops_every_process_and_keeps_the_run(tmp_path):
    output = tmp_path / "stopped.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "sr_teach.cli", "train",
               *RUN, "--steps", "1000000", "--output", str(output)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert "training espcn" in launcher.stdout.readline()  # both processes are up and training
    time.sleep(2)
    launcher.send_signal(signal.SIGTERM)  # what a cluster's scheduler sends at the end of a job
    text = launcher.communicate(timeout=60)[0]
    assert "SIGTERM at step" in text and "wrote" in text
    state = load_checkpoint(output)["trainer_state"]
    assert state["step"] > 0 and state["step"] % 10 == 0  # the processes stopped together, at a log point
    resumed = tmp_path / "resumed.pt"
    train_here("--steps", "2", "--resume", str(output), "--output", str(resumed))
    assert load_checkpoint(resumed)["trainer_state"]["step"] == state["step"] + 2


def test_a_signal_after_the_vote_waits_for_the_next_log_point(monkeypatch):
    """A SIGTERM handled between the processes' vote and the loop's check must not make one process leave alone
    (the other would wait in the next step's all-reduce for ever): the vote decides."""
    trainer = Trainer(nn.Conv2d(1, 1, 3, padding=1), iter(()), TrainConfig(log_every=10))
    trainer._start_timing(seconds=None, progress=False, last_step=20)  # what train() does first
    monkeypatch.setattr(distributed, "active", lambda: True)

    def vote_then_signal(flag: bool, device: torch.device) -> bool:
        trainer.stop("interrupted", "SIGTERM")  # the handler runs just after the all-reduce returns
        return flag

    monkeypatch.setattr(distributed, "any_rank", vote_then_signal)
    assert not trainer._stopping() and trainer.stop_requested  # keeps going; stops with the others at step 10
    monkeypatch.setattr(distributed, "any_rank", lambda flag, device: True)
    trainer.stop_requested = False
    assert trainer._stopping() and trainer.stop_message == "another process stopped the run"


FAILING_RUN = """
from sr_teach import distributed
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.training import Callback, TrainConfig

class FailOnRankOne(Callback):
    def on_log(self, trainer, record):
        if distributed.rank() == 1 and record.step >= 4:
            raise RuntimeError("rank 1 fails on purpose")

config = ExperimentConfig(model="espcn", scale=2, batch_size=4, train=TrainConfig(log_every=2, validation_every=None))
Experiment(config, callbacks=[FailOnRankOne()]).train(steps=100000)
"""


def test_a_failing_process_stops_the_others_instead_of_hanging(tmp_path):
    script = tmp_path / "failing_run.py"
    script.write_text(FAILING_RUN)
    started = time.perf_counter()
    result = torchrun(2, [str(script)], timeout=120)
    assert result.returncode != 0 and time.perf_counter() - started < 60
    output = result.stdout + result.stderr
    assert "rank 1 fails on purpose" in output  # the cause is shown
    assert "[rank0]" in output and "remote worker" in output  # rank 0 learnt of it and stopped


def test_shards_of_a_batch_make_the_whole_batch():
    noisy = DegradationConfig(noise_sigma=(0, 50), jpeg_quality=(20, 60))
    config = DataConfig(scales=(2, 3), patch_size=8, batch_size=6, degradation=noisy, seed=5)
    paths = find_images(data_folder())
    whole = PatchSampler(paths, config)
    shards = [PatchSampler(paths, config, shard=(rank, 3)) for rank in range(3)]
    for _ in range(3):  # several batches: the shards' random draws stay in step with one another
        inputs, targets = whole.next_batch()
        parts = [shard.next_batch() for shard in shards]
        assert torch.equal(inputs, torch.cat([part[0] for part in parts]))
        assert torch.equal(targets, torch.cat([part[1] for part in parts]))


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        PatchSampler(find_images(data_folder()), DataConfig(scales=(2,), batch_size=5), shard=(0, 2))


def test_one_process_is_not_distributed():
    assert not distributed.active() and distributed.rank() == 0 and distributed.world_size() == 1
    values = torch.tensor([1.0, 2.0])
    assert distributed.mean_over_ranks(values) is values and distributed.any_rank(True) and not distributed.any_rank(False)


def test_python_m_reports_bad_input_in_one_line(tmp_path):
    """`python -m sr_teach.cli` (what torchrun runs) reports bad input as `sr-teach` does: one line, status 1."""
    result = subprocess.run([sys.executable, "-m", "sr_teach.cli", "train", "--model", "espcn", "--scale", "2",
                             "--output", str(tmp_path / "out.pt")], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["sr-teach train: error: say how long to train: --steps N and/or --seconds T"]
