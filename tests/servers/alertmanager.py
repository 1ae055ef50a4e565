"""Fixtures: real Alertmanagers (Debian package ``prometheus-alertmanager``).

Helpers: ``start_alertmanager(tmp_path, config, cluster=False, peers=())`` →
:class:`AlertmanagerServer` (from ``examples/stack.py``) and ``watchdog_am_config``,
which turns the shipped ``alertmanager/alertmanager.yml`` into one aimed at a test's
watchdog with test-sized timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from examples.stack import REPO, AlertmanagerServer, start_alertmanager

__all__ = ["AlertmanagerServer", "shipped_config", "start_alertmanager", "watchdog_am_config"]

SHIPPED = REPO / "alertmanager" / "alertmanager.yml"


def shipped_config() -> dict[str, Any]:
    """The repository's alertmanager.yml, parsed."""
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    return data


def watchdog_am_config(url: str, token_file: Path, *, timing: str = "1s") -> str:
    """The shipped config with the watchdog receiver at ``url``, its credentials in
    ``token_file``, and every group timer set to ``timing``."""
    config = shipped_config()
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = url
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = timing
    return yaml.safe_dump(config)
