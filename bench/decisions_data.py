"""Labelled deploy scenarios for bench/decisions.py, written as OpenMetrics.

Each scenario is one service's deploy: 70 minutes of traffic before it (the baselines
read the hour before) and 31 after. Traffic is counted every 15 s like a scrape:
Poisson requests at the scenario's rate (times a gamma factor when bursty), errors
binomial (with beta-distributed proportions when bursty: overdispersed), latencies
log-normal split into the histogram's buckets. Metric names are those of
prometheus-fastapi-instrumentator (``http_requests_total{status="5xx"}``,
``http_request_duration_highr_seconds``), plus any other histogram the rules name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

STEP = 15  # seconds between scrapes
PRE = 70 * 60  # traffic before the deploy
POST = 31 * 60  # the window (30 min) and a minute more
BANDS = (0.2, 1.0, 5.0, 20.0, 100.0, 1000.0)  # requests per second
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0)  # le bounds (and +Inf)
LATENCY_SIGMA = 0.7
HISTOGRAMS = ("http_request_duration_highr_seconds",)
BAD_KINDS = ("step_mult", "step_add", "ramp", "latency")


@dataclass(frozen=True)
class Scenario:
    """One labelled deploy."""

    index: int
    rps: float
    base_error: float  # error proportion before the deploy
    kind: str  # healthy | step_mult | step_add | ramp | latency
    onset: float | None = None  # seconds after the deploy the fault starts
    new_error: float | None = None  # error proportion once the fault is in full
    ramp: float = 0.0  # seconds the fault takes to reach new_error
    latency_factor: float = 1.0  # median latency multiplier once the fault is in
    blip: tuple[float, float] | None = None  # cold start: (seconds, error multiplier)
    bursty: bool = False
    gap: tuple[float, float] | None = None  # scrapes missing: (from, to) after deploy
    reset: bool = False  # counters restart at zero at the deploy

    @property
    def healthy(self) -> bool:
        """True for the deploys that should never be rolled back."""
        return self.kind == "healthy"

    @property
    def service(self) -> str:
        """The service label of this deploy's series."""
        return f"d{self.index:05d}"

    @property
    def tripled(self) -> bool:
        """A bad deploy whose error rate reaches at least 3x the baseline's."""
        if self.new_error is None or self.kind == "latency":
            return False
        return self.base_error > 0 and self.new_error >= 3 * self.base_error


def scenarios(healthy: int, bad: int, seed: int) -> list[Scenario]:
    """``healthy`` then ``bad`` scenarios, evenly over the traffic bands, seeded."""
    rng = np.random.default_rng(seed)
    out = [_healthy(i, rng) for i in range(healthy)]
    out += [_bad(healthy + i, rng) for i in range(bad)]
    return out


def _common(index: int, rng: np.random.Generator) -> dict[str, object]:
    base = 0.0 if rng.random() < 0.1 else float(rng.uniform(0.001, 0.03))
    gap = None
    if rng.random() < 0.1:
        start = float(rng.uniform(-120, 25 * 60))
        gap = (start, start + float(rng.uniform(60, 240)))
    return {
        "index": index,
        "rps": BANDS[index % len(BANDS)],
        "base_error": base,
        "bursty": bool(rng.random() < 0.35),
        "gap": gap,
        "reset": bool(rng.random() < 0.5),
    }


def _healthy(index: int, rng: np.random.Generator) -> Scenario:
    common = _common(index, rng)
    blip = None
    if rng.random() < 0.5:  # cold start: a few times the error rate for 20-60 s
        blip = (float(rng.uniform(20, 60)), float(rng.uniform(2, 5)))
    return Scenario(kind="healthy", blip=blip, **common)  # type: ignore[arg-type]


def _bad(index: int, rng: np.random.Generator) -> Scenario:
    common = _common(index, rng)
    kind = BAD_KINDS[int(rng.integers(len(BAD_KINDS)))]
    onset = 0.0 if rng.random() < 0.5 else float(rng.uniform(120, 15 * 60))
    base = float(common["base_error"])  # type: ignore[arg-type]
    if kind == "latency":
        factor = float(rng.uniform(3, 15))
        return Scenario(kind=kind, onset=onset, latency_factor=factor, **common)  # type: ignore[arg-type]
    if kind == "step_mult" or (kind == "ramp" and rng.random() < 0.5):
        if base == 0:
            base = float(rng.uniform(0.001, 0.03))
            common["base_error"] = base
        new = min(0.9, base * float(rng.choice([2, 3, 4, 5, 7, 10, 15, 20])))
    else:
        new = base + float(rng.integers(1, 21)) / 100.0
    ramp = float(rng.uniform(5 * 60, 20 * 60)) if kind == "ramp" else 0.0
    return Scenario(kind=kind, onset=onset, new_error=new, ramp=ramp, **common)  # type: ignore[arg-type]


