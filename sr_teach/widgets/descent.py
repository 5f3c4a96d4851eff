"""Gradient descent on 2-D loss surfaces (lesson 05): why the learning rate matters, before training a network.

A network's loss depends on thousands of weights; here it depends on two, p = (x, y), so the whole
surface fits on a contour plot and every step of the optimizer can be drawn. The optimizers are
PyTorch's own (`torch.optim.SGD`, `torch.optim.Adam`) updating a 2-element tensor, exactly as they
update a network's weights. `quadratic_bowl` explains why gradient descent diverges above lr = 2 / L.
Everything that goes wrong (NaN, overflow, a loss that explodes) is reported in the returned
`Trajectory`, never raised, so a slider can be dragged anywhere (`descent_playground`).

    trajectory = descend(quadratic_bowl(condition_number=10), "gradient descent", learning_rate=1.0, steps=50)
    trajectory.status, trajectory.message     # ("converged", "converged: ...")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# ----------------------------------------------------------------------------------- surfaces


@dataclass(frozen=True)
class Surface:
    """A loss over two parameters, with where to look at it and where to start descending."""

    name: str
    loss: Callable[[torch.Tensor], torch.Tensor]  # points (..., 2) -> losses (...), differentiable
    start: tuple[float, float]  # the default start: a point that shows what is hard about the surface
    minimum: tuple[float, float]  # the global minimum
    x_range: tuple[float, float]  # the window of the contour plot
    y_range: tuple[float, float]
    learning_rate: float  # a learning rate that works for plain gradient descent (the slider's default)
    # Contour levels evenly spaced in log(loss - minimum): surfaces with steep walls and a flat floor
    # (Rosenbrock) show nothing but the walls with evenly spaced levels.
    log_levels: bool = False

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        return self.loss(points)

    @property
    def minimum_loss(self) -> float:
        return float(self.loss(torch.tensor(self.minimum, dtype=torch.float64)))

    def curvatures(self, point: Sequence[float] | None = None) -> tuple[float, float]:
        """Eigenvalues of the Hessian at `point` (default: the minimum), smallest first."""
        where = torch.tensor(self.minimum if point is None else point, dtype=torch.float64)
        hessian = torch.autograd.functional.hessian(self.loss, where)  # (2, 2)
        smallest, largest = torch.linalg.eigvalsh(hessian).tolist()
        return smallest, largest

    @property
    def largest_curvature(self) -> float:
        """L: the largest eigenvalue of the Hessian at the minimum."""
        return self.curvatures()[1]

    @property
    def max_stable_learning_rate(self) -> float:
        """2 / L: above it, gradient descent diverges from any start near the minimum."""
        return 2.0 / self.largest_curvature


def quadratic_bowl(
    condition_number: float = 10.0, curvature: float = 1.0, angle_degrees: float = 30.0
) -> Surface:
    """L(p) = 1/2 p^T A p with A = R diag(curvature, curvature / condition_number) R^T.

    curvature is L, the largest eigenvalue (so gradient descent diverges above lr = 2 / curvature);
    condition_number is L / mu, how much flatter the valley's floor is than its walls. R turns the
    valley by angle_degrees, so that it does not line up with the axes: Adam, which scales each
    coordinate separately, would otherwise get the valley's shape for free.

    Why it matters: near a minimum p* every smooth loss looks like such a bowl,
        L(p) = L(p*) + 1/2 (p - p*)^T H (p - p*),
    whose gradient is H (p - p*). One gradient-descent step p <- p - lr * grad multiplies the distance
    to p* along each eigenvector of the Hessian H (curvature lambda) by (1 - lr * lambda). The distance
    shrinks iff |1 - lr * lambda| < 1, that is 0 < lr < 2 / lambda, so with L the largest curvature:
    - lr < 1 / L: every direction shrinks monotonically (too small a lr: slowly);
    - 1 / L < lr < 2 / L: the steep direction flips sign at every step, zigzagging across the valley
      (overshooting), but still converges;
    - lr > 2 / L: the steep direction grows by |1 - lr L| > 1 per step: divergence.
    Along the flattest direction (curvature mu) the distance shrinks by at best 1 - 2 mu / L per step,
    so a large condition number L / mu means slow convergence: what momentum and Adam are for.
    """
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be at least 1, not {condition_number}")
    if not curvature > 0:
        raise ValueError(f"curvature must be positive, not {curvature}")
    angle = math.radians(angle_degrees)
    cosine, sine = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[cosine, -sine], [sine, cosine]], dtype=torch.float64)
    eigenvalues = torch.tensor([curvature, curvature / condition_number], dtype=torch.float64)
    matrix = rotation @ torch.diag(eigenvalues) @ rotation.T  # (2, 2), symmetric positive definite

    def bowl(points: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.einsum("...i,ij,...j->...", points, matrix.to(points.dtype), points)

    return Surface(
        name=f"quadratic bowl (condition number {condition_number:g})",
        loss=bowl,
        start=(-2.5, 2.0),
        minimum=(0.0, 0.0),
        x_range=(-3.0, 3.0),
        y_range=(-3.0, 3.0),
        learning_rate=1.0 / curvature,
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Rosenbrock's banana valley: L(x, y) = (a - x)^2 + b (y - x^2)^2, minimum 0 at (a, a^2).

    A curved valley with steep walls (curvature about 1000 at the minimum for b = 100) and an almost
    flat floor: the classic test that plain gradient descent crawls along.
    """

    def banana(points: torch.Tensor) -> torch.Tensor:
        x, y = points[..., 0], points[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Surface(
        name="Rosenbrock",
        loss=banana,
        start=(-1.2, 1.0),
        minimum=(a, a**2),
        x_range=(-2.0, 2.0),
        y_range=(-1.0, 3.0),
        learning_rate=1e-3,
        log_levels=True,
    )


def two_minima(tilt: float = 0.3) -> Surface:
    """A tilted double well: L(x, y) = (x^2 - 1)^2 + tilt x + y^2.

    Two valleys near x = -1 and x = +1; the tilt makes the left one deeper (the global minimum) and
    leaves the right one a local minimum, where gradient descent started on the right stays.
    """

    def double_well(points: torch.Tensor) -> torch.Tensor:
        x, y = points[..., 0], points[..., 1]
        return (x**2 - 1) ** 2 + tilt * x + y**2

    # Where the slope along x is 0: 4 x^3 - 4 x + tilt = 0; the global minimum is the lowest root.
    roots = [root.real for root in np.roots([4.0, 0.0, -4.0, tilt]) if abs(root.imag) < 1e-9]
    global_x = min(roots, key=lambda x: (x**2 - 1) ** 2 + tilt * x)
    return Surface(
        name="two minima",
        loss=double_well,
        start=(1.8, 1.0),
        minimum=(float(global_x), 0.0),
        x_range=(-2.0, 2.0),
        y_range=(-1.5, 1.5),
        learning_rate=0.05,
    )


# The surfaces of the playground's dropdown. Only the bowl takes a condition number.
SURFACES: dict[str, Callable[..., Surface]] = {
    "quadratic bowl": quadratic_bowl,
    "Rosenbrock": rosenbrock,
    "two minima": two_minima,
}


def build_surface(name: str, condition_number: float = 10.0) -> Surface:
    """The surface of SURFACES called `name` (condition_number applies to the quadratic bowl)."""
    if name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; choose one of {', '.join(SURFACES)}")
    if name == "quadratic bowl":
        return quadratic_bowl(condition_number=condition_number)
    return SURFACES[name]()


# --------------------------------------------------------------------------------- optimizers

# The real torch optimizers, by the names the dropdown shows. `momentum` is SGD's momentum, and
# Adam's beta1, which plays the same part: the running average of gradients that steps follow.
OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], float, float], torch.optim.Optimizer]] = {
    "gradient descent": lambda parameters, lr, momentum: torch.optim.SGD(parameters, lr=lr),
    "momentum": lambda parameters, lr, momentum: torch.optim.SGD(parameters, lr=lr, momentum=momentum),
    "nesterov": lambda parameters, lr, momentum: torch.optim.SGD(
        parameters, lr=lr, momentum=momentum, nesterov=momentum > 0
    ),
    "adam": lambda parameters, lr, momentum: torch.optim.Adam(parameters, lr=lr, betas=(momentum, 0.999)),
}

