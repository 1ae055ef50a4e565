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


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


# Third-party loggers held to at least this level unless the service logs at debug.
QUIET_LOGGERS = {"apscheduler": "WARNING"}


def _renderer(fmt: Literal["json", "console"]) -> Processor:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer(sort_keys=True)


def configure_logging(
    level: str,
    fmt: Literal["json", "console"],
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one redacting chain to ``stream``.

    ``level`` is a level name (``debug``, ``info``, ...); ``fmt`` picks JSON lines
    (production) or the human console renderer; ``secrets`` are values (tokens, DSNs,
    routing keys) to mask wherever they appear. ``stream`` defaults to stderr.
    Calling it again replaces the previous configuration.
    """
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
            _renderer(fmt),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, floor in QUIET_LOGGERS.items():
        # Their routine lines drown ours ("Running job ... executed successfully" every
        # tick was 88 % of an idle log); a debug run still sees them.
        quiet = max(logging.getLevelNamesMapping()[floor], root.level)
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else quiet)


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (usually ``__name__``)."""
    if name is None:
        return structlog.stdlib.get_logger(**initial_values)
    return structlog.stdlib.get_logger(name, **initial_values)
