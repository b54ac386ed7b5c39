#!/usr/bin/env bash
# The test command: prepares DuckDB's library, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-duckdb.sh
exec cargo test --workspace "$@"
