"""Settings errors said like rule errors (issue 21 item 6): file, line and key, the
closest known key for a typo, the expected form of a duration, never pydantic's dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from watchdog.cli.main import main
from watchdog.config.settingserrors import problems, unknown_variables
from watchdog.foundation.durations import parse_duration
from watchdog.settings import Settings

CONFIG = """\
promethues_url: http://prometheus:9090
window: 5 min
listen_port: eighty
notify:
  slack_chanel: "#deploys"
log_level: loud
plans:
  undo:
    steps:
      - name: back
        kind: command
        argv: ["true"]
        timeout: 1 minute
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    import os

    for name in [n for n in os.environ if n.startswith("WATCHDOG_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    return monkeypatch


def invalid(**kw: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Settings(**kw)  # type: ignore[arg-type]
    return caught.value


def test_each_problem_names_file_line_key_and_the_fix(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text(CONFIG)
    clean_env.setenv("WATCHDOG_CONFIG", str(config))
    found = problems(invalid(), Settings)
    assert found == [
        f"{config}:1: promethues_url: unknown setting 'promethues_url' "
        "(did you mean 'prometheus_url'?)",
        f"{config}:2: window: invalid duration '5 min': use 5m",
        f"{config}:3: listen_port: expected a whole number",
        f"{config}:5: notify.slack_chanel: unknown setting 'slack_chanel' "
        "(did you mean 'slack_channel'?)",
        f"{config}:6: log_level: expected one of 'debug', 'info', 'warning' or 'error'",
        f"{config}:13: plans.undo.steps.0.timeout: invalid duration '1 minute': use 1m",
    ]
    assert not any("pydantic" in line or "Input should" in line for line in found)


def test_environment_and_dotenv_are_named_as_such(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("WATCHDOG_TICK", "fast")
    (tmp_path / ".env").write_text("# settings\nWATCHDOG_PROMETHEUS_RETRIES=9\n")
    assert problems(invalid(), Settings) == [
        "WATCHDOG_TICK (environment): invalid duration 'fast': expected e.g. 15s, 5m, 1h30m, 250ms",
        ".env:2: WATCHDOG_PROMETHEUS_RETRIES: must be at most 5",
    ]


def test_a_check_across_settings_is_placed_on_its_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text("plans: {}\ndefault_plan: undo\n")
    clean_env.setenv("WATCHDOG_CONFIG", str(config))
    assert problems(invalid(), Settings) == [
        f"{config}:2: default_plan: default_plan 'undo' is not one of the plans"
    ]


def test_unknown_watchdog_variables_are_warned_about() -> None:
    env = {
        "WATCHDOG_PROMETHUES_URL": "x",
        "WATCHDOG_NOTIFY__SLACK_CHANNEL": "#d",
        "WATCHDOG_URL": "http://watchdog",  # the CLI's, not a setting
        "WATCHDOG_FROBNICATE": "1",
        "PATH": "/bin",
    }
    assert unknown_variables(Settings, env) == [
        "WATCHDOG_FROBNICATE is not a setting: it is ignored",
        "WATCHDOG_PROMETHUES_URL is not a setting (did you mean WATCHDOG_PROMETHEUS_URL?): "
        "it is ignored",
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("5 min", "use 5m"),
        ("1 hour 30 minutes", "use 1h30m"),
        ("30 secs", "use 30s"),
        ("250 ms", "use 250ms"),
        ("soon", "expected e.g. 15s, 5m, 1h30m, 250ms"),
        ("5 minutes ago", "expected e.g. 15s, 5m, 1h30m, 250ms"),
    ],
)
def test_a_duration_in_words_gets_its_spelling(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_duration(text)


def test_check_config_exits_1_with_the_problems_then_the_verdict(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text("promethues_url: http://prometheus:9090\n")
    clean_env.setenv("WATCHDOG_PROMETHEUS_UR", "http://x")
    assert main(["check", "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "watchdog: warning: WATCHDOG_PROMETHEUS_UR is not a setting "
        "(did you mean WATCHDOG_PROMETHEUS_URL?): it is ignored",
        f"{config}:1: promethues_url: unknown setting 'promethues_url' "
        "(did you mean 'prometheus_url'?)",
    ]
    assert out == "FAILED: 1 problem; fix them and run check again\n"
    config.write_text("prometheus_url: http://prometheus:9090\n")
    assert main(["check", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "SUCCESS: the settings, no problems"
    assert main(["check", "--config", str(tmp_path / "nope.yml")]) == 1
    assert f"{tmp_path / 'nope.yml'}:0: no such file" in capsys.readouterr().err


def test_a_dotenv_line_that_sets_nothing_is_named_with_its_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("WATCHDOG_WINDOW=30m\nWATCHDOG_PROMETHUES_URL=http://p\n")
    assert problems(invalid(), Settings) == [
        ".env:2: WATCHDOG_PROMETHUES_URL is not a setting (did you mean WATCHDOG_PROMETHEUS_URL?)"
    ]
