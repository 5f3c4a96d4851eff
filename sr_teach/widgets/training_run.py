"""A training run a widget can show and stop: an Experiment trained in chunks, here or in the background.

    run = TrainingRun(experiment, steps=300, chunks=10)
    run.add_listener(lambda run: print(run.experiment.trainer.step))  # after every chunk
    run.start()      # trains in a background thread; the notebook stays free for a Stop click
    run.stop()       # ends it after the current step
    run.wait()       # or block until it ends; run.message says how it ended

The live-training panel (lessons 03, 04) and the before-and-after workbench (lesson 07) train this way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from sr_teach.experiment import Experiment
from sr_teach.training import History, TrainingDiverged

OUTCOMES = ("finished", "stopped", "diverged", "interrupted", "failed")


class TrainingRun:
    """Trains `experiment` for `steps` more steps and/or `seconds` more seconds (whichever ends first)
    in `chunks` pieces; each ends with a validation and a call of every listener.

    Why a background thread (`start`): while a cell's code runs, the kernel reads no messages from
    the browser, so a Stop button could never be clicked. A thread leaves the kernel free at once,
    and PyTorch releases Python's global lock inside its convolutions, so the kernel answers clicks
    while the thread trains; widgets may be updated from a thread. Stop takes effect after the
    current step. While a run trains, do not use its model in other cells; `wait()` for it first.

    A run trains once; when it has ended, `outcome` is one of OUTCOMES and `message` says why in
    words. A divergence is a message, not a crash: the trainer has put back the last good weights,
    and they are validated so a PSNR curve ends on them. An error in the background thread is kept
    in `error` (a thread has nobody to raise to); `run_blocking` raises it as usual.
    """

    def __init__(
        self, experiment: Experiment, steps: int | None = None, seconds: float | None = None, chunks: int = 10
    ) -> None:
        if steps is None and seconds is None:
            raise ValueError("give the run a length: steps, seconds, or both")
        if steps is not None and steps < 1:
            raise ValueError(f"steps must be at least 1, not {steps}")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"seconds must be positive, not {seconds}")
        if chunks < 1:
            raise ValueError(f"chunks must be at least 1, not {chunks}")
        self.experiment = experiment
        self.steps, self.seconds, self.chunks = steps, seconds, chunks
        self.outcome: str | None = None  # one of OUTCOMES once the run has ended
        self.message = ""  # how it ended, in words
        self.error: BaseException | None = None  # what the background thread raised, if anything
        self.stop_requested = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[TrainingRun], None]] = []
        trainer = experiment.trainer
        self._first_step, self._first_seconds = trainer.step, trainer.training_seconds

    @property
    def running(self) -> bool:
        return self._running

    @property
    def steps_done(self) -> int:
        return self.experiment.trainer.step - self._first_step

    @property
    def seconds_done(self) -> float:
        return self.experiment.trainer.training_seconds - self._first_seconds

    def add_listener(self, listener: Callable[[TrainingRun], None]) -> None:
        """Call `listener(run)` when the run starts, after each chunk, and when it has ended."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self)

    # ---------------------------------------------------------------------------- start and stop
    def run_blocking(self) -> History:
        """Train here and return the history when the run ends (Ctrl-C stops it, keeping everything)."""
        self._claim()
        try:
            self._train()
        except BaseException as error:  # a second Ctrl-C, or a real error: ended, and raised as usual
            self._fail(error)
            raise
        finally:
            self._running = False
            self._notify()
        return self.experiment.history

    def start(self) -> threading.Thread:
        """Train in a background thread and return at once (a Run button); `wait()` blocks until done."""
        self._claim()
        self._thread = threading.Thread(target=self._train_in_background, name="sr_teach-training", daemon=True)
        self._thread.start()
        return self._thread

    def _claim(self) -> None:
        if self._running:
            raise RuntimeError("this run is already training; wait() for it or stop() it first")
        if self.outcome is not None:
            raise RuntimeError(f"this run has ended ({self.outcome}); make a new TrainingRun to train on")
        self._running = True

    def _train_in_background(self) -> None:
        try:
            self._train()
        except Exception as error:  # shown by the listeners: a background thread has nobody to raise to
            self._fail(error)
        finally:
            self._running = False
            self._notify()

    def stop(self) -> None:
        """End the run after the current step (the Stop button)."""
        self.stop_requested = True
        self.experiment.trainer.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background run has ended; False if `timeout` seconds passed first."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    # ---------------------------------------------------------------------------------- training
    def _train(self) -> None:
        trainer = self.experiment.trainer
        if trainer.validation_pairs and not trainer.history.validation_step:
            trainer.validate()  # where the PSNR curve starts
        self._notify()
        chunk_steps = None if self.steps is None else math.ceil(self.steps / self.chunks)
        chunk_seconds = None if self.seconds is None else self.seconds / self.chunks
        while not self.stop_requested:
            steps = None if self.steps is None else min(chunk_steps, self.steps - self.steps_done)
            seconds = None if self.seconds is None else min(chunk_seconds, self.seconds - self.seconds_done)
            if (steps is not None and steps <= 0) or (seconds is not None and seconds <= 0):
                break  # the run's length is done
            try:
                history = self.experiment.train(steps=steps, seconds=seconds)
            except TrainingDiverged as diverged:  # TrainConfig(raise_on_divergence=True)
                return self._end_diverged(str(diverged))
            if history.stop_reason == "diverged":  # the trainer warned and stopped instead
                return self._end_diverged(history.stop_message)
            if history.stop_reason == "interrupted":  # Ctrl-C, the kernel's interrupt or SIGTERM
                return self._end("interrupted", f"interrupted: {history.stop_message}")
            if history.stop_reason == "stopped":  # stop(), or a callback that called trainer.stop()
                self.stop_requested = True
            self._notify()
            if history.stop_reason == "total_steps":  # no step limit, and the trainer's planned length is done
                break
        if self.stop_requested:
            self._end("stopped", f"stopped at step {trainer.step}")
        else:
            self._end("finished", f"finished at step {trainer.step}")

    def _end_diverged(self, advice: str) -> None:
        trainer = self.experiment.trainer
        if trainer.validation_pairs:
            trainer.validate()  # the curve's last point: the restored weights, not the broken ones
        self._end("diverged", f"diverged: {advice}")

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if isinstance(error, KeyboardInterrupt):
            self._end("interrupted", "interrupted")
        else:
            self._end("failed", f"training failed: {type(error).__name__}: {error}")

    def _end(self, outcome: str, message: str) -> None:
        self.outcome, self.message = outcome, message

