// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// Kernel side of the kubectl-karmor collector: process, file and network sensors.
//
// Only tracepoints are used (sched, syscalls): they are stable, cheap, and allowed where
// fentry/fexit, LSM and kprobes are not (kernels without CONFIG_KPROBES, or sandboxes that
// forbid ftrace-based trampolines). File paths are resolved in the kernel from the opened
// file's dentry and mount chain (so relative paths and dirfds come out absolute, as the
// process's mount namespace sees them); socket addresses come from the socket itself.
//
// CO-RE (compiled once against BTF, relocated by the loader to the running kernel). Every event
// carries the task's cgroup names read at event time, so a container that lives 50 ms is still
// attributed after its cgroup is gone. Events go to one ring buffer; a reservation that fails
// (buffer full) is counted in `drops`, which the collector reports.
//
// Layout of `struct karmor_event` is mirrored by collector/src/daemon/raw.rs: change both.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PATH_MAX_LEN 256
#define ARGS_MAX_LEN 256
#define CG_NAME_LEN 96
#define MAX_COMPS 16
#define COMP_LEN 48
#define COMPS_TRUNCATED 0x80000000u

#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
#define SOCK_DGRAM 2

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
};

struct karmor_event {
	__u64 ts_ns;            // CLOCK_MONOTONIC (bpf_ktime_get_ns)
	__u64 cgroup_id;        // cgroup v2 id of the task
	__u32 kind;             // enum karmor_kind
	__u32 pid;              // thread group id
	__u32 ppid;             // parent's thread group id
	__u32 uid;
	__s32 ret;              // result: 0 or -errno
	__u32 flags;            // file: f_flags; socket: type; exec: bytes of args
	__u32 mode;             // file: f_mode; socket: protocol
	__u16 family;           // AF_INET / AF_INET6 / socket family
	__u16 proto;            // IPPROTO_*
	__u16 lport;            // host byte order
	__u16 rport;            // host byte order
	__u8 laddr[16];
	__u8 raddr[16];
	char comm[16];
	char cg_leaf[CG_NAME_LEN];
	char cg_parent[CG_NAME_LEN];
	char path[PATH_MAX_LEN];  // exec: filename; failed open: the name as given
	char args[ARGS_MAX_LEN];  // exec: argv, NUL-separated
	__u32 ncomps;             // path components in comps (| COMPS_TRUNCATED)
	__u32 _pad;
	char comps[MAX_COMPS][COMP_LEN]; // file path components, leaf first
};

// collector/src/daemon/raw.rs decodes at these offsets.
_Static_assert(sizeof(struct karmor_event) == 1584, "karmor_event size");
_Static_assert(__builtin_offsetof(struct karmor_event, comps) == 812, "comps offset");
_Static_assert(__builtin_offsetof(struct karmor_event, laddr) == 52, "laddr offset");
_Static_assert(__builtin_offsetof(struct karmor_event, comm) == 84, "comm offset");
_Static_assert(__builtin_offsetof(struct karmor_event, cg_leaf) == 100, "cg_leaf offset");
_Static_assert(__builtin_offsetof(struct karmor_event, cg_parent) == 196, "cg_parent offset");
_Static_assert(__builtin_offsetof(struct karmor_event, path) == 292, "path offset");
_Static_assert(__builtin_offsetof(struct karmor_event, args) == 548, "args offset");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Syscall arguments kept from sys_enter_* to sys_exit_*, per thread.
struct pending {
	__u64 uptr;   // filename or sockaddr (user memory)
	__s32 fd;     // dirfd for opens, socket fd otherwise
	__u32 flags;  // open flags
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending);
} pending SEC(".maps");

// Set by the loader: the collector's own pid, whose activity is not recorded.
const volatile __u32 self_tgid = 0;

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

static __always_inline void read_kn_names(struct karmor_event *e, struct kernfs_node *kn)
{
	const char *name = BPF_CORE_READ(kn, name);
	bpf_probe_read_kernel_str(e->cg_leaf, sizeof(e->cg_leaf), name);
	struct kernfs_node *parent = kn_parent(kn);
	if (parent) {
		name = BPF_CORE_READ(parent, name);
		bpf_probe_read_kernel_str(e->cg_parent, sizeof(e->cg_parent), name);
	}
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

static __always_inline struct karmor_event *reserve(__u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (self_tgid && tgid == self_tgid)
		return 0;
	struct karmor_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&drops, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	// Ring buffer memory is not zeroed: clear what may be left partly written.
	__builtin_memset(e, 0, offsetof(struct karmor_event, cg_leaf));
	e->cg_leaf[0] = 0;
	e->cg_parent[0] = 0;
	e->path[0] = 0;
	e->args[0] = 0;
	e->ncomps = 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->pid = tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	read_cgroup(e, task);
	return e;
}

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct karmor_event *e = reserve(EV_EXEC);
	if (!e)
		return 0;
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);

	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start;
	if (len >= ARGS_MAX_LEN)
		len = ARGS_MAX_LEN - 1;
	len &= ARGS_MAX_LEN - 1; // a bound the verifier can see
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->flags = len;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id != (__u32)(id >> 32))
		return 0; // a thread, not the process
	struct karmor_event *e = reserve(EV_EXIT);
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}


// ---- files ----------------------------------------------------------------------------------

