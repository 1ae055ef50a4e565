"""The sentence a window page opens with: what happened, to which version, because of
which rule, with the deciding value against its limit and the time.

"Rolled back api v3 → v2 at 09:38:26: 5xx 29.2 % > 5 % for 1 m. v2 recovered 45 s
later." Built from the window's phase and its journal's structured data
(:mod:`watchdog.web.status_story`), never from event messages; every part is optional.
The "what now" box beside it is :mod:`watchdog.web.status_next`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from watchdog.foundation.model import EventKind, WindowPhase
from watchdog.lifecycle.control import RuleView
from watchdog.rulefile.units import seconds_text, value_text
from watchdog.store.base import RulePoint
from watchdog.web.status_story import Firing, Story, names, number, records, text

_OP = re.compile(r"^\s*(>=|<=|==|!=|>|<)")
GOOD, BAD, AMBER, NEUTRAL = "good", "bad", "amber", "neutral"


def clock_text(ts: float | None) -> str:
    """``09:38:26`` (UTC, as everywhere on the page)."""
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S")


@dataclass(frozen=True)
class Facts:
    """What the sentences are made of."""

    story: Story
    views: Mapping[str, RuleView]
    points: Mapping[str, Sequence[RulePoint]]
    now: float

    @property
    def ended_at(self) -> float:
        """When the window ended: its ending event, else its last change."""
        ended = self.story.ended
        return ended.at if ended is not None else self.story.window.updated_at

    @property
    def service(self) -> str:
        """The deployed service."""
        return self.story.window.deployment.service

    @property
    def new(self) -> str:
        """The version the window watches."""
        return self.story.window.deployment.version

    @property
    def old(self) -> str:
        """The version a rollback restores."""
        return self.story.window.deployment.previous_version or "the previous version"

    def unit(self, rule: str) -> str:
        """The rule's unit (plain numbers for a rule the page does not know)."""
        view = self.views.get(rule)
        return view.unit if view is not None else "count"

    def limit(self, rule: str, threshold: str | None) -> str:
        """``> 5 %``: the operator as judged, the bound in the rule's unit."""
        view = self.views.get(rule)
        op_match = _OP.match(threshold or "")
        op = op_match.group(1) if op_match else ">"
        bound = view.threshold_value if view is not None else None
        if view is not None and view.evidence is not None:
            return f"> limit {value_text(bound, 'ratio')}"
        if bound is None:
            return threshold or "its threshold"
        return f"{op} {value_text(bound, self.unit(rule))}"

    def why(self, f: Firing | None) -> str:
        """``5xx 29.2 % > 5 % for 1 m``."""
        if f is None:
            return "no rule fired"
        lasting = f" for {seconds_text(f.for_seconds)}" if f.for_seconds > 0 else ""
        value = value_text(f.value, self.unit(f.rule))
        return f"{f.rule} {value} {self.limit(f.rule, f.threshold)}{lasting}"


def _rolled_back(x: Facts) -> tuple[str, str]:
    s = x.story
    started = s.get(EventKind.ROLLBACK_STARTED)
    at = clock_text(started.at if started else s.window.updated_at)
    head = f"Rolled back {x.service} {x.new} → {x.old} at {at}: {_cause(x)}."
    recovered, unsure = s.get(EventKind.RECOVERED), s.get(EventKind.RECOVERY_UNCONFIRMED)
    if recovered is not None:
        took = number(recovered.data, "took")
        later = f"{seconds_text(took)} later" if took is not None else "after the rollback"
        return GOOD, f"{head} {x.old} recovered {later}."
    if unsure is not None:
        rules = ", ".join(names(unsure.data, "recovery")) or "the rule that fired"
        return AMBER, f"{head} Recovery on {x.old} not confirmed: {rules} had no verdict."
    return GOOD, head


def _cause(x: Facts) -> str:
    """The firing rule, or who rolled back by hand and why."""
    started = x.story.get(EventKind.ROLLBACK_STARTED)
    trigger = text(started.data, "trigger") if started else None
    if started is not None and trigger == "manual":
        actor = text(started.data, "actor") or "a person"
        return f"by hand, by {actor}"
    return x.why(x.story.trigger)


