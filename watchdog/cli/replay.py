"""``watchdog replay``: would these rules have rolled back that deploy?

    watchdog replay rules/ --service checkout --from 2026-11-24T14:00:00Z --to +30m

Times are ISO 8601 (``Z`` or an offset; no zone means UTC), epoch seconds, ``now``, or
relative: ``--from=-2h`` (before now; note the ``=``) and ``--to +30m`` (after
``--from``). Prometheus is ``--prometheus-url``, else the settings' ``prometheus_url``
(``WATCHDOG_PROMETHEUS_URL``, ``.env`` or the ``WATCHDOG_CONFIG`` file, as ``serve``
reads them); its token, the service label and (unless ``--scrape-interval``) the
scrape interval come from the settings too. A progress bar is drawn on stderr when it
is a terminal.

Each replayed rule ends with its final verdict (:mod:`watchdog.evaluation.replayfinal`): fired,
ok, pending, inconclusive (with the evidence seen and needed) or "no data for N of M
minutes". Exit status (the gate's codes where they mean the same, docs/deploy.md):

- 0: no rollback, and every replayed rule judged the range;
- 3: a rollback rule fired: the deploy would have been rolled back;
- 1: a rule saw no data at all (an unknown service, a range Prometheus holds nothing
  for, an unreachable Prometheus: "no rollback" would be a false pass);
- 9: a rule could not judge most of the range (data for half of it or less, or a judge
  rule that never had the evidence it needs): not a pass either;
- 2: bad flags, rule files or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from watchdog.cli.check import plural
from watchdog.cli.render import clean, seconds, table, when
from watchdog.evaluation.replay import MAX_EVALUATIONS, Replayer, ReplayResult, count_evaluations
from watchdog.foundation.durations import parse_duration
from watchdog.foundation.errors import ConfigError
from watchdog.foundation.model import Deployment

if TYPE_CHECKING:
    from watchdog.settings import Settings
    from watchdog.sources.base import History

BAR = 30
EXIT_JUDGED, EXIT_NO_DATA, EXIT_USAGE = 0, 1, 2
EXIT_WOULD_ROLL_BACK = 3  # as `deploy wait` for rolled_back
EXIT_UNJUDGED = 9  # as `deploy wait` for inconclusive


class ReplayError(Exception):
    """A bad flag or an unreachable range: one line, exit 2."""


def add_replay(sub: Any) -> None:
    """Register ``replay`` on the CLI's subcommands."""
    p = sub.add_parser("replay", help="backtest rule files over a past time range")
    p.add_argument("rules", nargs="+", type=Path, metavar="PATH", help="rule files/dirs")
    p.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="TIME",
        help="window start: ISO 8601, epoch seconds, now, or --from=-2h",
    )
    p.add_argument(
        "--to", dest="end", default="now", metavar="TIME", help="end (default now), or +30m"
    )
    p.add_argument("--service", required=True)
    p.add_argument("--environment", default="production")
    p.add_argument("--version", default="replay")
    p.add_argument("--previous-version")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--prometheus-url", metavar="URL")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per range query")
    p.add_argument(
        "--scrape-interval",
        type=parse_duration,
        default=None,
        help="the targets' scrape interval: ranges clamp to the window's age on this grid "
        "(default: the prometheus_scrape_interval setting)",
    )
    p.add_argument("--json", action="store_true", help="print the timeline as JSON")
    p.set_defaults(run=cmd_replay)


