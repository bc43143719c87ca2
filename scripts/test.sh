#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
# torch is pinned to the CPU build that this setup uses; the package metadata keeps a range.
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[dev]"
export SEGLITE_MODEL_DIR="${SEGLITE_MODEL_DIR:-$(cd .. && pwd)/shared/models}"
python -m pytest "$@"