def _failed(x: Facts) -> tuple[str, str]:
    s = x.story
    failed, step = s.get(EventKind.ROLLBACK_FAILED), s.get(EventKind.STEP_FAILED)
    at = clock_text(failed.at if failed else s.window.updated_at)
    what = s.window.reason or "a step failed"
    if step is not None and text(step.data, "step"):
        what = f"step {text(step.data, 'step')} failed: {s.window.reason or 'see its output'}"
    return BAD, (
        f"Rollback of {x.service} {x.new} → {x.old} FAILED at {at} ({what}); it was "
        f"started because {_cause(x)}. Act now: {x.new} may still be serving: roll back "
        "by hand (below)."
    )


def _trend(x: Facts, rule: str, since: float) -> str:
    """What the rule's values did after the rollback, in words."""
    points = [p for p in x.points.get(rule, ()) if p.value is not None]
    before = [p.value for p in points if p.at <= since and p.value is not None]
    after = [p.value for p in points if p.at > since and p.value is not None]
    if not before or not after:
        return ""
    top, last, unit = max(before), after[-1], x.unit(rule)
    shown = f"from {value_text(top, unit)} to {value_text(last, unit)}"
    if last < top * 0.8:
        return (
            f" It fell {shown} after the rollback but stays over its limit: the rollback "
            "helped, not enough; something besides the deploy may be wrong too."
        )
    if last > top * 1.2:
        return f" It rose {shown} after the rollback: the restored version does no better."
    return f" It stayed near {value_text(last, unit)} after the rollback: {x.old} does no better."


def _ineffective(x: Facts) -> tuple[str, str]:
    s = x.story
    event = s.get(EventKind.ROLLBACK_INEFFECTIVE)
    breaching = names(event.data, "breaching") if event else []
    rule = breaching[0] if breaching else (s.trigger.rule if s.trigger else "")
    done = s.get(EventKind.ROLLBACK_SUCCEEDED)
    at = clock_text(done.at if done else None)
    view = x.views.get(rule)
    now = value_text(view.last_value if view else None, x.unit(rule))
    watched = seconds_text(s.window.confirm_for)
    head = (
        f"Rolled back {x.service} {x.new} → {x.old} at {at} ({_cause(x)}), but {rule} "
        f"still breaches on {x.old} after {watched}: {now} {x.limit(rule, None)}."
    )
    return BAD, head + _trend(x, rule, done.at if done else s.window.updated_at)


def _passed(x: Facts) -> tuple[str, str]:
    w = x.story.window
    span = seconds_text(w.ends_at - w.started_at)
    would = x.story.get(EventKind.WOULD_ROLL_BACK)
    if would is not None:
        return AMBER, (
            f"Passed: {x.service} {x.new} stays deployed, but in shadow mode "
            f"{x.why(x.story.trigger)} would have rolled it back at {clock_text(would.at)}."
        )
    noted = sorted(x.story.firings)
    extra = f" ({', '.join(noted)} fired, but only to notify)" if noted else ""
    return GOOD, (
        f"Passed: {x.service} {x.new} was watched for {span} until "
        f"{clock_text(x.ended_at)} and no rollback rule fired{extra}. It stays deployed."
    )


def _unjudged(x: Facts) -> list[str]:
    """The rules that could not be judged: as the ending event names them (a list, or a
    per-rule summary whose verdict is inconclusive), else the rules inconclusive now."""
    ended = x.story.get(EventKind.WINDOW_INCONCLUSIVE)
    data = ended.data if ended is not None else {}
    listed = names(data, "unjudged") or names(data, "inconclusive")
    rules = data.get("rules")
    if not listed and isinstance(rules, Mapping):
        listed = [
            str(name)
            for name, summary in rules.items()
            if not isinstance(summary, Mapping)
            or "inconclusive" in (summary.get("last_verdict"), summary.get("verdict"))
        ]
    elif not listed:
        listed = names(data, "rules")
    return listed or [r.name for r in x.views.values() if r.verdict.value == "inconclusive"]


def _coverage(x: Facts, rule: str) -> str:
    """``judged 3 of 36 times: blind`` from the ending event's record, else the reason."""
    ended = x.story.get(EventKind.WINDOW_INCONCLUSIVE)
    got = records(ended.data, "unjudged").get(rule, {}) if ended is not None else {}
    judged, total = number(got, "judged"), number(got, "evaluations")
    why = text(got, "reason") or text(got, "cause")
    view = x.views.get(rule)
    why = why or (view.reason if view is not None else None)
    seen = f"judged {judged:.0f} of {total:.0f} times" if judged is not None and total else ""
    return ": ".join(part for part in (seen, why) if part)


