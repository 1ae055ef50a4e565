"""`make test` on a machine where nothing was installed by hand.

The bare Debian bookworm base the image is built on (mmdebstrap: python3 and apt, no
server, no browser, no podman) is the fresh machine. On it the preflight fails at once,
naming the packages; ``scripts/system-deps.sh`` installs them (apt, the host's sources,
``--no-install-recommends``); then the preflight passes, including what podman's
networks shell out to (iptables) and a podman network created and removed. The install
is made once per package list (``prepare.fresh_machine``); the checks run every time.
"""

from __future__ import annotations

import pytest

from tests.container.prepare import REPO, Fresh
from tests.servers.containers import Podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def preflight(podman: Podman, image: str) -> tuple[int, str]:
    """``python3 -m tests.preflight test`` in ``image`` as root (privileged: iptables
    and podman inside need the capabilities the host's root has)."""
    done = podman.run("podman", "run", "--rm", "--privileged", "-v", f"{REPO}:/src:ro",
                      "-w", "/src", image, "python3", "-m", "tests.preflight", "test",
                      check=False, timeout=300)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_the_bare_machine_fails_the_preflight_naming_the_packages(
    podman: Podman, fresh_machine: Fresh
) -> None:
    code, said = preflight(podman, fresh_machine.base)
    assert code == 1, said
    install = next(line for line in said.splitlines() if "apt-get install" in line)
    for package in ("postgresql", "prometheus", "chromium", "podman", "iptables"):
        assert f" {package} " in f"{install} ", install


def test_system_deps_makes_the_preflight_pass(podman: Podman, fresh_machine: Fresh) -> None:
    print(f"scripts/system-deps.sh on a bare bookworm: {fresh_machine.seconds:.0f} s")
    assert fresh_machine.image is not None, fresh_machine.output
    code, said = preflight(podman, fresh_machine.image)
    assert code == 0, said
    assert "every program `make test` runs is installed" in said