// Components of a path, leaf first, crossing mounts up to the root of the task's mount
// namespace. User space joins them in reverse.
static __always_inline void walk_path(struct karmor_event *e, const struct path *path)
{
	__u64 off = bpf_core_field_offset(struct mount, mnt);
	struct dentry *d = BPF_CORE_READ(path, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	struct mount *mnt = (struct mount *)((char *)vfsmnt - off);
	__u32 n = 0;
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
			vfsmnt = (struct vfsmount *)((char *)mnt + off);
			continue;
		}
		if (d == parent)
			break; // root of an unmounted (pseudo) file system
		if (n >= MAX_COMPS) {
			n |= COMPS_TRUNCATED;
			break;
		}
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->comps[n & (MAX_COMPS - 1)], COMP_LEN, name);
		n++;
		d = parent;
	}
	e->ncomps = n;
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline int remember(__s32 fd, __u64 uptr, __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (self_tgid && (__u32)(id >> 32) == self_tgid)
		return 0;
	struct pending p = { .uptr = uptr, .fd = fd, .flags = flags };
	bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);
	if (!p)
		return 0;
	struct pending args = *p;
	bpf_map_delete_elem(&pending, &id);
	struct karmor_event *e = reserve(EV_FILE);
	if (!e)
		return 0;
	e->ret = ret < 0 ? ret : 0;
	if (ret >= 0) {
		struct file *f = fd_file(ret);
		if (f) {
			e->flags = BPF_CORE_READ(f, f_flags);
			e->mode = BPF_CORE_READ(f, f_mode);
			walk_path(e, &f->f_path);
		}
	} else {
		// Failed: keep the name as given, and the directory it is relative to.
		e->flags = args.flags;
		bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)args.uptr);
		if (e->path[0] != '/') {
			if (args.fd == AT_FDCWD) {
				struct task_struct *t = (struct task_struct *)bpf_get_current_task_btf();
				struct fs_struct *fs = BPF_CORE_READ(t, fs);
				walk_path(e, &fs->pwd);
			} else {
				struct file *dir = fd_file(args.fd);
				if (dir)
					walk_path(e, &dir->f_path);
			}
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember((__s32)ctx->args[0], ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_exit_openat")
int openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tp/syscalls/sys_enter_openat2")
int openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;
	bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]); // struct open_how.flags
	return remember((__s32)ctx->args[0], ctx->args[1], (__u32)flags);
}

SEC("tp/syscalls/sys_exit_openat2")
int openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tp/syscalls/sys_enter_open")
int open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(AT_FDCWD, ctx->args[0], (__u32)ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_open")
int open_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tp/syscalls/sys_enter_creat")
int creat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember(AT_FDCWD, ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC);
}

SEC("tp/syscalls/sys_exit_creat")
int creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
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

static __always_inline void sock_addrs(struct karmor_event *e, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	e->proto = BPF_CORE_READ(sk, sk_protocol);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->raddr, sk, __sk_common.skc_daddr);
	}
}

// A destination given in user memory (connect, sendto, sendmsg) overrides the socket's.
static __always_inline void user_dest(struct karmor_event *e, __u64 uaddr)
{
	if (!uaddr)
		return;
	__u16 family = 0;
	bpf_probe_read_user(&family, sizeof(family), (void *)uaddr);
	if (family == AF_INET) {
		struct sockaddr_in sin = {};
		bpf_probe_read_user(&sin, sizeof(sin), (void *)uaddr);
		e->family = AF_INET;
		e->rport = __builtin_bswap16(sin.sin_port);
		__builtin_memset(e->raddr, 0, sizeof(e->raddr));
		__builtin_memcpy(e->raddr, &sin.sin_addr.s_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_user(&sin6, sizeof(sin6), (void *)uaddr);
		e->family = AF_INET6;
		e->rport = __builtin_bswap16(sin6.sin6_port);
		__builtin_memcpy(e->raddr, &sin6.sin6_addr.in6_u.u6_addr8, 16);
	}
}

static __always_inline int sock_exit(__u32 kind, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);
	if (!p)
		return 0;
	struct pending args = *p;
	bpf_map_delete_elem(&pending, &id);
	struct sock *sk = fd_sock(args.fd);
	if (!sk || !inet_family(BPF_CORE_READ(sk, __sk_common.skc_family)))
		return 0;
	struct karmor_event *e = reserve(kind);
	if (!e)
		return 0;
	sock_addrs(e, sk);
	if (kind == EV_CONNECT)
		user_dest(e, args.uptr);
	e->ret = ret < 0 ? ret : 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_connect")
int connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember((__s32)ctx->args[0], ctx->args[1], 0);
}

SEC("tp/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_CONNECT, ctx->ret);
}

SEC("tp/syscalls/sys_enter_bind")
int bind_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember((__s32)ctx->args[0], ctx->args[1], 0);
}

SEC("tp/syscalls/sys_exit_bind")
int bind_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_BIND, ctx->ret);
}

SEC("tp/syscalls/sys_enter_listen")
int listen_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember((__s32)ctx->args[0], 0, 0);
}

SEC("tp/syscalls/sys_exit_listen")
int listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sock_exit(EV_LISTEN, ctx->ret);
}

static __always_inline int accept_exit(long ret)
{
	if (ret < 0)
		return 0;
	struct sock *sk = fd_sock(ret);
	if (!sk || !inet_family(BPF_CORE_READ(sk, __sk_common.skc_family)))
		return 0;
	struct karmor_event *e = reserve(EV_ACCEPT);
	if (!e)
		return 0;
	sock_addrs(e, sk);
	bpf_ringbuf_submit(e, 0);
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
	struct sock *sk = fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return 0;
	if (!inet_family(BPF_CORE_READ(sk, __sk_common.skc_family)))
		return 0;
	struct karmor_event *e = reserve(EV_UDP_SEND);
	if (!e)
		return 0;
	sock_addrs(e, sk);
	user_dest(e, uaddr);
	bpf_ringbuf_submit(e, 0);
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
	struct karmor_event *e = reserve(EV_SOCKET);
	if (!e)
		return 0;
	e->family = family;
	e->flags = type;
	e->mode = protocol;
	e->proto = protocol;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
