"""The bad-input battery against a real `watchdog serve`: oversized, deep, malformed and
mistyped bodies on every edge; shell and PromQL injection in deployment labels; rollback
URLs to hosts not configured; and canary secrets that must never reach a log line."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import WatchdogServer, free_port, start_watchdog
from watchdog.notify.config import NotifySettings
from watchdog.settings import Settings

pytestmark = pytest.mark.e2e

TOKEN = "battery-api-CANARY-api-token-7f3a"
AM_TOKEN = "battery-CANARY-alertmanager-token-91c2"
MAX_BODY = 4096


def canaries(home: Path) -> dict[str, Any]:
    """A value for every secret setting, each carrying a unique CANARY marker."""
    dead = free_port()  # nothing listens: every connection is refused, errors get logged
    return {
        "api_token": TOKEN,
        "prometheus_token": "CANARY-prometheus-token-5b1e",
        "prometheus_username": "reader",
        "prometheus_password": "CANARY-prom-password-6c2f",
        # credentials in a plain URL setting are judged and redacted like secrets (issue 25)
        "prometheus_url": f"http://reader:CANARY-prom-url-pass-7d3a@127.0.0.1:{dead}",
        "store_url": f"sqlite:///{home / 'CANARY-store-8d2f.db'}",
        "postgres_targets": {"db": f"postgresql://u:CANARY-pg-pass-33aa@127.0.0.1:{dead}/x"},
        "redis_targets": {"cache": f"redis://:CANARY-redis-pass-44bb@127.0.0.1:{dead}/0"},
        "render_api_key": "rnd_CANARY-render-key-55cc",
        "status_token": "CANARY-status-token-66dd",
        "alertmanager_token": AM_TOKEN,
        "alertmanager_password": "CANARY-am-password-77ee",
        "leader_redis_url": f"redis://:CANARY-leader-pass-88ff@127.0.0.1:{dead}/0",
        "loki_url": f"http://127.0.0.1:{dead}",
        "loki_token": "CANARY-loki-token-1a2b3c",
        "loki_username": "reader",
        "loki_password": "CANARY-loki-pass-2b3c4d",
        "sentry_url": f"http://127.0.0.1:{dead}",
        "sentry_org": "acme",
        "sentry_token": "CANARY-sentry-token-3c4d5e",
        "notify": {
            "slack_bot_token": "xoxb-CANARY-slack-bot-99aa",
            "slack_signing_secret": "CANARY-slack-signing-aabb",
            "slack_api_url": f"http://127.0.0.1:{dead}/api/",
            "slack_webhook_url": f"http://127.0.0.1:{dead}/services/CANARY-hook-bbcc",
            "webhook_url": f"http://127.0.0.1:{dead}/hook",
            "webhook_secret": "CANARY-webhook-secret-ccdd",
            "pagerduty_routing_key": "CANARY-pd-routing-ddee",
            "pagerduty_url": f"http://127.0.0.1:{dead}",
            "grafana_url": f"http://127.0.0.1:{dead}",
            "grafana_token": "CANARY-grafana-token-4d5e6f",
            "poll": "200ms",
            "backoff": "100ms",
        },
    }


def secret_fields(model: type[Any]) -> set[str]:
    return {n for n, f in model.model_fields.items() if "SecretStr" in str(f.annotation)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchdogServer]:
    home = tmp_path_factory.mktemp("battery")
    rules = home / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    interval: 200ms\n    rules:\n"
        "      - name: errors\n        source: prometheus\n"
        '        query: sum(rate(http_requests_total{service="{{ service }}"}[1m]))\n'
        '        threshold: "> 1"\n'
        "      - name: db\n        source: postgres\n        target: db\n"
        "        query: select 1 as value\n        threshold: '> 5'\n"
        "      - name: cache\n        source: redis\n        target: cache\n"
        "        threshold: '> 5'\n"
    )
    config = canaries(home)
    # Only a leader evaluates: with the (dead) lease Redis nothing would query a source,
    # so this server runs single-node; test_no_canary_when_nobody_leads has the lease.
    del config["leader_redis_url"]
    config.update(
        rules=[str(rules)],
        prometheus_url=f"http://127.0.0.1:{free_port()}",
        alertmanager_username="am",
        max_body_bytes=MAX_BODY,
        alertmanager_max_body_bytes=1 << 20,
        log_level="debug",
        tick="100ms",
        plans={
            "metadata": {
                "steps": [
                    {"name": "steal", "kind": "http", "url": "http://169.254.169.254/latest/"},
                ]
            }
        },
        http_allowed_hosts=["127.0.0.1"],
    )
    (home / "config.json").write_text(json.dumps(config))
    settings = {"config": str(home / "config.json"), "store_url": config["store_url"]}
    with start_watchdog(home / "run", settings, token=TOKEN) as s:
        yield s


def test_the_canaries_cover_every_secret_setting(tmp_path: Path) -> None:
    config = canaries(tmp_path)
    plain = {"loki_url", "loki_username", "sentry_url", "sentry_org", "prometheus_username"}
    plain |= {"prometheus_url"}  # set beside their secrets
    assert secret_fields(Settings) == {k for k in config if k != "notify"} - plain
    assert secret_fields(NotifySettings) <= set(config["notify"])


EDGES = [
    ("/api/v1/deployments", {"Authorization": f"Bearer {TOKEN}"}),
    ("/api/v1/alertmanager", {"Authorization": f"Bearer {AM_TOKEN}"}),
    ("/slack/interactions", {}),
    ("/-/reload", {"Authorization": f"Bearer {TOKEN}"}),
]


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


BODIES = {
    "oversized": (b'{"a": "' + b"x" * (2 << 20) + b'"}', "application/json"),
    "deep": (deep(2000), "application/json"),  # under every body limit: parsed
    "deeper": (deep(200_000), "application/json"),  # under the receiver's limit only
    "malformed": (b'{"service": ', "application/json"),
    "wrong type": (b'{"service": "api"}', "text/plain"),
    "form": (b"service=api", "application/x-www-form-urlencoded"),
    "binary": (bytes(range(256)) * 4, "application/octet-stream"),
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("edge", [e[0] for e in EDGES])
def test_bad_bodies_get_a_clear_4xx_never_a_5xx(
    server: WatchdogServer, edge: str, body: str
) -> None:
    content, ctype = BODIES[body]
    headers = {**dict(EDGES)[edge], "Content-Type": ctype}
    response = httpx.post(f"{server.url}{edge}", content=content, headers=headers, timeout=30)
    if edge == "/-/reload" and len(content) <= MAX_BODY:
        # The reload takes no body: it ignores one within the limit (and reloads).
        assert response.status_code == 200, response.text
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith(("application/json", "text/plain"))
    assert server.proc.poll() is None


INJECTIONS = [
    {"labels": {"port": "8080;rm -rf /"}},
    {"labels": {"x": "$(touch /tmp/pwned-by-watchdog)"}},
    {"labels": {"x": "`id`"}},
    {"labels": {"x": "a\nb"}},
    {"service": 'api"}) or vector(1)'},
    {"version": '"}) or vector(1) #'},
    {"previous_version": "v1\nrm -rf /"},
    {"labels": {"evil key": "v"}},
]


@pytest.mark.parametrize("change", INJECTIONS, ids=lambda c: repr(c)[:40])
def test_injection_in_deployments_is_refused_naming_the_field(
    server: WatchdogServer, change: dict[str, Any]
) -> None:
    body = {"service": "api", "version": "v2", "previous_version": "v1", **change}
    response = server.api("POST", "/api/v1/deployments", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] and error["field"].split(".")[0] in change, error
    assert not Path("/tmp/pwned-by-watchdog").exists()


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("host", ["169.254.169.254", "localhost", "127.0.0.1.nip.io"])
def test_a_rollback_to_a_host_not_configured_sends_nothing(tmp_path: Path, host: str) -> None:
    listener = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    port = listener.server_address[1]
    url = f"http://{host}:{port}/rollback"
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    interval: 1h\n    rules:\n"
        "      - name: probe\n        source: http\n        url: http://127.0.0.1:9/\n"
    )
    plan = {"steps": [{"name": "call", "kind": "http", "url": url, "retries": 0}]}
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"plans": {"p": plan}, "default_plan": "p"}))
    settings = {"config": str(cfg), "rules": str(rules), "http_allowed_hosts": "127.0.0.1"}
    try:
        with start_watchdog(tmp_path / "wd", settings) as wd:
            window = wd.deploy(service="api", version="v2", previous_version="v1")
            response = wd.api("POST", f"/api/v1/deployments/{window['id']}/rollback", json={})
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + 20
            while (detail := wd.window(window["id"]))["window"]["phase"] == "rolling_back":
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        listener.shutdown()
    assert detail["window"]["phase"] == "rollback_failed"
    failed = [e for e in detail["events"] if e["kind"] == "step_failed"]
    assert len(failed) == 1 and host in failed[0]["data"]["output"], failed
    assert _Counting.hits == []


def test_no_canary_in_any_log_line(server: WatchdogServer, tmp_path: Path) -> None:
    server.deploy(service="api", version="v2", previous_version="v1")
    httpx.post(f"{server.url}/api/v1/alertmanager", json={}, auth=("am", "wrong"), timeout=5)
    httpx.get(f"{server.url}/", params={"token": "CANARY-status-token-66dd"}, timeout=5)
    deadline = time.monotonic() + 20
    wanted = ("source", "deliver")
    while not all(w in server.log() for w in wanted):  # every secret-bearing path ran
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.2)
    log = server.log()
    leaked = [line for line in log.splitlines() if "CANARY" in line]
    assert leaked == []
    assert "***" in log  # secrets did come near the log, masked


def test_no_canary_when_nobody_leads(tmp_path: Path) -> None:
    config = canaries(tmp_path)  # the lease Redis refuses: NO LEADER, with its URL near
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - name: up\n        source: http\n"
                     "        url: http://127.0.0.1:9/health\n")  # fmt: skip
    config.update(log_level="debug", tick="100ms", alertmanager_username="am", rules=[str(rules)])
    (tmp_path / "config.json").write_text(json.dumps(config))
    settings = {"config": str(tmp_path / "config.json"), "store_url": config["store_url"]}
    with start_watchdog(tmp_path / "run", settings, token=TOKEN) as s:
        deadline = time.monotonic() + 20
        while "NO LEADER" not in s.log():
            assert time.monotonic() < deadline, s.log()[-3000:]
            time.sleep(0.2)
        log = s.log()
    assert [line for line in log.splitlines() if "CANARY" in line] == []
