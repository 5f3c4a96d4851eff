"""The trainer and checkpoints, on tiny inline models and random data (CPU, a second or two each)."""

from __future__ import annotations

import copy
import math
import os
import signal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sr_teach.metrics import psnr
from sr_teach.training import (
    Callback,
    DivergenceWarning,
    History,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    learning_rate_at,
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
    history = trainer.train(seconds=0.3)
    assert history.stop_reason == "time"
    assert trainer.training_seconds >= 0.3  # no upper bound: a loaded machine may take longer for a step
    assert trainer.step > 0 and len(history.step) == trainer.step
    trainer.train(seconds=0.1)
    assert trainer.training_seconds >= 0.4 and history.wall_time[-1] <= trainer.training_seconds


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
    class Recorder(Callback):
        def __init__(self):
            self.events, self.logged, self.stops = [], [], []

        def on_train_start(self, trainer, record):
            self.events.append("train_start")

        def on_log(self, trainer, record):
            self.events.append("log")
            self.logged.append((record.step, record.loss))
            if record.step == 10:
                trainer.stop()  # what a widget's Stop button does: end after this step

        def on_stop(self, trainer, record):
            self.events.append("stop")
            self.stops.append((record.step, record.reason))

    recorder = Recorder()
    trainer = Trainer(make_model(), random_batches(), config(), callbacks=[recorder])
    history = trainer.train(steps=100)
    assert history.stop_reason == "stopped" and trainer.step == 10 and len(history.loss) == 10
    assert recorder.events == ["train_start", "log", "log", "stop"]
    assert [step for step, _ in recorder.logged] == [5, 10]
    assert recorder.logged[0][1] == pytest.approx(sum(history.loss[:5]) / 5)
    assert recorder.stops == [(10, "stopped")]
    reference = Trainer(make_model(), random_batches(), config())
    reference.train(steps=10)
    assert_same_weights(weights(trainer.model), weights(reference.model))  # the 10th update was made
    assert trainer.train(steps=3).stop_reason == "steps" and trainer.step == 13  # the flag was reset


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_after_the_step_and_keep_everything(signal_number):
    class SignalAt(Callback):
        def on_log(self, trainer, record):
            if record.step == 5:
                os.kill(os.getpid(), signal_number)  # as Ctrl-C, the notebook's interrupt or a cluster would

    before = signal.getsignal(signal_number)
    trainer = Trainer(make_model(), random_batches(), config(), callbacks=[SignalAt()])
    history = trainer.train(steps=50)  # no exception escapes
    assert history.stop_reason == "interrupted" and signal.Signals(signal_number).name in history.stop_message
    assert trainer.step == 5 and history.step == list(range(1, 6))
    assert signal.getsignal(signal_number) is before  # the handler is put back
    reference = Trainer(make_model(), random_batches(), config())
    reference.train(steps=5)
    assert history.loss == reference.history.loss
    assert_same_weights(weights(trainer.model), weights(reference.model))


def test_keyboard_interrupt_from_a_callback_ends_the_call_without_a_traceback():
    class InterruptAt(Callback):
        def on_log(self, trainer, record):
            if record.step == 5:
                raise KeyboardInterrupt

    trainer = Trainer(make_model(), random_batches(), config(), callbacks=[InterruptAt()])
    history = trainer.train(steps=50)
    assert history.stop_reason == "interrupted" and "interrupted at step" in history.stop_message
    assert trainer.step < 10 and all(math.isfinite(loss) for loss in history.loss)


def test_the_trainer_leaves_the_global_random_state_alone_unless_asked():
    model = make_model(seed=7)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Trainer(model, [], config(seed=None))
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(123)
    Trainer(model, [], config(seed=123 + 1))
    assert not torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------------- divergence
def test_nan_loss_stops_and_restores_the_last_good_weights():
    trainer = Trainer(make_model(), random_batches(nan_at_step=37), config(log_every=10))
    with pytest.warns(DivergenceWarning, match="smaller learning rate"):
        history = trainer.train(steps=100)
    assert history.stop_reason == "diverged"
    assert history.stop_message == (
        "loss became NaN at step 37 with learning rate 0.01; weights restored from step 29; "
        "try a smaller learning rate such as 0.001"
    )
    assert math.isnan(history.loss[36]) and len(history.loss) == 40  # the explosion stays visible
    # The copy was taken at the log point of step 30, before its update: the weights after 29
    # updates, which had just given step 30's good loss.
    reference = Trainer(make_model(), random_batches(), config(log_every=10))
    reference.train(steps=29)
    assert_same_weights(weights(trainer.model), weights(reference.model))


def test_nan_right_after_a_copy_still_restores_checked_weights():
    # The copy at the log point of step 30 holds the weights after 29 updates, whose loss (step 30's)
    # was checked and good, so a NaN at the very next step still restores them.
    trainer = Trainer(make_model(), random_batches(nan_at_step=31), config(log_every=10))
    with pytest.warns(DivergenceWarning, match="at step 31 .* restored from step 29"):
        trainer.train(steps=100)
    assert all(torch.isfinite(value).all() for value in trainer.model.state_dict().values())
    reference = Trainer(make_model(), random_batches(), config(log_every=10))
    reference.train(steps=29)
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
    assert "with learning rate 30;" in str(caught.value) and "try a smaller learning rate such as 3" in str(caught.value)
    bad_step = int(str(caught.value).split(" at step ")[1].split(" ")[0])
    restored_step = int(str(caught.value).split("restored from step ")[1].split(";")[0])
    assert restored_step < bad_step
    assert trainer.history.stop_reason == "diverged"
    assert all(math.isfinite(loss) for loss in trainer.history.loss)


# ----------------------------------------------------------------------------------- validation
def test_validation_psnr_is_recorded_and_best_state_kept():
    pairs = validation_pairs()
    psnrs = []

    class Recorder(Callback):
        def on_validation(self, trainer, record):
            psnrs.append(record.psnr)

    trainer = Trainer(make_model(), random_batches(), config(validation_every=5, learning_rate=3e-2),
                      validation_pairs=pairs, validation_border=2, callbacks=[Recorder()])
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

    model = trainer.model.eval()
    with torch.no_grad():
        expected = [float(psnr(model(lr[None]).clamp(0, 1), hr[None], crop_border=2)) for lr, hr in pairs]
    assert trainer.evaluate() == pytest.approx(sum(expected) / len(expected), abs=1e-4)



def test_another_network_is_scored_in_eval_mode_and_left_as_it_was():
    """A network passed to evaluate() runs with batch norm's running statistics, not the pair's own."""
    pairs = validation_pairs()
    trainer = Trainer(make_model(), random_batches(), config(), validation_pairs=pairs, validation_border=2)
    torch.manual_seed(3)
    other = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 1, 3, padding=1))
    with torch.no_grad():
        other(torch.rand(8, 1, 8, 8) * 5)  # running statistics far from any one validation image's
        expected = [float(psnr(other.eval()(lr[None]).clamp(0, 1), hr[None], crop_border=2)) for lr, hr in pairs]
        in_training_mode = [float(psnr(copy.deepcopy(other).train()(lr[None]).clamp(0, 1), hr[None],
                                       crop_border=2)) for lr, hr in pairs]  # a copy: this updates its statistics
    assert abs(sum(expected) - sum(in_training_mode)) > 0.1  # the two modes differ here
    other.train()
    assert trainer.evaluate(model=other) == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert other.training and trainer.model.training  # both back as they were


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
        assert trainer.scaler.is_enabled() == (precision == "fp16")
        assert next(trainer.model.parameters()).device.type == "cuda"