def parse_time(text: str, *, now: float, relative_to: float | None = None) -> float:
    """An absolute time from ISO 8601, epoch seconds, ``now``, ``-2h`` or ``+30m``."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("+"):
        return (now if relative_to is None else relative_to) + _duration(text[1:])
    if text.startswith("-"):
        return now - _duration(text[1:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"invalid time {text[:60]!r}: use ISO 8601, epoch seconds, now, -2h or +30m"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    """Load the rules, replay the range, print the timeline."""
    from watchdog.rulefile.load import load_rules

    try:
        start, end = _range(args)
        deployment = _deployment(args)
        rules = load_rules(args.rules)
        upstream = _upstream(args)
    except ReplayError as exc:
        print(f"watchdog: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print("watchdog: the rule files have problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if count_evaluations(rules, start, end) > MAX_EVALUATIONS:
        print(f"watchdog: range too long: over {MAX_EVALUATIONS} evaluations", file=sys.stderr)
        return 2
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    result = asyncio.run(_replay(args, upstream, rules, deployment, start, end, bar))
    if bar is not None:
        bar.finish()
    print(json.dumps(result.as_dict(), indent=2) if args.json else render_replay(result))
    return exit_code(result)


def exit_code(result: ReplayResult) -> int:
    """3 would roll back, 1 a rule saw no data at all, 9 one could not judge, else 0."""
    if result.rollback_at is not None:
        return EXIT_WOULD_ROLL_BACK
    if result.saw_no_data:
        return EXIT_NO_DATA
    return EXIT_UNJUDGED if result.unjudged else EXIT_JUDGED


@dataclass(frozen=True)
class Upstream:
    """What replay takes from the settings (flags win where there are flags)."""

    settings: Settings  # ``--prometheus-url`` applied: each kind's history opens from it
    scrape_interval: float
    service_label: str


def _upstream(args: argparse.Namespace) -> Upstream:
    """The settings (Prometheus' URL from the flag), scrape interval and service label."""
    from pydantic import ValidationError

    from watchdog.cli.serve import settings_problems
    from watchdog.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        raise ReplayError(settings_problems(exc).removeprefix("watchdog: ")) from None
    if args.prometheus_url:
        settings = settings.model_copy(update={"prometheus_url": args.prometheus_url})
    return Upstream(
        settings,
        args.scrape_interval or settings.prometheus_scrape_interval,
        settings.service_label,
    )


def histories(settings: Settings, timeout: float) -> dict[str, History]:
    """One range source per history the settings configure (Prometheus, Loki…), by
    ``Replay.upstream``: a rule whose kind's is missing is reported skipped."""
    from watchdog.sources.kinds import KINDS

    out: dict[str, History] = {}
    for kind in KINDS.values():
        spec = kind.replay
        if spec is not None and spec.upstream not in out:
            opened = spec.open(settings, timeout)
            if opened is not None:
                out[spec.upstream] = opened
    return out


def _range(args: argparse.Namespace) -> tuple[float, float]:
    now = time.time()
    start = parse_time(args.start, now=now)
    end = parse_time(args.end, now=now, relative_to=start)
    if end <= start:
        raise ReplayError("--to must be after --from")
    return start, end


def _deployment(args: argparse.Namespace) -> Deployment:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ReplayError(f"expected --label KEY=VALUE, got {item!r}")
        labels[key] = value
    return Deployment(args.service, args.environment, args.version, args.previous_version, labels)


async def _replay(
    args: argparse.Namespace,
    upstream: Upstream,
    rules: Any,
    deployment: Deployment,
    start: float,
    end: float,
    bar: ProgressBar | None,
) -> ReplayResult:
    opened = histories(upstream.settings, args.timeout)
    try:
        progress = bar.update if bar is not None else None
        others = {k: v for k, v in opened.items() if k != "prometheus"}
        replayer = Replayer(
            opened["prometheus"],
            upstreams=others,
            grid=upstream.scrape_interval,
            variables={"service_label": upstream.service_label},
        )
        return await replayer.run(rules, deployment, start, end, progress)
    finally:
        for history in opened.values():
            await history.close()


class ProgressBar:
    """``[#####.....] 12/40 queries`` redrawn in place on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def update(self, done: int, total: int) -> None:
        """Redraw for ``done`` of ``total``."""
        filled = BAR * done // max(total, 1)
        self._out.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} queries")
        self._out.flush()

    def finish(self) -> None:
        """End the bar's line."""
        self._out.write("\n")
        self._out.flush()


def render_replay(result: ReplayResult) -> str:
    """The timeline as a table, then the verdict in one sentence."""
    head = (
        f"replay {when_ts(result.start)} .. {when_ts(result.end)} "
        f"({seconds(result.end - result.start)}), {plural(len(result.replayed), 'rule')}, "
        f"{plural(result.evaluations, 'evaluation')}"
    )
    rows = [
        [when_ts(e.at), e.rule, e.kind.upper() if e.kind == "action" else e.kind, e.message]
        for e in result.events
    ]
    lines = [head, "", table(["TIME", "RULE", "EVENT", "DETAIL"], rows) if rows else "(quiet)"]
    lines.append("")
    lines += _no_data_lines(result)
    lines += [f"rule {clean(name)}: {clean(f.text(when_ts))}" for name, f in result.finals.items()]
    if result.rollback_at is not None:
        after = seconds(result.rollback_at - result.start)
        lines.append(
            f"verdict: would have rolled back at {when_ts(result.rollback_at)} "
            f"({after} in), rule {clean(result.rollback_rule)}"
        )
    elif result.saw_no_data:
        lines.append("verdict: not a pass: a rule saw no data, so nothing was judged")
    elif result.unjudged:
        names = ", ".join(clean(n) for n in result.unjudged)
        lines.append(f"verdict: not a pass: could not judge most of the range: {names}")
    else:
        lines.append("verdict: no rollback over this range; every rule judged it")
    lines += [f"skipped {clean(k)}: {clean(v)}" for k, v in result.skipped.items()]
    return "\n".join(lines)


def _no_data_lines(result: ReplayResult) -> list[str]:
    """How many evaluations had no data, and the rules that saw none at all."""
    missing = sum(result.without_data.values())
    lines = [f"{missing} of {result.evaluations} evaluations without data"]
    lines += [
        f"no data at all: {clean(rule)} ({clean(result.why_no_data.get(rule, ''))})"
        for rule in result.saw_no_data
    ]
    return lines


def when_ts(ts: float) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    return when(datetime.fromtimestamp(ts, UTC).isoformat())
