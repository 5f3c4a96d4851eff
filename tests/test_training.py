"""The trainer and checkpoints, on tiny inline models and random data (CPU, a second or two each)."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.training import (
    Callback,
    CheckpointError,
    DivergenceWarning,
    History,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    learning_rate_at,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)


class TinyNet(nn.Module):
    """An ESPCN-like post-upsampling network, small enough to train in milliseconds."""

    upsampling = "post"
    num_channels = 1

    def __init__(self, scale: int = 2, width: int = 8) -> None:
        super().__init__()
        self.scale, self.width = scale, width
        self.scales = (scale,)
        self.feature_extraction = nn.Conv2d(1, width, kernel_size=3, padding=1)
        self.sub_pixel = nn.Conv2d(width, scale * scale, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def forward(self, lr_image: torch.Tensor) -> torch.Tensor:
        features = torch.tanh(self.feature_extraction(lr_image))  # (B, width, h, w)
        return self.pixel_shuffle(self.sub_pixel(features))  # (B, 1, h scale, w scale)

    def config(self) -> dict:
        return {"scale": self.scale, "width": self.width}


def build_tiny(name: str, **kwargs) -> nn.Module:
    assert name == "tiny", name
    return TinyNet(**kwargs)


def make_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def random_batches(batch_size: int = 4, hr_size: int = 16, nan_at_step: int | None = None):
    """Endless (lr, hr) batches drawn from the global torch RNG; optionally a NaN target at one step."""
    step = 0
    while True:
        step += 1
        hr_image = torch.rand(batch_size, 1, hr_size, hr_size)  # (B, 1, H, W)
        lr_image = F.avg_pool2d(hr_image, 2)  # (B, 1, H/2, W/2)
        if step == nan_at_step:
            hr_image = torch.full_like(hr_image, math.nan)
        yield lr_image, hr_image


class GeneratorSampler:
    """A sampler with its own generator and state_dict(), as a data module's sampler may have."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self):
        hr_image = torch.rand(4, 1, 16, 16, generator=self.generator)
        return F.avg_pool2d(hr_image, 2), hr_image

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def validation_pairs(count: int = 2, size: int = 24) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(123)
    targets = torch.rand(count, 1, size, size, generator=generator)
    return [(F.avg_pool2d(target[None], 2)[0], target) for target in targets]


def config(**overrides) -> TrainConfig:
    values = dict(loss=F.l1_loss, learning_rate=1e-2, device="cpu", seed=0, validation_every=None, log_every=5)
    values.update(overrides)
    return TrainConfig(**values)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def assert_same_weights(first: dict, second: dict, atol: float = 0.0) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=atol, msg=name)


# --------------------------------------------------------------------------------- training loop
def test_same_seed_gives_same_losses_and_weights():
    runs = []
    for _ in range(2):
        trainer = Trainer(make_model(), random_batches(), config())
        history = trainer.train(steps=15)
        runs.append((history.loss, weights(trainer.model)))
    assert runs[0][0] == runs[1][0]
    assert_same_weights(runs[0][1], runs[1][1])
    other = Trainer(make_model(), random_batches(), config(seed=1)).train(steps=15)
    assert other.loss != runs[0][0]  # the seed drives the data here


def test_history_is_plain_data_and_loss_decreases():
    trainer = Trainer(make_model(), random_batches(), config(learning_rate=3e-2))
    history = trainer.train(steps=40)
    assert history is trainer.history
    assert history.step == list(range(1, 41))
    assert len(history.loss) == len(history.learning_rate) == len(history.wall_time) == 40
    assert history.throughput_step == [5, 10, 15, 20, 25, 30, 35, 40]
    assert all(speed > 0 for speed in history.samples_per_second)
    assert history.wall_time == sorted(history.wall_time)
    assert sum(history.loss[-5:]) < sum(history.loss[:5])
    assert history.stop_reason == "steps"
    assert History.from_dict(history.to_dict()) == history


