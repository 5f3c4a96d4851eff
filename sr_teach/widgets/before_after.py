"""Before and after (lesson 07): bicubic against trained networks on a photo of your choice.

`BeforeAfter` holds the workbench: a picture (bundled, or uploaded), a scale, the models that can
enlarge it (trained in the notebook, or shipped pretrained), their results and PSNR table, and a
`TrainingRun` of ESPCN for the Train button. `BeforeAfterView` is its ipywidgets view, with a
`SwipeView` of bicubic | the chosen model.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from sr_teach.degradations import downscale, mod_crop
from sr_teach.evaluation import interpolation_upscaler
from sr_teach.experiment import Experiment, ExperimentConfig
from sr_teach.images import ImageError, decode_image, load_sample, sample_names
from sr_teach.inference import upscale
from sr_teach.metrics import protocol_psnr
from sr_teach.widgets.pictures import WidgetView
from sr_teach.widgets.swipe import SwipeComparison, SwipeView
from sr_teach.widgets.training_run import TrainingRun


@dataclass
class Picture:
    """The image a before-and-after comparison starts from."""

    name: str
    image: torch.Tensor  # (C, H, W) in [0, 1]
    # True: a good photo, shrunk to make the input, so the result can be measured against it.
    # False: the input itself (say a small photo of your own): enlarged as it is, no PSNR.
    is_ground_truth: bool = True
    note: str = ""  # what was done to it (cropped to keep things quick, ...)


@dataclass
class BeforeAfterResult:
    """Bicubic and every available model on one picture at one scale."""

    picture: str
    scale: int
    lr_image: torch.Tensor  # (C, h, w), the input
    outputs: dict[str, torch.Tensor]  # label -> (C, H, W); "bicubic" first
    hr_image: torch.Tensor | None  # (C, H, W) ground truth, when the input was made by shrinking
    psnr: dict[str, float] = field(default_factory=dict)  # label -> dB; empty without ground truth

    def table(self) -> str:
        """The PSNR of each result and its gain over bicubic, as plain text."""
        if not self.psnr:
            return (f"{self.picture} enlarged x{self.scale}: no ground truth (your image was the input), "
                    "so judge by eye")
        width = max(len(label) for label in self.psnr)
        baseline = self.psnr["bicubic"]
        lines = [f"{self.picture} x{self.scale}: PSNR against the original (Y channel, border {self.scale})",
                 f"{'method':<{width}}  {'PSNR (dB)':>9}  {'vs bicubic':>10}"]
        for label, value in self.psnr.items():
            gain = 0.0 if value == baseline else value - baseline  # identical images: inf - inf
            lines.append(f"{label:<{width}}  {value:9.2f}  {gain:+10.2f}")
        return "\n".join(lines)


@dataclass
class TrainedModel:
    """A model that can enter the comparison, and the scales it enlarges by (None: any)."""

    model: nn.Module
    scales: tuple[int, ...] | None


def espcn_config(scale: int) -> ExperimentConfig:
    """The quick model of lesson 07: ESPCN learning only what bicubic misses (a global residual).

    Seed 2 holds out astronaut.png, as lessons 03 and 04 do (seed 0 would hold out rocket.jpg,
    a JPEG night scene whose score misleads).
    """
    return ExperimentConfig(model="espcn", scale=scale, model_options={"global_residual": True}, seed=2)


class BeforeAfter:
    """Lesson 07's workbench: a picture, a scale, the models that can enlarge it, and their results.

    models: label -> TrainedModel (or an nn.Module, whose own `scales` are used).
    held_out: names of bundled photos no model trained on; the others are marked "seen in
        training" in the table, since a score on a training photo flatters the model.
    max_output_side: bigger pictures are cropped around their centre so the result is at most this
        many pixels a side, which keeps every comparison under a second or so on a laptop.
    training_seconds, training_data, training_chunks: the Train button's run: its length, its HR
        folders (empty: the bundled photos) and how many progress updates it gives.
    """

    def __init__(
        self,
        models: Mapping[str, TrainedModel | nn.Module] | None = None,
        sample: str = "rocket",
        scale: int = 3,
        scales: Sequence[int] = (2, 3, 4),
        held_out: Sequence[str] | None = None,
        max_output_side: int = 768,
        training_seconds: float = 60.0,
        training_data: Sequence[str] = (),
        training_chunks: int = 20,
    ) -> None:
        self.models: dict[str, TrainedModel] = {}
        for label, model in (models or {}).items():
            self.add_model(label, model)
        self.scales = tuple(scales)
        self.scale = scale
        self.held_out = None if held_out is None else set(held_out)
        self.max_output_side = max_output_side
        self.training_seconds = training_seconds
        self.training_data = tuple(training_data)
        self.training_chunks = training_chunks
        self.training: TrainingRun | None = None
        self.message = ""
        self.result: BeforeAfterResult | None = None
        self.picture = self._sample_picture(sample)
        self.set_scale(scale)

    # --- choices
    def add_model(self, label: str, model: TrainedModel | nn.Module) -> None:
        if isinstance(model, nn.Module):
            model = TrainedModel(model, getattr(model, "scales", None))
        self.models[label] = model

    def models_for(self, scale: int | None = None) -> list[str]:
        """Labels of the models that enlarge by `scale` (default: the chosen scale)."""
        scale = scale or self.scale
        return [label for label, entry in self.models.items() if entry.scales is None or scale in entry.scales]

    def set_scale(self, scale: int) -> None:
        if scale not in self.scales:
            raise ValueError(f"scale must be one of {self.scales}, not {scale!r}")
        self.scale = int(scale)

    def choose_sample(self, name: str) -> None:
        """Use a bundled photo (shrunk to make the input, so PSNR can be measured)."""
        self.picture = self._sample_picture(name)
        self.message = self.picture.note

    def choose_upload(self, content: bytes, filename: str = "upload", is_ground_truth: bool = True) -> bool:
        """Use an uploaded image file. On a bad file, keep the current picture, explain, return False.

        is_ground_truth=True shrinks it first so the result can be measured; False enlarges it as it
        is (your own small photo), with no PSNR.
        """
        try:
            image = decode_image(bytes(content))
        except ImageError as error:  # says "it is not an image Pillow can read", "it could not be decoded..."
            self.message = f"Could not use {filename!r}: {error}. Try a PNG or JPEG photo."
            return False
        self.picture = Picture(filename, image, is_ground_truth, note=f"using your image {filename!r}")
        self.message = self.picture.note
        return True

    def set_ground_truth(self, is_ground_truth: bool) -> None:
        """Shrink the picture first (True, measurable) or enlarge it as it is (False)."""
        self.picture = replace(self.picture, is_ground_truth=is_ground_truth)

    # --- results
    def run(self) -> BeforeAfterResult | None:
        """Enlarge the picture with bicubic and every model for the scale. None (and a message) if it
        cannot be done, e.g. a picture too small for the scale."""
        scale = self.scale
        problem = self._size_problem(scale)
        if problem:
            self.message, self.result = problem, None
            return None
        image, cropped = self._fit(self.picture.image, scale)
        if self.picture.is_ground_truth:
            hr_image = mod_crop(image, scale)
            lr_image = downscale(hr_image, scale)
        else:
            hr_image, lr_image = None, image
        outputs = {"bicubic": interpolation_upscaler("bicubic")(lr_image, scale)}
        for label in self.models_for(scale):
            outputs[label] = upscale(self.models[label].model, lr_image, scale)
        scores = {label: float(protocol_psnr(output, hr_image, scale)) for label, output in outputs.items()} if (
            hr_image is not None) else {}
        name = self.picture.name
        if self.held_out is not None and name in sample_names():
            name += " (held out)" if name in self.held_out else " (seen in training)"
        self.result = BeforeAfterResult(name, scale, lr_image, outputs, hr_image, scores)
        notes = [self.picture.note] if self.picture.note else []
        if cropped:
            side = max(image.shape[-2:]) * (1 if self.picture.is_ground_truth else scale)
            notes.append(f"cropped around the centre to at most {side} pixels a side, to stay quick")
        if len(outputs) == 1:
            notes.append(f"no model for x{scale} yet: train one with the button")
        self.message = "; ".join(notes)
        return self.result

    def swipe(self, label: str | None = None, **options) -> SwipeComparison:
        """Bicubic | `label` (default: the first model) for the last `run`."""
        if self.result is None:
            raise ValueError("nothing to compare yet: call run() first")
        outputs = self.result.outputs
        label = label or next((name for name in outputs if name != "bicubic"), "bicubic")
        return SwipeComparison(outputs["bicubic"], outputs[label], "bicubic", label,
                               reference=self.result.hr_image, **options)

    # --- training
    def start_training(self, seconds: float | None = None, steps: int | None = None) -> TrainingRun:
        """A run of ESPCN at the chosen scale, ready to `start()` (in the background) or `run_blocking()`.

        Its trainer raises on divergence, which the run turns into a message instead of a warning.
        """
        if self.training is not None and self.training.running:
            raise RuntimeError("a training run is still going: stop() it or wait() for it first")
        config = espcn_config(self.scale)
        config = replace(config, data=self.training_data, train=replace(config.train, raise_on_divergence=True))
        self.training = TrainingRun(Experiment(config), steps=steps, seconds=seconds or self.training_seconds,
                                    chunks=self.training_chunks)
        return self.training

    def finish_training(self) -> str:
        """Put the best-on-validation weights of the ended run into its model, add the model to the
        comparison, and return its label."""
        training = self.training
        if training is None or training.outcome is None:
            raise RuntimeError("no training run has ended yet: start_training(), then wait for the run")
        experiment = training.experiment
        if experiment.trainer.best_state is not None:
            experiment.trainer.restore_best_state()  # the weights that did best on the held-out photo
        label = f"ESPCN x{experiment.config.scale} (trained here)"
        self.add_model(label, experiment.model)
        if self.held_out is None:
            self.held_out = {path.stem for path in experiment.validation_paths}
        return label

    def training_progress(self) -> str:
        """The run so far in words: steps, seconds of its budget, the latest validation PSNR."""
        training = self.training
        if training is None:
            return ""
        trainer = training.experiment.trainer
        text = f"step {trainer.step}, {training.seconds_done:.0f} of {training.seconds:g} s"
        if trainer.history.validation_psnr:
            text += f", validation PSNR {trainer.history.validation_psnr[-1]:.2f} dB"
        return text

    # --- helpers
    def _sample_picture(self, name: str) -> Picture:
        if name not in sample_names():
            raise ValueError(f"no bundled photo {name!r}; choose one of {', '.join(sample_names())}")
        return Picture(name, load_sample(name), is_ground_truth=True)

    def _size_problem(self, scale: int) -> str:
        height, width = self.picture.image.shape[-2:]
        smallest = 16 * scale if self.picture.is_ground_truth else 16
        if min(height, width) < smallest:
            what = "shrink it" if self.picture.is_ground_truth else "enlarge it"
            return (f"{self.picture.name} is {width}x{height} pixels: too small to {what} at x{scale} "
                    f"(needs at least {smallest} pixels a side)")
        return ""

    def _fit(self, image: torch.Tensor, scale: int) -> tuple[torch.Tensor, bool]:
        """Crop around the centre so the output is at most max_output_side pixels a side."""
        limit = self.max_output_side if self.picture.is_ground_truth else max(16, self.max_output_side // scale)
        height, width = image.shape[-2:]
        if height <= limit and width <= limit:
            return image, False
        new_height, new_width = min(height, limit), min(width, limit)
        top, left = (height - new_height) // 2, (width - new_width) // 2
        return image[:, top : top + new_height, left : left + new_width], True



class BeforeAfterView(WidgetView):
    """Widgets for lesson 07: picture, upload, scale, model, Train/Stop, the table and the swipe.

    Train starts the workbench's TrainingRun in a background thread, so Stop can be clicked and the
    other controls keep working; the status line follows its progress. When it ends, the
    best-on-validation weights join the comparison.
    """

    def __init__(self, state: BeforeAfter) -> None:
        import ipywidgets as widgets

        self.state = state
        self.picture = widgets.Dropdown(options=sample_names(), description="Photo")
        if state.picture.name in sample_names():
            self.picture.value = state.picture.name
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your image")
        self.use_as = widgets.ToggleButtons(
            options=[("shrink it, then enlarge (PSNR)", True), ("enlarge it as it is", False)],
            value=state.picture.is_ground_truth, description="Use as",
            style={"description_width": "initial", "button_width": "auto"},  # whole labels, never cut
        )
        self.scale = widgets.ToggleButtons(options=[(f"x{s}", s) for s in state.scales], value=state.scale,
                                           description="Scale")
        self.model = widgets.Dropdown(description="Model")
        self.train_button = widgets.Button(description="Train ESPCN", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.swipe_view: SwipeView | None = None
        self.swipe_box = widgets.VBox()

        self.picture.observe(self._on_picture, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.use_as.observe(self._on_use_as, names="value")
        self.scale.observe(self._on_scale, names="value")
        self.model.observe(self._on_model, names="value")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.widget = widgets.VBox([
            widgets.HBox([self.picture, self.upload]), self.use_as, self.scale,
            widgets.HBox([self.model, self.train_button, self.stop_button]),
            self.status, self.table, self.swipe_box,
        ])
        self.rerun()

    # --- events
    def _on_picture(self, change: dict) -> None:
        self.state.choose_sample(change["new"])
        if not self.use_as.value:
            self.use_as.value = True  # a bundled photo is ground truth; _on_use_as reruns
            return
        self.rerun()

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[-1]
        if self.state.choose_upload(upload["content"], upload["name"], is_ground_truth=self.use_as.value):
            self.rerun()
        else:
            self._show_status()

    def _on_use_as(self, change: dict) -> None:
        self.state.set_ground_truth(change["new"])
        self.rerun()

    def _on_scale(self, change: dict) -> None:
        self.state.set_scale(change["new"])
        self.rerun()

    def _on_model(self, change: dict) -> None:
        if change["new"] is not None and self.state.result is not None:
            self._show_swipe()

    def _on_train(self, _button: Any = None) -> None:
        if self.state.training is not None and self.state.training.running:
            return  # already training
        try:
            training = self.state.start_training()
        except (OSError, ValueError, RuntimeError) as error:  # say it on screen: a click has nobody to raise to
            self.status.value = _escape(f"cannot train: {error}")
            return
        training.add_listener(self._on_training_progress)
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"training ESPCN at x{training.experiment.config.scale}..."
        training.start()

    def _on_stop(self, _button: Any = None) -> None:
        if self.state.training is not None:
            self.state.training.stop()

    def _on_training_progress(self, training: TrainingRun) -> None:
        """Called from the training thread after each chunk, and once when the run has ended."""
        if training.running:
            self._show_status()
            return
        label = None if training.outcome == "failed" else self.state.finish_training()
        self.train_button.disabled, self.stop_button.disabled = False, True
        if label is not None:
            self.rerun(select=label)
        summary = f"{training.message} ({self.state.training_progress()})"
        self.status.value = "<br>".join(_escape(text) for text in (summary, self.state.message) if text)

    # --- drawing
    def rerun(self, select: str | None = None) -> None:
        """Recompute the comparison for the current choices and redraw the table and the swipe."""
        self.train_button.description = f"Train ESPCN x{self.state.scale}"
        result = self.state.run()
        self._show_status()
        if result is None:
            self.table.value = ""
            self.model.options = []
            self.swipe_box.children = []
            return
        self.table.value = f"<pre>{_escape(result.table())}</pre>"
        labels = [label for label in result.outputs if label != "bicubic"]
        self.model.unobserve(self._on_model, names="value")
        self.model.options = labels
        self.model.value = select if select in labels else (labels[0] if labels else None)
        self.model.observe(self._on_model, names="value")
        self._show_swipe()

    def _show_swipe(self) -> None:
        result = self.state.result
        comparison = self.state.swipe(self.model.value)
        if self.swipe_view is None:
            self.swipe_view = SwipeView(comparison, scores=result.psnr)
        else:
            self.swipe_view.set_comparison(comparison, scores=result.psnr)
        self.swipe_box.children = [self.swipe_view.widget]

    def _show_status(self) -> None:
        training = self.state.training
        if training is not None and training.running:
            scale = training.experiment.config.scale
            self.status.value = _escape(f"training ESPCN x{scale}: {self.state.training_progress()}")
        else:
            self.status.value = _escape(self.state.message)


def _escape(text: str) -> str:
    """Text for an HTML widget: a file name or a message shows as written."""
    return html.escape(text, quote=False)
