#!/usr/bin/env bash
# Runs every test inside a fresh network namespace that has only loopback, so
# nothing a test sends can leave the machine. Builds first (outside the
# namespace, where the crate registry is reachable), then runs offline.
# Extra arguments go to `cargo test` (e.g. a test name filter: `browser`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser test (tests/browser.rs) drives Debian's chromium with npm's
# playwright-core (never a downloaded browser). Install what is missing here,
# outside the namespace; the test itself fails if they are still missing.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}
need_apt=()
# The build links the system OpenSSL (src/dtls): headers and pkg-config.
{ command -v pkg-config >/dev/null && pkg-config --exists openssl; } ||
    need_apt+=(libssl-dev pkg-config)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# The GStreamer test (tests/gstreamer.rs): webrtcbin, libnice, VP8 and Opus,
# driven from Debian's /usr/bin/python3 through python3-gi.
for pkg in gstreamer1.0-plugins-bad gstreamer1.0-plugins-good gstreamer1.0-plugins-base \
    gstreamer1.0-nice python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-bad-1.0 \
    gir1.2-gst-plugins-base-1.0; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need_apt+=("$pkg")
done
# The reverse-proxy test (tests/reverse_proxy.rs) puts Debian's nginx in
# front of the server; the test starts its own instance on loopback.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# The ICE-TCP browser test drops UDP to the media port with iptables.
command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need_apt+=(iptables)
# The recording test (tests/recording.rs) reads the files back with ffprobe.
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
# The recorder's muxer (webm-sys) builds libwebm's C++ with `cc`.
command -v c++ >/dev/null || need_apt+=(g++)
if [ "${#need_apt[@]}" -gt 0 ]; then
    # Packages must not start services here (nginx would listen on :80).
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    echo "test.sh: installing ${need_apt[*]} for the build, the browser and GStreamer tests" >&2
    if ! { as_root apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null; }; then
        echo "test.sh: could not install ${need_apt[*]} (needs root or sudo); the build, the browser or the GStreamer test will fail" >&2
    fi
fi
[ -z "${made_policy:-}" ] || rm -f /usr/sbin/policy-rc.d
browser=tests/browser
if [ ! -f "$browser/node_modules/playwright-core/package.json" ] ||
    [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
    echo "test.sh: npm ci in $browser (playwright-core)" >&2
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "test.sh: npm ci failed; the browser test will fail" >&2
fi

cargo build --locked --workspace --tests --bins

inner='ip link set lo up && exec cargo test --locked --offline --workspace "$@"'
if [ "$(id -u)" = 0 ]; then
    exec unshare --net -- bash -c "$inner" _ "$@"
else
    # Without root, a user namespace maps us to root inside it.
    exec unshare --map-root-user --net -- bash -c "$inner" _ "$@"
fi
