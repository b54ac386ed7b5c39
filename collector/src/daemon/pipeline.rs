//! The user-space pipeline: raw event → attribution → de-duplication window → rows.
//!
//! The window is keyed by a compact, allocation-free key (cgroup, kind, interned executables,
//! access, addresses and ports, a hash of the path), so a repeated behaviour costs one hash
//! lookup. Strings are built once per distinct behaviour, when it first appears; rows are built
//! when the window is flushed.
//!
//! The kernel also de-duplicates: it sends the first event of a behaviour with its kernel key
//! and counts the repeats. The window remembers which row each kernel key fed, and
//! [`Pipeline::add_repeats`] adds the kernel's counts to that row at the flush, so the rows and
//! counts are those the pipeline would have built from every event.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::daemon::attribution::{parse_cgroup, CgroupIdentity, PodLookup, ProcessTable};
use crate::daemon::raw::{decode, ip, syscall_name, KernelKey, Kind, RawEvent};
use crate::schema::{Event, Op, Source};

const FMODE_EXEC: u32 = 0x20;
const FMODE_CREATED: u32 = 0x0010_0000;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;
const EINPROGRESS: i32 = 115;

/// Static facts stamped on every row.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Node name.
    pub node: String,
    /// Cluster name, when configured.
    pub cluster: Option<String>,
    /// Keep exec arguments (`--no-args` drops them).
    pub record_args: bool,
    /// Processes remembered for attribution.
    pub process_capacity: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    cgroup_id: u64,
    kind: u8,
    access: u8,
    sys: u16,
    uid: u32,
    ret: i32,
    exe: usize,
    parent: usize,
    family: u16,
    proto: u16,
    lport: u16,
    rport: u16,
    laddr: [u8; 16],
    raddr: [u8; 16],
    path_hash: u64,
    args_hash: u64,
}

struct Agg {
    first: u64,
    last: u64,
    count: u64,
    pid: u32,
    ppid: u32,
    exe: Arc<str>,
    parent: Option<Arc<str>>,
    path: Option<String>,
    args: Option<String>,
    cgroup: Arc<CgroupIdentity>,
}

/// Access codes in the key (0: none).
const ACCESS: [&str; 9] = [
    "", "read", "write", "create", "exec", "delete", "rename", "chmod", "chown",
];

/// Pipeline state for one window.
pub struct Pipeline {
    cfg: PipelineConfig,
    procs: ProcessTable,
    exes: HashSet<Arc<str>>,
    cgroups: HashMap<u64, Arc<CgroupIdentity>>,
    window: HashMap<Key, Agg>,
    /// Kernel de-duplication key → the row its first event went to, for this window.
    kernel_keys: HashMap<KernelKey, Key>,
    /// Records of the next window read while closing this one.
    deferred: Vec<Vec<u8>>,
    /// Events without cgroup names whose cgroup was unknown (attributed as host).
    unknown_cgroups: u64,
    hasher: std::collections::hash_map::RandomState,
    raw_in_window: u64,
    window_start_mono: Option<u64>,
}

impl Pipeline {
    /// A pipeline with an empty window.
    pub fn new(cfg: PipelineConfig) -> Self {
        let procs = ProcessTable::new(cfg.process_capacity);
        Pipeline {
            cfg,
            procs,
            exes: HashSet::new(),
            cgroups: HashMap::new(),
            window: HashMap::new(),
            kernel_keys: HashMap::new(),
            deferred: Vec::new(),
            unknown_cgroups: 0,
            hasher: Default::default(),
            raw_in_window: 0,
            window_start_mono: None,
        }
    }

    /// Distinct behaviours in the open window.
    pub fn rows(&self) -> usize {
        self.window.len()
    }

    /// Raw events in the open window.
    pub fn raw_events(&self) -> u64 {
        self.raw_in_window
    }

    /// Events that came without cgroup names for a cgroup the pipeline did not know (their
    /// names were in a record that was lost), since start.
    pub fn unknown_cgroups(&self) -> u64 {
        self.unknown_cgroups
    }

