#!/usr/bin/env bash
# promtool (from Debian's prometheus package) for deploy/tests: `promtool check rules` and
# `promtool test rules`. Only the binary is needed, so the package is downloaded and unpacked into
# var/tools/ rather than installed (installing it would also start a Prometheus server).
# Prints the path of the promtool to use.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/var/tools"
if [ ! -x "$TOOLS/usr/bin/promtool" ]; then
    echo "unpacking promtool from Debian's prometheus package into var/tools/" >&2
    DOWNLOADS="$(mktemp -d)"
    trap 'rm -rf "$DOWNLOADS"' EXIT
    cd "$DOWNLOADS"
    if ! apt-get download prometheus >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
        $SUDO apt-get update -qq
        apt-get download prometheus >/dev/null 2>&1
    fi
    mkdir -p "$TOOLS"
    dpkg-deb -x prometheus_*.deb "$DOWNLOADS/unpacked"
    install -D -m 0755 "$DOWNLOADS/unpacked/usr/bin/promtool" "$TOOLS/usr/bin/promtool"
fi
echo "$TOOLS/usr/bin/promtool"
