//! Loading and attaching the kernel probes (aya), reading their ring buffer, and closing a
//! de-duplication generation at each window flush.
//!
//! The kernel counts repeats of a behaviour in its `dedup` map under the current generation
//! instead of sending them. [`Probes::settle`] closes a generation so that the window's rows
//! are exact: it bumps the generation, waits until no probe still runs with the old one
//! (`membarrier(MEMBARRIER_CMD_GLOBAL)`, i.e. `synchronize_rcu()`: probes run under RCU), reads
//! what is left in the ring buffer (records of the new generation are deferred to the next
//! window), then adds the old generation's counts to the rows of their first events and
//! deletes them from the map. The kernel's `counts` map (system calls and capability checks
//! per cgroup and executable, keyed by generation too) is closed the same way: after the wait
//! no probe writes the old generation's entries, which are read into the window's
//! `op = syscall` and `op = capability` rows and deleted.

use std::path::Path;
use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use crate::pipeline::Pipeline;
use crate::raw::{
    count_key_gen, decode, decode_counted, key_gen, CountKeyBytes, CountValBytes, KernelKey,
};

/// The compiled probes, or an empty slice when the build had no clang/bpftool/BTF.
#[cfg(karmor_probes)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/karmor.bpf.o"));
#[cfg(not(karmor_probes))]
static OBJECT: &[u8] = &[];

/// The same programs on the same hooks, each returning at once (`bpf/karmor_empty.bpf.c`):
/// what the kernel charges for any program there, the floor under [`OBJECT`]'s cost.
#[cfg(karmor_probes)]
static EMPTY_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/karmor_empty.bpf.o"));
#[cfg(not(karmor_probes))]
static EMPTY_OBJECT: &[u8] = &[];

/// Which programs [`Probes::load`] attaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProbeSet {
    /// The sensors (`bpf/karmor.bpf.c`).
    #[default]
    Sensors,
    /// Empty programs on the same hooks (`bpf/karmor_empty.bpf.c`), for measuring the hooks'
    /// floor: they record nothing.
    Empty,
}

/// True when this build carries the eBPF probes.
pub fn built_with_probes() -> bool {
    !OBJECT.is_empty()
}

/// Why the probes could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The build had no clang, bpftool or kernel BTF.
    #[error("this karmor-collector was built without eBPF probes (clang, bpftool and kernel BTF are needed at build time)")]
    NotBuilt,
    /// The running kernel exposes no BTF.
    #[error("kernel BTF is not available (/sys/kernel/btf/vmlinux): {0}")]
    Btf(String),
    /// The kernel refused the object (permissions, verifier, missing features).
    #[error("loading the eBPF object failed: {0}")]
    Load(String),
    /// A map the object must define is missing.
    #[error("eBPF map {0} is missing or of the wrong type")]
    Map(&'static str),
    /// Not one probe could be attached.
    #[error("no probe could be attached: {0}")]
    Attach(String),
}

/// Program name in the object → the tracepoint it attaches to. Syscalls are seen at exit;
/// their arguments are read from the task's saved registers.
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("handle_exec", "sched", "sched_process_exec"),
    ("handle_exit", "sched", "sched_process_exit"),
    ("openat_exit", "syscalls", "sys_exit_openat"),
    ("openat2_exit", "syscalls", "sys_exit_openat2"),
    ("open_exit_tp", "syscalls", "sys_exit_open"),
    ("creat_exit", "syscalls", "sys_exit_creat"),
    ("unlink_exit", "syscalls", "sys_exit_unlink"),
    ("unlinkat_exit", "syscalls", "sys_exit_unlinkat"),
    ("rmdir_exit", "syscalls", "sys_exit_rmdir"),
    ("rename_exit_tp", "syscalls", "sys_exit_rename"),
    ("renameat_exit", "syscalls", "sys_exit_renameat"),
    ("renameat2_exit", "syscalls", "sys_exit_renameat2"),
    ("chmod_exit", "syscalls", "sys_exit_chmod"),
    ("fchmodat_exit", "syscalls", "sys_exit_fchmodat"),
    ("fchmodat2_exit", "syscalls", "sys_exit_fchmodat2"),
    ("fchmod_exit", "syscalls", "sys_exit_fchmod"),
    ("chown_exit", "syscalls", "sys_exit_chown"),
    ("lchown_exit", "syscalls", "sys_exit_lchown"),
    ("fchownat_exit", "syscalls", "sys_exit_fchownat"),
    ("fchown_exit", "syscalls", "sys_exit_fchown"),
    ("connect_exit", "syscalls", "sys_exit_connect"),
    ("bind_exit", "syscalls", "sys_exit_bind"),
    ("listen_exit", "syscalls", "sys_exit_listen"),
    ("accept_exit_tp", "syscalls", "sys_exit_accept"),
    ("accept4_exit", "syscalls", "sys_exit_accept4"),
    ("sendto_enter", "syscalls", "sys_enter_sendto"),
    ("sendmsg_enter", "syscalls", "sys_enter_sendmsg"),
    ("socket_enter", "syscalls", "sys_enter_socket"),
    ("sys_enter", "raw_syscalls", "sys_enter"),
    ("cap_capable", "capability", "cap_capable"),
];

