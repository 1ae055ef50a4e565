"""Secret strength: the service refuses to start on a secret that protects nothing.

An empty token used to count as "no token" and switch authentication off (a compose
``${VAR}`` left unset). Every token, password and signing secret setting is therefore
checked once, at the edge: empty, whitespace-only, shorter than :data:`MIN_LENGTH`,
a single character repeated, or a placeholder from our own examples
(``change-me-to-a-long-random-string``, ``rnd_xxxxxxxx…``) is refused. Problems name the
setting and why, never the value. Every ``SecretStr`` field of the settings is judged
(:func:`secret_fields`), so a secret setting added later is covered without a list to
keep. URLs and DSNs (fields named ``*_url`` or ``*_targets``: the store, Redis, watched
databases, the Slack webhook) are judged by the password they carry (a URL without one,
for peer or trust auth, is fine) and refused when they hold a placeholder. Plain URL
settings (``prometheus_url``, ``loki_url``…) that carry a password are judged the same
way (:func:`url_credentials`), and their passwords are redacted like secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

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


@dataclass(frozen=True)
class NamedSecret:
    """A secret setting: its dotted name, its value, whether it is a URL or DSN."""

    name: str
    value: SecretStr
    url: bool


def secret_fields(root: BaseModel, *nested: BaseModel) -> Iterator[NamedSecret]:
    """Every ``SecretStr`` (or map of them) in ``root`` and in its ``nested`` sections,
    named as the settings are (``api_token``, ``notify.webhook_secret``,
    ``postgres_targets[app]``)."""
    sections = [("", root)]
    sections += [(f"{_field_of(root, section)}.", section) for section in nested]
    for prefix, model in sections:
        for field in type(model).model_fields:
            value = getattr(model, field)
            url = field.endswith(("_url", "_targets"))
            if isinstance(value, SecretStr):
                yield NamedSecret(f"{prefix}{field}", value, url)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, SecretStr):
                        yield NamedSecret(f"{prefix}{field}[{key}]", item, url)


def redactable(secrets: Iterable[NamedSecret], *, shortest: int = 6) -> list[str]:
    """The values the log redactor masks: every secret's value and, for a URL or DSN,
    the password it carries (printed on its own by a driver's error, it is still masked).
    Values shorter than ``shortest`` are left out: masking them would garble every line."""
    out: list[str] = []
    for secret in secrets:
        value = secret.value.get_secret_value()
        password = url_password(value) if secret.url else None
        out += [v for v in (value, password) if v is not None and len(v) >= shortest]
    return out


def url_credentials(root: BaseModel, *nested: BaseModel) -> Iterator[NamedSecret]:
    """Every plain-text URL setting (``prometheus_url``, ``notify.webhook_url``) that
    carries a password (userinfo or ``?password=``): judged and redacted like a secret
    setting, since people put ``user:key@`` in a URL when there is no auth setting."""
    sections = [("", root)]
    sections += [(f"{_field_of(root, section)}.", section) for section in nested]
    for prefix, model in sections:
        for field in type(model).model_fields:
            value = getattr(model, field)
            if (
                field.endswith("_url")
                and isinstance(value, str)
                and url_password(value) is not None
            ):
                yield NamedSecret(f"{prefix}{field}", SecretStr(value), url=True)


def url_secret_values(root: BaseModel, *nested: BaseModel) -> list[str]:
    """The passwords plain URL settings carry, for the redactors (the whole URL is
    masked by the Redactor's URL rule; the bare password is masked wherever it shows)."""
    out = []
    for found in url_credentials(root, *nested):
        password = url_password(found.value.get_secret_value())
        if password:
            out.append(password)
    return out


def without_credentials(url: str) -> str:
    """``url`` without ``user:password@`` (links shown to people never carry them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def _field_of(root: BaseModel, section: BaseModel) -> str:
    return next(f for f in type(root).model_fields if getattr(root, f) is section)


def problems(secrets: Iterable[NamedSecret]) -> list[str]:
    """One line per weak secret: ``setting (WATCHDOG_…) why``, never the value."""
    out = []
    for secret in secrets:
        judge = _url_weakness if secret.url else weakness
        why = judge(secret.value.get_secret_value())
        if why is not None:
            out.append(f"{secret.name} ({env_name(secret.name)}) {why}")
    return out


def _url_weakness(url: str) -> str | None:
    if _PLACEHOLDER.search(url):
        return "holds a placeholder from the examples: set the real one"
    password = url_password(url)
    if password is not None and (why := weakness(password)):
        return f"carries a password that {why}"
    return None


def env_name(setting: str) -> str:
    """The environment variable of a setting path: ``notify.webhook_secret`` →
    ``WATCHDOG_NOTIFY__WEBHOOK_SECRET``; a map entry ``postgres_targets[app]`` names
    the map's variable."""
    base = setting.split("[", 1)[0]
    return "WATCHDOG_" + base.replace(".", "__").upper()
