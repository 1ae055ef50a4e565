"""Issue 13 item 1: a weak secret refuses to start, naming the setting, never the value."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from watchdog.cli.serve import settings_problems
from watchdog.foundation.secretcheck import url_password, weakness, without_credentials
from watchdog.notify.config import NotifySettings
from watchdog.notify.render import Links
from watchdog.settings import Settings

GOOD = "9f2c7a41d0be4e55a8c3"

WEAK = [
    ("", "is empty"),
    ("   ", "is only whitespace"),
    ("short-token", "is shorter than 16 characters"),
    ("change-me-to-a-long-random-string", "is a placeholder"),
    ("change-me-to-another-long-random-string", "is a placeholder"),
    ("rnd_xxxxxxxxxxxxxxxx", "is a placeholder"),
    ("aaaaaaaaaaaaaaaaaaaaaa", "is one character repeated"),
    (f" {GOOD} ", "leading or trailing whitespace"),
]

# Every secret setting, as the settings see it, and its environment variable.
SECRET_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"api_token": "{}"}, "api_token (WATCHDOG_API_TOKEN)"),
    ({"status_token": "{}"}, "status_token (WATCHDOG_STATUS_TOKEN)"),
    ({"prometheus_token": "{}"}, "prometheus_token (WATCHDOG_PROMETHEUS_TOKEN)"),
    ({"alertmanager_token": "{}"}, "alertmanager_token (WATCHDOG_ALERTMANAGER_TOKEN)"),
    (
        {"prometheus_username": "prom", "prometheus_password": "{}"},
        "prometheus_password (WATCHDOG_PROMETHEUS_PASSWORD)",
    ),
    (
        {"alertmanager_username": "am", "alertmanager_password": "{}"},
        "alertmanager_password (WATCHDOG_ALERTMANAGER_PASSWORD)",
    ),
    ({"render_api_key": "{}"}, "render_api_key (WATCHDOG_RENDER_API_KEY)"),
    (
        {"notify": {"slack_bot_token": "{}"}},
        "notify.slack_bot_token (WATCHDOG_NOTIFY__SLACK_BOT_TOKEN)",
    ),
    (
        {"notify": {"slack_bot_token": f"xoxb-{GOOD}", "slack_signing_secret": "{}"}},
        "notify.slack_signing_secret (WATCHDOG_NOTIFY__SLACK_SIGNING_SECRET)",
    ),
    (
        {"notify": {"webhook_url": "http://h/x", "webhook_secret": "{}"}},
        "notify.webhook_secret (WATCHDOG_NOTIFY__WEBHOOK_SECRET)",
    ),
    (
        {"notify": {"pagerduty_routing_key": "{}"}},
        "notify.pagerduty_routing_key (WATCHDOG_NOTIFY__PAGERDUTY_ROUTING_KEY)",
    ),
    ({"loki_token": "{}"}, "loki_token (WATCHDOG_LOKI_TOKEN)"),
    ({"loki_username": "u", "loki_password": "{}"}, "loki_password (WATCHDOG_LOKI_PASSWORD)"),
    ({"sentry_token": "{}"}, "sentry_token (WATCHDOG_SENTRY_TOKEN)"),
    (
        {"notify": {"grafana_url": "http://grafana:3000", "grafana_token": "{}"}},
        "notify.grafana_token (WATCHDOG_NOTIFY__GRAFANA_TOKEN)",
    ),
    (
        {"store_url": "postgresql://wd:{}@db/wd"},
        "store_url (WATCHDOG_STORE_URL)",
    ),
    (
        {"leader_redis_url": "redis://:{}@redis:6379/0"},
        "leader_redis_url (WATCHDOG_LEADER_REDIS_URL)",
    ),
    (
        {"postgres_targets": {"app": "postgresql://ro@db/app?password={}"}},
        "postgres_targets[app] (WATCHDOG_POSTGRES_TARGETS)",
    ),
    (
        {"redis_targets": {"cache": "redis://u:{}@cache/0"}},
        "redis_targets[cache] (WATCHDOG_REDIS_TARGETS)",
    ),
]

# Plain URL settings carrying user:password@ (issue 25 M5): judged like secrets.
URL_CREDENTIALS: list[tuple[dict[str, Any], str]] = [
    ({"prometheus_url": "https://u:{}@prom.example"}, "prometheus_url (WATCHDOG_PROMETHEUS_URL)"),
    ({"loki_url": "http://u:{}@loki:3100"}, "loki_url (WATCHDOG_LOKI_URL)"),
    (
        {"notify": {"webhook_url": "https://bot:{}@chat.example/hook"}},
        "notify.webhook_url (WATCHDOG_NOTIFY__WEBHOOK_URL)",
    ),
]


def _fill(template: Any, value: str) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    return template.replace("{}", value) if isinstance(template, str) else template


@pytest.mark.parametrize(("value", "why"), WEAK)
def test_weakness_says_why(value: str, why: str) -> None:
    assert why in (weakness(value) or "")


def test_a_strong_secret_passes() -> None:
    assert weakness(GOOD) is None
    assert weakness("xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp") is None


@pytest.mark.parametrize(
    ("template", "named"), SECRET_SETTINGS + URL_CREDENTIALS, ids=lambda x: str(x)[:40]
)
@pytest.mark.parametrize("value", ["", "short-but-9", "change-me-to-a-long-random-string"])
def test_every_secret_setting_refuses_a_weak_value_naming_it(
    template: dict[str, Any], named: str, value: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**_fill(template, value))
    message = settings_problems(caught.value)
    assert named in message
    if value:  # the value is never echoed, not even by pydantic's own rendering
        assert value not in message and value not in str(caught.value)


@pytest.mark.parametrize(
    ("template", "named"), SECRET_SETTINGS + URL_CREDENTIALS, ids=lambda x: str(x)[:40]
)
def test_every_secret_setting_takes_a_strong_value(template: dict[str, Any], named: str) -> None:
    Settings(**_fill(template, GOOD))


def test_an_empty_token_from_the_environment_refuses_even_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A compose `${WATCHDOG_API_TOKEN}` left unset: it used to switch auth off.
    monkeypatch.setenv("WATCHDOG_API_TOKEN", "")
    monkeypatch.setenv("WATCHDOG_LISTEN_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match=r"api_token \(WATCHDOG_API_TOKEN\) is empty"):
        Settings()


def test_the_table_covers_every_secret_setting() -> None:
    # A secret setting added later is judged anyway (fields are enumerated); this keeps
    # the table above, which proves each one refuses, as complete as the settings.
    def fields(model: type[BaseModel], prefix: str = "") -> set[str]:
        out = set()
        for name, info in model.model_fields.items():
            if "SecretStr" in str(info.annotation):
                out.add(prefix + name)
        return out

    covered = {named.split(" (")[0].split("[")[0] for _, named in SECRET_SETTINGS}
    expected = fields(Settings) | fields(NotifySettings, "notify.")
    assert expected - {"notify.slack_webhook_url"} == covered


def test_a_placeholder_webhook_url_refuses() -> None:
    url = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
    with pytest.raises(ValidationError, match=r"slack_webhook_url .* holds a placeholder"):
        Settings(notify={"slack_webhook_url": url})
    Settings(
        notify={"slack_webhook_url": "https://hooks.slack.com/services/T1/B2/9f2c7a41d0be4e55"}
    )


def test_a_url_is_judged_by_its_password() -> None:
    with pytest.raises(ValidationError, match=r"\(WATCHDOG_STORE_URL\) carries a password that is"):
        Settings(store_url="postgresql://wd:pw-7z@db/wd")


def test_urls_without_a_password_are_fine() -> None:
    Settings(store_url="postgresql://watchdog@db:5432/watchdog", leader_redis_url="redis://r/0")
    assert url_password("postgresql://u@h/db") is None
    assert url_password("postgresql://u:p%40ss@h/db") == "p@ss"
    assert url_password("postgresql://u@h/db?sslmode=require&password=abc") == "abc"


def test_a_password_in_a_plain_url_is_a_secret_and_never_in_a_link() -> None:
    settings = Settings(prometheus_url=f"https://reader:{GOOD}@prom.example:9090")
    assert GOOD in settings.secrets()  # the log redactor and the edge's scrubber mask it
    links = Links("http://watchdog.example", settings.prometheus_url)
    graph = links.graph("up") or ""
    assert graph.startswith("https://prom.example:9090/graph?") and GOOD not in graph
    assert without_credentials("http://u:p@h:1/x?q=1") == "http://h:1/x?q=1"
    assert without_credentials("http://h/x") == "http://h/x"


def test_prometheus_basic_auth_comes_in_pairs() -> None:
    with pytest.raises(ValidationError, match="prometheus_username and prometheus_password"):
        Settings(prometheus_username="reader")
    settings = Settings(prometheus_username="reader", prometheus_password=GOOD)
    assert GOOD in settings.secrets()
