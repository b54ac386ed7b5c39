//! The user-space pipeline: raw event → attribution → de-duplication window → rows.
//!
//! The window is keyed by a compact, allocation-free key (cgroup, kind, interned executables,
//! access, addresses and ports, a hash of the path), so a repeated behaviour costs one hash
//! lookup. Strings are built once per distinct behaviour, when it first appears; rows are built
//! when the window is flushed.
//!
//! [`Pipeline::drain_window`] closes a window into a [`DrainedWindow`]: its compact rows in
//! segment order, which the writer turns into events a chunk at a time
//! ([`karmor_contract::segment::SegmentRows`]), so a window is never held as events all at once.
//! [`Pipeline::window_bytes`] estimates the window's memory, for rotation by size.
//!
//! The kernel also de-duplicates: it sends the first event of a behaviour with its kernel key
//! and counts the repeats. The window remembers which row each kernel key fed, and
//! [`Pipeline::add_repeats`] adds the kernel's counts to that row at the flush, so the rows and
//! counts are those the pipeline would have built from every event.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::ops::Range;
use std::sync::Arc;

use crate::attribution::{
    parse_cgroup, CgroupIdentity, PodInfo, PodLookup, ProcessTable, RuntimeContainer,
};
use crate::datadir::{DataDir, WriteOutcome};
use crate::raw::{
    capability_name, decode, ip, syscall_name, syscall_nr_name, Counted, CountedItem, KernelKey,
    Kind, RawEvent, COMPS_DIR_DEF, COMPS_DIR_REF, COMPS_TRUNCATED,
};
use karmor_contract::error::ContractError;
use karmor_contract::schema::{Event, Op, Source};
use karmor_contract::segment::{SegmentMeta, SegmentRows};

const HOUR_NS: i64 = 3_600_000_000_000;