# A run counts as diverged once the loss is this many times further above the minimum than at the
# start (or is NaN/inf, or the point leaves the float range): nothing comes back from there.
EXPLOSION_FACTOR = 1e6
# A run has converged once the loss is this fraction of its starting distance above the minimum.
CONVERGED_FRACTION = 1e-3
STATUSES = ("converged", "overshooting", "slow", "local minimum", "diverged")


@dataclass
class Trajectory:
    """One descent: where it went, how the loss went, and what that means."""

    points: torch.Tensor  # (n + 1, 2) float64: the start and the point after each step taken
    losses: torch.Tensor  # (n + 1,) float64: the loss at each point
    status: str  # one of STATUSES
    message: str  # one sentence for the student: what happened and what to try
    converged_step: int | None = None  # first step at which the loss was within CONVERGED_FRACTION

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def steps(self) -> int:
        """Steps actually taken (fewer than asked for when the run diverged)."""
        return len(self.points) - 1


def descend(
    surface: Surface,
    optimizer: str = "gradient descent",
    learning_rate: float = 0.1,
    steps: int = 50,
    momentum: float = 0.9,
    start: Sequence[float] | None = None,
    until_converged: bool = False,
) -> Trajectory:
    """Run `steps` steps of a torch optimizer on a 2-parameter tensor, from `start` (default surface.start).

    Stops early, with status "diverged", once the loss is NaN/inf or has exploded (EXPLOSION_FACTOR);
    with until_converged, also once the loss is within CONVERGED_FRACTION of the minimum.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, not {learning_rate}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), not {momentum}")
    if steps < 0:
        raise ValueError(f"steps cannot be negative, got {steps}")
    point = torch.tensor(surface.start if start is None else start, dtype=torch.float64, requires_grad=True)
    torch_optimizer = OPTIMIZERS[optimizer]([point], learning_rate, momentum)
    minimum_loss = surface.minimum_loss
    points, losses = [], []
    exploded = False
    for step in range(steps + 1):
        loss = surface(point)  # the loss at the current point, before this step's update
        points.append(point.detach().clone())
        losses.append(float(loss.detach()))
        gap = losses[-1] - minimum_loss  # how far above the minimum
        if step == 0:
            initial_gap = max(gap, 1e-12)
        if not (math.isfinite(gap) and bool(torch.isfinite(point).all())) or gap > EXPLOSION_FACTOR * initial_gap:
            exploded = True
            break
        if step == steps or (until_converged and gap <= CONVERGED_FRACTION * initial_gap):
            break
        torch_optimizer.zero_grad()
        loss.backward()
        torch_optimizer.step()
    trajectory = Trajectory(torch.stack(points), torch.tensor(losses, dtype=torch.float64), "", "")
    _diagnose(trajectory, surface, optimizer, learning_rate, exploded)
    return trajectory


def _diagnose(
    trajectory: Trajectory, surface: Surface, optimizer: str, learning_rate: float, exploded: bool
) -> None:
    """Fill in the trajectory's status and message from its points and losses."""
    losses, points = trajectory.losses, trajectory.points
    minimum_loss = surface.minimum_loss
    gaps = losses - minimum_loss  # how far above the minimum, at each point
    initial_gap, final_gap = float(gaps[0]), float(gaps[-1])
    limit = ""
    if optimizer == "gradient descent":
        limit = f" (gradient descent is stable only below 2/L = {surface.max_stable_learning_rate:.3g} here)"
    if exploded or final_gap > initial_gap:
        trajectory.status = "diverged"
        how = (f"the loss exploded to {float(losses[-1]):.3g} by step {trajectory.steps}" if exploded
               else f"the loss grew from {float(losses[0]):.3g} to {float(losses[-1]):.3g}")
        trajectory.message = f"diverged: {how}; the learning rate {learning_rate:.3g} is too large{limit}"
        return

    # Overshooting: steps that point back against the previous step (zigzag), or a loss that rises.
    moves = points[1:] - points[:-1]  # (n, 2)
    reversals = int(((moves[1:] * moves[:-1]).sum(dim=-1) < 0).sum()) if len(moves) > 1 else 0
    rises = int((losses[1:] > losses[:-1] + 1e-12 * (1 + losses[:-1].abs())).sum())
    zigzag = reversals > len(moves) // 4 or rises > len(moves) // 10
    if initial_gap <= 0:
        trajectory.status, trajectory.message = "converged", "started at the minimum"
        trajectory.converged_step = 0
        return
    close = (gaps <= CONVERGED_FRACTION * initial_gap).nonzero()
    if len(close) and final_gap <= CONVERGED_FRACTION * initial_gap:
        trajectory.converged_step = int(close[0])
        trajectory.status = "converged"
        detail = f", overshooting on the way ({reversals} zigzags, {rises} rises of the loss)" if zigzag else ""
        trajectory.message = (
            f"converged: within 0.1% of the minimum after {trajectory.converged_step} steps{detail}"
        )
        return
    if _settled_away_from_minimum(surface, points[-1]):
        trajectory.status = "local minimum"
        trajectory.message = (
            f"stuck in a local minimum: the slope is flat at "
            f"({float(points[-1, 0]):.2f}, {float(points[-1, 1]):.2f}), loss {float(losses[-1]):.3g}, "
            f"but the global minimum is {minimum_loss:.3g}; "
            "more momentum (or another start) can carry the descent over the ridge"
        )
        return
    fraction = final_gap / initial_gap
    if zigzag:
        trajectory.status = "overshooting"
        trajectory.message = (
            f"overshooting: the steps zigzag across the valley ({reversals} reversals, {rises} rises of "
            f"the loss) and after {trajectory.steps} steps {fraction:.1%} of the loss gap is left; a smaller "
            f"learning rate than {learning_rate:.3g} zigzags less{limit}"
        )
        return
    trajectory.status = "slow"
    alternatives = ", momentum or Adam" if optimizer == "gradient descent" else ""
    trajectory.message = (
        f"slow: after {trajectory.steps} steps {fraction:.1%} of the loss gap is still left; "
        f"a larger learning rate than {learning_rate:.3g}{alternatives} would get there sooner"
    )


