//! Attribution: which container, pod and program an event belongs to.
//!
//! The kernel hands us the names of the task's cgroup and of its parent, read at event time.
//! Container runtimes name them predictably, so the container id (and often the pod uid) comes
//! from the names alone, without the runtime's socket:
//!
//! | runtime / driver | cgroup (leaf) | parent |
//! |---|---|---|
//! | containerd, systemd | `cri-containerd-<id>.scope` | `kubepods-burstable-pod<uid_with_underscores>.slice` |
//! | CRI-O, systemd | `crio-<id>.scope` | same |
//! | Docker, systemd | `docker-<id>.scope` | `system.slice` |
//! | any, cgroupfs (v1 or v2) | `<id>` | `pod<uid>` |
//!
//! | nerdctl, systemd | `nerdctl-<id>.scope` | `system.slice` |
//! | Podman, systemd | `libpod-<id>.scope` | `machine.slice` |
//!
//! `<id>` is 64 hex characters. The pod is then found through a [`PodLookup`] (a watch of this
//! node's pods, or nothing with `--no-kube`); a container no pod holds is named from its
//! runtime's on-disk state ([`runtime_state`], wrapped around the pod lookup by
//! [`WithRuntimeState`]).

pub mod runtime_state;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use runtime_state::{RuntimeContainer, RuntimeRoots, RuntimeState};

/// What is known about a pod's container, from the Kubernetes API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Container name.
    pub container: String,
    /// Image.
    pub image: Option<String>,
    /// Owning workload kind (Deployment through its ReplicaSet, CronJob through its Job).
    pub workload_kind: Option<String>,
    /// Owning workload name.
    pub workload: Option<String>,
    /// Labels, sorted `k=v`.
    pub labels: Vec<String>,
}

/// Finds the pod of a container id.
pub trait PodLookup: Send + Sync {
    /// The pod and container that run `container_id`, if known.
    fn by_container(&self, container_id: &str) -> Option<PodInfo>;

    /// Whether a container unknown now may become known (a watch that is still catching up),
    /// so that its rows are worth keeping back for a window.
    fn learns_later(&self) -> bool {
        false
    }

    /// The container `container_id` as its runtime names it, for a container that no pod
    /// holds (Docker, containerd or Podman outside Kubernetes). Asked only when
    /// [`PodLookup::by_container`] does not know the container: the pod watch wins.
    fn runtime_container(&self, _container_id: &str) -> Option<Arc<RuntimeContainer>> {
        None
    }

    /// This node's pods table (design §3): every address span the lookup knows, written
    /// beside the segments. Empty without a pod watch.
    fn pod_addresses(&self) -> Vec<karmor_contract::pods::PodAddress> {
        Vec::new()
    }
}

/// A pod lookup that also names the containers no pod holds, from the runtimes' on-disk
/// state.
pub struct WithRuntimeState {
    pods: Arc<dyn PodLookup>,
    state: RuntimeState,
}

impl WithRuntimeState {
    /// `pods`, and `state` for what they do not know.
    pub fn new(pods: Arc<dyn PodLookup>, state: RuntimeState) -> Self {
        WithRuntimeState { pods, state }
    }
}

impl PodLookup for WithRuntimeState {
    fn by_container(&self, container_id: &str) -> Option<PodInfo> {
        self.pods.by_container(container_id)
    }

    fn learns_later(&self) -> bool {
        self.pods.learns_later()
    }

    fn runtime_container(&self, container_id: &str) -> Option<Arc<RuntimeContainer>> {
        self.state.lookup(container_id)
    }

    fn pod_addresses(&self) -> Vec<karmor_contract::pods::PodAddress> {
        self.pods.pod_addresses()
    }
}

/// No Kubernetes: containers are known by id only.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPods;

impl PodLookup for NoPods {
    fn by_container(&self, _: &str) -> Option<PodInfo> {
        None
    }
}

/// Identity of a cgroup, as parsed from its names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupIdentity {
    /// Container id, when the cgroup is a container's.
    pub container_id: Option<String>,
    /// Pod uid, when the parent cgroup names it.
    pub pod_uid: Option<String>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses the container id and pod uid out of cgroup names.
