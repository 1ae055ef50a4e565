"""``{{ name }}`` substitution of deployment labels into queries and URLs.

Values are checked against a safe pattern before they are substituted, then escaped
for the target language (PromQL string literal, URL component, SQL is never templated
with values: it takes bind parameters).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import quote

from watchdog.foundation.errors import PermanentError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")
SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}")
SAFE_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")

DEPLOYMENT_VARS = frozenset(
    {"service", "environment", "version", "previous_version", "service_label"}
)
"""Names every query template may use; custom labels are ``labels.NAME``.
``service_label`` is the setting of that name (the label holding the service)."""

MESSAGE_VARS = frozenset({"value", "threshold", "baseline", "rule", "series"})
"""Extra names a rule's ``summary`` may use."""


def placeholders(template: str) -> list[str]:
    """The variable names a template refers to, in order."""
    return PLACEHOLDER.findall(template)


def unknown_vars(template: str, allowed: frozenset[str]) -> list[str]:
    """Names in ``template`` that are neither in ``allowed`` nor ``labels.*``."""
    return [n for n in placeholders(template) if n not in allowed and not n.startswith("labels.")]


def check_value(name: str, value: str) -> str:
    """Reject a deployment value that could break out of a query (raises ValueError)."""
    if not SAFE_VALUE.fullmatch(value):
        raise ValueError(
            f"{name}={value!r} is not allowed: use letters, digits and . _ : / @ + = - "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return value


def promql_escape(value: str) -> str:
    """Escape for the inside of a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def url_escape(value: str) -> str:
    """Escape for a URL path segment or query value."""
    return quote(value, safe="")


def render(
    template: str, variables: Mapping[str, str], escape: Callable[[str], str] = promql_escape
) -> str:
    """Substitute ``{{ name }}`` placeholders.

    Raises PermanentError when a variable is missing or its value is unsafe: such a
    rule cannot be evaluated for this deployment, and retrying will not change that.
    """
    if "{{" not in template:  # every evaluation renders: a shared query has nothing to fill
        return template

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise PermanentError(f"template variable {name!r} is not set for this deployment")
        value = variables[name]
        try:
            check_value(name, value)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        return escape(value)

    return PLACEHOLDER.sub(substitute, template)


def render_message(template: str, variables: Mapping[str, str]) -> str:
    """Substitute into human text; unknown names stay visible instead of failing."""
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)
