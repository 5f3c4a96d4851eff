"""Training losses: how far a super-resolved batch is from the ground truth, as one number to minimise.

For images in [0, 1], PSNR = 10 log10(1 / MSE): minimising MSE maximises the PSNR of the batch as
a whole. MSE is what SRCNN, VDSR, FSRCNN and ESPCN trained with; L1 and Charbonnier punish large
errors less and often reach a *higher* PSNR after long training (Zhao et al. 2017, arXiv:1511.08861;
EDSR, LapSRN); after a few hundred steps of a small network, lesson 08 finds them a tenth of a dB apart.
The others reward something else: SSIM local structure, the gradient loss edges, the FFT loss every
frequency alike, the texture loss (`sr_teach.texture_loss`) local statistics; lesson 13 trains with
each. Every loss takes a prediction and a target (B, C, H, W) and returns one scalar, a mean over
the batch.
"""

from collections.abc import Callable

import torch

from sr_teach.metrics import check_same_shape, ssim_maps  # SSIM's maps: the loss and the metric share them
from sr_teach.texture_loss import TEXTURE_WEIGHT, texture_loss

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


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural dissimilarity: 1 - SSIM, with SSIM computed as `sr_teach.metrics.ssim` does
    (Gaussian window, the same constants; the formula is there) but without the protocol, which is
    not differentiable, and in the images' own dtype (float32 in training; the metric uses float64).

    SSIM compares local means, contrasts and correlations, so this loss rewards local structure and
    contrast; it judges brightness relative to the local mean (Weber's law): a shift costs little where
    the image is bright, much where it is dark. Zhao et al. 2017 (arXiv:1511.08861) train with it and
    with MS-SSIM + L1. Only whole 11 x 11 windows count ('valid'): pixels within 5 of the border pull less.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> round(float(ssim_loss(torch.full((1, 1, 11, 11), 0.5), torch.full((1, 1, 11, 11), 0.6))), 4)
    0.0164
    """
    check_same_shape(prediction, target, dims=(4,))
    if min(prediction.shape[-2:]) < 11:
        raise ValueError(f"the SSIM loss needs images of at least 11 x 11 pixels (its window), got "
                         f"{tuple(prediction.shape[-2:])}")
    ssim_map, _ = ssim_maps(prediction * 255, target * 255)  # (B, C, H - 10, W - 10), on 0..255 as the metric
    return 1 - ssim_map.mean()


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients, taken as differences of neighbouring pixels:

        L = (1/2) (mean |dx(prediction) - dx(target)| + mean |dy(prediction) - dy(target)|),
        dx(image) = image[..., :, 1:] - image[..., :, :-1],   dy likewise down the rows.

    It rewards edges of the right contrast in the right place. As dx is linear, it is the L1 of the
    error's gradient, blind to a constant error (a brightness shift), so in practice it is used beside
    a pixel loss: Mathieu, Couprie and LeCun's gradient difference loss (2016, arXiv:1511.05440) and
    the gradient terms of SPSR (Ma et al. 2020, arXiv:2003.13081). Needs at least 2 x 2 pixels.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> gradient_loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))
    tensor(0.5000)
    """
    check_same_shape(prediction, target, dims=(4,))
    if min(prediction.shape[-2:]) < 2:
        raise ValueError(f"the gradient loss needs at least 2 x 2 pixels, got {tuple(prediction.shape[-2:])}")
    error = prediction - target  # (B, C, H, W)
    across = (error[..., :, 1:] - error[..., :, :-1]).abs().mean()  # (B, C, H, W - 1) before the mean
    down = (error[..., 1:, :] - error[..., :-1, :]).abs().mean()  # (B, C, H - 1, W) before the mean
    return (across + down) / 2


def fft_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the complex 2-D Fourier spectra, real and imaginary parts:

        L = (1/M) sum over the M coefficients k of |Re(P_k - T_k)| + |Im(P_k - T_k)|,
        P = rfft2(prediction), T = rfft2(target), orthonormal, per channel; M = H (W // 2 + 1).

    The complex spectrum, not its magnitude: the magnitudes forget the phase, where the edges are (a
    shifted image has the same ones); the complex spectrum determines the image. L1, not L2: by
    Parseval the L2 would be MSE again; L1 counts each frequency's error alike, so the many faint high
    frequencies a blurred output lacks add up, while an error in few coefficients counts little: a
    constant (brightness) error sits in one, the mean, and costs sqrt(H W) / M of what L1 charges.
    MIMO-UNet's loss (Cho et al. 2021, arXiv:2108.05054);
    Fuoli et al. 2021 (arXiv:2106.00783) compare amplitudes and phases instead. rfft2 keeps the half
    of the spectrum that a real image does not repeat.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.

    >>> fft_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))  # only the mean: 1 / 4 * 1
    tensor(0.2500)
    """
    check_same_shape(prediction, target, dims=(4,))
    spectrum = torch.fft.rfft2(prediction - target, norm="ortho")  # (B, C, H, W // 2 + 1), complex; linear
    return (spectrum.real.abs() + spectrum.imag.abs()).mean()


def l1_texture_loss(prediction: torch.Tensor, target: torch.Tensor,
                    texture_weight: float = TEXTURE_WEIGHT) -> torch.Tensor:
    """L1 + texture_weight * texture_loss (`sr_teach.texture_loss`): L1 puts things where they belong,
    the texture term asks the output's local statistics to match the photo's (random features'
    Gram matrices: no VGG, no download). Needs at least 17 x 17 pixels.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar.
    """
    if not texture_weight >= 0:
        raise ValueError(f"texture_weight must be 0 or more (0 is plain L1), got {texture_weight}")
    return l1_loss(prediction, target) + texture_weight * texture_loss(prediction, target)


# The one place names map to losses, for dropdowns and the command line.
LOSSES: dict[str, LossFunction] = {
    "mse": mse_loss,
    "l1": l1_loss,
    "charbonnier": charbonnier_loss,
    "ssim": ssim_loss,
    "gradient": gradient_loss,
    "fft": fft_loss,
    "texture": l1_texture_loss,  # texture statistics alone say nothing about where things are: with L1
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
