"""The pretrained model zoo: how each shipped weights file was trained, and the code that trains it.

    sr-teach zoo train espcn_x3          # or: python -m sr_teach.tools.zoo train espcn_x3

A recipe is an `ExperimentConfig` (the paper's "implementation details") plus a number of steps.
All train on VDSR's "291" images (T91 + BSD200, from the data directory) and keep 10% aside to
choose the checkpoint: Set5 and Set14 are measured once training is over, never to pick weights.
The whole run state goes to `zoo_runs/<name>.pt` every `save_every` steps and on Ctrl-C, so a run
continues across sessions exactly; at the end the best weights, the recipe, the data and the
measured results go to `sr_teach/weights/<name>.pt`. A recipe may start from another model's
weights (`finetune_from`), as FSRCNN's paper makes x2 and x4 from x3. Under torchrun the run is
shared by the processes (`torchrun --nproc-per-node 4 -m sr_teach.tools.zoo train vdsr`). See docs/zoo.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_teach import distributed
from sr_teach.adversarial import AdversarialConfig
from sr_teach.datasets import resolve_data_dir
from sr_teach.degradations import DegradationConfig
from sr_teach.evaluation import evaluate, model_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.models import model_name
from sr_teach.pretrained import WEIGHTS_FOLDER
from sr_teach.restoration import PUBLISHED_RESTORATION, RestorationTask, evaluate_restoration, model_restorer
from sr_teach.checkpoints import load_checkpoint, save_checkpoint
from sr_teach.training import TrainConfig

TRAINING_SETS = ("T91", "BSD200")  # the "291" images of VDSR, folders in the data directory
BENCHMARK_SETS = ("Set5", "Set14")
DEFAULT_RUNS_FOLDER = Path("zoo_runs")

# Published Y-PSNR (dB) of each architecture, {(set, scale): psnr}, for the tables beside ours.
PUBLISHED = {
    # SRCNN 9-5-5 trained on ImageNet (Dong et al., TPAMI 2016, table 5 and VDSR's table 2)
    "srcnn": {("Set5", 2): 36.66, ("Set5", 3): 32.75, ("Set5", 4): 30.48,
              ("Set14", 2): 32.42, ("Set14", 3): 29.28, ("Set14", 4): 27.49},
    # FSRCNN(56, 12, 4) trained on 91 + General-100 (Dong et al., ECCV 2016, table 3)
    "fsrcnn": {("Set5", 2): 36.94, ("Set5", 3): 33.06, ("Set5", 4): 30.55,
               ("Set14", 2): 32.54, ("Set14", 3): 29.37, ("Set14", 4): 27.50},
    # ESPCN trained on 91 images (Shi et al., CVPR 2016, table 1); x2/x4 were not published for it
    "espcn": {("Set5", 3): 32.55, ("Set14", 3): 29.08},
    # the full VDSR, 20 layers x 64 filters, trained on 291 images (Kim et al., CVPR 2016, table 2);
    # ours is far smaller, and its target is SRCNN's row above
    "vdsr": {("Set5", 2): 37.53, ("Set5", 3): 33.66, ("Set5", 4): 31.35,
             ("Set14", 2): 33.03, ("Set14", 3): 29.77, ("Set14", 4): 28.01},
}


@dataclass
class ZooRecipe:
    """One shipped model: what to train, for how long, and where it may start from."""

    name: str  # the weights file's stem, e.g. "espcn_x3"
    experiment: ExperimentConfig  # model, data settings, optimizer; `data` is filled in at run time
    steps: int  # optimizer steps of the whole run (also the schedule's length)
    finetune_from: str | None = None  # a zoo model whose finished weights initialise this one
    save_every: int = 2000  # steps between resumable saves
    threads: int = 1  # CPU threads: 1 lets two runs share a 2-core machine; 2 for a run that has it alone
    notes: str = ""  # why the recipe is what it is
    # Restoration models (scale 1) are measured on these (set, task) pairs instead of Set5/Set14.
    benchmarks: tuple[tuple[str, RestorationTask], ...] = ()
    # Ship the weights with the best validation PSNR; False ships the last (a GAN: the best PSNR would
    # pick the weights that learned the least from the discriminator).
    keep_best: bool = True

    @property
    def scales(self) -> tuple[int, ...]:
        return self.experiment.scales

    @property
    def published(self) -> dict[tuple[str, int], float]:
        """The architecture's published PSNRs; none for a GAN fine-tune, which trades PSNR for texture."""
        return {} if self.experiment.adversarial else PUBLISHED.get(self.experiment.model, {})


