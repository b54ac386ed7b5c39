#!/usr/bin/env bash
# Collector benchmark: pipeline events/s on one core, resident memory with 500 containers,
# bytes on disk per raw event, and syscall-loop throughput with and without the probes
# (the last part needs root and a kernel that allows BPF tracepoints); then the gRPC side:
# pull throughput over loopback (MB/s) and messages/s ingested from a KubeArmor stream.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p karmor-collector --bench collector
exec cargo bench -p karmor-collector --bench grpc
