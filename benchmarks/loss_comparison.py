"""One network, one budget, one loss at a time: what each training loss buys on Set5 x4.

ESPCN x4 with the bicubic skip (`global_residual=True`, so every run starts as bicubic) is trained on
T91 once per loss of `sr_teach.losses.LOSSES`, from the same seed: the same initial weights, the same
batches, the same number of steps. "texture" is L1 + TEXTURE_WEIGHT (70) x the random-feature texture
loss: 70 is, rounded, the weight at which the two terms are equal on bicubic outputs of T91 training
patches (measured and printed below), so it is chosen on training data, never on Set5. Each run is then scored on Set5 x4 under the SR protocol
(8-bit output, luma Y, border 4): PSNR, SSIM, MS-SSIM, GMSD (lower is better) and the no-reference NIQE
(lower is better; the HR row gives the originals' own score). A figure of crops is saved for a look.
"adversarial" trains against a patch discriminator from the start (sr_teach.adversarial), not as a
fine-tune: L1 + 1e-3 x relativistic GAN + 0.1 x the discriminator's features (fsrcnn_gan_x4's weights).

    SR_TEACH_DATA=/work/shared/datasets python benchmarks/loss_comparison.py [--steps 2000]
        [--losses mse l1 ssim gradient fft texture adversarial] [--crops loss_comparison.png]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from sr_teach.datasets import benchmark_images, dataset_folder  # noqa: E402
from sr_teach.experiment import Experiment, ExperimentConfig  # noqa: E402
from sr_teach.images import rgb_to_luma  # noqa: E402
from sr_teach.inference import upscale  # noqa: E402
from sr_teach.interpolation import resize  # noqa: E402
from sr_teach.losses import LOSSES, l1_loss  # noqa: E402
from sr_teach.metrics import quality_scores  # noqa: E402
from sr_teach.texture_loss import TEXTURE_WEIGHT, texture_loss  # noqa: E402
from sr_teach.tools.zoo import GAN_WEIGHTS  # noqa: E402
from sr_teach.training import TrainConfig  # noqa: E402

SCALE = 4
METRICS = ("PSNR", "SSIM", "MS-SSIM", "GMSD", "NIQE")
CROPS = {"butterfly": (90, 90, 72), "baby": (200, 240, 96)}  # name: (top, left, size) of the HR image


def make_experiment(loss: str, data_dir: str | None) -> Experiment:
    """"adversarial" is L1 + relativistic GAN + discriminator-feature loss with fsrcnn_gan_x4's weights."""
    adversarial = loss == "adversarial"
    return Experiment(ExperimentConfig(
        model="espcn", scale=SCALE, model_options={"global_residual": True},
        data=(str(dataset_folder("T91", data_dir)),), validation_fraction=0.0, patch_size=17, batch_size=16,
        seed=0, adversarial=GAN_WEIGHTS if adversarial else None,
        train=TrainConfig(loss="l1" if adversarial else loss, learning_rate=1e-3, validation_every=None,
                          total_steps=10**7),
    ))


def balancing_weight(experiment: Experiment, batches: int = 50) -> float:
    """mean L1 / mean texture loss of bicubic against the original on training patches: the weight at
    which the two terms of the texture loss start equal."""
    l1_total = texture_total = 0.0
    for _, (lr_batch, hr_batch) in zip(range(batches), experiment.sampler):
        bicubic = resize(lr_batch, scale=SCALE)  # (16, 1, 68, 68), what the network starts from
        l1_total += float(l1_loss(bicubic, hr_batch))
        texture_total += float(texture_loss(bicubic, hr_batch))
    return l1_total / texture_total


def scores(sr_image: torch.Tensor, hr_image: torch.Tensor) -> dict[str, float]:
    """The five metrics of one (C, H, W) image under the SR protocol (Y, 8-bit, border = scale)."""
    return quality_scores(sr_image, hr_image, crop_border=SCALE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="training steps per loss")
    parser.add_argument("--losses", nargs="+", default=["mse", "l1", "ssim", "gradient", "fft", "texture", "adversarial"],
                        choices=[*LOSSES, "adversarial"])
    parser.add_argument("--crops", default="loss_comparison.png", help="where to save the figure of crops")
    parser.add_argument("--data-dir", default=None)
    arguments = parser.parse_args()

    images = benchmark_images("Set5", SCALE, arguments.data_dir)
    weight = balancing_weight(make_experiment("l1", arguments.data_dir))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ESPCN x{SCALE} + bicubic skip on T91, "
          f"{arguments.steps} steps per loss, batch 16 of 17 x 17 LR patches, Adam 1e-3, seed 0")
    print(f"texture weight: L1 / texture on bicubic T91 training patches = {weight:.1f}; "
          f"the library's TEXTURE_WEIGHT = {TEXTURE_WEIGHT:g}")

    outputs = {"bicubic": [resize(image.lr_image, scale=SCALE) for image in images]}
    seconds = {}
    for loss in arguments.losses:
        experiment = make_experiment(loss, arguments.data_dir)
        experiment.train(steps=arguments.steps)
        seconds[loss] = experiment.trainer.training_seconds
        outputs[loss] = [upscale(experiment.model, image.lr_image, scale=SCALE) for image in images]
        print(f"  {loss}: {arguments.steps} steps in {seconds[loss]:.0f} s", flush=True)
    outputs["HR"] = [image.hr_image for image in images]

    print(f"\nSet5 x{SCALE}, mean of {len(images)} images (Y channel, 8-bit, border {SCALE}); "
          "GMSD and NIQE: lower is better")
    print(f"{'method':<10}" + "".join(f"{name:>9}" for name in METRICS) + f"{'s/step':>9}")
    for method, sr_images in outputs.items():
        per_image = [scores(sr_image, image.hr_image) for sr_image, image in zip(sr_images, images)]
        means = {name: sum(score[name] for score in per_image) / len(per_image) for name in METRICS}
        if method == "HR":
            means.update({name: float("nan") for name in METRICS[:-1]})  # against itself: only NIQE says anything
        per_step = f"{seconds[method] / arguments.steps:9.3f}" if method in seconds else f"{'':>9}"
        print(f"{method:<10}" + "".join(f"{means[name]:>9.4f}" if name != "PSNR" else f"{means[name]:>9.2f}"
                                        for name in METRICS) + per_step)

    save_crops(outputs, [image.name for image in images], arguments.crops)
    print(f"\ncrops saved to {arguments.crops}")


def save_crops(outputs: dict[str, list[torch.Tensor]], names: list[str], path: str) -> None:
    """One row per crop of CROPS, one column per method, in gray (the luma Y, as measured)."""
    figure, axes = plt.subplots(len(CROPS), len(outputs), figsize=(1.9 * len(outputs), 2.1 * len(CROPS)), dpi=100,
                                squeeze=False, layout="constrained")
    for row, (name, (top, left, size)) in enumerate(CROPS.items()):
        index = names.index(name)
        for column, (method, sr_images) in enumerate(outputs.items()):
            luma = rgb_to_luma(sr_images[index])[0, top : top + size, left : left + size]
            axes[row, column].imshow(luma, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[row, column].set_title(method if row == 0 else "", fontsize=9)
            axes[row, column].axis("off")
    figure.savefig(path)


if __name__ == "__main__":
    main()