pub fn parse_cgroup(leaf: &str, parent: &str) -> CgroupIdentity {
    let mut id = None;
    let core = leaf.strip_suffix(".scope").unwrap_or(leaf);
    for prefix in [
        "cri-containerd-",
        "crio-",
        "docker-",
        "libpod-",
        "nerdctl-",
        "",
    ] {
        if let Some(rest) = core.strip_prefix(prefix) {
            if is_hex64(rest) {
                id = Some(rest.to_ascii_lowercase());
                break;
            }
        }
    }
    let pod_uid = id.as_ref().and_then(|_| {
        let p = parent.strip_suffix(".slice").unwrap_or(parent);
        let uid = p
            .rsplit_once("-pod")
            .map(|(_, u)| u)
            .or_else(|| p.strip_prefix("pod"))?;
        let uid = uid.replace('_', "-");
        (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
    });
    CgroupIdentity {
        container_id: id,
        pod_uid,
    }
}

/// A known process: its executable, parent and arguments.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    /// Executable path.
    pub exe: Arc<str>,
    /// Parent pid.
    pub ppid: u32,
    /// The kernel's identity of the executable (records' `exe_id`), 0 when not known (learnt
    /// from `/proc`, or from a caller that did not give it).
    pub exe_id: u64,
}

/// Executables of live processes, learnt from exec events, with `/proc` as a fallback for
/// processes that started before the collector. Bounded: the oldest half is forgotten when
/// full.
///
/// Parents that `/proc` does not know (gone, or in another pid namespace) are remembered as
/// missing until [`ProcessTable::forget_missing`] (each window flush), an exec of that pid or
/// its exit, so that their children's events do not cost a failed `readlink` each.
pub struct ProcessTable {
    procs: HashMap<u32, ProcInfo>,
    missing: HashSet<u32>,
    capacity: usize,
    proc_root: std::path::PathBuf,
}

impl ProcessTable {
    /// A table holding at most `capacity` processes, reading `/proc` for unknown ones.
    pub fn new(capacity: usize) -> Self {
        Self {
            procs: HashMap::new(),
            missing: HashSet::new(),
            capacity: capacity.max(16),
            proc_root: "/proc".into(),
        }
    }

    /// Records an exec.
    pub fn exec(&mut self, pid: u32, ppid: u32, exe: Arc<str>) {
        self.exec_id(pid, ppid, exe, 0);
    }

    /// Records an exec whose executable the kernel identifies as `exe_id` (0: unknown).
    pub fn exec_id(&mut self, pid: u32, ppid: u32, exe: Arc<str>, exe_id: u64) {
        if self.procs.len() >= self.capacity && !self.procs.contains_key(&pid) {
            // Forget an arbitrary half; /proc fills the gaps for processes still alive.
            let drop: Vec<u32> = self.procs.keys().step_by(2).copied().collect();
            for p in drop {
                self.procs.remove(&p);
            }
        }
        self.missing.remove(&pid);
        self.procs.insert(pid, ProcInfo { exe, ppid, exe_id });
    }

    /// Forgets an exited process.
    pub fn exit(&mut self, pid: u32) {
        self.procs.remove(&pid);
        self.missing.remove(&pid);
    }

    /// Forgets which parents `/proc` did not know, so that they are looked up again.
    pub fn forget_missing(&mut self) {
        self.missing.clear();
    }

    /// Number of processes held.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The executable `pid` was learnt with, and its kernel identity (0: unknown).
    pub fn known(&self, pid: u32) -> Option<(Arc<str>, u64)> {
        self.procs.get(&pid).map(|p| (p.exe.clone(), p.exe_id))
    }

    /// The executable of `pid`: learnt, else `/proc/<pid>/exe`, else the command name.
    pub fn exe(&mut self, pid: u32, ppid: u32, comm: &[u8]) -> Arc<str> {
        if let Some(p) = self.procs.get(&pid) {
            return p.exe.clone();
        }
        let exe: Arc<str> =
            match std::fs::read_link(self.proc_root.join(pid.to_string()).join("exe")) {
                Ok(path) => Arc::from(path.to_string_lossy().trim_end_matches(" (deleted)")),
                Err(_) if pid == 0 => Arc::from("[kernel]"),
                Err(_) => Arc::from(String::from_utf8_lossy(comm).as_ref()),
            };
        if pid != 0 {
            self.exec(pid, ppid, exe.clone());
        }
        exe
    }