def _inconclusive(x: Facts) -> tuple[str, str]:
    rules = _unjudged(x)
    which = ", ".join(rules) if rules else "a rollback rule"
    detail = _coverage(x, rules[0]) if rules else ""
    because = f" ({detail})" if detail else ""
    return AMBER, (
        f"Inconclusive: the window on {x.service} {x.new} ended at "
        f"{clock_text(x.ended_at)} but {which} could not be judged for most of "
        f"it{because}. Nobody can say it is fine: check by hand."
    )


def _expired(x: Facts) -> tuple[str, str]:
    held = x.story.get(EventKind.HELD)
    who = (text(held.data, "actor") or "someone") if held else "someone"
    since = f" at {clock_text(held.at)}" if held else ""
    return BAD, (
        f"Expired while held: {who} held {x.service} {x.new}{since}, and when the window "
        f"ended at {clock_text(x.ended_at)} {x.why(x.story.trigger)} was still "
        "firing. Nothing rolled back: decide now."
    )


def _would(x: Facts) -> tuple[str, str]:
    would = x.story.get(EventKind.WOULD_ROLL_BACK)
    at = clock_text(would.at if would else x.story.window.updated_at)
    return AMBER, (
        f"Would have rolled back {x.service} {x.new} → {x.old} at {at}: "
        f"{x.why(x.story.trigger)}. Shadow mode: nothing was done, {x.new} still runs."
    )


def _closed(x: Facts) -> tuple[str, str]:
    s = x.story
    if s.window.phase is WindowPhase.SUPERSEDED:
        event = s.get(EventKind.WINDOW_SUPERSEDED)
        by = text(event.data, "by") if event else None
        newer = f" (window {by})" if by else ""
        return NEUTRAL, (
            f"Superseded at {clock_text(s.window.updated_at)}: a newer deploy of "
            f"{x.service}{newer} is watched instead of {x.new}."
        )
    event = s.get(EventKind.WINDOW_ABORTED)
    who = (text(event.data, "actor") if event else None) or "a person"
    reason = f": {s.window.reason}" if s.window.reason else ""
    return NEUTRAL, (
        f"Closed by {who} at {clock_text(s.window.updated_at)} without rolling back"
        f"{reason}. {x.new} stays deployed, unwatched."
    )


def _live(x: Facts) -> tuple[str, str]:
    w = x.story.window
    firing = [r for r in x.views.values() if r.verdict.value in ("firing", "pending")]
    phase = w.phase.value.replace("_", " ")
    if w.phase is WindowPhase.CONFIRMING:
        return AMBER, f"Rolled back to {x.old}; confirming that {x.why(x.story.trigger)} recovers."
    if w.phase is WindowPhase.ROLLING_BACK:
        return BAD, f"Rolling back {x.service} {x.new} → {x.old}: {_cause(x)}."
    if not firing:
        return GOOD, f"{phase.capitalize()}: {x.service} {x.new}, every rule ok so far."
    r = firing[0]
    value = value_text(r.last_value, r.unit)
    return BAD if r.verdict.value == "firing" else AMBER, (
        f"{phase.capitalize()}: {x.service} {x.new}: {r.name} is {r.verdict.value} at "
        f"{value} {x.limit(r.name, r.threshold)}."
    )


_SENTENCES: dict[WindowPhase, Callable[[Facts], tuple[str, str]]] = {
    WindowPhase.ROLLED_BACK: _rolled_back,
    WindowPhase.ROLLBACK_FAILED: _failed,
    WindowPhase.ROLLBACK_INEFFECTIVE: _ineffective,
    WindowPhase.PASSED: _passed,
    WindowPhase.INCONCLUSIVE: _inconclusive,
    WindowPhase.EXPIRED_WHILE_HELD: _expired,
    WindowPhase.WOULD_HAVE_ROLLED_BACK: _would,
    WindowPhase.ABORTED: _closed,
    WindowPhase.SUPERSEDED: _closed,
}


def sentence(facts: Facts) -> tuple[str, str]:
    """The tone (good, bad, amber, neutral) and the sentence, as plain text."""
    return _SENTENCES.get(facts.story.window.phase, _live)(facts)
