"""``docs/settings.md``, generated from the :class:`~watchdog.settings.Settings` model.

``make settings-doc`` (``python -m watchdog.config.settingsdoc > docs/settings.md``) writes it;
a test fails when the file differs from what this renders, so the reference cannot go
stale. Each setting's words are the comments written beside it in the model (the line
above and the end of its line), its sections the model's ``# --- name ---`` headers:
the model stays the one place a setting is described.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from watchdog.foundation.durations import format_duration
from watchdog.notify.config import NotifySettings
from watchdog.settings import Settings

# Examples where the default is unset or empty, as they are written in the environment.
EXAMPLES: dict[str, str] = {
    "public_url": "https://watchdog.example.com",
    "api_token": "a-long-random-token-0123456789",
    "rules": "rules/api.yml,rules/database.yml",
    "shadow_services": "api,payments-*",
    "store_url": "postgresql://watchdog:a-long-db-password-0123@db:5432/watchdog",
    "prometheus_token": "a-prometheus-bearer-token",
    "prometheus_username": "reader",
    "prometheus_password": "a-long-prometheus-password",
    "postgres_targets": '{"app": "postgresql://watchdog@db:5432/app"}',
    "redis_targets": '{"cache": "redis://redis:6379/0"}',
    "plans": '{"undo": {"steps": [{"name": "undo", "kind": "command", "argv": ["./undo.sh"]}]}}',
    "default_plan": "undo",
    "http_allowed_hosts": "deploy.internal,127.0.0.1",
    "render_api_key": "rnd_0123456789abcdef",
    "detect": '[{"service": "api", "url": "http://api:8000/version"}]',
    "status_token": "a-read-only-token-0123456789",
    "alertmanager_token": "an-alertmanager-token",
    "alertmanager_username": "alertmanager",
    "alertmanager_password": "a-long-alertmanager-password",
    "leader_redis_url": "redis://redis:6379/1",
    "loki_url": "http://loki:3100",
    "loki_tenant": "team-a",
    "loki_token": "a-loki-bearer-token",
    "loki_username": "123456",
    "loki_password": "a-grafana-cloud-api-key",
    "sentry_org": "my-org",
    "sentry_token": "sntrys_0123456789abcdef",
    "notify.grafana_url": "https://grafana.example.com",
    "notify.grafana_token": "glsa_0123456789abcdef",
    "notify.grafana_dashboard_uid": "deploys-01",
    "test_crash_at": "after_claim",
    "notify.slack_bot_token": "xoxb-0000-0000-example",
    "notify.slack_signing_secret": "0123456789abcdef0123456789abcdef",
    "notify.oncall_ids": '["U012ABCDEF"]',
    "notify.approver_ids": '["U034GHIJKL"]',
    "notify.slack_webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX",
    "notify.webhook_url": "https://chat.example.com/hooks/deploys",
    "notify.webhook_secret": "a-shared-hmac-secret",
    "notify.pagerduty_routing_key": "R0123456789abcdef0123456789abcde",
    "notify.routes": '[{"channels": ["pagerduty"], "min_severity": "critical"}]',
}
DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"  # in a source checkout
_SECTION = re.compile(r"^#\s*---\s*(.*?)\s*-*\s*$")


@dataclass(frozen=True)
class Row:
    """One setting as the reference shows it."""

    section: str
    path: str  # YAML key, dotted for nested sections
    env: str
    type: str
    default: str
    example: str
    text: str


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line (without ``#``)."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _own_lines(source: str) -> set[int]:
    """Lines holding only a comment (not the end of a line of code)."""
    return {i for i, line in enumerate(source.splitlines(), 1) if line.lstrip().startswith("#")}


def rows(model: type[BaseModel], prefix: str = "", env: str = "WATCHDOG_") -> list[Row]:
    """A row per field of ``model``, in source order, nested models expanded."""
    source = inspect.getsource(model)
    tree = ast.parse(source)
    comments, alone = _comments(source), _own_lines(source)
    section, out = "", []
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
    for node in body:
        header = _header_above(node.lineno, comments, alone)
        section = header or section
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        info = model.model_fields[name]
        annotation = ast.get_source_segment(source, node.annotation) or ""
        if annotation == "NotifySettings":
            out += rows(NotifySettings, f"{prefix}{name}.", f"{env}{name.upper()}__")
            continue
        text = _words(node, comments, alone)
        default = info.get_default(call_default_factory=True)
        out.append(
            Row(
                section=f"{prefix.rstrip('.')}: {section}" if prefix else section,
                path=f"{prefix}{name}",
                env=f"{env}{name.upper()}",
                type=_type(annotation),
                default=_default(annotation, default),
                example=EXAMPLES.get(f"{prefix}{name}") or _example(annotation, default),
                text=text,
            )
        )
    return out


def _header_above(line: int, comments: dict[int, str], alone: set[int]) -> str | None:
    """The ``--- section ---`` header in the comment block right above ``line``."""
    n = line - 1
    while n in alone:
        match = _SECTION.match("# " + comments[n])
        if match:
            return match.group(1)
        n -= 1
    return None


def _words(node: ast.AnnAssign, comments: dict[int, str], alone: set[int]) -> str:
    """The comment block above the field (no headers) and the comment ending its line."""
    above: list[str] = []
    n = node.lineno - 1
    while n in alone and not _SECTION.match("# " + comments[n]):
        above.insert(0, comments[n])
        n -= 1
    end = node.end_lineno or node.lineno
    lines = range(node.lineno, end + 1)
    trailing = [comments[i] for i in lines if i in comments and i not in alone]
    return " ".join([*above, *trailing]).replace("|", "\\|")


def _type(annotation: str) -> str:
    text = re.sub(r"Annotated\[(.*), NoDecode\]", r"\1", annotation)
    text = re.sub(r"Literal\[(.*)\]", lambda m: "one of " + m.group(1).replace('"', ""), text)
    text = text.replace("SecretStr", "secret").replace("Duration", "duration")
    return text.replace("|", "or")


def _value(value: Any) -> str:
    """A default as it would be written in the environment."""
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        if not value:
            return "empty"
        return json.dumps(value, default=str)
    return str(value)


def _default(annotation: str, default: Any) -> str:
    if "Duration" in annotation and isinstance(default, float):
        return format_duration(default)
    return _value(default)


def _example(annotation: str, default: Any) -> str:
    if "Duration" in annotation:
        return format_duration(default) if isinstance(default, float) else "30s"
    shown = _value(default)
    return shown if shown not in {"unset", "empty"} else "…"


def render() -> str:
    """The whole reference page."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from watchdog/settings.py by `make settings-doc`: do not edit. -->",
        "",
        "Every setting is an environment variable (`WATCHDOG_` and the name in capitals;",
        "nested sections join with `__`), a line of a `.env` file, or a key of the YAML file",
        "named by `WATCHDOG_CONFIG`, in that order of priority. Durations take `250ms`, `15s`,",
        "`5m`, `1h30m` or seconds. Secrets are never logged. Lists take `a,b` or JSON; maps",
        "and nested lists take JSON in the environment and plain YAML in the file.",
    ]
    section = None
    for row in rows(Settings):
        if row.section != section:
            section = row.section
            lines += ["", f"## {section}", "", "| variable | type | default | example | meaning |"]
            lines.append("|---|---|---|---|---|")
        lines.append(
            f"| `{row.env}` | {row.type} | `{row.default}` | `{row.example}` | {row.text} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the page (``make settings-doc`` redirects it to docs/settings.md)."""
    print(render(), end="")


if __name__ == "__main__":
    main()
