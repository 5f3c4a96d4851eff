"""The live-training panel: its state without a browser, and its widgets driven as a user would.

Everything trains ESPCN on the tiny synthetic photos of conftest (LR patches of 8 pixels, batches
of 4), so each run takes a fraction of a second on a CPU.
"""

from __future__ import annotations

import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sr_teach.experiment import ExperimentConfig
from sr_teach.interpolation import resize
from sr_teach.metrics import psnr
from sr_teach.training import Callback, TrainConfig
from sr_teach.widgets.live_training import TrainingPanel, TrainingPanelView

widgets = pytest.importorskip("ipywidgets")


def tiny_config(tiny_images: dict[str, Path], **changes: object) -> ExperimentConfig:
    folder = str(next(iter(tiny_images.values())).parent)
    train = TrainConfig(loss="mse", learning_rate=1e-3, log_every=2, device="cpu", divergence_grace_steps=2)
    values = dict(model="espcn", scale=3, data=(folder,), patch_size=8, batch_size=4, validation_fraction=0.34,
                  augment="none", train=train)
    values.update(changes)
    return ExperimentConfig(**values)


@pytest.fixture
def panel(tiny_images: dict[str, Path]) -> TrainingPanel:
    return TrainingPanel(tiny_config(tiny_images), steps_per_run=6, points_per_run=3)


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the training thread"
        time.sleep(0.01)


def test_run_blocking_trains_in_chunks_and_reports(panel: TrainingPanel) -> None:
    history = panel.run_blocking()
    assert history.step == list(range(1, 7))
    assert history.validation_step == [0, 2, 4, 6]  # the starting point, then one per chunk
    assert not panel.running and panel.training.outcome == "finished"
    assert panel.message == ""  # a run that simply finished needs no words
    status = panel.status()
    assert "step 6" in status and "validation PSNR" in status and "bicubic" in status
    assert panel.plot_png().startswith(b"\x89PNG")


def test_bicubic_line_is_the_psnr_of_bicubic_enlargement(panel: TrainingPanel, tiny_images) -> None:
    experiment = panel.prepare()
    lr_image, hr_image = experiment.trainer.validation_pairs[0]
    expected = psnr(resize(lr_image, scale=3)[None], hr_image[None], crop_border=3)
    assert panel.bicubic_psnr == pytest.approx(float(expected), abs=1e-4)
    # a pre-upsampling model's validation input already is the bicubic enlargement
    pre = TrainingPanel(tiny_config(tiny_images, model="srcnn", model_options={"num_features": (8, 4)}))
    pre_input, pre_target = pre.prepare().trainer.validation_pairs[0]
    assert pre.bicubic_psnr == pytest.approx(float(psnr(pre_input[None], pre_target[None], crop_border=3)), abs=1e-4)
    assert pre.bicubic_psnr == pytest.approx(panel.bicubic_psnr, abs=1e-3)


def test_controls_write_the_panel_fields_and_start_nothing(panel: TrainingPanel) -> None:
    view = TrainingPanelView(panel)
    view.learning_rate.value = 1e-4
    view.batch_size.value = 8
    view.loss.value = "charbonnier"
    view.scale.value = 2
    view.steps.value = 40
    assert (panel.learning_rate, panel.batch_size, panel.loss, panel.scale, panel.steps_per_run) == (
        pytest.approx(1e-4), 8, "charbonnier", 2, 40
    )
    assert panel.experiment is None and not panel.running
    assert view.learning_rate.continuous_update is False and view.steps.continuous_update is False
    assert "sr-run-button" in view.run_button._dom_classes and view.run_button.description == "Run"
    assert "sr-stop-button" in view.stop_button._dom_classes and view.stop_button.description == "Stop"
    assert "sr-training-plot" in view.plot._dom_classes
    assert view.stop_button.disabled and not view.run_button.disabled


def test_run_button_trains_in_the_background_and_redraws(panel: TrainingPanel) -> None:
    view = TrainingPanelView(panel)
    empty_plot = view.plot.value
    view.steps.value = 10
    view.run_button.click()
    assert panel.wait(timeout=60)
    assert panel.experiment.trainer.step == 10
    assert view.plot.value != empty_plot
    assert "step 10" in view.status.value
    assert not view.run_button.disabled and view.stop_button.disabled


