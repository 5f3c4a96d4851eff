"""Adversarial training, ESRGAN's way: a second network learns to tell photos from the model's
outputs, and the model learns to fool it.

MSE or L1 training predicts the blurred average of every sharp image that shrinks to the input
(lesson 14); a discriminator sees that the average lacks texture, so a generator that must fool it
draws plausible detail, not the true one, at a cost in PSNR (Blau & Michaeli 2018). ESRGAN (Wang et
al., ECCVW 2018, arXiv:1809.00219) fine-tunes a PSNR network with L_G = L_feature + lambda L_adv +
eta L1 (lambda = 5e-3, eta = 1e-2), a relativistic average discriminator, then blends the two
networks' weights. Its feature loss compares VGG-19 features (ImageNet weights from the internet);
here it compares the discriminator's own (feature matching, Salimans et al. 2016), which learn what
tells real from generated, not what objects are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from sr_teach import distributed
from sr_teach.losses import LossFunction, l1_loss


@dataclass
class AdversarialConfig:
    """The generator's loss weights and the discriminator's settings."""

    pixel_weight: float = 1e-2  # ESRGAN's eta on L1: keeps shapes and colours where they belong
    adversarial_weight: float = 5e-3  # ESRGAN's lambda: how hard to push towards "looks real"
    # In place of ESRGAN's VGG loss (weight 1): L1 between the discriminator's features of output and photo.
    feature_weight: float = 1.0
    discriminator_learning_rate: float = 1e-4  # ESRGAN: 1e-4, Adam with betas (0.9, 0.99), as the generator
    discriminator_features: int = 16  # width of its first stage, doubled at each of the next two (small: CPU)
    seed: int = 0  # the discriminator's initial weights

    def __post_init__(self) -> None:
        weights = (self.pixel_weight, self.adversarial_weight, self.feature_weight)
        if min(weights) < 0 or not any(weights):
            raise ValueError(f"the loss weights must be 0 or more and not all 0, got {weights}")
        if not self.discriminator_learning_rate > 0 or self.discriminator_features < 1:
            raise ValueError("the discriminator needs a positive learning rate and at least 1 feature, got "
                             f"{self.discriminator_learning_rate} and {self.discriminator_features}")


class PatchDiscriminator(nn.Module):
    """Three stages of conv + LeakyReLU, each halving the size, then one logit per patch.

    Each output logit judges a patch of about 46 x 46 pixels (its receptive field), so a 96-pixel
    crop gets a 12 x 12 map of verdicts (as PatchGAN, Isola et al. 2017), not one. Spectral
    normalisation (Miyato et al. 2018) keeps each layer's gain at most 1, so the discriminator
    cannot win by growing its weights and its gradients stay useful to the generator.
    """

    def __init__(self, num_channels: int = 1, num_features: int = 32) -> None:
        super().__init__()
        widths = (num_channels, num_features, 2 * num_features, 4 * num_features)
        self.stages = nn.ModuleList(
            nn.Sequential(
                spectral_norm(nn.Conv2d(widths[index], widths[index + 1], kernel_size=3, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
                spectral_norm(nn.Conv2d(widths[index + 1], widths[index + 1], kernel_size=4, stride=2, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
            )
            for index in range(3)
        )
        self.verdict = spectral_norm(nn.Conv2d(widths[-1], 1, kernel_size=3, padding=1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for stage in self.stages:  # (B, f, H/2, W/2), (B, 2f, H/4, W/4), (B, 4f, H/8, W/8)
            image = stage(image)
            features.append(image)
        return self.verdict(image), features  # logits (B, 1, H/8, W/8): > 0 says "a real photo"


def relativistic_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(discriminator loss, generator loss) of the relativistic average GAN (Jolicoeur-Martineau 2018).

    D_Ra(x_r, x_f) = sigmoid(C(x_r) - mean C(x_f)): how much more real a photo looks than the average
    output, not whether it is real. L_D = -mean log D_Ra(x_r, x_f) - mean log(1 - D_Ra(x_f, x_r));
    L_G swaps the roles, so the generator also learns from the photos' logits. Means over every
    patch; each term is halved, so a discriminator that cannot tell them apart gives log 2 to each.
    """
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    ones, zeros = torch.ones_like(real_vs_fake), torch.zeros_like(fake_vs_real)
    bce = F.binary_cross_entropy_with_logits
    discriminator = (bce(real_vs_fake, ones) + bce(fake_vs_real, zeros)) / 2
    generator = (bce(real_vs_fake, torch.zeros_like(ones)) + bce(fake_vs_real, torch.ones_like(zeros))) / 2
    return discriminator, generator


