"""The zoo's training command on tiny stand-ins for T91/BSD200/Set5/Set14: resume, fine-tune, export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sr_teach.tools import zoo
from sr_teach.images import load_sample, save_image
from sr_teach.models import build_model
from sr_teach.checkpoints import load_checkpoint
from sr_teach.training import TrainConfig


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """T91, BSD200, Set5 and Set14 folders of a few 72 x 72 crops of the bundled photos."""
    root = tmp_path / "datasets"
    crops = {
        "T91": ["astronaut", "chelsea", "coffee"], "BSD200": ["rocket", "coins"],
        "Set5/HR": ["ihc"], "Set14/HR": ["camera", "retina"],
    }
    for folder, names in crops.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            save_image(load_sample(name, mode="rgb")[:, 100:172, 100:172], root / folder / f"{name}.png")
    return root


@pytest.fixture
def tiny_recipes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, zoo.ZooRecipe]:
    """Two 4-step ESPCN recipes (x2 from scratch, x3 fine-tuned from it), weights written to tmp_path."""
    base = zoo.RECIPES["espcn_x3"]
    train = TrainConfig(learning_rate=1e-3, loss="mse", total_steps=4, lr_schedule="cosine", validation_every=2,
                        log_every=1, device="cpu")
    x2 = replace(base, name="tiny_x2", steps=4, save_every=2, finetune_from=None, experiment=replace(
        base.experiment, scale=2, patch_size=8, batch_size=2, validation_fraction=0.25, train=train))
    x3 = replace(x2, name="tiny_x3", finetune_from="tiny_x2", experiment=replace(
        x2.experiment, scale=3, train=replace(train)))
    recipes = {"tiny_x2": x2, "tiny_x3": x3}
    monkeypatch.setattr(zoo, "RECIPES", recipes)
    monkeypatch.setattr(zoo, "WEIGHTS_FOLDER", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    return recipes


def test_a_run_resumes_exactly_and_exports_weights_with_their_record(tiny_data_dir, tiny_recipes, tmp_path) -> None:
    # in two sittings (2 steps, then the rest) ...
    assert zoo.train_recipe("tiny_x2", tiny_data_dir, tmp_path / "runs", max_steps=2, progress=False) is None
    assert "step 2 of 4" in zoo.status(tmp_path / "runs")[0]
    exported = zoo.train_recipe("tiny_x2", tiny_data_dir, tmp_path / "runs", progress=False)
    # ... or in one: the same weights
    straight_weights = tmp_path / "straight.pt"
    zoo.train_recipe("tiny_x2", tiny_data_dir, tmp_path / "straight", progress=False)
    Path(zoo.weights_path("tiny_x2")).rename(straight_weights)
    exported_again = zoo.train_recipe("tiny_x2", tiny_data_dir, tmp_path / "runs", progress=False)
    assert exported == exported_again  # the finished run just exports again
    resumed, straight = load_checkpoint(exported), load_checkpoint(straight_weights)
    for name, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=0, atol=0)

    extra = resumed["extra"]
    assert extra["recipe"]["command"] == "sr-teach zoo train tiny_x2"
    assert extra["experiment"]["data"] == ["T91", "BSD200"]  # folder names, not this machine's paths
    assert sorted(extra["training_images"] + extra["validation_images"]) == sorted(
        f"{name}.png" for name in ["astronaut", "chelsea", "coffee", "rocket", "coins"]
    )
    assert set(extra["results"]) == {"Set5", "Set14"}
    assert 10 < extra["results"]["Set5"]["2"]["psnr"] < 60
    assert extra["published"] == {}  # tiny_x2 is "espcn" at x2: the paper gave no x2 number


def test_finetuning_copies_the_layers_that_fit(tiny_data_dir, tiny_recipes, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="run `sr-teach zoo train tiny_x2` first"):
        zoo.train_recipe("tiny_x3", tiny_data_dir, tmp_path / "runs", progress=False)
    zoo.train_recipe("tiny_x2", tiny_data_dir, tmp_path / "runs", progress=False)
    source = load_checkpoint(zoo.weights_path("tiny_x2"))["state_dict"]
    model = build_model("espcn", scale=3, activation="relu", global_residual=True)
    copied = zoo.transfer_matching_weights(model, source)
    assert copied == [name for name in source if not name.startswith("sub_pixel_convolution")]
    torch.testing.assert_close(model.state_dict()["feature_extraction.0.weight"], source["feature_extraction.0.weight"])
    assert model.sub_pixel_convolution.weight.shape[0] == 9  # the x3 layer kept its own shape
    assert zoo.train_recipe("tiny_x3", tiny_data_dir, tmp_path / "runs", progress=False).exists()


def test_missing_training_sets_are_named_with_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sr-teach download T91 BSD200"):
        zoo.build_experiment(zoo.RECIPES["espcn_x3"], tmp_path)


def test_every_recipe_builds_its_model_and_names_published_numbers() -> None:
    for name, recipe in zoo.RECIPES.items():
        assert recipe.name == name
        model = build_model(recipe.experiment.model, scale=recipe.experiment.scale, **recipe.experiment.model_options)
        assert model.upsampling == ("pre" if recipe.experiment.model in ("srcnn", "vdsr") else "post")
        assert recipe.finetune_from is None or recipe.finetune_from in zoo.RECIPES
        assert recipe.experiment.validation_fraction > 0  # checkpoints are chosen on held-out training images
        assert recipe.experiment.train.total_steps == recipe.steps
    assert zoo.RECIPES["vdsr"].scales == (2, 3, 4)  # one set of weights for every scale
    assert zoo.PUBLISHED["espcn"] == {("Set5", 3): 32.55, ("Set14", 3): 29.08}


def test_zoo_command_line_reports_status(capsys) -> None:
    from sr_teach.cli import main

    assert main(["zoo", "status", "--runs", "/nonexistent-runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(zoo.RECIPES)
