#!/usr/bin/env bash
# Builds the shippable kubectl-karmor for Linux: one tarball per architecture,
#
#   <out>/kubectl-karmor_<version>_linux_<arch>.tar.gz (+ .sha256, and SHA256SUMS for all)
#     kubectl-karmor            the plugin, RUNPATH $ORIGIN (no path of the build machine)
#     libduckdb.so              DuckDB 1.5.6, found beside the binary through $ORIGIN
#     kubectl_complete-karmor   kubectl's plugin-completion executable
#     LICENSE, README.md
#
# then the krew manifest <out>/plugins/karmor.yaml from plugins/karmor.yaml.in, listing every
# tarball of this version found in <out> with its real sha256, and the collector image's build
# command (collector/Containerfile).
#
#   scripts/release.sh [--target TRIPLE]... [--out DIR] [--base-url URL] [--bundled] [--image]
#
#   --target    x86_64-unknown-linux-gnu (default: this machine's) or aarch64-unknown-linux-gnu;
#               repeat for both. A cross target needs its Rust standard library (rustup target
#               add ...) and a C cross toolchain (gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu);
#               the script says which is missing and stops.
#   --out       output directory (default: dist/)
#   --base-url  where the tarballs will be downloadable, for the krew manifest's uri
#               (default: <repository>/releases/download/v<version>, from Cargo.toml)
#   --bundled   link DuckDB in (--features bundled: compiles its C++, ~30 min on 2 cores) instead
#               of shipping libduckdb.so beside the binary
#   --image     also build the collector image with docker or podman (otherwise: print the command)
#   --manifest-only  only (re)write the krew manifest and SHA256SUMS from the tarballs in --out
#                (e.g. after copying in a tarball built on an arm64 machine)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

die() { echo "release: $*" >&2; exit 1; }

targets=()
out="$repo/dist"
base_url=""
bundled=0
image=0
manifest_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --target) [ $# -ge 2 ] || die "--target needs a triple"; targets+=("$2"); shift 2 ;;
    --target=*) targets+=("${1#--target=}"); shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a URL"; base_url="$2"; shift 2 ;;
    --base-url=*) base_url="${1#--base-url=}"; shift ;;
    --bundled) bundled=1; shift ;;
    --image) image=1; shift ;;
    --manifest-only) manifest_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The workspace's version and repository, from the root Cargo.toml's [workspace.package].
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
repository="$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || die "no version in Cargo.toml"
base_url="${base_url:-$repository/releases/download/v$version}"
duckdb_npm_version="$(sed -n 's/^DUCKDB_NPM_VERSION="\(.*\)"$/\1/p' scripts/setup-duckdb.sh)"
[ -n "$duckdb_npm_version" ] || die "no DUCKDB_NPM_VERSION in scripts/setup-duckdb.sh"
cache_root="${KARMOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-karmor}/duckdb/$duckdb_npm_version"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
host="$(rustc -vV | sed -n 's/^host: //p')"
[ ${#targets[@]} -gt 0 ] || targets=("$host")

# Reproducible archives: file times from the last commit.
# (Not exported: C build scripts track SOURCE_DATE_EPOCH, and a new value rebuilds them.)
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

arch_of() {
  case "$1" in
    x86_64-unknown-linux-gnu) echo amd64 ;;
    aarch64-unknown-linux-gnu) echo arm64 ;;
    *) die "unsupported target $1 (x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu)" ;;
  esac
}

