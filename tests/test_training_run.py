"""TrainingRun: an Experiment trained in chunks, here or in a background thread, and how it ends.

ESPCN on the tiny synthetic photos of conftest (LR patches of 8 pixels, batches of 4): a few steps
take a fraction of a second on a CPU. Every check is on steps and state, never on elapsed time.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import torch

from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.training import Callback, DivergenceWarning, TrainConfig
from sr_teach.widgets.training_run import TrainingRun


def tiny_experiment(tiny_images: dict[str, Path], **train_changes: object) -> Experiment:
    folder = str(next(iter(tiny_images.values())).parent)
    train = TrainConfig(**{"loss": "mse", "log_every": 2, "device": "cpu", "divergence_grace_steps": 2,
                           "validation_every": None, **train_changes})
    return Experiment(ExperimentConfig(model="espcn", scale=3, data=(folder,), patch_size=8, batch_size=4,
                                       validation_fraction=0.34, augment="none", train=train))


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the training thread"
        time.sleep(0.01)


class RaiseAtFirstLog(Callback):
    def on_log(self, trainer, record) -> None:
        raise RuntimeError("the sampler's disk went away")


def test_a_run_trains_its_steps_in_chunks_each_ending_with_a_validation(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    run = TrainingRun(experiment, steps=6, chunks=3)
    seen = []
    run.add_listener(lambda run: seen.append((run.running, experiment.trainer.step)))
    history = run.run_blocking()
    assert history is experiment.history and history.step == list(range(1, 7))
    assert history.validation_step == [0, 2, 4, 6]  # where the curve starts, then one per chunk
    assert seen == [(True, 0), (True, 2), (True, 4), (True, 6), (False, 6)]  # start, chunks, end
    assert (run.outcome, run.message, run.steps_done, run.error) == ("finished", "finished at step 6", 6, None)
    assert not run.running


def test_a_second_run_carries_on_from_the_first(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    TrainingRun(experiment, steps=4, chunks=2).run_blocking()
    second = TrainingRun(experiment, steps=3, chunks=2)  # chunks of 2, then the 1 step left
    second.run_blocking()
    assert second.steps_done == 3 and experiment.trainer.step == 7
    assert experiment.history.validation_step == [0, 2, 4, 6, 7]


def test_a_time_budget_is_split_into_as_many_chunks(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    run = TrainingRun(experiment, seconds=0.4, chunks=2)
    chunks = []
    run.add_listener(lambda run: chunks.append(run.steps_done) if run.running and run.steps_done else None)
    run.run_blocking()
    # Each chunk trains until its 0.2 s are spent (or more, on a slow first step), so at most two
    # chunks spend the budget, and each ends with a validation.
    assert run.outcome == "finished" and run.seconds_done >= 0.4
    assert 1 <= len(chunks) <= 2 and len(experiment.history.validation_step) == 1 + len(chunks)


def test_a_run_ends_where_the_trainer_has_planned_to_end(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images, total_steps=3)
    run = TrainingRun(experiment, seconds=60, chunks=2)  # no step limit: config.total_steps applies
    run.run_blocking()
    assert run.outcome == "finished" and experiment.trainer.step == 3


def test_stop_from_a_listener_ends_the_run_after_the_chunk(tiny_images) -> None:
    run = TrainingRun(tiny_experiment(tiny_images), steps=20, chunks=10)
    run.add_listener(lambda run: run.stop() if run.steps_done >= 2 else None)
    run.run_blocking()
    assert (run.outcome, run.steps_done, run.message) == ("stopped", 2, "stopped at step 2")


def test_a_callback_that_stops_the_trainer_stops_the_run(tiny_images) -> None:
    class StopAtStep4(Callback):
        def on_log(self, trainer, record) -> None:
            if record.step == 4:
                trainer.stop()

    experiment = tiny_experiment(tiny_images)
    experiment.trainer.callbacks.append(StopAtStep4())
    run = TrainingRun(experiment, steps=20, chunks=2)
    run.run_blocking()
    assert run.outcome == "stopped" and experiment.trainer.step == 4


def test_in_the_background_the_caller_is_free_and_stop_works(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    run = TrainingRun(experiment, steps=100_000, chunks=50_000)
    thread = run.start()
    assert thread.daemon and run.running
    with pytest.raises(RuntimeError, match="already training"):
        run.start()
    wait_for(lambda: experiment.trainer.step >= 2)
    run.stop()
    assert run.wait(timeout=60)
    assert run.outcome == "stopped" and 2 <= run.steps_done < 100_000
    assert experiment.history.validation_step[-1] == experiment.trainer.step  # the last chunk was measured
    with pytest.raises(RuntimeError, match="has ended"):
        run.run_blocking()


@pytest.mark.parametrize("raise_on_divergence", [True, False])
def test_divergence_is_a_message_and_the_good_weights_are_measured(tiny_images, raise_on_divergence) -> None:
    experiment = tiny_experiment(tiny_images, learning_rate=50.0, log_every=1,
                                 raise_on_divergence=raise_on_divergence)
    run = TrainingRun(experiment, steps=60, chunks=3)
    if raise_on_divergence:
        run.run_blocking()
    else:
        with pytest.warns(DivergenceWarning):
            run.run_blocking()
    assert run.outcome == "diverged" and run.steps_done < 60
    assert run.message.startswith("diverged: loss became") and "smaller learning rate" in run.message
    assert all(torch.isfinite(parameter).all() for parameter in experiment.model.parameters())
    # the curve ends on the restored weights, not on the broken ones
    assert experiment.history.validation_psnr[-1] == pytest.approx(experiment.trainer.evaluate(), abs=1e-6)


def test_the_kernel_interrupt_ends_the_whole_run_not_just_a_chunk(tiny_images) -> None:
    class InterruptAtStep4(Callback):
        def on_log(self, trainer, record) -> None:
            if record.step == 4:
                signal.raise_signal(signal.SIGINT)  # what the kernel's interrupt button sends

    experiment = tiny_experiment(tiny_images)
    experiment.trainer.callbacks.append(InterruptAtStep4())
    run = TrainingRun(experiment, steps=20, chunks=2)
    run.run_blocking()
    assert run.outcome == "interrupted" and experiment.trainer.step == 4  # the step in progress completes
    assert run.message.startswith("interrupted: SIGINT at step")


def test_an_error_in_the_background_is_kept_not_lost(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    experiment.trainer.callbacks.append(RaiseAtFirstLog())
    run = TrainingRun(experiment, steps=10)
    ended = []
    run.add_listener(lambda run: ended.append(run.outcome) if not run.running else None)
    run.start()
    assert run.wait(timeout=60)
    assert isinstance(run.error, RuntimeError) and ended == ["failed"]
    assert run.message == "training failed: RuntimeError: the sampler's disk went away"


def test_run_blocking_raises_an_error_and_records_it(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    experiment.trainer.callbacks.append(RaiseAtFirstLog())
    run = TrainingRun(experiment, steps=10)
    with pytest.raises(RuntimeError, match="disk went away"):
        run.run_blocking()
    assert run.outcome == "failed" and isinstance(run.error, RuntimeError) and not run.running


def test_bad_lengths_are_refused(tiny_images) -> None:
    experiment = tiny_experiment(tiny_images)
    with pytest.raises(ValueError, match="length"):
        TrainingRun(experiment)
    with pytest.raises(ValueError, match="steps"):
        TrainingRun(experiment, steps=0)
    with pytest.raises(ValueError, match="seconds"):
        TrainingRun(experiment, seconds=-1)
    with pytest.raises(ValueError, match="chunks"):
        TrainingRun(experiment, steps=5, chunks=0)
