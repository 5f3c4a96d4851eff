"""Tests for sr_teach.widgets.descent_playground: the playground's state, and its view driven as a student would."""

from __future__ import annotations

import pytest

from sr_teach.widgets.descent import rosenbrock
from sr_teach.widgets.descent_playground import DescentPlayground, DescentPlaygroundView, PlaygroundSettings


def test_playground_state() -> None:
    playground = DescentPlayground()
    assert playground.trajectory.status == "converged"
    playground.update(learning_rate=3.0)
    assert playground.trajectory.diverged
    playground.update(surface="Rosenbrock")
    assert playground.settings.learning_rate == rosenbrock().learning_rate  # the surface's own default
    assert not playground.trajectory.diverged
    playground.update(surface="quadratic bowl", learning_rate=0.5)
    assert playground.settings.learning_rate == 0.5
    with pytest.raises(ValueError, match="unknown settings"):
        playground.update(colour="red")
    assert playground.png().startswith(b"\x89PNG")


def test_playground_condition_number_slows_gradient_descent() -> None:
    easy = DescentPlayground(PlaygroundSettings(condition_number=1.0, steps=400))
    hard = DescentPlayground(PlaygroundSettings(condition_number=100.0, steps=400))
    assert easy.trajectory.converged_step < hard.trajectory.converged_step


def test_playground_view_updates_on_widget_changes() -> None:
    pytest.importorskip("ipywidgets")
    view = DescentPlaygroundView()
    first_image = bytes(view.image.value)
    assert first_image.startswith(b"\x89PNG")
    assert view.momentum.disabled  # plain gradient descent has no momentum

    view.learning_rate.value = 3.0
    assert view.playground.trajectory.diverged
    assert "diverged" in view.message.value and "red" in view.message.value
    assert bytes(view.image.value) != first_image

    view.optimizer.value = "momentum"
    assert not view.momentum.disabled
    assert view.playground.settings.optimizer == "momentum"

    view.surface.value = "Rosenbrock"
    assert view.learning_rate.value == pytest.approx(1e-3)  # the slider shows the surface's default
    assert view.playground.settings.learning_rate == view.learning_rate.value
    assert view.condition_number.disabled

    view.steps.value = 7
    assert view.playground.trajectory.steps == 7
