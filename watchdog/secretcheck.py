"""Secret strength: the service refuses to start on a secret that protects nothing.

An empty token used to count as "no token" and switch authentication off (a compose
``${VAR}`` left unset). Every token, password and signing secret setting is therefore
checked once, at the edge: empty, whitespace-only, shorter than :data:`MIN_LENGTH`,
a single character repeated, or a placeholder from our own examples
(``change-me-to-a-long-random-string``, ``rnd_xxxxxxxx…``) is refused. Problems name the
setting and why, never the value. URLs (store, Redis, watched databases) are checked
only for the password they carry: a URL without one (peer or trust auth) is fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

MIN_LENGTH = 16
MIN_DISTINCT = 4  # "aaaaaaaaaaaaaaaa" is long and still guessable in one try

# Placeholders our own examples and docs use (deploy/watchdog.env.example, README,
# compose comments), and the usual words for them.
_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|replace[-_ ]?me|fill[-_ ]?me|your[-_ ]?(api[-_ ]?)?"
    r"(token|secret|key|password)|x{8,}|^<.*>$|…|\.\.\.",
    re.IGNORECASE,
)


def weakness(value: str) -> str | None:
    """Why ``value`` is not a usable secret (None: it is)."""
    if not value:
        return "is empty"
    if not value.strip():
        return "is only whitespace"
    if value != value.strip():
        return "has leading or trailing whitespace (a copy-paste slip?)"
    if _PLACEHOLDER.search(value):
        return "is a placeholder from the examples: set the real secret (`openssl rand -hex 32`)"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(value)) < MIN_DISTINCT:
        return "is one character repeated"
    return None


def url_password(url: str) -> str | None:
    """The password a connection URL carries (userinfo or ``?password=``), or None."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password is not None:
        return unquote(password)
    given = parse_qs(parts.query, keep_blank_values=True).get("password")
    return given[0] if given else None


def problems(
    secrets: Iterable[tuple[str, SecretStr | None]],
    urls: Iterable[tuple[str, SecretStr | None]],
) -> list[str]:
    """One line per weak secret: ``setting (WATCHDOG_…): why``, never the value."""
    out = []
    for name, secret in secrets:
        if secret is not None and (why := weakness(secret.get_secret_value())):
            out.append(f"{name} ({env_name(name)}) {why}")
    for name, url in urls:
        password = url_password(url.get_secret_value()) if url is not None else None
        if password is not None and (why := weakness(password)):
            out.append(f"{name} ({env_name(name)}): the password in the URL {why}")
    return out


def env_name(setting: str) -> str:
    """The environment variable of a setting path: ``notify.webhook_secret`` →
    ``WATCHDOG_NOTIFY__WEBHOOK_SECRET``; a map entry ``postgres_targets[app]`` names
    the map's variable."""
    base = setting.split("[", 1)[0]
    return "WATCHDOG_" + base.replace(".", "__").upper()