    /// The executable of the parent of a process, if known or readable.
    pub fn parent_exe(&mut self, ppid: u32) -> Option<Arc<str>> {
        if ppid == 0 {
            return None;
        }
        if let Some(p) = self.procs.get(&ppid) {
            return Some(p.exe.clone());
        }
        if self.missing.contains(&ppid) {
            return None;
        }
        let Ok(path) = std::fs::read_link(self.proc_root.join(ppid.to_string()).join("exe")) else {
            if self.missing.len() >= self.capacity {
                self.missing.clear();
            }
            self.missing.insert(ppid);
            return None;
        };
        let exe: Arc<str> = Arc::from(path.to_string_lossy().trim_end_matches(" (deleted)"));
        self.exec(ppid, 0, exe.clone());
        Some(exe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const ID: &str = "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000";

    #[test]
    fn runtime_cgroup_names() {
        let pod = "kubepods-burstable-pod3b4e5c1a_9d2f_4c6b_8a7e_1f2d3c4b5a69.slice";
        let want_uid = Some("3b4e5c1a-9d2f-4c6b-8a7e-1f2d3c4b5a69".to_string());
        for leaf in [
            format!("cri-containerd-{ID}.scope"),
            format!("crio-{ID}.scope"),
            format!("docker-{ID}.scope"),
            format!("libpod-{ID}.scope"),
            format!("nerdctl-{ID}.scope"),
            ID.to_string(),
        ] {
            let c = parse_cgroup(&leaf, pod);
            assert_eq!(c.container_id.as_deref(), Some(ID), "{leaf}");
            assert_eq!(c.pod_uid, want_uid, "{leaf}");
        }
        let c = parse_cgroup(ID, "pod3b4e5c1a-9d2f-4c6b-8a7e-1f2d3c4b5a69");
        assert_eq!(c.pod_uid, want_uid);
    }

    #[test]
    fn host_cgroups_have_no_container() {
        for (leaf, parent) in [
            ("/", ""),
            ("user@0.service", "user.slice"),
            ("crio-conmon-1234.scope", "x"),
            ("91b77e2a76687d946ce9cfe1ff3a2a2d", "process_api"),
            (&format!("cri-containerd-{}.scope", &ID[..63]), "x"),
        ] {
            assert_eq!(
                parse_cgroup(leaf, parent),
                CgroupIdentity::default(),
                "{leaf}"
            );
        }
    }

    #[test]
    fn process_table_learns_and_falls_back_to_proc() {
        let mut t = ProcessTable::new(100);
        t.exec(4242, 1, Arc::from("/usr/bin/app"));
        assert_eq!(&*t.exe(4242, 1, b"app"), "/usr/bin/app");
        let me = std::process::id();
        let exe = t.exe(me, 0, b"x");
        assert!(exe.starts_with('/'), "{exe}");
        assert_eq!(&*t.exe(u32::MAX - 1, 0, b"gone"), "gone");
        t.exit(4242);
        assert_eq!(&*t.exe(4242, 1, b"app"), "app");
    }

    #[test]
    fn missing_parents_are_remembered_until_forgotten_or_learnt() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ProcessTable::new(100);
        t.proc_root = dir.path().to_path_buf();
        assert_eq!(t.parent_exe(777), None);
        // The parent appears in /proc: still missing until the table forgets.
        let proc_dir = dir.path().join("777");
        fs::create_dir(&proc_dir).unwrap();
        std::os::unix::fs::symlink("/usr/bin/parent", proc_dir.join("exe")).unwrap();
        assert_eq!(t.parent_exe(777), None);
        t.forget_missing();
        assert_eq!(t.parent_exe(777).as_deref(), Some("/usr/bin/parent"));
        // An exec of a missing pid is learnt at once.
        assert_eq!(t.parent_exe(778), None);
        t.exec(778, 1, Arc::from("/usr/bin/other"));
        assert_eq!(t.parent_exe(778).as_deref(), Some("/usr/bin/other"));
        // So is a pid that exited and is looked up again.
        assert_eq!(t.parent_exe(779), None);
        let proc_dir = dir.path().join("779");
        fs::create_dir(&proc_dir).unwrap();
        std::os::unix::fs::symlink("/usr/bin/third", proc_dir.join("exe")).unwrap();
        t.exit(779);
        assert_eq!(t.parent_exe(779).as_deref(), Some("/usr/bin/third"));
    }

    #[test]
    fn process_table_is_bounded() {
        let mut t = ProcessTable::new(16);
        for pid in 1_000_000..1_000_100 {
            t.exec(pid, 1, Arc::from("/x"));
        }
        assert!(t.len() <= 16, "{}", t.len());
    }
}
