"""`make test` on a machine where nothing was installed by hand.

The bare Debian bookworm base the image is built on (mmdebstrap: python3 and apt, no
server, no browser, no podman) is the fresh machine. On it the preflight fails at once,
naming the packages; ``scripts/system-deps.sh`` installs them (apt, the host's sources,
``--no-install-recommends``); then the preflight passes, including what podman's
networks shell out to (iptables answers) and a podman network created and removed.
The three steps run in the background while the rest of the suite does
(``prepare.fresh_machine``), kept per inputs like the Debian bases.
"""

from __future__ import annotations

import pytest

from tests.container.prepare import Fresh

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def test_the_bare_machine_fails_the_preflight_naming_the_packages(fresh_machine: Fresh) -> None:
    assert fresh_machine.install[0] == 0, fresh_machine.install[1]
    code, said = fresh_machine.bare
    assert code == 1, said
    install = next(line for line in said.splitlines() if "apt-get install" in line)
    for package in ("postgresql", "prometheus", "chromium", "podman", "iptables"):
        assert f" {package} " in f"{install} ", install


def test_system_deps_makes_the_preflight_pass(fresh_machine: Fresh) -> None:
    how = "kept from an earlier run" if fresh_machine.reused else "now"
    print(f"scripts/system-deps.sh on a bare bookworm: {fresh_machine.seconds:.0f} s ({how})")
    assert fresh_machine.install[0] == 0, fresh_machine.install[1]
    code, said = fresh_machine.after
    assert code == 0, said
    assert "every program `make test` runs is installed" in said
