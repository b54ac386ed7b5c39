// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// Kernel side of the kubectl-karmor collector: process, file and network sensors.
//
// Only tracepoints are used (sched, syscalls): they are stable, cheap, and allowed where
// fentry/fexit, LSM and kprobes are not (kernels without CONFIG_KPROBES, or sandboxes that
// forbid ftrace-based trampolines). Syscalls whose result is recorded are seen at their exit
// only, their arguments read back from the task's saved user registers (bpf_task_pt_regs), so
// no per-thread state is kept between entry and exit; UDP sends and raw-socket creation are
// seen at entry. File paths are resolved in the kernel from the opened file's
// dentry and mount chain (so relative paths and dirfds come out absolute, as the process's
// mount namespace sees them); socket addresses come from the socket itself.
//
// Cost control, in the order a probe runs:
//  1. the collector's own pid is skipped first;
//  2. in-kernel de-duplication: a repeated behaviour (same process image, cgroup, opened
//     file, name as given or address, access, result; for an exec, the same image, filename
//     and arguments run by the same parent image) in the current generation is counted
//     in the `dedup` hash map and not emitted; "seen before" is decided before the path walk,
//     the record and the ring-buffer write, which happen only for the first one. User space bumps the generation at each window flush, waits for running
//     probes to finish (synchronize_rcu through membarrier), and adds the counts of the
//     closed generation to the rows of their first events (see collector/src/probes.rs),
//     so rows and counts are the same as without kernel de-duplication;
//  3. records are variable-size (header + the strings actually used), built in a per-CPU
//     scratch buffer and copied with bpf_ringbuf_output;
//  4. a cgroup's names are sent with its first event of each generation only;
//  5. user space is woken when a quarter of the ring buffer is used or 50 ms after the last
//     wake-up, not for every record.
//
// CO-RE (compiled once against BTF, relocated by the loader to the running kernel). A record
// that does not fit in the ring buffer is counted in `drops`, which the collector reports.
//
// The layout of `struct karmor_event` and `struct dedup_key` is mirrored by
// collector/src/raw.rs: change both.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PATH_MAX_LEN 256
#define ARGS_MAX_LEN 256
#define CG_NAME_LEN 96
#define MAX_COMPS 24
#define COMP_LEN 128
#define COMPS_TRUNCATED 0x80000000u
// The components are the leaf's alone, followed by those of directory `dir`, which an earlier
// record of this generation defined (see struct dir_key).
#define COMPS_DIR_REF 0x40000000u
// The components after the first are the path of directory `dir`, sent once per generation.
#define COMPS_DIR_DEF 0x20000000u
// Data area: strings are written at offsets masked with DATA_MASK (so the verifier sees them
// in bounds); no single write is longer than DATA_SLACK, and the writers stop at DATA_BUDGET.
#define DATA_MASK 2047
#define DATA_SLACK 256
#define DATA_BUDGET 2048
#define DATA_SIZE (DATA_BUDGET + DATA_SLACK)
#define RING_SIZE (16 * 1024 * 1024)
#define WAKE_BYTES (RING_SIZE / 4)
#define WAKE_NS (50 * 1000 * 1000ull)

#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define O_ACCMODE 03
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define FMODE_EXEC 0x20
#define FMODE_CREATED 0x100000

#define AF_INET 2
#define AF_INET6 10
#define SOCK_RAW 3
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define AF_PACKET 17

enum karmor_kind {
	EV_EXEC = 1,
	EV_EXIT = 2,
	EV_FILE = 3,
	EV_CONNECT = 4,
	EV_ACCEPT = 5,
	EV_BIND = 6,
	EV_LISTEN = 7,
	EV_UDP_SEND = 8,
	EV_SOCKET = 9,
	EV_UNLINK = 10,
	EV_RENAME = 11,
	EV_CHMOD = 12,
	EV_CHOWN = 13,
};

// Which syscall, for the `syscall` column (collector/src/pipeline.rs names them).
enum karmor_sys {
	SYS_NONE = 0,
	SYS_OPEN_ = 1,
	SYS_OPENAT_ = 2,
	SYS_OPENAT2_ = 3,
	SYS_CREAT_ = 4,
	SYS_UNLINK_ = 5,
	SYS_UNLINKAT_ = 6,
	SYS_RMDIR_ = 7,
	SYS_RENAME_ = 8,
	SYS_RENAMEAT_ = 9,
	SYS_RENAMEAT2_ = 10,
	SYS_CHMOD_ = 11,
	SYS_FCHMODAT_ = 12,
	SYS_FCHMOD_ = 13,
	SYS_CHOWN_ = 14,
	SYS_LCHOWN_ = 15,
	SYS_FCHOWNAT_ = 16,
	SYS_FCHOWN_ = 17,
	SYS_FCHMODAT2_ = 18,
};

// A directory whose path user space holds: the path walk of a later file in it stops at its
// leaf, and the record names the directory by the id its first record defined. The directory
// is its dentry with its mount, parent and name hash (so that a freed and reused dentry is not
// mistaken for it), in one generation and rename epoch (renaming a directory moves the ones
// below it).
struct dir_key {
	__u64 dentry;
	__u64 mnt;
	__u64 parent;
	__u64 hash_len;
	__u32 gen;
	__u32 epoch;
};

// What makes two events of one process the same behaviour, for in-kernel de-duplication.
// For a file: the dentry with its mount, parent and name hash (a renamed file gets another
// key), and the rename epoch (a renamed directory moves the files below it).
struct dedup_key {
	__u64 cgroup_id;
	__u64 mm;       // the process image: changes at exec
	__u64 obj[4];   // file: dentry, mount, parent dentry, name hash; network: addresses
	__u32 gen;      // generation (window) the count belongs to
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 kind;
	__u32 a;        // file: f_flags & (O_ACCMODE|O_TRUNC); network: family << 16 | proto
	__u32 b;        // file: f_mode & (FMODE_EXEC|FMODE_CREATED); network: lport << 16 | rport
	__s32 ret;
};

struct dedup_val {
	__u64 count;    // repeats not emitted
	__u64 last_ns;  // time of the last of them
};

