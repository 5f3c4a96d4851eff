"""Cost measurement: multiply-adds against the papers' formulas, saved activations against a hand
count, and the timing / memory plumbing on tiny models (CPU, a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sr_teach.tools.cost import (
    SavedActivationCounter,
    compare_costs,
    macs_per_output_pixel,
    measure_training_step,
)
from sr_teach.models import ESPCN, FSRCNN, SRCNN, VDSR, PostUpsamplingNet


def test_macs_match_the_papers_layer_formulas() -> None:
    # SRCNN 9-5-5 (64, 32): f1^2 n1 + n1 f2^2 n2 + n2 f3^2, all on the output grid
    assert macs_per_output_pixel(SRCNN(), (1, 1, 33, 33)) == 9 * 9 * 64 + 64 * 5 * 5 * 32 + 32 * 5 * 5
    # VDSR: 3x3 convolutions, 64 filters, d layers on the output grid
    depth = 20
    assert macs_per_output_pixel(VDSR(depth=depth), (1, 1, 24, 24)) == 9 * 64 + (depth - 2) * 9 * 64 * 64 + 64 * 9
    # ESPCN at x3: all three convolutions on the LR grid, so divided by r^2 per output pixel
    espcn = (5 * 5 * 64 + 64 * 3 * 3 * 32 + 32 * 3 * 3 * 9) / 9
    assert macs_per_output_pixel(ESPCN(scale=3), (1, 1, 10, 10)) == pytest.approx(espcn)
    # FSRCNN(56, 12, 4) at x3 (the paper's complexity formula counts the same layers): the 9x9
    # deconvolution spreads each of the d LR features over 81 taps
    d, s, m = 56, 12, 4
    fsrcnn = (25 * d + d * s + m * 9 * s * s + s * d + d * 81) / 9
    assert macs_per_output_pixel(FSRCNN(scale=3), (1, 1, 10, 10)) == pytest.approx(fsrcnn)


def test_post_upsampling_work_per_output_pixel_falls_with_the_scale_squared() -> None:
    body = [macs_per_output_pixel(PostUpsamplingNet(scale=scale), (1, 1, 8, 8)) for scale in (2, 4)]
    pre = [macs_per_output_pixel(SRCNN(scale=scale), (1, 1, 16, 16)) for scale in (2, 4)]
    assert pre[0] == pre[1]  # a pre model works on the output grid whatever the scale
    assert body[1] < body[0] / 3  # about 4x less, plus the upsampler's own work


def test_saved_activations_are_counted_once_per_tensor() -> None:
    # SRCNN on one H x W image: ReLU outputs of 64 and 32 channels are saved (each also the next
    # convolution's input, counted once); the input and the weights are excluded.
    model = SRCNN(num_features=(64, 32), padding_mode="zeros")
    image = torch.rand(1, 1, 20, 30)
    with SavedActivationCounter(exclude=[*model.parameters(), image]) as counter:
        model(image)
    assert counter.total_bytes == (64 + 32) * 20 * 30 * 4
    # Replicate padding makes a padded copy of each layer's input, which the convolution keeps too:
    # 1, 64 and 32 channels padded by 4, 2 and 2 pixels a side.
    model = SRCNN(num_features=(64, 32), padding_mode="replicate")
    with SavedActivationCounter(exclude=[*model.parameters(), image]) as counter:
        model(image)
    padded = 1 * 28 * 38 + 64 * 24 * 34 + 32 * 24 * 34
    assert counter.total_bytes == ((64 + 32) * 20 * 30 + padded) * 4
    # nothing is saved without gradients
    with torch.no_grad(), SavedActivationCounter() as counter:
        model(image)
    assert counter.total_bytes == 0


def test_measure_training_step_in_this_process() -> None:
    model = ESPCN(scale=2)
    cost = measure_training_step(model, (2, 1, 6, 6), (2, 1, 12, 12), steps=2, warmup=1, min_seconds=0,
                                 separate_process=False)
    assert len(cost.step_seconds) == 2 and all(seconds > 0 for seconds in cost.step_seconds)
    assert cost.seconds_per_step == min(cost.step_seconds)
    assert cost.peak_memory_bytes is None and cost.memory_method == "not measured"
    # tanh outputs of 64 and 32 channels, and the sub-pixel convolution's output (kept by the loss)
    assert cost.saved_activation_bytes >= 2 * (64 + 32) * 6 * 6 * 4
    assert cost.device == "cpu"


def test_fast_steps_are_timed_until_min_seconds_or_max_steps() -> None:
    model = SRCNN(num_features=(4, 2))
    cost = measure_training_step(model, (1, 1, 8, 8), (1, 1, 8, 8), steps=2, min_seconds=60, max_steps=7,
                                 separate_process=False)
    assert len(cost.step_seconds) == 7  # a minute of steps was asked for, but at most 7
    cost = measure_training_step(model, (1, 1, 8, 8), (1, 1, 8, 8), steps=3, min_seconds=0, separate_process=False)
    assert len(cost.step_seconds) == 3
    with pytest.raises(ValueError, match="max_steps"):
        measure_training_step(model, (1, 1, 8, 8), (1, 1, 8, 8), steps=5, max_steps=4, separate_process=False)


def test_threads_are_set_for_the_steps_and_restored() -> None:
    threads_before = torch.get_num_threads()
    cost = measure_training_step(SRCNN(num_features=(4, 2)), (1, 1, 8, 8), (1, 1, 8, 8), steps=1, min_seconds=0,
                                 threads=1, separate_process=False)
    assert cost.threads == 1 and torch.get_num_threads() == threads_before
    cost = measure_training_step(SRCNN(num_features=(4, 2)), (1, 1, 8, 8), (1, 1, 8, 8), steps=1, min_seconds=0,
                                 threads=None, separate_process=False)
    assert cost.threads == threads_before


def test_measure_training_step_leaves_the_model_untouched() -> None:
    model = SRCNN(num_features=(8, 4))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    measure_training_step(model, (1, 1, 12, 12), (1, 1, 12, 12), steps=1, separate_process=False, learning_rate=0.1)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_wrong_input_for_the_family_is_explained() -> None:
    with pytest.raises(ValueError, match="give a pre-upsampling model the enlarged image"):
        measure_training_step(ESPCN(scale=3), (1, 1, 12, 12), (1, 1, 12, 12), steps=1, separate_process=False)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak resident memory is read from Linux's /proc")
def test_peak_memory_in_a_fresh_process() -> None:
    cost = measure_training_step(SRCNN(num_features=(16, 8)), (4, 1, 64, 64), (4, 1, 64, 64), steps=1, warmup=0,
                                 min_seconds=0)
    assert cost.peak_memory_bytes is not None and cost.peak_memory_bytes >= 0
    assert "VmHWM" in cost.memory_method and len(cost.step_seconds) == 1
    # the steps must at least hold the activations autograd saved
    assert cost.peak_memory_bytes >= 0.5 * cost.saved_activation_bytes


def test_compare_costs_feeds_each_family_its_own_input() -> None:
    models = {"pre": SRCNN(num_features=(8, 4)), "post": ESPCN(scale=3)}
    table = compare_costs(models, scale=3, output_size=12, batch_size=2, steps=1, warmup=0, separate_process=False)
    assert table.row("pre").input_shape == (2, 1, 12, 12)
    assert table.row("post").input_shape == (2, 1, 4, 4)
    assert all(row.output_shape == (2, 1, 12, 12) for row in table.rows)
    assert table.row("pre").parameters == sum(p.numel() for p in models["pre"].parameters())
    text = str(table)
    assert "pre" in text and "post" in text and "MACs/px" in text and "n/a" in text
    with pytest.raises(KeyError):
        table.row("vdsr")


def test_compare_costs_refuses_mismatched_settings() -> None:
    with pytest.raises(ValueError, match="multiple of the scale"):
        compare_costs({"espcn": ESPCN(scale=3)}, scale=3, output_size=10)
    with pytest.raises(ValueError, match="built for x2"):
        compare_costs({"espcn": ESPCN(scale=2)}, scale=3, output_size=12, separate_process=False)
    with pytest.raises(ValueError, match="upsampling"):
        compare_costs({"plain": nn.Conv2d(1, 1, 3, padding=1)}, scale=3, output_size=12, separate_process=False)
