"""Training: a small trainer that knows nothing about the model, and checkpoints you can trust.

The trainer (after minGPT's) runs the loop every SR paper describes: draw a batch of (input, target)
patches, compare the network's output with the target through a loss, take an optimizer step. It
counts *steps*, not epochs, because SR training samples random patches forever. What it reports it
reports as data (`History`: plain lists a notebook can plot) and through callbacks, so the notebook
owns the display: a live plot, a Stop button, a progress bar.

    trainer = Trainer(model, sampler, TrainConfig(learning_rate=1e-3, total_steps=2000),
                      validation_pairs=pairs, validation_border=scale)
    history = trainer.train(seconds=60)   # train for a minute...
    history = trainer.train(steps=500)    # ...then 500 steps more: it carries on where it stopped

Things go wrong in training, and a lesson should show them rather than crash:
- Ctrl-C (the notebook's stop button) ends training cleanly and keeps the weights and history;
- a loss that becomes NaN or explodes stops training, restores the last good weights and says
  which learning rate to try instead.

Checkpoints hold only tensors and plain Python values (`state_dict` + config), so they load with
`torch.load(path, weights_only=True)`, which cannot run code hidden in a downloaded file.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sr_teach.device import pick_device
from sr_teach.metrics import psnr

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step")
PRECISIONS = ("auto", "off", "bf16", "fp16")
STOP_REASONS = ("steps", "total_steps", "time", "stopped", "interrupted", "diverged")
CHECKPOINT_FORMAT = "sr_teach-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """How to train: every choice in one place, each field with the reason it exists."""

    # Step size of the optimizer. The most important knob: too large and the loss becomes NaN,
    # too small and nothing happens in the time a lesson has. 1e-3 is a safe start for Adam.
    learning_rate: float = 1e-3
    # "adam" (what most SR papers use since 2016), "adamw" (Adam with decoupled weight decay) or
    # "sgd" with momentum (what SRCNN used, and slower to converge: worth seeing once).
    optimizer: str = "adam"
    # SGD momentum: averages gradients over ~1/(1 - momentum) steps to smooth the noisy descent.
    momentum: float = 0.9
    # Pulls weights towards zero to limit overfitting; SR models rarely need it (patches are plenty).
    weight_decay: float = 0.0
    # Name understood by sr_teach.losses.get_loss ("l1", "mse", ...) or any callable
    # loss(prediction, target) -> scalar tensor. L1 gives sharper SR results than MSE (EDSR, 2017).
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "l1"
    # Length of the planned run. Schedules are defined over it, and train() with no limits stops there.
    total_steps: int = 5000
    # How the learning rate changes: "constant", "cosine" (smooth decay to the end of total_steps)
    # or "step" (multiply by decay_factor every decay_every steps, as EDSR does).
    lr_schedule: str = "constant"
    # Steps of linear ramp-up at the start: large early gradients of a random network can blow up.
    warmup_steps: int = 0
    # Cosine only: the learning rate reached at total_steps, as a fraction of learning_rate.
    cosine_final_fraction: float = 0.0
    # Step schedule only: multiply the learning rate by decay_factor every decay_every steps.
    decay_every: int = 1000
    decay_factor: float = 0.5
    # Rescale gradients whose total norm exceeds this (None = never): guards against single bad
    # batches, and lets VDSR-style networks train with large learning rates.
    grad_clip: float | None = None
    # Compute in 16-bit floats where safe: "auto" (on for CUDA only: bf16 where supported, else fp16
    # with loss scaling), "off", "bf16" or "fp16" (CUDA only). About 2x faster on recent GPUs.
    mixed_precision: str = "auto"
    # "auto" (CUDA, then Apple MPS, then CPU), or "cpu", "cuda", "cuda:1", "mps" (see sr_teach.device).
    device: str = "auto"
    # Seeds torch, random and numpy when the Trainer is built, so a run can be repeated exactly
    # (on CPU). None leaves the random state alone. Seed the model's construction yourself.
    seed: int | None = 0
    # Measure validation PSNR every this many steps (None = only at the end of each train() call).
    # Validation costs a forward pass over every validation image, so not too often.
    validation_every: int | None = 500
    # Read the loss back from the device every this many steps: each read waits for the GPU, so
    # doing it every step would slow training; logs, NaN checks and good-weight copies happen here.
    log_every: int = 10
    # A loss above this multiple of the best smoothed (running-average) loss counts as exploding:
    # training stops and the last good weights are restored. None disables the check (NaN still stops).
    divergence_factor: float | None = 10.0
    # Steps during which only a 10x larger jump counts as exploding (NaN/Inf are caught from the
    # first step): a network that starts as bicubic has a tiny first loss that Adam's first updates
    # raise 30-fold, which is not divergence; a learning rate that wrecks the network still is.
    divergence_grace_steps: int = 50
    # True: raise TrainingDiverged after restoring the weights, e.g. in a script or a sweep.
    # False (default): stop with a warning, so a notebook can show the divergence and carry on.
    raise_on_divergence: bool = False
    # True: re-raise Ctrl-C after stopping cleanly, for scripts that must exit. False: just return.
    reraise_interrupt: bool = False

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, not {self.lr_schedule!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {PRECISIONS}, not {self.mixed_precision!r}")
        if not (isinstance(self.loss, str) or callable(self.loss)):
            raise TypeError(f"loss must be a loss name or a callable, not {type(self.loss).__name__}")
        for name in ("total_steps", "log_every", "decay_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps cannot be negative, got {self.warmup_steps}")
        if self.validation_every is not None and self.validation_every < 1:
            raise ValueError(f"validation_every must be at least 1 or None, not {self.validation_every!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, not {self.grad_clip!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor must be above 1 or None, not {self.divergence_factor!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values for a checkpoint; a callable loss is stored by its name."""
        values = asdict(self)
        if callable(self.loss):
            values["loss"] = getattr(self.loss, "__name__", type(self.loss).__name__)
        return values


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """The learning rate used for update number `step` (0 = the first update) under `config`.

    warmup (step < W):  lr (step + 1) / W
    constant:           lr
    cosine:             lr (f + (1 - f) (1 + cos(pi t)) / 2),  t = (step - W) / (total_steps - W) in [0, 1]
    step:               lr decay_factor ^ floor(step / decay_every)

    The schedule is a pure function of the step, so resuming a run needs only the step counter.
    """
    base = config.learning_rate
    warmup = config.warmup_steps
    if step < warmup:
        return base * (step + 1) / warmup
    if config.lr_schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, config.total_steps - warmup))
        fraction = config.cosine_final_fraction
        return base * (fraction + (1 - fraction) * 0.5 * (1 + math.cos(math.pi * progress)))
    if config.lr_schedule == "step":
        return base * config.decay_factor ** (step // config.decay_every)
    return base


@dataclass
class History:
    """What happened during training, as plain lists a notebook can plot (matplotlib skips NaN)."""

    step: list[int] = field(default_factory=list)  # every training step, counted from 1
    loss: list[float] = field(default_factory=list)  # training loss of that step's batch
    learning_rate: list[float] = field(default_factory=list)  # learning rate of that step
    wall_time: list[float] = field(default_factory=list)  # training seconds so far (pauses excluded)
    throughput_step: list[int] = field(default_factory=list)  # steps where speed was measured
    samples_per_second: list[float] = field(default_factory=list)  # training patches per second
    validation_step: list[int] = field(default_factory=list)  # steps where validation ran
    validation_psnr: list[float] = field(default_factory=list)  # mean PSNR (dB) over validation pairs
    stop_reason: str | None = None  # why the last train() call ended: one of STOP_REASONS
    stop_message: str = ""  # the explanation shown to the user (e.g. for a divergence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> History:
        known = {f.name for f in fields(cls)}
        return cls(**{key: (list(value) if isinstance(value, (list, tuple)) else value)
                      for key, value in values.items() if key in known})


@dataclass
class StepRecord:
    """Passed to on_step after every step. `loss` reads the loss from the device (a GPU sync)."""

    step: int
    learning_rate: float
    wall_time: float
    loss_tensor: torch.Tensor  # detached 0-d tensor, still on the device

    @property
    def loss(self) -> float:
        return float(self.loss_tensor)


@dataclass
class LogRecord:
    """Passed to on_log every log_every steps: the window's mean loss and the training speed."""

    step: int
    loss: float  # mean training loss over the steps since the last log
    learning_rate: float
    samples_per_second: float
    wall_time: float


@dataclass
class ValidationRecord:
    """Passed to on_validation: the mean PSNR at this step and whether it is the best so far."""

    step: int
    psnr: float
    is_best: bool


@dataclass
class StopRecord:
    """Passed to on_stop when a train() call ends."""

    step: int
    reason: str  # one of STOP_REASONS
    message: str


class Callback:
    """Base class for trainer callbacks; override the events you need (all optional).

    Any object with some of these methods works too, and so does a plain function, which is then
    called as `function(event, trainer, record)` with event "train_start", "step", "log",
    "validation" or "stop". Call `trainer.stop()` from a callback to end training after this step.
    """

    def on_train_start(self, trainer: Trainer, record: None) -> None: ...

    def on_step(self, trainer: Trainer, record: StepRecord) -> None: ...

    def on_log(self, trainer: Trainer, record: LogRecord) -> None: ...

    def on_validation(self, trainer: Trainer, record: ValidationRecord) -> None: ...

    def on_stop(self, trainer: Trainer, record: StopRecord) -> None: ...


EVENTS = ("train_start", "step", "log", "validation", "stop")


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded (raised only with TrainConfig(raise_on_divergence=True))."""

    def __init__(self, message: str, step: int, learning_rate: float, restored_step: int) -> None:
        super().__init__(message)
        self.step = step
        self.learning_rate = learning_rate
        self.restored_step = restored_step


class DivergenceWarning(UserWarning):
    """Shown when training stops because the loss diverged (the notebook keeps running)."""


class Trainer:
    """Trains any model on (input, target) batches from `sampler`, step by step.

    model: an nn.Module mapping an input batch (B, C, h, w) to a prediction shaped like the target.
    sampler: an iterable of (input, target) batches; restarted if it runs out.
    validation_pairs: (input, target) full images, (C, H, W) or (1, C, H, W), for the validation PSNR
        that chooses `best_state`. Validation data, never the test set.
    validation_border: pixels cropped from each edge before the PSNR (the protocol uses the scale).
    validation_y_channel: measure colour images on luma Y, as the published tables do.
    callbacks: objects with on_<event> methods, or functions (see `Callback`).
    """

    def __init__(
        self,
        model: nn.Module,
        sampler: Iterable[tuple[torch.Tensor, torch.Tensor]],
        config: TrainConfig | None = None,
        validation_pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        validation_border: int = 0,
        callbacks: Iterable[Any] = (),
        *,
        validation_y_channel: bool = False,
    ) -> None:
        self.config = config if config is not None else TrainConfig()
        if self.config.seed is not None:
            seed_everything(self.config.seed)
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device)
        self.sampler = sampler
        self._batches: Iterator | None = None
        self.validation_pairs = list(validation_pairs) if validation_pairs else []
        self.validation_border = validation_border
        self.validation_y_channel = validation_y_channel
        self.callbacks = list(callbacks)
        self.loss_function = resolve_loss(self.config.loss)
        self.optimizer = build_optimizer(self.model, self.config)
        self.amp_dtype = resolve_mixed_precision(self.config.mixed_precision, self.device)
        # fp16 needs loss scaling so that small gradients do not round to zero; bf16 does not.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None

        self.step = 0  # optimizer updates done so far
        self.history = History()
        self.best_state: dict[str, torch.Tensor] | None = None  # weights with the best validation PSNR
        self.best_validation_psnr = -math.inf
        self.best_validation_step: int | None = None
        self.stop_requested = False
        self._training_seconds = 0.0  # accumulated over train() calls
        self._smoothed_loss: float | None = None
        self._best_smoothed_loss: float | None = None
        # Two in-memory copies of the weights for divergence recovery, refreshed at log points (not
        # every step). "candidate" is the newest; it is trusted once the step after it had a good loss.
        self._candidate_state: dict[str, torch.Tensor] | None = None
        self._candidate_step = 0
        self._good_state: dict[str, torch.Tensor] | None = None
        self._good_step = 0
        self._clear_window()

    @property
    def training_seconds(self) -> float:
        """Wall-clock seconds spent in train() so far, over every call and every resumed session."""
        return self._training_seconds

    # ----------------------------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask training to end after the current step (e.g. from a widget's Stop button callback)."""
        self.stop_requested = True

    def train(self, steps: int | None = None, seconds: float | None = None, progress: bool = False) -> History:
        """Train for `steps` more steps and/or `seconds` of wall time, whichever ends first.

        With neither, train until config.total_steps. Call again to continue: the optimizer, the
        schedule, the step counter and the history carry on. Returns `self.history`.
        """
        if steps is not None and steps < 0:
            raise ValueError(f"steps cannot be negative, got {steps}")
        config = self.config
        target_step = self.step + steps if steps is not None else config.total_steps
        limit_reason = "steps" if steps is not None else "total_steps"
        handlers = {event: self._handlers(event) for event in EVENTS}
        on_step = handlers["step"]
        self.stop_requested = False
        if self._candidate_state is None:
            self._snapshot_candidate()
        if self._batches is None:
            self._batches = iter(self.sampler)

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max(0, target_step - self.step), unit="step")
        self._emit(handlers["train_start"], None)
        self.model.train()
        start = time.perf_counter()
        deadline = start + seconds if seconds is not None else math.inf
        training_seconds_before = self._training_seconds
        self._window_start = start
        reason, message = limit_reason, ""
        log_every, validation_every = config.log_every, config.validation_every
        try:
            while True:
                if self.step >= target_step:
                    reason = limit_reason
                    break
                if time.perf_counter() >= deadline:
                    reason = "time"
                    break
                loss, learning_rate, batch_size = self._training_step()
                now = time.perf_counter()
                wall_time = training_seconds_before + (now - start)
                self._window_losses.append(loss)
                self._window_steps.append(self.step)
                self._window_learning_rates.append(learning_rate)
                self._window_times.append(wall_time)
                self._window_samples += batch_size
                if on_step:
                    self._emit(on_step, StepRecord(self.step, learning_rate, wall_time, loss))
                validating = bool(validation_every and self.validation_pairs and self.step % validation_every == 0)
                if validating or self.step % log_every == 0:
                    message = self._log(handlers["log"], bar)  # checks for divergence: validate good weights only
                    if message:
                        reason = "diverged"
                        break
                if validating:
                    self._validate(handlers["validation"])
                    self._window_start = time.perf_counter()  # validation time is not training speed
                if self.stop_requested:
                    reason = "stopped"
                    break
        except KeyboardInterrupt:
            reason, message = "interrupted", f"training interrupted at step {self.step}; weights and history kept"
        except Exception:
            if bar is not None:
                bar.close()
            raise  # a bug (wrong shapes, a broken sampler...): show it; unlogged steps are logged next time
        finally:
            self._training_seconds = training_seconds_before + (time.perf_counter() - start)

        if reason != "diverged":
            divergence = self._log(handlers["log"], bar)  # the steps since the last log point
            if divergence:
                reason, message = "diverged", divergence
        if reason not in ("diverged", "interrupted") and self.validation_pairs:
            if not self.history.validation_step or self.history.validation_step[-1] != self.step:
                self._validate(handlers["validation"])
        if bar is not None:
            bar.close()
        self.history.stop_reason = reason
        self.history.stop_message = message
        self._emit(handlers["stop"], StopRecord(self.step, reason, message))
        if reason == "diverged":
            if config.raise_on_divergence:
                raise TrainingDiverged(message, self._diverged_step, self._diverged_learning_rate, self._restored_step)
            warnings.warn(message, DivergenceWarning, stacklevel=2)
        if reason == "interrupted" and config.reraise_interrupt:
            raise KeyboardInterrupt(message)
        return self.history

    # ------------------------------------------------------------------------------- one step
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self._batches)
        except StopIteration:  # a finite sampler (say a DataLoader) starts another pass
            self._batches = iter(self.sampler)
            try:
                return next(self._batches)
            except StopIteration:
                raise ValueError("the sampler yielded no batches") from None

    def _training_step(self) -> tuple[torch.Tensor, float, int]:
        """One optimizer update. Returns the detached loss (still on the device), lr and batch size."""
        input_batch, target_batch = self._next_batch()  # (B, C, h, w), (B, C, H, W)
        if input_batch.device != self.device:  # checked first: .to() costs microseconds even when idle
            input_batch = input_batch.to(self.device, non_blocking=True)
        if target_batch.device != self.device:
            target_batch = target_batch.to(self.device, non_blocking=True)
        learning_rate = learning_rate_at(self.step, self.config)
        if self.optimizer.param_groups[0]["lr"] != learning_rate:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.optimizer.zero_grad(set_to_none=True)
        if self.amp_dtype is None:
            prediction = self.model(input_batch)  # (B, C, H, W)
            loss = self.loss_function(prediction, target_batch)
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype):
                prediction = self.model(input_batch)
            loss = self.loss_function(prediction.float(), target_batch)  # the loss in float32 always

        if self.scaler is None:
            loss.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if self.config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.step += 1
        return loss.detach(), learning_rate, int(input_batch.shape[0])

    # ------------------------------------------------------------------ logging and divergence
    def _clear_window(self) -> None:
        self._window_losses: list[torch.Tensor] = []
        self._window_steps: list[int] = []
        self._window_learning_rates: list[float] = []
        self._window_times: list[float] = []
        self._window_samples = 0
        self._window_start = time.perf_counter()

    def _log(self, handlers: list[Callable], bar: Any = None) -> str:
        """Move the losses since the last log into the history and check them.

        Returns "" when all is well, else the divergence message (weights already restored).
        """
        if not self._window_losses:
            return ""
        loss_tensors, steps = self._window_losses, self._window_steps
        learning_rates, wall_times = self._window_learning_rates, self._window_times
        elapsed = time.perf_counter() - self._window_start
        samples_per_second = self._window_samples / max(elapsed, 1e-9)
        self._clear_window()
        losses = torch.stack(loss_tensors).tolist()  # the one device sync per log_every steps

        history = self.history
        history.step.extend(steps)
        history.loss.extend(losses)
        history.learning_rate.extend(learning_rates)
        history.wall_time.extend(wall_times)
        history.throughput_step.append(steps[-1])
        history.samples_per_second.append(samples_per_second)
        record = LogRecord(steps[-1], sum(losses) / len(losses), learning_rates[-1], samples_per_second, wall_times[-1])
        if bar is not None:
            bar.update(len(steps))
            bar.set_postfix(loss=f"{record.loss:.4g}", lr=f"{record.learning_rate:.2g}")
        self._emit(handlers, record)

        problem = self._find_divergence(losses, steps)
        if problem is not None:
            index, description = problem
            return self._recover(steps[index], learning_rates[index], description)
        # Every loss in the window is good, including that of the step right after the candidate
        # copy, so the candidate weights are trusted; the current weights become the new candidate.
        self._good_state, self._candidate_state = self._candidate_state, self._good_state
        self._good_step = self._candidate_step
        self._snapshot_candidate()
        return ""

    def _find_divergence(self, losses: list[float], steps: list[int]) -> tuple[int, str] | None:
        factor = self.config.divergence_factor
        for index, loss in enumerate(losses):
            if math.isnan(loss):
                return index, "NaN"
            if math.isinf(loss):
                return index, "infinite"
            best = self._best_smoothed_loss
            early = steps[index] <= self.config.divergence_grace_steps
            limit = None if factor is None else factor * (10 if early else 1)  # early: only big jumps
            if limit is not None and best is not None and best > 0 and loss > limit * best:
                return index, f"{loss:.3g}, over {limit:g}x the best smoothed loss {best:.3g} (exploding)"
            # A running average (about the last 10 steps) so that one lucky batch does not set the bar.
            self._smoothed_loss = loss if self._smoothed_loss is None else 0.9 * self._smoothed_loss + 0.1 * loss
            if best is None or self._smoothed_loss < best:
                self._best_smoothed_loss = self._smoothed_loss
        return None

    def _recover(self, bad_step: int, learning_rate: float, description: str) -> str:
        """Restore the newest weights known to give a good loss, and explain what happened."""
        # The loss of step s is computed with the weights after s - 1 updates: the candidate (taken
        # after `_candidate_step` updates) is good if the first bad loss came at least 2 steps later.
        if bad_step > self._candidate_step + 1 or self._good_state is None:
            restored_state, restored_step = self._candidate_state, self._candidate_step
        else:
            restored_state, restored_step = self._good_state, self._good_step
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                value.copy_(restored_state[name])
        # Adam's running averages now hold NaN or huge values: start them afresh.
        self.optimizer.state.clear()
        if restored_state is not self._candidate_state:
            self._snapshot_candidate(step=restored_step)
        self._diverged_step, self._diverged_learning_rate, self._restored_step = bad_step, learning_rate, restored_step
        suggestion = self.config.learning_rate / 10
        return (
            f"loss became {description} at step {bad_step} with learning rate {learning_rate:g}; "
            f"weights restored from step {restored_step}; try a smaller learning rate such as {suggestion:g}"
        )

    def _snapshot_candidate(self, step: int | None = None) -> None:
        """Copy the current weights into the candidate buffers (allocated once, then reused)."""
        state = self.model.state_dict()
        with torch.no_grad():
            if self._candidate_state is None:
                self._candidate_state = {name: value.detach().clone() for name, value in state.items()}
            else:
                for name, value in state.items():
                    self._candidate_state[name].copy_(value)
        self._candidate_step = self.step if step is None else step

    # ------------------------------------------------------------------------------ validation
    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean PSNR (dB) of the model over the validation pairs, in eval mode. Records nothing."""
        if not self.validation_pairs:
            raise ValueError("no validation_pairs were given to the Trainer")
        was_training = self.model.training
        self.model.eval()
        scores = []
        try:
            for input_image, target_image in self.validation_pairs:
                input_batch = _as_batch(input_image).to(self.device)  # (1, C, h, w)
                target_batch = _as_batch(target_image)  # (1, C, H, W), stays on the CPU
                prediction = self.model(input_batch).float().clamp(0, 1).cpu()  # as saved to a PNG
                scores.append(psnr(prediction, target_batch.float(), crop_border=self.validation_border,
                                   y_channel=self.validation_y_channel))
        finally:
            self.model.train(was_training)
        return float(torch.cat(scores).mean())

    def validate(self) -> float:
        """Measure the validation PSNR now, record it in the history and keep the best weights."""
        return self._validate(self._handlers("validation"))

    def _validate(self, handlers: list[Callable]) -> float:
        mean_psnr = self.evaluate()
        self.history.validation_step.append(self.step)
        self.history.validation_psnr.append(mean_psnr)
        is_best = mean_psnr > self.best_validation_psnr
        if is_best:
            self.best_validation_psnr = mean_psnr
            self.best_validation_step = self.step
            with torch.no_grad():
                state = self.model.state_dict()
                if self.best_state is None:
                    self.best_state = {name: value.detach().clone() for name, value in state.items()}
                else:
                    for name, value in state.items():
                        self.best_state[name].copy_(value)
        self._emit(handlers, ValidationRecord(self.step, mean_psnr, is_best))
        return mean_psnr

    def restore_best_state(self) -> None:
        """Load the weights that gave the best validation PSNR into the model."""
        if self.best_state is None:
            raise ValueError("no validation has run yet, so there is no best state to restore")
        self.model.load_state_dict(self.best_state)

    # ------------------------------------------------------------------------------- callbacks
    def _handlers(self, event: str) -> list[Callable]:
        handlers = []
        for callback in self.callbacks:
            if any(hasattr(callback, f"on_{name}") for name in EVENTS):
                method = getattr(callback, f"on_{event}", None)
                # Skip Callback's empty defaults so that unused events cost nothing per step.
                if method is not None and getattr(type(callback), f"on_{event}", None) is not getattr(
                    Callback, f"on_{event}"
                ):
                    handlers.append(method)
            elif callable(callback):
                handlers.append(_FunctionCallback(callback, event))
            else:
                raise TypeError(f"a callback must be a function or have on_<event> methods, got {callback!r}")
        return handlers

    def _emit(self, handlers: list[Callable], record: Any) -> None:
        for handler in handlers:
            handler(self, record)

    # ------------------------------------------------------------------------ saving and resuming
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: weights, optimizer, step, history, RNG.

        Returns copies (tensors cloned), holding only tensors and plain values (weights_only-safe).
        """
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "history": self.history.to_dict(),
            "training_seconds": self._training_seconds,
            "smoothed_loss": self._smoothed_loss,
            "best_smoothed_loss": self._best_smoothed_loss,
            "best_state": self.best_state,
            "best_validation_psnr": self.best_validation_psnr,
            "best_validation_step": self.best_validation_step,
            "random_state": random_state(),
            "sampler": self.sampler.state_dict() if hasattr(self.sampler, "state_dict") else None,
            "config": self.config.to_dict(),
        }
        return _clone_tensors(state)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the run saved by `state_dict()` (the model and config must be the same)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = History.from_dict(state["history"])
        self._training_seconds = float(state.get("training_seconds", 0.0))
        self._smoothed_loss = state.get("smoothed_loss")
        self._best_smoothed_loss = state.get("best_smoothed_loss")
        best_state = state.get("best_state")
        self.best_state = {name: value.to(self.device) for name, value in best_state.items()} if best_state else None
        self.best_validation_psnr = float(state.get("best_validation_psnr", -math.inf))
        self.best_validation_step = state.get("best_validation_step")
        if state.get("random_state") is not None:
            set_random_state(state["random_state"])
        if state.get("sampler") is not None and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])
        self._good_state = None
        self._snapshot_candidate()
        self._clear_window()

    def save_checkpoint(
        self,
        path: str | os.PathLike,
        extra: Mapping[str, Any] | None = None,
        *,
        scale: int | None = None,
        model_name: str | None = None,
        overwrite: bool = False,
        resumable: bool = True,
    ) -> Path:
        """Save the current weights (and, if resumable, the full trainer state) with save_checkpoint."""
        return save_checkpoint(
            path,
            self.model,
            self.history,
            self.config,
            extra,
            scale=scale,
            model_name=model_name,
            trainer_state=self.state_dict() if resumable else None,
            overwrite=overwrite,
        )