struct karmor_event {
	__u64 ts_ns;            // CLOCK_MONOTONIC (bpf_ktime_get_ns)
	__u64 cgroup_id;        // cgroup v2 id of the task
	__u32 kind;             // enum karmor_kind
	__u32 pid;              // thread group id
	__u32 ppid;             // parent's thread group id
	__u32 uid;
	__s32 ret;              // result: 0 or -errno
	__u32 flags;            // file: f_flags; socket: type
	__u32 mode;             // file: f_mode; socket: protocol
	__u16 family;           // AF_INET / AF_INET6 / socket family
	__u16 proto;            // IPPROTO_*
	__u16 lport;            // host byte order
	__u16 rport;            // host byte order
	__u8 laddr[16];
	__u8 raddr[16];
	char comm[16];
	__u32 ncomps;           // path components in the data (| COMPS_TRUNCATED, COMPS_DIR_*)
	__u32 gen;              // generation when the probe ran
	__u16 cg_len;           // bytes of "leaf\0parent\0" in data; 0: cgroup already sent
	__u16 path_len;         // bytes of the name (exec: filename; failed open: as given)
	__u16 args_len;         // exec: bytes of argv, NUL-separated
	__u16 comps_len;        // bytes of the path components, NUL-terminated, leaf first
	__u16 sys;              // enum karmor_sys
	__u16 dedup;            // 1: repeats of `key` are counted in the dedup map
	struct dedup_key key;
	__u64 exe;              // the task's executable (exe_id; exec: the new image's), which
	                        // names the `counts` map's keys and the processes whose exec was
	                        // counted, not sent, in user space
	__u64 pexe;             // the parent's executable (exe_id)
	__u64 dir;              // COMPS_DIR_REF / COMPS_DIR_DEF: the directory's id
	char data[DATA_SIZE];   // cgroup names | name | args | components
	struct dir_key dkey;    // not sent: the directory a COMPS_DIR_DEF record defines
};

#define HDR_SIZE 224
// collector/src/raw.rs decodes at these offsets.
_Static_assert(__builtin_offsetof(struct karmor_event, data) == HDR_SIZE, "header size");
_Static_assert(sizeof(struct dedup_key) == 80, "dedup_key size");
_Static_assert(__builtin_offsetof(struct karmor_event, key) == 120, "key offset");
_Static_assert(__builtin_offsetof(struct karmor_event, laddr) == 52, "laddr offset");
_Static_assert(__builtin_offsetof(struct karmor_event, comm) == 84, "comm offset");
_Static_assert(__builtin_offsetof(struct karmor_event, ncomps) == 100, "ncomps offset");
_Static_assert(__builtin_offsetof(struct karmor_event, sys) == 116, "sys offset");
_Static_assert(__builtin_offsetof(struct karmor_event, exe) == 200, "exe offset");
_Static_assert(__builtin_offsetof(struct karmor_event, pexe) == 208, "pexe offset");
_Static_assert(__builtin_offsetof(struct karmor_event, dir) == 216, "dir offset");

// System calls and capability checks are not sent as records: they are counted in the
// `counts` map per (generation, cgroup, executable, item), and user space reads and deletes
// the closed generation's entries at each window flush (collector/src/probes.rs), as it does
// the `dedup` map's. An item is a system call number (< COUNT_CAP), or COUNT_CAP | the
// capability << 1 | 1 when the check was denied.
#define COUNT_CAP 0x10000u
#define COUNT_ENTRIES 65536

struct count_key {
	__u64 cgroup_id;
	__u64 exe;      // exe_id(): the executable's inode (its kernel address)
	__u32 gen;
	__u32 item;
};

// Filled once, by the first call of a key in a generation; only `count` changes afterwards.
struct count_val {
	__u64 count;
	__u64 first_ns;
	__u32 tgid;     // the process that made the first call: names the executable when its
	__u32 ppid;     // exec was not seen (it started before the collector)
	__u32 uid;
	__u32 pad;
	char comm[16];
};

_Static_assert(sizeof(struct count_key) == 24, "count_key size");
_Static_assert(sizeof(struct count_val) == 48, "count_val size");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_SIZE);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Record under construction, per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct karmor_event);
} scratch SEC(".maps");

// The current generation, set by user space at each window flush.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

// Repeats of behaviours already emitted in a generation. A plain hash (not LRU), so that a
// count is never evicted: when full, events are simply emitted. User space deletes the
// entries of each closed generation.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct dedup_key);
	__type(value, struct dedup_val);
} dedup SEC(".maps");

// System call and capability counts (see struct count_key). A plain hash of fixed size: when
// it is full, a new key's calls are counted in `drops` instead.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, COUNT_ENTRIES);
	__type(key, struct count_key);
	__type(value, struct count_val);
} counts SEC(".maps");

// Directories whose path was sent in this generation → the id their records name them by.
// LRU: an evicted directory is only walked and sent again.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dir_key);
	__type(value, __u64);
} dir_sent SEC(".maps");

// cgroup id → generation in which its names were last sent.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} cg_sent SEC(".maps");

// A name read from the process before its record is built, per CPU: it is hashed into the
// de-duplication key, and copied into the record only when the behaviour is new.
struct name_buf {
	char s[PATH_MAX_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct name_buf);
} name_scratch SEC(".maps");

// An exec's filename and arguments, read before its record is built, per CPU: hashed into
// the de-duplication key, and copied into the record only when the exec is new.
struct exec_buf {
	struct name_buf file;
	struct name_buf args; // ARGS_MAX_LEN == PATH_MAX_LEN
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_buf);
} exec_scratch SEC(".maps");

// Set by the loader: the collector's own pid, whose activity is not recorded.
const volatile __u32 self_tgid = 0;
// Time of the last forced wake-up of the reader.
__u64 last_wake = 0;
// Successful renames anywhere (the collector's included). Part of a file's de-duplication key:
// renaming a directory changes the paths below it without changing their dentries, so after
// any rename the next open of each file is sent again with its path.
__u64 rename_epoch = 0;
// Ids of directories sent (dir_sent's values).
__u64 dir_seq = 0;

static __always_inline int is_self(void)
{
	return self_tgid && (__u32)(bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

static __always_inline __u32 current_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&generation, &zero);
	return g ? *g : 0;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		*n += 1;
}

// The executable of the task's image: the inode of mm->exe_file, read with direct BTF loads
// (no helper call). 0 for kernel threads: a BTF load through a NULL pointer reads 0, so no
// branch is needed, and none is taken (a branch here, inlined into every record's start(),
// multiplied the verifier's paths: loading took three times as long).
static __always_inline __u64 exe_id(struct task_struct *t)
{
	return (__u64)t->mm->exe_file->f_inode;
}

// The task's cgroup v2 id, as bpf_get_current_cgroup_id() gives it, by direct BTF loads:
// a helper call costs more than the loads here (measured: sys_enter's own run time fell
// from ~115 to ~65 ns with these two, on this kernel under bpf_stats).
static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return t->cgroups->dfl_cgrp->kn->id;
}

// The task's real uid as bpf_get_current_uid_gid() gives it in the initial user namespace
// (the collector runs there), by direct BTF loads.
static __always_inline __u32 task_uid(struct task_struct *t)
{
	return t->cred->uid.val;
}