class AdversarialLoss:
    """A loss with a network of its own: each call first trains the discriminator one step on this
    batch (the outputs detached), then returns the generator's loss

        pixel_weight L_pixel + adversarial_weight L_G + feature_weight mean_k |D_k(output) - D_k(photo)|_1.

    L_pixel is L1 unless told (ESRGAN's). Give it to the Trainer as `loss_function`: the generator's
    step is the Trainer's, unchanged. The parts of the last call are in `last_parts`, every call's in
    `history` (for plots; read back from the device only when asked, as the Trainer reads its loss).
    """

    PARTS = ("discriminator", "adversarial", "feature", "pixel")

    def __init__(self, config: AdversarialConfig | None = None, num_channels: int = 1,
                 pixel_loss: LossFunction = l1_loss) -> None:
        self.config, self.pixel_loss = config or AdversarialConfig(), pixel_loss
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.discriminator = PatchDiscriminator(num_channels, self.config.discriminator_features)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.config.discriminator_learning_rate,
                                          betas=(0.9, 0.99))
        self._history: dict[str, list[float]] = {name: [] for name in self.PARTS}
        self._unread: list[torch.Tensor] = []  # (4,) parts of each call since `history` was last read
        self.last_parts: dict[str, torch.Tensor] = {}

    @property
    def history(self) -> dict[str, list[float]]:
        """part name -> its value at every call so far."""
        if self._unread:
            columns = torch.stack(self._unread).T.tolist()  # one wait for the device, not one per step
            for name, values in zip(self.PARTS, columns):
                self._history[name].extend(values)
            self._unread = []
        return self._history

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"prediction and target must have the same shape, got {tuple(prediction.shape)} "
                             f"and {tuple(target.shape)}")
        if self.optimizer.param_groups[0]["params"][0].device != prediction.device:  # once, on the first call
            self.discriminator.to(prediction.device)
        self.discriminator.train()  # spectral norm refines its estimate only in training mode
        # 1. The discriminator's step: photos against the outputs as they are now (no gradient to the generator).
        real_logits, _ = self.discriminator(target)
        fake_logits, _ = self.discriminator(prediction.detach())
        discriminator_loss, _ = relativistic_losses(real_logits, fake_logits)
        self.optimizer.zero_grad(set_to_none=True)
        discriminator_loss.backward()
        distributed.average_gradients(self.discriminator.parameters())  # under torchrun: one step for all ranks
        self.optimizer.step()
        # 2. The generator's loss, judged by the updated discriminator (its gradients reach the generator only).
        with torch.no_grad():  # the photos' side is a fixed reference now: no graph
            real_logits, real_features = self.discriminator(target)
        fake_logits, fake_features = self.discriminator(prediction)
        _, adversarial = relativistic_losses(real_logits, fake_logits)
        feature = torch.stack([F.l1_loss(fake, real) for fake, real in zip(fake_features, real_features)]).mean()
        pixel = self.pixel_loss(prediction, target)
        config = self.config
        self.last_parts = {"discriminator": discriminator_loss.detach(), "adversarial": adversarial.detach(),
                           "feature": feature.detach(), "pixel": pixel.detach()}
        self._unread.append(torch.stack(list(self.last_parts.values())))
        return config.pixel_weight * pixel + config.adversarial_weight * adversarial + config.feature_weight * feature

    def state_dict(self) -> dict[str, object]:
        """The discriminator, its optimizer and the history: what a resumed run needs."""
        return copy.deepcopy({"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict(),
                              "history": self.history})

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._history = {name: list(values) for name, values in state["history"].items()}
        self._unread = []


def interpolate_weights(
    psnr_weights: Mapping[str, torch.Tensor], gan_weights: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """ESRGAN's network interpolation: theta = (1 - alpha) theta_PSNR + alpha theta_GAN, tensor by tensor.

    alpha = 0 is the PSNR network, 1 the GAN one; in between trades distortion for perceived quality
    smoothly, without training again (the two share one architecture and one starting point).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 (the PSNR network) and 1 (the GAN network), got {alpha}")
    if psnr_weights.keys() != gan_weights.keys():
        raise ValueError("the two networks have different layers: interpolate two trainings of one architecture")
    blended = {}
    for name, psnr_tensor in psnr_weights.items():
        gan_tensor = gan_weights[name]
        if psnr_tensor.shape != gan_tensor.shape:
            raise ValueError(f"{name} is {tuple(psnr_tensor.shape)} in one network and {tuple(gan_tensor.shape)} in the other")
        blended[name] = torch.lerp(psnr_tensor, gan_tensor, alpha) if psnr_tensor.is_floating_point() else psnr_tensor
    return blended


def interpolated_model(psnr_model: nn.Module, gan_model: nn.Module, alpha: float,
                       into: nn.Module | None = None) -> nn.Module:
    """A network with the blended weights (written into `into`, default a copy of `psnr_model`)."""
    model = into if into is not None else copy.deepcopy(psnr_model)
    model.load_state_dict(interpolate_weights(psnr_model.state_dict(), gan_model.state_dict(), alpha))
    return model.eval()

