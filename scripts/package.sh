#!/usr/bin/env bash
# Builds the Debian package (cargo deb: the release server, its systemd
# unit, /etc/uringcast/uringcast.toml) and checks it: the files are where
# the unit and the README say, the unit passes `systemd-analyze verify`
# against the unpacked package, and the packaged configuration file is one
# the packaged binary accepts. Prints the .deb's path. CI runs it.
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

deb=$(cargo deb --locked -p uringcast --fast 2>&1 | tee /dev/stderr | tail -n 1)
[ -f "$deb" ] || { echo "package.sh: cargo deb made no package" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
for f in usr/bin/uringcast etc/uringcast/uringcast.toml lib/systemd/system/uringcast.service; do
    [ -e "$root/$f" ] || { echo "package.sh: $f is not in $deb" >&2; dpkg-deb -c "$deb" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libssl || { echo "package.sh: no libssl dependency" >&2; exit 1; }
grep -q '^/etc/uringcast/uringcast.toml$' <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)

# The unit, with the binary it names, as systemd reads it.
systemd-analyze verify --root="$root" /lib/systemd/system/uringcast.service
# Its hardening, as systemd scores it (informational; lower is stricter).
systemd-analyze security --offline=yes --root="$root" /lib/systemd/system/uringcast.service |
    tail -n 1 || true

# The packaged binary takes the packaged configuration file.
"$root/usr/bin/uringcast" --config "$root/etc/uringcast/uringcast.toml" --print-config >/dev/null
echo "$deb"
