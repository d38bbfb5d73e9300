#!/usr/bin/env bash
# Sets up .venv if needed, then runs the tests. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "slow or not slow"    # everything, as CI does
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