# The directory holding libduckdb.so for an architecture (amd64, arm64), fetched from npm once.
duckdb_for() {
  local arch="$1" pkg dir
  case "$arch" in
    amd64) pkg="@duckdb/node-bindings-linux-x64"; dir="$cache_root" ;;  # scripts/setup-duckdb.sh's
    arm64) pkg="@duckdb/node-bindings-linux-arm64"; dir="$cache_root/linux-arm64" ;;
  esac
  if [ "$arch" = amd64 ] && [ "$(uname -m)" = x86_64 ]; then
    # The path .cargo/config.toml gives (DUCKDB_LIB_DIR): the same value as in dev builds,
    # so that libduckdb-sys is not rebuilt for a changed variable.
    scripts/setup-duckdb.sh >&2
    dir="$repo/.duckdb"
  elif [ ! -f "$dir/libduckdb.so" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch $pkg@$duckdb_npm_version"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$pkg@$duckdb_npm_version" >/dev/null && tar xzf ./*.tgz) \
      || { rm -rf "$tmp"; die "could not fetch $pkg@$duckdb_npm_version"; }
    mkdir -p "$dir"
    cp "$tmp/package/libduckdb.so" "$dir/libduckdb.so.tmp"
    mv "$dir/libduckdb.so.tmp" "$dir/libduckdb.so"
    rm -rf "$tmp"
  fi
  echo "$dir"
}

# Fails, saying exactly what is missing, when `target` cannot be built on this machine.
check_toolchain() {
  local target="$1" missing=()
  local sysroot
  sysroot="$(rustc --print sysroot)"
  if ! ls "$sysroot/lib/rustlib/$target/lib/"libstd-*.rlib >/dev/null 2>&1; then
    missing+=("the Rust standard library for $target (rustup target add $target; not in $sysroot/lib/rustlib)")
  fi
  if [ "$target" != "$host" ]; then
    local prefix upper
    prefix="$(cross_prefix "$target")"
    upper="$(echo "$target" | tr 'a-z-' 'A-Z_')"
    local linker_var="CARGO_TARGET_${upper}_LINKER"
    local linker="${!linker_var:-${prefix}gcc}"
    command -v "$linker" >/dev/null || missing+=("a cross linker $linker (apt-get install gcc-${prefix%-}, or set $linker_var)")
    # ring and zstd-sys compile C for the target; DuckDB's C++ too with --bundled.
    command -v "${prefix}gcc" >/dev/null || [ -n "${!linker_var:-}" ] \
      || missing+=("a C cross compiler ${prefix}gcc (apt-get install gcc-${prefix%-})")
    if [ "$bundled" = 1 ]; then
      command -v "${prefix}g++" >/dev/null || missing+=("a C++ cross compiler ${prefix}g++ (apt-get install g++-${prefix%-})")
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "release: cannot build $target here; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

cross_prefix() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo aarch64-linux-gnu- ;;
    x86_64-unknown-linux-gnu) echo x86_64-linux-gnu- ;;
  esac
}

# Removes debug info (the release profile keeps line tables for local backtraces); symbols stay.
strip_debug() {
  local bin="$1" target="$2" tool
  for tool in llvm-strip "$(cross_prefix "$target")strip" strip; do
    if command -v "$tool" >/dev/null && "$tool" --strip-debug "$bin" 2>/dev/null; then
      return 0
    fi
  done
  echo "release: no strip tool for $target; the binary keeps its debug line tables" >&2
}

# kubectl (1.26+) completes `kubectl karmor ...` by running an executable
# `kubectl_complete-karmor` found on PATH; the plugin writes it beside itself.
kubectl_complete_hook() {
  local bin="$1" dir="$2"
  "$bin" completion --install-kubectl-plugin "$dir" >&2
  [ -x "$dir/kubectl_complete-karmor" ] \
    || die "completion --install-kubectl-plugin did not write an executable $dir/kubectl_complete-karmor"
}

build_one() {
  local target="$1" arch libdir cargo_args=(build --release --locked -p kubectl-karmor) bin
  arch="$(arch_of "$target")"
  check_toolchain "$target"
  if [ "$target" != "$host" ]; then
    cargo_args+=(--target "$target")
    bin="$target_dir/$target/release/kubectl-karmor"
    local prefix upper
    prefix="$(cross_prefix "$target")"
    upper="$(echo "$target" | tr 'a-z-' 'A-Z_')"
    local linker_var="CARGO_TARGET_${upper}_LINKER"
    export "$linker_var=${!linker_var:-${prefix}gcc}"
    export "CC_${target//-/_}=${prefix}gcc" "CXX_${target//-/_}=${prefix}g++" "AR_${target//-/_}=${prefix}ar"
  else
    bin="$target_dir/release/kubectl-karmor"
  fi
  local started=$SECONDS
  if [ "$bundled" = 1 ]; then
    cargo_args+=(--features bundled)
    echo "release: building $target with DuckDB compiled in (long)" >&2
    cargo "${cargo_args[@]}" >&2
  else
    libdir="$(duckdb_for "$arch")"
    echo "release: building $target against $libdir/libduckdb.so, RUNPATH \$ORIGIN" >&2
    DUCKDB_LIB_DIR="$libdir" KARMOR_RPATH_ORIGIN=1 cargo "${cargo_args[@]}" >&2
  fi
  echo "release: $target built in $((SECONDS - started)) s" >&2

  local name="kubectl-karmor_${version}_linux_${arch}"
  local stage
  stage="$(mktemp -d)"
  install -m 0755 "$bin" "$stage/kubectl-karmor"
  strip_debug "$stage/kubectl-karmor" "$target"
  if [ "$bundled" = 0 ]; then
    install -m 0644 "$libdir/libduckdb.so" "$stage/libduckdb.so"
  fi
  install -m 0644 LICENSE README.md "$stage/"
  if [ "$target" = "$host" ]; then
    kubectl_complete_hook "$stage/kubectl-karmor" "$stage"
  else
    echo "release: kubectl_complete-karmor is not generated for $target (the binary cannot run here)" >&2
  fi
  # The files at the archive's top level, without a "./" entry (whose mode would be applied to
  # the directory it is unpacked in).
  local files
  files="$(cd "$stage" && ls -A)"
  # shellcheck disable=SC2086 # the names are ours, without spaces
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$stage" -cf - $files | gzip -9n > "$out/$name.tar.gz.tmp"
  mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
  rm -rf "$stage"
  (cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  echo "release: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))" >&2
}

# plugins/karmor.yaml from plugins/karmor.yaml.in: @VERSION@, @HOMEPAGE@ and @PLATFORMS@ (one
# block per tarball of this version in $out).
write_manifest() {
  local platforms="" tarball arch sum n=0
  for tarball in "$out"/kubectl-karmor_"${version}"_linux_*.tar.gz; do
    [ -f "$tarball" ] || continue
    arch="${tarball##*_linux_}"
    arch="${arch%.tar.gz}"
    sum="$(sha256sum "$tarball" | cut -d' ' -f1)"
    platforms+="  - selector:
      matchLabels:
        os: linux
        arch: $arch
    uri: $base_url/$(basename "$tarball")
    sha256: $sum
    bin: kubectl-karmor
    files:
      - from: \"*\"
        to: \".\"
"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "no kubectl-karmor_${version}_linux_*.tar.gz in $out"
  mkdir -p "$out/plugins"
  local platforms_file
  platforms_file="$(mktemp)"
  printf '%s' "$platforms" > "$platforms_file"
  awk -v version="$version" -v homepage="$repository" -v pf="$platforms_file" '
    /^@PLATFORMS@$/ { while ((getline line < pf) > 0) print line; next }
    { gsub(/@VERSION@/, version); gsub(/@HOMEPAGE@/, homepage); print }
  ' plugins/karmor.yaml.in > "$out/plugins/karmor.yaml"
  rm -f "$platforms_file"
  (cd "$out" && sha256sum kubectl-karmor_"${version}"_linux_*.tar.gz > SHA256SUMS)
  echo "release: $out/plugins/karmor.yaml lists $n platform(s)" >&2
}

if [ "$manifest_only" = 0 ]; then
  [ -f LICENSE ] || die "no LICENSE at the repository root"
  for t in "${targets[@]}"; do
    build_one "$t"
  done
fi
write_manifest

image_ref="ghcr.io/karmor/karmor-collector:$version"
image_cmd="build -f collector/Containerfile -t $image_ref ."
if [ "$image" = 1 ]; then
  if command -v docker >/dev/null; then
    docker $image_cmd
  elif command -v podman >/dev/null; then
    podman $image_cmd
  else
    die "--image: neither docker nor podman is installed; build on a machine with one: docker $image_cmd"
  fi
else
  echo "release: the collector image is built from the repository root with:" >&2
  echo "  docker $image_cmd    (or podman; or scripts/release.sh --image)" >&2
  echo "  then push it and set the image in collector/deploy/daemonset.yaml" >&2
fi
echo "release: done; artefacts in $out:" >&2
(cd "$out" && ls -l ./*.tar.gz ./*.sha256 SHA256SUMS plugins/karmor.yaml) >&2
