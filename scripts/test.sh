#!/usr/bin/env bash
# The test command: prepares DuckDB's library, runs every test of the workspace (all test
# binaries, even after one fails), and closes with one line that sums them all:
# "tests: N passed, N failed, N skipped", where skipped counts the #[ignore]d tests that did not
# run (each named above it, with what it needs). Arguments go to cargo test:
# `scripts/test.sh -- --include-ignored` runs those too, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-duckdb.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test .* \.\.\. ignored/ { sub(/^test /, ""); skipped[++n] = $0 }
     /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { if (n) { print "not run (#[ignore]; run with: scripts/test.sh -- --include-ignored):"; for (i = 1; i <= n; i++) print "  " skipped[i] }
           printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
