"""Quality metrics: PSNR and SSIM, per image, under the protocol of the published SR tables.

The protocol (what "Set5 x2: 33.66 dB for bicubic" means):
1. the super-resolved image is rounded to 8 bits, as if saved to a PNG (`round_to_8bit=True`);
2. colour images are measured on the luma Y of MATLAB's rgb2ycbcr (`y_channel=True`), itself
   rounded to 8 bits as MATLAB does for 8-bit input (this alone moves Set5 x2 by 0.03 dB); gray
   images as they are;
3. `crop_border` = scale pixels are removed from every edge, because the borders of an upscaled
   image are guesswork that says little about the method;
4. PSNR and SSIM are computed per image on the 0..255 scale and then averaged over the set.
Each choice moves the numbers by tenths of a dB or more (notebook 02 measures by how much), which
is why "my PSNR does not match the paper" is the most common complaint in SR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sr_teach.degradations import gaussian_kernel
from sr_teach.images import quantize, rgb_to_luma


def prepare(
    image: torch.Tensor, crop_border: int = 0, y_channel: bool = False, round_to_8bit: bool = False
) -> torch.Tensor:
    """Apply the protocol's steps to a (B, C, H, W) or (C, H, W) image, returning (B, C', H', W')."""
    batch = image if image.dim() == 4 else image[None]
    batch = batch.to(torch.float64)
    if round_to_8bit:
        batch = quantize(batch)
    if y_channel:
        batch = rgb_to_luma(batch)
        if round_to_8bit:
            batch = quantize(batch)  # MATLAB's rgb2ycbcr returns 8-bit Y for 8-bit input
    if crop_border > 0:
        batch = batch[..., crop_border:-crop_border, crop_border:-crop_border]
        if batch.shape[-1] == 0 or batch.shape[-2] == 0:
            raise ValueError(f"crop_border={crop_border} leaves no pixels of a {tuple(image.shape[-2:])} image")
    return batch


def check_same_shape(prediction: torch.Tensor, target: torch.Tensor, dims: tuple[int, ...] = (3, 4)) -> None:
    """Two images (or batches) of one shape, with `dims` dimensions: without this check, (B, 1, H, W)
    against (B, H, W) would broadcast silently to (B, B, H, W) and give a meaningless number."""
    if prediction.shape != target.shape:
        raise ValueError(f"the two images must have the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
    if prediction.dim() not in dims:
        layouts = {3: "(C, H, W)", 4: "(B, C, H, W)"}
        raise ValueError(f"expected {' or '.join(layouts[d] for d in dims)}, got shape {tuple(prediction.shape)}")


def psnr(
    prediction: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    round_to_8bit: bool = False,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, one value per image: shape (B,) for (B, C, H, W) input.

    PSNR = 10 log10(1 / MSE) for images in [0, 1] (the same as 10 log10(255^2 / MSE) on 0..255).
    Identical images give +inf.

    >>> float(psnr(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1)))
    20.0
    """
    check_same_shape(prediction, target)
    prediction = prepare(prediction, crop_border, y_channel, round_to_8bit)
    target = prepare(target, crop_border, y_channel, round_to_8bit)
    mse = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse)).float()


def protocol_psnr(sr_image: torch.Tensor, hr_image: torch.Tensor, scale: int) -> torch.Tensor:
    """PSNR as the published SR tables measure it: 8-bit output, luma Y, a border of `scale` pixels
    cropped. Shape (B,), or a 0-d tensor for one (C, H, W) image."""
    values = psnr(sr_image, hr_image, crop_border=scale, y_channel=True, round_to_8bit=True)
    return values if sr_image.dim() == 4 else values[0]


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    round_to_8bit: bool = False,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), one value per image: shape (B,).

    Local statistics under an 11 x 11 Gaussian window (sigma 1.5), 'valid' positions only, as the
    authors' MATLAB `ssim_index`; on the 0..255 scale with C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2:

        SSIM = mean over windows of (2 mu_x mu_y + C1)(2 sigma_xy + C2)
                                    / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

    Colour images without y_channel are measured per channel and averaged.
    """
    check_same_shape(prediction, target)
    x = prepare(prediction, crop_border, y_channel, round_to_8bit) * 255.0
    y = prepare(target, crop_border, y_channel, round_to_8bit) * 255.0
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 pixels, got {tuple(x.shape[-2:])}")
    channels = x.shape[1]
    # The window is an outer product of two 1-D Gaussians, so a column pass then a row pass give the
    # same local means as one 11 x 11 pass, about 5 times faster in float64 on a CPU.
    window = gaussian_kernel(sigma=1.5, size=11).to(x.device)  # Wang et al.'s window, summing to 1
    column = window.sum(dim=1).view(1, 1, 11, 1).expand(channels, 1, 11, 1)
    row = window.sum(dim=0).view(1, 1, 1, 11).expand(channels, 1, 1, 11)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(image, column, groups=channels), row, groups=channels)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = local_mean(x), local_mean(y)
    sigma_x2 = local_mean(x * x) - mu_x**2
    sigma_y2 = local_mean(y * y) - mu_y**2
    sigma_xy = local_mean(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (sigma_x2 + sigma_y2 + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).float()


def checkerboard_strength(prediction: torch.Tensor, target: torch.Tensor, scale: int, border: int | None = None) -> float:
    """How strongly an upsampler's output repeats a scale x scale pattern, in 8-bit gray levels.

    The error (prediction - target) is averaged separately at each of the scale^2 positions inside
    the output's scale x scale blocks; a checkerboard shows as these means differing. Returns their
    standard deviation x 255 (0 for no pattern). `border` pixels are left out at every edge, where
    padding changes the output; the default 6 x scale covers small networks and keeps the block grid.
    Takes (C, H, W) images; channels are averaged.
    """
    border = 6 * scale if border is None else border
    error = (prediction - target).mean(dim=-3)[border:-border, border:-border]  # (H, W)
    height, width = error.shape[0] // scale * scale, error.shape[1] // scale * scale
    if height <= 0 or width <= 0:
        raise ValueError(f"the image is too small for a border of {border} pixels at x{scale}")
    phase_means = torch.stack([error[i:height:scale, j:width:scale].mean()
                               for i in range(scale) for j in range(scale)])  # (scale * scale,)
    return float(phase_means.std() * 255)
