#!/bin/sh
# Install the Debian packages the demo and the test suite run: every program listed in
# scripts/system-deps.txt (the servers, the exporters, chromium, podman and what its
# networks call). `system-deps.sh demo` installs only what `make demo` needs.
# Installs with apt when root; otherwise says what to run.
set -eu
here=$(dirname "$0")
only=${1:-}
missing=""

# have PROGRAM WHERE: on PATH, or one of WHERE's comma-separated paths (globs) is executable
have() {
    command -v "$1" >/dev/null 2>&1 && return 0
    [ "$2" = "-" ] && return 1
    for pattern in $(echo "$2" | tr ',' ' '); do
        for path in $pattern; do  # the shell expands the glob
            [ -x "$path" ] && return 0
        done
    done
    return 1
}

# shellcheck disable=SC2034  # why: the rest of the line, read to skip it
while read -r group program package where why; do
    case "$group" in ''|'#'*) continue ;; esac
    [ -n "$only" ] && [ "$group" != "$only" ] && continue
    have "$program" "$where" && continue
    case " $missing " in *" $package "*) ;; *) missing="$missing $package" ;; esac
done < "$here/system-deps.txt"

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "run: sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Recommends stay out: every package a program here needs at run time is in the table,
# including what another one shells out to (netavark -> iptables).
# shellcheck disable=SC2086
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "apt-get failed installing:$missing" >&2
    exit 1
fi
