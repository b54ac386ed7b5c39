#!/usr/bin/env bash
# The probes' own work, before and after a change, side by side in one run: compiles
# collector/bpf/karmor.bpf.c as it is at BASE (a git revision, default `main`) and as it is in
# this worktree, loads each object with only the program a loop exercises attached, and runs
# interleaved rounds of pinned microloops. For each it prints the median of the program's own
# run time per run (kernel.bpf_stats_enabled: run_time_ns / run_cnt, which is robust under the
# load of a shared machine, unlike loop timings) and the loop's time per operation with its
# loss against no program.
#
# Loops (each a million calls of one behaviour, so every call after the first is a repeat,
# counted in the `dedup` map): open+close of one file by a process whose fd table is the one
# embedded in its files_struct (fewer than 64 descriptors ever open: the common case), the
# same with an fd above 63 open (a grown table: the probe-read path), open and unlink of a
# missing file, chmod by name and fchmod of an open file.
# Then a tar -c and -x of 2,000 new files in 20 directories: no call repeats, so every open,
# create, fchown and fchmod is a record with its path (the walk, the directory cache).
#
# `ROUNDS=5 CPU=1 BASE=main scripts/bench-probe-work.sh`. Needs root, clang, gcc,
# libbpf-dev and bpftool.
set -euo pipefail
rounds="${ROUNDS:-5}"
cpu="${CPU:-1}"
base="${BASE:-main}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/karmor-probe-work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >vmlinux.h
git -C "$repo" show "$base:collector/bpf/karmor.bpf.c" >before.bpf.c
cp "$repo/collector/bpf/karmor.bpf.c" after.bpf.c
for v in before after; do
    clang -O2 -g -target bpf -Wall -Werror -D__TARGET_ARCH_x86 -I. -c "$v.bpf.c" -o "$v.o"
done

