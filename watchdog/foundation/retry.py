"""One backoff rule for every retry: rollback steps and notification deliveries.

::

    delay(n) = max(min(first * 2**(n-1), cap), min(retry_after, retry_after_cap))

Exponential from ``first`` and capped; a server's ``Retry-After`` is honoured as a floor
(never shorter than what it asked), itself capped so a server cannot stall us for hours.
"""

from __future__ import annotations

_MAX_EXPONENT = 62  # 2**62 seconds is past any cap; keeps the float finite


def backoff_delay(
    attempt: int,
    *,
    first: float,
    cap: float,
    retry_after: float | None = None,
    retry_after_cap: float | None = None,
) -> float:
    """Seconds to wait after the ``attempt``-th failed attempt (1 for the first failure)."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    delay = min(first * 2.0**exponent, cap)
    if retry_after is not None:
        ceiling = cap if retry_after_cap is None else retry_after_cap
        delay = max(delay, min(retry_after, ceiling))
    return float(delay)
