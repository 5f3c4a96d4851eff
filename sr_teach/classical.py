"""Classical restorers from well-kept libraries: the lines a network must beat, without learning.

- BM3D (Dabov et al. 2007, the `bm3d` package): groups similar patches and filters them together;
  the best classical denoiser, and the baseline of every denoising table.
- Non-local means and total variation (scikit-image): a weighted average of similar patches, and
  the image of least total variation near the input (smooths noise and JPEG blocks alike).
- Biharmonic inpainting (scikit-image): fills a masked region with the smoothest surface that meets
  its border.
- Gray plus mean chroma: a colouriser that paints every pixel with the training images' average
  colour (the line for colourisation).
Each takes and returns (C, H, W) tensors in [0, 1]; sigma is on the 0..255 scale.
"""

from __future__ import annotations

import numpy as np
import torch

from sr_teach.images import rgb_to_ycbcr, ycbcr_to_rgb


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor -> (H, W) for one channel, (H, W, C) for colour, float64."""
    array = image.detach().cpu().double().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def _to_tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array)).to(like.dtype)


def bm3d_denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D with the known noise level (CBM3D, in a luminance-chrominance space, for colour)."""
    import bm3d  # optional: pip install bm3d (or sr_teach[baselines])

    array = _to_numpy(noisy)
    if array.ndim == 2:
        return _to_tensor(bm3d.bm3d(array, sigma_psd=sigma / 255), noisy)
    return _to_tensor(bm3d.bm3d_rgb(array, sigma_psd=sigma / 255), noisy)


def nlm_denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """Non-local means with scikit-image's advice for a known sigma: h = 0.8 sigma, 5 x 5 patches."""
    from skimage.restoration import denoise_nl_means

    array, sigma01 = _to_numpy(noisy), sigma / 255
    channel_axis = None if array.ndim == 2 else -1
    denoised = denoise_nl_means(array, h=0.8 * sigma01, sigma=sigma01, patch_size=5, patch_distance=6,
                                fast_mode=True, channel_axis=channel_axis)
    return _to_tensor(denoised, noisy)


def tv_smooth(image: torch.Tensor, weight: float) -> torch.Tensor:
    """Total-variation smoothing (Chambolle's algorithm); a larger weight smooths more."""
    from skimage.restoration import denoise_tv_chambolle

    array = _to_numpy(image)
    return _to_tensor(denoise_tv_chambolle(array, weight=weight, channel_axis=None if array.ndim == 2 else -1), image)


def biharmonic_inpaint(damaged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the pixels where mask (1, H, W) is 1 with the smoothest surface that meets their border."""
    from skimage.restoration import inpaint_biharmonic

    array = _to_numpy(damaged)
    filled = inpaint_biharmonic(array, mask[0].bool().cpu().numpy(), channel_axis=None if array.ndim == 2 else -1)
    return _to_tensor(filled, damaged)


def mean_chroma(images: list[torch.Tensor]) -> tuple[float, float]:
    """The average Cb and Cr of colour images (C, H, W): what "the usual colour" is for a colouriser."""
    chroma = [rgb_to_ycbcr(image)[1:].mean(dim=(1, 2)) for image in images if image.shape[0] == 3]
    if not chroma:
        raise ValueError("mean_chroma needs at least one colour (3-channel) image")
    cb, cr = torch.stack(chroma).mean(dim=0).tolist()
    return cb, cr


def gray_with_mean_chroma(gray: torch.Tensor, chroma: tuple[float, float]) -> torch.Tensor:
    """Colourise a full-range gray image (1, H, W) by giving every pixel the same chroma (Cb, Cr): (3, H, W)."""
    cb, cr = chroma
    luma = 16 / 255 + gray * 219 / 255  # full-range gray -> the Y of YCbCr (16..235)
    ycbcr = torch.cat([luma, torch.full_like(gray, cb), torch.full_like(gray, cr)])
    return ycbcr_to_rgb(ycbcr).clamp(0, 1)