// Counts one system call or capability check of the current task under `k`. The first of a
// generation fills the entry; a full map counts the call as a drop.
static __always_inline void count_item(struct count_key *k)
{
	struct count_val *v = bpf_map_lookup_elem(&counts, k);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		return;
	}
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct count_val nv = {};
	nv.count = 1;
	nv.first_ns = bpf_ktime_get_ns();
	nv.tgid = t->tgid;
	nv.ppid = t->real_parent->tgid;
	nv.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(nv.comm, sizeof(nv.comm));
	if (bpf_map_update_elem(&counts, k, &nv, BPF_NOEXIST) == 0)
		return;
	// Another CPU added it meanwhile, or the map is full.
	v = bpf_map_lookup_elem(&counts, k);
	if (v)
		__sync_fetch_and_add(&v->count, 1);
	else
		count_drop();
}

// kernfs_node's parent pointer was renamed `__parent` in Linux 6.15: read whichever exists.
struct kernfs_node___new {
	struct kernfs_node___new *__parent;
} __attribute__((preserve_access_index));
struct kernfs_node___old {
	struct kernfs_node___old *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(((struct kernfs_node___new *)kn)->__parent))
		return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___new *)kn, __parent);
	return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

// Appends the names of `kn` and its parent ("leaf\0parent\0") at the start of the data.
static __always_inline void read_kn_names(struct karmor_event *e, struct kernfs_node *kn)
{
	const char *name = BPF_CORE_READ(kn, name);
	long n = bpf_probe_read_kernel_str(e->data, CG_NAME_LEN, name);
	__u32 off = n > 0 ? n : 0;
	struct kernfs_node *parent = kn_parent(kn);
	long m = 0;
	if (parent) {
		name = BPF_CORE_READ(parent, name);
		m = bpf_probe_read_kernel_str(&e->data[off & 127], CG_NAME_LEN, name);
	}
	if (m <= 0) {
		e->data[off & 127] = 0;
		m = 1;
	}
	e->cg_len = off + m;
}

// Names of the task's cgroup and its parent: the cgroup v2 (default hierarchy) one, or, on
// cgroup v1 nodes where the task sits in the v2 root, the memory controller's.
static __always_inline void read_cgroup(struct karmor_event *e, struct task_struct *task)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	if (kn && kn_parent(kn)) {
		read_kn_names(e, kn);
		return;
	}
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct css_set *cs = BPF_CORE_READ(task, cgroups);
	struct cgroup_subsys_state *css = 0;
	if (id < 0 || id >= CGROUP_SUBSYS_COUNT)
		return;
	bpf_core_read(&css, sizeof(css), &cs->subsys[id]);
	if (!css)
		return;
	kn = BPF_CORE_READ(css, cgroup, kn);
	if (kn && kn_parent(kn))
		read_kn_names(e, kn);
}

// The per-CPU record, its header filled for `kind`. Cgroup names are added when this
// cgroup's were not sent yet in this generation.
static __always_inline struct karmor_event *start(__u32 kind, __u32 gen)
{
	__u32 zero = 0;
	struct karmor_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, HDR_SIZE);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->gen = gen;
	e->pid = id >> 32;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->exe = exe_id(task);
	e->pexe = exe_id(task->real_parent);
	if (kind != EV_EXIT) {
		__u32 *sent = bpf_map_lookup_elem(&cg_sent, &e->cgroup_id);
		if (!sent || *sent != gen) {
			read_cgroup(e, task);
			if (!e->cg_len) {
				// The root cgroup: no names, but sent (two empty strings).
				e->data[0] = 0;
				e->data[1] = 0;
				e->cg_len = 2;
			}
		}
	}
	return e;
}

// Bytes of the data area used so far.
static __always_inline __u32 data_used(struct karmor_event *e)
{
	return (__u32)e->cg_len + e->path_len + e->args_len + e->comps_len;
}

// Sends the record (header + used data). Returns 0 when it was written.
static __always_inline int emit(struct karmor_event *e)
{
	__u64 len = HDR_SIZE + data_used(e);
	if (len > HDR_SIZE + DATA_SIZE)
		len = HDR_SIZE + DATA_SIZE;
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKE_BYTES ||
	    e->ts_ns - last_wake >= WAKE_NS) {
		flags = BPF_RB_FORCE_WAKEUP;
		last_wake = e->ts_ns;
	}
	if (bpf_ringbuf_output(&events, e, len, flags) != 0) {
		count_drop();
		return -1;
	}
	if (e->cg_len) {
		__u32 gen = e->gen;
		bpf_map_update_elem(&cg_sent, &e->cgroup_id, &gen, BPF_ANY);
	}
	// After the record: a later one that names the directory is behind it in the ring.
	if (e->ncomps & COMPS_DIR_DEF)
		bpf_map_update_elem(&dir_sent, &e->dkey, &e->dir, BPF_ANY);
	return 0;
}

// True when `k` was already emitted in this generation: the repeat is counted instead.
static __always_inline int repeat(struct dedup_key *k)
{
	struct dedup_val *v = bpf_map_lookup_elem(&dedup, k);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->count, 1);
	__u64 now = bpf_ktime_get_ns();
	if (now > v->last_ns)
		v->last_ns = now;
	return 1;
}

// Emits the first event of a behaviour and starts counting its repeats. The record goes out
// before the map entry exists, so a count never lacks its first event (if the entry cannot be
// added, later repeats are emitted as events of their own).
static __always_inline void emit_first(struct karmor_event *e, struct dedup_key *k)
{
	e->dedup = 1;
	__builtin_memcpy(&e->key, k, sizeof(*k));
	if (emit(e) != 0)
		return;
	struct dedup_val v = {};
	bpf_map_update_elem(&dedup, k, &v, BPF_NOEXIST);
}

// The key's task fields by direct BTF loads: the cgroup id and uid helpers (with their RCU
// section and user-namespace mapping) cost more than the loads, on the path every repeat takes.
static __always_inline void key_common(struct dedup_key *k, __u32 kind, __u32 gen, __s32 ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	k->cgroup_id = task_cgroup_id(task);
	k->mm = (__u64)task->mm;
	k->gen = gen;
	k->tgid = task->tgid;
	k->ppid = task->real_parent->tgid;
	k->uid = task_uid(task);
	k->kind = kind;
	k->ret = ret;
}

// The task's saved user registers: a BTF pointer, so the arguments are plain loads.
static __always_inline struct pt_regs *user_regs(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	return (struct pt_regs *)bpf_task_pt_regs(task);
}

