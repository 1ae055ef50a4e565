"""YAML limits (issue 13, item 3): alias bombs, recursive aliases, deep nesting, size.

Each hostile file is a ConfigError naming ``file:line`` from ``load_rules``,
``watchdog check`` and the settings file, quickly and without expanding anything.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.yaml_bombs import RECURSIVE_ALIAS, alias_bomb, deep_block_nesting, deep_nesting
from watchdog.foundation import safeyaml
from watchdog.foundation.errors import ConfigError
from watchdog.foundation.safeyaml import YamlLimitError, YamlLimits
from watchdog.rulefile.load import check_report, load_rules
from watchdog.settings import Settings

HOSTILE = [
    # (name, text, line the error names, words in the message)
    ("bomb.yml", alias_bomb(), 6, "nodes once aliases are expanded"),
    ("recursive.yml", RECURSIVE_ALIAS, 3, "recursive alias *g"),
    ("deep-flow.yml", deep_nesting(5000), 1, "nested deeper than 64 levels"),
    ("deep-block.yml", deep_block_nesting(1000), 64, "nested deeper than 64 levels"),
]


@pytest.mark.parametrize(("name", "text", "line", "words"), HOSTILE)
def test_hostile_rule_files_are_config_errors_with_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, words: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert time.monotonic() - started < 2.0  # nothing was expanded
    assert info.value.problems == [info.value.problems[0]]
    assert info.value.problems[0].startswith(f"{path}:{line}: YAML over limits: ")
    assert words in info.value.problems[0]


@pytest.mark.parametrize(("name", "text", "line", "words"), HOSTILE)
def test_check_reports_hostile_files_beside_good_ones(
    tmp_path: Path, name: str, text: str, line: int, words: str
) -> None:
    (tmp_path / name).write_text(text)
    (tmp_path / "good.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - name: up\n        source: http\n"
        "        url: http://127.0.0.1:9/health\n"
    )
    summaries, problems = check_report([tmp_path])
    assert summaries == [f"{tmp_path / 'good.yml'}: SUCCESS: 1 rule in 1 group (http)"]
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / name}:{line}: ")


def test_the_bomb_is_small_and_would_expand_to_a_billion_nodes() -> None:
    text = alias_bomb()
    assert len(text.encode()) < 400
    # One level fewer (10**8 leaves) is still refused at the default limit; three
    # levels (1,111 nodes) are fine: the limit is on expansion, not on using aliases.
    with pytest.raises(YamlLimitError):
        safeyaml.compose(alias_bomb(8))
    assert safeyaml.compose(alias_bomb(3)) is not None


def test_aliases_count_what_they_expand_to() -> None:
    limits = YamlLimits(max_nodes=19)
    # The mapping, two keys, a's list of 3 (4 nodes), b's list, 3 aliases of 4: 20 in all.
    text = "a: &x [1, 2, 3]\nb: [*x, *x, *x]\n"
    with pytest.raises(YamlLimitError) as info:
        safeyaml.compose(text, limits)
    assert info.value.problem_mark is not None and info.value.problem_mark.line == 1
    assert safeyaml.compose(text, YamlLimits(max_nodes=20)) is not None


def test_depth_limit_is_exact() -> None:
    limits = YamlLimits(max_depth=4)
    assert safeyaml.compose("[[[1]]]", limits) is not None  # 3 sequences + scalar = 4
    with pytest.raises(YamlLimitError, match="nested deeper than 4 levels"):
        safeyaml.compose("[[[[1]]]]", limits)


def test_document_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    path.write_bytes(b"# " + b"x" * (4 << 20) + b"\n")
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert info.value.problems == [f"{path}:0: file larger than 4 MiB"]


def test_merge_keys_and_plain_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "plans.yml"
    path.write_text("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert safeyaml.load_file(path) == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}


def test_a_complex_mapping_key_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "key.yml"
    path.write_text("groups:\n  ? [a, b]\n  : 1\n")
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert f"{path}:2: a mapping key must be a plain value" in info.value.problems


def test_unknown_tags_are_refused_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "tag.yml"
    path.write_text("groups:\n  - !!python/name:os.system\n")
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert info.value.problems[0].startswith(f"{path}:2: YAML syntax error: ")


@pytest.mark.parametrize(("name", "text", "line", "words"), HOSTILE)
def test_the_settings_file_gets_the_same_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, line: int, words: str
) -> None:
    path = tmp_path / name
    path.write_text(text.replace("groups:", "plans:"))
    monkeypatch.setenv("WATCHDOG_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        Settings()
    assert info.value.problems[0].startswith(f"{path}:{line}: YAML over limits: ")
    assert words in info.value.problems[0]


def test_a_settings_file_that_is_not_a_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "list.yml"
    path.write_text("- 1\n")
    monkeypatch.setenv("WATCHDOG_CONFIG", str(path))
    with pytest.raises(ConfigError, match="expected a mapping of settings"):
        Settings()


def test_yaml_errors_carry_no_line_when_they_have_none() -> None:
    assert safeyaml.describe("f.yml", yaml.YAMLError("boom")) == "f.yml:0: YAML syntax error: boom"
