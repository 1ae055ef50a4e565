"""The judge's beta-function special functions (watchdog/judge/special.py) against the
values scipy.special 1.17 gives (computed once and kept here: scipy is not installed
with the project)."""

from __future__ import annotations

import math

import pytest

from watchdog.judge import special, stats

INCOMPLETE = [  # (a, b, x, betainc, betaincc): scipy.special 1.17
    (0.5, 0.5, 0.3, 0.36901011956554536, 0.6309898804344546),
    (1, 1, 0.25, 0.25, 0.75),
    (2, 3, 0.4, 0.5247999999999999, 0.47519999999999996),
    (2, 998, 0.001, 0.26387302348155334, 0.7361269765184465),
    (2, 998, 0.02, 0.9999999632705167, 3.672948334782009e-08),
    (5, 50, 0.5, 0.9999999999809852, 1.9014845253906287e-11),
    (12, 988, 0.002, 1.2899393178854393e-06, 0.9999987100606821),
    (102, 1898, 0.02, 6.69204301558822e-17, 0.9999999999999999),
    (30, 970, 0.02, 0.02045505556342581, 0.9795449444365742),
    (0.8, 4.5, 0.9, 0.9999798995101357, 2.010048986457853e-05),
    (2, 49, 0.01, 0.08943531309603073, 0.9105646869039693),
    (1000, 1000, 0.49, 0.1855526594315119, 0.8144473405684886),
    (1000, 1000, 0.52, 0.9632205167213604, 0.03677948327863957),
    (10002, 90000, 0.1, 0.49355243899864387, 0.5064475610013499),
    (6002, 600000, 0.01, 0.7747236539170109, 0.22527634608299235),
    (2.5, 1000000.0, 1e-06, 0.15085530983853124, 0.8491446901614689),
    (50002.0, 9950000.0, 0.005, 0.49703096356865983, 0.5029690364313412),
    (3, 7, 0.99, 0.9999999999996463, 3.537280000000022e-13),
    (600, 20000, 0.02, 1.0426346231157635e-18, 1.0),
    (2, 18, 0.9, 1.0, 1.7199999999999933e-17),
]
BETALN = [  # (a, b, betaln)
    (0.5, 0.5, 1.1447298858494),
    (1, 1, 0.0),
    (2, 998, -13.812508054959835),
    (2, 3, -2.4849066497880004),
    (0.001, 5, 6.905672657062074),
    (12.5, 0.7, -1.4987894360979224),
    (1000000.0, 3, -40.75338749333037),  # exact: log(2 / (1e6 (1e6+1) (1e6+2))); scipy ...401
    (2.5, 1000000000.0, -51.52348172376811),
    (500000.0, 500000.0, -693152.4762292597),
    (100000000.0, 200000000.0, -190954258.57711267),
    (30, 970, -135.50581848140155),
    (9.9, 10.1, -13.735177544346378),
]
INVERSE = [  # (a, b, y, betaincinv)
    (1, 100, 0.999, 0.06674569920300895),
    (3, 998, 0.999, 0.011177192441194994),
    (11, 990, 0.95, 0.016903175120562504),
    (1, 1000000.0, 0.999, 6.907731420495575e-06),
    (51, 9950, 0.999, 0.007584335323688285),
    (2, 3, 0.5, 0.3857275681323895),
    (501, 500, 0.999, 0.5492289460152177),
]
EVIDENCE = [  # (errors, total, p0, log_evidence)
    (1, 20, 0.01, 0.5342523127073544),
    (5, 100, 0.02, 1.2023364773366),
    (30, 1000, 0.02, 0.9938165240656964),
    (100, 1000, 0.02, 81.4054968263448),
    (20, 1000, 0.02, -1.9030663150552165),
    (600, 20000, 0.02, 41.622015663021614),
    (3, 10, 0.1, 1.1706048990688098),
    (10, 10, 0.1, 14.2451995034432),
    (12, 1500, 0.005, 0.34902297558921447),
    (2500, 100000, 0.02, 55.622683450506656),
    (40, 10000, 0.002, 6.490139844283352),
    (7, 7000, 0.001, -1.3279835900486123),
]
TO_TELL = [  # (p0, alpha, requests_to_tell)
    (0.02, 0.001, 1033),
    (0.001, 0.001, 21175),
    (0.05, 0.01, 277),
    (0.0001, 0.001, 212000),
    (0.3, 0.05, 21),
]
UPPER = [  # (errors, total, alpha, upper_bound_once, upper_bound_always)
    (0, 100, 0.001, 0.06674569920300895, 0.10883774049658326),
    (3, 1000, 0.001, 0.012996697147763747, 0.020994689410534336),
    (50, 10000, 0.001, 0.007584335323688285, 0.009548939266237514),
    (0, 1000000.0, 0.001, 6.907731420495575e-06, 2.072379093030218e-05),
    (500, 1000, 0.05, 0.5264822687643087, 0.5556146707384666),
    (99, 100, 0.001, 0.999989995046714, 0.9999999010552898),
]


