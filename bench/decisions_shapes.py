"""Traffic shapes for the in-process decision benchmark (bench/decisions_sim.py).

Each deploy is a labelled scenario of one *shape*: the counts of every series
(version x endpoint x 2xx/5xx) at each 15 s scrape, 70 minutes before the deploy and
30 after. The shapes are what production traffic does to a judge: errors in correlated
bursts (retry storms) at the same rate before and after, a step-to-step wandering error
proportion, canaries taking 5, 10 and 25 % of the traffic beside the old version,
several endpoints of which one regresses, baselines of 0.1 % and of 2-4 %, a diurnal
ramp of traffic during the window, and services that never fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP = 15.0
PRE_STEPS = 1460  # 6 h 5 min before the deploy (bursts are measured over 6 h)
POST_STEPS = 121  # the 30-minute window (and its opening reading)
BANDS = (0.2, 1.0, 5.0, 20.0, 100.0, 1000.0)
ENDPOINTS = ("/api/orders", "/api/users", "/api/search", "/api/cart", "/api/login", "/admin")
ENDPOINT_SHARES = (0.45, 0.25, 0.12, 0.08, 0.07, 0.03)
SHAPES = (
    "steady", "bursts", "wobble", "canary5", "canary10", "canary25", "endpoint",
    "base0.1", "base2-4", "diurnal", "zero",
)  # fmt: skip
MULTS = (3.0, 4.0, 5.0, 7.0, 10.0, 20.0)


@dataclass(frozen=True)
class Deploy:
    """One labelled deploy: its shape, traffic, and the fault if it is a bad one."""

    index: int
    shape: str
    rps: float
    base_error: float
    healthy: bool
    onset: float | None = None  # seconds after the deploy
    mult: float = 1.0  # the regressed slice's error proportion: base x mult ...
    add: float = 0.0  # ... + add
    seed: int = 0

    @property
    def canary(self) -> float:
        """The new version's share of traffic (1: it took all of it at the deploy)."""
        return {"canary5": 0.05, "canary10": 0.10, "canary25": 0.25}.get(self.shape, 1.0)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return ENDPOINTS if self.shape == "endpoint" else ("/api",)

    @property
    def new_error(self) -> float:
        return min(0.95, self.base_error * self.mult + self.add)

    @property
    def slice_share(self) -> float:
        """The share of all traffic the fault is confined to."""
        if self.shape == "endpoint":
            return ENDPOINT_SHARES[self.index % (len(ENDPOINTS) - 1)]  # never /admin (3 %)
        return self.canary

    @property
    def tripled(self) -> bool:
        return not self.healthy and (self.base_error == 0 or self.new_error >= 3 * self.base_error)


def deploys(per_shape_healthy: int, per_shape_bad: int, seed: int) -> list[Deploy]:
    """Every shape, its healthy deploys then its bad ones, evenly over the bands."""
    rng = np.random.default_rng(seed)
    out: list[Deploy] = []
    for shape in SHAPES:
        for k in range(per_shape_healthy + per_shape_bad):
            healthy = k < per_shape_healthy
            out.append(_one(len(out), shape, healthy, BANDS[k % len(BANDS)], rng, seed))
    return out


def _base(shape: str, rng: np.random.Generator) -> float:
    if shape == "zero":
        return 0.0
    if shape == "base0.1":
        return 0.001
    if shape == "base2-4":
        return float(rng.uniform(0.02, 0.04))
    return float(rng.uniform(0.002, 0.02))


def _one(
    i: int, shape: str, healthy: bool, rps: float, rng: np.random.Generator, seed: int
) -> Deploy:
    base = _base(shape, rng)
    common = {"index": i, "shape": shape, "rps": rps, "base_error": base, "seed": seed}
    if healthy:
        return Deploy(healthy=True, **common)  # type: ignore[arg-type]
    onset = 0.0 if rng.random() < 0.5 else float(rng.uniform(120, 900))
    if shape == "zero":
        return Deploy(healthy=False, onset=onset, add=float(rng.uniform(0.002, 0.05)), **common)  # type: ignore[arg-type]
    mult = float(rng.choice(MULTS))
    return Deploy(healthy=False, onset=onset, mult=mult, **common)  # type: ignore[arg-type]


@dataclass
class Traffic:
    """Per-scrape increments: ``n[step, version, endpoint]`` requests, ``e`` errors."""

    t: np.ndarray  # seconds after the deploy, per step
    n: np.ndarray
    e: np.ndarray


def simulate(d: Deploy) -> Traffic:
    """The deploy's counts, seeded by its index."""
    rng = np.random.default_rng(d.seed * 1_000_003 + d.index)
    t = (np.arange(PRE_STEPS + POST_STEPS) - PRE_STEPS) * STEP
    rate = np.full(t.size, d.rps * STEP)
    if d.shape == "diurnal":  # the window rides a ramp: x0.4 ... x2.5 by its end
        end = float(rng.uniform(0.4, 2.5))
        rate = rate * np.where(t > 0, 1 + (end - 1) * np.clip(t / 1800, 0, 1), 1.0)
    if d.shape == "wobble":
        rate = rate * rng.gamma(1.5, 1 / 1.5, t.size)
    shares = np.array(ENDPOINT_SHARES if d.shape == "endpoint" else (1.0,))
    new = np.where(t >= 0, d.canary, 0.0)
    versions = np.stack([1 - new, new], axis=1)  # v1, v2
    mean = rate[:, None, None] * versions[:, :, None] * shares[None, None, :]
    n = rng.poisson(mean)
    p = np.full(mean.shape, d.base_error)
    p = p + _storm(d, t, rng)[:, None, None]
    if d.shape == "wobble" and d.base_error > 0:
        c = 300.0
        p = rng.beta(np.maximum(p * c, 1e-9), np.maximum((1 - p) * c, 1e-9))
    if not d.healthy and d.onset is not None:
        on = (t >= d.onset)[:, None]
        hit = np.zeros(shares.size, bool)
        hit[d.index % (len(ENDPOINTS) - 1) if d.shape == "endpoint" else 0] = True
        slice_ = on[:, :, None] & np.array([False, True])[None, :, None] & hit[None, None, :]
        p = np.where(slice_, np.minimum(0.95, p * d.mult + d.add), p)
    e = rng.binomial(n, np.clip(p, 0, 1))
    return Traffic(t, n, e)


def _storm(d: Deploy, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Retry storms (bursts shape): 2-8 an hour, 20-150 s each, 5-40 % of requests
    failing while one lasts, the same process before and after the deploy."""
    extra = np.zeros(t.size)
    if d.shape != "bursts":
        return extra
    per_hour = float(rng.uniform(2, 8))
    span = t[-1] - t[0] + STEP
    starts = t[0] + rng.uniform(0, span, rng.poisson(per_hour * span / 3600))
    for start in starts:
        length, level = float(rng.uniform(20, 150)), float(rng.uniform(0.05, 0.4))
        extra = np.where((t >= start) & (t < start + length), np.maximum(extra, level), extra)
    return extra


def expected_errors(d: Deploy) -> float:
    """Errors the window holds at the regressed rate in the regressed slice."""
    if d.healthy or d.onset is None:
        return 0.0
    seconds = max(0.0, 1800.0 - d.onset)
    return d.rps * d.slice_share * seconds * d.new_error
