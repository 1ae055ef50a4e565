from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from watchdog.plumbing.logs import Redactor, about_window, configure_logging, get_logger
from watchdog.settings import Settings

DB_PASSWORD = "s3cr3t-Db-Pass"
API_TOKEN = "tok_live_9f8e7d6c5b4a"
PD_ROUTING_KEY = "R0123456789abcdef0123456789abcde"
SLACK_BOT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/abcdefghijklmnopqrstuvwx"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

NEVER = [DB_PASSWORD, API_TOKEN, PD_ROUTING_KEY, SLACK_BOT, "T0ABCDEFG/B0HIJKLMN", BEARER]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.reset_defaults()


def capture(fmt: str = "json", level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, fmt, [API_TOKEN, PD_ROUTING_KEY], stream=stream)  # type: ignore[arg-type]
    return stream


def assert_clean(text: str) -> None:
    for secret in NEVER:
        assert secret not in text, f"{secret!r} leaked into: {text}"


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_secret_reaches_the_stream(fmt: str) -> None:
    stream = capture(fmt)
    log = get_logger("watchdog.test")
    log.info(
        f"connecting to postgresql://watchdog:{DB_PASSWORD}@db:5432/app with {API_TOKEN}",
        store_url=f"postgresql://watchdog:{DB_PASSWORD}@db:5432/app",
        headers={"Authorization": f"Bearer {BEARER}", "X-Request-Id": "req-1"},
        nested={"deep": [{"api_key": "k-123456"}, ("slack", SLACK_BOT)]},
        note=f"posted to {SLACK_HOOK}",
        pagerduty={"routing_key": PD_ROUTING_KEY, "event_action": "trigger"},
        sent=f'{{"routing_key": "{PD_ROUTING_KEY}"}}',
        service="api",
        fencing_token=42,
    )
    text = stream.getvalue()
    assert_clean(text)
    assert "k-123456" not in text
    # Non-secret content survives.
    for kept in ("connecting to postgresql://watchdog:***@db:5432/app", "req-1", "api"):
        assert kept in text
    assert "hooks.slack.com/services/***" in text
    assert "event_action" in text and "trigger" in text


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_have_level_timestamp_and_masked_keys() -> None:
    stream = capture("json")
    get_logger("watchdog.test").warning(
        "rolling back", window="w1", password="hunter22", token=API_TOKEN, attempt=2
    )
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "rolling back"
    assert entry["level"] == "warning"
    assert entry["logger"] == "watchdog.test"
    assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
    assert entry["password"] == "***" and entry["token"] == "***"
    assert entry["window"] == "w1" and entry["attempt"] == 2


@pytest.mark.usefixtures("restore_logging")
def test_stdlib_loggers_are_json_and_redacted() -> None:
    stream = capture("json")
    logging.getLogger("aiohttp.server").info(
        "GET /api?token=%s HTTP/1.1 Authorization: Bearer %s", API_TOKEN, BEARER
    )
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "aiohttp.server" and entry["level"] == "info"
    assert entry["event"].startswith("GET /api?token=***")
    assert_clean(line)


@pytest.mark.usefixtures("restore_logging")
def test_exception_tracebacks_are_redacted() -> None:
    stream = capture("json")
    log = get_logger("watchdog.test")
    try:
        raise RuntimeError(f"could not connect to redis://:{DB_PASSWORD}@cache:6379/0")
    except RuntimeError:
        log.exception("lease failed")
    text = stream.getvalue()
    assert "RuntimeError" in text and "redis://:***@cache:6379/0" in text
    assert_clean(text)


@pytest.mark.usefixtures("restore_logging")
def test_level_filters() -> None:
    stream = capture("json", level="warning")
    log = get_logger("watchdog.test")
    log.info("quiet")
    logging.getLogger("apscheduler").info("quiet too")
    log.error("loud")
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == ["loud"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("redis://:pw@h:6379", "redis://:***@h:6379"),
        ("http://h:8080/path", "http://h:8080/path"),
        ("Authorization: bearer abc.def", "Authorization: ***"),
        ("slack xoxp-1-2-3 here", "slack xoxp-*** here"),
        ("Token abc123", "Token ***"),
        ("app xapp-1-A0-123-abc", "app xapp-***"),
        ("https://hooks.slack.com/workflows/T1/A2/3/abc", "https://hooks.slack.com/workflows/***"),
        ("?api_key=abc&x=1", "?api_key=***&x=1"),
        ('{"password": "pw"}', '{"password": "***"}'),
        ("plain words stay", "plain words stay"),
    ],
)
def test_scrub_patterns(text: str, expected: str) -> None:
    assert Redactor().scrub(text) == expected