def _train(learning_rate: float, steps: int, validation_every: int, loss: str = "mse") -> TrainConfig:
    """Adam with a cosine decay over the whole run, MSE (the papers' loss) unless told, validation as given."""
    return TrainConfig(
        learning_rate=learning_rate, loss=loss, total_steps=steps, lr_schedule="cosine",
        cosine_final_fraction=0.01, validation_every=validation_every, log_every=50,
        device="auto", mixed_precision="off",
    )


def _recipe(
    name: str, model: str, scale: int, steps: int, learning_rate: float, patch_size: int, batch_size: int,
    validation_every: int, model_options: dict[str, Any], extra_scales: tuple[int, ...] = (), loss: str = "mse",
    hr_patch_size: int | None = None, num_channels: int = 1, luma: bool = True,
    degradation: DegradationConfig | None = None, initial_weights: str | None = None,
    adversarial: AdversarialConfig | None = None, **recipe: Any,
) -> ZooRecipe:
    experiment = ExperimentConfig(
        model=model, scale=scale, extra_scales=extra_scales, num_channels=num_channels, luma=luma,
        degradation=degradation or DegradationConfig(), model_options=model_options,
        validation_fraction=0.1, validation_max_size=256, patch_size=patch_size, hr_patch_size=hr_patch_size,
        batch_size=batch_size,
        augment="flips", train=_train(learning_rate, steps, validation_every, loss), seed=0,
        initial_weights=initial_weights, adversarial=adversarial,
    )
    return ZooRecipe(name, experiment, steps, **recipe)


ESPCN_OPTIONS = {"activation": "relu", "global_residual": True}
FSRCNN_OPTIONS = {"num_features": 56, "num_shrunk_features": 12, "num_mapping_layers": 4, "global_residual": True}
SRCNN_OPTIONS = {"kernel_sizes": (9, 5, 5), "num_features": (64, 32), "residual": True}
# Restoration (scale 1): noise as the published tables add it (no clipping), JPEG by Pillow; full-range
# gray, as the denoising papers train; a blind range, so one model serves every level.
BLIND_NOISE = DegradationConfig(noise_sigma=(0.0, 55.0), noise_clip=False)
BLIND_JPEG = DegradationConfig(jpeg_quality=(10, 40))
DNCNN_OPTIONS = {"batch_norm": True}  # the paper's; small batches train faster per minute with it
NOISE_TESTS = tuple(("Set12", RestorationTask("denoise", sigma)) for sigma in (15, 25, 50))
COLOUR_NOISE_TESTS = tuple(("LIVE1", RestorationTask("denoise", sigma)) for sigma in (15, 25, 50))
JPEG_TESTS = tuple((dataset, RestorationTask("jpeg", quality))
                   for dataset in ("Classic5", "LIVE1_gray") for quality in (10, 20, 30, 40))
# ESRGAN's loss weights (L1 at 1e-2 beside a VGG loss of weight 1) let the discriminator win against
# FSRCNN's 12,000 weights; SRGAN's adversarial weight with L1 at full weight kept it in check.
GAN_WEIGHTS = AdversarialConfig(pixel_weight=1.0, adversarial_weight=1e-3, feature_weight=0.1)
ECBSR_OPTIONS = {"num_blocks": 10, "num_features": 32}
VDSR_OPTIONS = {"depth": 10, "num_features": 32, "pixel_unshuffle": 2, "reconstruction_std": 1e-3}

