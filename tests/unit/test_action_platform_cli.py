"""The Docker Compose, Kubernetes and Alembic executors, each with a stub CLI first on
PATH that records its argv: what was run, with what, how many times, never a shell."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.stubs import install_stub, stub_calls
from watchdog.actions.alembic import AlembicExecutor
from watchdog.actions.base import ActionContext
from watchdog.actions.compose import ComposeExecutor
from watchdog.actions.kubernetes import KubernetesExecutor
from watchdog.actions.plan import PlanRunner
from watchdog.actions.spec import AlembicStep, ComposeStep, KubernetesStep, Plan
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import Deployment, Window, WindowPhase


def ctx(previous: str = "1.4.2") -> ActionContext:
    deployment = Deployment("api", "prod", "1.5.0", previous, labels={"ns": "shop"})
    window = Window("w7", deployment, WindowPhase.ROLLING_BACK, 0.0, 1800.0, 0.0)
    return ActionContext(window, deployment.template_vars())


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECONFIG", "/etc/kube/config")
    monkeypatch.setenv("WATCHDOG_API_TOKEN", "must-not-leak-123456")
    return stubs


async def test_compose_pins_previous_image_and_ups_the_service(
    bin_dir: Path, tmp_path: Path
) -> None:
    install_stub(bin_dir, "docker")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "compose.yaml").write_text("services: {api: {image: 'ghcr.io/acme/api:1.5.0'}}\n")
    step = ComposeStep.model_validate(
        {
            "kind": "compose",
            "name": "pin",
            "service": "api",
            "image": "ghcr.io/acme/api:{{ previous_version }}",
            "project_directory": str(project),
            "project_name": "shop",
        }
    )
    result = await ComposeExecutor().run(step, ctx())
    calls = stub_calls(bin_dir, "docker")
    assert len(calls) == 1
    override = project / "compose.rollback.yml"
    assert calls[0]["argv"] == [
        "compose",
        "--project-directory",
        str(project),
        "-p",
        "shop",
        "-f",
        str(project / "compose.yaml"),
        "-f",
        str(override),
        "up",
        "-d",
        "--no-deps",
        "api",
    ]
    body = override.read_text().split("\n", 1)[1]
    assert json.loads(body) == {"services": {"api": {"image": "ghcr.io/acme/api:1.4.2"}}}
    assert result.data["image"] == "ghcr.io/acme/api:1.4.2"
    assert "WATCHDOG_API_TOKEN" not in calls[0]["env"]
    assert calls[0]["env"]["WATCHDOG_PREVIOUS_VERSION"] == "1.4.2"


async def test_compose_without_a_compose_file_is_permanent_and_runs_nothing(
    bin_dir: Path, tmp_path: Path
) -> None:
    install_stub(bin_dir, "docker")
    step = ComposeStep.model_validate(
        {
            "kind": "compose",
            "name": "pin",
            "service": "api",
            "image": "x:{{ previous_version }}",
            "cwd": str(tmp_path),
        }
    )
    with pytest.raises(PermanentError, match="no compose file"):
        await ComposeExecutor().run(step, ctx())
    assert stub_calls(bin_dir, "docker") == []


async def test_compose_rejects_unsafe_previous_version(bin_dir: Path, tmp_path: Path) -> None:
    install_stub(bin_dir, "docker")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    step = ComposeStep.model_validate(
        {
            "kind": "compose",
            "name": "pin",
            "service": "api",
            "image": "x:{{ previous_version }}",
            "cwd": str(tmp_path),
        }
    )
    with pytest.raises(PermanentError, match="not allowed"):
        await ComposeExecutor().run(step, ctx(previous="1; rm -rf /"))
    assert stub_calls(bin_dir, "docker") == []


async def test_compose_failure_retried_then_succeeds(bin_dir: Path, tmp_path: Path) -> None:
    install_stub(bin_dir, "docker", exits=[75])
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    plan = Plan.model_validate(
        {
            "steps": [
                {
                    "kind": "compose",
                    "name": "pin",
                    "service": "api",
                    "image": "x:{{ previous_version }}",
                    "cwd": str(tmp_path),
                    "backoff": "1s",
                }
            ]
        }
    )
    clock = FakeClock()
    outcome = await PlanRunner({"compose": ComposeExecutor()}, clock).run(plan, ctx(), _ignore)
    assert outcome.ok and outcome.steps[0].attempt == 2
    assert len(stub_calls(bin_dir, "docker")) == 2


async def test_kubectl_undo_then_status(bin_dir: Path) -> None:
    install_stub(bin_dir, "kubectl")
    step = KubernetesStep.model_validate(
        {
            "kind": "kubernetes",
            "name": "undo",
            "deployment": "{{ service }}",
            "namespace": "{{ labels.ns }}",
            "context": "prod-eu",
            "timeout": "100s",
        }
    )
    result = await KubernetesExecutor().run(step, ctx())
    argvs = [c["argv"] for c in stub_calls(bin_dir, "kubectl")]
    assert argvs == [
        ["--context", "prod-eu", "-n", "shop", "rollout", "undo", "deployment/api"],
        [
            "--context",
            "prod-eu",
            "-n",
            "shop",
            "rollout",
            "status",
            "deployment/api",
            "--timeout=80s",
        ],
    ]
    env = stub_calls(bin_dir, "kubectl")[0]["env"]
    assert env["KUBECONFIG"] == "/etc/kube/config" and "WATCHDOG_API_TOKEN" not in env
    assert result.data == {"deployment": "deployment/api"}


async def test_kubectl_to_revision(bin_dir: Path) -> None:
    install_stub(bin_dir, "kubectl")
    step = KubernetesStep.model_validate(
        {"kind": "kubernetes", "name": "undo", "deployment": "api", "to_revision": 7}
    )
    await KubernetesExecutor().run(step, ctx())
    assert stub_calls(bin_dir, "kubectl")[0]["argv"] == [
        "-n",
        "default",
        "rollout",
        "undo",
        "deployment/api",
        "--to-revision=7",
    ]


async def test_kubectl_status_failure_is_permanent_and_undo_never_repeated(bin_dir: Path) -> None:
    install_stub(bin_dir, "kubectl", exits=[0, 1])
    plan = Plan.model_validate(
        {"steps": [{"kind": "kubernetes", "name": "undo", "deployment": "api", "retries": 3}]}
    )
    outcome = await PlanRunner({"kubernetes": KubernetesExecutor()}, FakeClock()).run(
        plan, ctx(), _ignore
    )
    assert not outcome.ok and "exited 1" in (outcome.error or "")
    argvs = [c["argv"] for c in stub_calls(bin_dir, "kubectl")]
    assert [a[3] for a in argvs] == ["undo", "status"]  # undo toggles: never run twice


async def test_kubectl_undo_exit_75_is_not_retried(bin_dir: Path) -> None:
    install_stub(bin_dir, "kubectl", exits=[75])
    plan = Plan.model_validate(
        {"steps": [{"kind": "kubernetes", "name": "undo", "deployment": "api"}]}
    )
    outcome = await PlanRunner({"kubernetes": KubernetesExecutor()}, FakeClock()).run(
        plan, ctx(), _ignore
    )
    assert not outcome.ok and "not retried" in (outcome.error or "")
    assert len(stub_calls(bin_dir, "kubectl")) == 1


async def test_alembic_downgrade_argv_env_and_cwd(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_stub(bin_dir, "alembic")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/app")
    step = AlembicStep.model_validate(
        {
            "kind": "alembic",
            "name": "db-down",
            "revision": "ae1027a6acf",
            "config": "migrations/alembic.ini",
            "cwd": str(tmp_path),
            "inherit_env": ["DATABASE_URL"],
        }
    )
    result = await AlembicExecutor().run(step, ctx())
    (call,) = stub_calls(bin_dir, "alembic")
    assert call["argv"] == ["-c", "migrations/alembic.ini", "downgrade", "ae1027a6acf"]
    assert call["cwd"] == str(tmp_path)
    assert call["env"]["DATABASE_URL"] == "postgresql://app@db/app"
    assert result.data["revision"] == "ae1027a6acf"


def test_a_plan_with_a_migration_downgrade_is_a_data_loss_risk() -> None:
    risky = Plan.model_validate(
        {
            "steps": [
                {"kind": "http", "name": "deploy", "url": "http://127.0.0.1/rb"},
                {"kind": "alembic", "name": "db-down", "revision": "-1"},
            ],
            "data_loss_risk": False,
        }
    )
    assert risky.data_loss_risk
    safe = Plan.model_validate(
        {"steps": [{"kind": "kubernetes", "name": "undo", "deployment": "api"}]}
    )
    assert not safe.data_loss_risk


async def _ignore(_: object) -> None:
    return None


@pytest.mark.parametrize("cli", ["docker-compose", "podman-compose"])
async def test_compose_uses_a_standalone_compose_cli_when_there_is_no_docker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: str
) -> None:
    # The sidecar image: Debian's docker-compose and no docker CLI.
    stubs = tmp_path / "bin"
    stubs.mkdir()
    install_stub(stubs, cli)
    monkeypatch.setenv("PATH", str(stubs))
    (tmp_path / "compose.yaml").write_text("services: {api: {image: 'acme/api:1.5.0'}}\n")
    step = ComposeStep.model_validate(
        {"kind": "compose", "name": "pin", "service": "api",
         "image": "acme/api:{{ previous_version }}", "cwd": str(tmp_path)}
    )  # fmt: skip
    await ComposeExecutor().run(step, ctx())
    [call] = stub_calls(stubs, cli)
    override = str(tmp_path / "compose.rollback.yml")
    compose = str(tmp_path / "compose.yaml")
    assert call["argv"] == ["-f", compose, "-f", override, "up", "-d", "--no-deps", "api"]
