"""The gradient-descent playground (lesson 05): pick a surface, an optimizer and a learning rate; see the path.

`DescentPlayground` is the state (settings in, a `Trajectory`, its message and a figure out) and
`DescentPlaygroundView` the sliders and dropdowns bound to it. The surfaces, the optimizers and
the diagnosis live in `sr_teach.widgets.descent`.

    playground = DescentPlayground()
    playground.update(learning_rate=3.0)
    playground.trajectory.status, playground.message    # ("diverged", "diverged: ...")
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from sr_teach.widgets.descent import (
    OPTIMIZERS,
    SURFACES,
    Surface,
    Trajectory,
    build_surface,
    descend,
    plot_loss_curves,
    plot_surface,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class PlaygroundSettings:
    """What the playground's controls set; each field is one widget."""

    surface: str = "quadratic bowl"  # a key of SURFACES
    optimizer: str = "gradient descent"  # a key of OPTIMIZERS
    learning_rate: float = 1.0  # the step size: try it below, near and above 2/L
    momentum: float = 0.9  # SGD momentum or Adam's beta1 (unused by plain gradient descent)
    steps: int = 50  # how many updates to take
    condition_number: float = 10.0  # the quadratic bowl's L / mu: how elongated its valley is


class DescentPlayground:
    """The playground's state: settings in, a trajectory, a message and a figure out. No widgets here."""

    def __init__(self, settings: PlaygroundSettings | None = None) -> None:
        self.settings = settings if settings is not None else PlaygroundSettings()
        self.trajectory: Trajectory = self.run()

    @property
    def surface(self) -> Surface:
        return build_surface(self.settings.surface, self.settings.condition_number)

    def update(self, **changes: float | int | str) -> Trajectory:
        """Change some settings and run again. A new surface brings its own default learning rate
        unless one is given too (Rosenbrock needs 1000 times less than the bowl)."""
        known = {field.name for field in fields(PlaygroundSettings)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; the playground has {sorted(known)}")
        new_surface = "surface" in changes and changes["surface"] != self.settings.surface
        self.settings = replace(self.settings, **changes)
        if new_surface and "learning_rate" not in changes:
            self.settings.learning_rate = self.surface.learning_rate
        return self.run()

    def run(self) -> Trajectory:
        settings = self.settings
        self.trajectory = descend(
            self.surface, settings.optimizer, settings.learning_rate, settings.steps, settings.momentum
        )
        return self.trajectory

    @property
    def message(self) -> str:
        return self.trajectory.message

    def figure(self, dpi: int = 72) -> Figure:
        """The contour plot with the trajectory, and the loss curve beside it (a matplotlib Figure)."""
        from matplotlib.figure import Figure  # not pyplot: no global state, no inline display

        surface, settings = self.surface, self.settings
        figure = Figure(figsize=(9, 3.8), dpi=dpi, layout="constrained")
        contour_ax, loss_ax = figure.subplots(1, 2)
        plot_surface(surface, contour_ax, [self.trajectory])
        title = f"{surface.name}: {settings.optimizer}, lr {settings.learning_rate:.3g}"
        contour_ax.set_title(title, fontsize=9)
        plot_loss_curves(surface, loss_ax, [self.trajectory])
        loss_ax.set_title(self.trajectory.status, fontsize=9)
        return figure

    def png(self, dpi: int = 72) -> bytes:
        """The figure as PNG bytes, for an ipywidgets.Image."""
        buffer = io.BytesIO()
        self.figure(dpi).savefig(buffer, format="png")
        return buffer.getvalue()


# -------------------------------------------------------------------------- playground (view)

_STATUS_COLOURS = {
    "converged": "green", "overshooting": "darkorange", "slow": "darkorange",
    "local minimum": "darkorange", "diverged": "red",
}


class DescentPlaygroundView:
    """Sliders and dropdowns bound to a DescentPlayground; redraws when a control is released.

    display(DescentPlaygroundView().widget)
    """

    def __init__(self, playground: DescentPlayground | None = None) -> None:
        import ipywidgets as widgets

        self.playground = playground if playground is not None else DescentPlayground()
        settings = self.playground.settings
        # wide enough for the longest label ("momentum / beta1") in any font, so none is cut off
        style = {"description_width": "150px"}
        self.surface = widgets.Dropdown(
            options=list(SURFACES), value=settings.surface, description="surface", style=style
        )
        self.optimizer = widgets.Dropdown(
            options=list(OPTIMIZERS), value=settings.optimizer, description="optimizer", style=style
        )
        self.learning_rate = widgets.FloatLogSlider(
            value=settings.learning_rate, base=10, min=-5, max=1, step=0.05, description="learning rate",
            readout_format=".3g", continuous_update=False, style=style,
        )
        self.momentum = widgets.FloatSlider(
            value=settings.momentum, min=0.0, max=0.99, step=0.01, description="momentum / beta1",
            continuous_update=False, style=style,
        )
        self.steps = widgets.IntSlider(
            value=settings.steps, min=1, max=500, description="steps", continuous_update=False, style=style
        )
        self.condition_number = widgets.FloatLogSlider(
            value=settings.condition_number, base=10, min=0, max=3, step=0.1, description="condition number",
            readout_format=".3g", continuous_update=False, style=style,
        )
        self.image = widgets.Image(format="png")
        self.message = widgets.HTML()
        self._syncing = False
        self.controls = {
            "surface": self.surface, "optimizer": self.optimizer, "learning_rate": self.learning_rate,
            "momentum": self.momentum, "steps": self.steps, "condition_number": self.condition_number,
        }
        for control in self.controls.values():
            control.layout.width = "430px"  # the label, then a track as long as ipywidgets' default
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([
                widgets.VBox([self.surface, self.optimizer, self.condition_number]),
                widgets.VBox([self.learning_rate, self.momentum, self.steps]),
            ]),
            self.message,
            self.image,
        ])
        self.refresh()

    def _on_change(self, change: dict) -> None:
        if self._syncing:
            return
        name = next(name for name, control in self.controls.items() if control is change["owner"])
        self.playground.update(**{name: change["new"]})
        if name == "surface":  # the surface brought its own learning rate: show it on the slider
            self._syncing = True
            try:
                self.learning_rate.value = self.playground.settings.learning_rate
            finally:
                self._syncing = False
            # The log slider snaps to its grid; keep the playground on the value the slider shows.
            if self.learning_rate.value != self.playground.settings.learning_rate:
                self.playground.update(learning_rate=self.learning_rate.value)
        self.refresh()

    def refresh(self) -> None:
        """Show the playground's current trajectory: figure, message, and which controls apply."""
        playground = self.playground
        trajectory = playground.trajectory
        colour = _STATUS_COLOURS[trajectory.status]
        self.message.value = f"<b style='color:{colour}'>{trajectory.message}</b>"
        self.image.value = playground.png()
        self.momentum.disabled = playground.settings.optimizer == "gradient descent"
        self.condition_number.disabled = playground.settings.surface != "quadratic bowl"