cat >run.c <<'EOF2'
/* Loads a BPF object with only the named programs, attaches them, drains the ring buffer on
 * a thread while a command runs, then prints "ns_per_run" of the first that ran. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int quiet(enum libbpf_print_level l, const char *f, va_list a) { return 0; }
static volatile int stop;
static int cb(void *c, void *d, size_t n) { return 0; }
static void *drain(void *rb) { while (!stop) ring_buffer__poll(rb, 50); return 0; }
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    libbpf_set_print(quiet);
    struct bpf_object *o = bpf_object__open_file(argv[1], NULL);
    if (!o) { fprintf(stderr, "open: %s\n", strerror(errno)); return 1; }
    struct bpf_program *p;
    bpf_object__for_each_program(p, o) {
        int want = 0;
        for (int i = 3; i < argc; i++) want |= !strcmp(bpf_program__name(p), argv[i]);
        bpf_program__set_autoload(p, want);
    }
    int err = bpf_object__load(o);
    if (err) { fprintf(stderr, "load: %s\n", strerror(-err)); return 1; }
    bpf_object__for_each_program(p, o)
        if (bpf_program__autoload(p) && !bpf_program__attach(p)) {
            fprintf(stderr, "attach %s: %s\n", bpf_program__name(p), strerror(errno));
            return 1;
        }
    struct ring_buffer *rb = ring_buffer__new(bpf_object__find_map_fd_by_name(o, "events"), cb, 0, 0);
    pthread_t th;
    pthread_create(&th, 0, drain, rb);
    int rc = system(argv[2]);
    stop = 1;
    pthread_join(th, 0);
    bpf_object__for_each_program(p, o) {
        if (!bpf_program__autoload(p)) continue;
        struct bpf_prog_info info = {};
        __u32 len = sizeof(info);
        bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len);
        if (info.run_cnt) {
            printf("%.1f\n", (double)info.run_time_ns / info.run_cnt);
            break;
        }
    }
    return rc == 0 ? 0 : 1;
}
EOF2
gcc -O2 -o run run.c -lbpf -lpthread

cat >loops.c <<'EOF2'
/* ns per operation of a loop, run in a child that holds only descriptors 0-2 (so that its fd
 * table is the embedded one), or, for "open-grown", also descriptor 100. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    close_range(3, ~0U, 0);
    if (fork() == 0) {
        int n = 1000000;
        if (!strcmp(argv[1], "open-grown")) dup2(0, 100);
        int fd = open("/tmp/karmor-bench-mode", O_RDONLY | O_CREAT, 0600);
        double a = now();
        if (!strcmp(argv[1], "open-fail"))
            for (int i = 0; i < n; i++) open("/nonexistent/karmor-bench", O_RDONLY);
        else if (!strcmp(argv[1], "unlink-fail"))
            for (int i = 0; i < n; i++) unlink("/nonexistent/karmor-bench");
        else if (!strcmp(argv[1], "chmod"))
            for (int i = 0; i < n; i++) chmod("/tmp/karmor-bench-mode", 0600);
        else if (!strcmp(argv[1], "fchmod"))
            for (int i = 0; i < n; i++) fchmod(fd, 0600);
        else
            for (int i = 0; i < n; i++) close(open("/etc/hostname", O_RDONLY));
        printf("%.1f\n", (now() - a) / n);
        fflush(stdout);
        _exit(0);
    }
    wait(0);
    return 0;
}
EOF2
gcc -O2 -o loops loops.c

# loop:program it exercises
loops=(open:openat_exit open-grown:openat_exit open-fail:openat_exit unlink-fail:unlink_exit
    chmod:chmod_exit fchmod:fchmod_exit)
# A tar of new files: none is a repeat, so every open (tar -c), create, fchown and fchmod
# (tar -x as root) is a record with its path. 2,000 files in 20 directories, 4 levels down.
mkdir -p tartree/a/b/tree
for d in $(seq 0 19); do
    mkdir -p "tartree/a/b/tree/d$d"
    for f in $(seq 0 99); do echo "file $d $f" >"tartree/a/b/tree/d$d/f$f.txt"; done
done
tar_progs=(openat_exit fchown_exit fchmod_exit)
tar_cmd="rm -rf tarout tar.tar && mkdir tarout && taskset -c $cpu tar -cf tar.tar -C tartree a && taskset -c $cpu tar -xf tar.tar -C tarout"

stats_was="$(sysctl -n kernel.bpf_stats_enabled)"
sysctl -q kernel.bpf_stats_enabled=1
trap 'sysctl -q kernel.bpf_stats_enabled="$stats_was"; rm -rf "$work"' EXIT
for _ in $(seq "$rounds"); do
    for lp in "${loops[@]}"; do
        l="${lp%%:*}"
        echo "none $l $(taskset -c "$cpu" ./loops "$l") -"
        for v in before after; do
            out="$(./run "$v.o" "taskset -c $cpu ./loops $l >loop.txt" "${lp#*:}")"
            echo "$v $l $(cat loop.txt) $out"
        done
    done
    for p in "${tar_progs[@]}"; do
        for v in before after; do
            echo "$v tar:$p - $(./run "$v.o" "$tar_cmd" "$p")"
        done
    done
done >runs.txt

median() { # $1 variant, $2 loop, $3 column (3 loop ns, 4 program ns)
    awk -v v="$1" -v l="$2" -v c="$3" '$1 == v && $2 == l {print $c}' runs.txt | sort -n |
        awk '{x[NR]=$1} END {print x[int((NR+1)/2)]}'
}
loss() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.1f %%", (1 - b / m) * 100 }'; }
echo "Probes before ($base) and after (worktree), medians of $rounds interleaved rounds, CPU $cpu:"
echo
echo "| loop | program | before: ns/run | after: ns/run | no program: ns/op | before: ns/op (loss) | after: ns/op (loss) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for lp in "${loops[@]}"; do
    l="${lp%%:*}"
    n="$(median none "$l" 3)"
    b="$(median before "$l" 3)"
    a="$(median after "$l" 3)"
    echo "| $l | ${lp#*:} | $(median before "$l" 4) | $(median after "$l" 4) | $n | $b ($(loss "$b" "$n")) | $a ($(loss "$a" "$n")) |"
done
echo
echo "tar -c and -x of 2,000 new files (each program attached alone; every call a new record):"
echo
echo "| program | before: ns/run | after: ns/run |"
echo "|---|---:|---:|"
for p in "${tar_progs[@]}"; do
    echo "| $p | $(median before "tar:$p" 4) | $(median after "tar:$p" 4) |"
done
echo
echo "- kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare rows of one run)"