def test_stop_button_ends_a_long_run_early(panel: TrainingPanel) -> None:
    view = TrainingPanelView(panel)
    view.steps.value = 2000
    view.run_button.click()
    wait_for(lambda: panel.experiment is not None and panel.experiment.trainer.step >= 2)
    assert panel.running and not view.stop_button.disabled and view.run_button.disabled
    view.stop_button.click()
    assert panel.wait(timeout=60)
    assert panel.experiment.trainer.step < 2000
    assert "stopped at step" in view.status.value


def test_second_run_while_training_is_refused(panel: TrainingPanel) -> None:
    panel.steps_per_run = 2000
    panel.run()
    try:
        with pytest.raises(RuntimeError, match="already training"):
            panel.run()
        with pytest.raises(RuntimeError, match="already training"):
            panel.run_blocking(1)
    finally:
        panel.stop()
        assert panel.wait(timeout=60)


def test_divergence_is_shown_in_the_status_not_raised(tiny_images) -> None:
    # No grace steps: the weights the guard keeps are then checked at the full 10x threshold, so
    # they are good enough for a smaller rate to carry on from (in the grace steps the guard lets
    # through losses 100 times the best, and keeps the weights that gave them).
    config = tiny_config(tiny_images)
    panel = TrainingPanel(replace(config, train=replace(config.train, divergence_grace_steps=0)),
                          steps_per_run=6, points_per_run=3)
    view = TrainingPanelView(panel)
    view.learning_rate.value = 0.1  # the slider's top end: far too large for Adam
    view.steps.value = 200
    view.run_button.click()
    assert panel.wait(timeout=60)
    assert panel.error is None
    assert panel.history.stop_reason == "diverged"
    assert "loss became" in view.status.value and "try a smaller learning rate" in view.status.value
    assert "#b00020" in view.status.value  # shown in red
    # the PSNR shown is that of the restored weights, not of the broken ones
    assert panel.validation_psnr == pytest.approx(panel.experiment.trainer.evaluate(), abs=1e-6)
    # the restored weights still give a finite output, and a smaller rate carries on from them
    step_after_divergence = panel.experiment.trainer.step
    view.learning_rate.value = 1e-4
    view.steps.value = 10
    view.run_button.click()
    assert panel.wait(timeout=60)
    assert panel.experiment.trainer.step == step_after_divergence + 10
    assert torch.isfinite(torch.tensor(panel.history.loss[-5:])).all()


def test_kernel_interrupt_ends_the_whole_run_not_just_a_chunk(panel: TrainingPanel) -> None:
    class InterruptAtStep4(Callback):
        def on_log(self, trainer, record) -> None:
            if record.step == 4:
                signal.raise_signal(signal.SIGINT)  # what the kernel's interrupt button sends

    panel.prepare().trainer.callbacks.append(InterruptAtStep4())
    panel.run_blocking(20)
    assert panel.experiment.trainer.step == 4
    assert "interrupted" in panel.message and "interrupted" in panel.status()


def test_learning_rate_change_continues_the_same_run(panel: TrainingPanel) -> None:
    panel.run_blocking(4)
    experiment = panel.experiment
    panel.learning_rate = 3e-4
    assert not panel.needs_new_experiment
    panel.run_blocking(4)
    assert panel.experiment is experiment and experiment.trainer.step == 8
    assert experiment.history.learning_rate[-1] == pytest.approx(3e-4)
    assert experiment.history.learning_rate[0] == pytest.approx(1e-3)


def test_loss_or_batch_change_starts_a_new_run_and_keeps_the_old_curve(panel: TrainingPanel) -> None:
    panel.run_blocking(4)
    panel.loss = "l1"
    assert panel.needs_new_experiment and "next Run starts from fresh weights" in panel.status()
    panel.run_blocking(4)
    assert panel.experiment.trainer.step == 4
    assert panel.experiment.trainer.config.loss == "l1"
    assert [label for label, _ in panel.previous_runs] == ["espcn x3, batch 4, mse"]
    panel.batch_size = 8
    panel.run_blocking(2)
    assert panel.experiment.sampler.next_batch()[0].shape[0] == 8
    assert len(panel.previous_runs) == 2


