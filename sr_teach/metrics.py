"""Quality metrics (PSNR, SSIM, MS-SSIM, GMSD, NIQE), per image, under the published SR tables' protocol.

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
from sr_teach.niqe import niqe_of_gray


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


def prepare_pair(
    prediction: torch.Tensor, target: torch.Tensor, crop_border: int, y_channel: bool, round_to_8bit: bool,
    peak: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check that two images match, then apply the protocol's steps to both: (B, C', H', W') each, on
    0..peak (1 for PSNR, 255 for the metrics whose constants are set on the 0..255 scale)."""
    check_same_shape(prediction, target)
    return (prepare(prediction, crop_border, y_channel, round_to_8bit) * peak,
            prepare(target, crop_border, y_channel, round_to_8bit) * peak)


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
    prediction, target = prepare_pair(prediction, target, crop_border, y_channel, round_to_8bit)
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
    x, y = prepare_pair(prediction, target, crop_border, y_channel, round_to_8bit, peak=255.0)
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 pixels, got {tuple(x.shape[-2:])}")
    ssim_map, _ = ssim_maps(x, y)
    return ssim_map.mean(dim=(1, 2, 3)).float()


def ssim_maps(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and its contrast-structure part (the second factor) at every 'valid' 11 x 11 window,
    for (B, C, H, W) images on 0..255: two maps of shape (B, C, H - 10, W - 10)."""
    channels = x.shape[1]
    # The window is an outer product of two 1-D Gaussians, so a column pass then a row pass give the
    # same local means as one 11 x 11 pass, about 5 times faster in float64 on a CPU.
    window = gaussian_kernel(sigma=1.5, size=11).to(x)  # Wang et al.'s window, summing to 1, in x's dtype
    column = window.sum(dim=1).view(1, 1, 11, 1).expand(channels, 1, 11, 1)
    row = window.sum(dim=0).view(1, 1, 1, 11).expand(channels, 1, 1, 11)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(image, column, groups=channels), row, groups=channels)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = local_mean(x), local_mean(y)
    sigma_x2 = local_mean(x * x) - mu_x**2
    sigma_y2 = local_mean(y * y) - mu_y**2
    sigma_xy = local_mean(x * y) - mu_x * mu_y
    contrast_structure = (2 * sigma_xy + c2) / (sigma_x2 + sigma_y2 + c2)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * contrast_structure, contrast_structure


# Wang, Simoncelli and Bovik (2003), Table 1: the weight of each scale, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIZE = 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # an 11 x 11 window still fits at the 5th scale: 176


def ms_ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    round_to_8bit: bool = False,
) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli and Bovik 2003), one value per image: shape (B,).

    SSIM's contrast-structure term cs_j is measured at 5 scales, each the previous one averaged over
    2 x 2 blocks (as the authors' MATLAB `msssim`), and the luminance term only at the coarsest:

        MS-SSIM = ssim_5^w_5 * prod over j = 1..4 of cs_j^w_j,   w = MS_SSIM_WEIGHTS

    Same window, constants and 0..255 scale as `ssim`; colour is averaged over channels at each scale.
    Images need at least 176 x 176 pixels (after crop_border), else a ValueError: use `ssim` for
    smaller ones. Unrelated images can give a negative cs_j, and then NaN, as in the paper's formula.
    """
    x, y = prepare_pair(prediction, target, crop_border, y_channel, round_to_8bit, peak=255.0)
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE} x {MS_SSIM_MIN_SIZE} pixels "
                         f"(11 x 11 at the 5th scale), got {tuple(x.shape[-2:])}; use ssim for smaller images")
    result = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for weight in MS_SSIM_WEIGHTS[:-1]:  # the 4 finer scales: contrast-structure only
        _, contrast_structure = ssim_maps(x, y)
        result = result * contrast_structure.mean(dim=(1, 2, 3)) ** weight
        x, y = _halve(x, mirror=True), _halve(y, mirror=True)
    ssim_map, _ = ssim_maps(x, y)  # the coarsest scale: the whole SSIM
    return (result * ssim_map.mean(dim=(1, 2, 3)) ** MS_SSIM_WEIGHTS[-1]).float()


def _halve(image: torch.Tensor, mirror: bool) -> torch.Tensor:
    """Average 2 x 2 blocks, (B, C, H, W) -> (B, C, ceil(H / 2), ceil(W / 2)). An odd last row or
    column is averaged with its mirror image (MATLAB imfilter 'symmetric', MS-SSIM) or with zeros
    (conv2 'same', GMSD)."""
    padding = (0, image.shape[-1] % 2, 0, image.shape[-2] % 2)
    padded = F.pad(image, padding, mode="replicate") if mirror else F.pad(image, padding)
    return F.avg_pool2d(padded, kernel_size=2)