def test_train_twice_continues_the_same_run():
    once = Trainer(make_model(), random_batches(), config(lr_schedule="cosine", total_steps=20))
    once.train(steps=20)
    twice = Trainer(make_model(), random_batches(), config(lr_schedule="cosine", total_steps=20))
    twice.train(steps=8)
    assert twice.step == 8
    history = twice.train(steps=12)
    assert twice.step == 20 and history.step == list(range(1, 21))
    assert history.loss == once.history.loss
    assert history.learning_rate == once.history.learning_rate
    assert_same_weights(weights(once.model), weights(twice.model))
    # With no limits, train() runs to total_steps, and does nothing once there.
    assert twice.train().stop_reason == "total_steps" and twice.step == 20


def test_finite_samplers_restart_and_progress_bar_runs(capsys):
    class ThreeBatches:  # finite, like one epoch of a DataLoader
        passes = 0

        def __iter__(self):
            self.passes += 1
            return iter([next(random_batches()) for _ in range(3)])

    sampler = ThreeBatches()
    history = Trainer(make_model(), sampler, config()).train(steps=7, progress=True)
    assert history.step == list(range(1, 8)) and sampler.passes == 3
    assert "7/7" in capsys.readouterr().err


def test_errors_in_the_model_are_not_swallowed():
    trainer = Trainer(make_model(), ((torch.rand(2, 3, 8, 8), torch.rand(2, 1, 16, 16)) for _ in range(5)), config())
    with pytest.raises(RuntimeError):  # 3 channels into a 1-channel network
        trainer.train(steps=3)


def test_loss_names_go_through_sr_teach_losses():
    pytest.importorskip("sr_teach.losses")
    trainer = Trainer(make_model(), random_batches(), config(loss="l1"))
    history = trainer.train(steps=3)
    assert len(history.loss) == 3 and all(math.isfinite(loss) for loss in history.loss)


def test_seconds_limit_is_respected():
    trainer = Trainer(make_model(), random_batches(), config(total_steps=10**9))
    start = time.perf_counter()
    history = trainer.train(seconds=0.3)
    elapsed = time.perf_counter() - start
    assert history.stop_reason == "time"
    assert 0.3 <= elapsed < 1.5
    assert trainer.step > 0 and len(history.step) == trainer.step


def test_learning_rate_schedules():
    cosine = TrainConfig(learning_rate=1.0, lr_schedule="cosine", total_steps=110, warmup_steps=10)
    assert learning_rate_at(0, cosine) == pytest.approx(0.1)
    assert learning_rate_at(9, cosine) == pytest.approx(1.0)
    assert learning_rate_at(60, cosine) == pytest.approx(0.5)
    assert learning_rate_at(110, cosine) == pytest.approx(0.0)
    step = TrainConfig(learning_rate=1.0, lr_schedule="step", decay_every=100, decay_factor=0.5)
    assert [learning_rate_at(s, step) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    trainer = Trainer(make_model(), random_batches(), config(learning_rate=1.0, lr_schedule="step", decay_every=3,
                                                              decay_factor=0.1, optimizer="sgd"))
    history = trainer.train(steps=6)
    assert history.learning_rate == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.1])


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adagrad")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


# ------------------------------------------------------------------------------ stopping early
def test_callbacks_receive_events_and_can_stop_training():
    events = []

    def on_event(event, trainer, record):
        events.append((event, getattr(record, "step", None)))
        if event == "step" and record.step == 7:
            trainer.stop()  # what a widget's Stop button does

    class Recorder(Callback):
        def __init__(self):
            self.logged, self.stops = [], []

        def on_log(self, trainer, record):
            self.logged.append((record.step, record.loss))

        def on_stop(self, trainer, record):
            self.stops.append(record.reason)

    recorder = Recorder()
    trainer = Trainer(make_model(), random_batches(), config(), callbacks=[on_event, recorder])
    history = trainer.train(steps=100)
    assert history.stop_reason == "stopped" and trainer.step == 7 and len(history.loss) == 7
    assert events[0] == ("train_start", None) and events[-1] == ("stop", 7)
    assert [step for event, step in events if event == "step"] == list(range(1, 8))
    assert [step for step, _ in recorder.logged] == [5, 7]  # the log at 5, then the rest when stopping
    assert recorder.logged[0][1] == pytest.approx(sum(history.loss[:5]) / 5)
    assert recorder.stops == ["stopped"]
    assert trainer.train(steps=3).stop_reason == "steps" and trainer.step == 10  # the flag was reset


