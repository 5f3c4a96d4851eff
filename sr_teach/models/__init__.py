"""The networks, each written to read like its paper, and the one registry that names them.

- `super_resolution`: SRCNN and VDSR (pre-upsampling), FSRCNN, ESPCN and PostUpsamplingNet (post).
- `progressive`: LapSRN (x2 steps) and DBPN (up- and down-projections): upsampling inside the network.
- `reparameterized`: ECBSR, trained with extra linear branches that merge into one 3 x 3 per layer.
- `restoration`: DnCNN, AR-CNN and a U-Net, which keep the size (denoising, JPEG, holes, colour).
- `base`: what they share: a config dataclass with the scale and the channels, and the family.
Each model's hyperparameters are a small config dataclass (as nanoGPT's GPTConfig), with the
paper's defaults; `ESPCN(scale=2)` changes one of them. A checkpoint is `state_dict` + the config.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from sr_teach.models.base import ModelConfig, SRModel
from sr_teach.models.progressive import DBPN, LapSRN
from sr_teach.models.reparameterized import ECBSR, CollapsedECBSR
from sr_teach.models.restoration import ARCNN, DnCNN, RestorationModel, UNet
from sr_teach.models.super_resolution import (
    ESPCN, FSRCNN, SRCNN, VDSR, PostUpsamplingNet, icnr_, transposed_conv_padding,
)

__all__ = [
    "ARCNN", "DBPN", "ECBSR", "ESPCN", "FSRCNN", "LapSRN", "MODELS", "SRCNN", "VDSR", "DnCNN", "ModelConfig", "PostUpsamplingNet",
    "CollapsedECBSR",
    "RESTORATION_MODELS", "RestorationModel", "SRModel", "SR_MODELS", "UNet", "build_model", "count_parameters", "icnr_", "model_name",
    "transposed_conv_padding",
]

# The one place names map to classes, for dropdowns, the command line and checkpoints.
MODELS: dict[str, type[SRModel]] = {
    "srcnn": SRCNN,
    "vdsr": VDSR,
    "fsrcnn": FSRCNN,
    "espcn": ESPCN,
    "post": PostUpsamplingNet,
    "lapsrn": LapSRN,
    "dbpn": DBPN,
    "ecbsr": ECBSR,
    "dncnn": DnCNN,
    "arcnn": ARCNN,
    "unet": UNet,
}
# The two families: enlarging (any scale of 2 or more) and restoring at the same size (scale 1).
SR_MODELS = {name: model for name, model in MODELS.items() if not issubclass(model, RestorationModel)}
RESTORATION_MODELS = {name: model for name, model in MODELS.items() if issubclass(model, RestorationModel)}


def build_model(name: str, **config: Any) -> SRModel:
    """Build a model by its name in MODELS: `build_model("fsrcnn", scale=2)`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the known models are: {', '.join(MODELS)}")
    return MODELS[name](**config)


def model_name(model: nn.Module) -> str:
    """The model's name in MODELS (the inverse of build_model), else its class name."""
    return next((name for name, model_class in MODELS.items() if type(model) is model_class), type(model).__name__)


def count_parameters(model: nn.Module) -> int:
    """The number of learnable numbers in the model (weights, biases, PReLU slopes)."""
    return sum(parameter.numel() for parameter in model.parameters())
