"""Short runs of a zoo recipe with changes, scored on its validation split: how the restoration recipes were chosen.

    SR_TEACH_DATA=../shared/datasets .venv/bin/python benchmarks/recipe_probe.py dncnn_gray 1600 \
        --batch-size 8 --learning-rate 1e-3 --model-option batch_norm=true

Each probe trains the recipe from its seed for the given steps (its cosine schedule squeezed into
them) on one thread, then prints the validation PSNR twice: under the recipe's own degradation (a
blind range, drawn per tile) and under one fixed setting (--sigma or --quality). Only the held-out
tenth of the training photos is used, never a test set. Compare runs of equal compute: halve the
batch, double the steps. Two probes at a time share the 2 cores fairly (one thread each).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from sr_teach.experiment import Experiment
from sr_teach.tools.zoo import build_experiment, recipe_named


def option(text: str) -> tuple[str, object]:
    """"name=value" with value read as JSON where it can be (true, 3, 0.5), else as text."""
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", help="a zoo recipe, e.g. dncnn_gray")
    parser.add_argument("steps", type=int, help="training steps of the probe")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--model-option", type=option, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sigma", type=float, default=25.0, help="fixed noise sigma to score a denoiser at")
    parser.add_argument("--quality", type=int, default=10, help="fixed JPEG quality to score a JPEG remover at")
    parser.add_argument("--data-dir", help="folder holding T91 and BSD200 (default: $SR_TEACH_DATA)")
    arguments = parser.parse_args()
    torch.set_num_threads(1)

    recipe = recipe_named(arguments.recipe)
    config = recipe.experiment
    config = replace(
        config, batch_size=arguments.batch_size or config.batch_size,
        model_options={**config.model_options, **dict(arguments.model_option)},
        train=replace(config.train, total_steps=arguments.steps, validation_every=arguments.steps,
                      learning_rate=arguments.learning_rate or config.train.learning_rate),
    )
    experiment = build_experiment(replace(recipe, experiment=config), arguments.data_dir)
    start = time.perf_counter()
    experiment.train(steps=arguments.steps)
    seconds = time.perf_counter() - start

    # the same held-out photos under one fixed setting (same split: same seed and data)
    degradation = config.degradation
    fixed = (replace(degradation, noise_sigma=arguments.sigma) if degradation.noise_sigma is not None
             else replace(degradation, jpeg_quality=arguments.quality))
    scorer = Experiment(replace(experiment.config, degradation=fixed))
    assert scorer.validation_paths == experiment.validation_paths
    fixed_psnr = scorer.trainer.evaluate(model=experiment.model)
    setting = f"sigma {arguments.sigma:g}" if degradation.noise_sigma is not None else f"quality {arguments.quality}"
    print(json.dumps({
        "recipe": arguments.recipe, "steps": arguments.steps, "batch_size": config.batch_size,
        "learning_rate": config.train.learning_rate, "model_options": config.model_options,
        "seconds_per_step": round(seconds / arguments.steps, 3),
        "validation_psnr_recipe_degradation": round(experiment.trainer.best_validation_psnr, 3),
        f"validation_psnr_{setting.replace(' ', '_')}": round(fixed_psnr, 3),
        f"input_psnr_{setting.replace(' ', '_')}": round(scorer.bicubic_psnr(), 3),
    }))


if __name__ == "__main__":
    main()