/// Value of the kernel's `dedup` map: repeats not sent, and the time of the last one.
type DedupVal = [u64; 2];

/// What [`Probes::settle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Ring buffer records read (handled now, or deferred to the next window).
    pub records: u64,
    /// Records that could not be decoded.
    pub decode_errors: u64,
    /// Repeats the kernel counted instead of sending, added to the window's rows.
    pub repeats: u64,
    /// Repeats whose first event was not in the window (lost to a full ring buffer or a
    /// decode error): not in any row.
    pub unmatched: u64,
    /// System calls and capability checks the kernel counted, added to the window's rows.
    pub counted: u64,
    /// Entries of the kernel's `counts` map read (distinct cgroup, executable and item).
    pub count_entries: u64,
}

/// Loaded, attached probes. Dropping this detaches them.
pub struct Probes {
    _bpf: Ebpf,
    drops: PerCpuArray<MapData, u64>,
    generation: Array<MapData, u32>,
    dedup: BpfHashMap<MapData, KernelKey, DedupVal>,
    counts: BpfHashMap<MapData, CountKeyBytes, CountValBytes>,
    gen: u32,
    /// Counted repeats whose first event never reached user space.
    unmatched: u64,
    /// Programs attached.
    pub attached: Vec<&'static str>,
    /// Every hook tried (`category:event`) and whether its program attached.
    pub hooks: Vec<(String, bool)>,
    /// Programs that could not be attached, with the reason (e.g. no IPv6 in this kernel).
    pub failed: Vec<(&'static str, String)>,
}

/// Mounts tracefs at /sys/kernel/tracing when nothing is there (tracepoints need it).
pub fn ensure_tracefs() {
    let dir = Path::new("/sys/kernel/tracing");
    if dir.join("events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return;
    }
    let _ = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status();
}

impl Probes {
    /// Loads the sensors' object, attaches every probe it can except the programs named in
    /// `skip` (e.g. `sys_enter`, `cap_capable`), and returns the ring buffer to read.
    pub fn load(skip: &[&str]) -> Result<(Probes, RingBuf<MapData>), ProbeError> {
        Self::load_set(ProbeSet::Sensors, skip)
    }

    /// [`Probes::load`] of either object: the sensors, or empty programs on the same hooks.
    pub fn load_set(
        set: ProbeSet,
        skip: &[&str],
    ) -> Result<(Probes, RingBuf<MapData>), ProbeError> {
        if !built_with_probes() {
            return Err(ProbeError::NotBuilt);
        }
        let object = match set {
            ProbeSet::Sensors => OBJECT,
            ProbeSet::Empty => EMPTY_OBJECT,
        };
        ensure_tracefs();
        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e.to_string()))?;
        let me = std::process::id();
        let mut bpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("self_tgid", &me, true)
            .load(object)
            .map_err(|e| ProbeError::Load(e.to_string()))?;
        let mut attached = Vec::new();
        let mut failed = Vec::new();
        let mut hooks = Vec::new();
        for (name, category, event) in PROGRAMS {
            if skip.contains(name) {
                continue;
            }
            let result = attach(&mut bpf, name, category, event);
            hooks.push((format!("{category}:{event}"), result.is_ok()));
            match result {
                Ok(()) => attached.push(*name),
                Err(e) => failed.push((*name, e)),
            }
        }
        if attached.is_empty() {
            let why = failed
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ProbeError::Attach(why));
        }
        let ring = RingBuf::try_from(bpf.take_map("events").ok_or(ProbeError::Map("events"))?)
            .map_err(|_| ProbeError::Map("events"))?;
        let drops = PerCpuArray::try_from(bpf.take_map("drops").ok_or(ProbeError::Map("drops"))?)
            .map_err(|_| ProbeError::Map("drops"))?;
        let generation = Array::try_from(
            bpf.take_map("generation")
                .ok_or(ProbeError::Map("generation"))?,
        )
        .map_err(|_| ProbeError::Map("generation"))?;
        let dedup = BpfHashMap::try_from(bpf.take_map("dedup").ok_or(ProbeError::Map("dedup"))?)
            .map_err(|_| ProbeError::Map("dedup"))?;
        let counts = BpfHashMap::try_from(bpf.take_map("counts").ok_or(ProbeError::Map("counts"))?)
            .map_err(|_| ProbeError::Map("counts"))?;
        Ok((
            Probes {
                _bpf: bpf,
                drops,
                generation,
                dedup,
                counts,
                gen: 0,
                unmatched: 0,
                attached,
                hooks,
                failed,
            },
            ring,
        ))
    }

    /// Events lost since load: dropped by the kernel because the ring buffer was full (all
    /// CPUs), and repeats counted by the kernel whose first event was lost.
    pub fn dropped(&self) -> u64 {
        self.drops
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
            + self.unmatched
    }
}

