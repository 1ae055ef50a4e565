""" "Watchdog blind": when a rule's source keeps failing, people must know the watchdog
cannot see. Told once per outage, when the count of failed polls in a row crosses the
threshold, and once more when the source answers again."""

from __future__ import annotations

from watchdog.model import EventKind, RuleState
from watchdog.rulefile.load import AnyRule


def blindness_change(
    rule: AnyRule, previous: RuleState, state: RuleState, blind_after: int
) -> tuple[EventKind, str] | None:
    """The event to journal when blindness starts or ends with this evaluation, else None."""
    was, is_ = previous.failures >= blind_after, state.failures >= blind_after
    if was == is_:
        return None
    if is_:
        return (
            EventKind.WATCHDOG_BLIND,
            f"watchdog blind: {rule.name} ({rule.source}) failed {state.failures} polls "
            f"in a row: {state.reason}",
        )
    return EventKind.WATCHDOG_SIGHTED, f"{rule.name} ({rule.source}) answers again"
