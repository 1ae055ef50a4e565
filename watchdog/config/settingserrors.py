"""Settings errors said like rule errors: where, which key, what to write instead.

Every invalid setting becomes one line naming where it was set (``watchdog.yml:12:`` for
the ``WATCHDOG_CONFIG`` file, ``.env:3:``, or the environment variable) and the key, with
a message in our words, never pydantic's dump: an unknown key gets the closest known one
(``promethues_url`` → ``prometheus_url``), a duration its expected form (``5 min`` → use
``5m``). :func:`unknown_variables` warns about ``WATCHDOG_*`` variables that are no
setting (pydantic-settings ignores them silently).
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from watchdog.foundation import safeyaml
from watchdog.foundation.errors import ConfigError

PREFIX = "WATCHDOG_"
# WATCHDOG_* variables that are no setting: the CLI's and those a command step is given.
NOT_SETTINGS = frozenset(
    {"CONFIG", "URL", "SERVICE", "ENVIRONMENT", "VERSION", "PREVIOUS_VERSION"}
    | {"WINDOW_ID", "STEP", "ATTEMPT", "TEST_CONTAINERS"}
)
Loc = tuple[str | int, ...]


def problems(
    exc: ValidationError, model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> list[str]:
    """One line per error: ``where: key: message``."""
    env = os.environ if environ is None else environ
    config = env.get(f"{PREFIX}CONFIG")
    lines = _key_lines(Path(config)) if config else {}
    dotenv = _dotenv_lines(Path(".env"))
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc: Loc = tuple(err["loc"])
        name = str(loc[0]).upper() if loc else ""
        if err["type"] == "extra_forbidden" and len(loc) == 1 and name in dotenv:
            out.append((0, f".env:{dotenv[name]}: {_dotenv_extra(name, model)}"))
            continue
        message = _message(err, loc, model)
        if not loc:  # a check across settings: its message starts with the key it is about
            first = message.split(" ", 1)[0]
            loc = (first,) if first in model.model_fields else ()
        where = _where(loc, env, config, lines, dotenv)
        line = lines.get(_written(loc, lines), 0) if where.startswith(f"{config}:") else 0
        out.append((line, f"{where}: {message}"))
    return [text for _, text in sorted(out, key=lambda item: item[0])]


def _where(
    loc: Loc,
    env: Mapping[str, str],
    config: str | None,
    lines: Mapping[Loc, int],
    dotenv: Mapping[str, int],
) -> str:
    if not loc:
        return "settings"
    key = ".".join(str(p) for p in loc)
    variable = f"{PREFIX}{str(loc[0]).upper()}"
    if variable in env:
        return f"{variable} (environment)"
    if variable in dotenv:
        return f".env:{dotenv[variable]}: {variable}"
    written = _written(loc, lines)
    if written in lines:
        return f"{config}:{lines[written]}: {'.'.join(str(p) for p in written)}"
    return f"{key} ({variable})"


def _written(loc: Loc, lines: Mapping[Loc, int]) -> Loc:
    """``loc`` as written in the file: without the union tags pydantic inserts
    (``steps.0.command.timeout`` → ``steps.0.timeout``), cut where the file stops."""
    out: Loc = ()
    for part in loc:
        if (*out, part) in lines:
            out = (*out, part)
        elif not isinstance(part, str) or not out:
            break
    return out


def _message(err: ErrorDetails, loc: Loc, model: type[BaseModel]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown setting {loc[-1]!r}{hint}"
    words = {
        "missing": "required",
        "int_parsing": "expected a whole number",
        "int_type": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected text",
        "dict_type": "expected a mapping (key: value)",
        "model_type": "expected a mapping (key: value)",
        "list_type": "expected a list",
        "string_pattern_mismatch": f"does not match {ctx.get('pattern')!s}",
        "literal_error": f"expected one of {ctx.get('expected')!s}",
        "greater_than": f"must be greater than {ctx.get('gt')!s}",
        "greater_than_equal": f"must be at least {ctx.get('ge')!s}",
        "less_than": f"must be less than {ctx.get('lt')!s}",
        "less_than_equal": f"must be at most {ctx.get('le')!s}",
    }
    return words.get(kind) or err["msg"].removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` under ``model`` (none if unknown)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field is not None else None
        else:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[-1] if args else None  # dict[str, X] / list[X] / X | None: X
        current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else annotation
    return annotation


def _key_lines(path: Path) -> dict[Loc, int]:
    """The line of every key in the settings file (empty when it cannot be read)."""
    try:
        node = safeyaml.compose(safeyaml.read_text(path))
    except (ConfigError, yaml.YAMLError):
        return {}
    out: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode):
                    out[(*loc, key.value)] = key.start_mark.line + 1
                    walk(value, (*loc, key.value))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[(*loc, i)] = item.start_mark.line + 1
                walk(item, (*loc, i))

    if node is not None:
        walk(node, ())
    return out


def _dotenv_extra(name: str, model: type[BaseModel]) -> str:
    """A ``.env`` variable pydantic-settings refuses: a typo, or not ours at all."""
    if name.startswith(PREFIX):
        known = [f"{PREFIX}{field.upper()}" for field in model.model_fields]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        return f"{name} is not a setting" + (f" (did you mean {close[0]}?)" if close else "")
    return f"{name} is not a setting: .env may hold only {PREFIX}* settings"


def _dotenv_lines(path: Path) -> dict[str, int]:
    """Each variable → its line in ``.env``."""
    try:
        text = path.read_text(errors="replace")[: 1 << 20]
    except OSError:
        return {}
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip().removeprefix("export ").split("=", 1)[0].strip()
        if name and not name.startswith("#") and "=" in line:
            out[name.upper()] = number
    return out


def unknown_variables(
    model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> list[str]:
    """A warning for each ``WATCHDOG_*`` variable that sets nothing."""
    env = os.environ if environ is None else environ
    known = [f"{PREFIX}{name.upper()}" for name in model.model_fields]
    out = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name[len(PREFIX) :] in NOT_SETTINGS:
            continue
        if name.split("__")[0] in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{name} is not a setting{hint}: it is ignored")
    return out
