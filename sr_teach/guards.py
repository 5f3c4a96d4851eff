"""The trainer's guards, each readable alone: what keeps a run safe without cluttering its loop.

- `DivergenceGuard`: a loss that becomes NaN or explodes puts back the last weights that gave a
  good loss, and says which learning rate to try; a too-large learning rate is a lesson, not a crash.
- `StopSignals`: Ctrl-C (a notebook's interrupt) and SIGTERM (a cluster ending a job) stop the run
  after the current step, so nothing is lost.
- `mixed_precision_dtype`: whether to compute in 16 bits (on a GPU), and in which.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from sr_teach.training import Trainer, TrainConfig


class DivergenceGuard:
    """Catches a loss that becomes NaN/inf or explodes, and puts back the last weights that gave a
    good loss, so a too-large learning rate is a lesson on screen rather than a broken network.

    It keeps two copies of the weights (two buffers, reused): the newest, taken when a train() call
    starts and at every log point whose losses were good, and the one before it. The loss of step s
    is computed with the weights after s - 1 updates, so the newest copy is good if the first bad
    loss came after its own; otherwise the copy before it is.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.copies: list[tuple[int, dict[str, torch.Tensor]]] = []  # (updates done, weights), newest last
        self.smoothed_loss: float | None = None  # running mean over about 10 steps
        self.best_smoothed_loss: float | None = None
        self._fallback: tuple[int, dict[str, torch.Tensor]] | None = None  # the copy `check` chose

    def remember(self, model: nn.Module, step: int) -> None:
        """Copy the weights after `step` updates, into the older buffer (no new memory after the first two)."""
        reused = self.copies.pop(0)[1] if len(self.copies) == 2 else None
        self.copies.append((step, copy_weights(model, into=reused)))

    def check(self, losses: list[float], steps: list[int], learning_rates: list[float]) -> str | None:
        """None if every loss is fine, else the message that explains the divergence."""
        factor = self.config.divergence_factor
        for loss, step, learning_rate in zip(losses, steps, learning_rates):
            best = self.best_smoothed_loss
            limit = None if factor is None else factor * (10 if step <= self.config.divergence_grace_steps else 1)
            if not math.isfinite(loss):
                problem = "NaN" if math.isnan(loss) else "infinite"
            elif limit is not None and best is not None and best > 0 and loss > limit * best:
                problem = f"{loss:.3g}, over {limit:g}x the best smoothed loss {best:.3g} (exploding)"
            else:
                self.smoothed_loss = loss if self.smoothed_loss is None else 0.9 * self.smoothed_loss + 0.1 * loss
                self.best_smoothed_loss = min(self.smoothed_loss, best if best is not None else math.inf)
                continue
            # the newest copy whose own loss (at the step after it) was good, else the oldest there is
            self._fallback = next((copy for copy in reversed(self.copies) if copy[0] + 1 < step), self.copies[0])
            return (f"loss became {problem} at step {step} with learning rate {learning_rate:g}; weights "
                    f"restored from step {self._fallback[0]}; try a smaller learning rate such as "
                    f"{self.config.learning_rate / 10:g}")
        return None

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Put back the copy `check` chose, and clear the optimizer's averages (they hold NaN or huge values)."""
        model.load_state_dict(self._fallback[1])
        self.copies = [self._fallback]
        optimizer.state.clear()

    def state_dict(self) -> dict[str, float | None]:
        return {"smoothed_loss": self.smoothed_loss, "best_smoothed_loss": self.best_smoothed_loss}

    def load_state_dict(self, state: Mapping[str, float | None]) -> None:
        self.smoothed_loss, self.best_smoothed_loss = state.get("smoothed_loss"), state.get("best_smoothed_loss")


def mixed_precision_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The 16-bit type autocast computes in, or None for float32 throughout.

    "auto" is bf16 on CUDA GPUs that have it, else fp16 (which then needs PyTorch's GradScaler, so
    that small gradients do not round to zero); on the CPU and MPS it is off, since CPU autocast
    slows convolutions down.
    """
    if setting == "fp16" and device.type != "cuda":
        raise ValueError(f"fp16 mixed precision needs a CUDA device, not {device}; use 'bf16' or 'off'")
    if setting == "auto":
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        setting = ("bf16" if use_bf16 else "fp16") if device.type == "cuda" else "off"
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[setting]


class StopSignals:
    """While a run trains in the main thread, Ctrl-C (SIGINT, also the notebook's interrupt) and
    SIGTERM (a cluster ending a job) stop it after the current step, weights and history kept. A
    second Ctrl-C interrupts at once, for a step that hangs. The old handlers come back after."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.previous = trainer, {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        if number == signal.SIGINT and self.trainer.stop_requested:
            raise KeyboardInterrupt
        name = signal.Signals(number).name
        self.trainer.stop("interrupted", f"{name} at step {self.trainer.step}: stopped, weights and history kept")

    def __exit__(self, error_type: type | None, error: BaseException | None, traceback: Any) -> bool:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        if isinstance(error, KeyboardInterrupt):  # raised by a callback, or a second Ctrl-C
            self.trainer.stop("interrupted", f"interrupted at step {self.trainer.step}; weights and history kept")
            return True
        return False


def copy_weights(model: nn.Module, into: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """A copy of the model's state_dict, written into `into`'s tensors when given (no new memory)."""
    with torch.no_grad():
        if into is None:
            return {name: value.detach().clone() for name, value in model.state_dict().items()}
        for name, value in model.state_dict().items():
            into[name].copy_(value)
        return into