const FMODE_EXEC: u32 = 0x20;
const FMODE_CREATED: u32 = 0x0010_0000;
const O_ACCMODE: u32 = 0o3;
const O_TRUNC: u32 = 0o1000;
const EINPROGRESS: i32 = 115;
const EPERM: i32 = 1;
/// Executables remembered by their kernel identity (exec records' `exe_id`).
const EXE_IDS: usize = 65_536;

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
    /// Kept back from a window because its container's pod was not known yet.
    held: bool,
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
    /// (cgroup, the kernel's executable identity: exec records' `exe_id`) → the path that
    /// cgroup's exec record named it by, which names the processes of its counted execs and
    /// the kernel's system call and capability counts. Per cgroup, because the kernel counts
    /// repeated execs per cgroup, and one file has several paths (`/bin/cat` is
    /// `/usr/bin/cat`): another container's, or the host's, exec of the same file must not
    /// rename this container's processes.
    exe_ids: HashMap<(u64, u64), Arc<str>>,
    /// `exe_id` → the path its latest exec record named, in any cgroup: the fallback for a
    /// cgroup that has no exec record of its own for the image (a parent exec'd outside it).
    any_exe_ids: HashMap<u64, Arc<str>>,
    /// (pid, executable identity) → the path that pid exec'd, for this window and the one
    /// before: names a count by its first caller's exec as the exec row names it (another
    /// path to the same file, `/bin/cat` and `/usr/bin/cat`, may be in `exe_ids`).
    pid_exes: [HashMap<(u32, u64), Arc<str>>; 2],
    /// cgroup ids of counts that no record named and that the cgroup v2 tree did not hold
    /// (removed already): not searched for again.
    cgroups_not_found: HashSet<u64>,
    window: HashMap<Key, Agg>,
    /// Kernel de-duplication key → the row its first event went to, for this window.
    kernel_keys: HashMap<KernelKey, Key>,
    /// Records of the next window read while closing this one.
    deferred: Vec<Vec<u8>>,
    /// Events without cgroup names whose cgroup was unknown (attributed as host).
    unknown_cgroups: u64,
    /// Directories the kernel sent in this generation ([`COMPS_DIR_DEF`]): id → their path
    /// components (leaf first, NUL-terminated, as the kernel writes them) and their count.
    dirs: HashMap<u64, (Box<[u8]>, u32)>,
    /// File events that named a directory no record had defined (its record was lost): their
    /// paths start with `/…/`.
    unknown_dirs: u64,
    /// Reused for the components of an event whose directory is joined to its leaf.
    comps_buf: Vec<u8>,
    hasher: std::collections::hash_map::RandomState,
    raw_in_window: u64,
    window_start_mono: Option<u64>,
    /// Bytes of the path and argument strings of the open window.
    heap_in_window: usize,
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
            exe_ids: HashMap::new(),
            any_exe_ids: HashMap::new(),
            pid_exes: Default::default(),
            cgroups_not_found: HashSet::new(),
            window: HashMap::new(),
            kernel_keys: HashMap::new(),
            deferred: Vec::new(),
            unknown_cgroups: 0,
            dirs: HashMap::new(),
            unknown_dirs: 0,
            comps_buf: Vec::new(),
            hasher: Default::default(),
            raw_in_window: 0,
            window_start_mono: None,
            heap_in_window: 0,
        }
    }

    /// Memory the open window holds, once its next distinct row is in: its table (at the size
    /// the next row would grow it to) and its strings. Rotating before this passes a budget
    /// bounds the window's memory.
    pub fn window_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(Key, Agg)>() + 1;
        let cap = self.window.capacity();
        // hashbrown keeps 1/8 of its buckets free, and doubles them when full.
        let buckets = |cap: usize| (cap.max(3) * 8 / 7).next_power_of_two();
        let table = if self.window.len() >= cap {
            buckets(cap + 1)
        } else {
            buckets(cap)
        };
        table * entry + self.heap_in_window
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

    /// File events whose directory was named by an id no record had defined (that record was
    /// lost), since start: their paths start with `/…/`.
    pub fn unknown_dirs(&self) -> u64 {
        self.unknown_dirs
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

    /// Adds the system call and capability counts the kernel kept for the closing window
    /// (its `counts` map; see `Probes::settle`): one row per cgroup, executable, system call
    /// or capability and outcome, its last time `now_mono` (the counts carry only the first).
    /// Executables are named from the first caller's exec record (as its exec row names
    /// them), else from the last exec record of the same file, else from the first caller's
    /// pid through `/proc`; cgroups the window's records did not name are looked
    /// up under the cgroup v2 mount by id.
    pub fn add_counted(&mut self, counted: &[Counted<'_>], now_mono: u64) {
        let unknown: HashSet<u64> = counted
            .iter()
            .map(|c| c.cgroup_id)
            .filter(|id| !self.cgroups.contains_key(id) && !self.cgroups_not_found.contains(id))
            .collect();
        if !unknown.is_empty() {
            let found = cgroups_by_id(&unknown);
            if self.cgroups_not_found.len() > 65_536 {
                self.cgroups_not_found.clear();
            }
            self.cgroups_not_found
                .extend(unknown.iter().filter(|id| !found.contains_key(id)));
            for (id, (leaf, parent)) in found {
                self.cgroups
                    .insert(id, Arc::new(parse_cgroup(&leaf, &parent)));
            }
        }
        for c in counted {
            if c.count == 0 {
                continue;
            }
            let by_pid = self.pid_exes[0]
                .get(&(c.pid, c.exe_id))
                .or_else(|| self.pid_exes[1].get(&(c.pid, c.exe_id)));
            let exe = match by_pid.or_else(|| self.exe_named(c.cgroup_id, c.exe_id)) {
                Some(e) => e.clone(),
                None => {
                    let e = self.procs.exe(c.pid, c.ppid, c.comm);
                    self.intern(&e)
                }
            };
            let parent = self.procs.parent_exe(c.ppid).map(|p| self.intern(&p));
            let (kind, sys, ret) = match c.item {
                CountedItem::Syscall(nr) => (Kind::Syscall, nr, 0),
                CountedItem::Capability { cap, denied } => {
                    (Kind::Capability, cap, if denied { -EPERM } else { 0 })
                }
            };
            let key = Key {
                cgroup_id: c.cgroup_id,
                kind: kind as u8,
                access: 0,
                sys,
                uid: c.uid,
                ret,
                exe: Arc::as_ptr(&exe) as *const u8 as usize,
                parent: 0,
                family: 0,
                proto: 0,
                lport: 0,
                rport: 0,
                laddr: [0; 16],
                raddr: [0; 16],
                path_hash: 0,
                args_hash: 0,
            };
            self.raw_in_window += c.count;
            self.window_start_mono.get_or_insert(c.first_ns);
            let last = now_mono.max(c.first_ns);
            match self.window.entry(key) {
                Entry::Occupied(mut o) => {
                    let a = o.get_mut();
                    a.count += c.count;
                    a.first = a.first.min(c.first_ns);
                    a.last = a.last.max(last);
                }
                Entry::Vacant(v) => {
                    let cgroup = match self.cgroups.get(&c.cgroup_id) {
                        Some(g) => g.clone(),
                        None => {
                            self.unknown_cgroups += 1;
                            Arc::new(CgroupIdentity::default())
                        }
                    };
                    v.insert(Agg {
                        first: c.first_ns,
                        last,
                        count: c.count,
                        pid: c.pid,
                        ppid: c.ppid,
                        exe,
                        parent,
                        path: None,
                        args: None,
                        cgroup,
                        held: false,
                    });
                }
            }
        }
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

    /// The executable of `pid`, whose image the kernel identifies as `exe_id` (0: unknown).
    /// The kernel sends an exec only the first time in a window that a parent image runs an
    /// image with the same arguments in a cgroup, so a pid may not have an exec record of its
    /// own: then (or when the pid's learnt image is another one, an exec without a record) the
    /// image is named by the exec record that identified `exe_id`, before `/proc`.
    fn exe_of(&mut self, cgroup: u64, pid: u32, ppid: u32, comm: &[u8], exe_id: u64) -> Arc<str> {
        if let Some((exe, id)) = self.procs.known(pid) {
            if exe_id == 0 || id == 0 || id == exe_id {
                return self.intern(&exe);
            }
        }
        if let Some(exe) = self.exe_named(cgroup, exe_id).cloned() {
            self.procs.exec_id(pid, ppid, exe.clone(), exe_id);
            return exe;
        }
        let exe = self.procs.exe(pid, ppid, comm);
        self.intern(&exe)
    }

    /// The executable of the parent `ppid`, whose image the kernel identifies as `exe_id`
    /// (0: unknown), named as [`Pipeline::exe_of`] names a process.
    fn parent_of(&mut self, cgroup: u64, ppid: u32, exe_id: u64) -> Option<Arc<str>> {
        if ppid == 0 {
            return None;
        }
        if let Some((exe, id)) = self.procs.known(ppid) {
            if exe_id == 0 || id == 0 || id == exe_id {
                return Some(self.intern(&exe));
            }
        }
        if let Some(exe) = self.exe_named(cgroup, exe_id).cloned() {
            self.procs.exec_id(ppid, 0, exe.clone(), exe_id);
            return Some(exe);
        }
        self.procs.parent_exe(ppid).map(|p| self.intern(&p))
    }

    /// The path an exec record named the image `exe_id` by: in `cgroup`, else anywhere.
    fn exe_named(&self, cgroup: u64, exe_id: u64) -> Option<&Arc<str>> {
        self.exe_ids
            .get(&(cgroup, exe_id))
            .or_else(|| self.any_exe_ids.get(&exe_id))
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

    /// Takes one raw event. A file event's path may come in two parts (see `walk_path` in
    /// `bpf/karmor.bpf.c`): a record that defines a directory id carries the whole path, and
    /// the directory's components are kept for the generation; a later record that names the
    /// id carries only its leaf, and the directory's components are joined to it here, so
    /// that everything after sees the components a whole walk gives.
    pub fn handle(&mut self, ev: &RawEvent<'_>) {
        if !ev.kind.is_file() || ev.ncomps & (COMPS_DIR_DEF | COMPS_DIR_REF) == 0 {
            return self.handle_whole(ev);
        }
        let own = ev.comps_count();
        let mut e = *ev;
        if ev.ncomps & COMPS_DIR_DEF != 0 {
            e.ncomps &= !COMPS_DIR_DEF;
            let first = ev.comps.iter().position(|&c| c == 0);
            if let (Some(i), true) = (first, own > 0) {
                self.dirs
                    .insert(ev.dir, (ev.comps[i + 1..].into(), own - 1));
            }
            return self.handle_whole(&e);
        }
        let mut buf = std::mem::take(&mut self.comps_buf);
        buf.clear();
        buf.extend_from_slice(ev.comps);
        match self.dirs.get(&ev.dir) {
            Some((comps, n)) => {
                buf.extend_from_slice(comps);
                e.ncomps = own + n;
            }
            None => {
                self.unknown_dirs += 1;
                e.ncomps = own | COMPS_TRUNCATED;
            }
        }
        e.comps = &buf;
        self.handle_whole(&e);
        self.comps_buf = buf;
    }

    /// [`Pipeline::handle`] of an event whose components are whole.
    fn handle_whole(&mut self, ev: &RawEvent<'_>) {
        if ev.kind == Kind::Exit {
            self.procs.exit(ev.pid);
            return;
        }
        self.raw_in_window += 1;
        self.window_start_mono.get_or_insert(ev.ts_mono_ns);

        let (exe, parent) = if ev.kind == Kind::Exec {
            let path = String::from_utf8_lossy(ev.path);
            let exe = self.intern(&path);
            let parent = self.parent_of(ev.cgroup_id, ev.ppid, ev.parent_exe_id);
            self.procs.exec_id(ev.pid, ev.ppid, exe.clone(), ev.exe_id);
            if ev.exe_id != 0 {
                if self.exe_ids.len() >= EXE_IDS {
                    self.exe_ids.clear();
                    self.any_exe_ids.clear();
                }
                self.exe_ids.insert((ev.cgroup_id, ev.exe_id), exe.clone());
                self.any_exe_ids.insert(ev.exe_id, exe.clone());
                self.pid_exes[0].insert((ev.pid, ev.exe_id), exe.clone());
            }
            (exe, parent)
        } else {
            let exe = self.exe_of(ev.cgroup_id, ev.pid, ev.ppid, ev.comm, ev.exe_id);
            let parent = self.parent_of(ev.cgroup_id, ev.ppid, ev.parent_exe_id);
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
                let path = match ev.kind {
                    Kind::Exec => Some(String::from_utf8_lossy(ev.path).into_owned()),
                    k if k.is_file() => Some(ev.file_path()),
                    _ => None,
                };
                let args = exec_args(args);
                self.heap_in_window += path.as_ref().map_or(0, String::capacity)
                    + args.as_ref().map_or(0, String::capacity);
                v.insert(Agg {
                    first: ev.ts_mono_ns,
                    last: ev.ts_mono_ns,
                    count: 1,
                    pid: ev.pid,
                    ppid: ev.ppid,
                    exe,
                    parent,
                    path,
                    args,
                    cgroup,
                    held: false,
                });
            }
        }
    }

    /// Closes the window: its rows, with monotonic times turned into wall-clock time by
    /// `mono_to_real` (ns to add), attributed through `pods`. Records deferred for the next
    /// window are then handled into it.
    pub fn drain(&mut self, mono_to_real: i64, pods: &dyn PodLookup) -> Vec<Event> {
        self.drain_window(mono_to_real, pods).into_events()
    }

    /// [`Pipeline::drain_window`] for a window that is not the last: when `pods` may still
    /// learn containers ([`PodLookup::learns_later`]), the rows of containers it does not know
    /// yet stay for one more window instead, so that a pod whose watch event trails its first
    /// behaviour is still attributed. A row is kept back once; the next flush writes it,
    /// attributed or not, with its counts and times across both windows.
    pub fn drain_window_holding(
        &mut self,
        mono_to_real: i64,
        pods: &dyn PodLookup,
    ) -> DrainedWindow {
        if !pods.learns_later() {
            return self.drain_window(mono_to_real, pods);
        }
        let mut known: HashMap<String, bool> = HashMap::new();
        let held: Vec<(Key, Agg)> = self
            .window
            .extract_if(|_, a| {
                !a.held
                    && a.cgroup.container_id.as_ref().is_some_and(|id| {
                        !*known
                            .entry(id.clone())
                            .or_insert_with(|| pods.by_container(id).is_some())
                    })
            })
            .collect();
        let latest = self
            .window
            .values()
            .chain(held.iter().map(|(_, a)| a))
            .map(|a| a.last)
            .max();
        let window = self.drain_window(mono_to_real, pods);
        if let (Some(now), false) = (latest, held.is_empty()) {
            // The next window starts at the latest event seen (its rows keep their own times).
            self.window_start_mono = Some(self.window_start_mono.map_or(now, |s| s.min(now)));
        }
        for (key, mut a) in held {
            a.held = true;
            self.raw_in_window += a.count;
            match self.window.entry(key) {
                Entry::Occupied(mut o) => {
                    // A deferred record of the next window already started this row.
                    let b = o.get_mut();
                    b.count += a.count;
                    b.first = b.first.min(a.first);
                    b.last = b.last.max(a.last);
                    b.held = true;
                }
                Entry::Vacant(v) => {
                    self.heap_in_window += a.path.as_ref().map_or(0, String::capacity)
                        + a.args.as_ref().map_or(0, String::capacity);
                    v.insert(a);
                }
            }
        }
        window
    }

    /// [`Pipeline::drain`], with the rows kept compact in a [`DrainedWindow`] (in segment
    /// order) that the writer turns into events a chunk at a time.
    pub fn drain_window(&mut self, mono_to_real: i64, pods: &dyn PodLookup) -> DrainedWindow {
        let rows = self.drain_rows(mono_to_real, pods);
        self.kernel_keys.clear();
        self.pid_exes[1] = std::mem::take(&mut self.pid_exes[0]);
        self.procs.forget_missing();
        // Directory ids are per generation: the next one's records define their own (the
        // deferred records below included).
        self.dirs.clear();
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

    fn drain_rows(&mut self, mono_to_real: i64, pods: &dyn PodLookup) -> DrainedWindow {
        self.raw_in_window = 0;
        self.window_start_mono = None;
        self.heap_in_window = 0;
        let rows: Vec<(Key, Agg)> = self.window.drain().collect();
        DrainedWindow::new(
            self.cfg.node.clone(),
            self.cfg.cluster.clone(),
            mono_to_real,
            rows,
            pods,
        )
    }
}

/// Slot of rows without a container (host processes) in [`DrainedWindow::slot`].
const NO_CONTAINER: u32 = u32::MAX;

/// A closed window: its rows kept compact (as the window held them), in segment order and
/// grouped by hour, turned into [`Event`]s only when asked ([`DrainedWindow::hours`] gives
/// one [`SegmentRows`] per hour). Pods are looked up once per container.
///
/// A container no pod holds is named from its runtime's state ([`PodLookup::runtime_container`]).
pub struct DrainedWindow {
    node: String,
    cluster: Option<String>,
    mono_to_real: i64,
    rows: Vec<(Key, Agg)>,
    /// Per row: its container's index in `pods`, or [`NO_CONTAINER`].
    slot: Vec<u32>,
    /// The pod (or the runtime's name) of each container of the window, when known.
    pods: Vec<Option<Identity>>,
    /// Row indices in segment order: hour, then (namespace, workload, container, op, ts_first).
    order: Vec<u32>,
    /// Ranges of `order`, one per hour, earliest first.
    hours: Vec<Range<usize>>,
}

impl DrainedWindow {
    fn new(
        node: String,
        cluster: Option<String>,
        mono_to_real: i64,
        rows: Vec<(Key, Agg)>,
        lookup: &dyn PodLookup,
    ) -> Self {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut pods = Vec::new();
        let mut slot = Vec::with_capacity(rows.len());
        for (_, a) in &rows {
            slot.push(match &a.cgroup.container_id {
                Some(id) => *ids.entry(id.as_str()).or_insert_with(|| {
                    pods.push(
                        lookup
                            .by_container(id)
                            .map(Identity::Pod)
                            .or_else(|| lookup.runtime_container(id).map(Identity::Runtime)),
                    );
                    (pods.len() - 1) as u32
                }),
                None => NO_CONTAINER,
            });
        }
        // Rank the containers by (namespace, workload, container), as the segment sorts rows;
        // equal names share a rank, and rows without a pod (or container) have none.
        let names = |i: usize| {
            pods.get(i)
                .and_then(Option::as_ref)
                .map_or((None, None, None), Identity::sort_names)
        };
        let mut by_name: Vec<usize> = (0..=pods.len()).collect();
        by_name.sort_by(|&a, &b| names(a).cmp(&names(b)));
        let mut rank = vec![0u32; pods.len() + 1];
        let mut r = 0u32;
        for (k, &i) in by_name.iter().enumerate() {
            if k > 0 && names(by_name[k - 1]) != names(i) {
                r += 1;
            }
            rank[i] = r;
        }
        let no_pod = pods.len();
        let ts = |a: &Agg| (a.first as i64).saturating_add(mono_to_real);
        let mut keyed: Vec<(i64, u32, Op, i64, u32)> = rows
            .iter()
            .zip(&slot)
            .enumerate()
            .map(|(i, ((k, a), &s))| {
                let s = if s == NO_CONTAINER {
                    no_pod
                } else {
                    s as usize
                };
                let t = ts(a);
                (t.div_euclid(HOUR_NS), rank[s], op_of(k.kind), t, i as u32)
            })
            .collect();
        keyed.sort_unstable();
        let mut hours = Vec::new();
        let mut begin = 0;
        for k in 1..=keyed.len() {
            if k == keyed.len() || keyed[k].0 != keyed[begin].0 {
                hours.push(begin..k);
                begin = k;
            }
        }
        let order = keyed.into_iter().map(|k| k.4).collect();
        DrainedWindow {
            node,
            cluster,
            mono_to_real,
            rows,
            slot,
            pods,
            order,
            hours,
        }
    }

    /// Distinct behaviours (rows).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Node stamped on the rows.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The rows of each hour (each a segment), earliest first.
    pub fn hours(&self) -> Vec<WindowHour<'_>> {
        self.hours
            .iter()
            .map(|r| WindowHour {
                window: self,
                order: &self.order[r.clone()],
            })
            .collect()
    }

    /// Writes the window into `dir`, one segment per hour ([`DataDir::write_rows`]).
    pub fn write_to(
        &self,
        dir: &mut DataDir,
        meta: &SegmentMeta,
        now_ns: i64,
    ) -> Result<WriteOutcome, ContractError> {
        let hours = self.hours();
        let segments: Vec<&dyn SegmentRows> = hours.iter().map(|h| h as &dyn SegmentRows).collect();
        dir.write_rows(&self.node, &segments, meta, now_ns)
    }

    /// Every row as an event, in segment order.
    pub fn into_events(self) -> Vec<Event> {
        self.order.iter().map(|&i| self.event(i as usize)).collect()
    }

    fn event(&self, i: usize) -> Event {
        let (key, a) = &self.rows[i];
        let mut e = Event {
            ts_first: (a.first as i64).saturating_add(self.mono_to_real),
            ts_last: (a.last as i64).saturating_add(self.mono_to_real),
            count: a.count,
            cluster: self.cluster.clone(),
            node: self.node.clone(),
            pid: Some(a.pid as i32),
            ppid: Some(a.ppid as i32),
            uid: Some(key.uid),
            process: Some(a.exe.to_string()),
            parent_process: a.parent.as_ref().map(|p| p.to_string()),
            args: a.args.clone(),
            source: Source::Ebpf,
            result: Some(result_text(key.ret)),
            ..Event::default()
        };
        match &a.cgroup.container_id {
            Some(id) => {
                e.container_id = Some(id.clone());
                e.pod_uid = a.cgroup.pod_uid.clone();
                let info = self
                    .pods
                    .get(self.slot[i] as usize)
                    .and_then(Option::as_ref);
                match info {
                    Some(Identity::Pod(p)) => {
                        e.namespace = Some(p.namespace.clone());
                        e.pod = Some(p.pod.clone());
                        e.pod_uid = Some(p.pod_uid.clone());
                        e.container = Some(p.container.clone());
                        e.image = p.image.clone();
                        e.workload_kind = p.workload_kind.clone();
                        e.workload = p.workload.clone();
                        e.labels = p.labels.clone();
                    }
                    Some(Identity::Runtime(c)) => {
                        e.namespace = c.namespace.clone();
                        e.pod = c.pod.clone();
                        e.container = Some(c.name.clone());
                        e.image = c.image.clone();
                        e.labels = c.labels.clone();
                    }
                    None => {}
                }
            }
            None => e.host = true,
        }
        fill_operation(&mut e, key, a.path.clone());
        e
    }
}

/// Who a container of a window is: a pod's, or one its runtime names.
enum Identity {
    Pod(PodInfo),
    Runtime(Arc<RuntimeContainer>),
}

impl Identity {
    /// (namespace, workload, container), as segments sort rows.
    fn sort_names(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match self {
            Identity::Pod(p) => (
                Some(p.namespace.as_str()),
                p.workload.as_deref(),
                Some(p.container.as_str()),
            ),
            Identity::Runtime(c) => (c.namespace.as_deref(), None, Some(c.name.as_str())),
        }
    }
}

/// The rows of one hour of a [`DrainedWindow`]: one segment.
pub struct WindowHour<'a> {
    window: &'a DrainedWindow,
    order: &'a [u32],
}

impl SegmentRows for WindowHour<'_> {
    fn row_count(&self) -> usize {
        self.order.len()
    }

    fn time_range(&self) -> (i64, i64) {
        let w = self.window;
        let mut range: Option<(i64, i64)> = None;
        for &i in self.order {
            let a = &w.rows[i as usize].1;
            let (f, l) = (
                (a.first as i64).saturating_add(w.mono_to_real),
                (a.last as i64).saturating_add(w.mono_to_real),
            );
            range = Some(range.map_or((f, l), |(x, y)| (x.min(f), y.max(l))));
        }
        range.unwrap_or((0, 0))
    }

    fn events_seen(&self) -> u64 {
        self.order
            .iter()
            .map(|&i| self.window.rows[i as usize].1.count)
            .sum()
    }

    fn events(&self, range: Range<usize>, out: &mut Vec<Event>) {
        out.extend(
            self.order[range]
                .iter()
                .map(|&i| self.window.event(i as usize)),
        );
    }
}

