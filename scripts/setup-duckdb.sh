#!/usr/bin/env bash
# Puts DuckDB 1.5.6's prebuilt libduckdb.so (shipped inside the npm package
# @duckdb/node-bindings-linux-x64) in a per-user cache and links it as .duckdb/ in the repo,
# where .cargo/config.toml points the duckdb crate (DUCKDB_LIB_DIR). Idempotent.
set -euo pipefail
DUCKDB_NPM_VERSION="1.5.6-r.1"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${KARMOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-karmor}/duckdb/$DUCKDB_NPM_VERSION"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg="@duckdb/node-bindings-linux-x64" ;;
  Linux-aarch64) pkg="@duckdb/node-bindings-linux-arm64" ;;
  *) echo "setup-duckdb: no prebuilt libduckdb for $(uname -s)-$(uname -m); build with --features bundled" >&2; exit 1 ;;
esac

if [ ! -f "$cache/libduckdb.so" ]; then
  command -v npm >/dev/null || { echo "setup-duckdb: npm is needed to fetch $pkg (or build with --features bundled)" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$pkg@$DUCKDB_NPM_VERSION" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$cache"
  cp "$tmp/package/libduckdb.so" "$cache/libduckdb.so.tmp"
  mv "$cache/libduckdb.so.tmp" "$cache/libduckdb.so"
fi
ln -sfn "$cache" "$repo/.duckdb"
echo "libduckdb.so ready in $cache (linked as $repo/.duckdb)"