// A 64-bit hash of the first `n` bytes (at most 256) of `s`, a per-CPU buffer (the bytes
// after them are left from earlier names and are masked out).
static __always_inline __u64 bytes_hash(const char *s, long n)
{
	__u64 h = 0x9e3779b97f4a7c15ull ^ (__u64)n;
	for (int i = 0; i < PATH_MAX_LEN / 8; i++) {
		long left = n - i * 8;
		if (left <= 0)
			break;
		__u64 w = 0;
		__builtin_memcpy(&w, &s[i * 8], 8);
		if (left < 8)
			w &= (1ull << (left * 8)) - 1;
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

// bytes_hash of a per-CPU name buffer, as a global function: the verifier checks its loop
// once, not again on every path of its callers (inlined into handle_exec, the two loops made
// loading take seconds more on this kernel).
__noinline __u64 buf_hash(struct name_buf *buf, long n)
{
	if (!buf)
		return 0;
	return bytes_hash(buf->s, n);
}

// ---- processes ------------------------------------------------------------------------------

// An exec is de-duplicated like a file event, on what makes its row: the new image (and the
// filename it was run by), its arguments, the parent's image, the cgroup and the uid; not on
// the pid, which is new at every fork. A repeat only bumps the count of the first exec's key
// (a build's or a shell loop's `sh -c …`, `/bin/true`…), before any record is built; user
// space still names the repeat's pid, when one of its records comes, from the `exe` every
// record carries (collector/src/pipeline.rs).
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	if (is_self())
		return 0;
	__u32 zero = 0;
	struct exec_buf *b = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!b)
		return 0;
	unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
	long n = bpf_probe_read_kernel_str(b->file.s, PATH_MAX_LEN, (void *)ctx + loc);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	unsigned long start_ = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start_;
	if (len >= ARGS_MAX_LEN)
		len = ARGS_MAX_LEN - 1;
	len &= ARGS_MAX_LEN - 1; // a bound the verifier can see
	long a = 0;
	if (len > 0 && bpf_probe_read_user(b->args.s, len, (void *)start_) == 0)
		a = len;
	__u32 gen = current_gen();
	struct dedup_key k = {};
	k.cgroup_id = task_cgroup_id(task);
	k.obj[0] = exe_id(task);
	k.obj[1] = exe_id(task->real_parent);
	k.obj[2] = n > 0 ? buf_hash(&b->file, n) : 0;
	k.obj[3] = a > 0 ? buf_hash(&b->args, a) : 0;
	k.gen = gen;
	k.uid = task_uid(task);
	k.kind = EV_EXEC;
	if (repeat(&k))
		return 0;
	struct karmor_event *e = start(EV_EXEC, gen);
	if (!e)
		return 0;
	__u32 off = e->cg_len;
	if (n > 0) {
		__u32 sz = n;
		if (sz > PATH_MAX_LEN)
			sz = PATH_MAX_LEN;
		if (bpf_probe_read_kernel(&e->data[off & DATA_MASK], sz, b->file.s) == 0) {
			e->path_len = sz;
			off += sz;
		}
	}
	__u32 as = a & (ARGS_MAX_LEN - 1);
	if (as > 0 && bpf_probe_read_kernel(&e->data[off & DATA_MASK], as, b->args.s) == 0)
		e->args_len = as;
	emit_first(e, &k);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id != (__u32)(id >> 32))
		return 0; // a thread, not the process
	if (is_self())
		return 0;
	struct karmor_event *e = start(EV_EXIT, current_gen());
	if (e)
		emit(e);
	return 0;
}

// ---- files ----------------------------------------------------------------------------------

// Appends dentry `d`'s name at `at` in the data as one path component (an unreadable name
// becomes an empty one).
static __always_inline void push_comp(struct karmor_event *e, __u32 at, struct dentry *d)
{
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long len = bpf_probe_read_kernel_str(&e->data[at & DATA_MASK], COMP_LEN, name);
	if (len <= 0) {
		e->data[at & DATA_MASK] = 0;
		len = 1;
	}
	e->comps_len += len;
}

// Components of a path, leaf first, crossing mounts up to the root of the task's mount
// namespace, appended to the data. User space joins them in reverse. The counts live in the
// record (map memory, which the verifier does not track), so that the loop's states prune.
//
// The leaf's directory is looked up in `dir_sent` first: when user space has its path from an
// earlier record of this generation, only the leaf is sent, with the directory's id
// (COMPS_DIR_REF); else the whole path is, and, unless it was cut short, the record defines
// an id for the directory (COMPS_DIR_DEF; emit() adds it to `dir_sent` once it is sent). A
// tar, a build or a package install touches many files of one directory: their walks stop at
// the leaf.
static __always_inline void walk_path(struct karmor_event *e, struct dentry *d, struct vfsmount *vfsmnt)
{
	__u64 moff = bpf_core_field_offset(struct mount, mnt);
	struct mount *mnt = (struct mount *)((char *)vfsmnt - moff);
	e->ncomps = 0;
	e->comps_len = 0;
	e->dir = 0;
	int define = 0;
	struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	if (d != root && d != up && up != root) {
		// The leaf, then its directory (not a mount's root: its path crosses a mount).
		push_comp(e, data_used(e), d);
		e->ncomps = 1;
		d = up;
		struct dir_key *dk = &e->dkey;
		dk->dentry = (__u64)d;
		dk->mnt = (__u64)vfsmnt;
		dk->parent = (__u64)BPF_CORE_READ(d, d_parent);
		dk->hash_len = BPF_CORE_READ(d, d_name.hash_len);
		dk->gen = e->gen;
		dk->epoch = (__u32)rename_epoch;
		__u64 *id = bpf_map_lookup_elem(&dir_sent, dk);
		if (id) {
			e->dir = *id;
			e->ncomps |= COMPS_DIR_REF;
			return;
		}
		define = 1;
	}
#pragma unroll
	for (int i = 0; i < MAX_COMPS + 4; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == mnt_root) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
			if (up == mnt)
				break; // root of the namespace
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vfsmnt = (struct vfsmount *)((char *)mnt + moff);
			continue;
		}
		if (d == parent)
			break; // root of an unmounted (pseudo) file system
		__u32 at = data_used(e);
		if (e->ncomps >= MAX_COMPS || at + COMP_LEN > DATA_BUDGET) {
			e->ncomps |= COMPS_TRUNCATED;
			break;
		}
		push_comp(e, at, d);
		e->ncomps += 1;
		d = parent;
	}
	if (define && !(e->ncomps & COMPS_TRUNCATED)) {
		e->dir = __sync_fetch_and_add(&dir_seq, 1) + 1;
		e->ncomps |= COMPS_DIR_DEF;
	}
}

// The file open on `fd`. The task's fields are read with direct BTF loads (no helper call);
// only the table slot, at a variable index, needs one.
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	unsigned int max = fdt->max_fds;
	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	struct file **fds = fdt->fd;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