RECIPES: dict[str, ZooRecipe] = {recipe.name: recipe for recipe in (
    _recipe("espcn_x3", "espcn", 3, 75_000, 1e-3, 17, 16, 2500, ESPCN_OPTIONS,
            notes="the paper's 17-pixel LR patches; Adam instead of SGD; ReLU, since tanh stalled at "
                  "+0.6 dB over bicubic on validation within 1,000 steps in our runs"),
    _recipe("espcn_x2", "espcn", 2, 40_000, 5e-4, 24, 16, 2500, ESPCN_OPTIONS, finetune_from="espcn_x3",
            notes="feature layers from espcn_x3; the sub-pixel layer (r^2 channels) starts fresh"),
    _recipe("espcn_x4", "espcn", 4, 40_000, 5e-4, 14, 16, 2500, ESPCN_OPTIONS, finetune_from="espcn_x3",
            notes="feature layers from espcn_x3; the sub-pixel layer (r^2 channels) starts fresh"),
    _recipe("fsrcnn_x3", "fsrcnn", 3, 40_000, 1e-3, 24, 32, 1000, FSRCNN_OPTIONS,
            notes="FSRCNN(56, 12, 4); 24-pixel LR patches; 40,000 steps (first 20,000, whose best validation "
                  "came at step 19,000 of 20,000, 0.38 dB short of the paper on Set5)"),
    _recipe("fsrcnn_x2", "fsrcnn", 2, 25_000, 5e-4, 32, 32, 1000, FSRCNN_OPTIONS, finetune_from="fsrcnn_x3",
            threads=2, notes="every layer from fsrcnn_x3, then all fine-tuned (the paper fine-tunes the "
                  "deconvolution; its 9 x 9 kernels have the same shape at every scale, only the stride differs); "
                  "25,000 steps (first 10,000, whose best validation came at the last step)"),
    _recipe("fsrcnn_x4", "fsrcnn", 4, 45_000, 5e-4, 20, 32, 1000, FSRCNN_OPTIONS, finetune_from="fsrcnn_x3",
            threads=2, notes="every layer from fsrcnn_x3, then all fine-tuned (the paper fine-tunes the "
                  "deconvolution; its 9 x 9 kernels have the same shape at every scale, only the stride differs)"),
    _recipe("fsrcnn_gan_x4", "fsrcnn", 4, 1_500, 1e-4, 24, 8, 250, FSRCNN_OPTIONS, loss="l1", threads=2,
            initial_weights="fsrcnn_x4", adversarial=GAN_WEIGHTS, keep_best=False,
            notes="a GAN fine-tune of fsrcnn_x4, ESRGAN's way (relativistic patch discriminator, network interpolation) "
                  "with the discriminator's features in place of VGG's; 96-pixel crops, batches of 8, Adam at 1e-4; "
                  "the last weights are shipped. Loss weights from two 400-600-step probes scored on the validation "
                  "split (PSNR, NIQE): ESRGAN's (L1 1e-2) let the discriminator win and painted a grid; L1 1, "
                  "adversarial 1e-3 (SRGAN's), feature 0.1 kept PSNR and sharpened edges (docs/zoo.md)"),
    _recipe("srcnn_x3", "srcnn", 3, 7_000, 5e-4, 17, 16, 500, SRCNN_OPTIONS,
            notes="SRCNN 9-5-5 with a residual skip; 51-pixel HR patches"),
    _recipe("srcnn_x2", "srcnn", 2, 4_000, 3e-4, 24, 16, 500, SRCNN_OPTIONS, finetune_from="srcnn_x3",
            notes="fine-tuned from srcnn_x3 (same layers: only the input's blur differs)"),
    _recipe("srcnn_x4", "srcnn", 4, 4_000, 3e-4, 12, 16, 500, SRCNN_OPTIONS, finetune_from="srcnn_x3",
            notes="fine-tuned from srcnn_x3 (same layers: only the input's blur differs)"),
    _recipe("vdsr", "vdsr", 2, 19_000, 5e-4, 36, 16, 1000, VDSR_OPTIONS, extra_scales=(3, 4), loss="l1",
            hr_patch_size=72, threads=2,
            notes="one set of weights for x2, x3 and x4, trained on all three (each batch one scale, 72 x 72 HR "
                  "patches at every scale, as VDSR uses 41 x 41 at every scale) and validated on all three. "
                  "10 layers x 32 filters on the bicubic image folded 2 x 2 into 4 "
                  "channels (pixel_unshuffle=2): 1/4 of the positions, so 35 times cheaper per pixel than "
                  "the paper's 20 x 64 at full size and 3 times cheaper than SRCNN 9-5-5. "
                  "L1 loss, whose gradient does not shrink with the error, "
                  "so the small x2 residuals count as much as the x4 ones; the last layer starts near zero, "
                  "so training starts at bicubic. Runs alone on both cores"),
    _recipe("dncnn_gray", "dncnn", 1, 13_000, 1e-3, 48, 8, 1000, DNCNN_OPTIONS, luma=False, degradation=BLIND_NOISE,
            save_every=1000, benchmarks=NOISE_TESTS,
            notes="blind Gaussian denoising of gray photos, sigma 0 to 55 drawn for each patch (DnCNN-B's "
                  "range), noise not clipped (the tables' protocol); the small DnCNN (12 x 48 on 2 x 2 blocks) "
                  "with the paper's batch norm; Adam at 1e-3, batches of 8. Chosen on the validation split "
                  "(sigma 25 and blind) after runs of equal compute (3.4 min): batch 8 > 16 > 32, batch norm "
                  "+0.9 dB, 1e-3 > 3e-4 and 2e-3; the table is in docs/zoo.md"),
    _recipe("dncnn_jpeg", "dncnn", 1, 20_000, 1e-3, 48, 8, 1000, DNCNN_OPTIONS, luma=False, degradation=BLIND_JPEG,
            save_every=2000, threads=2, benchmarks=JPEG_TESTS,
            notes="JPEG artefact removal on gray photos, quality 10 to 40 drawn for each patch (Pillow's "
                  "encoder); 48-pixel patches hold whole 8 x 8 blocks from their corner, as whole images do; "
                  "dncnn_gray's recipe (chosen on denoising, not tried on JPEG separately)"),
    _recipe("dncnn_color", "dncnn", 1, 3_400, 1e-3, 48, 8, 500, {**DNCNN_OPTIONS, "pixel_unshuffle": 1},
            num_channels=3, degradation=BLIND_NOISE, save_every=500, benchmarks=COLOUR_NOISE_TESTS,
            notes="blind Gaussian denoising of colour photos (RGB), sigma 0 to 55, not clipped; dncnn_gray's recipe "
                  "but on full-size layers: folded into 12 channels, the colour network barely learned (+1.5 dB "
                  "over its input after 300 steps, +6.5 dB unfolded; the first weights, folded, ended 2 dB over "
                  "it); see docs/zoo.md"),
)}

