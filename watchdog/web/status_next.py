"""The "what now" box under a window's verdict: the exact commands to run next.

The page is read-only (no forms: its CSP forbids them), so each action is the CLI
command that does it, ready to paste; a failed or doubtful rollback gets the plan's
own steps to run by hand (:mod:`watchdog.web.status_manual`) and the rule's runbook.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from watchdog.foundation.model import WindowPhase
from watchdog.web.status_manual import PlanLookup, plan_commands
from watchdog.web.status_verdict import Facts


@dataclass(frozen=True)
class Todo:
    """One thing to do: words, and maybe a command or a link."""

    words: str
    code: str = ""
    href: str = ""


_BY_HAND = frozenset(
    {
        WindowPhase.ROLLBACK_FAILED,
        WindowPhase.INCONCLUSIVE,
        WindowPhase.EXPIRED_WHILE_HELD,
        WindowPhase.WOULD_HAVE_ROLLED_BACK,
    }
)
# Phases where nothing is wrong (or nothing is watched): no runbook to read.
_SETTLED = frozenset({WindowPhase.PASSED, WindowPhase.ABORTED, WindowPhase.SUPERSEDED})
_ADVICE = {
    WindowPhase.PASSED: "Nothing to do: the deploy stays.",
    WindowPhase.ROLLED_BACK: "The service stays on the previous version. Before deploying "
    "this version again, read the graph of the rule that fired.",
    WindowPhase.ROLLBACK_FAILED: "Roll back by hand now, then check that the service "
    "answers on the previous version.",
    WindowPhase.ROLLBACK_INEFFECTIVE: "The watchdog will not roll back again. Look beyond "
    "the deploy: dependencies, traffic, configuration, the database.",
    WindowPhase.INCONCLUSIVE: "Check the unjudged rules by hand (is their source up, is "
    "there traffic?). If in doubt, roll back.",
    WindowPhase.EXPIRED_WHILE_HELD: "A rule was firing when the hold ran out: roll back, or "
    "say why the deploy stays.",
    WindowPhase.WOULD_HAVE_ROLLED_BACK: "If this was a real regression, roll back by hand; "
    "to let the watchdog act next time, remove `shadow: true` from the rule or the deploy.",
    WindowPhase.ABORTED: "Nothing is watched any more: watch the service yourself.",
    WindowPhase.SUPERSEDED: "Follow the newer deploy's window.",
}


def todos(facts: Facts, plans: PlanLookup | None) -> list[Todo]:
    """What to do next, most urgent first."""
    window = facts.story.window
    out = [Todo(_ADVICE[window.phase])] if window.phase in _ADVICE else []
    if window.phase in _BY_HAND:
        out.append(_by_hand(facts, plans))
    out += _controls(window.phase, window.id)
    runbook = _runbook(facts) if window.phase not in _SETTLED else ""
    if runbook:
        out.append(Todo("Runbook:", href=runbook))
    out.append(Todo("Follow it from a terminal:", code=f"watchdog deploy status {window.id}"))
    return out


def _by_hand(facts: Facts, plans: PlanLookup | None) -> Todo:
    deployment = facts.story.window.deployment
    name, commands = plan_commands(deployment, plans)
    if not commands:
        return Todo(f"Roll back by hand: redeploy {facts.old} with your deploy tool.")
    return Todo(f"Roll back by hand (plan {name}):", code="\n".join(commands))


def _controls(phase: WindowPhase, window_id: str) -> list[Todo]:
    if phase in (WindowPhase.WATCHING, WindowPhase.AWAITING_APPROVAL):
        return [
            Todo("Stop automatic rollback while you look:", f"watchdog deploy hold {window_id}"),
            Todo("Roll back now:", f"watchdog deploy rollback {window_id}"),
        ]
    if phase is WindowPhase.HELD:
        return [
            Todo("Let the watchdog act again:", f"watchdog deploy resume {window_id}"),
            Todo("Roll back now:", f"watchdog deploy rollback {window_id}"),
        ]
    return []


def _runbook(facts: Facts) -> str:
    trigger = facts.story.trigger
    first = facts.views.get(trigger.rule) if trigger else None
    for view in [first, *facts.views.values()]:
        if view is not None and view.runbook_url:
            return view.runbook_url
    return ""


def next_html(items: list[Todo]) -> str:
    """The box."""
    rows = []
    for item in items:
        row = escape(item.words)
        if item.code:
            row += f"<pre class=cmd>{escape(item.code)}</pre>"
        if item.href.startswith(("https://", "http://")):
            row += f' <a href="{escape(item.href)}" rel="noreferrer">{escape(item.href)}</a>'
        rows.append(f"<li>{row}</li>")
    return f"<aside class=next><h3>What now</h3><ul>{''.join(rows)}</ul></aside>"
