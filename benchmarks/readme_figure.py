"""Make the README's picture: nearest, bicubic and a CNN enlarging the same detail by 4.

The CNN is an ESPCN x4 (with the bicubic skip, `global_residual=True`) trained from scratch for
`--seconds` on the bundled photos *other than* the astronaut, which is then the test image: its
LR is made by MATLAB-bicubic downscaling, and every panel's PSNR (Y channel, border 4) is measured
against the original.

    python benchmarks/readme_figure.py [--seconds 120] [--output docs/comparison.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from sr_teach.degradations import downscale, mod_crop  # noqa: E402
from sr_teach.experiment import Experiment, ExperimentConfig  # noqa: E402
from sr_teach.images import data_folder, load_sample, sample_path  # noqa: E402
from sr_teach.inference import upscale  # noqa: E402
from sr_teach.interpolation import resize  # noqa: E402
from sr_teach.metrics import psnr  # noqa: E402
from sr_teach.training import TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--output", default="docs/comparison.png")
    arguments = parser.parse_args()
    scale, test_name = 4, "astronaut"

    training_folder = Path(arguments.output).parent / ".readme_training"
    training_folder.mkdir(parents=True, exist_ok=True)
    for path in data_folder().iterdir():
        if path.suffix.lower() in (".png", ".jpg") and path.stem != test_name:
            target = training_folder / path.name
            if not target.exists():
                target.symlink_to(path.resolve())
    experiment = Experiment(ExperimentConfig(
        model="espcn", scale=scale, model_options={"global_residual": True}, data=(str(training_folder),),
        validation_fraction=0.0, train=TrainConfig(learning_rate=1e-3, loss="mse", validation_every=None),
    ))
    experiment.train(seconds=arguments.seconds)
    print(f"trained {experiment.trainer.step} steps in {arguments.seconds:.0f} s; test image {sample_path(test_name).name}")

    hr_image = mod_crop(load_sample(test_name, mode="rgb"), scale)
    lr_image = downscale(hr_image, scale)
    panels = {
        "nearest": resize(lr_image, scale=scale, method="nearest"),
        "bicubic": resize(lr_image, scale=scale, method="bicubic"),
        f"ESPCN ({arguments.seconds:.0f} s of CPU training)": upscale(experiment.model, lr_image, scale=scale),
    }
    top, left, size = 60, 170, 160  # the astronaut's face and the flag on her suit
    figure, axes = plt.subplots(1, 4, figsize=(12, 3.4), dpi=80)
    axes[0].imshow(hr_image[:, top:top + size, left:left + size].permute(1, 2, 0).numpy())
    axes[0].set_title("original")
    for axis, (name, image) in zip(axes[1:], panels.items()):
        score = float(psnr(image, hr_image, crop_border=scale, y_channel=True, round_to_8bit=True))
        axis.imshow(image[:, top:top + size, left:left + size].clamp(0, 1).permute(1, 2, 0).numpy())
        axis.set_title(f"{name}\n{score:.2f} dB")
        print(f"{name}: {score:.2f} dB")
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(arguments.output, bbox_inches="tight")
    for link in training_folder.iterdir():
        link.unlink()
    training_folder.rmdir()
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
