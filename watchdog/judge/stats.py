"""The judge's statistics: pure functions over counts, no I/O, table-tested.

The test is a *mixture sequential probability ratio test* (Robbins; Johari et al.,
"Always valid inference", 2017) for a binomial proportion ``p`` against the composite
null ``p <= p0``. Its evidence after ``k`` errors in ``n`` requests is

    Λ = ∫ (q/p0)^k ((1-q)/(1-p0))^(n-k) π(q) dq,  π = Beta(a, b) truncated to (p0, 1).

For any true ``p <= p0`` each request multiplies Λ by a factor of expectation ≤ 1, so Λ is
a non-negative supermartingale starting at 1 and Ville's inequality bounds the chance it
*ever* reaches ``1/alpha`` by ``alpha``: the test may be looked at after every scrape without
the false-alarm rate growing. Closed form (``B`` the beta function, ``I`` the
regularised incomplete beta, ``1 - I`` is ``betaincc``):

    log Λ = log B(k+a, n-k+b) + log(1 - I_p0(k+a, n-k+b))
          - log B(a, b)       - log(1 - I_p0(a, b))
          - k log p0 - (n-k) log(1-p0)

The special functions are :mod:`watchdog.judge.special`'s: pure Python, checked
against scipy's values (scipy is no longer a dependency).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from functools import lru_cache

from watchdog.judge import special

PRIOR_A = 2.0  # prior shape: wide, its mean at twice the limit (see prior())
_MAX_N = 1e12


def prior(p0: float) -> tuple[float, float]:
    """The mixing prior: Beta(a, b) with mean ``2·p0`` (capped), before truncation.

    A regression we care about is a doubling or more; a wide prior (a = 2) keeps power
    for much larger jumps too, at a cost of a few requests of evidence (docs/rules.md).
    """
    mean = min(2.0 * p0, (1.0 + p0) / 2.0)
    return PRIOR_A, PRIOR_A * (1.0 - mean) / mean


def log_evidence(errors: float, total: float, p0: float) -> float:
    """``log Λ`` for ``errors`` of ``total`` against ``p <= p0`` (0 < p0 < 1)."""
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must be in (0, 1), got {p0}")
    n = max(0.0, total)
    k = min(max(0.0, errors), n)
    if n == 0:
        return 0.0
    a, b = prior(p0)
    tail = float(special.betaincc(k + a, n - k + b, p0))
    if tail <= 0.0:
        return -math.inf  # the data sit far below p0: no evidence at all
    head = float(special.betaincc(a, b, p0))
    return (
        float(special.betaln(k + a, n - k + b))
        + math.log(tail)
        - float(special.betaln(a, b))
        - math.log(head)
        - k * math.log(p0)
        - (n - k) * math.log1p(-p0)
    )


def confidence(log_lambda: float) -> float:
    """``1 - 1/Λ`` clamped to [0, 1]: the test fires once this reaches ``1 - alpha``."""
    if log_lambda <= 0:
        return 0.0
    return -math.expm1(-log_lambda)


def requests_to_tell(p0: float, alpha: float) -> float:
    """Requests needed before a doubling of the error rate (``2·p0``) would fire.

    Below this many requests the test cannot tell a healthy deploy from a clearly bad
    one, so the judge says *inconclusive* rather than *ok*. ``p0`` is rounded down to
    two significant digits first (a limit that moves with a growing baseline would
    otherwise miss the cache at every step; a lower limit needs more requests).
    """
    if p0 > 0:
        scale = 10.0 ** (math.floor(math.log10(p0)) - 1)
        p0 = max(math.floor(p0 / scale) * scale, scale)
    return _requests_to_tell(p0, alpha)


@lru_cache(maxsize=4096)
def _requests_to_tell(p0: float, alpha: float) -> float:
    target = math.log(1.0 / alpha)
    q = min(2.0 * p0, (1.0 + p0) / 2.0)
    lo, hi = 1.0, 2.0
    while log_evidence(q * hi, hi, p0) < target:
        lo, hi = hi, hi * 2.0
        if hi > _MAX_N:
            return math.inf
    for _ in range(40):  # bisection to ~1e-12 relative: plenty for a displayed count
        mid = (lo + hi) / 2.0
        if log_evidence(q * mid, mid, p0) >= target:
            hi = mid
        else:
            lo = mid
    return math.ceil(hi)


@lru_cache(maxsize=1024)  # a window's baseline is fixed: computed once, read each step
def upper_bound_once(errors: float, total: float, alpha: float) -> float:
    """Clopper-Pearson upper bound at level ``alpha`` (one look: a fixed baseline)."""
    n = max(0.0, total)
    k = min(max(0.0, errors), n)
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    return float(special.betaincinv(k + 1.0, n - k, 1.0 - alpha))  # the beta quantile


def upper_bound_always(errors: float, total: float, alpha: float) -> float:
    """Upper end of Robbins' uniform-mixture confidence sequence at level ``alpha``.

    Valid at every look at once, for a baseline that keeps growing during the window
    (the previous version serving beside the new one): the largest ``p`` with
    ``B(k+1, n-k+1) / (p^k (1-p)^(n-k)) < 1/alpha``.
    """
    n = max(0.0, total)
    k = min(max(0.0, errors), n)
    if n == 0:
        return 1.0
    log_mix = float(special.betaln(k + 1.0, n - k + 1.0))
    target = math.log(1.0 / alpha)

    def excess(p: float) -> float:
        log_lik = (k * math.log(p) if k else 0.0) + (n - k) * math.log1p(-p)
        return log_mix - log_lik - target

    low = max(k / n, 1e-12)
    if low >= 1.0 - 1e-12 or excess(1.0 - 1e-12) < 0:
        return 1.0
    if excess(low) >= 0:  # cannot happen for a proper mixture; be safe
        return low
    return _bisect(excess, low, 1.0 - 1e-12)


def _bisect(f: object, lo: float, hi: float) -> float:
    """Root of increasing ``f`` on [lo, hi] (f(lo) < 0 <= f(hi)), to 1e-9."""
    assert callable(f)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if f(mid) >= 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-9:
            break
    return hi


MIN_PAIRS = 6  # successive steps needed before the dispersion is trusted
LEVEL_SHIFT_STEPS = 3  # steps at the new level that tell a regression from a burst


def dispersion(steps: Sequence[tuple[float, float]]) -> tuple[float, int]:
    """How much more the errors vary than binomial noise says: the factor ``phi``.

    Errors come in bursts (a retry storm, one bad client): the proportion itself wanders
    from step to step, counts carry less information than their size says, and a
    binomial test would be overconfident at high traffic. Modelled as a random-effects
    binomial (beta-binomial): each step's proportion varies by ``tau2`` around the
    mean, so ``Var(errors) = n p (1-p) + n2 tau2`` over a test's steps, i.e. the counts
    weigh ``1/phi`` with ``phi = 1 + tau2 · (Σn²/Σn) / (p (1-p))`` (quasi-binomial).
    ``tau2`` comes from *successive differences* of the step proportions (von Neumann:
    a slow ramp barely moves them), each less its binomial part, averaged over the
    latest steps. The largest difference is left out only once the steps after it show
    a level shift (a regression's own step), never when the proportion comes back (a
    burst: leaving it out is exactly what would let it fire a fresh test).
    Returns ``(phi >= 1, pairs used)``.
    """
    errors = sum(e for e, _ in steps)
    total = sum(n for _, n in steps)
    if total > 0 and errors <= 0:  # no error yet: nothing bursts; each pair says so
        return 1.0, max(0, sum(n > 0 for _, n in steps) - 1)
    if total <= 0 or errors >= total:
        return 1.0, 0
    pooled = errors / total
    var = pooled * (1.0 - pooled)
    valid = [(e, n) for e, n in steps if n > 0]
    props = [e / n for e, n in valid]
    excess = [
        ((props[k + 1] - props[k]) ** 2 - var * (1.0 / valid[k][1] + 1.0 / valid[k + 1][1])) / 2
        for k in range(len(valid) - 1)
    ]
    if not excess:
        return 1.0, 0
    top = max(range(len(excess)), key=excess.__getitem__)
    if _level_shift(valid, props, top):
        excess.pop(top)  # a regression's own step, not a burst
    tau2 = max(0.0, statistics.fmean(excess))
    size = sum(n * n for _, n in steps) / total  # the n-weighted step size
    return 1.0 + tau2 * size / var, len(excess)


def _level_shift(valid: list[tuple[float, float]], props: list[float], k: int) -> bool:
    """True when the jump between steps ``k`` and ``k+1`` stays (a shift, not a burst):
    the steps after it, at least two, sit at least half the jump away from those before.
    A jump at the very end cannot be told from a burst yet and counts as one."""
    after = valid[k + 1 :]
    if len(after) < LEVEL_SHIFT_STEPS:
        return False
    before = valid[: k + 1]
    mean_before = sum(e for e, _ in before) / sum(n for _, n in before)
    mean_after = sum(e for e, _ in after) / sum(n for _, n in after)
    jump = props[k + 1] - props[k]
    return (mean_after - mean_before) * jump > 0 and abs(mean_after - mean_before) >= abs(jump) / 2


MIN_BLOCKS = 20  # five-minute blocks of the period before needed to trust its burstiness


def block_dispersion(
    errors: float, total: float, e2n: float, n2: float, blocks: float
) -> tuple[float, int]:
    """How strongly the errors of five minutes hang together, from the period before.

    The baseline query returns, over its five-minute blocks ``i`` with traffic, the
    sums ``Σe``, ``Σn``, ``Σe²/n``, ``Σn²`` and their number ``m``. With ``p = Σe/Σn``,
    Pearson's ``Σ n (e/n - p)² = Σe²/n - p Σe`` has expectation
    ``(m - 1) p (1-p) + tau2 (Σn - Σn²/Σn)`` when each block's proportion wanders by
    ``tau2`` around ``p`` (beta-binomial). Returned: ``rho = tau2 / (p (1-p))`` — a
    block of ``n`` requests then weighs as ``n / (1 + rho·n)`` independent ones — and
    the number of blocks it rests on.
    """
    m = int(blocks)
    if m < 2 or total <= 0 or errors <= 0 or errors >= total:
        return 0.0, max(m, 0)
    p = errors / total
    pearson = e2n - p * errors
    spread = total - n2 / total
    if spread <= 0:
        return 0.0, m
    tau2 = max(0.0, (pearson - (m - 1) * p * (1.0 - p)) / spread)
    return tau2 / (p * (1.0 - p)), m