    /// Adds `count` repeats the kernel counted under `key` (last one at `last_mono_ns`) to
    /// the row its first event went to. False when no event of this window carried that key.
    pub fn add_repeats(&mut self, key: &KernelKey, count: u64, last_mono_ns: u64) -> bool {
        let Some(k) = self.kernel_keys.get(key) else {
            return false;
        };
        let Some(a) = self.window.get_mut(k) else {
            return false;
        };
        a.count += count;
        if count > 0 {
            a.last = a.last.max(last_mono_ns);
        }
        self.raw_in_window += count;
        true
    }

    /// Keeps a record of the next window (read while this one is being closed): it is
    /// handled by [`Pipeline::drain`] once this window's rows are out.
    pub fn defer(&mut self, record: &[u8]) {
        self.deferred.push(record.to_vec());
    }

    /// Monotonic time of the first event of the open window.
    pub fn window_start(&self) -> Option<u64> {
        self.window_start_mono
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.exes.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.exes.insert(a.clone());
        a
    }

    fn hash_bytes(&self, b: &[u8]) -> u64 {
        if b.is_empty() {
            return 0;
        }
        self.hasher.hash_one(b)
    }

    /// Takes one raw event.
    pub fn handle(&mut self, ev: &RawEvent<'_>) {
        if ev.kind == Kind::Exit {
            self.procs.exit(ev.pid);
            return;
        }
        self.raw_in_window += 1;
        self.window_start_mono.get_or_insert(ev.ts_mono_ns);

        let (exe, parent) = if ev.kind == Kind::Exec {
            let path = String::from_utf8_lossy(ev.path);
            let exe = self.intern(&path);
            let parent = self.procs.parent_exe(ev.ppid).map(|p| self.intern(&p));
            self.procs.exec(ev.pid, ev.ppid, exe.clone());
            (exe, parent)
        } else {
            let exe = self.procs.exe(ev.pid, ev.ppid, ev.comm);
            let exe = self.intern(&exe);
            let parent = self.procs.parent_exe(ev.ppid).map(|p| self.intern(&p));
            (exe, parent)
        };

        let access = match ev.kind {
            Kind::File => file_access(ev.flags, ev.mode),
            Kind::Unlink => 5,
            Kind::Rename => 6,
            Kind::Chmod => 7,
            Kind::Chown => 8,
            _ => 0,
        };
        // Ephemeral ports say nothing about behaviour: drop them from connect/send (local) and
        // accept (remote).
        let (lport, laddr) = match ev.kind {
            Kind::Connect | Kind::UdpSend => (0, [0u8; 16]),
            _ => (ev.lport, ev.laddr),
        };
        let rport = if ev.kind == Kind::Accept { 0 } else { ev.rport };
        let args: &[u8] = if ev.kind == Kind::Exec && self.cfg.record_args {
            ev.args
        } else {
            b""
        };
        let path_hash = match ev.kind {
            Kind::Exec => self.hash_bytes(ev.path),
            k if k.is_file() => {
                let (comps, name) = ev.path_identity();
                self.hash_bytes(comps) ^ self.hash_bytes(name).rotate_left(17)
            }
            _ => 0,
        };
        let key = Key {
            cgroup_id: ev.cgroup_id,
            kind: ev.kind as u8,
            access,
            sys: ev.sys,
            uid: ev.uid,
            ret: ev.ret,
            exe: Arc::as_ptr(&exe) as *const u8 as usize,
            parent: parent
                .as_ref()
                .map_or(0, |p| Arc::as_ptr(p) as *const u8 as usize),
            family: ev.family,
            proto: ev.proto,
            lport,
            rport,
            laddr,
            raddr: ev.raddr,
            path_hash,
            args_hash: self.hash_bytes(args),
        };
        let names = ev.cg_names || !ev.cg_leaf.is_empty() || !ev.cg_parent.is_empty();
        if names && !self.cgroups.contains_key(&ev.cgroup_id) {
            let c = Arc::new(parse_cgroup(
                &String::from_utf8_lossy(ev.cg_leaf),
                &String::from_utf8_lossy(ev.cg_parent),
            ));
            self.cgroups.insert(ev.cgroup_id, c);
        }
        if let Some(k) = ev.dedup {
            self.kernel_keys.insert(*k, key);
        }
        match self.window.entry(key) {
            Entry::Occupied(mut o) => {
                let a = o.get_mut();
                a.count += 1;
                a.first = a.first.min(ev.ts_mono_ns);
                a.last = a.last.max(ev.ts_mono_ns);
            }
            Entry::Vacant(v) => {
                let cgroup = match self.cgroups.get(&ev.cgroup_id) {
                    Some(c) => c.clone(),
                    None => {
                        // Names left out by the kernel, and their first record lost.
                        self.unknown_cgroups += 1;
                        Arc::new(CgroupIdentity::default())
                    }
                };
                v.insert(Agg {
                    first: ev.ts_mono_ns,
                    last: ev.ts_mono_ns,
                    count: 1,
                    pid: ev.pid,
                    ppid: ev.ppid,
                    exe,
                    parent,
                    path: match ev.kind {
                        Kind::Exec => Some(String::from_utf8_lossy(ev.path).into_owned()),
                        k if k.is_file() => Some(ev.file_path()),
                        _ => None,
                    },
                    args: exec_args(args),
                    cgroup,
                });
            }
        }
    }