# Xue et al.'s constant on the 0..255 scale: it keeps the ratio stable where both gradients are small.
GMSD_C = 170.0


def gmsd(
    prediction: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    round_to_8bit: bool = False,
) -> torch.Tensor:
    """Gradient magnitude similarity deviation (Xue, Zhang, Mou and Bovik 2014): shape (B,). Lower is
    better: 0 for identical images, and it grows as edges are lost or invented.

    As the authors' MATLAB `GMSD`: both images are 2 x 2 averaged and halved, the gradient magnitude
    m = sqrt(gx^2 + gy^2) is taken with Prewitt filters / 3 on 0..255, and with c = GMSD_C = 170

        GMS = (2 m_x m_y + c) / (m_x^2 + m_y^2 + c),   GMSD = standard deviation (N - 1) of the GMS map

    Colour images without y_channel are measured per channel and averaged. Needs at least 4 x 4 pixels.
    """
    x, y = prepare_pair(prediction, target, crop_border, y_channel, round_to_8bit, peak=255.0)
    if min(x.shape[-2:]) < 4:
        raise ValueError(f"GMSD needs images of at least 4 x 4 pixels, got {tuple(x.shape[-2:])}")
    magnitude_x = _gradient_magnitude(_halve(x, mirror=False))  # (B, C, ceil(H / 2), ceil(W / 2))
    magnitude_y = _gradient_magnitude(_halve(y, mirror=False))
    similarity = (2 * magnitude_x * magnitude_y + GMSD_C) / (magnitude_x**2 + magnitude_y**2 + GMSD_C)
    return similarity.flatten(start_dim=2).std(dim=-1).mean(dim=1).float()  # (B, C) -> (B,)


def _gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    """sqrt(gx^2 + gy^2) with Prewitt filters / 3, zero-padded to keep the size: (B, C, H, W) -> same."""
    prewitt_x = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=image.dtype, device=image.device) / 3
    filters = torch.stack([prewitt_x, prewitt_x.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    gradients = F.conv2d(image.flatten(end_dim=1)[:, None], filters, padding=1)  # (B * C, 2, H, W)
    return gradients.pow(2).sum(dim=1).sqrt().view(image.shape)


def niqe(image: torch.Tensor, crop_border: int = 0, y_channel: bool = True, round_to_8bit: bool = True) -> torch.Tensor:
    """NIQE (Mittal, Soundararajan and Bovik 2013), a no-reference score, one per image: shape (B,)
    for (B, C, H, W) input, a 0-d tensor for (C, H, W). Lower is better (more like a pristine photo).

    Measured as BasicSR and the PIRM challenge run the LIVE MATLAB release: the 8-bit image's 8-bit
    luma Y (gray images as they are; the release's own demo takes MATLAB's rgb2gray instead) on
    0..255, `crop_border` pixels cut, then `sr_teach.niqe.niqe_of_gray` (the formula is there).
    Needs two whole 96 x 96 blocks (e.g. 96 x 192 pixels), else a ValueError.
    """
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    batch = prepare(image, crop_border, y_channel, round_to_8bit) * 255.0
    if batch.shape[1] != 1:
        raise ValueError(f"NIQE measures one channel; got {batch.shape[1]}: pass y_channel=True or a gray image")
    values = torch.tensor([niqe_of_gray(gray[0]) for gray in batch])  # (B,)
    return values if image.dim() == 4 else values[0]


# The scores a lesson or a benchmark sets side by side, and whether a higher score is better.
HIGHER_IS_BETTER: dict[str, bool] = {"PSNR": True, "SSIM": True, "MS-SSIM": True, "GMSD": False, "NIQE": False}


def quality_scores(image: torch.Tensor, reference: torch.Tensor, crop_border: int = 0, y_channel: bool = True,
                   round_to_8bit: bool = True) -> dict[str, float]:
    """Every score of HIGHER_IS_BETTER for one (C, H, W) image under one protocol: PSNR, SSIM, MS-SSIM
    and GMSD against `reference`, NIQE of the image alone. MS-SSIM needs 176 pixels a side after the
    border is cut, NIQE two 96 x 96 blocks."""
    pair, protocol = (image[None], reference[None]), {"crop_border": crop_border, "y_channel": y_channel,
                                                      "round_to_8bit": round_to_8bit}
    return {"PSNR": float(psnr(*pair, **protocol)[0]), "SSIM": float(ssim(*pair, **protocol)[0]),
            "MS-SSIM": float(ms_ssim(*pair, **protocol)[0]), "GMSD": float(gmsd(*pair, **protocol)[0]),
            "NIQE": float(niqe(image, **protocol))}


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