class _FunctionCallback:
    """Adapts a plain function callback(event, trainer, record) to one event."""

    def __init__(self, function: Callable, event: str) -> None:
        self.function, self.event = function, event

    def __call__(self, trainer: Trainer, record: Any) -> None:
        self.function(self.event, trainer, record)


# ---------------------------------------------------------------------------------- building blocks
def resolve_loss(loss: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A callable loss as is; a name through sr_teach.losses.get_loss (imported only when needed)."""
    if callable(loss):
        return loss
    from sr_teach.losses import get_loss

    return get_loss(loss)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named in the config, over the model's trainable parameters."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if not parameters:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        parameters, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
    )


def resolve_mixed_precision(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `setting` on `device`, or None for full float32."""
    if setting == "off":
        return None
    if setting == "auto":
        if device.type != "cuda":
            return None  # CPU autocast is slow for convolutions, and MPS support varies
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if setting == "fp16" and device.type != "cuda":
        raise ValueError(f"fp16 mixed precision needs a CUDA device, not {device}; use 'bf16' or 'off'")
    return torch.bfloat16 if setting == "bf16" else torch.float16


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), Python's random and numpy, so that runs repeat."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def random_state() -> dict[str, Any]:
    """The state of every random generator, as tensors and plain values."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": {
            "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "position": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    return state


def set_random_state(state: Mapping[str, Any]) -> None:
    """Restore what random_state() returned."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
         numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    )
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.dim() == 3:
        return image[None]
    assert image.dim() == 4 and image.shape[0] == 1, (
        f"a validation image must be (C, H, W) or (1, C, H, W), got {tuple(image.shape)}"
    )
    return image


