#!/usr/bin/env bash
# Runs every test inside a fresh network namespace that has only loopback, so
# nothing a test sends can leave the machine. Builds first (outside the
# namespace, where the crate registry is reachable), then runs offline.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --tests --bins

inner='ip link set lo up && exec cargo test --locked --offline "$@"'
if [ "$(id -u)" = 0 ]; then
    exec unshare --net -- bash -c "$inner" _ "$@"
else
    # Without root, a user namespace maps us to root inside it.
    exec unshare --map-root-user --net -- bash -c "$inner" _ "$@"
fi
