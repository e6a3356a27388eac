#!/usr/bin/env bash
# Debian's chromium for the test that renders the service's API docs page headless
# (tests/test_service.py). Idempotent: returns at once when chromium is already there.
set -euo pipefail
command -v chromium >/dev/null && exit 0
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
echo "[chromium] apt-get install chromium" >&2
if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium >/dev/null; then
    as_root apt-get update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium >/dev/null
fi
command -v chromium >/dev/null