// What de-duplication and the record need from an opened file, in two helper calls: one
// read of the head of `struct file` (mode, flags, path), one of the dentry (parent, name hash).
// Offsets are CO-RE relocated; a kernel whose fields lie further falls back to field reads.
struct file_facts {
	__u32 flags;
	__u32 mode;
	struct dentry *dentry;
	struct vfsmount *mnt;
	struct dentry *parent;
	__u64 hash_len;
};

#define HEAD_READ 128

static __always_inline void file_facts(struct file *f, struct file_facts *ff)
{
	__u64 buf[HEAD_READ / 8];
	__u32 om = bpf_core_field_offset(struct file, f_mode);
	__u32 of = bpf_core_field_offset(struct file, f_flags);
	__u32 op = bpf_core_field_offset(struct file, f_path);
	if (om + 4 <= HEAD_READ && of + 4 <= HEAD_READ && op + 16 <= HEAD_READ &&
	    bpf_core_field_size(struct file, f_mode) == 4 &&
	    bpf_core_field_size(struct file, f_flags) == 4 &&
	    bpf_probe_read_kernel(buf, sizeof(buf), f) == 0) {
		__builtin_memcpy(&ff->mode, (char *)buf + om, 4);
		__builtin_memcpy(&ff->flags, (char *)buf + of, 4);
		__builtin_memcpy(&ff->mnt, (char *)buf + op, 8);
		__builtin_memcpy(&ff->dentry, (char *)buf + op + 8, 8);
	} else {
		ff->mode = BPF_CORE_READ(f, f_mode);
		ff->flags = BPF_CORE_READ(f, f_flags);
		ff->mnt = BPF_CORE_READ(f, f_path.mnt);
		ff->dentry = BPF_CORE_READ(f, f_path.dentry);
	}
	struct dentry *d = ff->dentry;
	__u32 odp = bpf_core_field_offset(struct dentry, d_parent);
	__u32 odn = bpf_core_field_offset(struct dentry, d_name);
	if (odp + 8 <= HEAD_READ && odn + 8 <= HEAD_READ &&
	    bpf_probe_read_kernel(buf, sizeof(buf), d) == 0) {
		__builtin_memcpy(&ff->parent, (char *)buf + odp, 8);
		__builtin_memcpy(&ff->hash_len, (char *)buf + odn, 8);
	} else {
		ff->parent = BPF_CORE_READ(d, d_parent);
		ff->hash_len = BPF_CORE_READ(d, d_name.hash_len);
	}
}

// The fd table a process starts with: NR_OPEN_DEFAULT slots inside its files_struct.
#define FD_ARRAY_LEN 64
#define FD_CASE(i)                                                                          \
	case i:                                                                             \
		f = files->fd_array[i];                                                     \
		break;
#define FD_CASES8(i)                                                                        \
	FD_CASE(i) FD_CASE(i + 1) FD_CASE(i + 2) FD_CASE(i + 3) FD_CASE(i + 4) FD_CASE(i + 5) \
	FD_CASE(i + 6) FD_CASE(i + 7)

// file_facts without a helper call, for the common case: the fd is below 64 and the process
// still uses the fd table embedded in its files_struct (fdt == &fdtab), so that the file is
// `files->fd_array[fd]`, a BTF load at a constant offset (one per case: the verifier accepts
// no variable offset into a BTF object), and every field after it is a plain load too.
// Returns 1 when it filled `ff`, -1 when the slot is empty, 0 when the caller must use the
// probe-read path (a larger fd or a grown table).
static __always_inline int file_facts_direct(int fd, struct file_facts *ff)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct files_struct *files = t->files;
	if (fd < 0 || fd >= FD_ARRAY_LEN || !files ||
	    (__u64)files->fdt != (__u64)&files->fdtab)
		return 0;
	struct file *f = 0;
	switch (fd) {
		FD_CASES8(0)
		FD_CASES8(8)
		FD_CASES8(16)
		FD_CASES8(24)
		FD_CASES8(32)
		FD_CASES8(40)
		FD_CASES8(48)
		FD_CASES8(56)
	default:
		return 0;
	}
	if (!f)
		return -1;
	ff->mode = f->f_mode;
	ff->flags = f->f_flags;
	ff->mnt = f->f_path.mnt;
	struct dentry *d = f->f_path.dentry;
	ff->dentry = d;
	ff->parent = d->d_parent;
	ff->hash_len = d->d_name.hash_len;
	return 1;
}

// The file open on `fd`, its facts by BTF loads when it can (file_facts_direct), else by
// probe reads. 0 when the slot is empty.
static __always_inline int fd_facts(int fd, struct file_facts *ff)
{
	int direct = file_facts_direct(fd, ff);
	if (direct > 0)
		return 1;
	if (direct < 0)
		return 0;
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	file_facts(f, ff);
	return 1;
}

// The hash of the `n` bytes of a name read into `buf` (NUL included).
static __always_inline __u64 name_hash(struct name_buf *buf, long n)
{
	return bytes_hash(buf->s, n);
}

// A name as given by the process, read into the per-CPU name buffer, and its part of the
// de-duplication key: the name's hash, and, when it is relative, the identity of the
// directory it is relative to (the working directory, or the file open on `dirfd`: dentry,
// mount, parent, and its name hash mixed into the name's) and the rename epoch (renaming a
// directory changes the paths below it). Sets *len to what the read returned.
static __always_inline struct name_buf *name_key(struct dedup_key *k, int dirfd, __u64 uname, long *len)
{
	__u32 zero = 0;
	struct name_buf *buf = bpf_map_lookup_elem(&name_scratch, &zero);
	if (!buf)
		return 0;
	long n = bpf_probe_read_user_str(buf->s, PATH_MAX_LEN, (void *)uname);
	*len = n;
	if (n <= 0)
		return buf;
	k->obj[2] = name_hash(buf, n);
	if (buf->s[0] == '/')
		return buf;
	k->b |= (__u32)rename_epoch & 0xffffff;
	if (dirfd == AT_FDCWD) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
		struct fs_struct *fs = t->fs;
		if (!fs)
			return buf;
		struct dentry *d = fs->pwd.dentry;
		k->obj[0] = (__u64)d;
		k->obj[1] = (__u64)fs->pwd.mnt;
		if (d) {
			k->obj[3] = (__u64)d->d_parent;
			k->obj[2] ^= d->d_name.hash_len * 0xc4ceb9fe1a85ec53ull;
		}
		return buf;
	}
	struct file_facts ff;
	if (fd_facts(dirfd, &ff)) {
		k->obj[0] = (__u64)ff.dentry;
		k->obj[1] = (__u64)ff.mnt;
		k->obj[3] = (__u64)ff.parent;
		k->obj[2] ^= ff.hash_len * 0xc4ceb9fe1a85ec53ull;
	}
	return buf;
}