# Prepared for a GPU (`sr-teach zoo train --all`) and not shipped: nothing has trained them to the end yet.
GPU_RECIPES: dict[str, ZooRecipe] = {recipe.name: recipe for recipe in (
    _recipe("ecbsr_x2", "ecbsr", 2, 30_000, 1e-3, 32, 16, 1000, ECBSR_OPTIONS, loss="l1",
            notes="ECBSR-M10C32 (Zhang et al., ACM MM 2021): 10 edge-oriented blocks of 32 channels, trained through "
                  "the merged 3x3 kernels and collapsed for inference (94,308 weights, 1/28 of VDSR's multiply-adds "
                  "at x2). Adam 1e-3 and L1 beat 5e-4, 2e-3 and MSE in 600-step probes on the validation split; "
                  "the step count is for a GPU (sr-teach zoo train --all); not yet trained to the end here"),
    _recipe("ecbsr_x3", "ecbsr", 3, 30_000, 1e-3, 24, 16, 1000, ECBSR_OPTIONS, loss="l1",
            notes="ecbsr_x2's recipe at x3 with 72-pixel HR patches (24 LR), as vdsr's; prepared for a GPU, not run"),
    _recipe("ecbsr_x4", "ecbsr", 4, 30_000, 1e-3, 18, 16, 1000, ECBSR_OPTIONS, loss="l1",
            notes="ecbsr_x2's recipe at x4 with 72-pixel HR patches (18 LR), as vdsr's; prepared for a GPU, not run"),
)}