def _settled_away_from_minimum(surface: Surface, point: torch.Tensor) -> bool:
    """True when `point` is next to a minimum that is not the global one.

    Next to a minimum the surface is a bowl, and Newton's step H^-1 grad is the way to its bottom:
    a short Newton step with a positive-definite Hessian means the descent has settled there.
    """
    point = point.detach().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(surface(point), point)
    hessian = torch.autograd.functional.hessian(surface.loss, point.detach())  # (2, 2)
    if not bool(torch.isfinite(hessian).all()) or float(torch.linalg.eigvalsh(hessian)[0]) <= 0:
        return False
    bottom = point.detach() - torch.linalg.solve(hessian, gradient)  # the nearby minimum, estimated
    distance_to_bottom = float((bottom - point.detach()).norm())
    distance_to_global = float((bottom - torch.tensor(surface.minimum, dtype=torch.float64)).norm())
    return distance_to_bottom < 0.05 and distance_to_global > 0.1


def steps_to_converge(
    surface: Surface, optimizer: str, learning_rate: float, momentum: float = 0.9, max_steps: int = 10_000
) -> int | None:
    """Steps until the loss is within CONVERGED_FRACTION of the minimum, or None if never within max_steps."""
    trajectory = descend(surface, optimizer, learning_rate, max_steps, momentum, until_converged=True)
    return trajectory.converged_step if trajectory.status == "converged" else None