def test_reset_starts_again_from_the_same_seeded_weights(panel: TrainingPanel) -> None:
    panel.run_blocking(4)
    first_losses = list(panel.history.loss)
    panel.reset()
    assert panel.experiment is None
    panel.run_blocking(4)
    assert panel.history.loss == pytest.approx(first_losses)


def test_a_bad_setting_is_shown_and_starts_nothing(panel: TrainingPanel) -> None:
    view = TrainingPanelView(panel)
    panel.learning_rate = -1.0  # no slider gives this, but a cell could
    view.run_button.click()
    assert not panel.running and panel.experiment is None
    assert "learning rate must be a positive" in view.status.value
    assert not view.run_button.disabled
    with pytest.raises(ValueError, match="learning rate"):
        panel.run_blocking()


def test_an_error_in_the_background_is_shown_not_lost(panel: TrainingPanel) -> None:
    class FailAtFirstLog(Callback):
        def on_log(self, trainer, record) -> None:
            raise OSError("the photos' disk went away")

    view = TrainingPanelView(panel)
    panel.prepare().trainer.callbacks.append(FailAtFirstLog())
    view.run_button.click()
    assert panel.wait(timeout=60)
    assert isinstance(panel.error, OSError)
    assert "training failed: OSError" in view.status.value and "#b00020" in view.status.value
    assert not view.run_button.disabled and view.stop_button.disabled


def test_model_dropdown_switches_architecture(tiny_images) -> None:
    config = tiny_config(tiny_images, model="srcnn", model_options={"num_features": (8, 4)})
    panel = TrainingPanel(config, steps_per_run=2, points_per_run=1, models=("srcnn", "vdsr"),
                          model_options={"vdsr": {"depth": 3, "num_features": 8}})
    view = TrainingPanelView(panel)
    assert view.model.layout.display != "none"
    view.model.value = "vdsr"
    panel.run_blocking()
    assert type(panel.experiment.model).__name__ == "VDSR" and panel.experiment.model.config.depth == 3


def test_show_displays_the_panel_once_with_a_static_copy_inside(panel: TrainingPanel, monkeypatch) -> None:
    """Jupyter renders the widget alone; the PNG and the status line are its fallback, not a second output."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **kwargs: shown.extend(objects))
    panel.run_blocking()
    view = panel.show()
    assert shown == [view]
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"] and bundle["text/plain"] == panel.status()

    shown.clear()
    assert panel.show(controls=False) is None
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)  # the plot; the status is printed


def test_degradation_sliders_set_the_damage_and_start_a_new_experiment(tiny_images) -> None:
    from sr_teach.degradations import DegradationConfig

    config = tiny_config(
        tiny_images, model="dncnn", scale=1, patch_size=16, model_options={"depth": 3, "num_features": 4},
        degradation=DegradationConfig(damage="holes", damage_options={"max_fraction": 0.25}, noise_sigma=10),
    )
    panel = TrainingPanel(config, steps_per_run=4, points_per_run=1,
                          degradation_sliders={"noise_sigma": (0, 75, 5), "max_fraction": (0.05, 0.5, 0.05)})
    view = TrainingPanelView(panel)
    assert view.scale.layout.display == "none"  # x1: nothing to choose
    assert {name: slider.value for name, slider in view.degradation.items()} == {"noise_sigma": 10, "max_fraction": 0.25}
    panel.run_blocking()
    assert "input" in panel.status() and "bicubic" not in panel.status()  # the line to beat is the damaged input
    view.degradation["noise_sigma"].value = 40
    view.degradation["max_fraction"].value = 0.5
    assert panel.needs_new_experiment
    built = panel.experiment_config().degradation
    assert built.noise_sigma == 40 and built.damage_options == {"max_fraction": 0.5} and built.damage == "holes"
    panel.run_blocking()
    assert "noise_sigma 10" in panel.previous_runs[-1][0] and "noise_sigma 40" in panel.label()
