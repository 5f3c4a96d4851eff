"""Training: the loop every SR paper describes, on one screen.

    trainer = Trainer(model, sampler, TrainConfig(learning_rate=1e-3), validation_pairs=pairs)
    history = trainer.train(seconds=60)   # a minute...
    history = trainer.train(steps=500)    # ...then 500 steps more: it carries on where it stopped

`Trainer.train` is the loop: draw a batch, forward, loss, log, backward, clip, step, validate, keep
the best. Its guards (a diverging loss, Ctrl-C and SIGTERM, mixed precision) live in
`sr_teach.guards`; `state_dict` holds a run for an exact resume and `sr_teach.checkpoints` writes
it to a file. The trainer counts steps, not epochs, and knows nothing about SR: it reports through
`History` (plain lists) and callbacks, after minGPT's trainer. Under torchrun the same loop runs in
every process, the model wrapped for DistributedDataParallel (`sr_teach.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from sr_teach import distributed
from sr_teach.guards import DivergenceGuard, StopSignals, copy_weights, mixed_precision_dtype
from sr_teach.losses import get_loss
from sr_teach.metrics import psnr

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step")
PRECISIONS = ("auto", "off", "bf16", "fp16")
STOP_REASONS = ("steps", "total_steps", "time", "stopped", "interrupted", "diverged")


@dataclass
class TrainConfig:
    """How to train: every choice in one place, each field with the reason it exists."""

    # Step size of the optimizer. The most important knob: too large and the loss becomes NaN,
    # too small and nothing happens in the time a lesson has. 1e-3 is a safe start for Adam.
    learning_rate: float = 1e-3
    # "adam" (what most SR papers use since 2016), "adamw" (Adam with decoupled weight decay) or
    # "sgd" with momentum (what SRCNN used, and slower to converge: worth seeing once).
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only: averages gradients over ~1/(1 - momentum) steps
    weight_decay: float = 0.0  # pulls weights towards zero; SR rarely needs it (patches are plenty)
    # A name in sr_teach.losses.LOSSES ("l1", "mse", ...) or any callable loss(prediction, target).
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "l1"
    # Length of the planned run: schedules are defined over it, and train() with no limit stops there.
    total_steps: int = 5000
    # "constant", "cosine" (smooth decay to the end of total_steps) or "step" (multiply by
    # decay_factor every decay_every steps, as EDSR does).
    lr_schedule: str = "constant"
    warmup_steps: int = 0  # linear ramp-up: large early gradients of a random network can blow up
    cosine_final_fraction: float = 0.0  # cosine: the rate reached at total_steps, as a fraction
    decay_every: int = 1000
    decay_factor: float = 0.5
    # Rescale gradients whose total norm exceeds this (None = never): guards against single bad
    # batches, and lets VDSR-style networks train with large learning rates.
    grad_clip: float | None = None
    # "auto" (bf16, or fp16 with loss scaling, on CUDA; off elsewhere), "off", "bf16" or "fp16".
    mixed_precision: str = "auto"
    # "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:1" or "mps" (sr_teach.device).
    device: str = "auto"
    # Seed torch's global generator when the Trainer is built; None (default) leaves it alone.
    seed: int | None = None
    # Measure the validation PSNR every this many steps (None: only at the end of each train()).
    validation_every: int | None = 500
    # Read the loss back from the device every this many steps: each read waits for the GPU, so
    # logs, divergence checks and good-weight copies happen here, not at every step.
    log_every: int = 10
    # A loss above this multiple of the best smoothed loss counts as exploding (None: only NaN/inf).
    divergence_factor: float | None = 10.0
    # Steps during which only a 10x larger jump counts as exploding: a network that starts as
    # bicubic has a tiny first loss that Adam's first updates raise 30-fold, which is not divergence.
    divergence_grace_steps: int = 50
    # True: raise TrainingDiverged (a script, a sweep). False: stop with a warning, so a notebook
    # can show the divergence and carry on.
    raise_on_divergence: bool = False

    def __post_init__(self) -> None:
        rules = [  # (field, whether its value is allowed, what is allowed)
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"one of {LR_SCHEDULES}"),
            ("mixed_precision", self.mixed_precision in PRECISIONS, f"one of {PRECISIONS}"),
            ("learning_rate", self.learning_rate > 0 and math.isfinite(self.learning_rate), "a positive number"),
            ("loss", isinstance(self.loss, str) or callable(self.loss), "a loss name or a callable"),
            ("total_steps", self.total_steps >= 1, "at least 1"),
            ("log_every", self.log_every >= 1, "at least 1"),
            ("decay_every", self.decay_every >= 1, "at least 1"),
            ("warmup_steps", self.warmup_steps >= 0, "0 or more"),
            ("validation_every", self.validation_every is None or self.validation_every >= 1, "at least 1 or None"),
            ("grad_clip", self.grad_clip is None or self.grad_clip > 0, "positive or None"),
            ("divergence_factor", self.divergence_factor is None or self.divergence_factor > 1, "above 1 or None"),
        ]
        for name, allowed, what in rules:
            if not allowed:
                raise ValueError(f"{name} must be {what}, not {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values for a checkpoint; a callable loss is stored by its name."""
        values = asdict(self)
        if callable(self.loss):
            values["loss"] = getattr(self.loss, "__name__", type(self.loss).__name__)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """The inverse of to_dict; keys of options that no longer exist are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """The learning rate of update number `step` (0 = the first) under `config`.

    warmup (step < W):  lr (step + 1) / W
    constant:           lr
    cosine:             lr (f + (1 - f) (1 + cos(pi t)) / 2),  t = (step - W) / (total_steps - W), at most 1
    step:               lr decay_factor ^ floor(step / decay_every)

    A pure function of the step, so resuming a run needs only the step counter.
    """
    base, warmup = config.learning_rate, config.warmup_steps
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
    wall_time: list[float] = field(default_factory=list)  # seconds spent in train() so far
    validation_step: list[int] = field(default_factory=list)  # steps after which validation ran
    validation_psnr: list[float] = field(default_factory=list)  # mean PSNR (dB) over validation pairs
    stop_reason: str | None = None  # why the last train() call ended: one of STOP_REASONS
    stop_message: str = ""  # the explanation shown to the user (a divergence, an interrupt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> History:
        known = {f.name for f in fields(cls)}
        return cls(**{key: (list(value) if isinstance(value, (list, tuple)) else value)
                      for key, value in values.items() if key in known})


@dataclass
class LogRecord:
    """Passed to on_log every log_every steps: the mean loss since the last log."""

    step: int
    loss: float  # mean training loss over the steps since the last log
    learning_rate: float
    wall_time: float


@dataclass
class ValidationRecord:
    """Passed to on_validation: the mean PSNR after this step and whether it is the best so far."""

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
    """Trainer callbacks: override the events you need. Call `trainer.stop()` to end training."""

    def on_train_start(self, trainer: Trainer, record: None) -> None: ...

    def on_log(self, trainer: Trainer, record: LogRecord) -> None: ...

    def on_validation(self, trainer: Trainer, record: ValidationRecord) -> None: ...

    def on_stop(self, trainer: Trainer, record: StopRecord) -> None: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded (raised only with TrainConfig(raise_on_divergence=True))."""


