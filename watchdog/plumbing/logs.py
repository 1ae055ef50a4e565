"""Logging: structlog everywhere, JSON in production, and secrets never reach a log line.

Every record, whether it came from a structlog logger or from a stdlib logger (aiohttp,
APScheduler, asyncpg, ...), goes through the same processor chain and the same
:class:`Redactor` before it is rendered, so a token pasted into an exception message or
an aiohttp access line is masked just like one passed as a keyword argument.

The redactor runs *after* exceptions are formatted into text, so tracebacks are
scrubbed too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Literal, TextIO
from urllib.parse import quote

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "***"

_KEY_WORDS = (
    r"token|password|passwd|secret|authorization|api[_-]?key|private[_-]?key|dsn"
    r"|routing[_-]?key|integration[_-]?key|webhook[_-]?url|cookie"
)
SECRET_KEY = re.compile(_KEY_WORDS, re.IGNORECASE)
"""Keys whose values are masked wholesale (substring match, case-insensitive)."""

# Pattern -> replacement, applied to every string (the event text included).
_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host  ->  scheme://user:***@host
    (
        re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@\s]+@"),
        r"\g<head>" + MASK + "@",
    ),
    # key=value / "key": "value" / "Authorization: Bearer x" in free text and query strings.
    (
        re.compile(
            r"(?P<key>\b\w*(?:" + _KEY_WORDS + r")\w*)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\*\*\*)(?:(?:bearer|basic|token)\s+)?[^\s\"',&;}]+",
            re.IGNORECASE,
        ),
        r"\g<key>\g<sep>" + MASK,
    ),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + MASK),
    # Slack bot/user/app/refresh/config tokens.
    (re.compile(r"\b(xox[abeoprs]|xapp)-[A-Za-z0-9-]+"), r"\1-" + MASK),
    # Slack incoming webhooks and workflow triggers: the path is the credential.
    (
        re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+"),
        r"\1" + MASK,
    ),
)

_MIN_SECRET = 4
"""Known secrets shorter than this are ignored: masking them would garble every line."""


class Redactor:
    """A structlog processor that masks secrets anywhere in an event dict.

    * values of keys that look secret (``token``, ``password``, ``dsn``, ...) become
      ``***`` (numbers, booleans and ``None`` are kept: fencing tokens and flags are
      useful and are never credentials here);
    * every occurrence of a known secret value (and its URL-encoded form) becomes ``***``;
    * URL passwords, ``Bearer``/``Basic`` credentials, Slack tokens and webhook paths,
      and ``key=value`` pairs with a secret-looking key are masked inside any string.

    Dicts, lists, tuples and sets are walked recursively (sequences come back as lists);
    other objects are rendered with ``str()`` and scrubbed.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants = set()
        for secret in secrets:
            if len(secret) >= _MIN_SECRET:
                variants.update({secret, quote(secret, safe=""), quote(secret)})
        ordered = sorted(variants, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """Return ``event_dict`` with every secret masked."""
        return {key: self._field(key, value) for key, value in event_dict.items()}

    def scrub(self, text: str) -> str:
        """Mask secrets inside one string."""
        if self._known is not None:
            text = self._known.sub(MASK, text)
        for pattern, replacement in _TEXT_RULES:
            text = pattern.sub(replacement, text)
        return text

    def _field(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and SECRET_KEY.search(key) and not _harmless(value):
            return MASK
        return self._value(value)

    def _value(self, value: Any) -> Any:
        if _harmless(value):
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        if isinstance(value, Mapping):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(v) for v in value]
        return self.scrub(str(value))


def _harmless(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float)


# The evaluation a task runs (window, service, version, rule): one variable set once per
# task and merged only into lines actually logged. structlog's bind_contextvars sets one
# variable per key (7 % of the process at 3,000 windows, bench/scale.py) for lines that
# are almost never written.
_TAGS: ContextVar[Mapping[str, str] | None] = ContextVar("watchdog_log_tags", default=None)


def tag_task(**values: str) -> None:
    """Tag every line logged from here to the end of the current task with ``values``
    (by any logger). Tasks copy their context when created: no reset is needed, and
    other tasks never see them."""
    _TAGS.set(values)


def merge_tags(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The structlog processor that adds the task's tags (a line's own keys win)."""
    tags = _TAGS.get()
    return event_dict if not tags else {**tags, **event_dict}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        merge_tags,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


# Third-party loggers held to at least this level unless the service logs at debug.
# Their routine lines drowned ours: APScheduler's "Running job ... executed successfully"
# every tick was 88 % of an idle log; httpx logs every request (each HTTP probe) at info;
# urllib3 warns "Retrying (Retry(total=0...))" on every poll while Prometheus is down,
# which the source already reports once, as a failed sample and a "watchdog blind" event;
# aiohttp's access log is off (web/listen.py) and held at warning should it be enabled.
QUIET_LOGGERS = {
    "apscheduler": "WARNING",
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "urllib3": "ERROR",
    "aiohttp.access": "WARNING",
}


class _SkippedTicks(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances reached" (but
    at debug): a tick that outlasts the interval makes the next one skip by design
    (max_instances=1, coalesce; evaluations run by due time), and on a busy host it
    was a warning per tick."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances" not in str(record.msg):
            return True
        return logging.getLogger().isEnabledFor(logging.DEBUG)


LogFormat = Literal["json", "console", "auto"]
"""``auto``: console text when the stream is a terminal, JSON lines otherwise."""


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    if fmt == "auto":
        fmt = "console" if _isatty(stream) else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer(sort_keys=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream is no terminal
        return False


def about_window(
    window: str, service: str, version: str, rule: str | None = None
) -> AbstractContextManager[None]:
    """Bind the window's id, service, version (and ``rule``) to every line logged inside
    the block, by any logger, in this task only (structlog contextvars)."""
    values = {"window": window, "service": service, "version": version}
    if rule is not None:
        values["rule"] = rule
    return structlog.contextvars.bound_contextvars(**values)


def configure_logging(
    level: str,
    fmt: LogFormat,
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one redacting chain to ``stream``.

    ``level`` is a level name (``debug``, ``info``, ...); ``fmt`` picks JSON lines
    (production), the human console renderer, or ``auto`` (console on a terminal);
    ``secrets`` are values (tokens, DSNs, routing keys) to mask wherever they appear.
    ``stream`` defaults to stderr. Calling it again replaces the previous configuration.
    """
    stream = stream if stream is not None else sys.stderr
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Loggers are often created at import time, before this runs: never cache them.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            Redactor(secrets),
            _renderer(fmt, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedTicks) for f in scheduler.filters):
        scheduler.addFilter(_SkippedTicks())
    for name, floor in QUIET_LOGGERS.items():
        # A debug run still sees them.
        quiet = max(logging.getLevelNamesMapping()[floor], root.level)
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else quiet)


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (usually ``__name__``)."""
    if name is None:
        return structlog.stdlib.get_logger(**initial_values)
    return structlog.stdlib.get_logger(name, **initial_values)