    /// Closes the window: its rows, with monotonic times turned into wall-clock time by
    /// `mono_to_real` (ns to add), attributed through `pods`. Records deferred for the next
    /// window are then handled into it.
    pub fn drain(&mut self, mono_to_real: i64, pods: &dyn PodLookup) -> Vec<Event> {
        let rows = self.drain_rows(mono_to_real, pods);
        self.kernel_keys.clear();
        // The kernel sends a cgroup's names again in each generation: the cache can restart.
        if self.cgroups.len() > 65_536 {
            self.cgroups.clear();
        }
        for record in std::mem::take(&mut self.deferred) {
            if let Ok(ev) = decode(&record) {
                self.handle(&ev);
            }
        }
        rows
    }

    fn drain_rows(&mut self, mono_to_real: i64, pods: &dyn PodLookup) -> Vec<Event> {
        self.raw_in_window = 0;
        self.window_start_mono = None;
        let mut pod_cache: HashMap<String, Option<crate::daemon::attribution::PodInfo>> =
            HashMap::new();
        let mut out = Vec::with_capacity(self.window.len());
        for (key, a) in self.window.drain() {
            let mut e = Event {
                ts_first: (a.first as i64).saturating_add(mono_to_real),
                ts_last: (a.last as i64).saturating_add(mono_to_real),
                count: a.count,
                cluster: self.cfg.cluster.clone(),
                node: self.cfg.node.clone(),
                pid: Some(a.pid as i32),
                ppid: Some(a.ppid as i32),
                uid: Some(key.uid),
                process: Some(a.exe.to_string()),
                parent_process: a.parent.as_ref().map(|p| p.to_string()),
                args: a.args,
                source: Source::Ebpf,
                result: Some(result_text(key.ret)),
                ..Event::default()
            };
            match &a.cgroup.container_id {
                Some(id) => {
                    e.container_id = Some(id.clone());
                    e.pod_uid = a.cgroup.pod_uid.clone();
                    let info = pod_cache
                        .entry(id.clone())
                        .or_insert_with(|| pods.by_container(id));
                    if let Some(p) = info {
                        e.namespace = Some(p.namespace.clone());
                        e.pod = Some(p.pod.clone());
                        e.pod_uid = Some(p.pod_uid.clone());
                        e.container = Some(p.container.clone());
                        e.image = p.image.clone();
                        e.workload_kind = p.workload_kind.clone();
                        e.workload = p.workload.clone();
                        e.labels = p.labels.clone();
                    }
                }
                None => e.host = true,
            }
            fill_operation(&mut e, &key, a.path);
            out.push(e);
        }
        out
    }
}

fn file_access(flags: u32, mode: u32) -> u8 {
    if mode & FMODE_EXEC != 0 {
        4
    } else if mode & FMODE_CREATED != 0 {
        3
    } else if flags & O_ACCMODE != 0 || flags & O_TRUNC != 0 {
        2
    } else {
        1
    }
}

