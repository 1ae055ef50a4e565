"""A rule file written from Python, for tests whose subject is not the YAML itself.

    path = rules(tmp_path).prometheus("errors", "errors", above=0.05, action="rollback").write()

writes ``tmp_path/rules.yml`` with one group (``api``, every 10s, unless :meth:`Rules.group`
starts another first), in exactly the shape the loader reads (``watchdog/rulefile``):
keyword arguments are the rule's fields as written in a file (``for_`` is ``for``),
``above=X`` is ``threshold: "> X"``. Tests of the loader, of its messages with file:line
and of the shipped rules keep their YAML.

``rule_model(Model, overrides, **defaults)`` builds one validated rule model, for tests
of code that takes a rule rather than a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self, TypeVar

import yaml
from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)

# prometheus-fastapi-instrumentator's counter, as the shipped rules read it
ERRORS_5XX = 'http_requests_total{service="{{ service }}",status="5xx"}'
REQUESTS = 'http_requests_total{service="{{ service }}"}'


class Rules:
    """A rule file under construction: groups of rules, then :meth:`write`."""

    def __init__(self, folder: Path, name: str = "rules.yml", **scope: Any) -> None:
        self.path = folder / name
        self.scope = scope  # file-level `services` / `match`
        self.groups: list[dict[str, Any]] = []

    def group(self, name: str, interval: str | None = "10s", **fields: Any) -> Self:
        """Start a group; the rules added next belong to it."""
        group: dict[str, Any] = {"name": name}
        if interval is not None:
            group["interval"] = interval
        self.groups.append(group | fields | {"rules": []})
        return self

    def rule(self, name: str, source: str, above: float | str | None = None, **fields: Any) -> Self:
        """Add a rule of any source; ``above`` is the common ``> X`` threshold."""
        if not self.groups:
            self.group("api")
        rule: dict[str, Any] = {"name": name, "source": source}
        if above is not None:
            rule["threshold"] = f"> {above}"
        if "for_" in fields:
            fields["for"] = fields.pop("for_")
        self.groups[-1]["rules"].append(rule | fields)
        return self

    def prometheus(self, name: str, query: str, **fields: Any) -> Self:
        """A Prometheus rule (``watchdog.rulefile.schema.PrometheusRule``)."""
        return self.rule(name, "prometheus", query=query, **fields)

    def judge(self, name: str, errors: str, total: str, **fields: Any) -> Self:
        """A judge rule: errors among total against a baseline (``rulefile/judge.py``)."""
        return self.rule(name, "judge", errors=errors, total=total, **fields)

    def http(self, name: str, url: str, **fields: Any) -> Self:
        """An HTTP probe."""
        return self.rule(name, "http", url=url, **fields)

    def postgres(self, name: str, target: str, query: str, **fields: Any) -> Self:
        """A PostgreSQL query on a named target."""
        return self.rule(name, "postgres", target=target, query=query, **fields)

    def redis(self, name: str, target: str, **fields: Any) -> Self:
        """A Redis PING or INFO field on a named target."""
        return self.rule(name, "redis", target=target, **fields)

    def alertmanager(self, name: str, **fields: Any) -> Self:
        """Alerts firing in Alertmanager for the window's service."""
        return self.rule(name, "alertmanager", **fields)

    def text(self) -> str:
        """The file's YAML."""
        document = self.scope | {"groups": self.groups}
        return yaml.safe_dump(document, sort_keys=False, width=1_000_000)

    def write(self) -> Path:
        """Write the file (again, after more rules were added); returns its path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.text())
        return self.path


def rules(folder: Path, name: str = "rules.yml", **scope: Any) -> Rules:
    """A new rule file ``folder/name``; ``scope``: file-level ``services`` / ``match``."""
    return Rules(folder, name, **scope)


def rule_model(model: type[Model], overrides: dict[str, Any], **defaults: Any) -> Model:
    """``model`` validated from ``defaults`` with ``overrides`` on top."""
    return model.model_validate(defaults | overrides)


def errors_rollback(folder: Path) -> Rules:
    """The most common file in tests: rule ``errors`` (query ``errors``) rolls back above
    0.05, group ``api`` every 10s."""
    return rules(folder).prometheus("errors", "errors", above=0.05, action="rollback")