def _clone_tensors(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _clone_tensors(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone_tensors(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_clone_tensors(item) for item in value)
    return value


# ------------------------------------------------------------------------------------ checkpoints
class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be used: corrupt, foreign, or for another model."""


_CHECKPOINT_KEYS = ("model_name", "model_config", "state_dict", "history", "train_config", "extra")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    history: History | Mapping[str, Any] | None = None,
    train_config: TrainConfig | Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    scale: int | None = None,
    model_name: str | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    trainer_state: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the model's weights and how to rebuild it, safely loadable with weights_only=True.

    The file holds {"model_name", "model_config" (model.config()), "state_dict", "history",
    "train_config", "extra", "scale", "trainer_state"} and only tensors and plain Python values.
    model_name defaults to the model's name in sr_teach.models.MODELS (else its class name);
    state_dict defaults to the model's current weights (pass trainer.best_state to save the best).
    It is written to a temporary file first and then renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    model_config = dict(model.config()) if hasattr(model, "config") else {}
    if scale is None and isinstance(model_config.get("scale"), int):
        scale = model_config["scale"]
    if isinstance(history, History):
        history = history.to_dict()
    if isinstance(train_config, TrainConfig):
        train_config = train_config.to_dict()
    weights = state_dict if state_dict is not None else model.state_dict()
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_name": model_name if model_name is not None else _model_name(model),
        "model_config": model_config,
        "scale": scale,
        "state_dict": {name: value.detach().cpu() for name, value in weights.items()},
        "history": dict(history) if history is not None else None,
        "train_config": dict(train_config) if train_config is not None else None,
        "extra": dict(extra) if extra is not None else {},
        "trainer_state": _to_cpu(trainer_state) if trainer_state is not None else None,
    }
    _check_plain(checkpoint, "checkpoint")

    path.parent.mkdir(parents=True, exist_ok=True)
    file_descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".ckpt.tmp", dir=path.parent)
    try:
        with os.fdopen(file_descriptor, "wb") as file:
            torch.save(checkpoint, file)
        if path.exists() and not overwrite:  # appeared while we were writing
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike, model_name: str | None = None, scale: int | None = None
) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint, with weights_only=True, and check it.

    model_name / scale, when given, must match the checkpoint's, so that ESPCN x3 weights are never
    silently used as x2 or loaded into SRCNN. Raises FileNotFoundError or CheckpointError.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint (damaged, truncated or another kind of file)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for bad files: pickle, zip, EOF, Runtime
        text = str(error)
        if "Unsupported global" in text:  # a pickled class: not garbage, but not plain weights either
            raise CheckpointError(
                f"{path} holds Python objects, not just weights (perhaps torch.save(model) rather than a "
                "state_dict); sr_teach loads only weights_only checkpoints, since loading arbitrary objects "
                "can run code hidden in the file"
            ) from error
        raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint (damaged or truncated?): "
                              f"{type(error).__name__}: {text[:200]}") from error

    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not an sr_teach checkpoint (no 'format': '{CHECKPOINT_FORMAT}' entry); "
            "write checkpoints with sr_teach.training.save_checkpoint"
        )
    missing = [key for key in _CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is an incomplete sr_teach checkpoint: missing {missing}")
    if checkpoint.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer sr_teach (format {checkpoint['format_version']}, "
            f"this one reads up to {CHECKPOINT_VERSION}); update sr_teach"
        )
    if model_name is not None and checkpoint["model_name"] != model_name:
        raise CheckpointError(
            f"{path} holds weights for model {checkpoint['model_name']!r}, not {model_name!r}"
        )
    saved_scale = checkpoint.get("scale")
    if scale is not None and saved_scale is not None and int(saved_scale) != int(scale):
        raise CheckpointError(
            f"{path} was trained for scale x{saved_scale}, not x{scale}: a network learns one scale, "
            f"so use a x{scale} checkpoint (or train one)"
        )
    return checkpoint


def model_from_checkpoint(
    checkpoint: Mapping[str, Any],
    build_model: Callable[..., nn.Module] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild the model of a loaded checkpoint and load its weights (in eval mode).

    build_model(name, **config) defaults to sr_teach.models.build_model.
    """
    if build_model is None:
        from sr_teach.models import build_model
    model = build_model(checkpoint["model_name"], **checkpoint["model_config"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights do not fit the rebuilt {checkpoint['model_name']!r} model: {error}"
        ) from error
    return model.to(pick_device(device)).eval()


def _model_name(model: nn.Module) -> str:
    try:
        from sr_teach.models import MODELS
    except ImportError:
        MODELS = {}
    for name, model_class in MODELS.items():
        if type(model) is model_class:
            return name
    return type(model).__name__


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_cpu(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_cpu(item) for item in value)
    return value


def _check_plain(value: Any, where: str) -> None:
    """Refuse values that weights_only loading would reject, naming where they are."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; use str keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; checkpoints hold only tensors, numbers, strings, lists "
        "and dicts so that they load with weights_only=True"
    )
