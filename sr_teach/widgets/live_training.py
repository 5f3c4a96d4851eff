"""Train a network live in a notebook: a few controls, a loss / PSNR plot that grows, a Stop button.

`TrainingPanel` is plain Python: the settings the controls change, the `Experiment` they build, its
`TrainingRun` (chunks, each ending with a validation and a redraw), the plot (PNG bytes) and a status
line; it runs and is tested without a browser. `TrainingPanelView` is a thin ipywidgets view of it.

    panel = TrainingPanel(ExperimentConfig(model="srcnn", scale=3, patch_size=11), steps_per_run=300)
    panel.run_blocking()   # train here and now (what a notebook does for its saved, static figure)
    panel.show()           # the live controls where widgets can be displayed, else that figure

The Run button trains in a background thread (see `TrainingRun`), so Stop can be clicked.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any


from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.losses import LOSSES
from sr_teach.training import History
from sr_teach.widgets.training_plot import plot_training
from sr_teach.widgets.training_run import TrainingRun

SCALES = (2, 3, 4)  # the scale dropdown's choices (and the config's own: 1 for restoration)
DEGRADATION_FIELDS = ("blur_sigma", "noise_sigma", "jpeg_quality")  # sliders that set a DegradationConfig field
BATCH_SIZES = (4, 8, 16, 32, 64)  # the batch-size dropdown's choices
LEARNING_RATE_EXPONENTS = (-5.0, -1.0)  # the log slider spans 1e-5 ... 1e-1: both failure modes fit
MAX_PREVIOUS_RUNS = 3  # finished runs kept on the PSNR plot for comparison


class TrainingPanel:
    """The state behind a live-training panel: settings, the experiment they build, and its progress.

    config: the experiment to train (model, scale, patch size, data, ...); the panel's fields start
        from it. Its train.validation_every is ignored: the panel validates after every chunk.
    steps_per_run: how many steps one Run trains.
    points_per_run: chunks per run, each ending with a validation PSNR point and a redraw of the plot.
    models: names for the model dropdown (default: just config.model).
    model_options: per model name, its keyword arguments (default: config.model_options for config.model).
    degradation_sliders: sliders for the damage, {name: (low, high, step)}: a DegradationConfig field
        (noise_sigma, jpeg_quality) or an option of its damage (max_fraction of holes, count of scratches);
        they start at config.degradation's values.

    What a change of setting does: the learning rate applies to the next Run, which carries on from
    the current weights (after a divergence, lower it and continue from the restored weights). The
    model, the scale, the batch size and the loss define a new experiment: the next Run starts from
    fresh (seeded) weights, and the old run stays on the PSNR plot in grey. (A new loss also changes
    the scale of the loss curve and of the divergence check, so continuing with it would compare
    numbers that mean different things.)
    """

    def __init__(
        self,
        config: ExperimentConfig | None = None,
        *,
        steps_per_run: int = 200,
        points_per_run: int = 20,
        models: Sequence[str] | None = None,
        model_options: Mapping[str, Mapping[str, Any]] | None = None,
        degradation_sliders: Mapping[str, tuple[float, float, float]] | None = None,
    ) -> None:
        self.base_config = config if config is not None else ExperimentConfig()
        self.models = tuple(models) if models else (self.base_config.model,)
        self.model_options = {self.base_config.model: dict(self.base_config.model_options)}
        self.model_options.update({name: dict(options) for name, options in (model_options or {}).items()})
        # The fields the controls set (read when a Run starts).
        self.model: str = self.base_config.model
        self.scale: int = self.base_config.scale
        self.learning_rate: float = self.base_config.train.learning_rate
        self.batch_size: int = self.base_config.batch_size
        self.loss: str = self.base_config.train.loss if isinstance(self.base_config.train.loss, str) else "mse"
        self.steps_per_run: int = steps_per_run
        self.points_per_run = points_per_run
        self.degradation_sliders = dict(degradation_sliders or {})
        degradation = self.base_config.degradation
        self.degradation: dict[str, float] = {  # the sliders' values, read when a Run starts
            name: getattr(degradation, name) if name in DEGRADATION_FIELDS else degradation.damage_options[name]
            for name in self.degradation_sliders
        }

        self.experiment: Experiment | None = None
        self.training: TrainingRun | None = None  # the latest run
        self.previous_runs: list[tuple[str, History]] = []  # (label, history) of replaced experiments
        self.message = ""  # why the last run ended, when that needs saying (diverged, stopped, failed)
        self._built_key: tuple | None = None
        self._bicubic_psnr: float | None = None
        self._listeners: list[Callable[[TrainingPanel], None]] = []

    # ----------------------------------------------------------------------------------- settings
    def _key(self) -> tuple:
        """The settings that define an experiment; changing any of them starts a new one."""
        return (self.model, self.scale, self.batch_size, self.loss, tuple(self.degradation.items()))

    @property
    def needs_new_experiment(self) -> bool:
        """True when the next Run will start from fresh weights (nothing built yet, or settings changed)."""
        return self.experiment is None or self._built_key != self._key()

    def experiment_config(self) -> ExperimentConfig:
        """The ExperimentConfig the current settings describe."""
        base = self.base_config
        if self.model not in self.models:
            raise ValueError(f"model {self.model!r} is not one of this panel's models {self.models}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        train = replace(
            base.train, learning_rate=self._checked_learning_rate(), loss=self.loss,
            validation_every=None, raise_on_divergence=True,
        )
        extra_scales = base.extra_scales if self.model == base.model else ()
        fields = {name: value for name, value in self.degradation.items() if name in DEGRADATION_FIELDS}
        options = {name: value for name, value in self.degradation.items() if name not in DEGRADATION_FIELDS}
        degradation = replace(base.degradation, **fields, damage_options={**base.degradation.damage_options, **options})
        return replace(
            base, model=self.model, scale=int(self.scale), batch_size=int(self.batch_size),
            extra_scales=extra_scales, model_options=dict(self.model_options.get(self.model, {})), train=train,
            degradation=degradation,
        )

    def _checked_learning_rate(self) -> float:
        learning_rate = float(self.learning_rate)
        if not (learning_rate > 0 and math.isfinite(learning_rate)):
            raise ValueError(f"the learning rate must be a positive number, not {self.learning_rate!r}")
        return learning_rate

    def label(self) -> str:
        """The current settings in a few words, e.g. for a plot's legend."""
        settings = "".join(f", {name} {value:g}" for name, value in self.degradation.items())
        return f"{self.model} x{self.scale}{settings}, lr {self.learning_rate:.0e}, batch {self.batch_size}, {self.loss}"

    # ----------------------------------------------------------------------------------- training
    @property
    def running(self) -> bool:
        return self.training is not None and self.training.running

    @property
    def error(self) -> BaseException | None:
        """What the last background run raised, if anything."""
        return self.training.error if self.training is not None else None

    @property
    def history(self) -> History:
        return self.experiment.history if self.experiment is not None else History()

    def reset(self) -> None:
        """Forget the current experiment: the next Run starts from fresh weights."""
        self._refuse_while_running()
        self._retire_experiment()
        self.training, self.message = None, ""
        self._notify()

    def prepare(self) -> Experiment:
        """Build the experiment if the settings call for a new one, and apply the learning rate."""
        self._refuse_while_running()
        if self.needs_new_experiment:
            config = self.experiment_config()  # checks the settings before the old run is retired
            self._retire_experiment()
            self.experiment = Experiment(config)
            self._built_key = self._key()
        # The trainer reads its config's learning rate at every step, so this takes effect now.
        self.experiment.trainer.config.learning_rate = self._checked_learning_rate()
        return self.experiment

    def _refuse_while_running(self) -> None:
        if self.running:
            raise RuntimeError("the panel is already training; wait() for it or stop() it first")

    def _retire_experiment(self) -> None:
        if self.experiment is not None and self.experiment.history.step:
            self.previous_runs.append((self._built_label, self.experiment.history))
            del self.previous_runs[:-MAX_PREVIOUS_RUNS]
        self.experiment, self._built_key, self._bicubic_psnr = None, None, None

    @property
    def _built_label(self) -> str:
        model, scale, batch_size, loss, degradation = self._built_key
        settings = "".join(f", {name} {value:g}" for name, value in degradation)
        return f"{model} x{scale}{settings}, batch {batch_size}, {loss}"

    def run_blocking(self, steps: int | None = None) -> History:
        """Train `steps` (default steps_per_run) more steps here, returning when done or stopped.

        A divergence does not raise: the trainer restores the last good weights and `message` says
        what happened. Other errors (a bad setting, say) raise as usual.
        """
        return self._new_run(steps).run_blocking()

    def run(self, steps: int | None = None) -> threading.Thread:
        """Start training `steps` steps in a background thread and return at once (the Run button).

        The experiment is built first, here (so a bad setting raises here); then the kernel stays
        free, so Stop works and other cells run. Call `wait()` to block until it is done.
        """
        return self._new_run(steps).start()

    def _new_run(self, steps: int | None) -> TrainingRun:
        steps = self.steps_per_run if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        experiment = self.prepare()  # refuses while a run trains
        self.message = ""
        self.training = TrainingRun(experiment, steps=steps, chunks=max(1, self.points_per_run))
        self.training.add_listener(self._on_progress)
        return self.training

    def _on_progress(self, training: TrainingRun) -> None:
        if training.outcome not in (None, "finished"):
            self.message = training.message
        self._notify()

    def stop(self) -> None:
        """Ask the running training to end after its current step."""
        if self.training is not None:
            self.training.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background run has finished; False if `timeout` seconds passed first."""
        return self.training.wait(timeout) if self.training is not None else True

    # ------------------------------------------------------------------------------- reporting
    def add_listener(self, listener: Callable[[TrainingPanel], None]) -> None:
        """Call `listener(panel)` whenever the progress changes (after each chunk, at start and end)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self)

    @property
    def validation_psnr(self) -> float | None:
        """The latest validation PSNR (dB), or None before the first validation."""
        values = self.history.validation_psnr
        return values[-1] if values else None

    @property
    def baseline(self) -> str:
        """What the line to beat is: bicubic enlargement, or at x1 (restoration) the damaged input itself."""
        return "input" if int(self.scale) == 1 else "bicubic"

    @property
    def bicubic_psnr(self) -> float | None:
        """The validation PSNR of plain bicubic enlargement (at x1: of the input): the line a network must rise above."""
        if self._bicubic_psnr is None and self.experiment is not None and self.experiment.trainer.validation_pairs:
            self._bicubic_psnr = self.experiment.bicubic_psnr()
        return self._bicubic_psnr

    def status(self) -> str:
        """One line: step, recent loss, validation PSNR against bicubic, and any message."""
        if self.experiment is None:
            text = f"{self.label()}: not trained yet, press Run"
            return text + (f" | {self.message}" if self.message else "")
        history = self.history
        parts = [f"step {self.experiment.trainer.step}"]
        if history.loss:
            recent = [value for value in history.loss[-10:] if math.isfinite(value)]
            if recent:
                parts.append(f"loss {sum(recent) / len(recent):.4g}")
        if self.validation_psnr is not None:
            text = f"validation PSNR {self.validation_psnr:.2f} dB"
            if self.bicubic_psnr is not None:
                text += (f" ({self.baseline} {self.bicubic_psnr:.2f} dB, "
                         f"{self.validation_psnr - self.bicubic_psnr:+.2f} dB)")
            parts.append(text)
        if self.running:
            parts.append("training...")
        elif self.needs_new_experiment:
            parts.append("settings changed: the next Run starts from fresh weights")
        if self.message:
            parts.append(self.message)
        return " | ".join(parts)

    def figure(self, width: float = 8.0, height: float = 2.8, dpi: int = 72) -> Any:
        """The loss and validation-PSNR curves as a matplotlib Figure (made without pyplot, so any thread may draw)."""
        return plot_training(
            self.history, bicubic_psnr=self.bicubic_psnr, previous_runs=self.previous_runs,
            label=self.label(), width=width, height=height, dpi=dpi, baseline=self.baseline,
        )

    def plot_png(self, dpi: int = 72) -> bytes:
        """The figure as PNG bytes, for an ipywidgets.Image."""
        buffer = io.BytesIO()
        self.figure(dpi=dpi).savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def show(self, controls: bool = True) -> TrainingPanelView | None:
        """Display the panel once: where ipywidgets are installed (and with `controls`) the live view,
        which it returns; its plot and status line follow every run, and viewers that cannot run
        widgets (GitHub) show the plot saved with it instead. Otherwise the plot as a plain image
        and the status line."""
        from IPython.display import Image, display

        from sr_teach.lessons import widgets_available

        if controls and widgets_available():
            view = TrainingPanelView(self)
            display(view)
            return view
        display(Image(data=self.plot_png()))
        print(self.status())
        return None


