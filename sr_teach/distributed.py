"""Training on several processes at once (GPUs, machines, or CPU cores) with PyTorch's own engine.

`torchrun` starts one process per device (a "rank") and tells each its number in environment variables:

    torchrun --nproc-per-node 4 -m sr_teach.cli train --model espcn --scale 3 --steps 20000 --output espcn.pt

Every rank holds the same model. Each step, each computes the gradient of its share of the batch and
DistributedDataParallel (DDP) averages the gradients over the ranks, so every copy takes the same step: the
step one process would take on the whole batch. Rank 0 alone validates, logs and writes checkpoints. The
functions here are no-ops in a single process, so the Trainer reads the same either way.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from sr_teach.device import pick_device

# A rank that waits this long for the others gives up with an error instead of hanging for ever (rank 0
# validating keeps the others waiting, so this is long; a rank that dies is noticed by torchrun at once).
TIMEOUT = timedelta(minutes=15)


def launched() -> bool:
    """True inside a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when this process trains as one rank of several (the process group is up)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """The process that validates, prints and writes files: rank 0, or the only one."""
    return rank() == 0


def start(device: str = "auto") -> torch.device:
    """Join the process group torchrun prepared; return this rank's device.

    The backend follows the device: NCCL between CUDA GPUs (rank r on GPU LOCAL_RANK), gloo between CPU
    processes. Outside torchrun nothing is started and the device is `pick_device(device)`.
    """
    chosen = local_device(pick_device(device))
    if not launched() or active():
        return chosen
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed: run a single process (python -m sr_teach.cli)")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=TIMEOUT,
                            device_id=chosen if chosen.type == "cuda" else None)
    return chosen


def local_device(device: torch.device) -> torch.device:
    """Rank r of a machine takes GPU number LOCAL_RANK; a CPU or a named GPU is kept."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def finish() -> None:
    """Leave the process group (at the end of a run) so that the process exits cleanly."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model as DDP sees it (a single process: the model itself). On CUDA, batch norm becomes
    SyncBatchNorm (statistics over the whole batch, as one process has them); gloo cannot run it, so on
    CPU each rank normalises over its own share of the batch."""
    if not active():
        return model
    if any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameters: the optimizer still holds them
        elif is_main():
            warnings.warn(f"{type(model).__name__} has batch norm, and SyncBatchNorm runs only on CUDA: here each of "
                          f"the {world_size()} processes normalises over its own share of the batch, so this run differs "
                          "a little from a one-process run", stacklevel=2)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The mean of `values` over the ranks (a copy), so that every rank logs and judges the same loss."""
    if not active():
        return values
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank if `flag` is true on any (one rank's Ctrl-C or time limit stops all of them)."""
    if not active():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Average the gradients of parameters DDP does not hold (a GAN's discriminator) over the ranks."""
    if not active():
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= dist.get_world_size()


def say(text: str) -> None:
    """Print once: of several processes, rank 0 speaks for all."""
    if is_main():
        print(text, flush=True)


def barrier() -> None:
    """Wait here until every rank arrives (say, until rank 0 has written the checkpoint the others read)."""
    if active():
        dist.barrier()