# ------------------------------------------------------------------------------------- training
def run_path(name: str, runs_folder: str | os.PathLike = DEFAULT_RUNS_FOLDER) -> Path:
    return Path(runs_folder) / f"{name}.pt"


def weights_path(name: str) -> Path:
    return WEIGHTS_FOLDER / f"{name}.pt"


def all_recipes() -> dict[str, ZooRecipe]:
    """What `sr-teach zoo train NAME` and `--all` can train: the shipped recipes and the GPU ones."""
    return {**RECIPES, **GPU_RECIPES}


def recipe_named(name: str) -> ZooRecipe:
    recipes = all_recipes()
    if name not in recipes:
        raise ValueError(f"no zoo recipe {name!r}; the zoo has: {', '.join(recipes)}")
    return recipes[name]


def build_experiment(recipe: ZooRecipe, data_dir: str | os.PathLike | None = None) -> Experiment:
    """The recipe's Experiment on the training sets found in `data_dir`."""
    root = resolve_data_dir(data_dir)
    folders = [root / name for name in TRAINING_SETS]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"the zoo trains on {' + '.join(TRAINING_SETS)}, not found: {', '.join(missing)}. "
            f"Fetch them with `sr-teach download {' '.join(TRAINING_SETS)} --data-dir {root}`"
        )
    return Experiment(replace(recipe.experiment, data=tuple(str(folder) for folder in folders)))


