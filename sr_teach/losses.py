"""Training losses: how far a super-resolved batch is from the ground truth, as one number to minimise.

For images in [0, 1], PSNR = 10 log10(1 / MSE): minimising MSE maximises the PSNR of the batch as
a whole, though the reported PSNR is a per-image average under a protocol (`sr_teach.metrics`)
that is not differentiable. MSE is what SRCNN, VDSR, FSRCNN and ESPCN trained with; L1 and
Charbonnier punish large errors less and often reach a *higher* PSNR (Zhao et al. 2017,
arXiv:1511.08861; EDSR, LapSRN) after long training; after a few hundred steps of a small
network, lesson 08 finds MSE and L1 about a tenth of a dB apart. Every loss takes a prediction
and a target (B, C, H, W) and returns the mean over all values, the mean of the per-image losses.
"""

from collections.abc import Callable

import torch

from sr_teach.metrics import check_same_shape

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error: MSE = (1/N) * sum_i (prediction_i - target_i)^2 over all N values.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> mse_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))
    tensor(0.2500)
    """
    check_same_shape(prediction, target, dims=(4,))
    return ((prediction - target) ** 2).mean()


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: L1 = (1/N) * sum_i |prediction_i - target_i| over all N values.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> l1_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), -0.5))
    tensor(0.5000)
    """
    check_same_shape(prediction, target, dims=(4,))
    return (prediction - target).abs().mean()


def charbonnier_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier loss, a smooth L1: (1/N) * sum_i sqrt((prediction_i - target_i)^2 + eps^2).

    Charbonnier et al. 1994; used for SR by Lai et al., "Deep Laplacian Pyramid Networks for
    Fast and Accurate Super-Resolution" (LapSRN), CVPR 2017 (arXiv:1704.03915), with eps = 1e-3.
    Like L1 for errors much larger than eps, but smooth at zero error (where |x| has no
    derivative). It is always between L1 and L1 + eps, so it approaches L1 as eps -> 0.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> charbonnier_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), eps=0.1)
    tensor(0.1000)
    """
    check_same_shape(prediction, target, dims=(4,))
    if not eps > 0:
        raise ValueError(f"eps must be positive (eps = 0 is plain L1, not differentiable at 0), got {eps}")
    return torch.sqrt((prediction - target) ** 2 + eps**2).mean()


# The one place names map to losses, for dropdowns and the command line.
LOSSES: dict[str, LossFunction] = {
    "mse": mse_loss,
    "l1": l1_loss,
    "charbonnier": charbonnier_loss,
}


def get_loss(name_or_callable: str | LossFunction) -> LossFunction:
    """The loss called `name_or_callable` in LOSSES, or the callable itself if you pass one.

    >>> get_loss("l1") is l1_loss
    True
    """
    if callable(name_or_callable):
        return name_or_callable
    if not isinstance(name_or_callable, str):
        raise TypeError(
            f"get_loss expects a loss name or a function (prediction, target) -> loss, got {name_or_callable!r}"
        )
    if name_or_callable not in LOSSES:
        raise ValueError(f"unknown loss {name_or_callable!r}; the known losses are: {', '.join(LOSSES)}")
    return LOSSES[name_or_callable]
