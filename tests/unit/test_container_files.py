"""The Dockerfile, compose.yaml and their companion files, checked statically (no Docker
engine here): every file they mount exists, every WATCHDOG_* name is a Settings field,
ports agree, the image runs as a non-root user with a /healthz HEALTHCHECK."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from watchdog.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_ENV = {f"WATCHDOG_{name.upper()}" for name in Settings.model_fields} | {"WATCHDOG_CONFIG"}


def dockerfile() -> list[str]:
    """Instructions, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def env_names(text: str) -> set[str]:
    return set(re.findall(r"\b(WATCHDOG_[A-Z_]+)=", text))


def test_dockerfile_is_multistage_slim_nonroot_with_healthcheck() -> None:
    lines = dockerfile()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert "ARG BASE=python:3.11-slim" in lines  # the default base; tests build on another
    assert len(froms) >= 2 and all(f.startswith("FROM ${BASE} AS ") for f in froms)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER instruction: the image would run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    (health,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert "/healthz" in health
    assert lines[-2].startswith("ENTRYPOINT") and "serve" in lines[-1]


def test_dockerfile_env_and_copies_match_settings_and_repo() -> None:
    lines = dockerfile()
    env_text = " ".join(line for line in lines if line.startswith("ENV "))
    watchdog_env = set(re.findall(r"\b(WATCHDOG_[A-Z_]+)=", env_text))
    assert watchdog_env and watchdog_env <= SETTINGS_ENV
    port = re.search(r"WATCHDOG_LISTEN_PORT=(\d+)", env_text)
    assert port is not None
    assert f"EXPOSE {port.group(1)}" in lines
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and "watchdog" not in ignored


def test_compose_mounts_exist_and_every_service_has_a_healthcheck() -> None:
    services = compose()["services"]
    assert {"api", "postgres", "redis", "prometheus", "alertmanager", "watchdog"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert services["watchdog"]["build"] == "." and (ROOT / "Dockerfile").exists()
    mounts = [v.split(":")[1] for v in services["watchdog"]["volumes"]]
    assert "/etc/watchdog/rules" in mounts and "/etc/watchdog/watchdog.yml" in mounts


def test_compose_env_names_ports_and_config_match_settings() -> None:
    watchdog = compose()["services"]["watchdog"]
    env = watchdog["environment"]
    assert set(env) <= SETTINGS_ENV
    port = env["WATCHDOG_LISTEN_PORT"]
    assert watchdog["ports"] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(watchdog["healthcheck"]["test"])
    (env_file,) = watchdog["env_file"]
    example = ROOT / f"{env_file['path']}.example"
    assert example.exists() and env_file["required"] is False
    names = env_names(example.read_text())
    assert "WATCHDOG_API_TOKEN" in names and names <= SETTINGS_ENV
    mounted = {v.split(":")[1]: v.split(":")[0] for v in watchdog["volumes"]}
    config = yaml.safe_load((ROOT / mounted[env["WATCHDOG_CONFIG"]]).read_text())
    settings = Settings(**config, api_token="9f2c7a41d0be4e55a8c3", listen_host="0.0.0.0")
    assert settings.plans and settings.detect and settings.default_plan in settings.plans
    url = env["WATCHDOG_PROMETHEUS_URL"]
    assert url.split("//")[1].split(":")[0] in compose()["services"]


def test_prometheus_scrapes_api_and_watchdog_and_alerts_to_alertmanager() -> None:
    services = compose()["services"]
    port = services["watchdog"]["environment"]["WATCHDOG_LISTEN_PORT"]
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert f"watchdog:{port}" in targets and "api:8000" in targets
    for target in targets:
        assert target.split(":")[0] in services
    alerting = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == ["alertmanager:9093"]
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    urls = [w["url"] for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert any(u.startswith(f"http://watchdog:{port}/") for u in urls)


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("no Docker Compose client on this machine")
    done = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_prometheus_and_alertmanager_configs_pass_their_own_checkers() -> None:
    for tool, args in (
        ("promtool", ["check", "config", "deploy/prometheus.yml"]),
        ("amtool", ["check-config", "alertmanager/alertmanager.yml"]),
        ("promtool", ["check", "rules", "alertmanager/prometheus-rules.yml"]),
    ):
        binary = shutil.which(tool)
        assert binary is not None, f"{tool} missing: run make system-deps"
        done = subprocess.run(
            [binary, *args], capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert done.returncode == 0, f"{tool} {args}: {done.stdout}{done.stderr}"


def test_the_sidecar_block_fits_the_image_and_the_compose_step() -> None:
    """deploy/compose.sidecar.yaml: what docs/deploy.md tells people to paste, mounted as
    the container test (tests/container/test_compose_sidecar.py) runs it."""
    sidecar = yaml.safe_load((ROOT / "deploy/compose.sidecar.yaml").read_text())
    watchdog = sidecar["services"]["watchdog"]
    assert set(watchdog["environment"]) <= SETTINGS_ENV
    assert "WATCHDOG_API_TOKEN" in watchdog["environment"]
    targets = {v.split(":")[1] for v in watchdog["volumes"]}
    env = " ".join(dockerfile())
    for path in ("/etc/watchdog/rules", "/var/lib/watchdog"):
        assert path in targets and path in env
    assert watchdog["environment"]["WATCHDOG_CONFIG"] in targets
    # The compose step: the engine's socket where the CLI looks, the project at the same
    # path, the socket's group for the image's non-root user, the CLI in the image.
    assert "/var/run/docker.sock:/var/run/docker.sock" in watchdog["volumes"]
    assert (
        "${PROJECT_DIR:?set PROJECT_DIR to this project's absolute path}:${PROJECT_DIR}"
        in (watchdog["volumes"])
    )
    assert watchdog["group_add"] == ["${DOCKER_GID:-999}"]
    assert "ARG COMPOSE_CLI=docker-compose" in dockerfile()
    assert "watchdog-data" in sidecar["volumes"]
