#!/usr/bin/env bash
# Builds the Debian package (cargo deb: the release server, stripped, its
# systemd unit, /etc/uringcast/uringcast.toml) and checks it: the files are
# where the unit and the README say, the unit passes `systemd-analyze
# verify` with the package installed (purged again at the end), and the
# packaged configuration file is one the packaged binary accepts. Prints the
# .deb's path. CI runs it (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dpkg-shlibdeps >/dev/null || need_apt+=(dpkg-dev)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if [ "${#need_apt[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0

# cargo deb's output goes to stderr by way of a file: `tee /dev/stderr`
# would reopen (and truncate) a log file that stderr is redirected to.
out=$(mktemp)
if ! cargo deb --locked -p uringcast --fast --strip >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    exit 1
fi
cat "$out" >&2
deb=$(tail -n 1 "$out")
rm -f "$out"
[ -f "$deb" ] || { echo "package.sh: cargo deb made no package" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
unit=usr/lib/systemd/system/uringcast.service
for f in usr/bin/uringcast etc/uringcast/uringcast.toml "$unit"; do
    [ -e "$root/$f" ] || { echo "package.sh: $f is not in $deb" >&2; dpkg-deb -c "$deb" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libssl || { echo "package.sh: no libssl dependency" >&2; exit 1; }
grep -q '^/etc/uringcast/uringcast.toml$' <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)

# The unit as systemd reads it, with the binary it names where it names it:
# the package is installed for the check and purged after (as root).
if [ "$(id -u)" != 0 ]; then
    echo "package.sh: verifying the unit installs the package: run as root" >&2
    exit 1
fi
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge uringcast >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
systemd-analyze verify "/$unit"
# Its hardening, as systemd scores it (informational; lower is stricter).
systemd-analyze security --offline=yes "/$unit" 2>/dev/null | tail -n 1 || true

# The packaged binary takes the packaged configuration file.
"$root/usr/bin/uringcast" --config "$root/etc/uringcast/uringcast.toml" --print-config >/dev/null
echo "$deb"
