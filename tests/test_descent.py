"""Tests for sr_teach.widgets.descent: the 2/L theory, the real optimizers and the diagnoses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_teach.widgets.descent import (
    OPTIMIZERS,
    SURFACES,
    Surface,
    build_surface,
    descend,
    quadratic_bowl,
    rosenbrock,
    steps_to_converge,
    two_minima,
)


@pytest.mark.parametrize("curvature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("condition_number", [1.0, 10.0])
def test_gradient_descent_diverges_exactly_above_two_over_l(curvature: float, condition_number: float) -> None:
    surface = quadratic_bowl(condition_number=condition_number, curvature=curvature)
    assert surface.largest_curvature == pytest.approx(curvature)  # autograd Hessian = the analytic L
    assert surface.max_stable_learning_rate == pytest.approx(2.0 / curvature)
    below = descend(surface, "gradient descent", 0.95 * 2.0 / curvature, steps=500)
    above = descend(surface, "gradient descent", 1.05 * 2.0 / curvature, steps=500)
    assert not below.diverged and float(below.losses[-1]) < float(below.losses[0])
    assert above.diverged, above.message
    assert "2/L" in above.message


def test_error_along_steep_direction_shrinks_by_one_minus_lr_l() -> None:
    """Along the steepest eigenvector the distance is multiplied by (1 - lr L) at every step."""
    surface = quadratic_bowl(condition_number=4.0, curvature=2.0, angle_degrees=0.0)  # steep axis = x
    for learning_rate in (0.2, 0.7, 0.99):
        trajectory = descend(surface, "gradient descent", learning_rate, steps=5, start=(1.0, 0.0))
        expected = [(1 - learning_rate * 2.0) ** step for step in range(6)]
        assert trajectory.points[:, 0].tolist() == pytest.approx(expected)


def test_gradient_descent_matches_the_update_rule_by_hand() -> None:
    surface = quadratic_bowl(condition_number=10.0, curvature=1.0, angle_degrees=30.0)
    angle = math.radians(30.0)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotation @ np.diag([1.0, 0.1]) @ rotation.T
    point = np.array(surface.start)
    expected = [point]
    for _ in range(20):
        point = point - 0.7 * matrix @ point  # the gradient of 1/2 p^T A p is A p
        expected.append(point)
    trajectory = descend(surface, "gradient descent", 0.7, steps=20)
    np.testing.assert_allclose(trajectory.points.numpy(), np.stack(expected), rtol=1e-12, atol=1e-12)


def test_momentum_matches_the_heavy_ball_rule_by_hand() -> None:
    """torch's SGD momentum: v <- m v + grad, p <- p - lr v (with v = grad at the first step)."""
    surface = rosenbrock()
    learning_rate, momentum = 1e-3, 0.9
    point = np.array(surface.start)
    velocity = np.zeros(2)
    expected = [point]
    for _ in range(30):
        x, y = point
        gradient = np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])
        velocity = momentum * velocity + gradient
        point = point - learning_rate * velocity
        expected.append(point)
    trajectory = descend(surface, "momentum", learning_rate, steps=30, momentum=momentum)
    np.testing.assert_allclose(trajectory.points.numpy(), np.stack(expected), rtol=1e-10)


def test_rosenbrock_curvature_matches_the_analytic_hessian() -> None:
    # At the minimum (1, 1) the Hessian of (1 - x)^2 + 100 (y - x^2)^2 is [[802, -400], [-400, 200]].
    expected = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    assert rosenbrock().curvatures() == pytest.approx(tuple(expected))
    assert rosenbrock().minimum_loss == 0.0


def test_two_minima_global_minimum_is_the_lower_well() -> None:
    surface = two_minima()
    grid = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 2001, dtype=torch.float64),
                                      torch.zeros(1, dtype=torch.float64), indexing="xy"), dim=-1)
    brute_force = float(surface(grid).min())
    assert surface.minimum_loss == pytest.approx(brute_force, abs=1e-5)
    assert surface.minimum[0] < 0  # the tilt makes the left well deeper


def test_divergence_is_reported_as_data_not_raised() -> None:
    trajectory = descend(rosenbrock(), "gradient descent", learning_rate=10.0, steps=100)
    assert trajectory.diverged
    assert trajectory.steps < 100  # stopped early, once the loss exploded
    assert trajectory.message.startswith("diverged")
    assert torch.isfinite(trajectory.points[:-1]).all()


def test_a_surface_that_returns_nan_counts_as_diverged() -> None:
    def nan_beyond_one(points: torch.Tensor) -> torch.Tensor:
        loss = (points**2).sum(-1)
        return torch.where(loss > 1, torch.full_like(loss, float("nan")), loss)

    surface = Surface("nan", nan_beyond_one, (0.5, 0.0), (0.0, 0.0), (-1, 1), (-1, 1), 0.1)
    trajectory = descend(surface, "gradient descent", learning_rate=3.0, steps=10)
    assert trajectory.diverged
    assert math.isnan(float(trajectory.losses[-1]))


@pytest.mark.parametrize(
    ("learning_rate", "steps", "status"),
    [(0.3, 30, "slow"), (1.0, 30, "converged"), (1.99, 100, "overshooting"), (2.1, 30, "diverged")],
)
def test_bowl_statuses(learning_rate: float, steps: int, status: str) -> None:
    trajectory = descend(quadratic_bowl(10.0), "gradient descent", learning_rate, steps)
    assert trajectory.status == status, trajectory.message


def test_zigzag_below_two_over_l_still_converges() -> None:
    trajectory = descend(quadratic_bowl(10.0), "gradient descent", 1.8, 30)
    assert trajectory.status == "converged"
    assert "overshooting" in trajectory.message


def test_local_minimum_and_momentum_over_the_ridge() -> None:
    surface = two_minima()
    stuck = descend(surface, "gradient descent", 0.05, 50)
    assert stuck.status == "local minimum", stuck.message
    assert float(stuck.points[-1, 0]) > 0
    carried = descend(surface, "momentum", 0.05, 100, momentum=0.8)
    assert carried.status == "converged", carried.message
    assert float(carried.points[-1, 0]) < 0


def test_momentum_beats_gradient_descent_on_an_ill_conditioned_bowl() -> None:
    surface = quadratic_bowl(condition_number=100.0)
    plain = steps_to_converge(surface, "gradient descent", 1.0)
    heavy_ball = steps_to_converge(surface, "momentum", 1.0, momentum=0.9)
    assert plain is not None and heavy_ball is not None
    assert heavy_ball < plain / 2


def test_every_optimizer_and_surface_runs() -> None:
    for name in SURFACES:
        surface = build_surface(name)
        for optimizer in OPTIMIZERS:
            trajectory = descend(surface, optimizer, surface.learning_rate, steps=5)
            assert trajectory.points.shape == (6, 2)
            assert trajectory.status in ("converged", "overshooting", "slow", "local minimum", "diverged")


def test_bad_arguments_raise() -> None:
    surface = quadratic_bowl()
    with pytest.raises(ValueError, match="optimizer"):
        descend(surface, "lbfgs")
    with pytest.raises(ValueError, match="learning_rate"):
        descend(surface, learning_rate=0.0)
    with pytest.raises(ValueError, match="momentum"):
        descend(surface, "momentum", momentum=1.0)
    with pytest.raises(ValueError, match="surface"):
        build_surface("saddle")
    with pytest.raises(ValueError, match="condition_number"):
        quadratic_bowl(condition_number=0.5)
