"""The exception tree. Every error says whether trying again can help.

::

    WatchdogError
    ├── TransientError      retry later: timeouts, refused connections, 5xx, 429
    ├── PermanentError      retrying cannot help: 4xx, bad query, missing plan
    │   └── ConfigError     a rule file or setting is wrong (message names file:line)
    ├── NotFound            an API caller named something that does not exist (404)
    └── Conflict            the request contradicts the window's phase (409)

"No data" is not an error: a source that answered with nothing returns a
``Sample.no_data`` and the rule's ``no_data`` policy decides what it means.
"""

from __future__ import annotations


class WatchdogError(Exception):
    """Base of every error the watchdog raises on purpose."""

    transient: bool = False


class Queued(WatchdogError):
    """Not done yet, but accepted for later: the leader carries it out (``pipeline/handoff.py``).

    ``window`` is what the caller may show meanwhile; ``within`` how many seconds at most
    until the leader acts (a lease plus a tick). The API answers 202, Slack "Queued".
    """

    def __init__(self, message: str, *, window: object, within: float) -> None:
        super().__init__(message)
        self.window = window
        self.within = within


class TransientError(WatchdogError):
    """A failure that may pass: the caller should retry with backoff."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(TransientError):
    """A limit on work in progress is reached (HTTP 429): try again once some finishes."""


class PermanentError(WatchdogError):
    """A failure that retrying will not fix."""


class Refused(PermanentError):
    """A request refused at the door, naming the field at fault (the API answers 422)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FencedOut(PermanentError):
    """The store refused a write: its fencing token is older than the newest one issued.

    The writer was deposed (another replica took the lease since): it must stop and
    leave the outcome to the leader, never report a failure of its own.
    """

    def __init__(self, token: int, newest: int) -> None:
        super().__init__(f"fencing token #{token} refused: the store has issued #{newest}")
        self.token = token
        self.newest = newest


class ConfigError(PermanentError):
    """Invalid configuration; ``problems`` lists every ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class NotFound(WatchdogError):
    """The named thing does not exist."""


class Conflict(WatchdogError):
    """The request is valid but contradicts the current state."""