fn exec_args(args: &[u8]) -> Option<String> {
    // argv[0] is the program itself; the column holds the arguments after it.
    let mut parts = args.split(|&b| b == 0).filter(|p| !p.is_empty());
    parts.next()?;
    let rest: Vec<String> = parts
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}

/// `Passed` or the error, as KubeArmor words it.
pub fn result_text(ret: i32) -> String {
    match -ret {
        0 | EINPROGRESS => "Passed".into(),
        1 => "Operation not permitted".into(),
        2 => "No such file or directory".into(),
        13 => "Permission denied".into(),
        98 => "Address already in use".into(),
        111 => "Connection refused".into(),
        n => format!("errno {n}"),
    }
}

fn proto_name(proto: u16) -> Option<String> {
    Some(
        match proto {
            6 => "tcp",
            17 => "udp",
            1 | 58 => "icmp",
            255 => "raw",
            _ => return None,
        }
        .into(),
    )
}

fn fill_operation(e: &mut Event, key: &Key, path: Option<String>) {
    let kind = key.kind;
    let addr = |bytes: &[u8; 16]| ip(key.family, bytes).map(|a| a.to_string());
    let port = |p: u16| (p != 0).then_some(p);
    match kind {
        k if k == Kind::Exec as u8 => {
            e.op = Op::Process;
            e.process = path.or(e.process.take());
            e.syscall = Some("SYS_EXECVE".into());
        }
        k if k == Kind::File as u8 || (Kind::Unlink as u8..=Kind::Chown as u8).contains(&k) => {
            e.op = Op::File;
            e.path = path;
            e.access = Some(ACCESS[key.access as usize].to_string()).filter(|s| !s.is_empty());
            e.syscall = Some(syscall_name(key.sys).unwrap_or("SYS_OPENAT").into());
        }
        k if k == Kind::Socket as u8 => {
            e.op = Op::Network;
            e.direction = Some("socket".into());
            // proto holds the socket's protocol; the type decides raw vs icmp.
            e.proto = Some(
                if key.proto == 1 || key.proto == 58 {
                    "icmp"
                } else {
                    "raw"
                }
                .into(),
            );
            e.syscall = Some("SYS_SOCKET".into());
        }
        _ => {
            e.op = Op::Network;
            e.proto = proto_name(key.proto);
            e.direction = Some(
                match kind {
                    k if k == Kind::Connect as u8 => "connect",
                    k if k == Kind::Accept as u8 => "accept",
                    k if k == Kind::Bind as u8 => "bind",
                    k if k == Kind::Listen as u8 => "listen",
                    _ => "send",
                }
                .into(),
            );
            e.local_addr =
                addr(&key.laddr).filter(|_| key.lport != 0 || key.kind == Kind::Bind as u8);
            e.local_port = port(key.lport);
            let remote = matches!(kind, k if k == Kind::Connect as u8 || k == Kind::Accept as u8 || k == Kind::UdpSend as u8);
            if remote {
                e.remote_addr = addr(&key.raddr);
                e.remote_port = port(key.rport);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::attribution::{NoPods, PodInfo};
    use crate::daemon::raw::RawEvent;

    const ID: &str = "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000";

    fn cfg() -> PipelineConfig {
        PipelineConfig {
            node: "node-1".into(),
            cluster: Some("c".into()),
            record_args: true,
            process_capacity: 1024,
        }
    }

    struct OnePod;
    impl PodLookup for OnePod {
        fn by_container(&self, id: &str) -> Option<PodInfo> {
            (id == ID).then(|| PodInfo {
                namespace: "shop".into(),
                pod: "web-1".into(),
                pod_uid: "u".into(),
                container: "web".into(),
                workload_kind: Some("Deployment".into()),
                workload: Some("web".into()),
                labels: vec!["app=web".into()],
                ..PodInfo::default()
            })
        }
    }

    fn container_event(kind: Kind) -> RawEvent<'static> {
        let mut e = RawEvent::empty(kind);
        e.cgroup_id = 9;
        e.cg_leaf = b"cri-containerd-8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000.scope";
        e.cg_parent = b"kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice";
        e.pid = 4_000_001;
        e.ppid = 4_000_000;
        e.comm = b"web";
        e
    }

    #[test]
    fn exec_then_file_reads_are_attributed_and_deduplicated() {
        let mut p = Pipeline::new(cfg());
        let mut parent = container_event(Kind::Exec);
        parent.pid = 4_000_000;
        parent.ppid = 1;
        parent.path = b"/bin/sh";
        p.handle(&parent);
        let mut exec = container_event(Kind::Exec);
        exec.path = b"/usr/bin/web";
        exec.args = b"web\0--port\08080\0";
        exec.ts_mono_ns = 100;
        p.handle(&exec);
        for t in 0..5 {
            let mut f = container_event(Kind::File);
            f.path = b"/etc/web.conf";
            f.ts_mono_ns = 200 + t;
            p.handle(&f);
        }
        let mut w = container_event(Kind::File);
        w.path = b"/tmp/out";
        w.flags = 1;
        w.mode = FMODE_CREATED;
        p.handle(&w);
        assert_eq!(p.raw_events(), 8);
        let rows = p.drain(1_000, &OnePod);
        assert_eq!(rows.len(), 4, "{rows:#?}");
        let exec = rows
            .iter()
            .find(|e| e.process.as_deref() == Some("/usr/bin/web") && e.op == Op::Process)
            .unwrap();
        assert_eq!(exec.parent_process.as_deref(), Some("/bin/sh"));
        assert_eq!(exec.args.as_deref(), Some("--port 8080"));
        assert_eq!(exec.ts_first, 1_100);
        let read = rows
            .iter()
            .find(|e| e.path.as_deref() == Some("/etc/web.conf"))
            .unwrap();
        assert_eq!((read.count, read.ts_first, read.ts_last), (5, 1_200, 1_204));
        assert_eq!(read.access.as_deref(), Some("read"));
        assert_eq!(read.process.as_deref(), Some("/usr/bin/web"));
        assert_eq!(read.namespace.as_deref(), Some("shop"));
        assert_eq!(read.workload.as_deref(), Some("web"));
        assert_eq!(read.container_id.as_deref(), Some(ID));
        assert!(!read.host);
        let created = rows
            .iter()
            .find(|e| e.path.as_deref() == Some("/tmp/out"))
            .unwrap();
        assert_eq!(created.access.as_deref(), Some("create"));
        assert_eq!(p.rows(), 0);
    }

    #[test]
    fn host_events_without_kubernetes() {
        let mut p = Pipeline::new(cfg());
        let mut e = RawEvent::empty(Kind::Connect);
        e.pid = std::process::id();
        e.family = 2;
        e.proto = 6;
        e.raddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.rport = 8080;
        e.lport = 43210;
        e.ret = -115;
        p.handle(&e);
        e.lport = 43211; // another ephemeral port: same behaviour
        p.handle(&e);
        let rows = p.drain(0, &NoPods);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert!(r.host && r.namespace.is_none());
        assert_eq!(r.count, 2);
        assert_eq!(
            (r.direction.as_deref(), r.proto.as_deref()),
            (Some("connect"), Some("tcp"))
        );
        assert_eq!(
            (r.remote_addr.as_deref(), r.remote_port, r.local_port),
            (Some("127.0.0.1"), Some(8080), None)
        );
        assert_eq!(r.result.as_deref(), Some("Passed"));
    }

    /// Rows as comparable text (everything but the order).
    fn sorted(rows: Vec<Event>) -> Vec<String> {
        let mut v: Vec<String> = rows.iter().map(|e| format!("{e:?}")).collect();
        v.sort();
        v
    }

    #[test]
    fn kernel_counted_repeats_give_the_same_rows_as_every_event() {
        let key_of = |gen: u32, tag: u8| {
            let mut k = [0u8; crate::daemon::raw::KEY_SIZE];
            k[0] = tag;
            k[crate::daemon::raw::KEY_OFF_GEN..crate::daemon::raw::KEY_OFF_GEN + 4]
                .copy_from_slice(&gen.to_le_bytes());
            k
        };
        let (n, comps) = crate::daemon::raw::comps_of("/etc/hosts");
        let event = |ts: u64, pid: u32| {
            let mut f = container_event(Kind::File);
            f.ncomps = n;
            f.comps = &comps;
            f.sys = 2;
            f.ts_mono_ns = ts;
            f.pid = pid;
            f
        };
        // Every event, as without kernel de-duplication: two processes of one program.
        let mut every = Pipeline::new(cfg());
        for t in 0..10 {
            every.handle(&event(100 + t, 7));
        }
        for t in 0..5 {
            every.handle(&event(200 + t, 8));
        }
        // The kernel sends the first event of each process and counts the rest.
        let (k7, k8) = (key_of(0, 7), key_of(0, 8));
        let mut counted = Pipeline::new(cfg());
        let mut first = event(100, 7);
        first.dedup = Some(&k7);
        counted.handle(&first);
        let mut first = event(200, 8);
        first.dedup = Some(&k8);
        counted.handle(&first);
        assert!(counted.add_repeats(&k7, 9, 109));
        assert!(counted.add_repeats(&k8, 4, 204));
        assert!(
            !counted.add_repeats(&key_of(0, 9), 3, 300),
            "no first event"
        );
        assert_eq!(counted.raw_events(), every.raw_events());
        let (a, b) = (every.drain(5, &OnePod), counted.drain(5, &OnePod));
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].count, a[0].ts_first, a[0].ts_last), (15, 105, 209));
        assert_eq!(sorted(a), sorted(b));
        // Keys are forgotten with their window.
        assert!(!counted.add_repeats(&k7, 1, 400));
    }

    #[test]
    fn deferred_records_open_the_next_window() {
        let mut p = Pipeline::new(cfg());
        let mut f = container_event(Kind::File);
        f.path = b"/now";
        p.handle(&f);
        let mut next = container_event(Kind::File);
        next.path = b"/later";
        next.gen = 1;
        p.defer(&crate::daemon::raw::encode(&next));
        let rows = p.drain(0, &NoPods);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path.as_deref(), Some("/now"));
        assert_eq!((p.rows(), p.raw_events()), (1, 1));
        let rows = p.drain(0, &NoPods);
        assert_eq!(rows[0].path.as_deref(), Some("/later"));
        // Its cgroup names travelled with it.
        assert_eq!(rows[0].container_id.as_deref(), Some(ID));
    }

    #[test]
    fn cgroup_names_are_taken_from_the_first_event_of_a_cgroup() {
        let mut p = Pipeline::new(cfg());
        let mut f = container_event(Kind::File);
        f.path = b"/a";
        p.handle(&f);
        // A later event of the same cgroup without names (the kernel left them out).
        let mut g = RawEvent::empty(Kind::Unlink);
        g.cgroup_id = 9;
        g.path = b"/b";
        g.sys = 6;
        p.handle(&g);
        let mut h = RawEvent::empty(Kind::Rename);
        h.cgroup_id = 404;
        h.path = b"/c";
        p.handle(&h);
        let rows = p.drain(0, &NoPods);
        let b = rows
            .iter()
            .find(|e| e.path.as_deref() == Some("/b"))
            .unwrap();
        assert_eq!(b.container_id.as_deref(), Some(ID));
        assert_eq!(
            (b.access.as_deref(), b.syscall.as_deref()),
            (Some("delete"), Some("SYS_UNLINKAT"))
        );
        let c = rows
            .iter()
            .find(|e| e.path.as_deref() == Some("/c"))
            .unwrap();
        assert!(c.host && c.container_id.is_none());
        assert_eq!(c.access.as_deref(), Some("rename"));
        assert_eq!(p.unknown_cgroups(), 1);
    }

    #[test]
    fn container_without_pod_info_keeps_its_id() {
        let mut p = Pipeline::new(cfg());
        let mut f = container_event(Kind::File);
        f.path = b"/x";
        p.handle(&f);
        let rows = p.drain(0, &NoPods);
        assert_eq!(rows[0].container_id.as_deref(), Some(ID));
        assert_eq!(
            rows[0].pod_uid.as_deref(),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        assert!(!rows[0].host && rows[0].pod.is_none());
    }
}