def test_keyboard_interrupt_stops_cleanly_and_keeps_weights_and_history():
    class InterruptAt:
        def on_step(self, trainer, record):
            if record.step == 7:
                raise KeyboardInterrupt  # as Ctrl-C / the notebook's stop button would

    trainer = Trainer(make_model(), random_batches(), config(), callbacks=[InterruptAt()])
    history = trainer.train(steps=50)  # no exception escapes
    assert history.stop_reason == "interrupted"
    assert trainer.step == 7 and history.step == list(range(1, 8))
    reference = Trainer(make_model(), random_batches(), config())
    reference.train(steps=7)
    assert history.loss == reference.history.loss
    assert_same_weights(weights(trainer.model), weights(reference.model))

    reraising = Trainer(make_model(), random_batches(), config(reraise_interrupt=True), callbacks=[InterruptAt()])
    with pytest.raises(KeyboardInterrupt):
        reraising.train(steps=50)
    assert reraising.history.stop_reason == "interrupted" and len(reraising.history.loss) == 7


# ----------------------------------------------------------------------------------- divergence
def test_nan_loss_stops_and_restores_the_last_good_weights():
    trainer = Trainer(make_model(), random_batches(nan_at_step=37), config(log_every=10))
    with pytest.warns(DivergenceWarning, match="smaller learning rate"):
        history = trainer.train(steps=100)
    assert history.stop_reason == "diverged"
    assert history.stop_message == (
        "loss became NaN at step 37 with learning rate 0.01; weights restored from step 30; "
        "try a smaller learning rate such as 0.001"
    )
    assert math.isnan(history.loss[36]) and len(history.loss) == 40  # the explosion stays visible
    reference = Trainer(make_model(), random_batches(), config(log_every=10))
    reference.train(steps=30)
    assert_same_weights(weights(trainer.model), weights(reference.model))


def test_nan_right_after_a_copy_falls_back_to_the_copy_before():
    # The weights copied at step 30 produced the NaN of step 31, so they cannot be trusted.
    trainer = Trainer(make_model(), random_batches(nan_at_step=31), config(log_every=10))
    with pytest.warns(DivergenceWarning, match="restored from step 20"):
        trainer.train(steps=100)
    reference = Trainer(make_model(), random_batches(), config(log_every=10))
    reference.train(steps=20)
    assert_same_weights(weights(trainer.model), weights(reference.model))


def test_huge_learning_rate_diverges_with_advice_and_finite_weights():
    settings = dict(optimizer="sgd", learning_rate=1e6, loss=F.mse_loss, divergence_factor=None)
    trainer = Trainer(make_model(), random_batches(), config(**settings))
    with pytest.warns(DivergenceWarning) as caught:
        history = trainer.train(steps=200)
    assert history.stop_reason == "diverged" and trainer.step < 200
    message = str(caught[0].message)
    assert message == history.stop_message
    assert "with learning rate 1e+06" in message and "try a smaller learning rate such as 100000" in message
    assert all(torch.isfinite(value).all() for value in trainer.model.state_dict().values())
    restored_step = int(message.split("restored from step ")[1].split(";")[0])
    reference = Trainer(make_model(), random_batches(), config(**settings))
    reference.train(steps=restored_step)
    assert_same_weights(weights(trainer.model), weights(reference.model))


