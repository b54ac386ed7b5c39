#!/usr/bin/env bash
# The kernel's floor under the design's "≤ 5 % throughput loss" target: what an EMPTY BPF
# program costs, per hook kind, on three pinned microloops (open+close, fork+exec of a static
# /bin/true-like child, loopback TCP connect+accept). Hook kinds: classic syscall tracepoints
# (on the loop's own call, and on one the loops never make: the cost of syscall tracing being
# switched on at all), the raw_syscalls tracepoint (every call), raw and BTF-typed tracepoints
# on sched, sock and capability events, their classic forms, and fentry, LSM and kprobe
# programs. A kind that does not load or attach here is listed with the kernel's error.
#
# With KARMOR_COLLECTOR_BIN (a built karmor-collector), the same rounds also run the loops
# under the collector with its file, process and network probes only (`--no-syscalls
# --no-capabilities`) and with all its probes (+ the system call and capability counts), so
# that the probes' cost stands beside the floor of their hooks in one run.
#
# Interleaved rounds (every kind once per round, in turn) on one pinned CPU; prints the
# median per operation and the loss against no program. Needs root, gcc, clang, libbpf-dev
# and bpftool (for vmlinux.h).
# `ROUNDS=9 CPU=1 KARMOR_COLLECTOR_BIN=target/release/karmor-collector scripts/bench-probe-floor.sh`.
set -euo pipefail
rounds="${ROUNDS:-5}"
cpu="${CPU:-1}"
collector="${KARMOR_COLLECTOR_BIN:-}"
[ -z "$collector" ] || collector="$(realpath "$collector")"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/karmor-probe-floor.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >vmlinux.h

# kind name | section | what it is
kinds=(
    "sys_exit_getppid|tp/syscalls/sys_exit_getppid|classic syscall tp, a call the loops never make"
    "sys_exit_openat|tp/syscalls/sys_exit_openat|classic syscall tp on open's exit"
    "raw_sys_enter|tp/raw_syscalls/sys_enter|raw_syscalls tp (every call)"
    "raw_tp_sys_enter|raw_tp/sys_enter|raw tracepoint sys_enter (every call)"
    "tp_sched_exec|tp/sched/sched_process_exec|classic sched tp"
    "btf_sched_exec|tp_btf/sched_process_exec|BTF tp on sched"
    "tp_sock_state|tp/sock/inet_sock_set_state|classic sock tp"
    "btf_sock_state|tp_btf/inet_sock_set_state|BTF tp on sock"
    "tp_cap_capable|tp/capability/cap_capable|classic capability tp"
    "btf_cap_capable|tp_btf/cap_capable|BTF tp on capability"
    "fentry_openat|fentry/do_sys_openat2|fentry"
    "lsm_file_open|lsm/file_open|BPF LSM"
    "kprobe_openat|kprobe/do_sys_openat2|kprobe"
)

cat >attach.c <<'EOF2'
/* Loads and attaches every program of a BPF object, then runs a command (or, with "-",
 * only reports the load/attach error). */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int quiet(enum libbpf_print_level l, const char *f, va_list a) { return 0; }
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    libbpf_set_print(quiet);
    struct bpf_object *o = bpf_object__open_file(argv[1], NULL);
    if (!o) { printf("open: %s\n", strerror(errno)); return 1; }
    int err = bpf_object__load(o);
    if (err) { printf("load: %s\n", strerror(-err)); return 1; }
    struct bpf_program *p;
    bpf_object__for_each_program(p, o)
        if (!bpf_program__attach(p)) { printf("attach: %s\n", strerror(errno)); return 1; }
    if (!strcmp(argv[2], "-")) return 0;
    return system(argv[2]) == 0 ? 0 : 1;
}
EOF2
gcc -O2 -o attach attach.c -lbpf

loadable=()
declare -A why
for k in "${kinds[@]}"; do
    IFS='|' read -r name section _ <<<"$k"
    cat >"$name.bpf.c" <<EOF2
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("$section")
int empty(void *ctx) { return 0; }
EOF2
    if ! out="$(clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I. -c "$name.bpf.c" -o "$name.o" 2>&1)"; then
        why[$name]="does not compile: ${out%%$'\n'*}"
    elif out="$(./attach "$name.o" - 2>&1)"; then
        loadable+=("$name")
    else
        why[$name]="$out"
    fi
done