/// The names (leaf, parent) of the cgroups in `ids`, found under the cgroup v2 mount by
/// their id (the cgroup directory's inode number); the root cgroup's are empty. For cgroups
/// whose tasks made no recorded event carrying their names (started before the collector).
fn cgroups_by_id(ids: &HashSet<u64>) -> HashMap<u64, (String, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut found = HashMap::new();
    let Some(root) = cgroup2_mount() else {
        return found;
    };
    // Depth-first, bounded: (directory, its name, its parent's name, depth).
    let mut stack = vec![(root, String::new(), String::new(), 0usize)];
    let mut visited = 0usize;
    while let Some((dir, name, parent, depth)) = stack.pop() {
        visited += 1;
        if visited > 200_000 || found.len() == ids.len() {
            break;
        }
        if let Ok(meta) = std::fs::metadata(&dir) {
            if ids.contains(&meta.ino()) {
                found.insert(meta.ino(), (name.clone(), parent.clone()));
            }
        }
        if depth >= 16 {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let child = entry.file_name().to_string_lossy().into_owned();
                stack.push((entry.path(), child, name.clone(), depth + 1));
            }
        }
    }
    found
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or beside v1 controllers).
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "cgroup2").then(|| std::path::PathBuf::from(f[1]))
    })
}