def test_exploding_loss_is_caught_before_nan_and_can_raise():
    settings = dict(optimizer="sgd", learning_rate=30.0, loss=F.mse_loss, log_every=1, raise_on_divergence=True,
                    divergence_grace_steps=0)
    trainer = Trainer(make_model(), random_batches(), config(**settings))
    with pytest.raises(TrainingDiverged, match="exploding") as caught:
        trainer.train(steps=200)
    assert caught.value.learning_rate == 30.0 and caught.value.restored_step < caught.value.step
    assert trainer.history.stop_reason == "diverged"
    assert all(math.isfinite(loss) for loss in trainer.history.loss)


# ----------------------------------------------------------------------------------- validation
def test_validation_psnr_is_recorded_and_best_state_kept():
    pairs = validation_pairs()
    psnrs = []
    trainer = Trainer(make_model(), random_batches(), config(validation_every=5, learning_rate=3e-2),
                      validation_pairs=pairs, validation_border=2,
                      callbacks=[lambda event, trainer, record: psnrs.append(record.psnr) if event == "validation"
                                 else None])
    history = trainer.train(steps=22)
    assert history.validation_step == [5, 10, 15, 20, 22]  # and once at the end of train()
    assert history.validation_psnr == psnrs
    assert trainer.best_validation_psnr == max(history.validation_psnr)
    assert trainer.best_validation_step == history.validation_step[history.validation_psnr.index(max(psnrs))]
    assert trainer.model.training  # validation switched back to training mode

    # best_state holds the weights at the best step, and evaluating them gives the best PSNR.
    trainer.restore_best_state()
    assert trainer.evaluate() == pytest.approx(trainer.best_validation_psnr, abs=1e-4)
    reference = Trainer(make_model(), random_batches(), config(validation_every=5, learning_rate=3e-2))
    reference.train(steps=trainer.best_validation_step)
    assert_same_weights(trainer.best_state, weights(reference.model))

    # The PSNR is the mean over images of the per-image PSNR, with the border cropped.
    from sr_teach.metrics import psnr

    model = trainer.model.eval()
    with torch.no_grad():
        expected = [float(psnr(model(lr[None]).clamp(0, 1), hr[None], crop_border=2)) for lr, hr in pairs]
    assert trainer.evaluate() == pytest.approx(sum(expected) / len(expected), abs=1e-4)


# ---------------------------------------------------------------------------------- checkpoints
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
    with pytest.raises(CheckpointError, match="weights_only"):
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
        path = first_half.save_checkpoint(tmp_path / f"{make_sampler.__name__}.pt", model_name="tiny")
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


def test_mixed_precision_is_off_on_cpu_unless_asked():
    assert Trainer(make_model(), random_batches(), config(mixed_precision="auto")).amp_dtype is None
    trainer = Trainer(make_model(), random_batches(), config(mixed_precision="bf16", grad_clip=1.0))
    history = trainer.train(steps=5)  # bf16 autocast works on CPU too, if slowly
    assert trainer.amp_dtype == torch.bfloat16 and all(math.isfinite(loss) for loss in history.loss)
    with pytest.raises(ValueError, match="fp16 mixed precision needs a CUDA device"):
        Trainer(make_model(), random_batches(), config(mixed_precision="fp16"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_mixed_precision_trains():
    for precision in ("bf16", "fp16"):
        trainer = Trainer(make_model(), random_batches(), config(device="cuda", mixed_precision=precision,
                                                                 grad_clip=1.0))
        history = trainer.train(steps=20)
        assert history.stop_reason == "steps" and all(math.isfinite(loss) for loss in history.loss)
        assert (trainer.scaler is not None) == (precision == "fp16")
        assert next(trainer.model.parameters()).device.type == "cuda"


def test_early_loss_jump_of_a_fresh_network_is_not_called_divergence():
    """A network that starts as bicubic has a tiny first loss; Adam's first steps may raise it 30x."""
    losses = iter([1e-5] + [3e-4] * 200)
    trainer = Trainer(make_model(), random_batches(), config(log_every=1))
    trainer.loss_function = lambda prediction, target: next(losses) + 0 * prediction.sum()
    history = trainer.train(steps=20)
    assert history.stop_reason == "steps", history.stop_message
