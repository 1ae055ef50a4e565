#!/bin/sh
# One entrypoint, four roles, told apart by what compose.yaml gives each image:
#   prometheus    a --config.file under /etc/prometheus: /bin/prometheus with the
#                 command's flags, working directory /prometheus (like prom/prometheus)
#   alertmanager  a --config.file under /etc/alertmanager: /bin/alertmanager likewise
#   postgres      POSTGRES_PASSWORD set: POSTGRES_USER / _PASSWORD / _DB honoured, data in
#                 /var/lib/postgresql/data, listening on 5432 (like the postgres image)
#   redis         otherwise: redis-server on 6379, protected mode off (like the redis image)
# ROLE in the environment overrides the guess.
set -eu
role="${ROLE:-}"
if [ -z "$role" ]; then
    case "$*" in
    *--config.file=/etc/prometheus/*) role=prometheus ;;
    *--config.file=/etc/alertmanager/*) role=alertmanager ;;
    *) if [ -n "${POSTGRES_PASSWORD:-}" ]; then role=postgres; else role=redis; fi ;;
    esac
fi
case "$role" in
postgres)
    data=/var/lib/postgresql/data
    if [ ! -s "$data/PG_VERSION" ]; then
        echo "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > /tmp/pwfile
        chown postgres /tmp/pwfile
        runuser -u postgres -- initdb -D "$data" -U "${POSTGRES_USER:-postgres}" \
            --pwfile=/tmp/pwfile --auth-host=scram-sha-256 --auth-local=trust >/dev/null
        rm -f /tmp/pwfile
        echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
        runuser -u postgres -- pg_ctl -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
        db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
        if [ "$db" != "postgres" ]; then
            runuser -u postgres -- psql -U "${POSTGRES_USER:-postgres}" -d postgres \
                -c "CREATE DATABASE \"$db\"" >/dev/null
        fi
        runuser -u postgres -- pg_ctl -D "$data" -m fast -w stop >/dev/null
    fi
    exec runuser -u postgres -- postgres -D "$data" -c listen_addresses='*' "$@"
    ;;
redis)
    exec redis-server --bind 0.0.0.0 --protected-mode no --save "" --appendonly no "$@"
    ;;
prometheus)
    cd /prometheus
    exec /bin/prometheus "$@"
    ;;
alertmanager)
    cd /alertmanager
    exec /bin/alertmanager "$@"
    ;;
*)
    echo "standin: unknown role '$role'" >&2
    exit 64
    ;;
esac
