#!/usr/bin/env bash
# Regenerates the committed demo bundle (testdata/demo/) from the deterministic generator in
# testdata/src/demo.rs. The output is identical on every run; `cargo test -p karmor-testdata`
# fails when the committed bundle and the generator disagree. Extra arguments go to gen-demo
# (e.g. an output directory other than testdata/demo).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
cargo run -p karmor-testdata --bin gen-demo --release -- "$@"
