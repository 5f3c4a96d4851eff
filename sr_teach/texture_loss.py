"""A texture loss on a frozen random network: do the output's local statistics match the photo's?

Gatys, Ecker and Bethge 2015 (arXiv:1505.07376) describe a texture by the Gram matrices of a trained
VGG-19's feature maps: how often each pair of features fires together, averaged over all positions, so
*where* a pattern sits is forgotten and only its statistics remain. Ustyuzhaninov et al. ("What does it
take to generate natural textures?", ICLR 2017; first as arXiv:1606.00021) found one layer of *random*
multi-scale filters nearly as good. Here: seeded random 5 x 5 filters on a 3-level undecimated pyramid,
ReLU, Gram matrices. Not a perceptual loss (Johnson, Alahi and Fei-Fei 2016, arXiv:1603.08155):
that compares feature maps of VGG trained on ImageNet (weights downloaded), position by position, whose
deep features stand for object parts (an eye, fur, a letter). Random filters learned nothing: edges and
blobs at three scales and how they co-occur, i.e. texture, never objects.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from sr_teach.metrics import check_same_shape

NUM_FILTERS = 16  # features per level, 16 x 16 Gram entries: more filters, slower steps (each costs convolutions)
KERNEL_SIZE = 5  # spread 1, 2 and 4 pixels apart on 3 levels: structures of 5, 9 and 17 pixels
NUM_SCALES = 3  # levels of the pyramid: the image, then averaged over 2 x 2 and 4 x 4 boxes
SEED = 0  # the random filters' seed: one fixed network, so runs and screens agree
MIN_SIZE = (KERNEL_SIZE - 1) * 2 ** (NUM_SCALES - 1) + 1  # the span of the coarsest filters: 17 pixels


@functools.lru_cache(maxsize=8)
def random_filters(num_channels: int, num_filters: int = NUM_FILTERS, kernel_size: int = KERNEL_SIZE,
                   seed: int = SEED) -> torch.Tensor:
    """Random filters from a seeded generator, each with zero mean (blind to brightness) and unit norm.

    Shape: (num_filters, num_channels, kernel_size, kernel_size). Drawn once per set of arguments and
    cached (do not modify the result): the "network" is free to build and the same on every call.
    """
    generator = torch.Generator().manual_seed(seed)  # leaves torch's global generator alone
    filters = torch.randn(num_filters, num_channels, kernel_size, kernel_size, generator=generator)
    filters = filters - filters.mean(dim=(1, 2, 3), keepdim=True)
    return filters / filters.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()


def random_features(image: torch.Tensor, num_scales: int = NUM_SCALES) -> list[torch.Tensor]:
    """ReLU(random filters * image) at each level of an undecimated pyramid: level s is the image
    averaged over 2^s x 2^s boxes, seen by the filters spread 2^s pixels apart (dilation). Nothing is
    subsampled and the image wraps around at its edges (circular padding), so shifting the image
    (circularly) shifts every feature map and changes no statistic.

    Shape: (B, C, H, W) -> [(B, NUM_FILTERS, H, W)] * num_scales.
    """
    channels = image.shape[1]
    filters = random_filters(channels).to(image)  # (F, C, k, k), no gradient: the network is frozen
    box = torch.full((channels, 1, 2, 2), 0.25).to(image)  # 2 x 2 average, one per channel
    features = []
    for level in range(num_scales):
        spread = 2**level
        if level > 0:  # averaging 2 x 2 samples spread by 2^(s-1) turns a 2^(s-1) box into a 2^s box
            half = spread // 2
            image = F.conv2d(F.pad(image, (0, half, 0, half), mode="circular"), box, dilation=half, groups=channels)
        reach = KERNEL_SIZE // 2 * spread
        padded = F.pad(image, (reach,) * 4, mode="circular")  # (B, C, H + 2 reach, W + 2 reach)
        features.append(F.relu(F.conv2d(padded, filters, dilation=spread)))  # (B, F, H, W)
    return features


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G_ij = (1 / N) sum over the N positions p of f_i(p) f_j(p): which features fire together.

    Shape: (B, F, H, W) -> (B, F, F).

    >>> gram_matrix(torch.ones(1, 2, 3, 3))
    tensor([[[1., 1.],
             [1., 1.]]])
    """
    flat = features.flatten(start_dim=2)  # (B, F, N)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def texture_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the Gram matrices of `random_features`, averaged over the pyramid:

        L = (1/S) sum over levels s of mean_ij |G_s(prediction)_ij - G_s(target)_ij|

    Zero for an image and any circular shift of it: the statistics match although no pixel does. So
    alone it cannot place anything; it is used beside a pixel loss (`sr_teach.losses.l1_texture_loss`),
    as EnhanceNet (Sajjadi et al. 2017, arXiv:1612.07919) adds its VGG texture loss to other terms.

    Shape: (B, C, H, W) and (B, C, H, W) -> () scalar; at least MIN_SIZE x MIN_SIZE = 17 x 17 pixels.
    """
    check_same_shape(prediction, target, dims=(4,))
    if min(prediction.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"the texture loss needs at least {MIN_SIZE} x {MIN_SIZE} pixels (the span of its "
                         f"coarsest filters), got {tuple(prediction.shape[-2:])}")
    differences = [(gram_matrix(ours) - gram_matrix(theirs)).abs().mean()
                   for ours, theirs in zip(random_features(prediction), random_features(target))]
    return torch.stack(differences).mean()


# How strongly l1_texture_loss weighs the texture term: set so that the two terms start equal, i.e.
# mean L1 / mean texture loss of bicubic x4 outputs against the originals on T91 training patches
# (68.4 over 50 batches of 16, seed 0; benchmarks/loss_comparison.py prints it). Chosen on training data, not on a
# test set, and not tuned: lesson 13 asks what larger and smaller weights do.
TEXTURE_WEIGHT = 70.0