// The name read by name_key, copied into the record, and the directory it is relative to
// when it is not absolute (the working directory, or the file open on `dirfd`).
static __always_inline void name_at(struct karmor_event *e, int dirfd, struct name_buf *buf, long n)
{
	if (n <= 0)
		return;
	__u32 off = e->cg_len;
	__u32 sz = n;
	if (sz > PATH_MAX_LEN)
		sz = PATH_MAX_LEN;
	if (bpf_probe_read_kernel(&e->data[off & DATA_MASK], sz, buf->s) != 0)
		return;
	e->path_len = sz;
	if (buf->s[0] == '/')
		return;
	if (dirfd == AT_FDCWD) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
		struct fs_struct *fs = BPF_CORE_READ(t, fs);
		walk_path(e, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt));
	} else {
		struct file *dir = fd_file(dirfd);
		if (dir)
			walk_path(e, BPF_CORE_READ(dir, f_path.dentry), BPF_CORE_READ(dir, f_path.mnt));
	}
}

// An open's exit. A successful open is de-duplicated on the opened dentry (with its mount,
// parent and name hash, so that a freed and reused dentry is not mistaken for it) and the
// access bits; a failed one on the name as given (see name_key), the flags and the error.
// Either way "seen before" is decided before any path walk or record is built.
static __always_inline int open_exit(long ret, __u16 sys)
{
	if (is_self())
		return 0;
	__u32 gen = current_gen();
	if (ret >= 0) {
		struct file_facts ff;
		if (!fd_facts(ret, &ff))
			return 0;
		struct dedup_key k = {};
		key_common(&k, EV_FILE, gen, 0);
		k.obj[0] = (__u64)ff.dentry;
		k.obj[1] = (__u64)ff.mnt;
		k.obj[2] = (__u64)ff.parent;
		k.obj[3] = ff.hash_len;
		k.a = (ff.flags & (O_ACCMODE | O_TRUNC)) | (__u32)rename_epoch << 12;
		k.b = ff.mode & (FMODE_EXEC | FMODE_CREATED);
		k.b |= (__u32)sys << 24;
		if (repeat(&k))
			return 0;
		struct karmor_event *e = start(EV_FILE, gen);
		if (!e)
			return 0;
		e->sys = sys;
		e->flags = ff.flags;
		e->mode = ff.mode;
		walk_path(e, ff.dentry, ff.mnt);
		emit_first(e, &k);
		return 0;
	}
	struct pt_regs *regs = user_regs();
	int dirfd = AT_FDCWD;
	__u64 uname = 0;
	__u32 flags = 0;
	switch (sys) {
	case SYS_OPEN_:
		uname = PT_REGS_PARM1_SYSCALL(regs);
		flags = PT_REGS_PARM2_SYSCALL(regs);
		break;
	case SYS_CREAT_:
		uname = PT_REGS_PARM1_SYSCALL(regs);
		flags = O_CREAT | O_WRONLY | O_TRUNC;
		break;
	case SYS_OPENAT2_: {
		__u64 how_flags = 0;
		dirfd = PT_REGS_PARM1_SYSCALL(regs);
		uname = PT_REGS_PARM2_SYSCALL(regs);
		// struct open_how.flags
		bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)PT_REGS_PARM3_SYSCALL(regs));
		flags = how_flags;
		break;
	}
	default:
		dirfd = PT_REGS_PARM1_SYSCALL(regs);
		uname = PT_REGS_PARM2_SYSCALL(regs);
		flags = PT_REGS_PARM3_SYSCALL(regs);
	}
	struct dedup_key k = {};
	key_common(&k, EV_FILE, gen, ret);
	k.a = flags;
	k.b = (__u32)sys << 24;
	long n = 0;
	struct name_buf *buf = name_key(&k, dirfd, uname, &n);
	if (!buf || repeat(&k))
		return 0;
	struct karmor_event *e = start(EV_FILE, gen);
	if (!e)
		return 0;
	e->sys = sys;
	e->ret = ret;
	e->flags = flags;
	name_at(e, dirfd, buf, n);
	emit_first(e, &k);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, SYS_OPENAT_);
}

SEC("tp/syscalls/sys_exit_openat2")
int openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, SYS_OPENAT2_);
}

SEC("tp/syscalls/sys_exit_open")
int open_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, SYS_OPEN_);
}

SEC("tp/syscalls/sys_exit_creat")
int creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, SYS_CREAT_);
}

// unlink, rename, chmod, chown: a name (and the directory it is relative to), de-duplicated
// on the name as given (see name_key), the syscall and the result. A global function, so that
// the verifier checks it once (rename's two names inlined exceed its instruction limit).
__noinline int name_event(__u32 kind_sys, long ret, int dirfd, __u64 uname, __u32 gen)
{
	__u32 kind = kind_sys >> 16;
	__u16 sys = kind_sys & 0xffff;
	__s32 r = ret < 0 ? ret : 0;
	struct dedup_key k = {};
	key_common(&k, kind, gen, r);
	k.b = (__u32)sys << 24;
	long n = 0;
	struct name_buf *buf = name_key(&k, dirfd, uname, &n);
	if (!buf || repeat(&k))
		return 0;
	struct karmor_event *e = start(kind, gen);
	if (!e)
		return 0;
	e->sys = sys;
	e->ret = r;
	name_at(e, dirfd, buf, n);
	emit_first(e, &k);
	return 0;
}

// chmod/chown of an open file: its path from the file, de-duplicated on the file as an open is.
static __always_inline void fd_event(__u32 kind, __u16 sys, long ret, int fd)
{
	struct file_facts ff;
	if (!fd_facts(fd, &ff))
		return;
	__u32 gen = current_gen();
	__s32 r = ret < 0 ? ret : 0;
	struct dedup_key k = {};
	key_common(&k, kind, gen, r);
	k.obj[0] = (__u64)ff.dentry;
	k.obj[1] = (__u64)ff.mnt;
	k.obj[2] = (__u64)ff.parent;
	k.obj[3] = ff.hash_len;
	k.a = (__u32)rename_epoch << 12;
	k.b = (__u32)sys << 24;
	if (repeat(&k))
		return;
	struct karmor_event *e = start(kind, gen);
	if (!e)
		return;
	e->sys = sys;
	e->ret = r;
	walk_path(e, ff.dentry, ff.mnt);
	emit_first(e, &k);
}