class DivergenceWarning(UserWarning):
    """Shown when training stops because the loss diverged (the notebook keeps running)."""


class Trainer:
    """Trains `model` on (input, target) batches from `sampler`, step by step.

    model: maps an input batch (B, C, h, w) to a prediction shaped like the target (B, C, H, W).
    sampler: an iterable of (input, target) batches; restarted if it runs out.
    validation_pairs: (input, target) whole images, (C, H, W) or (1, C, H, W), for the validation
        PSNR that chooses `best_state`. Held-out training images, never the test set.
    validation_border: pixels cropped from each edge before the PSNR (the protocol uses the scale).
    validation_y_channel: measure colour images on luma Y, as the published tables do.
    callbacks: objects with some of Callback's on_<event> methods.
    loss_function: instead of config.loss, a loss object (with state_dict, saved with the run).
    One of several processes (torchrun): each gets its share of every batch from `sampler`, the gradients
    are averaged, the processes stop together, and only rank 0 validates and keeps the best weights.
    """

    def __init__(
        self,
        model: nn.Module,
        sampler: Iterable[tuple[torch.Tensor, torch.Tensor]],
        config: TrainConfig | None = None,
        validation_pairs: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
        validation_border: int = 0,
        callbacks: Iterable[Any] = (),
        *,
        validation_y_channel: bool = False,
        loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.config = config if config is not None else TrainConfig()
        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
        self.device = distributed.start(self.config.device)  # under torchrun, this rank's device; else pick_device's
        self.model = model.to(self.device)
        self.network = distributed.wrap(self.model, self.device)  # what the step runs: the model, or DDP around it
        self.sampler, self._batches = sampler, None
        self.validation_pairs = list(validation_pairs or []) if distributed.is_main() else []
        self.validation_border, self.validation_y_channel = validation_border, validation_y_channel
        self.callbacks = list(callbacks)
        # A loss with trained parts of its own (a GAN's discriminator) comes as an object; else by config.
        self.loss_function = loss_function if loss_function is not None else get_loss(self.config.loss)
        self.optimizer = build_optimizer(self.model, self.config)
        # Mixed precision, PyTorch's way: autocast the forward pass; scale an fp16 loss (a no-op otherwise).
        self.amp_dtype = mixed_precision_dtype(self.config.mixed_precision, self.device)
        self.autocast = torch.autocast(self.device.type, self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.guard = DivergenceGuard(self.config)
        self.step = 0  # optimizer updates done so far
        self.history = History()
        self.training_seconds = 0.0  # spent in train(), over every call and every resumed session
        self.best_state: dict[str, torch.Tensor] | None = None  # weights with the best validation PSNR
        self.best_validation_psnr, self.best_validation_step = -math.inf, None
        self.stop_requested, self._stop_reason, self.stop_message = False, "stopped", ""
        self._losses: list[tuple] = []  # (step, loss, learning rate, time) since the last log

    def stop(self, reason: str = "stopped", message: str = "") -> None:
        """End training after the current step (a Stop button, a callback, a signal)."""
        self.stop_requested, self._stop_reason, self.stop_message = True, reason, message

    def train(self, steps: int | None = None, seconds: float | None = None, progress: bool = False) -> History:
        """Train `steps` more steps and/or for `seconds`, whichever ends first (neither: up to
        config.total_steps). Call again to carry on. Returns `self.history`."""
        if steps is not None and steps < 0:
            raise ValueError(f"steps cannot be negative, got {steps}")
        config = self.config
        last_step = self.step + steps if steps is not None else config.total_steps
        self.stop_requested, self.stop_message = False, ""
        self.guard.remember(self.model, self.step)  # the weights to fall back on if the first steps fail
        self.model.train()
        self._start_timing(seconds, progress, last_step)
        self._emit("train_start", None)
        with StopSignals(self):  # Ctrl-C or SIGTERM: stop after this step, keeping everything
            while self.step < last_step and not self._stopping():
                input_batch, target_batch = self._next_batch()  # (B, C, h, w), (B, C, H, W)
                with self.autocast:
                    prediction = self.network(input_batch)  # (B, C, H, W)
                loss = self.loss_function(prediction.float(), target_batch)
                learning_rate = learning_rate_at(self.step, config)
                self._losses.append((self.step + 1, loss.detach(), learning_rate, self._elapsed()))
                if (self.step + 1) % config.log_every == 0:  # read the losses back (one device sync)
                    if not self._log_and_check():
                        break  # the loss diverged: good weights are back, the message says what to do
                    self.guard.remember(self.model, self.step)  # these weights just gave a good loss
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
                    nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
                self.scaler.step(self.optimizer)  # fp16: skipped when the gradients overflowed
                self.scaler.update()
                self.step += 1
                if config.validation_every and self.validation_pairs and self.step % config.validation_every == 0:
                    self.validate()
        reason = self._stop_reason if self.stop_requested else ("steps" if steps is not None else "total_steps")
        if self._losses and not self._log_and_check():  # the steps since the last log point
            reason = "diverged"
        if self.validation_pairs and reason not in ("diverged", "interrupted"):
            if self.history.validation_step[-1:] != [self.step]:
                self.validate()  # every call ends measured
        return self._finish(reason)

    # ---- the pieces of the loop
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._batches is None:
            self._batches = iter(self.sampler)
        try:
            input_batch, target_batch = next(self._batches)
        except StopIteration:  # a finite sampler (say a DataLoader) starts another pass
            self._batches = iter(self.sampler)
            input_batch, target_batch = next(self._batches, (None, None))
            if input_batch is None:
                raise ValueError("the sampler yielded no batches") from None
        if input_batch.device != self.device:  # checked first: .to() costs microseconds even when idle
            input_batch, target_batch = input_batch.to(self.device), target_batch.to(self.device)
        return input_batch, target_batch

    def _start_timing(self, seconds: float | None, progress: bool, last_step: int) -> None:
        """The time budget of this call, and the optional progress bar."""
        self._started = time.perf_counter()
        self._deadline = self._started + seconds if seconds is not None else math.inf
        self._seconds_before = self.training_seconds
        self._bar = None
        if progress and distributed.is_main():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=max(0, last_step - self.step), unit="step")

    def _elapsed(self) -> float:
        return self._seconds_before + time.perf_counter() - self._started

    def _stopping(self) -> bool:
        """Whether to end the loop now: asked to stop, or out of time. Several processes must stop at the same
        step, so they decide together at each log point, where they wait for one another anyway."""
        stopping = self.stop_requested or self._out_of_time()
        if not distributed.active():
            return stopping
        if self.step % self.config.log_every:
            return False
        decided = distributed.any_rank(stopping, self.device)  # a signal that lands after this waits for the next
        if decided and not self.stop_requested:
            self.stop("stopped", "another process stopped the run")
        return decided

    def _out_of_time(self) -> bool:
        if time.perf_counter() < self._deadline:
            return False
        self.stop("time")
        return True

    def _log_and_check(self) -> bool:
        """Move the losses since the last log into the history, report them and check them.

        True if all is well; False after a divergence (the guard has put good weights back)."""
        steps, loss_tensors, learning_rates, wall_times = zip(*self._losses)
        self._losses = []
        # the one wait for the device per log_every steps; several processes all judge their mean loss
        losses = distributed.mean_over_ranks(torch.stack(loss_tensors)).tolist()
        history = self.history
        history.step.extend(steps)
        history.loss.extend(losses)
        history.learning_rate.extend(learning_rates)
        history.wall_time.extend(wall_times)
        if self._bar is not None:
            self._bar.update(len(steps))
            self._bar.set_postfix(loss=f"{losses[-1]:.4g}", lr=f"{learning_rates[-1]:.2g}")
        self._emit("log", LogRecord(steps[-1], sum(losses) / len(losses), learning_rates[-1], wall_times[-1]))
        problem = self.guard.check(losses, steps, learning_rates)
        if problem is None:
            return True
        self.guard.restore(self.model, self.optimizer)
        self.stop("diverged", problem)
        return False

    def _finish(self, reason: str) -> History:
        self.training_seconds = self._elapsed()
        if self._bar is not None:
            self._bar.close()
        self.history.stop_reason, self.history.stop_message = reason, self.stop_message
        self._emit("stop", StopRecord(self.step, reason, self.stop_message))
        if reason == "diverged":
            if self.config.raise_on_divergence:
                raise TrainingDiverged(self.stop_message)
            warnings.warn(self.stop_message, DivergenceWarning, stacklevel=3)
        return self.history

    def _emit(self, event: str, record: Any) -> None:
        for callback in self.callbacks:
            handler = getattr(callback, f"on_{event}", None)
            if handler is not None:
                handler(self, record)

    # ---- validation
    @torch.no_grad()
    def evaluate(self, model: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
        """Mean PSNR (dB) over the validation pairs of `model` (default: the one being trained), clamped
        to [0, 1] as a saved image would be. Networks run in eval mode (batch norm's running statistics),
        the given one too when it is a module. Records nothing."""
        if not self.validation_pairs:
            raise ValueError("no validation_pairs were given to the Trainer")
        network = self.model if model is None else model
        modes = {module: module.training for module in (self.model, network) if isinstance(module, nn.Module)}
        for module in modes:
            module.eval()
        scores = []
        try:
            for input_image, target_image in self.validation_pairs:
                input_batch = (input_image if input_image.dim() == 4 else input_image[None]).to(self.device)
                target_batch = (target_image if target_image.dim() == 4 else target_image[None]).float()
                prediction = network(input_batch).float().clamp(0, 1).cpu()
                scores.append(psnr(prediction, target_batch, crop_border=self.validation_border,
                                   y_channel=self.validation_y_channel))
        finally:
            for module, mode in modes.items():
                module.train(mode)
        return float(torch.cat(scores).mean())

    def validate(self) -> float:
        """Measure the validation PSNR now, record it, and keep the weights if they are the best."""
        mean_psnr = self.evaluate()
        self.history.validation_step.append(self.step)
        self.history.validation_psnr.append(mean_psnr)
        is_best = mean_psnr > self.best_validation_psnr
        if is_best:
            self.best_validation_psnr, self.best_validation_step = mean_psnr, self.step
            self.best_state = copy_weights(self.model, into=self.best_state)
        self._emit("validation", ValidationRecord(self.step, mean_psnr, is_best))
        return mean_psnr

    def restore_best_state(self) -> None:
        """Load the weights that gave the best validation PSNR into the model."""
        if self.best_state is None:
            raise ValueError("no validation has run yet, so there is no best state to restore")
        self.model.load_state_dict(self.best_state)

    # ---- saving and resuming
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly, as copies of tensors and plain values."""
        return {
            "step": self.step,
            "model": copy_weights(self.model),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scaler": self.scaler.state_dict(),
            "history": self.history.to_dict(),
            "training_seconds": self.training_seconds,
            "guard": self.guard.state_dict(),
            "best_state": copy.deepcopy(self.best_state),
            "best_validation_psnr": self.best_validation_psnr,
            "best_validation_step": self.best_validation_step,
            "torch_random_state": torch.get_rng_state(),
            "sampler": self.sampler.state_dict() if hasattr(self.sampler, "state_dict") else None,
            "loss": self.loss_function.state_dict() if hasattr(self.loss_function, "state_dict") else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the run saved by `state_dict()` (the model and the sampler must be built alike)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = History.from_dict(state["history"])
        self.training_seconds = float(state.get("training_seconds", 0.0))
        self.guard.load_state_dict(state.get("guard", {}))
        best = state.get("best_state")
        self.best_state = {name: value.to(self.device) for name, value in best.items()} if best else None
        self.best_validation_psnr = float(state.get("best_validation_psnr", -math.inf))
        self.best_validation_step = state.get("best_validation_step")
        if state.get("torch_random_state") is not None:
            torch.set_rng_state(state["torch_random_state"].cpu())
        if state.get("sampler") is not None and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])
        if state.get("loss") is not None and hasattr(self.loss_function, "load_state_dict"):
            self.loss_function.load_state_dict(state["loss"])


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named in the config, over the model's trainable parameters."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if not parameters:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
