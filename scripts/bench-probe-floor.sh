#!/usr/bin/env bash
# The kernel's floor under the design's "≤ 5 % throughput loss" target for an open/close loop:
# what an EMPTY BPF program costs on the hook the collector needs for file opens
# (tp/syscalls/sys_exit_openat), beside an empty program on a syscall the loop never makes
# (the cost of syscall tracing being switched on at all), and whether kprobes exist here.
#
# Interleaved rounds (none, unrelated, open-exit) on one pinned CPU; prints the median ns per
# open+close and the loss against no program. Needs root, gcc, clang and libbpf-dev.
# `ROUNDS=15 scripts/bench-probe-floor.sh`.
set -euo pipefail
rounds="${ROUNDS:-9}"
cpu="${CPU:-1}"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/karmor-probe-floor.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

bpf_prog() { # $1 name, $2 section
    cat >"$1.bpf.c" <<EOF
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("$2")
int empty(void *ctx) { return 0; }
EOF
    clang -O2 -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c "$1.bpf.c" -o "$1.o"
}
bpf_prog unrelated tp/syscalls/sys_exit_getppid
bpf_prog open_exit tp/syscalls/sys_exit_openat

cat >loop.c <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    const int n = 2000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) close(open("/etc/hostname", O_RDONLY));
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
EOF
cat >attach.c <<'EOF'
/* Loads and attaches every program of a BPF object, runs a command, detaches on exit. */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    struct bpf_object *o = bpf_object__open_file(argv[1], NULL);
    if (!o || bpf_object__load(o)) { fprintf(stderr, "%s: load failed\n", argv[1]); return 1; }
    struct bpf_program *p;
    bpf_object__for_each_program(p, o)
        if (!bpf_program__attach(p)) { fprintf(stderr, "%s: attach failed\n", argv[1]); return 1; }
    return system(argv[2]) == 0 ? 0 : 1;
}
EOF
gcc -O2 -o loop loop.c
gcc -O2 -o attach attach.c -lbpf

for _ in $(seq "$rounds"); do
    echo "none $(taskset -c "$cpu" ./loop)"
    echo "unrelated $(./attach unrelated.o "taskset -c $cpu ./loop")"
    echo "open_exit $(./attach open_exit.o "taskset -c $cpu ./loop")"
done >runs.txt

median() { grep "^$1 " runs.txt | awk '{print $2}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
base="$(median none)"
echo
echo "| empty BPF program on | ns per open+close (median of $rounds) | loss |"
echo "|---|---:|---:|"
for k in none unrelated open_exit; do
    m="$(median "$k")"
    awk -v k="$k" -v m="$m" -v b="$base" 'BEGIN { printf "| %s | %.1f | %.1f %% |\n", k, m, (1 - b / m) * 100 }'
done
echo
if [ -r /proc/config.gz ] && [ "$(zcat /proc/config.gz | grep -c '^# CONFIG_KPROBES is not set')" -gt 0 ]; then
    echo "- kprobes: not built into this kernel (CONFIG_KPROBES unset): syscall tracepoints are the only file-open hook"
fi
echo "- kernel $(uname -r), CPU $cpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
