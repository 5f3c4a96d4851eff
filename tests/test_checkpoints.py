"""Checkpoint files: weights_only loading, clear refusals, and an exact resume of a training run."""

from __future__ import annotations

import pytest
import torch

from sr_teach.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from sr_teach.training import History, Trainer
from test_training import (
    GeneratorSampler,
    assert_same_weights,
    build_tiny,
    config,
    make_model,
    random_batches,
    validation_pairs,
    weights,
)


def test_checkpoint_round_trip_loads_with_weights_only(tmp_path):
    trainer = Trainer(make_model(), random_batches(), config(validation_every=5), validation_pairs=validation_pairs())
    trainer.train(steps=10)
    path = save_checkpoint(tmp_path / "tiny.pt", trainer.model, trainer.history, trainer.config,
                           extra={"dataset": "random", "notes": [1, 2.5, None]}, model_name="tiny")
    raw = torch.load(path, weights_only=True)
    for key in ("model_name", "model_config", "state_dict", "history", "train_config", "extra"):
        assert key in raw
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    checkpoint = load_checkpoint(path, model_name="tiny", scale=2)
    assert checkpoint["model_config"] == {"scale": 2, "width": 8} and checkpoint["scale"] == 2
    assert checkpoint["train_config"]["loss"] == "l1_loss"
    assert History.from_dict(checkpoint["history"]) == trainer.history
    assert checkpoint["extra"] == {"dataset": "random", "notes": [1, 2.5, None]}
    model = model_from_checkpoint(checkpoint, build_tiny)
    assert_same_weights(weights(model), weights(trainer.model))
    assert not model.training

    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(path, trainer.model, model_name="tiny")
    save_checkpoint(path, trainer.model, model_name="tiny", state_dict=trainer.best_state, overwrite=True)
    assert_same_weights(load_checkpoint(path)["state_dict"], trainer.best_state)
    with pytest.raises(TypeError, match="weights_only"):
        save_checkpoint(tmp_path / "bad.pt", trainer.model, extra={"object": object()})
    assert not (tmp_path / "bad.pt").exists()


def test_bad_checkpoints_are_refused_with_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")

    garbage = tmp_path / "garbage.pt"
    for junk in (b"not a checkpoint", b"this is not a checkpoint" * 10, b""):
        garbage.write_bytes(junk)
        with pytest.raises(CheckpointError, match="could not be read"):
            load_checkpoint(garbage)

    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, make_model(), model_name="tiny")
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(truncated)

    pickled_model = tmp_path / "pickled.pt"
    torch.save(make_model(), pickled_model)  # the habit sr_teach avoids
    with pytest.raises(CheckpointError, match="not only weights .*TinyNet.*, so it was not loaded"):
        load_checkpoint(pickled_model)

    bare_state_dict = tmp_path / "state_dict.pt"
    torch.save(make_model().state_dict(), bare_state_dict)
    with pytest.raises(CheckpointError, match="not an sr_teach checkpoint"):
        load_checkpoint(bare_state_dict)

    good = save_checkpoint(tmp_path / "good.pt", make_model(), model_name="tiny")
    with pytest.raises(CheckpointError, match="'tiny', not 'espcn'"):
        load_checkpoint(good, model_name="espcn")
    with pytest.raises(CheckpointError, match="scale x2, not x3"):
        load_checkpoint(good, scale=3)


def test_resume_from_checkpoint_continues_the_same_run(tmp_path):
    for make_sampler in (random_batches, GeneratorSampler):
        settings = dict(lr_schedule="cosine", total_steps=20, warmup_steps=3, validation_every=5)
        straight = Trainer(make_model(), make_sampler(), config(**settings), validation_pairs=validation_pairs())
        straight.train(steps=20)

        first_half = Trainer(make_model(), make_sampler(), config(**settings), validation_pairs=validation_pairs())
        first_half.train(steps=10)
        path = save_checkpoint(tmp_path / f"{make_sampler.__name__}.pt", first_half.model, first_half.history,
                               model_name="tiny", trainer_state=first_half.state_dict())
        torch.manual_seed(999)  # anything in between must not matter

        checkpoint = load_checkpoint(path, model_name="tiny")
        model = model_from_checkpoint(checkpoint, build_tiny)
        resumed = Trainer(model, make_sampler(), config(**settings), validation_pairs=validation_pairs())
        resumed.load_state_dict(checkpoint["trainer_state"])
        assert resumed.step == 10 and len(resumed.history.loss) == 10
        resumed.train(steps=10)

        assert resumed.history.loss == pytest.approx(straight.history.loss, abs=1e-6)
        assert_same_weights(weights(resumed.model), weights(straight.model), atol=1e-6)
        assert resumed.best_validation_psnr == pytest.approx(straight.best_validation_psnr, abs=1e-5)
