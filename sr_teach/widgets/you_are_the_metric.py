"""You are the metric (lesson 14): pick the better-looking of two crops, then compare your ranking
with the rankings of PSNR, SSIM, MS-SSIM, GMSD and NIQE.

`YouAreTheMetric` holds named crops of one scene (say bicubic, two networks, a sharpened copy) and
the original. It deals every pair once, in a seeded order with the sides drawn at random, records
each pick ("left", "right" or "same"), ranks the crops by wins (a tie is half a win each) and
measures how far each metric's ranking agrees with it: Kendall's tau-b and Spearman's rho, +1 for the
same order, -1 for the reverse. `YouAreTheMetricView` is its ipywidgets view: the two crops without
their names, three buttons, the progress, and the table once every pair is judged.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sr_teach.metrics import HIGHER_IS_BETTER, quality_scores
from sr_teach.widgets.pictures import WidgetView, encode_image, image_widget

CHOICES = ("left", "right", "same")


@dataclass(frozen=True)
class Pick:
    """One judged pair: which crop was shown on each side, the choice, and who made it."""

    left: str
    right: str
    choice: str  # "left", "right" or "same"
    by: str  # "you", or the rule that picked in your place


def metric_scores(crops: Mapping[str, torch.Tensor], reference: torch.Tensor) -> dict[str, dict[str, float]]:
    """metric name -> crop name -> score (`sr_teach.metrics.quality_scores` on the 8-bit Y, no border);
    crops and reference (C, H, W) in [0, 1]. 176 x 192 is the smallest crop all five metrics accept."""
    by_crop = {name: quality_scores(crop, reference) for name, crop in crops.items()}
    return {metric: {name: scores[metric] for name, scores in by_crop.items()} for metric in HIGHER_IS_BETTER}


def average_ranks(values: Sequence[float]) -> list[float]:
    """Rank 1 for the smallest value; tied values share the mean of their ranks ([5, 7, 5] -> [1.5, 3, 1.5])."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and values[order[stop + 1]] == values[order[start]]:
            stop += 1
        for position in range(start, stop + 1):
            ranks[order[position]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: over all pairs (i, j), sum sign(x_i - x_j) sign(y_i - y_j), divided by
    sqrt(pairs not tied in x * pairs not tied in y). +1: same order, -1: reversed; NaN if x or y is all ties."""
    signs_x = [math.copysign(1, a - b) if a != b else 0 for a, b in itertools.combinations(x, 2)]
    signs_y = [math.copysign(1, a - b) if a != b else 0 for a, b in itertools.combinations(y, 2)]
    untied = sum(s * s for s in signs_x) * sum(s * s for s in signs_y)
    return sum(a * b for a, b in zip(signs_x, signs_y)) / math.sqrt(untied) if untied else math.nan


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks of x and of y; NaN if either is constant."""
    rank_x, rank_y = (torch.tensor(average_ranks(values), dtype=torch.float64) for values in (x, y))
    rank_x, rank_y = rank_x - rank_x.mean(), rank_y - rank_y.mean()
    spread = float(rank_x.norm() * rank_y.norm())
    return float((rank_x * rank_y).sum()) / spread if spread else math.nan


class YouAreTheMetric:
    """Pairwise judgements of named crops of one scene, and how the metrics' rankings agree with them.

    crops: name -> (C, H, W) in [0, 1], at least three, all the shape of `reference` (the original).
    seed: the order of the pairs and which crop goes on the left, the same on every screen.
    """

    def __init__(self, crops: Mapping[str, torch.Tensor], reference: torch.Tensor, seed: int = 0) -> None:
        if len(crops) < 3:
            raise ValueError(f"give at least three crops to rank (got {len(crops)}): with two, any ranking "
                             "agrees or disagrees completely")
        for name, crop in crops.items():
            if crop.shape != reference.shape or crop.dim() != 3:
                raise ValueError(f"crop {name!r} has shape {tuple(crop.shape)}; every crop must be (C, H, W) "
                                 f"like the original, {tuple(reference.shape)}")
        self.crops = dict(crops)
        self.reference = reference
        self.names = list(crops)
        self.scores = metric_scores(self.crops, reference)  # metric -> name -> score
        generator = torch.Generator().manual_seed(seed)
        pairs = list(itertools.combinations(self.names, 2))
        order = torch.randperm(len(pairs), generator=generator).tolist()
        swaps = (torch.rand(len(pairs), generator=generator) < 0.5).tolist()
        self.pairs = [pairs[i][::-1] if swap else pairs[i] for i, swap in zip(order, swaps)]  # (left, right)
        self.picks: list[Pick] = []

    # --- judging
    @property
    def finished(self) -> bool:
        return len(self.picks) == len(self.pairs)

    @property
    def current(self) -> tuple[str, str] | None:
        """The names of the pair to judge now, (left, right), or None when every pair is judged."""
        return None if self.finished else self.pairs[len(self.picks)]

    def pick(self, choice: str, by: str = "you") -> None:
        """Judge the current pair: "left" or "right" looks better, or they look the "same"."""
        if choice not in CHOICES:
            raise ValueError(f"choose one of {', '.join(CHOICES)}, not {choice!r}")
        if self.current is None:
            raise ValueError(f"all {len(self.pairs)} pairs are judged: undo() or reset() to change a pick")
        self.picks.append(Pick(*self.current, choice, by))

    def undo(self) -> None:
        """Take back the last pick (nothing happens before the first)."""
        if self.picks:
            self.picks.pop()

    def reset(self) -> None:
        self.picks.clear()

    def pick_by_rule(self, score: Callable[[torch.Tensor], float], description: str, same_within: float = 0.0) -> None:
        """Judge every pair still open by a rule instead of by eye: the crop with the higher score(crop)
        wins, "same" when the two scores differ by at most `same_within` times the larger one.
        `description` says what the rule is; it is kept with each pick (see `source`)."""
        while self.current is not None:
            left, right = (score(self.crops[name]) for name in self.current)
            if abs(left - right) <= same_within * max(abs(left), abs(right)):
                self.pick("same", by=description)
            else:
                self.pick("left" if left > right else "right", by=description)

    @property
    def source(self) -> str:
        """Who made the picks: "you", a rule's description, or both joined by " and "."""
        return " and ".join(dict.fromkeys(pick.by for pick in self.picks)) or "nobody yet"

    # --- results
    def wins(self) -> dict[str, float]:
        """name -> pairs won, a "same" counting half for each of the two."""
        wins = dict.fromkeys(self.names, 0.0)
        for pick in self.picks:
            if pick.choice == "same":
                wins[pick.left] += 0.5
                wins[pick.right] += 0.5
            else:
                wins[pick.left if pick.choice == "left" else pick.right] += 1.0
        return wins

    def rank_correlations(self) -> dict[str, tuple[float, float]]:
        """metric -> (Kendall tau-b, Spearman rho) between the wins and the metric's scores, each turned
        so that higher is better; all pairs must be judged first."""
        if not self.finished:
            raise ValueError(f"judge all {len(self.pairs)} pairs first ({len(self.picks)} done)")
        wins = [self.wins()[name] for name in self.names]
        correlations = {}
        for metric, higher_is_better in HIGHER_IS_BETTER.items():
            goodness = [self.scores[metric][name] * (1 if higher_is_better else -1) for name in self.names]
            correlations[metric] = (kendall_tau_b(wins, goodness), spearman_rho(wins, goodness))
        return correlations

    def ranking(self, metric: str | None = None) -> list[str]:
        """Names best first: by wins (metric None), or by one metric of HIGHER_IS_BETTER."""
        if metric is None:
            values = self.wins()
        else:
            sign = 1 if HIGHER_IS_BETTER[metric] else -1
            values = {name: sign * score for name, score in self.scores[metric].items()}
        return sorted(self.names, key=lambda name: -values[name])

    def table(self) -> str:
        """Each crop's wins and metric scores with their ranks (1 = best), then the rank correlations."""
        wins = self.wins()
        width = max(len(name) for name in self.names) + 2
        header = f"{'':<{width}}{'wins':>12}" + "".join(f"{metric:>16}" for metric in HIGHER_IS_BETTER)
        lines = [f"picks by {self.source}; rank 1 = best; "
                 "GMSD and NIQE: lower is better", header]
        win_ranks = _positions(wins, higher_is_better=True)
        metric_ranks = {metric: _positions(self.scores[metric], higher) for metric, higher in HIGHER_IS_BETTER.items()}
        for name in self.ranking():
            row = f"{name:<{width}}" + f"{wins[name]:.1f} ({win_ranks[name]:g})".rjust(12)
            for metric in HIGHER_IS_BETTER:
                digits = 2 if metric in ("PSNR", "NIQE") else 4
                row += f"{self.scores[metric][name]:.{digits}f} ({metric_ranks[metric][name]:g})".rjust(16)
            lines.append(row)
        if self.finished:
            lines.append("")
            lines.append(f"{'agreement with the picks':<{width + 12}}{'Kendall tau':>16}{'Spearman rho':>16}")
            for metric, (tau, rho) in self.rank_correlations().items():
                lines.append(f"{metric:<{width + 12}}{tau:>+16.2f}{rho:>+16.2f}")
        return "\n".join(lines)


def _positions(values: Mapping[str, float], higher_is_better: bool) -> dict[str, float]:
    """name -> rank, 1 = best; ties share their mean rank."""
    names = list(values)
    ranks = average_ranks([-values[name] if higher_is_better else values[name] for name in names])
    return dict(zip(names, ranks))


def zoomed(crop: torch.Tensor, zoom: int) -> torch.Tensor:
    """(C, H, W) -> (C, zoom H, zoom W), each pixel a zoom x zoom block (no smoothing to hide detail)."""
    return crop.repeat_interleave(zoom, dim=-2).repeat_interleave(zoom, dim=-1)


class YouAreTheMetricView(WidgetView):
    """Widgets for YouAreTheMetric: two crops (names hidden until the end), "left looks better",
    "same", "right looks better" and "undo" buttons, a progress bar, and the results table."""

    def __init__(self, state: YouAreTheMetric, zoom: int = 2) -> None:
        import ipywidgets as widgets

        self.state, self.zoom = state, zoom
        width = state.reference.shape[-1] * zoom  # one screen pixel per pixel of the zoomed crop: no smoothing
        self.left_image, self.right_image = image_widget(width=width), image_widget(width=width)
        self.buttons = {
            "left": widgets.Button(description="left looks better", icon="arrow-left"),
            "same": widgets.Button(description="same"),
            "right": widgets.Button(description="right looks better", icon="arrow-right"),
        }
        for choice, button in self.buttons.items():
            button.on_click(lambda _button, choice=choice: self._on_pick(choice))
        self.undo_button = widgets.Button(description="undo", icon="undo")
        self.undo_button.on_click(self._on_undo)
        self.progress = widgets.IntProgress(min=0, max=len(state.pairs), description="judged")
        self.progress_text = widgets.HTML()
        self.results = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.left_image, self.right_image]),
            widgets.HBox([*self.buttons.values(), self.undo_button]),
            widgets.HBox([self.progress, self.progress_text]),
            self.results,
        ])
        self.refresh()

    def _on_pick(self, choice: str) -> None:
        if self.state.current is not None:
            self.state.pick(choice)
            self.refresh()

    def _on_undo(self, _button: Any = None) -> None:
        self.state.undo()
        self.refresh()

    def refresh(self) -> None:
        """Show the current pair and the progress, or the results once every pair is judged."""
        done, total = len(self.state.picks), len(self.state.pairs)
        self.progress.value = done
        self.progress_text.value = f"{done} of {total} pairs"
        for button in self.buttons.values():
            button.disabled = self.state.finished
        if self.state.finished:
            self.results.value = f"<pre>{html.escape(self.state.table())}</pre>"
            return
        self.results.value = ""
        left, right = self.state.current
        for widget, name in ((self.left_image, left), (self.right_image, right)):
            widget.value = encode_image(zoomed(self.state.crops[name], self.zoom))
