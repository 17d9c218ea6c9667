#!/usr/bin/env bash
# Install Debian's headless Chromium and its matching chromedriver for the browser tests.
# Idempotent: does nothing when both binaries are already there. selenium-manager cannot be used
# here (it downloads drivers from the internet), so the tests drive these system binaries.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]]; then
    echo "chromium and chromedriver already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

install_cmd=(env DEBIAN_FRONTEND=noninteractive sh -c
    'apt-get update -qq && apt-get install -y -qq chromium chromium-driver')

if [[ "$(id -u)" -eq 0 ]]; then
    "${install_cmd[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "${install_cmd[@]}"
else
    echo "install-browser: need root to install chromium and chromium-driver, and 'sudo -n' is not available." >&2
    echo "Run as root:  apt-get update && apt-get install -y chromium chromium-driver" >&2
    exit 1
fi

if [[ ! -x "$CHROMIUM" || ! -x "$CHROMEDRIVER" ]]; then
    echo "install-browser: apt-get finished but $CHROMIUM or $CHROMEDRIVER is still missing." >&2
    exit 1
fi
echo "installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
