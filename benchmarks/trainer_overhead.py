"""How much does sr_teach's Trainer cost per step, compared with a bare PyTorch loop?

Both train the same ESPCN-sized network (conv 5x5 64 + tanh, conv 3x3 32 + tanh, conv 3x3 9,
PixelShuffle(3)) with Adam and MSE on the same pre-generated batches (16 LR Y patches of 17 x 17,
targets 51 x 51), so data loading is excluded and only the loop itself differs: the Trainer's
schedule, loss bookkeeping, NaN checks, good-weight copies and callbacks. Short runs of each are
interleaved in one process (bare, trainer, trainer, bare, ...) so that a machine getting busier or
hotter affects both alike, and the medians are compared. A second measurement uses a network of
one weight, where the loop is all there is, to give the Trainer's own cost in microseconds a step.

    PYTHONPATH=. python benchmarks/trainer_overhead.py             # target: ratio >= 0.95
    PYTHONPATH=. python benchmarks/trainer_overhead.py --device cpu --threads 1 --clock cpu
    PYTHONPATH=. python benchmarks/trainer_overhead.py --device cuda --steps 100

On a shared machine, `--threads 1 --clock cpu` (the CPU time of the one working thread) is far less
noisy than wall time: other programs then cannot make either loop look slower.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.device import describe_device, pick_device
from sr_teach.training import TrainConfig, Trainer


def espcn_sized_model(scale: int = 3) -> nn.Sequential:
    """ESPCN (Shi et al. 2016) written inline, so that the benchmark does not depend on sr_teach.models."""
    return nn.Sequential(
        nn.Conv2d(1, 64, kernel_size=5, padding=2),
        nn.Tanh(),
        nn.Conv2d(64, 32, kernel_size=3, padding=1),
        nn.Tanh(),
        nn.Conv2d(32, scale * scale, kernel_size=3, padding=1),
        nn.PixelShuffle(scale),
    )


def synchronize(device: torch.device) -> None:
    """Wait for the GPU, so that a timing covers the work and not just its queueing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bare_loop(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator, steps: int) -> None:
    """The loop of every PyTorch tutorial: the baseline the Trainer must match."""
    model.train()
    for _ in range(steps):
        lr_batch, hr_batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(lr_batch), hr_batch)
        loss.backward()
        optimizer.step()


def compare(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    steps: int,
    rounds: int,
    clock: Callable[[], float],
    log_every: int,
    verbose: bool = False,
) -> tuple[list[float], list[float]]:
    """Steps per second of a bare loop and of the Trainer, each on its own copy of `model`."""
    bare_model = copy.deepcopy(model).to(device)
    bare_optimizer = torch.optim.Adam(bare_model.parameters(), lr=1e-3)
    bare_batches = itertools.cycle(batches)
    # Full precision on every device, like the bare loop: we measure the loop, not autocast.
    config = TrainConfig(learning_rate=1e-3, loss=F.mse_loss, device=str(device), mixed_precision="off", seed=None,
                         validation_every=None, log_every=log_every, total_steps=10**12)
    trainer = Trainer(copy.deepcopy(model), itertools.cycle(batches), config)

    def time_bare() -> float:
        synchronize(device)
        start = clock()
        bare_loop(bare_model, bare_optimizer, bare_batches, steps)
        synchronize(device)
        return steps / (clock() - start)

    def time_trainer() -> float:
        synchronize(device)
        start = clock()
        trainer.train(steps=steps)
        synchronize(device)
        return steps / (clock() - start)

    time_bare(), time_trainer()  # warm-up: allocator, kernels, thread pools
    bare_speeds, trainer_speeds = [], []
    for round_index in range(rounds):
        # Alternate which goes first, so that neither always runs on a warmer (or busier) machine.
        if round_index % 2 == 0:
            bare_speeds.append(time_bare())
            trainer_speeds.append(time_trainer())
        else:
            trainer_speeds.append(time_trainer())
            bare_speeds.append(time_bare())
        if verbose:
            print(f"  round {round_index + 1:3d}: bare {bare_speeds[-1]:9.1f}, "
                  f"trainer {trainer_speeds[-1]:9.1f} steps/s")
    return bare_speeds, trainer_speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed run")
    parser.add_argument("--rounds", type=int, default=60, help="interleaved (bare, trainer) pairs of runs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--log-every", type=int, default=TrainConfig.log_every, help="the Trainer's log_every")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: CPU time of this thread, blind to other programs "
                        "(only meaningful with --device cpu --threads 1)")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    arguments = parser.parse_args()

    device = pick_device(arguments.device)
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    if arguments.clock == "cpu" and (device.type != "cpu" or torch.get_num_threads() != 1):
        parser.error("--clock cpu measures one thread's CPU time: use it with --device cpu --threads 1")
    clock = time.perf_counter if arguments.clock == "wall" else time.thread_time

    scale, patch_size = 3, 17
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(32):  # pre-generated, so the data costs nothing in either loop
        hr_batch = torch.rand(arguments.batch_size, 1, patch_size * scale, patch_size * scale, generator=generator)
        lr_batch = F.avg_pool2d(hr_batch, scale)  # (B, 1, 17, 17)
        batches.append((lr_batch.to(device), hr_batch.to(device)))
    torch.manual_seed(0)

    print(f"device: {describe_device(device)}; {arguments.clock} clock")
    print(f"ESPCN-sized x{scale}, batch {arguments.batch_size} of {patch_size}x{patch_size} LR patches, "
          f"{arguments.rounds} interleaved rounds of {arguments.steps} steps, log_every={arguments.log_every}")
    bare, trainer = compare(espcn_sized_model(scale), batches, device, arguments.steps, arguments.rounds, clock,
                            arguments.log_every, arguments.verbose)
    bare_median, trainer_median = statistics.median(bare), statistics.median(trainer)
    ratio = trainer_median / bare_median
    print(f"  bare loop: {bare_median:9.1f} steps/s median ({max(bare):.1f} best)")
    print(f"  Trainer:   {trainer_median:9.1f} steps/s median ({max(trainer):.1f} best)")

    # A 1x1 convolution on 2x2 images: the step costs almost nothing, so what remains is the loop.
    tiny_batches = [(lr[:1, :, :2, :2], hr[:1, :, :2, :2]) for lr, hr in batches]
    tiny_bare, tiny_trainer = compare(nn.Conv2d(1, 1, kernel_size=1), tiny_batches, device, 500, 10, clock,
                                      arguments.log_every)
    overhead = 1 / statistics.median(tiny_trainer) - 1 / statistics.median(tiny_bare)
    print(f"Trainer's own cost, measured on a 1-weight network: {overhead * 1e6:.1f} microseconds a step "
          f"(the ESPCN-sized step takes {1e6 / bare_median:.0f})")
    print(f"ratio Trainer / bare loop (medians) = {ratio:.3f}, target >= 0.95: "
          f"{'OK' if ratio >= 0.95 else 'BELOW TARGET'}")
    quartiles = statistics.quantiles(bare, n=4)
    spread = (quartiles[2] - quartiles[0]) / bare_median
    if spread > 0.10:
        advice = "more --rounds" if arguments.clock == "cpu" else "--device cpu --threads 1 --clock cpu"
        print(f"warning: the bare loop's speed varied by {spread:.0%} (interquartile range) between runs, so the "
              f"machine is busy and the ratio is noisy; try {advice}")


if __name__ == "__main__":
    main()
