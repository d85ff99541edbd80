"""A bench target written once: the verdict (MET/MISSED) and the printed line both come from it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """A figure's goal, written once: the verdict and the printed text both come from it."""

    comparison: str  # one of _COMPARISONS
    bound: float

    def met(self, value: float) -> bool:
        return _COMPARISONS[self.comparison](value, self.bound)

    def verdict(self, value: float) -> str:
        return "MET" if self.met(value) else "MISSED"

    def __str__(self) -> str:
        return f"{self.comparison} {self.bound:.2f}".rstrip("0").rstrip(".")


class Verdicts:
    """Lines "label  value  target  MET/MISSED" (or n/a where this run has no target)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(self, label: str, value: float | None, target: Target | None = None) -> None:
        shown = "-" if value is None else f"{value:.2f}"
        verdict = target.verdict(value) if target and value is not None else "n/a"
        target_text = "" if target is None else str(target)
        self.lines.append(f"  {label:58} {shown:>8}  target {target_text:12} {verdict}")


def ms_text(value: float | None, unit: str = "") -> str:
    """A figure in ms as every table prints it: one decimal, "-" when there is none."""
    return "-" if value is None else f"{value:.1f}{unit}"
