// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// The floor under collector/bpf/karmor.bpf.c: the same programs (names and hooks) and the
// same maps, but every program returns at once. `karmor-collector --empty-probes` loads this
// object instead, so that a benchmark measures what the kernel charges for running *any*
// program on the hooks the collector attaches (e.g. the syscall tracepoints' slow path), apart
// from what our programs do. collector/src/probes.rs attaches both objects from one list, and
// tests/probes.rs checks that they attach the same hooks. Keep the program and map names in
// step with karmor.bpf.c.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// The maps user space opens (sizes as in karmor.bpf.c; they stay empty).
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

struct dedup_key_bytes {
	__u8 b[80];
};
struct dedup_val_bytes {
	__u64 v[2];
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct dedup_key_bytes);
	__type(value, struct dedup_val_bytes);
} dedup SEC(".maps");

struct count_key_bytes {
	__u8 b[24];
};
struct count_val_bytes {
	__u8 b[48];
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct count_key_bytes);
	__type(value, struct count_val_bytes);
} counts SEC(".maps");

// Set by the loader, as for the real object.
const volatile __u32 self_tgid = 0;

#define EMPTY(section, name)                                                                \
	SEC(section)                                                                        \
	int name(void *ctx)                                                                 \
	{                                                                                   \
		return 0;                                                                   \
	}

EMPTY("tp/sched/sched_process_exec", handle_exec)
EMPTY("tp/sched/sched_process_exit", handle_exit)
EMPTY("tp/syscalls/sys_exit_openat", openat_exit)
EMPTY("tp/syscalls/sys_exit_openat2", openat2_exit)
EMPTY("tp/syscalls/sys_exit_open", open_exit_tp)
EMPTY("tp/syscalls/sys_exit_creat", creat_exit)
EMPTY("tp/syscalls/sys_exit_unlink", unlink_exit)
EMPTY("tp/syscalls/sys_exit_unlinkat", unlinkat_exit)
EMPTY("tp/syscalls/sys_exit_rmdir", rmdir_exit)
EMPTY("tp/syscalls/sys_exit_rename", rename_exit_tp)
EMPTY("tp/syscalls/sys_exit_renameat", renameat_exit)
EMPTY("tp/syscalls/sys_exit_renameat2", renameat2_exit)
EMPTY("tp/syscalls/sys_exit_chmod", chmod_exit)
EMPTY("tp/syscalls/sys_exit_fchmodat", fchmodat_exit)
EMPTY("tp/syscalls/sys_exit_fchmodat2", fchmodat2_exit)
EMPTY("tp/syscalls/sys_exit_fchmod", fchmod_exit)
EMPTY("tp/syscalls/sys_exit_chown", chown_exit)
EMPTY("tp/syscalls/sys_exit_lchown", lchown_exit)
EMPTY("tp/syscalls/sys_exit_fchownat", fchownat_exit)
EMPTY("tp/syscalls/sys_exit_fchown", fchown_exit)
EMPTY("tp/syscalls/sys_exit_connect", connect_exit)
EMPTY("tp/syscalls/sys_exit_bind", bind_exit)
EMPTY("tp/syscalls/sys_exit_listen", listen_exit)
EMPTY("tp/syscalls/sys_exit_accept", accept_exit_tp)
EMPTY("tp/syscalls/sys_exit_accept4", accept4_exit)
EMPTY("tp/syscalls/sys_enter_sendto", sendto_enter)
EMPTY("tp/syscalls/sys_enter_sendmsg", sendmsg_enter)
EMPTY("tp/syscalls/sys_enter_socket", socket_enter)
EMPTY("tp/raw_syscalls/sys_enter", sys_enter)
EMPTY("tp/capability/cap_capable", cap_capable)
