#!/usr/bin/env bash
# The main job. Extra arguments go to `convgrad demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh cli
exec .venv/bin/convgrad demo "$@"
