#!/usr/bin/env bash
# The whole test suite (torch==2.13.0 CPU is installed as the oracle). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh test
exec .venv/bin/python -m pytest -q "$@"