// One name argument at `arg` (0-based), relative to the dirfd in argument 0 when `at`.
static __always_inline int name_exit(__u32 kind, __u16 sys, long ret, int at)
{
	if (is_self())
		return 0;
	struct pt_regs *regs = user_regs();
	if (at)
		name_event(kind << 16 | sys, ret, PT_REGS_PARM1_SYSCALL(regs),
			   PT_REGS_PARM2_SYSCALL(regs), current_gen());
	else
		name_event(kind << 16 | sys, ret, AT_FDCWD, PT_REGS_PARM1_SYSCALL(regs), current_gen());
	return 0;
}

SEC("tp/syscalls/sys_exit_unlink")
int unlink_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_UNLINK, SYS_UNLINK_, ctx->ret, 0);
}

SEC("tp/syscalls/sys_exit_unlinkat")
int unlinkat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_UNLINK, SYS_UNLINKAT_, ctx->ret, 1);
}

SEC("tp/syscalls/sys_exit_rmdir")
int rmdir_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_UNLINK, SYS_RMDIR_, ctx->ret, 0);
}

SEC("tp/syscalls/sys_exit_chmod")
int chmod_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHMOD, SYS_CHMOD_, ctx->ret, 0);
}

SEC("tp/syscalls/sys_exit_fchmodat")
int fchmodat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHMOD, SYS_FCHMODAT_, ctx->ret, 1);
}

SEC("tp/syscalls/sys_exit_fchmodat2")
int fchmodat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHMOD, SYS_FCHMODAT2_, ctx->ret, 1);
}

SEC("tp/syscalls/sys_exit_chown")
int chown_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHOWN, SYS_CHOWN_, ctx->ret, 0);
}

SEC("tp/syscalls/sys_exit_lchown")
int lchown_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHOWN, SYS_LCHOWN_, ctx->ret, 0);
}

SEC("tp/syscalls/sys_exit_fchownat")
int fchownat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return name_exit(EV_CHOWN, SYS_FCHOWNAT_, ctx->ret, 1);
}

SEC("tp/syscalls/sys_exit_fchmod")
int fchmod_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (is_self())
		return 0;
	fd_event(EV_CHMOD, SYS_FCHMOD_, ctx->ret, PT_REGS_PARM1_SYSCALL(user_regs()));
	return 0;
}

SEC("tp/syscalls/sys_exit_fchown")
int fchown_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (is_self())
		return 0;
	fd_event(EV_CHOWN, SYS_FCHOWN_, ctx->ret, PT_REGS_PARM1_SYSCALL(user_regs()));
	return 0;
}

// A rename modifies both names: one event for each, with access `rename`.
static __always_inline int rename_exit(__u16 sys, long ret)
{
	if (ret == 0)
		__sync_fetch_and_add(&rename_epoch, 1);
	if (is_self())
		return 0;
	struct pt_regs *regs = user_regs();
	__u32 gen = current_gen();
	if (sys == SYS_RENAME_) {
		name_event(EV_RENAME << 16 | sys, ret, AT_FDCWD, PT_REGS_PARM1_SYSCALL(regs), gen);
		name_event(EV_RENAME << 16 | sys, ret, AT_FDCWD, PT_REGS_PARM2_SYSCALL(regs), gen);
	} else {
		name_event(EV_RENAME << 16 | sys, ret, PT_REGS_PARM1_SYSCALL(regs),
			   PT_REGS_PARM2_SYSCALL(regs), gen);
		name_event(EV_RENAME << 16 | sys, ret, PT_REGS_PARM3_SYSCALL(regs),
			   PT_REGS_PARM4_SYSCALL(regs), gen);
	}
	return 0;
}

SEC("tp/syscalls/sys_exit_rename")
int rename_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(SYS_RENAME_, ctx->ret);
}

SEC("tp/syscalls/sys_exit_renameat")
int renameat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(SYS_RENAMEAT_, ctx->ret);
}

SEC("tp/syscalls/sys_exit_renameat2")
int renameat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rename_exit(SYS_RENAMEAT2_, ctx->ret);
}

// ---- network --------------------------------------------------------------------------------

static __always_inline struct sock *fd_sock(int fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

static __always_inline int inet_family(__u16 family)
{
	return family == AF_INET || family == AF_INET6;
}

// Addresses of a socket, into a stack copy of the network fields.
struct net_fields {
	__u16 family;
	__u16 proto;
	__u16 lport;
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
};

#define SKC_READ 96

// The addresses, ports and family of a socket: one read of the head of `struct sock_common`
// when the kernel lays these fields there (CO-RE offsets), else field by field.
static __always_inline void sock_addrs(struct net_fields *n, struct sock *sk)
{
	__u8 buf[SKC_READ];
	__u32 o_fam = bpf_core_field_offset(struct sock_common, skc_family);
	__u32 o_num = bpf_core_field_offset(struct sock_common, skc_num);
	__u32 o_dport = bpf_core_field_offset(struct sock_common, skc_dport);
	__u32 o_daddr = bpf_core_field_offset(struct sock_common, skc_daddr);
	__u32 o_saddr = bpf_core_field_offset(struct sock_common, skc_rcv_saddr);
	__u32 o_d6 = bpf_core_field_offset(struct sock_common, skc_v6_daddr);
	__u32 o_s6 = bpf_core_field_offset(struct sock_common, skc_v6_rcv_saddr);
	if (bpf_core_field_offset(struct sock, __sk_common) == 0 && o_fam + 2 <= SKC_READ &&
	    o_num + 2 <= SKC_READ && o_dport + 2 <= SKC_READ && o_daddr + 4 <= SKC_READ &&
	    o_saddr + 4 <= SKC_READ && o_d6 + 16 <= SKC_READ && o_s6 + 16 <= SKC_READ &&
	    bpf_probe_read_kernel(buf, sizeof(buf), sk) == 0) {
		__u16 port = 0;
		__builtin_memcpy(&n->family, buf + o_fam, 2);
		__builtin_memcpy(&n->lport, buf + o_num, 2);
		__builtin_memcpy(&port, buf + o_dport, 2);
		n->rport = __builtin_bswap16(port);
		if (n->family == AF_INET6) {
			__builtin_memcpy(n->laddr, buf + o_s6, 16);
			__builtin_memcpy(n->raddr, buf + o_d6, 16);
		} else {
			__builtin_memcpy(n->laddr, buf + o_saddr, 4);
			__builtin_memcpy(n->raddr, buf + o_daddr, 4);
		}
		n->proto = BPF_CORE_READ(sk, sk_protocol);
		return;
	}
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	n->family = family;
	n->proto = BPF_CORE_READ(sk, sk_protocol);
	n->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	n->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&n->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&n->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)n->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)n->raddr, sk, __sk_common.skc_daddr);
	}
}