def _error_rate(s: Scenario, t: np.ndarray) -> np.ndarray:
    """The true error proportion at each time (seconds after the deploy)."""
    p = np.full(t.shape, s.base_error)
    if s.blip is not None:
        seconds, mult = s.blip
        p = np.where((t >= 0) & (t < seconds), np.minimum(0.9, p * mult), p)
    if s.new_error is not None and s.onset is not None:
        since = t - s.onset
        reach = np.clip(since / s.ramp, 0, 1) if s.ramp > 0 else (since >= 0).astype(float)
        p = np.where(since >= 0, s.base_error + (s.new_error - s.base_error) * reach, p)
    return p


def _bucket_shares(median: float) -> np.ndarray:
    """The share of requests in each histogram bucket (the last one is > the top bound)."""
    cdf = [
        0.5 * math.erfc(-math.log(le / median) / (LATENCY_SIGMA * math.sqrt(2))) for le in BUCKETS
    ]
    edges = np.array([0.0, *cdf, 1.0])
    return np.diff(edges)


def simulate(s: Scenario, seed: int) -> dict[str, np.ndarray]:
    """Cumulative counters per scrape: requests by status, histogram bucket counts."""
    rng = np.random.default_rng(seed * 1_000_003 + s.index)
    t = np.arange(-PRE, POST, STEP, dtype=float)
    mean = s.rps * STEP * (rng.gamma(1.5, 1 / 1.5, t.size) if s.bursty else np.ones(t.size))
    n = rng.poisson(mean)
    p = _error_rate(s, t)
    if s.bursty:  # overdispersed errors: the proportion itself wanders between scrapes
        c = 300.0
        p = rng.beta(np.maximum(p * c, 1e-9), np.maximum((1 - p) * c, 1e-9))
    errors = rng.binomial(n, np.clip(p, 0, 1))
    base_median = 0.2
    slow = (t >= (s.onset or 0)) if s.kind == "latency" else np.zeros(t.size, bool)
    shares_ok, shares_slow = (
        _bucket_shares(base_median),
        _bucket_shares(base_median * s.latency_factor),
    )
    lat = np.zeros((t.size, len(BUCKETS) + 1), dtype=np.int64)
    for mask, shares in ((~slow, shares_ok), (slow, shares_slow)):
        if mask.any():
            lat[mask] = rng.multinomial(n[mask], shares)
    out = {"ok": n - errors, "err": errors, "lat": lat, "t": t}
    return _cumulate(out, reset_at=int(PRE // STEP) if s.reset else None)


def _cumulate(d: dict[str, np.ndarray], reset_at: int | None) -> dict[str, np.ndarray]:
    out = {"t": d["t"]}
    for key in ("ok", "err", "lat"):
        inc = d[key]
        if reset_at is None:
            out[key] = np.cumsum(inc, axis=0)
        else:  # the old process's counters, then the new one's from zero
            out[key] = np.concatenate(
                [np.cumsum(inc[:reset_at], axis=0), np.cumsum(inc[reset_at:], axis=0)]
            )
    out["lat"] = np.cumsum(out["lat"], axis=1)  # cumulative buckets: le="0.1" … +Inf
    return out


def openmetrics(
    items: Iterable[Scenario], t0: float, seed: int, histograms: tuple[str, ...] = HISTOGRAMS
) -> Iterator[str]:
    """OpenMetrics text for deploys at ``t0`` (series by series, as promtool reads it)."""
    yield "# TYPE http_requests counter\n"
    for name in histograms:
        yield f"# TYPE {name} histogram\n"
    les = [f"{b:.2f}".rstrip("0").rstrip(".") if b < 1 else f"{b:.1f}" for b in BUCKETS]
    for s in items:
        d = simulate(s, seed)
        keep = np.ones(d["t"].size, bool)
        if s.gap is not None:
            keep &= ~((d["t"] >= s.gap[0]) & (d["t"] < s.gap[1]))
        stamps = [f"{t0 + t:.3f}" for t in d["t"]]
        idx = np.flatnonzero(keep)
        svc = f'service="{s.service}"'
        for status, key in (("2xx", "ok"), ("5xx", "err")):
            head = f'http_requests_total{{{svc},handler="/api",method="GET",status="{status}"}} '
            yield "".join(f"{head}{d[key][i]} {stamps[i]}\n" for i in idx)
        for name in histograms:
            for j, le in enumerate([*les, "+Inf"]):
                head = f'{name}_bucket{{{svc},le="{le}"}} '
                yield "".join(f"{head}{d['lat'][i, j]} {stamps[i]}\n" for i in idx)
            head = f"{name}_count{{{svc}}} "
            yield "".join(f"{head}{d['lat'][i, -1]} {stamps[i]}\n" for i in idx)
