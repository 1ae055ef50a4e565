#!/bin/sh
# Install the real servers the tests and the demo run: PostgreSQL, Redis, Prometheus,
# Alertmanager, the exporters, chromium for the status page's browser tests, and podman,
# buildah and mmdebstrap for the image test (Debian packages).
# Installs with apt when root; otherwise says what to run.
set -eu
missing=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }
have prometheus /usr/bin/prometheus || missing="$missing prometheus"
have prometheus-alertmanager /usr/bin/prometheus-alertmanager || missing="$missing prometheus-alertmanager"
have redis-server /usr/bin/redis-server || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
# tests/stack/: the exporters teams run next to the stack
have prometheus-postgres-exporter /usr/bin/prometheus-postgres-exporter || missing="$missing prometheus-postgres-exporter"
have prometheus-redis-exporter /usr/bin/prometheus-redis-exporter || missing="$missing prometheus-redis-exporter"
have prometheus-node-exporter /usr/bin/prometheus-node-exporter || missing="$missing prometheus-node-exporter"
# the status page's browser tests: Debian's chromium (driven by Playwright, no download)
have chromium /usr/bin/chromium || missing="$missing chromium"
have chromedriver /usr/bin/chromedriver || missing="$missing chromium-driver"
# the image test: buildah builds the Dockerfile, podman runs it (a Debian base from mmdebstrap)
have podman /usr/bin/podman || missing="$missing podman"
have buildah /usr/bin/buildah || missing="$missing buildah"
have mmdebstrap /usr/bin/mmdebstrap || missing="$missing mmdebstrap"
have runc /usr/sbin/runc || missing="$missing runc"
# compose.yaml run for real: podman-compose (PyPI, the dev extra) on netavark networks
# with aardvark-dns names
have netavark /usr/lib/podman/netavark || missing="$missing netavark"
have aardvark-dns /usr/lib/podman/aardvark-dns || missing="$missing aardvark-dns"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
