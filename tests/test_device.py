"""The device helper: "auto" and explicit names, and clear refusals for devices that are absent."""

from __future__ import annotations

import pytest
import torch

from sr_teach.device import DeviceNotAvailableError, describe_device, mps_available, pick_device


def test_cpu_is_always_available():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(" CPU ") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    description = describe_device("cpu")
    assert description.startswith("cpu:") and f"{torch.get_num_threads()} threads" in description


def test_auto_prefers_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device().type == expected


def test_cuda_is_refused_clearly_when_absent_and_used_when_present():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
        assert pick_device("cuda:0") == torch.device("cuda:0")
        assert "GiB" in describe_device("cuda:0")
        with pytest.raises(DeviceNotAvailableError, match="numbered cuda:0"):
            pick_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(DeviceNotAvailableError, match="CUDA is not available.*device='auto'"):
            pick_device("cuda")
        with pytest.raises(DeviceNotAvailableError):
            pick_device("cuda:1")


def test_mps_is_refused_clearly_when_absent():
    if mps_available():
        assert pick_device("mps").type == "mps"
    else:
        with pytest.raises(DeviceNotAvailableError, match="Apple"):
            pick_device("mps")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        pick_device("gpu")
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'mps'"):
        pick_device("meta")