def close(got: float, want: float, rel: float = 1e-10) -> bool:
    return got == pytest.approx(want, rel=rel, abs=1e-300)


@pytest.mark.parametrize(("a", "b", "x", "head", "tail"), INCOMPLETE)
def test_the_incomplete_beta_and_its_complement(
    a: float, b: float, x: float, head: float, tail: float
) -> None:
    assert close(special.betainc(a, b, x), head)
    assert close(special.betaincc(a, b, x), tail)


@pytest.mark.parametrize(("a", "b", "want"), BETALN)
def test_the_log_beta_function(a: float, b: float, want: float) -> None:
    assert special.betaln(a, b) == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert special.betaln(b, a) == special.betaln(a, b)


@pytest.mark.parametrize(("a", "b", "y", "want"), INVERSE)
def test_the_beta_quantile(a: float, b: float, y: float, want: float) -> None:
    assert close(special.betaincinv(a, b, y), want, rel=1e-9)


def test_the_ends_and_bad_arguments() -> None:
    assert (special.betainc(2, 3, 0.0), special.betaincc(2, 3, 0.0)) == (0.0, 1.0)
    assert (special.betainc(2, 3, 1.0), special.betaincc(2, 3, 1.0)) == (1.0, 0.0)
    assert special.betaincinv(2, 3, 1.0) == 1.0
    with pytest.raises(ValueError, match="a, b > 0"):
        special.betainc(0.0, 3, 0.5)
    with pytest.raises(ValueError, match="probability"):
        special.betaincinv(2, 3, 1.5)


@pytest.mark.parametrize(("errors", "total", "p0", "want"), EVIDENCE)
def test_the_evidence_is_what_it_was_with_scipy(
    errors: float, total: float, p0: float, want: float
) -> None:
    assert stats.log_evidence(errors, total, p0) == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("p0", "alpha", "want"), TO_TELL)
def test_the_requests_needed_are_what_they_were(p0: float, alpha: float, want: float) -> None:
    assert stats.requests_to_tell(p0, alpha) == want


@pytest.mark.parametrize(("errors", "total", "alpha", "once", "always"), UPPER)
def test_the_bounds_are_what_they_were(
    errors: float, total: float, alpha: float, once: float, always: float
) -> None:
    stats.upper_bound_once.cache_clear()
    assert close(stats.upper_bound_once(errors, total, alpha), once, rel=1e-9)
    assert close(stats.upper_bound_always(errors, total, alpha), always, rel=1e-9)


def test_a_huge_window_still_answers() -> None:
    """Ten billion requests at the limit: the fraction converges, the evidence is sane."""
    evidence = stats.log_evidence(2e7, 1e10, 0.002)
    assert math.isfinite(evidence) and evidence < 0