cat >loops.c <<'EOF2'
/* open: ns per open+close; exec: us per fork+exec+wait of /bin/true; connect: us per
 * loopback TCP connect+accept+close (reset, so that no TIME_WAIT piles up). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    double a = now(), per = 0;
    if (!strcmp(argv[1], "open")) {
        int n = 1000000;
        for (int i = 0; i < n; i++) close(open("/etc/hostname", O_RDONLY));
        per = (now() - a) / n;
    } else if (!strcmp(argv[1], "exec")) {
        int n = 1000;
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p == 0) { execl("/bin/true", "true", (char *)0); _exit(127); }
            waitpid(p, 0, 0);
        }
        per = (now() - a) / n / 1e3;
    } else {
        int n = 20000, one = 1;
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        bind(l, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(l, (struct sockaddr *)&sa, &len);
        listen(l, 64);
        a = now();
        for (int i = 0; i < n; i++) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            connect(c, (struct sockaddr *)&sa, sizeof(sa));
            int s = accept(l, 0, 0);
            struct linger lg = { 1, 0 };
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(c);
            close(s);
        }
        per = (now() - a) / n / 1e3;
    }
    printf("%.2f\n", per);
    return 0;
}
EOF2
gcc -O2 -o loops loops.c

run3() { # prints "open exec connect" for a command prefix
    local pre="$1" o e c
    o="$($pre taskset -c "$cpu" ./loops open)"
    e="$($pre taskset -c "$cpu" ./loops exec)"
    c="$($pre taskset -c "$cpu" ./loops connect)"
    echo "$o $e $c"
}
# Runs the loops under the collector started with flags "$@" (once its probes are attached).
under_collector() {
    rm -rf data && mkdir data
    "$collector" --no-kube --node-name floor --data-dir data --listen 127.0.0.1:0 \
        --metrics-addr 127.0.0.1:19466 "$@" >collector.log 2>&1 &
    local pid=$! i
    for i in $(seq 300); do
        if { exec 3<>/dev/tcp/127.0.0.1/19466; } 2>/dev/null; then
            printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
            if grep -q '^karmor_probes_attached [1-9]' <&3; then exec 3>&-; break; fi
            exec 3>&-
        fi
        sleep 0.1
    done
    run3 ""
    kill -TERM "$pid" && wait "$pid" || true
}
collector_kinds=()
if [ -n "$collector" ]; then
    collector_kinds=(collector_today collector_all)
fi
for _ in $(seq "$rounds"); do
    echo "none $(run3 "")"
    for name in "${loadable[@]}"; do
        # shellcheck disable=SC2016
        echo "$name $(./attach "$name.o" "taskset -c $cpu ./loops open; taskset -c $cpu ./loops exec; taskset -c $cpu ./loops connect" | tr '\n' ' ')"
    done
    if [ -n "$collector" ]; then
        echo "collector_today $(under_collector --no-syscalls --no-capabilities)"
        echo "collector_all $(under_collector)"
    fi
done >runs.txt

# Each program's own run time (kernel.bpf_stats_enabled): an empty raw_syscalls program, for
# what the accounting itself adds, then the collector's programs over one pass of the loops.
stats_json() { bpftool prog show -j > "$1"; }
prog_stats() { # $1 json file: "name runs ns_per_run" for programs that ran
    python3 -c '
import json, sys
for p in json.load(open(sys.argv[1])):
    n = p.get("run_cnt", 0)
    if n:
        print(p.get("name", "?"), n, round(p["run_time_ns"] / n, 1))
' "$1"
}
stats_was="$(sysctl -n kernel.bpf_stats_enabled)"
sysctl -q kernel.bpf_stats_enabled=1
./attach raw_sys_enter.o "taskset -c $cpu ./loops open >/dev/null; bpftool prog show -j > stats_empty.json" || true
if [ -n "$collector" ]; then
    under_collector_stats() {
        rm -rf data && mkdir data
        "$collector" --no-kube --node-name floor --data-dir data --listen 127.0.0.1:0 \
            --metrics-addr 127.0.0.1:19466 >collector.log 2>&1 &
        local pid=$!
        sleep 3
        run3 "" >/dev/null
        stats_json stats_collector.json
        kill -TERM "$pid" && wait "$pid" || true
    }
    under_collector_stats
fi
sysctl -q kernel.bpf_stats_enabled="$stats_was"

median() { # $1 kind, $2 column (2 open, 3 exec, 4 connect)
    grep "^$1 " runs.txt | awk -v c="$2" '{print $c}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}
loss() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.1f %%", (1 - b / m) * 100 }'; }
b_open="$(median none 2)"; b_exec="$(median none 3)"; b_conn="$(median none 4)"
echo
echo "Empty BPF program per hook kind (medians of $rounds interleaved rounds, CPU $cpu):"
echo
echo "| hook kind | section | open+close ns (loss) | fork+exec µs (loss) | TCP connect µs (loss) |"
echo "|---|---|---:|---:|---:|"
echo "| none | — | $b_open | $b_exec | $b_conn |"
for k in "${kinds[@]}"; do
    IFS='|' read -r name section what <<<"$k"
    if [ -n "${why[$name]:-}" ]; then
        echo "| $what | \`$section\` | does not load: ${why[$name]} | | |"
        continue
    fi
    o="$(median "$name" 2)"; e="$(median "$name" 3)"; c="$(median "$name" 4)"
    echo "| $what | \`$section\` | $o ($(loss "$o" "$b_open")) | $e ($(loss "$e" "$b_exec")) | $c ($(loss "$c" "$b_conn")) |"
done
for name in "${collector_kinds[@]}"; do
    case "$name" in
    collector_today) what="collector: file, process, network probes (--no-syscalls --no-capabilities)" ;;
    *) what="collector: all probes (+ system call and capability counts)" ;;
    esac
    o="$(median "$name" 2)"; e="$(median "$name" 3)"; c="$(median "$name" 4)"
    echo "| $what | $(basename "$collector") | $o ($(loss "$o" "$b_open")) | $e ($(loss "$e" "$b_exec")) | $c ($(loss "$c" "$b_conn")) |"
done
echo
if [ -r /proc/config.gz ] && zcat /proc/config.gz | grep -q '^# CONFIG_KPROBES is not set'; then
    echo "- kprobes: not built into this kernel (CONFIG_KPROBES unset)"
fi
echo "- lockdown: $(cat /sys/kernel/security/lockdown 2>/dev/null || echo unknown); LSMs: $(cat /sys/kernel/security/lsm 2>/dev/null || echo unknown)"
echo "- kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare rows of one run)"
if [ -f stats_empty.json ]; then
    echo
    echo "Programs' own run time (kernel.bpf_stats_enabled, one pass of the three loops):"
    echo
    echo "| program | runs | ns per run |"
    echo "|---|---:|---:|"
    prog_stats stats_empty.json | awk '$1 == "empty" { printf "| empty raw_syscalls:sys_enter (what the accounting adds) | %s | %s |\n", $2, $3 }'
    [ -f stats_collector.json ] && prog_stats stats_collector.json | awk '$1 != "empty" { printf "| %s | %s | %s |\n", $1, $2, $3 }'
fi