class TrainingPanelView:
    """ipywidgets controls for a TrainingPanel; `view.widget` is what to display.

    Controls write the panel's fields and start no work; Run, Stop and Reset call its methods. The
    plot is an ipywidgets.Image of PNG bytes (CSS class sr-training-plot), the buttons carry the
    classes sr-run-button, sr-stop-button and sr-reset-button for browser tests.
    """

    redraw_interval = 0.3  # seconds: redraw the plot at most this often while training (drawing costs time)

    def __init__(self, panel: TrainingPanel) -> None:
        import ipywidgets as widgets

        self.panel = panel
        self.model = widgets.Dropdown(options=list(panel.models), value=panel.model, description="model")
        if len(panel.models) < 2:
            self.model.layout.display = "none"
        self.scale = widgets.Dropdown(options=sorted({*SCALES, panel.scale}), value=panel.scale, description="scale")
        if panel.scale == 1:  # restoration keeps the size: nothing to choose
            self.scale.layout.display = "none"
        self.degradation = {
            name: (widgets.IntSlider if all(float(number).is_integer() for number in (*limits, panel.degradation[name]))
                   else widgets.FloatSlider)(
                value=panel.degradation[name], min=limits[0], max=limits[1], step=limits[2], description=name,
                continuous_update=False, style={"description_width": "initial"})
            for name, limits in panel.degradation_sliders.items()
        }
        low, high = LEARNING_RATE_EXPONENTS
        self.learning_rate = widgets.FloatLogSlider(
            value=panel.learning_rate, base=10, min=low, max=high, step=0.25, description="learning rate",
            readout_format=".1e", continuous_update=False, style={"description_width": "initial"},
        )
        self.batch_size = widgets.Dropdown(
            options=sorted({*BATCH_SIZES, panel.batch_size}), value=panel.batch_size, description="batch size",
            style={"description_width": "initial"},
        )
        self.loss = widgets.Dropdown(options=list(LOSSES), value=panel.loss, description="loss")
        self.steps = widgets.IntSlider(
            value=panel.steps_per_run, min=min(10, panel.steps_per_run), max=max(2000, panel.steps_per_run), step=10,
            description="steps/run", continuous_update=False, style={"description_width": "initial"},
        )
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play",
                                         tooltip="train steps/run more steps")
        self.run_button.add_class("sr-run-button")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                          tooltip="stop after the current step")
        self.stop_button.add_class("sr-stop-button")
        self.reset_button = widgets.Button(description="Reset", icon="undo", tooltip="start again from fresh weights")
        self.reset_button.add_class("sr-reset-button")
        self.plot = widgets.Image(value=panel.plot_png(), format="png")
        self.plot.add_class("sr-training-plot")
        self.status = widgets.HTML()
        self.status.add_class("sr-training-status")

        bindings = {self.model: "model", self.scale: "scale", self.learning_rate: "learning_rate",
                    self.batch_size: "batch_size", self.loss: "loss", self.steps: "steps_per_run"}
        for control, field_name in bindings.items():
            control.observe(self._setter(field_name), names="value")
        for name, slider in self.degradation.items():
            slider.observe(self._degradation_setter(name), names="value")
        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(lambda button: panel.stop())
        self.reset_button.on_click(self._on_reset)
        panel.add_listener(self._on_progress)
        self._drawn_at = 0.0

        self.widget = widgets.VBox([
            widgets.HBox([self.model, self.scale, self.loss]),
            widgets.HBox([self.learning_rate, self.batch_size, self.steps]),
            widgets.HBox(list(self.degradation.values())),
            widgets.HBox([self.run_button, self.stop_button, self.reset_button]),
            self.plot,
            self.status,
        ])
        self.refresh()

    def _setter(self, field_name: str) -> Callable[[dict], None]:
        def set_field(change: dict) -> None:
            setattr(self.panel, field_name, change["new"])
            self.refresh(redraw=False)
        return set_field

    def _degradation_setter(self, name: str) -> Callable[[dict], None]:
        def set_value(change: dict) -> None:
            self.panel.degradation[name] = change["new"]
            self.refresh(redraw=False)
        return set_value

    def _on_run(self, button: Any = None) -> None:
        if self.panel.running:
            return  # a second click while training: nothing to do
        if self.panel.needs_new_experiment:
            self.status.value = "preparing the data..."  # sent to the browser now: building takes a second
        try:
            self.panel.run()
        except (RuntimeError, ValueError) as error:
            self.panel.message = str(error)
        self.refresh(redraw=False)

    def _on_reset(self, button: Any = None) -> None:
        if not self.panel.running:
            self.panel.reset()

    def _on_progress(self, panel: TrainingPanel) -> None:
        now = time.perf_counter()
        finished = not panel.running
        self.refresh(redraw=finished or now - self._drawn_at >= self.redraw_interval)

    def refresh(self, redraw: bool = True) -> None:
        """Bring the plot, the status line and the buttons up to date with the panel."""
        panel = self.panel
        if redraw:
            self.plot.value = panel.plot_png()
            self._drawn_at = time.perf_counter()
        text = panel.status()
        failed = panel.training is not None and panel.training.outcome in ("diverged", "failed")
        colour = "#b00020" if failed else "inherit"
        self.status.value = f'<span style="color: {colour}">{html.escape(text)}</span>'
        self.run_button.disabled = panel.running
        self.reset_button.disabled = panel.running
        self.stop_button.disabled = not panel.running

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The live widget, with the current plot and status as the static copy: Jupyter renders the
        widget alone, a viewer that cannot run widgets (GitHub) the PNG, a terminal the text."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["image/png"] = base64.b64encode(self.plot.value).decode("ascii")
        bundle["text/plain"] = self.panel.status()
        return bundle

