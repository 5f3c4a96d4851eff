"""NIQE, the "completely blind" image quality score of Mittal, Soundararajan and Bovik (2013).

No reference image is needed: NIQE asks how far the local statistics of an image are from those of
pristine natural photos. Each 96 x 96 block of the image gives 36 numbers (the shape of the
distribution of its normalised pixels and of products of neighbouring ones, at two scales); their
mean and covariance over the blocks are compared with the pristine model's by a Mahalanobis-like
distance. Lower is more natural. The pristine model (`niqe_model/`) is the one of the LIVE MATLAB
release, shipped with its UT Austin copyright notice; this module follows that release's
`computequality.m` step by step. `sr_teach.metrics.niqe` applies the evaluation protocol around it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sr_teach.degradations import gaussian_kernel
from sr_teach.interpolation import resize

BLOCK_SIZE = 96  # the release's block, in pixels at the first scale (48 at the second)
MODEL_FOLDER = Path(__file__).parent / "niqe_model"


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[torch.Tensor, torch.Tensor]:
    """The LIVE release's pristine model: the mean (36,) and covariance (36, 36) of block features
    over 125 pristine photos, float64. Training kept only the blocks whose sharpness (mean local
    deviation) was over 0.75 times that of the photo's sharpest block; scoring uses every block."""
    mean = np.loadtxt(MODEL_FOLDER / "pristine_mean.csv", delimiter=",")
    covariance = np.loadtxt(MODEL_FOLDER / "pristine_covariance.csv", delimiter=",")
    return torch.from_numpy(mean), torch.from_numpy(covariance)


def normalized_luminance(image: torch.Tensor) -> torch.Tensor:
    """(I - mu) / (sigma + 1), mu and sigma the local mean and standard deviation under a 7 x 7
    Gaussian (sigma 7/6) with replicated edges, as the release's `imfilter(..., 'replicate')`.
    Shape: (H, W) on 0..255 -> (H, W)."""
    window = gaussian_kernel(sigma=7 / 6, size=7).to(image)[None, None]  # MATLAB fspecial('gaussian', 7, 7/6)

    def local_mean(values: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(values[None, None], (3, 3, 3, 3), mode="replicate"), window)[0, 0]

    mu = local_mean(image)
    sigma = (local_mean(image * image) - mu**2).abs().sqrt()
    return (image - mu) / (sigma + 1)


# The grid over which the release searches the AGGD shape alpha, 0.2:0.001:10, and the ratio
# Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) that each alpha gives (rho in the paper).
_ALPHAS = torch.arange(200, 10001, dtype=torch.float64) / 1000


def _gamma(x: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(x).exp()  # every argument here is positive


_RATIOS = _gamma(2 / _ALPHAS) ** 2 / (_gamma(1 / _ALPHAS) * _gamma(3 / _ALPHAS))


def fit_aggd(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit an asymmetric generalised Gaussian to each row of `values` (N, M) by moment matching, as
    the release's `estimateaggdparam`: returns alpha (shape), beta_left and beta_right (scales), (N,)
    each. A row without negative (or positive) values gives NaN betas, as in MATLAB."""
    negative, positive = values < 0, values > 0
    left_std = ((values**2 * negative).sum(dim=1) / negative.sum(dim=1)).sqrt()
    right_std = ((values**2 * positive).sum(dim=1) / positive.sum(dim=1)).sqrt()
    gamma_hat = left_std / right_std
    r_hat = values.abs().mean(dim=1) ** 2 / (values**2).mean(dim=1)
    r_hat_normalized = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    # The first best alpha, as MATLAB's min; for a NaN row both pick the first alpha, 0.2.
    alpha = _ALPHAS[((_RATIOS[None, :] - r_hat_normalized[:, None]) ** 2).argmin(dim=1)]
    spread = (_gamma(1 / alpha) / _gamma(3 / alpha)).sqrt()
    return alpha, left_std * spread, right_std * spread


# The release's neighbour pairs (circshift by these rows, columns): horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def block_features(blocks: torch.Tensor) -> torch.Tensor:
    """The release's 18 features of each normalised block, as `computefeature`: (N, h, w) -> (N, 18).

    alpha and the mean scale of the AGGD of the pixels; then, for the products of each pixel with a
    neighbour (the block wrapped around at its edges, as MATLAB's circshift), alpha, the mean
    (beta_r - beta_l) Gamma(2/alpha) / Gamma(1/alpha), beta_l and beta_r.
    """
    alpha, beta_left, beta_right = fit_aggd(blocks.flatten(start_dim=1))
    features = [alpha, (beta_left + beta_right) / 2]
    for shift in _SHIFTS:
        products = blocks * torch.roll(blocks, shifts=shift, dims=(1, 2))
        alpha, beta_left, beta_right = fit_aggd(products.flatten(start_dim=1))
        mean = (beta_right - beta_left) * _gamma(2 / alpha) / _gamma(1 / alpha)
        features += [alpha, mean, beta_left, beta_right]
    return torch.stack(features, dim=1)


def image_blocks(image: torch.Tensor, size: int) -> torch.Tensor:
    """Cut an (H, W) image whose sides are multiples of `size` into (N, size, size) blocks."""
    rows, columns = image.shape[0] // size, image.shape[1] // size
    return image.view(rows, size, columns, size).permute(0, 2, 1, 3).reshape(rows * columns, size, size)


def niqe_of_gray(image: torch.Tensor) -> float:
    """NIQE of one (H, W) gray or luma image on 0..255 (float), as the release's `computequality`.

    Whole 96 x 96 blocks from the top-left corner are used (the rest is cut off), at the image's size
    and at half of it (MATLAB's bicubic imresize(0.5)). With f the (N, 36) block features, m and S
    their mean and covariance (blocks with a NaN feature left out), m_p and S_p the pristine model's:

        NIQE = sqrt((m_p - m)^T pinv((S_p + S) / 2) (m_p - m))
    """
    rows, columns = (image.shape[0] // BLOCK_SIZE, image.shape[1] // BLOCK_SIZE) if image.dim() == 2 else (0, 0)
    if rows * columns < 2:
        raise ValueError(f"NIQE needs a 2-D image with at least two {BLOCK_SIZE} x {BLOCK_SIZE} blocks "
                         f"(e.g. {BLOCK_SIZE} x {2 * BLOCK_SIZE} pixels), got shape {tuple(image.shape)}")
    image = image[: rows * BLOCK_SIZE, : columns * BLOCK_SIZE].to(torch.float64)
    half = resize(image[None] / 255, scale=0.5, clamp=False)[0] * 255  # MATLAB imresize(im, 0.5), unclamped
    features = torch.cat([  # (N, 36): block i's 18 features at full size, then at half size
        block_features(image_blocks(normalized_luminance(image), BLOCK_SIZE)),
        block_features(image_blocks(normalized_luminance(half), BLOCK_SIZE // 2)),
    ], dim=1)
    complete = features[~features.isnan().any(dim=1)]  # MATLAB's nancov drops incomplete rows
    mean = features.nanmean(dim=0)  # MATLAB's nanmean skips NaNs column by column
    pristine_mean, pristine_covariance = pristine_model()
    difference = pristine_mean - mean
    pooled = (pristine_covariance + torch.cov(complete.T)) / 2
    return float((difference @ torch.linalg.pinv(pooled) @ difference).sqrt())