def transfer_matching_weights(model: nn.Module, source: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of `source` whose name and shape match into `model`; return those copied."""
    own = model.state_dict()
    copied = [name for name, value in source.items() if name in own and own[name].shape == value.shape]
    model.load_state_dict({**own, **{name: source[name] for name in copied}})
    return copied


def train_recipe(
    name: str,
    data_dir: str | os.PathLike | None = None,
    runs_folder: str | os.PathLike = DEFAULT_RUNS_FOLDER,
    max_steps: int | None = None,
    progress: bool = True,
    device: str | None = None,
) -> Path | None:
    """Train (or continue) zoo model `name`; export its weights when the run is complete.

    max_steps: stop after this many more steps this time (the run resumes later).
    device: instead of the recipe's ("auto"), e.g. "cuda" or "cpu".
    Returns the exported weights file, or None while the run is unfinished.
    """
    recipe = recipe_named(name)
    if device is not None:
        recipe = replace(recipe, experiment=replace(recipe.experiment, train=replace(recipe.experiment.train, device=device)))
    distributed.start(recipe.experiment.train.device)  # under torchrun: the processes share the run
    torch.set_num_threads(max(1, recipe.threads // distributed.world_size()))
    experiment = build_experiment(recipe, data_dir)
    state_file = run_path(name, runs_folder)
    if state_file.exists():
        experiment.trainer.load_state_dict(load_checkpoint(state_file)["trainer_state"])
        distributed.say(f"{name}: resuming at step {experiment.trainer.step} of {recipe.steps}")
    elif recipe.finetune_from:
        source_file = weights_path(recipe.finetune_from)
        if not source_file.exists():
            raise FileNotFoundError(
                f"{name} starts from {recipe.finetune_from}, which is not trained yet: "
                f"run `sr-teach zoo train {recipe.finetune_from}` first"
            )
        copied = transfer_matching_weights(experiment.model, load_checkpoint(source_file)["state_dict"])
        distributed.say(f"{name}: starting from {recipe.finetune_from} ({len(copied)} tensors copied)")
    state_file.parent.mkdir(parents=True, exist_ok=True)
    stop_at = recipe.steps if max_steps is None else min(recipe.steps, experiment.trainer.step + max_steps)
    while experiment.trainer.step < stop_at:
        chunk = min(recipe.save_every - experiment.trainer.step % recipe.save_every, stop_at - experiment.trainer.step)
        history = experiment.train(steps=chunk, progress=progress)
        experiment.save(state_file, overwrite=True)
        best = experiment.trainer.best_validation_psnr
        distributed.say(f"{name}: step {experiment.trainer.step}/{recipe.steps}, {experiment.trainer.training_seconds / 60:.1f} "
                        f"min, best validation {best:.3f} dB (step {experiment.trainer.best_validation_step})")
        if history.stop_reason in ("interrupted", "diverged", "stopped"):
            distributed.say(f"{name}: {history.stop_message or history.stop_reason}; state saved to {state_file}")
            return None
    if experiment.trainer.step < recipe.steps:
        distributed.say(f"{name}: paused; continue with `sr-teach zoo train {name}`")
        return None
    path = export_weights(recipe, experiment, data_dir) if distributed.is_main() else weights_path(name)
    distributed.barrier()  # the others wait until rank 0 has measured and written the weights
    return path


def measure(
    model: nn.Module, scales: Sequence[int], data_dir: str | os.PathLike | None = None,
    datasets: Sequence[str] = BENCHMARK_SETS, benchmarks: Sequence[tuple[str, RestorationTask]] = (),
) -> dict[str, Any]:
    """Y-PSNR and SSIM on the benchmark sets at each scale: {"Set5": {"3": {"psnr":, "ssim":}}}; for a
    restoration model, on each (set, task) of `benchmarks` (RGB for colour): {"Set12": {"sigma 25": ...}}."""
    results: dict[str, Any] = {}
    for dataset, task in benchmarks:
        mean = evaluate_restoration(model_restorer(model), dataset, task, method=model_name(model), data_dir=data_dir,
                                    y_channel=getattr(model, "num_channels", 1) == 1).mean
        results.setdefault(dataset, {})[str(task)] = {"psnr": round(mean["psnr"], 4), "ssim": round(mean["ssim"], 5)}
    if benchmarks:
        return results
    for dataset in datasets:
        for scale in scales:
            mean = evaluate(model_upscaler(model), dataset, scale, method=model_name(model), data_dir=data_dir).mean
            results.setdefault(dataset, {})[str(scale)] = {"psnr": round(mean["psnr"], 4), "ssim": round(mean["ssim"], 5)}
    return results


def export_weights(recipe: ZooRecipe, experiment: Experiment, data_dir: str | os.PathLike | None = None,
                   path: str | os.PathLike | None = None, command: str | None = None) -> Path:
    """Write the best-on-validation weights (or the last: `keep_best`), the recipe, the data and the measured
    results to `path` (default: the shipped file), with the `command` that trained them."""
    trainer = experiment.trainer
    if recipe.keep_best:
        trainer.restore_best_state()
    model = experiment.model.cpu().eval()
    results = measure(model, recipe.scales, data_dir, benchmarks=recipe.benchmarks)
    extra = {
        "recipe": {"name": recipe.name, "steps": recipe.steps, "finetune_from": recipe.finetune_from,
                   "notes": recipe.notes, "command": command or f"sr-teach zoo train {recipe.name}"},
        "experiment": {**experiment.config.to_dict(), "data": list(TRAINING_SETS)},
        "scales": list(recipe.scales),
        "training_images": [path.name for path in experiment.train_paths],
        "validation_images": [path.name for path in experiment.validation_paths],
        "best_validation_psnr": trainer.best_validation_psnr,
        "best_validation_step": trainer.best_validation_step,
        "training_minutes": round(trainer.training_seconds / 60, 1),
        "torch": str(torch.__version__),
        "results": results,
        "published": {f"{dataset} x{scale}": value for (dataset, scale), value in recipe.published.items()
                      if scale in recipe.scales} | {
            f"{dataset} {task}": PUBLISHED_RESTORATION[(dataset, task.kind, int(task.level))]
            for dataset, task in recipe.benchmarks if (dataset, task.kind, int(task.level)) in PUBLISHED_RESTORATION},
    }
    path = save_checkpoint(
        path or weights_path(recipe.name), model, None, None, extra,
        scale=recipe.experiment.scale, model_name=recipe.experiment.model, overwrite=True,
    )
    summary = ", ".join(f"{dataset} {'' if recipe.benchmarks else 'x'}{setting} {value['psnr']:.2f}"
                        for dataset, by_setting in results.items() for setting, value in by_setting.items())
    print(f"{recipe.name}: wrote {path} ({summary})", flush=True)
    return path


def status(runs_folder: str | os.PathLike = DEFAULT_RUNS_FOLDER) -> list[str]:
    """One line per recipe: shipped, in progress (step k of n) or not started."""
    lines = []
    for name, recipe in RECIPES.items():
        if weights_path(name).exists():
            extra = load_checkpoint(weights_path(name))["extra"]
            dataset, by_setting = next(iter(extra["results"].items()))  # Set5 first for SR, the task's first set
            scores = " / ".join(f"{value['psnr']:.2f}" for value in by_setting.values())
            lines.append(f"{name:<10} shipped: {dataset} {scores} dB after {extra['training_minutes']} min")
        elif run_path(name, runs_folder).exists():
            step = load_checkpoint(run_path(name, runs_folder))["trainer_state"]["step"]
            lines.append(f"{name:<10} in progress: step {step} of {recipe.steps}")
        else:
            lines.append(f"{name:<10} not started ({recipe.steps} steps{', from ' + recipe.finetune_from if recipe.finetune_from else ''})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sr-teach zoo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train (or resume) one zoo model, or --all at the papers' sizes on a GPU")
    train.add_argument("name", nargs="?", choices=list(all_recipes()))
    train.add_argument("--all", action="store_true", help="every SR recipe at its paper's size, all at once (a GPU)")
    train.add_argument("--only", nargs="+", metavar="NAME", help="with --all: these recipes only")
    train.add_argument("--minutes", type=float, default=10.0, help="with --all: the time each run has (default 10)")
    train.add_argument("--into", help="with --all: folder for the weights that beat the shipped ones (default: ship them)")
    train.add_argument("--data-dir", help="folder holding T91/ and BSD200/ (default: $SR_TEACH_DATA)")
    train.add_argument("--runs", help=f"folder of resumable run states (default: {DEFAULT_RUNS_FOLDER}/; "
                                      "gpu_runs/ with --all)")
    train.add_argument("--max-steps", type=int, help="stop after this many steps; run again to continue")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--device", help="instead of the recipe's 'auto': cpu, cuda, cuda:1, mps")
    listing = commands.add_parser("status", help="which zoo models are shipped, in progress or not started")
    listing.add_argument("--runs", default=str(DEFAULT_RUNS_FOLDER))
    arguments = parser.parse_args(argv)
    if arguments.command == "status":
        print("\n".join(status(arguments.runs)))
        return 0
    if arguments.all:
        from sr_teach.tools.gpu_zoo import DEFAULT_RUNS_FOLDER as GPU_RUNS, paper_names, train_all

        unknown = sorted(set(arguments.only or []) - set(paper_names()))
        if unknown or arguments.name or arguments.minutes <= 0:
            parser.error(f"--all trains {', '.join(paper_names())} (--only picks some) for --minutes above 0; "
                         f"not {', '.join(unknown) or arguments.name or arguments.minutes}")
        return train_all(arguments.minutes, arguments.device or "cuda", arguments.only, arguments.runs or GPU_RUNS,
                         arguments.data_dir, arguments.into)
    if arguments.name is None:
        parser.error("name a recipe to train (sr-teach zoo status lists them), or --all")
    start = time.perf_counter()
    train_recipe(arguments.name, arguments.data_dir, arguments.runs or DEFAULT_RUNS_FOLDER, arguments.max_steps,
                 not arguments.quiet, arguments.device)
    distributed.say(f"{arguments.name}: this session {(time.perf_counter() - start) / 60:.1f} min")
    distributed.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