# ----------------------------------------------------------------------------------- plotting


def plot_surface(
    surface: Surface,
    ax: Axes,
    trajectories: Sequence[Trajectory] = (),
    labels: Sequence[str] = (),
    resolution: int = 120,
) -> None:
    """Contours of `surface` on `ax`, its global minimum as a star, and each trajectory as a path."""
    x = torch.linspace(*surface.x_range, resolution, dtype=torch.float64)
    y = torch.linspace(*surface.y_range, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)  # (resolution, resolution, 2)
    with torch.no_grad():
        values = surface(grid) - surface.minimum_loss  # (resolution, resolution), >= 0
    # Levels evenly spaced in sqrt(loss) (the distance, in a bowl), or in log(loss) for steep walls.
    values = torch.log10(values.clamp_min(1e-3)) if surface.log_levels else values.sqrt()
    ax.contour(x.numpy(), y.numpy(), values.numpy(), levels=12, cmap="viridis", linewidths=0.8)
    ax.plot(*surface.minimum, marker="*", color="black", markersize=10, linestyle="none")
    for index, trajectory in enumerate(trajectories):
        label = labels[index] if index < len(labels) else None
        path = trajectory.points.numpy()
        line, = ax.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1, label=label)
        ax.plot(*path[0], marker="o", color=line.get_color(), markersize=5)
    ax.set_xlim(*surface.x_range)
    ax.set_ylim(*surface.y_range)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def plot_loss_curves(
    surface: Surface, ax: Axes, trajectories: Sequence[Trajectory], labels: Sequence[str] = ()
) -> None:
    """Loss minus the minimum, on a log axis, against the step, for each trajectory."""
    for index, trajectory in enumerate(trajectories):
        label = labels[index] if index < len(labels) else None
        gaps = (trajectory.losses - surface.minimum_loss).clamp_min(1e-16).numpy()
        ax.semilogy(range(len(gaps)), gaps, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss - minimum")
    ax.grid(True, alpha=0.3)
