#!/usr/bin/env bash
# Analyzer benchmark: merge and observe times at 1M and 10M rows, against the original
# proposal's SQLite + JSON design; then `recommend` for the 100 synthetic workloads (time and
# peak memory), and `coverage` of the 100 workloads and `diff` of two half-week windows.
# Sizes: KARMOR_BENCH_ROWS=1000000,10000000 (default).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-duckdb.sh >/dev/null
cargo bench -p karmor-analyzer --bench analyzer
cargo bench -p karmor-analyzer --bench recommend
exec cargo bench -p karmor-analyzer --bench drift
