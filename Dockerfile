# syntax=docker/dockerfile:1
# rollback-watchdog: a sidecar image. Rules and settings are mounted, never baked in:
#   /etc/watchdog/rules/        rule files (WATCHDOG_RULES)
#   /etc/watchdog/watchdog.yml  optional YAML settings, rollback plans (WATCHDOG_CONFIG)
#   /var/lib/watchdog/          the embedded SQLite store (a volume)

# The base: any image with Python >= 3.11, `python -m venv`, groupadd/useradd and CA
# certificates. The tests build on a Debian base made with mmdebstrap (no registry here).
ARG BASE=python:3.11-slim

# --- build: install the package and its runtime dependencies into a venv ----------
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY watchdog ./watchdog
RUN pip install . \
 && pip uninstall -y pip setuptools \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && find /opt/venv -path '*/site-packages/*' -type d -name tests -prune -exec rm -rf {} +

# --- runtime: the venv only, as a non-root user ----------------------------------
FROM ${BASE} AS runtime
# The `compose` rollback step's CLI: Debian's docker-compose drives the engine whose
# socket is mounted (docs/deploy.md, "Rolling back from the sidecar"). Any Debian-based
# BASE; `--build-arg COMPOSE_CLI=` leaves it out.
ARG COMPOSE_CLI=docker-compose
RUN if [ -n "$COMPOSE_CLI" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$COMPOSE_CLI" \
      && apt-get clean \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    fi
RUN groupadd --system --gid 10001 watchdog \
 && useradd --system --uid 10001 --gid watchdog --home-dir /var/lib/watchdog \
      --shell /usr/sbin/nologin watchdog \
 && mkdir -p /etc/watchdog/rules /var/lib/watchdog \
 && chown watchdog:watchdog /var/lib/watchdog
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WATCHDOG_LISTEN_HOST=0.0.0.0 \
    WATCHDOG_LISTEN_PORT=8080 \
    WATCHDOG_RULES=/etc/watchdog/rules \
    WATCHDOG_STORE_URL=sqlite:////var/lib/watchdog/watchdog.db
WORKDIR /var/lib/watchdog
USER 10001:10001
EXPOSE 8080
VOLUME ["/var/lib/watchdog"]
# Liveness through the service's own /healthz (no curl in a slim image: Python's stdlib).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('WATCHDOG_LISTEN_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["watchdog"]
CMD ["serve"]
