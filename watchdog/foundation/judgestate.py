"""What a judge rule remembers between evaluations (persisted in the rule's state)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SERIES = 5000  # counter series remembered per rule; more are ignored (and said so)
MAX_STEPS = 40  # recent per-evaluation increments kept for the dispersion estimate
MAX_GROUPS = 50  # groups (endpoints) judged apart; at a 2 % share at most 50 qualify

Tests = tuple[tuple[float, "Counts"], ...]


@dataclass(frozen=True)
class Counts:
    """Errors among requests."""

    errors: float = 0.0
    total: float = 0.0

    def plus(self, other: Counts) -> Counts:
        """The sum of two counts."""
        return Counts(self.errors + other.errors, self.total + other.total)

    def minus(self, other: Counts) -> Counts:
        """The difference, never below zero (the new version's share of all traffic)."""
        total = max(0.0, self.total - other.total)
        return Counts(min(total, max(0.0, self.errors - other.errors)), total)

    @property
    def proportion(self) -> float | None:
        """errors / total, or ``None`` without requests."""
        return self.errors / self.total if self.total > 0 else None


@dataclass(frozen=True)
class Track:
    """One thing judged apart (an endpoint): its tests and the previous version's
    concurrent counts since the window opened."""

    tests: Tests = ()
    base: Counts = field(default_factory=Counts)

    def to_list(self) -> list[Any]:
        """JSON-ready form."""
        return [
            [[at, c.errors, c.total] for at, c in self.tests],
            [self.base.errors, self.base.total],
        ]

    @classmethod
    def from_list(cls, data: Any) -> Track:
        """Inverse of :meth:`to_list`."""
        tests, base = data
        return cls(_tests(tests), Counts(float(base[0]), float(base[1])))


def _tests(data: Any) -> Tests:
    return tuple((float(at), Counts(float(e), float(n))) for at, e, n in data or [])


@dataclass(frozen=True)
class JudgeState:
    """Counter readings and the tests' counts.

    ``last`` holds each counter series' latest reading (kept while a series is missing,
    so a scrape gap does not count a counter's whole history again). ``tests`` are the
    staggered tests, each ``(started_at, counts since)``; ``base`` is the previous
    version's counts since the window opened (it serves beside the new one); ``steps``
    the latest increments (and the previous version's, ``base_steps``), from which the
    burstiness of errors is estimated; ``groups`` the same per endpoint (rules with
    ``by``), keyed by the endpoint's labels.
    """

    opened_at: float
    last: Mapping[str, float] = field(default_factory=dict)
    tests: Tests = ()
    base: Counts = field(default_factory=Counts)
    steps: tuple[tuple[float, float], ...] = ()  # recent (errors, total) increments
    base_steps: tuple[tuple[float, float], ...] = ()  # the previous version's, alike
    evidence: Mapping[str, Any] = field(default_factory=dict)
    groups: Mapping[str, Track] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "opened_at": self.opened_at,
            "last": dict(self.last),
            "tests": [[at, c.errors, c.total] for at, c in self.tests],
            "base": [self.base.errors, self.base.total],
            "steps": [list(s) for s in self.steps],
            "base_steps": [list(s) for s in self.base_steps],
            "evidence": dict(self.evidence),
            "groups": {k: t.to_list() for k, t in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeState:
        """Inverse of :meth:`to_dict`."""
        base = data.get("base") or [0.0, 0.0]
        return cls(
            opened_at=float(data["opened_at"]),
            last={str(k): float(v) for k, v in (data.get("last") or {}).items()},
            tests=_tests(data.get("tests")),
            base=Counts(float(base[0]), float(base[1])),
            steps=tuple((float(e), float(n)) for e, n in data.get("steps") or []),
            base_steps=tuple((float(e), float(n)) for e, n in data.get("base_steps") or []),
            evidence=dict(data.get("evidence") or {}),
            groups={str(k): Track.from_list(v) for k, v in (data.get("groups") or {}).items()},
        )
