"""The postgres, redis and log rule kinds: what a rule file may say, and targets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from watchdog.foundation.errors import ConfigError
from watchdog.rulefile.load import check_report, load_rules
from watchdog.settings import Settings
from watchdog.wiring import check_targets

HEAD = "groups:\n  - name: g\n    rules:\n"


def problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "r.yml"
    path.write_text(HEAD + body)
    return check_report([path])[1]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "      - name: a\n        source: postgres\n        query: SELECT 1\n"
            "        threshold: '> 0'\n",
            "r.yml:4: missing required field 'target'",
        ),
        (
            "      - name: a\n        source: postgres\n        target: app\n"
            "        query: SELECT '{{ service }}'\n        threshold: '> 0'\n",
            "r.yml:7: query: cannot be templated",
        ),
        (
            "      - name: a\n        source: postgres\n        target: app\n"
            "        query: SELECT 1\n        threshold: '> 2 * baseline'\n"
            "        baseline: {offset: 1h}\n",
            "postgres cannot look back in time",
        ),
        (
            "      - name: a\n        source: redis\n        target: cache\n"
            "        check: info\n        threshold: '> 0'\n",
            "check: info needs 'field'",
        ),
        (
            "      - name: a\n        source: log\n        path: /var/log/x.log\n"
            "        pattern: 'violates ('\n",
            "r.yml:7: pattern: not a regular expression RE2 accepts (missing ): violates ()",
        ),
        (
            "      - name: a\n        source: log\n        path: relative.log\n"
            "        pattern: x\n",
            "r.yml:6: path:",
        ),
    ],
)
def test_bad_rules_are_named_with_file_and_line(tmp_path: Path, body: str, expected: str) -> None:
    found = problems(tmp_path, body)
    assert len(found) == 1 and expected in found[0], found


def test_the_shipped_pack_loads(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    rules = load_rules([repo / "rules"])
    kinds = {r.source for r in rules.rules}
    assert kinds == {"prometheus", "http", "postgres", "redis", "log", "alertmanager", "judge"}
    assert {r.action.value for r in rules.rules} == {"rollback", "approve", "notify"}


def test_serve_refuses_a_rule_naming_an_unconfigured_target(tmp_path: Path) -> None:
    path = tmp_path / "db.yml"
    path.write_text(
        HEAD + "      - name: ok\n        source: postgres\n        target: app\n"
        "        query: SELECT 1\n        threshold: '> 1'\n"
        "      - name: lost\n        source: redis\n        target: sessions\n"
        "        threshold: '> 1'\n"
    )
    rules = load_rules([path])
    settings = Settings(
        rules=[path],
        postgres_targets={"app": SecretStr("postgresql://u:s3cret-pass-0123456@db/app")},
        redis_targets={"cache": SecretStr("redis://:s3cret-pass-0123456@cache:6379/0")},
    )
    with pytest.raises(ConfigError) as err:
        check_targets(rules, settings)
    assert err.value.problems == [
        f"{path}:9: rule 'lost' names redis target 'sessions', which is not configured "
        "(set WATCHDOG_REDIS_TARGETS; configured: cache)"
    ]
    assert "s3cret-pass" not in str(err.value)
    assert "postgresql://u:s3cret-pass-0123456@db/app" in settings.secrets()


def test_targets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_POSTGRES_TARGETS", '{"app": "postgresql://w@db/app"}')
    settings = Settings()
    assert settings.postgres_targets["app"].get_secret_value() == "postgresql://w@db/app"
    assert "postgresql://w@db/app" not in repr(settings)