def test_early_loss_jump_of_a_fresh_network_is_not_called_divergence():
    """A network that starts as bicubic has a tiny first loss; Adam's first steps may raise it 30x."""
    losses = iter([1e-5] + [3e-4] * 200)
    trainer = Trainer(make_model(), random_batches(), config(log_every=1))
    trainer.loss_function = lambda prediction, target: next(losses) + 0 * prediction.sum()
    history = trainer.train(steps=20)
    assert history.stop_reason == "steps", history.stop_message


def test_a_failed_call_puts_back_the_weights_it_started_from():
    """What a lesson shows: good weights, then a far too large learning rate for a few steps. The run
    diverges and the weights are those from before the failed call, not from its first steps."""
    trainer = Trainer(make_model(), random_batches(), config(log_every=10))
    trainer.train(steps=20)
    before = weights(trainer.model)
    trainer.config.learning_rate = 1e4
    with pytest.warns(DivergenceWarning, match="restored from step 20"):
        history = trainer.train(steps=30)
    assert history.stop_reason == "diverged"
    assert_same_weights(weights(trainer.model), before)


def test_nan_at_the_first_step_of_a_call_falls_back_to_the_copy_before():
    # The call starts from weights after 20 updates; a NaN at step 21 is the loss of those very
    # weights, so the guard goes back to the copy of the log point before (after 19 updates).
    trainer = Trainer(make_model(), random_batches(nan_at_step=21), config(log_every=10))
    trainer.train(steps=20)
    with pytest.warns(DivergenceWarning, match="at step 21 .* restored from step 19"):
        trainer.train(steps=10)
    reference = Trainer(make_model(), random_batches(), config(log_every=10))
    reference.train(steps=19)
    assert_same_weights(weights(trainer.model), weights(reference.model))
