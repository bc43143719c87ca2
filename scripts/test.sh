#!/usr/bin/env bash
# Install everything the test suite needs, then run it: `scripts/test.sh [pytest args]`.
#
# Uses the active virtual environment, else ./.venv (made if missing), so it works the same
# on a fresh Debian/Ubuntu machine, whose system Python refuses `pip install`.
# Needs nothing outside the repository except Debian's chromium for the web page's test:
# installed here when we are root, otherwise asked for in one line.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n[test.sh] %s\n' "$*" >&2; }

if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        say "no virtual environment active: creating .venv"
        python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
say "using $(python --version) at $(command -v python)"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's chromium for the browser test (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        say "the browser test needs Debian's chromium; install it once with:
    sudo apt-get update && sudo apt-get install -y chromium
and run scripts/test.sh again"
        exit 2
    fi
fi

# torch is pinned to the CPU build for this setup (an unpinned torch pulls a CUDA build of
# several GB); the package metadata keeps a range.
say "installing seglite with its test extras (torch==2.13.0 CPU, about 2-3 minutes the first time)"
python -m pip install --disable-pip-version-check --progress-bar off torch==2.13.0 -e ".[dev]" \
    | grep -E --line-buffered '^(Collecting|Successfully|ERROR)' || true
python -c "import seglite, torch" || { say "the install failed: see pip's messages above"; exit 1; }

say "running the tests"
python -m pytest "$@"