// A destination given in user memory (connect, sendto, sendmsg) overrides the socket's.
static __always_inline void user_dest(struct net_fields *n, __u64 uaddr)
{
	if (!uaddr)
		return;
	// One read of the larger form; a sockaddr_in at the end of a page is read alone.
	struct sockaddr_in6 sin6 = {};
	if (bpf_probe_read_user(&sin6, sizeof(sin6), (void *)uaddr) != 0 &&
	    bpf_probe_read_user(&sin6, sizeof(struct sockaddr_in), (void *)uaddr) != 0)
		return;
	if (sin6.sin6_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&sin6;
		n->family = AF_INET;
		n->rport = __builtin_bswap16(sin->sin_port);
		__builtin_memset(n->raddr, 0, sizeof(n->raddr));
		__builtin_memcpy(n->raddr, &sin->sin_addr.s_addr, 4);
	} else if (sin6.sin6_family == AF_INET6) {
		n->family = AF_INET6;
		n->rport = __builtin_bswap16(sin6.sin6_port);
		__builtin_memcpy(n->raddr, &sin6.sin6_addr.in6_u.u6_addr8, 16);
	}
}

// De-duplicates on the addresses user space keeps (it drops the ephemeral local port of
// connects and sends, and the remote port of accepts), else emits.
static __always_inline void net_event(__u32 kind, struct net_fields *n, long ret)
{
	__u32 gen = current_gen();
	__s32 r = ret < 0 ? ret : 0;
	struct dedup_key k = {};
	key_common(&k, kind, gen, r);
	int local = !(kind == EV_CONNECT || kind == EV_UDP_SEND);
	if (local)
		__builtin_memcpy(&k.obj[0], n->laddr, 16);
	__builtin_memcpy(&k.obj[2], n->raddr, 16);
	k.a = (__u32)n->family << 16 | n->proto;
	k.b = (local ? (__u32)n->lport << 16 : 0) | (kind == EV_ACCEPT ? 0 : n->rport);
	if (repeat(&k))
		return;
	struct karmor_event *e = start(kind, gen);
	if (!e)
		return;
	e->ret = r;
	e->family = n->family;
	e->proto = n->proto;
	e->lport = n->lport;
	e->rport = n->rport;
	__builtin_memcpy(e->laddr, n->laddr, 16);
	__builtin_memcpy(e->raddr, n->raddr, 16);
	emit_first(e, &k);
}

// connect, bind, listen: the socket is argument 0; connect's destination is argument 1.
static __always_inline int sock_exit(__u32 kind, long ret)
{
	if (is_self())
		return 0;
	struct pt_regs *regs = user_regs();
	struct sock *sk = fd_sock(PT_REGS_PARM1_SYSCALL(regs));
	if (!sk)
		return 0;
	struct net_fields n = {};
	sock_addrs(&n, sk);
	if (!inet_family(n.family))
		return 0;
	if (kind == EV_CONNECT)
		user_dest(&n, PT_REGS_PARM2_SYSCALL(regs));
	net_event(kind, &n, ret);
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_CONNECT, ctx->ret);
}

SEC("tp/syscalls/sys_exit_bind")
int bind_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_BIND, ctx->ret);
}

SEC("tp/syscalls/sys_exit_listen")
int listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_LISTEN, ctx->ret);
}

static __always_inline int accept_exit(long ret)
{
	if (ret < 0 || is_self())
		return 0;
	struct sock *sk = fd_sock(ret);
	if (!sk)
		return 0;
	struct net_fields n = {};
	sock_addrs(&n, sk);
	if (!inet_family(n.family))
		return 0;
	net_event(EV_ACCEPT, &n, 0);
	return 0;
}

SEC("tp/syscalls/sys_exit_accept")
int accept_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tp/syscalls/sys_exit_accept4")
int accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

static __always_inline int udp_send(int fd, __u64 uaddr)
{
	if (is_self())
		return 0;
	struct sock *sk = fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return 0; // most sends: TCP and unix sockets, left after one read
	struct net_fields n = {};
	sock_addrs(&n, sk);
	if (!inet_family(n.family))
		return 0;
	user_dest(&n, uaddr);
	net_event(EV_UDP_SEND, &n, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_sendto")
int sendto_enter(struct trace_event_raw_sys_enter *ctx)
{
	return udp_send((int)ctx->args[0], ctx->args[4]);
}

SEC("tp/syscalls/sys_enter_sendmsg")
int sendmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg = {};
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]) != 0)
		return 0;
	return udp_send((int)ctx->args[0], (__u64)msg.msg_name);
}

// Raw, packet and ICMP sockets: seen at creation, since they have no connect/accept.
SEC("tp/syscalls/sys_enter_socket")
int socket_enter(struct trace_event_raw_sys_enter *ctx)
{
	int family = (int)ctx->args[0];
	int type = (int)ctx->args[1] & 0xf;
	int protocol = (int)ctx->args[2];
	int icmp = protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6;
	if (!(type == SOCK_RAW || family == AF_PACKET || icmp))
		return 0;
	if (is_self())
		return 0;
	struct karmor_event *e = start(EV_SOCKET, current_gen());
	if (!e)
		return 0;
	e->family = family;
	e->flags = type;
	e->mode = protocol;
	e->proto = protocol;
	emit(e);
	return 0;
}

// ---- system calls and capabilities ----------------------------------------------------------

// Every system call at entry (so that calls which do not return, exit_group and a successful
// execve, are seen too), counted per cgroup and executable. Once any syscall tracepoint is
// attached every task takes the syscall slow path already: this program adds only its own
// run, kept to a few loads, one map look-up and an atomic add.
SEC("tp/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	if (self_tgid && t->tgid == self_tgid)
		return 0;
	long nr = ctx->id;
	if (nr < 0 || nr >= COUNT_CAP)
		return 0;
	struct count_key k = {};
	k.exe = exe_id(t);
	if (!k.exe)
		return 0;
	k.cgroup_id = task_cgroup_id(t);
	k.gen = current_gen();
	k.item = nr;
	count_item(&k);
	return 0;
}

// Capability checks (security_capable → cap_capable), granted or denied, counted per cgroup,
// executable and capability: de-duplicated in the kernel, nothing is sent per check.
SEC("tp/capability/cap_capable")
int cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	if (self_tgid && t->tgid == self_tgid)
		return 0;
	int cap = ctx->cap;
	if (cap < 0 || cap > 1023)
		return 0;
	struct count_key k = {};
	k.exe = exe_id(t);
	if (!k.exe)
		return 0;
	k.cgroup_id = task_cgroup_id(t);
	k.gen = current_gen();
	k.item = COUNT_CAP | (__u32)cap << 1 | (ctx->ret != 0);
	count_item(&k);
	return 0;
}
