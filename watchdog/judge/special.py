"""The beta-function special functions the judge's statistics need, in pure Python.

They came from ``scipy.special`` before: ~120 MB of wheels (scipy and numpy) on every
install for four functions, most of the time of a cold ``make demo``. Same names and
argument order as scipy's, so :mod:`watchdog.judge.stats` reads as it did; checked
against scipy's values to ~1e-10 relative (tests/unit/test_judge_special.py).

- :func:`betaln`: ``log B(a, b)``; where ``lgamma``'s differences would cancel (large
  arguments), Stirling's series with its correction term instead.
- :func:`betainc` / :func:`betaincc`: the regularised incomplete beta ``I_x(a, b)`` and
  ``1 - I_x(a, b)``, from its continued fraction (modified Lentz), evaluated on the side
  of the mean where it converges fast; the other side is one minus it.
- :func:`betaincinv`: ``x`` with ``I_x(a, b) = y``, by bisection (``I`` is increasing).
"""

from __future__ import annotations

import math

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_STIRLING = 10.0  # from here on the correction series below is good to ~1e-13
_EPS = 1e-15  # the continued fraction stops when a step changes it by less
_TINY = 1e-300  # Lentz: stands in for a zero denominator
_MAX_TERMS = 1_000_000  # terms grow like sqrt(max(a, b)) near the mean: 1e5 at 1e10


def _correction(x: float) -> float:
    """``lgamma(x) - ((x - ½) log x - x + ½ log 2π)`` for ``x >= 10`` (Stirling)."""
    z = 1.0 / (x * x)
    return (1.0 / 12.0 - z * (1.0 / 360.0 - z * (1.0 / 1260.0 - z / 1680.0))) / x


def _both_large(a: float, b: float) -> bool:
    return min(a, b) >= _STIRLING


def betaln(a: float, b: float) -> float:
    """``log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)`` for ``a, b > 0``."""
    small, big = min(a, b), max(a, b)
    if big < _STIRLING:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    total = a + b
    if small < _STIRLING:
        # lgamma(big) - lgamma(total), written so the two large terms never subtract
        delta = (
            -(big - 0.5) * math.log1p(small / big)
            - small * math.log(total)
            + small
            + _correction(big)
            - _correction(total)
        )
        return math.lgamma(small) + delta
    return (
        small * math.log(small / total)
        - big * math.log1p(small / big)
        + 0.5 * math.log(total / (small * big))
        + _HALF_LOG_2PI
        + _correction(small)
        + _correction(big)
        - _correction(total)
    )


def _log_front(a: float, b: float, x: float) -> float:
    """``log(x^a (1-x)^b / B(a, b))``, the factor in front of the continued fraction."""
    if not _both_large(a, b):
        return a * math.log(x) + b * math.log1p(-x) - betaln(a, b)
    total = a + b
    # a·log(x·t/a) + b·log((1-x)·t/b) through u = a - x·t: near the mean both logs are of
    # numbers within 1e-6 of 1, and a rounding there, times a or b, would cost 1e-9
    u = a - x * total
    return (
        a * math.log1p(-u / a)
        + b * math.log1p(u / b)
        + 0.5 * math.log(a * b / total)
        - _HALF_LOG_2PI
        - _correction(a)
        - _correction(b)
        + _correction(total)
    )


def _lentz(c: float, d: float, term: float) -> tuple[float, float]:
    """One step of the modified Lentz recurrence."""
    d = 1.0 + term * d
    c = 1.0 + term / c
    d = _TINY if abs(d) < _TINY else d
    c = _TINY if abs(c) < _TINY else c
    return c, 1.0 / d


def _fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (fast for ``x < (a+1)/(a+b+2)``)."""
    first = 1.0 - (a + b) * x / (a + 1.0)
    c, d = 1.0, 1.0 / (_TINY if abs(first) < _TINY else first)
    h = d
    for m in range(1, _MAX_TERMS):
        c, d = _lentz(c, d, m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)))
        h *= d * c
        c, d = _lentz(c, d, -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)))
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h  # beyond _MAX_TERMS: the best value reached (it has not happened in use)


def _pair(a: float, b: float, x: float) -> tuple[float, float]:
    """``(I_x(a, b), 1 - I_x(a, b))``, the smaller one computed directly."""
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"the beta function needs a, b > 0, got {a}, {b}")
    if x <= 0.0:
        return 0.0, 1.0
    if x >= 1.0:
        return 1.0, 0.0
    front = math.exp(_log_front(a, b, x))
    if x < (a + 1.0) / (a + b + 2.0):
        head = front * _fraction(a, b, x) / a
        return head, 1.0 - head
    tail = front * _fraction(b, a, 1.0 - x) / b
    return 1.0 - tail, tail


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta ``I_x(a, b)``: the Beta(a, b) CDF at ``x``."""
    return _pair(a, b, x)[0]


def betaincc(a: float, b: float, x: float) -> float:
    """Its complement ``1 - I_x(a, b)``, accurate when tiny (no subtraction from 1)."""
    return _pair(a, b, x)[1]


def betaincinv(a: float, b: float, y: float) -> float:
    """The Beta(a, b) quantile: ``x`` in [0, 1] with ``I_x(a, b) = y``."""
    if not 0.0 <= y <= 1.0:
        raise ValueError(f"a probability is in [0, 1], got {y}")
    if y in (0.0, 1.0):
        return y
    lo, hi = 0.0, 1.0
    for _ in range(1100):  # halving down to the smallest doubles, at most
        mid = (lo + hi) / 2.0
        if betainc(a, b, mid) >= y:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-15 * hi:
            break
    return hi
