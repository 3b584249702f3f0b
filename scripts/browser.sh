#!/usr/bin/env bash
# The browser web/tests drive: Debian's Chromium (and its driver), installed when missing.
# Playwright launches this binary (executable_path), so `playwright install` is never needed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "installing Debian's chromium and chromium-driver (web/tests' browser)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
