#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's Chromium for the web page's browser test (Playwright drives it; no browser download).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# torch is pinned to the CPU build that this setup uses; the package metadata keeps a range.
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[dev]"
export SEGLITE_MODEL_DIR="${SEGLITE_MODEL_DIR:-$(cd .. && pwd)/shared/models}"
python -m pytest "$@"
