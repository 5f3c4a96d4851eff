"""One training experiment wired together: a model, its data, a validation split and the trainer.

The trainer knows nothing about SR and the data pipeline nothing about models; here they meet,
the way a paper describes a run: "ESPCN at x3 on 91 images, 17-pixel LR patches, batch 16, MSE".

    experiment = Experiment(ExperimentConfig(model="espcn", scale=3))
    history = experiment.train(seconds=60)
    experiment.save("espcn_x3.pt")

The command line's `sr-teach train`, the lessons and the model zoo all use it. Started by torchrun,
each process makes its share of every batch and rank 0 writes the checkpoint (`sr_teach.distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sr_teach import distributed
from sr_teach.adversarial import AdversarialConfig, AdversarialLoss
from sr_teach.augmentation import AugmentConfig
from sr_teach.checkpoints import load_checkpoint, save_checkpoint
from sr_teach.data import DataConfig, PatchSampler, load_validation_pairs, split_train_validation
from sr_teach.degradations import DegradationConfig, check_scale
from sr_teach.datasets import find_images
from sr_teach.images import data_folder
from sr_teach.interpolation import resize
from sr_teach.losses import LOSSES, get_loss
from sr_teach.models import RestorationModel, SRModel, build_model
from sr_teach.pretrained import load_model
from sr_teach.training import History, TrainConfig, Trainer

# Named augmentation settings for the command line and the lessons' dropdowns.
AUGMENTATIONS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    # the 8 symmetries of the square: exact, no resampling, 8 times the data for free
    "flips": AugmentConfig(hflip=True, vflip=True, rot90=True),
    # plus arbitrary rotations and photometric jitter: more variety, some resampling
    "full": AugmentConfig(
        hflip=True, vflip=True, rot90=True, rotate_degrees=30.0,
        brightness=0.2, contrast=0.2, hue=10.0, gamma=0.2,
    ),
}


@dataclass
class ExperimentConfig:
    """Everything a training run needs, in the words of an SR paper's "implementation details"."""

    model: str = "espcn"  # an architecture of sr_teach.models.MODELS
    scale: int = 3  # the upscaling factor (post models learn exactly this one)
    # Pre-upsampling models can learn several scales at once (VDSR: one model for x2, x3, x4).
    extra_scales: tuple[int, ...] = ()
    num_channels: int = 1  # 1 = Y channel as in the papers (Cb/Cr by bicubic); 3 = RGB
    luma: bool = True  # one channel is Y (the SR papers); False: full-range gray (the denoising papers)
    # Model keyword arguments beyond scale and channels (e.g. {"depth": 10} for a small VDSR).
    model_options: dict[str, Any] = field(default_factory=dict)
    # Folders of HR training images; empty means the photos bundled with sr_teach.
    data: tuple[str, ...] = ()
    # Fraction of training images held out to choose the best checkpoint: never the test sets.
    validation_fraction: float = 0.1
    validation_max_size: int | None = 256  # crop validation images so validation stays quick
    patch_size: int = 17  # LR patch side (ESPCN's 17 at x3); HR patches are scale times larger
    hr_patch_size: int | None = None  # or one HR patch side for every scale (multi-scale models)
    batch_size: int = 16
    augment: str = "flips"  # a key of AUGMENTATIONS
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(loss="mse"))
    # A shipped model's name ("fsrcnn_x4") or a checkpoint file to start from instead of random weights.
    initial_weights: str | None = None
    # Train against a discriminator too (ESRGAN): train.loss becomes the pixel part of the generator's loss.
    adversarial: AdversarialConfig | None = None
    seed: int = 0  # seeds the initial weights, the patches and the validation split

    def __post_init__(self) -> None:
        for scale in (self.scale, *self.extra_scales):
            check_scale(scale)  # x2, x3, ... enlarge; x1 restores at the same size (denoising, JPEG)

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((self.scale, *self.extra_scales)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExperimentConfig:
        """The inverse of to_dict (for checkpoints)."""
        loss = values["train"]["loss"]
        if loss not in LOSSES:
            raise ValueError(
                f"this run was trained with a custom loss function ({loss!r}), which a checkpoint cannot hold; "
                "rebuild the Experiment with that function and load the trainer state yourself"
            )
        try:
            return cls(**{
                **values,
                "degradation": DegradationConfig(**values["degradation"]),
                "adversarial": AdversarialConfig(**values["adversarial"]) if values.get("adversarial") else None,
                "train": TrainConfig.from_dict(values["train"]),
                "extra_scales": tuple(values["extra_scales"]),
                "data": tuple(values["data"]),
            })
        except (KeyError, TypeError) as error:  # a missing or unknown setting: another version, or edited
            raise ValueError(f"the saved experiment settings do not fit this sr_teach ({type(error).__name__}: "
                             f"{error}); start a new run instead of resuming") from error


class Experiment:
    """A model, a sampler of training patches, validation pairs and a Trainer, built from a config.

    The config is read, never changed; the same config builds the same initial weights, patches
    and split, without touching torch's global random generator.
    """

    def __init__(self, config: ExperimentConfig, callbacks: Iterable[Any] = ()) -> None:
        if config.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {config.augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
        self.config = config
        distributed.start(config.train.device)  # under torchrun: join the other processes (else nothing)
        with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's random state stays as it was
            torch.manual_seed(config.seed)
            # the inputs that differ from the output: gray in for colour out, a mask beside the image
            channels = {"input_channels": 1} if config.degradation.grayscale and config.num_channels == 3 else {}
            channels |= {"mask_input": True} if config.degradation.mask_input else {}
            self.model: SRModel = build_model(
                config.model, scale=config.scale, num_channels=config.num_channels, **channels, **config.model_options
            )
        if config.initial_weights is not None:
            start = load_model(config.initial_weights, config.scale)
            try:
                self.model.load_state_dict(start.state_dict())
            except RuntimeError as error:  # other layers or sizes: the message lists every mismatch
                raise ValueError(f"initial_weights {config.initial_weights!r} do not fit a {config.model} with "
                                 f"{config.model_options or 'the default options'}: build the model it was trained as "
                                 f"({type(start).__name__}, {start.config})") from error
        if self.model.upsampling == "post" and len(config.scales) > 1:
            raise ValueError(f"{config.model} upsamples after its convolutions, so it learns one scale; "
                             f"train one model per scale instead of {config.scales}")
        pre_upsample = self.model.upsampling == "pre"
        self.train_paths, self.validation_paths = split_train_validation(
            find_images(list(config.data) or [data_folder()]), config.validation_fraction, seed=config.seed
        )
        self.sampler = PatchSampler(self.train_paths, DataConfig(
            scales=config.scales, patch_size=config.patch_size, hr_patch_size=config.hr_patch_size,
            batch_size=config.batch_size, num_channels=config.num_channels, luma=config.luma, pre_upsample=pre_upsample,
            degradation=config.degradation, augment=AUGMENTATIONS[config.augment], seed=config.seed,
        ), shard=(distributed.rank(), distributed.world_size()))
        # A damage drawn on a whole held-out photo would be as large as a fraction of the photo:
        # draw it per training-patch-sized tile instead, as training saw it.
        degradation = config.degradation
        if degradation.damage is not None and degradation.damage_tile is None:
            degradation = replace(degradation, damage_tile=config.hr_patch_size or config.patch_size * config.scale)
        # A multi-scale model is validated at every scale it learns (the mean PSNR over all of them
        # picks its checkpoint), with the largest scale's border for all.
        validation_pairs = [
            pair
            for scale in config.scales
            for pair in load_validation_pairs(
                self.validation_paths, scale, config.num_channels, pre_upsample,
                max_size=config.validation_max_size, degradation=degradation, seed=config.seed,
                luma=config.luma,
            )
        ]
        train, adversarial = replace(config.train), None
        if config.adversarial is not None:  # the discriminator's loss object; train.loss is its pixel part
            adversarial = AdversarialLoss(config.adversarial, config.num_channels, pixel_loss=get_loss(config.train.loss))
            # The generator's loss rises and falls as the discriminator learns: only NaN/inf is divergence.
            train = replace(train, divergence_factor=None)
        self.trainer = Trainer(
            self.model, self.sampler, train, validation_pairs=validation_pairs,
            validation_border=max(config.scales), callbacks=callbacks, loss_function=adversarial,
        )

    def train(self, steps: int | None = None, seconds: float | None = None, progress: bool = False) -> History:
        """Train on; call again to continue where the last call stopped."""
        return self.trainer.train(steps=steps, seconds=seconds, progress=progress)

    @property
    def history(self) -> History:
        return self.trainer.history

    def bicubic_psnr(self) -> float:
        """The validation PSNR of plain bicubic enlargement, measured like the network's: the line to beat.
        At x1 (restoration) the line is the damaged input itself (a gray input copied to R, G and B)."""
        if isinstance(self.model, RestorationModel):
            return self.trainer.evaluate(model=self.model.input_image)
        if self.model.upsampling == "pre":
            return self.trainer.evaluate(model=lambda interpolated: interpolated)  # the input is bicubic already
        return self.trainer.evaluate(model=lambda lr_image: resize(lr_image, scale=self.config.scale))

    def save(self, path: str | os.PathLike, overwrite: bool = False, use_best: bool = True) -> Path:
        """Write a checkpoint: the best-on-validation weights (or the latest), the recipe, and the
        full trainer state so `resume` can continue the run exactly."""
        trainer = self.trainer
        if distributed.is_main():  # of several processes, rank 0 writes; the others wait until the file is there
            extra = {
                "experiment": {**self.config.to_dict(), "train": trainer.config.to_dict()},
                "scales": list(self.config.scales),
                "training_images": [path.name for path in self.train_paths],
                "validation_images": [path.name for path in self.validation_paths],
                "best_validation_psnr": trainer.best_validation_psnr if trainer.best_state else None,
                "best_validation_step": trainer.best_validation_step,
            }
            weights = trainer.best_state if (use_best and trainer.best_state) else None
            path = save_checkpoint(
                path, self.model, trainer.history, trainer.config, extra,
                scale=self.config.scale, model_name=self.config.model, state_dict=weights,
                trainer_state=trainer.state_dict(), overwrite=overwrite,
            )
        distributed.barrier()
        return Path(path)

    @classmethod
    def resume(cls, path: str | os.PathLike, callbacks: Iterable[Any] = (), **train_changes: Any) -> Experiment:
        """Rebuild the experiment of a checkpoint written by `save` and continue its run.

        train_changes replace TrainConfig fields for the rest of the run, e.g. learning_rate=1e-4
        after a divergence, or a longer total_steps; the model, data and scale stay as saved.
        """
        checkpoint = load_checkpoint(path)
        saved, trainer_state = checkpoint["extra"].get("experiment"), checkpoint.get("trainer_state")
        if saved is None or trainer_state is None:
            raise ValueError(f"{path} does not hold a resumable sr_teach experiment (was it saved by Experiment.save?)")
        config = ExperimentConfig.from_dict(saved)
        config = replace(config, train=replace(config.train, **train_changes))
        experiment = cls(config, callbacks=callbacks)
        experiment.trainer.load_state_dict(trainer_state)
        return experiment