/// The operation of a key's kind, as [`fill_operation`] sets it.
fn op_of(kind: u8) -> Op {
    if kind == Kind::Syscall as u8 {
        Op::Syscall
    } else if kind == Kind::Capability as u8 {
        Op::Capability
    } else if kind == Kind::Exec as u8 {
        Op::Process
    } else if kind == Kind::File as u8 || (Kind::Unlink as u8..=Kind::Chown as u8).contains(&kind) {
        Op::File
    } else {
        Op::Network
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
        // Path look-up failures, as KubeArmor words them: the simulator tells them from
        // denials (they fail before any enforcer hook).
        20 => "Not a directory".into(),
        36 => "File name too long".into(),
        40 => "Too many levels of symbolic links".into(),
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
        k if k == Kind::Syscall as u8 => {
            e.op = Op::Syscall;
            e.syscall = Some(syscall_nr_name(key.sys).into_owned());
        }
        k if k == Kind::Capability as u8 => {
            e.op = Op::Capability;
            e.capability = Some(capability_name(key.sys).into_owned());
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
    use crate::attribution::{NoPods, PodInfo};
    use crate::raw::RawEvent;

    const ID: &str = "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000";

    /// Results use KubeArmor's words (its `errMsg` table), which the simulator relies on to
    /// tell look-up failures from denials.
    #[test]
    fn results_are_worded_as_kubearmor_words_them() {
        assert_eq!(result_text(0), "Passed");
        assert_eq!(result_text(-2), "No such file or directory");
        assert_eq!(result_text(-20), "Not a directory");
        assert_eq!(result_text(-13), "Permission denied");
        assert_eq!(result_text(-1), "Operation not permitted");
        assert_eq!(result_text(-22), "errno 22");
    }

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

    /// A pod watch that learns the container's pod only once told to.
    struct LateWatch(std::sync::atomic::AtomicBool);
    impl PodLookup for LateWatch {
        fn by_container(&self, id: &str) -> Option<PodInfo> {
            if self.0.load(std::sync::atomic::Ordering::Relaxed) {
                OnePod.by_container(id)
            } else {
                None
            }
        }
        fn learns_later(&self) -> bool {
            true
        }
    }

    fn file_at(path: &'static [u8], t: u64) -> RawEvent<'static> {
        let mut f = container_event(Kind::File);
        f.path = path;
        f.ts_mono_ns = t;
        f
    }

    #[test]
    fn rows_of_a_pod_the_watch_has_not_seen_yet_wait_one_window() {
        let watch = LateWatch(false.into());
        let mut p = Pipeline::new(cfg());
        for t in 0..3 {
            p.handle(&file_at(b"/etc/web.conf", 100 + t));
        }
        let mut host = RawEvent::empty(Kind::File);
        host.path = b"/etc/hosts";
        host.ts_mono_ns = 150;
        p.handle(&host);
        // First flush: the pod is unknown, so only the host row is written.
        let first = p.drain_window_holding(1_000, &watch).into_events();
        assert_eq!(first.len(), 1, "{first:#?}");
        assert!(first[0].host);
        assert_eq!(p.rows(), 1);
        assert_eq!(p.raw_events(), 3);
        // The watch catches up; the behaviour goes on in the next window.
        watch.0.store(true, std::sync::atomic::Ordering::Relaxed);
        p.handle(&file_at(b"/etc/web.conf", 500));
        let second = p.drain_window_holding(1_000, &watch).into_events();
        assert_eq!(second.len(), 1, "{second:#?}");
        let row = &second[0];
        assert_eq!(row.pod.as_deref(), Some("web-1"));
        assert_eq!((row.count, row.ts_first, row.ts_last), (4, 1_100, 1_500));
        assert_eq!(p.rows(), 0);
    }

    #[test]
    fn a_row_is_kept_back_once_and_never_without_a_watch_or_at_the_last_flush() {
        let watch = LateWatch(false.into());
        let mut p = Pipeline::new(cfg());
        p.handle(&file_at(b"/a", 1));
        assert!(p.drain_window_holding(0, &watch).into_events().is_empty());
        let second = p.drain_window_holding(0, &watch).into_events();
        assert_eq!(second.len(), 1, "written unattributed after one window");
        assert_eq!(second[0].pod, None);
        assert_eq!(second[0].container_id.as_deref(), Some(ID));
        // No watch: nothing to wait for.
        p.handle(&file_at(b"/b", 2));
        assert_eq!(p.drain_window_holding(0, &NoPods).into_events().len(), 1);
        // The last flush keeps nothing back.
        p.handle(&file_at(b"/c", 3));
        assert_eq!(p.drain_window(0, &watch).into_events().len(), 1);
        assert_eq!(p.rows(), 0);
    }

    /// The kernel's system call and capability counts become `op = syscall` and
    /// `op = capability` rows in KubeArmor's spelling, named by the executable whose exec
    /// record carried the same kernel identity, attributed to the exec's container.
    #[test]
    fn kernel_counts_become_syscall_and_capability_rows() {
        use crate::raw::{decode_counted, encode_counted};
        let mut p = Pipeline::new(cfg());
        let mut exec = container_event(Kind::Exec);
        exec.path = b"/usr/bin/web";
        exec.exe_id = 0xffff_8880_1234_0000;
        exec.ts_mono_ns = 100;
        p.handle(&exec);
        // Another process execs the same file by another path, later: the counts of the
        // first process keep the path it exec'd.
        let mut link = exec;
        link.pid = 4_000_002;
        link.path = b"/srv/web-link";
        link.ts_mono_ns = 101;
        p.handle(&link);
        let counted = |item, count, first_ns, exe_id| Counted {
            cgroup_id: 9,
            exe_id,
            gen: 0,
            item,
            count,
            first_ns,
            pid: 4_000_001,
            ppid: 4_000_000,
            uid: 0,
            comm: b"web",
        };
        let raw: Vec<_> = [
            counted(CountedItem::Syscall(0), 7, 150, exec.exe_id),
            counted(CountedItem::Syscall(257), 3, 120, exec.exe_id),
            counted(CountedItem::Syscall(999), 1, 130, exec.exe_id),
            counted(
                CountedItem::Capability {
                    cap: 0,
                    denied: false,
                },
                1,
                140,
                exec.exe_id,
            ),
            counted(
                CountedItem::Capability {
                    cap: 13,
                    denied: true,
                },
                2,
                160,
                exec.exe_id,
            ),
            // Same item from a second generation's entry: folded into the same row.
            counted(CountedItem::Syscall(0), 5, 110, exec.exe_id),
        ]
        .iter()
        .map(encode_counted)
        .collect();
        let decoded: Vec<Counted<'_>> = raw.iter().map(|(k, v)| decode_counted(k, v)).collect();
        assert_eq!(
            decoded[4].item,
            CountedItem::Capability {
                cap: 13,
                denied: true
            }
        );
        p.add_counted(&decoded, 500);
        assert_eq!(p.raw_events(), 2 + 7 + 3 + 1 + 1 + 2 + 5);
        let rows = p.drain(1_000, &OnePod);
        let row = |op: Op, name: &str| -> Event {
            rows.iter()
                .find(|e| {
                    e.op == op
                        && (e.syscall.as_deref() == Some(name)
                            || e.capability.as_deref() == Some(name))
                })
                .unwrap_or_else(|| panic!("no {op:?} row {name} in {rows:#?}"))
                .clone()
        };
        let read = row(Op::Syscall, "SYS_READ");
        assert_eq!(
            (read.count, read.ts_first, read.ts_last),
            (12, 1_110, 1_500)
        );
        assert_eq!(read.process.as_deref(), Some("/usr/bin/web"));
        assert_eq!(read.result.as_deref(), Some("Passed"));
        assert_eq!(read.pod.as_deref(), Some("web-1"));
        assert_eq!(read.container_id.as_deref(), Some(ID));
        assert_eq!(read.capability, None);
        assert_eq!(row(Op::Syscall, "SYS_OPENAT").count, 3);
        assert_eq!(row(Op::Syscall, "SYS_999").count, 1);
        let chown = row(Op::Capability, "CAP_CHOWN");
        assert_eq!((chown.count, chown.result.as_deref()), (1, Some("Passed")));
        assert_eq!(chown.syscall, None);
        let raw_sock = row(Op::Capability, "CAP_NET_RAW");
        assert_eq!(
            (raw_sock.count, raw_sock.result.as_deref()),
            (2, Some("Operation not permitted"))
        );
        // The two exec rows and five counted rows.
        assert_eq!(rows.len(), 7, "{rows:#?}");
    }

    /// An executable whose exec was not seen is named from its first caller's pid (here the
    /// test process itself, through /proc), and a cgroup no record named is found under the
    /// cgroup v2 mount by its id.
    #[test]
    fn counts_of_unseen_execs_and_cgroups_are_named_from_proc_and_cgroupfs() {
        use std::os::unix::fs::MetadataExt;
        let mut p = Pipeline::new(cfg());
        let me = std::process::id();
        let own = std::fs::read_link("/proc/self/exe").unwrap();
        let cgroup_id = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| {
                let rel = c.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
                let root = cgroup2_mount()?;
                std::fs::metadata(root.join(rel.trim_start_matches('/')))
                    .ok()
                    .map(|m| m.ino())
            });
        let c = Counted {
            cgroup_id: cgroup_id.unwrap_or(1),
            exe_id: 42,
            gen: 0,
            item: CountedItem::Syscall(39),
            count: 4,
            first_ns: 10,
            pid: me,
            ppid: 1,
            uid: 0,
            comm: b"x",
        };
        p.add_counted(&[c], 20);
        let rows = p.drain(0, &NoPods);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].syscall.as_deref(), Some("SYS_GETPID"));
        assert_eq!(
            rows[0].process.as_deref(),
            Some(own.to_string_lossy().as_ref())
        );
        if cgroup_id.is_some() {
            assert_eq!(p.unknown_cgroups(), 0, "the cgroup was found by its id");
        }
    }

    /// A process whose exec the kernel only counted is named by its own container's exec
    /// record of the image, even when the host then runs the same file by another path
    /// (`/usr/bin/cat` is `/bin/cat`): CI's shell did exactly that during the probe test.
    #[test]
    fn counted_execs_are_named_by_their_own_cgroups_exec_record() {
        let mut p = Pipeline::new(cfg());
        let mut exec = container_event(Kind::Exec);
        exec.path = b"/bin/cat";
        exec.exe_id = 0xffff_8880_0000_0c47;
        p.handle(&exec);
        let mut host = RawEvent::empty(Kind::Exec);
        host.cgroup_id = 1;
        host.pid = 77;
        host.ppid = 1;
        host.path = b"/usr/bin/cat";
        host.exe_id = exec.exe_id;
        p.handle(&host);
        // Another cat in the container, whose exec was only counted, reads a file.
        let mut read = container_event(Kind::File);
        read.pid = 4_000_002;
        read.exe_id = exec.exe_id;
        read.path = b"/etc/note";
        p.handle(&read);
        // A cgroup with no exec record of its own falls back to the latest name.
        let mut other = RawEvent::empty(Kind::File);
        other.cgroup_id = 2;
        other.pid = 88;
        other.exe_id = exec.exe_id;
        other.path = b"/etc/other";
        p.handle(&other);
        let rows = p.drain(1_000, &OnePod);
        let by_path = |path: &str| {
            rows.iter()
                .find(|e| e.path.as_deref() == Some(path))
                .and_then(|e| e.process.clone())
        };
        assert_eq!(
            by_path("/etc/note").as_deref(),
            Some("/bin/cat"),
            "{rows:#?}"
        );
        assert_eq!(
            by_path("/etc/other").as_deref(),
            Some("/usr/bin/cat"),
            "{rows:#?}"
        );
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

    /// Paths sent in two parts (a directory defined by one record, named by id in later ones)
    /// give the rows whole paths give; a directory is forgotten with its generation, and a
    /// record that names one no record defined keeps its leaf under `/…/`.
    #[test]
    fn directories_sent_once_give_the_rows_whole_paths_give() {
        let paths = [
            "/srv/data/a.txt",
            "/srv/data/b.txt",
            "/srv/data/c.txt",
            "/srv/x",
        ];
        let whole: Vec<(u32, Vec<u8>)> = paths.iter().map(|p| crate::raw::comps_of(p)).collect();
        let event = |ncomps: u32, comps: &'static [u8], dir: u64, ts: u64| {
            let mut f = container_event(Kind::Chmod);
            f.ncomps = ncomps;
            f.comps = comps;
            f.dir = dir;
            f.ts_mono_ns = ts;
            f
        };
        let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
        let mut every = Pipeline::new(cfg());
        for (i, (n, c)) in whole.iter().enumerate() {
            every.handle(&event(*n, leak(c.clone()), 0, 100 + i as u64));
        }
        let mut split = Pipeline::new(cfg());
        // The first file defines /srv/data as directory 7; the next two send their leaves.
        let (n, c) = &whole[0];
        split.handle(&event(n | COMPS_DIR_DEF, leak(c.clone()), 7, 100));
        split.handle(&event(1 | COMPS_DIR_REF, b"b.txt\0", 7, 101));
        split.handle(&event(1 | COMPS_DIR_REF, b"c.txt\0", 7, 102));
        let (n, c) = &whole[3];
        split.handle(&event(*n, leak(c.clone()), 0, 103));
        assert_eq!(split.unknown_dirs(), 0);
        let (a, b) = (every.drain(5, &OnePod), split.drain(5, &OnePod));
        assert_eq!(a.len(), 4);
        assert_eq!(sorted(a), sorted(b));
        // The next generation: directory 7 is unknown there.
        split.handle(&event(1 | COMPS_DIR_REF, b"d.txt\0", 7, 200));
        assert_eq!(split.unknown_dirs(), 1);
        let rows = split.drain(5, &OnePod);
        let paths: Vec<_> = rows.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, [Some("/\u{2026}/d.txt")]);
    }

    #[test]
    fn kernel_counted_repeats_give_the_same_rows_as_every_event() {
        let key_of = |gen: u32, tag: u8| {
            let mut k = [0u8; crate::raw::KEY_SIZE];
            k[0] = tag;
            k[crate::raw::KEY_OFF_GEN..crate::raw::KEY_OFF_GEN + 4]
                .copy_from_slice(&gen.to_le_bytes());
            k
        };
        let (n, comps) = crate::raw::comps_of("/etc/hosts");
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
        p.defer(&crate::raw::encode(&next));
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

    /// Pods for half of the synthetic feed's containers, in a few namespaces and workloads.
    struct SomePods;
    impl PodLookup for SomePods {
        fn by_container(&self, id: &str) -> Option<PodInfo> {
            let n = u64::from_str_radix(&id[56..], 16).ok()?;
            (n % 2 == 0).then(|| PodInfo {
                namespace: format!("ns-{}", n % 3),
                pod: format!("pod-{n}"),
                pod_uid: format!("uid-{n}"),
                container: format!("c-{}", n % 5),
                workload_kind: (n % 4 == 0).then(|| "Deployment".to_string()),
                workload: (n % 4 == 0).then(|| format!("wl-{}", n % 7)),
                labels: vec![format!("app=a{}", n % 3), "tier=x".into()],
                image: Some("img:1".into()),
            })
        }
    }

    /// A window of many rows: synthetic records of 60 containers (more rows than one encoding
    /// chunk), host connects and a file event of an unknown cgroup.
    fn busy_pipeline() -> Pipeline {
        let mut p = Pipeline::new(cfg());
        let mut feed = crate::synthetic::SyntheticFeed::new(60);
        for i in 0..30_000u64 {
            let rec = feed.next_record(i * 1_000);
            p.handle(&decode(&rec).unwrap());
        }
        let mut c = RawEvent::empty(Kind::Connect);
        c.pid = u32::MAX - 5;
        c.family = 2;
        c.proto = 17;
        c.raddr[..4].copy_from_slice(&[10, 0, 0, 9]);
        for port in [53, 123, 53] {
            c.rport = port;
            c.ts_mono_ns = 15_000_000 + u64::from(port);
            p.handle(&c);
        }
        let mut h = RawEvent::empty(Kind::Chmod);
        h.cgroup_id = 404;
        h.path = b"/etc/x";
        p.handle(&h);
        p
    }

    /// The segments of a data directory, read back: (events seen, windows, rows in file order).
    fn segments(dir: &std::path::Path) -> Vec<(u64, u64, Vec<Event>)> {
        let mut out: Vec<_> = karmor_contract::bundle::parquet_files(dir)
            .unwrap()
            .iter()
            .map(|f| {
                let (meta, rows) = karmor_contract::segment::read_segment(f).unwrap();
                (meta.events_seen, meta.windows, rows)
            })
            .collect();
        out.sort_by_key(|s| s.2[0].ts_first.div_euclid(HOUR_NS));
        out
    }

    #[test]
    fn drained_windows_write_the_segments_the_event_path_writes() {
        use crate::datadir::{DataDir, Retention};
        use karmor_contract::schema::schema_version;
        // The window straddles an hour: its rows go to two segments.
        let mono_to_real = 20 * HOUR_NS - 12_000_000;
        let meta = SegmentMeta {
            schema_version: schema_version(),
            events_seen: 30_004,
            events_dropped: 3,
            windows: 1,
            ..SegmentMeta::default()
        };
        let ret = Retention {
            max_bytes: 0,
            max_age: None,
        };
        let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut old = DataDir::open(old_dir.path(), "t", ret).unwrap();
        let rows = busy_pipeline().drain(mono_to_real, &SomePods);
        let raw: u64 = rows.iter().map(|e| e.count).sum();
        assert_eq!(raw, 30_004);
        old.write(rows, &meta, 0).unwrap();
        let mut new = DataDir::open(new_dir.path(), "t", ret).unwrap();
        let mut p = busy_pipeline();
        let window = p.drain_window(mono_to_real, &SomePods);
        assert_eq!(p.rows(), 0);
        let out = window.write_to(&mut new, &meta, 0).unwrap();
        assert_eq!(out.written.len(), 2, "one segment per hour");
        assert_eq!(
            out.written.iter().map(|f| f.rows).sum::<u64>(),
            window.row_count() as u64
        );
        let (a, b) = (segments(old_dir.path()), segments(new_dir.path()));
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 2);
        let mut chunked = false;
        for ((seen_a, win_a, rows_a), (seen_b, win_b, rows_b)) in a.into_iter().zip(b) {
            assert_eq!((seen_a, win_a), (seen_b, win_b));
            chunked |= rows_b.len() > karmor_contract::segment::ENCODE_CHUNK_ROWS;
            // Rows are in segment order in the file…
            let mut sorted_b = rows_b.clone();
            karmor_contract::segment::sort_events(&mut sorted_b);
            let order = |v: &[Event]| {
                v.iter()
                    .map(|e| {
                        (
                            e.namespace.clone(),
                            e.workload.clone(),
                            e.container.clone(),
                            e.op,
                            e.ts_first,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(order(&rows_b), order(&sorted_b));
            // … and the same rows, with the same counts, as the event path wrote.
            assert_eq!(sorted(rows_a), sorted(rows_b));
        }
        assert!(chunked, "a segment spanned several encoding chunks");
        assert_eq!(new.manifest().totals.events_seen, 30_004);
        assert_eq!(
            old.manifest().totals.events_seen,
            new.manifest().totals.events_seen
        );
    }

    #[test]
    fn window_bytes_count_the_table_and_the_strings() {
        let mut p = Pipeline::new(cfg());
        let entry = std::mem::size_of::<(Key, Agg)>();
        let mut f = container_event(Kind::File);
        let long = format!("/{}", "x".repeat(4000));
        f.path = long.as_bytes();
        p.handle(&f);
        assert!(p.window_bytes() >= 4000, "{}", p.window_bytes());
        let paths: Vec<String> = (0..5000).map(|i| format!("/d/{i}")).collect();
        for path in &paths {
            f.path = path.as_bytes();
            p.handle(&f);
        }
        assert_eq!(p.rows(), 5001);
        assert!(p.window_bytes() >= 5001 * entry + 4000);
        let full = p.window_bytes();
        p.drain(0, &NoPods);
        // The table is kept for the next window; its strings are gone.
        assert!(p.window_bytes() <= full - 4000);
        assert!(p.window_bytes() >= 5001 * entry);
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

    /// A container no pod holds takes its runtime's name, image and labels; the pod watch
    /// wins when it knows the container; host rows stay host rows.
    #[test]
    fn containers_no_pod_holds_are_named_by_their_runtime() {
        struct Runtime<P>(P);
        impl<P: PodLookup> PodLookup for Runtime<P> {
            fn by_container(&self, id: &str) -> Option<PodInfo> {
                self.0.by_container(id)
            }
            fn runtime_container(&self, id: &str) -> Option<Arc<RuntimeContainer>> {
                (id == ID).then(|| {
                    Arc::new(RuntimeContainer {
                        name: "edge-cache".into(),
                        image: Some("redis:7".into()),
                        labels: vec!["site=plant-4".into()],
                        ..RuntimeContainer::default()
                    })
                })
            }
        }
        let run = |lookup: &dyn PodLookup| {
            let mut p = Pipeline::new(cfg());
            let mut f = container_event(Kind::File);
            f.path = b"/data/dump.rdb";
            p.handle(&f);
            let mut host = RawEvent::empty(Kind::File);
            host.path = b"/etc/hosts";
            p.handle(&host);
            p.drain(0, lookup)
        };
        let rows = run(&Runtime(NoPods));
        let c = rows.iter().find(|r| !r.host).expect("container row");
        assert_eq!(c.container.as_deref(), Some("edge-cache"));
        assert_eq!(c.image.as_deref(), Some("redis:7"));
        assert_eq!(c.labels, vec!["site=plant-4"]);
        assert_eq!(c.container_id.as_deref(), Some(ID));
        assert!(c.namespace.is_none() && c.pod.is_none() && c.workload.is_none());
        let h = rows.iter().find(|r| r.host).expect("host row");
        assert!(h.container.is_none() && h.container_id.is_none());

        let rows = run(&Runtime(OnePod));
        let c = rows.iter().find(|r| !r.host).expect("container row");
        assert_eq!(c.container.as_deref(), Some("web"), "the pod watch wins");
        assert_eq!(c.namespace.as_deref(), Some("shop"));
    }
}
