"""The limit a judge's tests test against, and the burstiness they allow for.

The limit comes from the baseline's upper confidence bound (at half the track's
``alpha``; the tests share the other half), so a baseline measured on little traffic
widens the limit instead of risking a false rollback. The baseline is the previous
version's *concurrent* counts while it still serves beside the new one (``against:
previous_version``, or ``auto`` during a canary), else the period before the deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from watchdog.foundation.judgestate import Counts
from watchdog.judge import stats
from watchdog.rulefile.judge import MOMENTS, ROLE, JudgeRule

BURSTY = 2.5  # a block this many times the mean before: errors came in bursts


@dataclass(frozen=True)
class Limit:
    """The proportion the tests test against, and where it came from."""

    p0: float | None  # None: no limit can be set (no baseline and no floor)
    baseline: Counts | None
    upper: float | None  # the baseline's upper confidence bound
    level: float  # each test's alpha
    note: str = ""
    concurrent: bool = False  # the baseline is the previous version serving beside


Index = Mapping[str, Mapping[str, float]]  # endpoint key ("" for all) -> role -> value


def index(baselines: Mapping[str, float] | None) -> Index:
    """The baseline query's answer by endpoint and role, once per evaluation; the whole
    service (``""``) sums every endpoint."""
    out: dict[str, dict[str, float]] = {"": {}}
    for key, value in (baselines or {}).items():
        if value != value:
            continue
        role, rest = _role_of(key)
        if role is None:
            continue
        if rest != "{}":
            part = out.setdefault(rest, {})
            part[role] = part.get(role, 0.0) + value
        out[""][role] = out[""].get(role, 0.0) + value
    return out


def before_counts(rule: JudgeRule, base: Index, key: str = "") -> Counts | None:
    """The period before's counts for the endpoint ``key`` (``""``: the whole)."""
    if rule.against in ("previous_version", "none"):
        return None
    roles = base.get(key) or {}
    total = roles.get("total", 0.0)
    if rule.bad_role == "good":
        errors = total - roles["good"] if "good" in roles else 0.0
    else:
        errors = roles.get("errors", 0.0)
    counts = Counts(min(max(errors, 0.0), total), total)
    return counts if counts.total > 0 else None


def _role_of(key: str) -> tuple[str | None, str]:
    """``{handler="/a",watchdog_judge="errors"}`` → ``("errors", '{handler="/a"}')``."""
    tag = f'{ROLE}="'
    at = key.find(tag)
    if at < 0:
        return None, key
    end = key.index('"', at + len(tag))
    rest = (key[:at] + key[end + 1 :]).replace(",}", "}").replace("{,", "{").replace(",,", ",")
    return key[at + len(tag) : end], rest


def burstiness(base: Index) -> tuple[float, int, float | None]:
    """``(rho, blocks, worst)`` from the baseline's block moments (``0, 0, None``
    without them): ``worst`` is the highest proportion of a block before the deploy."""
    got = base.get("") or {}
    if any(m not in got for m in MOMENTS):
        return 0.0, 0, None
    rho, blocks = stats.block_dispersion(*(got[m] for m in MOMENTS))
    worst, mean = got.get("m_max"), got["m_e"] / got["m_n"] if got["m_n"] > 0 else 0.0
    # Only bursts cap a step's errors: a calm baseline's worst block is barely above
    # its mean (and under the limit), and capping at it would hide every regression.
    bursty = worst is not None and worst > BURSTY * mean and blocks >= stats.MIN_BLOCKS
    return rho, blocks, worst if bursty else None


def limit_for(
    rule: JudgeRule, before: Counts | None, concurrent: Counts | None, alpha: float
) -> Limit:
    """The limit at ``alpha`` (this track's share): from the baseline's upper bound —
    the concurrent one when given — else the floor."""
    base = concurrent if concurrent is not None and concurrent.total > 0 else before
    if base is None:
        level = alpha / rule.tests
        if rule.floor > 0:
            note = "" if rule.against == "none" else "no baseline traffic: judged on the floor"
            return Limit(rule.floor, None, None, level, note)
        if rule.ceiling is not None:
            return Limit(
                rule.ceiling, None, None, level, "no baseline traffic: judged on the ceiling"
            )
        return Limit(None, None, None, level, "baseline unavailable (no traffic before)")
    half = alpha / 2.0
    is_concurrent = base is concurrent
    if is_concurrent:
        upper = stats.upper_bound_always(base.errors, base.total, half)
    else:
        upper = stats.upper_bound_once(base.errors, base.total, half)
    p0 = max(rule.factor * upper, upper + rule.margin, rule.floor)
    if rule.ceiling is not None:
        p0 = min(p0, rule.ceiling)
    if p0 >= 1.0:
        return Limit(None, base, upper, half / rule.tests, "baseline too uncertain to set a limit")
    return Limit(p0, base, upper, half / rule.tests, concurrent=is_concurrent)