def test_known_secrets_and_encoded_forms() -> None:
    r = Redactor(["p@ss/w0rd!", "abc"])  # too-short secrets are ignored
    assert r.scrub("x p@ss/w0rd! y p%40ss%2Fw0rd%21 z abc") == "x *** y *** z abc"


def test_redactor_walks_structures() -> None:
    r = Redactor([API_TOKEN])
    event: dict[str, Any] = {
        "event": f"using {API_TOKEN}",
        "Cookie": "session=1",
        "cfg": {"Webhook_URL": "https://example.com/hook", "items": [API_TOKEN, 1, None]},
        "pair": (API_TOKEN, "ok"),
        "flag": True,
        "obj": ValueError(API_TOKEN),
        "raw": API_TOKEN.encode(),
        "secret_count": 3,
    }
    out = r(None, "info", event)
    assert out == {
        "event": "using ***",
        "Cookie": "***",
        "cfg": {"Webhook_URL": "***", "items": ["***", 1, None]},
        "pair": ["***", "ok"],
        "flag": True,
        "obj": "***",
        "raw": "***",
        "secret_count": 3,
    }


@pytest.mark.usefixtures("restore_logging")
async def test_the_scheduler_is_silent_while_jobs_run_fine() -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    stream = capture("json", "info")
    ran = asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs >= 5:
            ran.set()

    scheduler = AsyncIOScheduler()
    scheduler.add_job(job, "interval", seconds=0.01, id="tick")
    scheduler.start()
    try:
        await asyncio.wait_for(ran.wait(), 10)
    finally:
        scheduler.shutdown(wait=False)
    get_logger("watchdog.test").info("still here")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["still here"]


@pytest.mark.usefixtures("restore_logging")
def test_the_scheduler_speaks_at_debug() -> None:
    capture("json", "debug")
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.DEBUG
    capture("json", "info")
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.WARNING


class _WithANewSecret(Settings):
    """Settings as a later change might grow them: one more secret, nothing else touched."""

    newrelic_license: SecretStr | None = None


@pytest.mark.usefixtures("restore_logging")
def test_a_secret_setting_added_later_is_redacted_without_touching_the_redactor() -> None:
    license_key = "nr-Lic3nse-0123456789abcdef"
    store_password = "St0re-Pa55word-xyz"
    settings = _WithANewSecret(
        newrelic_license=SecretStr(license_key),
        store_url=SecretStr(f"postgresql://watchdog:{store_password}@db:5432/watchdog"),
    )
    stream = io.StringIO()
    configure_logging("info", "json", settings.secrets(), stream=stream)
    get_logger("watchdog.test").warning(
        f"New Relic refused {license_key}", detail=f"auth failed for password {store_password!r}"
    )
    text = stream.getvalue()
    assert license_key not in text and store_password not in text
    assert "New Relic refused ***" in text


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["info", "debug"])
def test_library_chatter_is_held_back_unless_debugging(level: str) -> None:
    stream = capture("json", level)
    logging.getLogger("httpx").info('HTTP Request: GET http://api:8000/health "HTTP/1.1 200 OK"')
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying (Retry(total=0, connect=None)) after connection broken by "
        "'NewConnectionError(...)': /api/v1/query"
    )
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /metrics HTTP/1.1" 200')
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "Engine.tick",
        1,
    )
    logging.getLogger("urllib3.connectionpool").error("a real urllib3 error")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    if level == "info":
        assert events == ["a real urllib3 error"]
    else:
        assert len(events) == 5


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_auto_format_is_console_text_on_a_terminal_and_json_otherwise() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        configure_logging("info", "auto", stream=stream)
        get_logger("watchdog.test").warning("rollback failed", window="w1")
    assert json.loads(pipe.getvalue())["event"] == "rollback failed"
    text = terminal.getvalue()
    assert "rollback failed" in text and "window=w1" in text and not text.startswith("{")


@pytest.mark.usefixtures("restore_logging")
async def test_about_window_tags_every_line_in_the_block_and_only_there() -> None:
    stream = capture("json")
    log = get_logger("watchdog.test")

    async def evaluation() -> None:
        with about_window("w1", "api", "v3", "error-rate"):
            log.info("sampled")
            logging.getLogger("some.library").warning("slow answer")

    await asyncio.create_task(evaluation())
    log.info("elsewhere")
    first, second, third = map(json.loads, stream.getvalue().splitlines())
    tags = {"window": "w1", "service": "api", "version": "v3", "rule": "error-rate"}
    assert tags.items() <= first.items() and tags.items() <= second.items()
    assert not tags.keys() & third.keys()
