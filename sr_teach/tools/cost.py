"""What training a network costs: time per step, memory, and multiply-adds per output pixel.

Pre-upsampling networks (SRCNN, VDSR) run every convolution on the enlarged image; post-upsampling
ones (FSRCNN, ESPCN) all but the last on the small one, scale^2 fewer pixels. `compare_costs`
measures one training step of each with the same output size, so the comparison is fair:

    print(compare_costs(scale=3, output_size=96, batch_size=16))

Three kinds of numbers: multiply-adds per output pixel, counted from the layers' shapes (the same
on every machine); seconds per training step, the fastest of several (other programs can only
slow a step down); and memory, both the activations autograd saves and the peak (see
`measure_training_step`).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_teach.device import pick_device
from sr_teach.losses import get_loss
from sr_teach.models import ESPCN, FSRCNN, MODELS, SRCNN, VDSR, build_model, count_parameters, model_name

PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class StepCost:
    """The measured cost of a training step of one model on one batch shape."""

    step_seconds: list[float]  # wall time of each timed step (after the warm-up)
    saved_activation_bytes: int  # what autograd keeps from the forward pass for the backward pass
    peak_memory_bytes: int | None  # extra memory at the peak of the steps (see memory_method); None: not measured
    memory_method: str  # how peak_memory_bytes was measured, in words
    device: str  # where the steps ran
    threads: int  # CPU threads PyTorch used for the steps

    @property
    def seconds_per_step(self) -> float:
        """The fastest timed step: the least disturbed by other programs."""
        return min(self.step_seconds)

    @property
    def median_seconds_per_step(self) -> float:
        return statistics.median(self.step_seconds)


def macs_per_output_pixel(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Multiply-adds of the model's convolutions per output pixel, counted from the layers' shapes.

    Conv2d: each output value costs in_channels / groups * kH * kW multiply-adds.
    ConvTranspose2d: each input value is spread over out_channels / groups * kH * kW outputs.
    The model runs on a copy on the "meta" device, which tracks shapes without computing, so this is
    instant even for big inputs. Divided by the output's pixels (H x W x batch), not its channels.

    >>> macs_per_output_pixel(SRCNN(), (1, 1, 33, 33))  # 9*9*64 + 64*5*5*32 + 32*5*5*1
    57184.0
    """
    meta_model = copy.deepcopy(model).to("meta")
    total = 0

    def count(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel_taps = layer.kernel_size[0] * layer.kernel_size[1]
        if isinstance(layer, nn.ConvTranspose2d):
            total += inputs[0].numel() * (layer.out_channels // layer.groups) * kernel_taps
        else:
            total += output.numel() * (layer.in_channels // layer.groups) * kernel_taps

    for layer in meta_model.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            layer.register_forward_hook(count)
    with torch.no_grad():
        output = meta_model(torch.empty(tuple(input_shape), device="meta"))  # (B, C, H, W)
    output_pixels = output.shape[0] * output.shape[-2] * output.shape[-1]
    return total / output_pixels


class SavedActivationCounter:
    """Counts the bytes of the tensors autograd saves for the backward pass while it is active.

    Every layer keeps what its gradient needs (a convolution its input, a ReLU its output, ...);
    a tensor saved twice (one layer's output is the next one's input) is counted once, and the
    tensors in `exclude` (the weights, the input batch: they exist anyway) not at all.

        with SavedActivationCounter(exclude=[*model.parameters(), input_batch]) as counter:
            loss = loss_function(model(input_batch), target_batch)
        counter.total_bytes
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self.excluded = {tensor.untyped_storage().data_ptr() for tensor in exclude}
        self.storages: dict[int, int] = {}  # storage address -> bytes
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.excluded:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor  # keep it as it is: we only look

    @property
    def total_bytes(self) -> int:
        return sum(self.storages.values())

    def __enter__(self) -> SavedActivationCounter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exception: object) -> None:
        self._hooks.__exit__(*exception)


def measure_training_step(
    model: nn.Module,
    input_shape: Sequence[int],
    target_shape: Sequence[int],
    *,
    steps: int = 3,
    warmup: int = 1,
    min_seconds: float = 1.0,
    max_steps: int = 50,
    threads: int | None = 1,
    loss: str = "mse",
    learning_rate: float = 1e-4,
    device: str = "cpu",
    separate_process: bool = True,
) -> StepCost:
    """Time at least `steps` training steps (after `warmup` untimed ones) of `model` on random batches.

    Timing goes on, up to `max_steps`, until the timed steps add up to `min_seconds`: a fast model
    then gets many tries, and the fastest of them is the one least disturbed by other programs (on a
    busy machine a step of a few milliseconds can take ten times longer while a thread waits).

    Memory, two measurements because neither alone tells the whole story:
    - saved activations: the bytes autograd keeps from the forward pass for the backward pass,
      counted exactly with `torch.autograd.graph.saved_tensors_hooks`: what grows with the batch and
      the image size and usually runs out; the same on every machine.
    - peak memory: on CUDA, `torch.cuda.max_memory_allocated` during the steps minus what was
      allocated before; on a Linux CPU, the peak resident memory (VmHWM) of a fresh Python process
      during the steps minus its memory before them. A fresh process, because in a notebook the
      allocator reuses memory it freed earlier without the operating system seeing it. (Not
      `tracemalloc`, which misses PyTorch's tensors, nor `ru_maxrss`, which a subprocess inherits.)
      It includes gradients, Adam's buffers and scratch space, so it exceeds the saved activations.
      Elsewhere (macOS, Windows, MPS) it is not measured (None).

    threads: CPU threads for the steps; None keeps PyTorch's setting. One by default, because this
        compares the networks' work: several threads must meet after every layer, and on a machine
        where other programs keep the cores busy each meeting waits for a time slice, which can make
        a small network's step 100 times slower and the comparison meaningless. With an idle machine
        try threads=None to see what all the cores give.
    input_shape: (B, C, h, w) what the model takes: the enlarged image for a pre-upsampling model,
        the small one for a post-upsampling model. target_shape: (B, C, H, W), the output's shape.
    separate_process: on a Linux CPU, run the steps in a fresh Python process to measure their peak
        memory (above); the model must then be one of sr_teach.models.MODELS,
        rebuilt there from `model.config` (random weights cost the same as trained ones).
        False, or any other model: run here, with peak_memory_bytes None on a CPU. On CUDA the
        steps always run here and the peak is the allocator's.
    """
    if steps < 1 or warmup < 0 or max_steps < steps:
        raise ValueError(f"need 1 <= steps <= max_steps and warmup >= 0, got steps={steps}, max_steps={max_steps}, "
                         f"warmup={warmup}")
    resolved = pick_device(device)
    options = dict(steps=steps, warmup=warmup, min_seconds=min_seconds, max_steps=max_steps, loss=loss,
                   learning_rate=learning_rate)
    used_threads = torch.get_num_threads() if threads is None or resolved.type != "cpu" else threads
    if resolved.type == "cpu" and separate_process and PROC_STATUS.exists() and type(model) in MODELS.values():
        measured = _run_in_fresh_process(model, input_shape, target_shape, options, used_threads)
    else:
        threads_before = torch.get_num_threads()
        torch.set_num_threads(used_threads)
        try:
            measured = _time_steps(copy.deepcopy(model), tuple(input_shape), tuple(target_shape), device=resolved,
                                   **options)
        finally:
            torch.set_num_threads(threads_before)
    return StepCost(device=str(resolved), threads=used_threads, **measured)


def _time_steps(
    model: nn.Module,
    input_shape: tuple[int, ...],
    target_shape: tuple[int, ...],
    *,
    steps: int,
    warmup: int,
    min_seconds: float,
    max_steps: int,
    loss: str,
    learning_rate: float,
    device: torch.device,
    measure_process_memory: bool = False,
) -> dict[str, Any]:
    """Run warmup + steps training steps here and measure them (see measure_training_step)."""
    model = model.to(device).train()
    generator = torch.Generator().manual_seed(0)
    input_batch = torch.rand(input_shape, generator=generator).to(device)  # (B, C, h, w)
    target_batch = torch.rand(target_shape, generator=generator).to(device)  # (B, C, H, W)
    loss_function = get_loss(loss)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    counter = SavedActivationCounter(exclude=[*model.parameters(), input_batch])

    def step(count_activations: bool) -> None:
        optimizer.zero_grad(set_to_none=True)
        with counter if count_activations else contextlib.nullcontext():
            prediction = model(input_batch)  # (B, C, H, W)
        if prediction.shape != target_batch.shape:
            raise ValueError(
                f"the model made {tuple(prediction.shape)} from input {input_shape}, but the target is "
                f"{target_shape}: give a pre-upsampling model the enlarged image and a post-upsampling one the small image"
            )
        loss_function(prediction, target_batch).backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    elif measure_process_memory:
        gc.collect()
        before = _resident_bytes()
        PROC_CLEAR_REFS.write_text("5")  # reset the peak (VmHWM) to the current resident memory
    for index in range(warmup):
        step(count_activations=index == 0)
    step_seconds: list[float] = []
    while len(step_seconds) < max_steps and (len(step_seconds) < steps or sum(step_seconds) < min_seconds):
        start = time.perf_counter()
        step(count_activations=warmup == 0 and not step_seconds)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step_seconds.append(time.perf_counter() - start)

    peak_memory, method = None, "not measured"
    if device.type == "cuda":
        peak_memory = torch.cuda.max_memory_allocated(device) - before
        method = "torch.cuda.max_memory_allocated during the steps minus the memory allocated before them"
    elif measure_process_memory:
        peak_memory = _peak_resident_bytes() - before
        method = "peak resident memory (VmHWM) of a fresh process during the steps minus its memory before them"
    return {
        "step_seconds": step_seconds,
        "saved_activation_bytes": counter.total_bytes,
        "peak_memory_bytes": peak_memory,
        "memory_method": method,
    }


def _run_in_fresh_process(
    model: nn.Module, input_shape: Sequence[int], target_shape: Sequence[int], options: dict[str, Any], threads: int
) -> dict[str, Any]:
    """Rebuild the model in a new Python process, run the steps there, and read back what it measured."""
    request = {
        "model": model_name(model),
        "config": asdict(model.config),
        "input_shape": list(input_shape),
        "target_shape": list(target_shape),
        "options": options,
        "threads": threads,
    }
    package_parent = str(Path(__file__).resolve().parents[2])
    environment = {**os.environ, "PYTHONPATH": package_parent + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run(
        [sys.executable, "-c", "from sr_teach.tools.cost import _worker; _worker()", json.dumps(request)],
        capture_output=True, text=True, env=environment,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"measuring {request['model']} in a separate process failed:\n{completed.stderr.strip()[-2000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _worker() -> None:
    """The fresh process's side of `_run_in_fresh_process`: measure, print one JSON line."""
    request = json.loads(sys.argv[1])
    torch.set_num_threads(request["threads"])
    model = build_model(request["model"], **request["config"])
    measured = _time_steps(
        model, tuple(request["input_shape"]), tuple(request["target_shape"]),
        device=torch.device("cpu"), measure_process_memory=True, **request["options"],
    )
    print(json.dumps(measured))


def _status_field_bytes(name: str) -> int:
    for line in PROC_STATUS.read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"{PROC_STATUS} has no {name} line")


def _resident_bytes() -> int:
    return _status_field_bytes("VmRSS")


def _peak_resident_bytes() -> int:
    return _status_field_bytes("VmHWM")


# ------------------------------------------------------------------------------------ comparing
@dataclass
class CostRow:
    """One line of the comparison: a model's size, its work per output pixel and its measured cost."""

    model: str
    upsampling: str  # "pre" or "post"
    parameters: int
    macs_per_output_pixel: float
    input_shape: tuple[int, ...]  # (B, C, h, w) as the model takes it
    output_shape: tuple[int, ...]  # (B, C, H, W), the same for every model of a comparison
    cost: StepCost

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["seconds_per_step"] = self.cost.seconds_per_step
        return values


@dataclass
class CostTable:
    """The rows of `compare_costs`, printable as a table."""

    scale: int
    rows: list[CostRow] = field(default_factory=list)

    def row(self, model: str) -> CostRow:
        for row in self.rows:
            if row.model == model:
                return row
        raise KeyError(f"no row for {model!r}; the table has {[row.model for row in self.rows]}")

    def __str__(self) -> str:
        if not self.rows:
            return "(no models)"
        first = self.rows[0]
        batch, channels, height, width = first.output_shape
        lines = [
            f"x{self.scale}, output {batch} x {channels} x {height} x {width} per step, "
            f"on {first.cost.device} ({first.cost.threads} thread{'s' if first.cost.threads > 1 else ''})",
            f"{'model':<8} {'family':<6} {'input':>9} {'params':>8} {'MACs/px':>8} {'ms/step':>8} "
            f"{'activations':>11} {'peak memory':>11}",
        ]
        for row in self.rows:
            peak = row.cost.peak_memory_bytes
            lines.append(
                f"{row.model:<8} {row.upsampling:<6} {_side(row.input_shape):>9} {row.parameters:>8,} "
                f"{row.macs_per_output_pixel:>8,.0f} {1e3 * row.cost.seconds_per_step:>8.1f} "
                f"{_mib(row.cost.saved_activation_bytes):>11} {_mib(peak) if peak is not None else 'n/a':>11}"
            )
        lines.append(
            "MACs/px: multiply-adds of one forward pass per output pixel; ms/step: fastest of the timed steps; "
            "activations: saved for backward; peak memory: " + first.cost.memory_method
        )
        return "\n".join(lines)


def _side(shape: tuple[int, ...]) -> str:
    return f"{shape[-1]}x{shape[-2]}"


def _mib(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:,.1f} MiB"


def default_models(scale: int, num_channels: int = 1) -> dict[str, nn.Module]:
    """The four papers' networks at their papers' sizes: SRCNN 9-5-5, VDSR-20, FSRCNN(56,12,4), ESPCN."""
    return {
        "SRCNN": SRCNN(scale=scale, num_channels=num_channels),
        "VDSR": VDSR(scale=scale, num_channels=num_channels),
        "FSRCNN": FSRCNN(scale=scale, num_channels=num_channels),
        "ESPCN": ESPCN(scale=scale, num_channels=num_channels),
    }


def compare_costs(
    models: Mapping[str, nn.Module] | None = None,
    scale: int = 3,
    output_size: int = 96,
    batch_size: int = 16,
    num_channels: int = 1,
    *,
    steps: int = 3,
    warmup: int = 1,
    min_seconds: float = 1.0,
    threads: int | None = 1,
    device: str = "cpu",
    separate_process: bool = True,
) -> CostTable:
    """Measure a training step of each model at the same output size and scale.

    A pre-upsampling model gets the enlarged image (output_size x output_size), a post-upsampling one
    the small image (output_size / scale a side); both are trained towards an output_size target.
    models: name -> model; None: `default_models(scale)`. Post models must be built for `scale`.
    """
    if output_size % scale != 0:
        raise ValueError(f"output_size must be a multiple of the scale ({scale}) so the small image has whole pixels, "
                         f"got {output_size}")
    models = default_models(scale, num_channels) if models is None else models
    output_shape = (batch_size, num_channels, output_size, output_size)
    table = CostTable(scale=scale)
    for name, model in models.items():
        upsampling = getattr(model, "upsampling", None)
        if upsampling == "post" and getattr(model, "scale", scale) != scale:
            raise ValueError(f"{name} is built for x{model.scale}; a post-upsampling model needs scale={scale} here")
        if upsampling == "pre":
            input_shape = output_shape
        elif upsampling == "post":
            input_shape = (batch_size, num_channels, output_size // scale, output_size // scale)
        else:
            raise ValueError(f"{name} has no `upsampling` attribute saying 'pre' or 'post'")
        cost = measure_training_step(
            model, input_shape, output_shape, steps=steps, warmup=warmup, min_seconds=min_seconds,
            threads=threads, device=device, separate_process=separate_process,
        )
        macs = macs_per_output_pixel(model, (1, *input_shape[1:]))
        table.rows.append(CostRow(name, upsampling, count_parameters(model), macs, input_shape, output_shape, cost))
    return table