impl Probes {
    /// Closes the current de-duplication generation into `pipeline`'s open window, so that
    /// it can be drained with exact counts (see the module documentation). Call it right
    /// before [`Pipeline::drain`].
    pub fn settle(&mut self, ring: &mut RingBuf<MapData>, pipeline: &mut Pipeline) -> Settled {
        let closed = self.gen;
        let next = closed.wrapping_add(1);
        let mut out = Settled::default();
        if self.generation.set(0, next, 0).is_err() {
            // The generation stays: the window is drained with what the ring buffer holds,
            // and the counts stay in the map for the next flush.
            self.drain_ring(ring, pipeline, None, &mut out);
            return out;
        }
        self.gen = next;
        wait_for_running_probes();
        self.drain_ring(ring, pipeline, Some(closed), &mut out);
        let keys: Vec<KernelKey> = self.dedup.keys().filter_map(Result::ok).collect();
        for key in keys {
            let gen = key_gen(&key);
            if gen == next {
                continue;
            }
            if let Ok([count, last]) = self.dedup.get(&key, 0) {
                if gen == closed && pipeline.add_repeats(&key, count, last) {
                    out.repeats += count;
                } else {
                    out.unmatched += count;
                }
            }
            let _ = self.dedup.remove(&key);
        }
        self.unmatched += out.unmatched;
        self.drain_counts(pipeline, next, &mut out);
        out
    }

    /// Reads the `counts` entries of every generation before `next` into the pipeline, and
    /// deletes them.
    fn drain_counts(&mut self, pipeline: &mut Pipeline, next: u32, out: &mut Settled) {
        let keys: Vec<CountKeyBytes> = self
            .counts
            .keys()
            .filter_map(Result::ok)
            .filter(|k| count_key_gen(k) != next)
            .collect();
        let mut entries = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Ok(val) = self.counts.get(key, 0) {
                entries.push((*key, val));
            }
            let _ = self.counts.remove(key);
        }
        let counted: Vec<_> = entries.iter().map(|(k, v)| decode_counted(k, v)).collect();
        out.count_entries += counted.len() as u64;
        out.counted += counted.iter().map(|c| c.count).sum::<u64>();
        pipeline.add_counted(&counted, now_mono());
    }

    /// Reads the ring buffer into the pipeline; records of a generation after `closed` are
    /// deferred to the next window.
    fn drain_ring(
        &self,
        ring: &mut RingBuf<MapData>,
        pipeline: &mut Pipeline,
        closed: Option<u32>,
        out: &mut Settled,
    ) {
        while let Some(item) = ring.next() {
            out.records += 1;
            match decode(&item) {
                Ok(ev) => match closed {
                    Some(c) if (ev.gen.wrapping_sub(c) as i32) > 0 => pipeline.defer(&item),
                    _ => pipeline.handle(&ev),
                },
                Err(_) => out.decode_errors += 1,
            }
        }
    }
}

/// Returns once every probe that started before the call has finished: `synchronize_rcu()`
/// through `membarrier(MEMBARRIER_CMD_GLOBAL)`. Where that command is refused (nohz_full
/// kernels), waits 20 ms, far longer than a probe runs.
fn wait_for_running_probes() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers; a refusal is an error return, handled below.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if rc != 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CLOCK_MONOTONIC now, in ns (the probes' clock).
fn now_mono() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn attach(bpf: &mut Ebpf, name: &str, category: &str, event: &str) -> Result<(), String> {
    let prog = bpf
        .program_mut(name)
        .ok_or_else(|| "not in the object".to_string())?;
    let p: &mut TracePoint = prog
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    p.load().map_err(|e| e.to_string())?;
    p.attach(category, event).map_err(|e| e.to_string())?;
    Ok(())
}
