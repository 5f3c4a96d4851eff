"""The live-training figure: the loss and the validation PSNR against the line to beat."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from sr_teach.training import History


def plot_training(
    history: History,
    bicubic_psnr: float | None = None,
    previous_runs: Sequence[tuple[str, History]] = (),
    label: str = "",
    width: float = 8.0,
    height: float = 2.8,
    dpi: int = 72,
    baseline: str = "bicubic",
) -> Any:
    """Training loss (log scale, with a running mean) and validation PSNR against the bicubic line
    (`baseline` names it: "input" for restoration, where the line is the damaged input itself)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    loss_axes, psnr_axes = figure.subplots(1, 2)
    if history.loss:
        losses = torch.tensor(history.loss, dtype=torch.float64)
        loss_axes.plot(history.step, losses.numpy(), color="tab:blue", alpha=0.25, linewidth=0.8)
        window = max(1, min(25, len(history.loss) // 10))
        kernel = torch.ones(1, 1, window, dtype=torch.float64) / window
        smoothed = torch.nn.functional.conv1d(losses[None, None], kernel)[0, 0]  # running mean (NaN spreads: honest)
        loss_axes.plot(history.step[window - 1:], smoothed.numpy(), color="tab:blue", label=f"mean of {window}")
        if (losses > 0).any():
            loss_axes.set_yscale("log")
    loss_axes.set(xlabel="step", ylabel="training loss", title="loss")
    for index, (previous_label, previous) in enumerate(previous_runs):
        if previous.validation_step:
            psnr_axes.plot(previous.validation_step, previous.validation_psnr, color="0.6",
                           linestyle=(0, (1, 1 + index)), label=previous_label)
    if history.validation_step:
        psnr_axes.plot(history.validation_step, history.validation_psnr, marker=".", color="tab:orange", label=label)
    title = "validation PSNR"
    if bicubic_psnr is not None:
        psnr_axes.axhline(bicubic_psnr, color="black", linestyle="--", linewidth=1, label=baseline)
        # Zoom in on the race with bicubic: a random network starts some 20 dB below, which would
        # squash the interesting tenths of a dB into a line at the top.
        shown = [value for value in history.validation_psnr if math.isfinite(value)] + [bicubic_psnr]
        psnr_axes.set_ylim(bicubic_psnr - 3.0, max(shown) + 0.5)
        title += f", zoomed on {baseline}"
    psnr_axes.set(xlabel="step", ylabel="PSNR (dB)", title=title)
    if psnr_axes.get_legend_handles_labels()[0]:
        psnr_axes.legend(fontsize=7, loc="lower right")
    return figure
