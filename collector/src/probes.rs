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

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::{Array, HashMap as BpfHashMap, IterableMap, MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use aya::Pod;
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

/// The sensors, as the collector reports which hooks each one stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sensor {
    /// Process execs and exits.
    Exec,
    /// File opens, removals, renames, mode and owner changes.
    Files,
    /// Connections, binds, listens, accepts, UDP sends, raw sockets.
    Network,
    /// System call counts (`--no-syscalls` turns it off).
    Syscalls,
    /// Capability check counts (`--no-capabilities` turns it off).
    Capabilities,
}

impl Sensor {
    /// Every sensor, in the order reports list them.
    pub const ALL: [Sensor; 5] = [
        Sensor::Files,
        Sensor::Exec,
        Sensor::Network,
        Sensor::Syscalls,
        Sensor::Capabilities,
    ];

    /// The sensor of a [`Sensor::name`].
    pub fn from_name(name: &str) -> Option<Sensor> {
        Sensor::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its name in Health and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Sensor::Exec => "exec",
            Sensor::Files => "files",
            Sensor::Network => "network",
            Sensor::Syscalls => "syscalls",
            Sensor::Capabilities => "capabilities",
        }
    }

    /// Why it stands on the hooks it does, on this build (tracepoints only: see
    /// `bpf/karmor.bpf.c`).
    fn why(self) -> &'static str {
        match self {
            Sensor::Exec => "sched tracepoints: off the system call path, nothing cheaper exists",
            Sensor::Files => {
                "system call exit tracepoints: fentry and BPF-LSM hooks are not used (they \
                 fail to load under kernel lockdown, and kprobes may not be built), so file \
                 operations are seen where the kernel traces system calls"
            }
            Sensor::Network => {
                "system call tracepoints (connect, bind, listen, accept exits; sendto, sendmsg, \
                 socket entries): they give the calling process and the addresses as the call \
                 made them"
            }
            Sensor::Syscalls => {
                "raw_syscalls:sys_enter: one tracepoint for every system call, counted in the \
                 kernel"
            }
            Sensor::Capabilities => {
                "capability:cap_capable: every capability check, counted in the kernel"
            }
        }
    }
}

/// One program of the object and the tracepoint it attaches to.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Its name in the object.
    pub name: &'static str,
    /// Tracepoint category.
    pub category: &'static str,
    /// Tracepoint event.
    pub event: &'static str,
    /// The sensor it serves.
    pub sensor: Sensor,
}

/// Every program of the object. Syscalls are seen at exit; their arguments are read from the
/// task's saved registers.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "handle_exec",
        category: "sched",
        event: "sched_process_exec",
        sensor: Sensor::Exec,
    },
    Program {
        name: "handle_exit",
        category: "sched",
        event: "sched_process_exit",
        sensor: Sensor::Exec,
    },
    Program {
        name: "openat_exit",
        category: "syscalls",
        event: "sys_exit_openat",
        sensor: Sensor::Files,
    },
    Program {
        name: "openat2_exit",
        category: "syscalls",
        event: "sys_exit_openat2",
        sensor: Sensor::Files,
    },
    Program {
        name: "open_exit_tp",
        category: "syscalls",
        event: "sys_exit_open",
        sensor: Sensor::Files,
    },
    Program {
        name: "creat_exit",
        category: "syscalls",
        event: "sys_exit_creat",
        sensor: Sensor::Files,
    },
    Program {
        name: "unlink_exit",
        category: "syscalls",
        event: "sys_exit_unlink",
        sensor: Sensor::Files,
    },
    Program {
        name: "unlinkat_exit",
        category: "syscalls",
        event: "sys_exit_unlinkat",
        sensor: Sensor::Files,
    },
    Program {
        name: "rmdir_exit",
        category: "syscalls",
        event: "sys_exit_rmdir",
        sensor: Sensor::Files,
    },
    Program {
        name: "rename_exit_tp",
        category: "syscalls",
        event: "sys_exit_rename",
        sensor: Sensor::Files,
    },
    Program {
        name: "renameat_exit",
        category: "syscalls",
        event: "sys_exit_renameat",
        sensor: Sensor::Files,
    },
    Program {
        name: "renameat2_exit",
        category: "syscalls",
        event: "sys_exit_renameat2",
        sensor: Sensor::Files,
    },
    Program {
        name: "chmod_exit",
        category: "syscalls",
        event: "sys_exit_chmod",
        sensor: Sensor::Files,
    },
    Program {
        name: "fchmodat_exit",
        category: "syscalls",
        event: "sys_exit_fchmodat",
        sensor: Sensor::Files,
    },
    Program {
        name: "fchmodat2_exit",
        category: "syscalls",
        event: "sys_exit_fchmodat2",
        sensor: Sensor::Files,
    },
    Program {
        name: "fchmod_exit",
        category: "syscalls",
        event: "sys_exit_fchmod",
        sensor: Sensor::Files,
    },
    Program {
        name: "chown_exit",
        category: "syscalls",
        event: "sys_exit_chown",
        sensor: Sensor::Files,
    },
    Program {
        name: "lchown_exit",
        category: "syscalls",
        event: "sys_exit_lchown",
        sensor: Sensor::Files,
    },
    Program {
        name: "fchownat_exit",
        category: "syscalls",
        event: "sys_exit_fchownat",
        sensor: Sensor::Files,
    },
    Program {
        name: "fchown_exit",
        category: "syscalls",
        event: "sys_exit_fchown",
        sensor: Sensor::Files,
    },
    Program {
        name: "connect_exit",
        category: "syscalls",
        event: "sys_exit_connect",
        sensor: Sensor::Network,
    },
    Program {
        name: "bind_exit",
        category: "syscalls",
        event: "sys_exit_bind",
        sensor: Sensor::Network,
    },
    Program {
        name: "listen_exit",
        category: "syscalls",
        event: "sys_exit_listen",
        sensor: Sensor::Network,
    },
    Program {
        name: "accept_exit_tp",
        category: "syscalls",
        event: "sys_exit_accept",
        sensor: Sensor::Network,
    },
    Program {
        name: "accept4_exit",
        category: "syscalls",
        event: "sys_exit_accept4",
        sensor: Sensor::Network,
    },
    Program {
        name: "sendto_enter",
        category: "syscalls",
        event: "sys_enter_sendto",
        sensor: Sensor::Network,
    },
    Program {
        name: "sendmsg_enter",
        category: "syscalls",
        event: "sys_enter_sendmsg",
        sensor: Sensor::Network,
    },
    Program {
        name: "socket_enter",
        category: "syscalls",
        event: "sys_enter_socket",
        sensor: Sensor::Network,
    },
    Program {
        name: "sys_enter",
        category: "raw_syscalls",
        event: "sys_enter",
        sensor: Sensor::Syscalls,
    },
    Program {
        name: "cap_capable",
        category: "capability",
        event: "cap_capable",
        sensor: Sensor::Capabilities,
    },
];

/// The programs not to attach: `sys_enter` without system call counts, `cap_capable` without
/// capability counts, and, when `only` names sensors, every program of the others.
pub fn skipped(syscalls: bool, capabilities: bool, only: &[Sensor]) -> Vec<&'static str> {
    PROGRAMS
        .iter()
        .filter(|p| {
            (p.sensor == Sensor::Syscalls && !syscalls)
                || (p.sensor == Sensor::Capabilities && !capabilities)
                || (!only.is_empty() && !only.contains(&p.sensor))
        })
        .map(|p| p.name)
        .collect()
}

/// Which hooks a sensor stands on, and why: reported in Health and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookChoice {
    /// The sensor ([`Sensor::name`]).
    pub sensor: &'static str,
    /// The hooks attached for it (`category:event`); empty when it is off.
    pub hooks: Vec<String>,
    /// Hooks that failed to attach, with the kernel's error.
    pub failed: Vec<String>,
    /// Why these hooks, or why it is off.
    pub why: String,
}

/// The hook choice of every sensor, from what [`Probes::load`] attached and failed and the
/// programs it was told to skip.
pub fn hook_choices(
    set: ProbeSet,
    skip: &[&str],
    attached: &[&'static str],
    failed: &[(&'static str, String)],
) -> Vec<HookChoice> {
    Sensor::ALL
        .iter()
        .map(|&sensor| {
            let programs: Vec<&Program> = PROGRAMS.iter().filter(|p| p.sensor == sensor).collect();
            let hook = |p: &Program| format!("{}:{}", p.category, p.event);
            let hooks: Vec<String> = programs
                .iter()
                .filter(|p| attached.contains(&p.name))
                .map(|p| hook(p))
                .collect();
            let failed: Vec<String> = programs
                .iter()
                .filter_map(|p| {
                    let (_, why) = failed.iter().find(|(n, _)| *n == p.name)?;
                    Some(format!("{}: {why}", hook(p)))
                })
                .collect();
            let why = if programs.iter().all(|p| skip.contains(&p.name)) {
                "off (turned off by a flag)".to_string()
            } else if hooks.is_empty() {
                "off: no hook attached".to_string()
            } else if set == ProbeSet::Empty {
                format!("empty programs (--source empty-probes); {}", sensor.why())
            } else {
                sensor.why().to_string()
            };
            HookChoice {
                sensor: sensor.name(),
                hooks,
                failed,
                why,
            }
        })
        .collect()
}

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
    /// Per sensor, the hooks attached and why ([`hook_choices`]).
    pub choices: Vec<HookChoice>,
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
        for p in PROGRAMS {
            if skip.contains(&p.name) {
                continue;
            }
            let result = attach(&mut bpf, p.name, p.category, p.event);
            hooks.push((format!("{}:{}", p.category, p.event), result.is_ok()));
            match result {
                Ok(()) => attached.push(p.name),
                Err(e) => failed.push((p.name, e)),
            }
        }
        let choices = hook_choices(set, skip, &attached, &failed);
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
                choices,
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
        for (key, [count, last]) in take_entries(&mut self.dedup, |k| key_gen(k) == next) {
            if key_gen(&key) == closed && pipeline.add_repeats(&key, count, last) {
                out.repeats += count;
            } else {
                out.unmatched += count;
            }
        }
        self.unmatched += out.unmatched;
        self.drain_counts(pipeline, next, &mut out);
        out
    }

    /// Reads the `counts` entries of every generation before `next` into the pipeline, and
    /// deletes them.
    fn drain_counts(&mut self, pipeline: &mut Pipeline, next: u32, out: &mut Settled) {
        let entries = take_entries(&mut self.counts, |k| count_key_gen(k) == next);
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

/// Every entry of a kernel hash map but those `keep` leaves, removed from the map. Read with
/// `BPF_MAP_LOOKUP_BATCH` and removed with `BPF_MAP_DELETE_BATCH`: a few system calls per
/// window instead of three per entry (a `tar` of 20,000 new files leaves tens of thousands of
/// `dedup` entries, and the per-entry calls were half of the collector's CPU). Kernels without
/// batch operations take the per-entry path.
fn take_entries<K: Pod, V: Pod>(
    map: &mut BpfHashMap<MapData, K, V>,
    keep: impl Fn(&K) -> bool,
) -> Vec<(K, V)> {
    let fd = map.map().fd().as_fd().as_raw_fd();
    if let Ok((keys, values)) = batch::lookup_all::<K, V>(fd) {
        let taken: Vec<(K, V)> = keys
            .into_iter()
            .zip(values)
            .filter(|(k, _)| !keep(k))
            .collect();
        let doomed: Vec<K> = taken.iter().map(|(k, _)| *k).collect();
        if batch::delete(fd, &doomed).is_err() {
            for k in &doomed {
                let _ = map.remove(k);
            }
        }
        return taken;
    }
    let keys: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !keep(k))
        .collect();
    let mut taken = Vec::with_capacity(keys.len());
    for k in keys {
        if let Ok(v) = map.get(&k, 0) {
            taken.push((k, v));
        }
        let _ = map.remove(&k);
    }
    taken
}

/// The `bpf(2)` batch commands on a hash map, which aya does not wrap.
mod batch {
    use std::io;
    use std::os::fd::RawFd;

    use aya::Pod;

    const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
    const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
    /// Entries per lookup call; a hash bucket never holds more.
    const CHUNK: usize = 4096;

    /// `union bpf_attr`'s `batch` member.
    #[repr(C)]
    #[derive(Default)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }

    fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
        // SAFETY: `attr` is a valid `bpf_attr` prefix of the size given; the buffers it points
        // to are owned by the caller, sized for `count` entries, and outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Every key and value of the hash map `fd`.
    pub(super) fn lookup_all<K: Pod, V: Pod>(fd: RawFd) -> io::Result<(Vec<K>, Vec<V>)> {
        // SAFETY: Pod types are plain bytes, valid when zeroed.
        let (mut kb, mut vb): (Vec<K>, Vec<V>) = unsafe {
            (
                vec![std::mem::zeroed(); CHUNK],
                vec![std::mem::zeroed(); CHUNK],
            )
        };
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        // The hash map's batch token is a bucket index (a u32); u64 leaves room.
        let (mut token_in, mut token_out) = (0u64, 0u64);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    std::ptr::addr_of!(token_in) as u64
                },
                out_batch: std::ptr::addr_of_mut!(token_out) as u64,
                keys: kb.as_mut_ptr() as u64,
                values: vb.as_mut_ptr() as u64,
                count: CHUNK as u32,
                map_fd: fd as u32,
                ..Default::default()
            };
            let rc = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
            let n = (attr.count as usize).min(CHUNK);
            keys.extend_from_slice(&kb[..n]);
            values.extend_from_slice(&vb[..n]);
            match rc {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((keys, values)),
                Err(e) => return Err(e),
            }
            token_in = token_out;
            first = false;
        }
    }

    /// Deletes `keys` from the hash map `fd`.
    pub(super) fn delete<K: Pod>(fd: RawFd, keys: &[K]) -> io::Result<()> {
        for chunk in keys.chunks(CHUNK) {
            let mut attr = BatchAttr {
                keys: chunk.as_ptr() as u64,
                count: chunk.len() as u32,
                map_fd: fd as u32,
                ..Default::default()
            };
            bpf(BPF_MAP_DELETE_BATCH, &mut attr)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `--sensors files` leaves exactly the file sensor's programs, which Health then reports
    /// as the only sensor on; the two counting flags still turn their program off.
    #[test]
    fn only_named_sensors_attach() {
        let skip = skipped(true, true, &[Sensor::Files]);
        let left: Vec<&Program> = PROGRAMS
            .iter()
            .filter(|p| !skip.contains(&p.name))
            .collect();
        assert!(!left.is_empty());
        assert!(left.iter().all(|p| p.sensor == Sensor::Files), "{left:?}");
        let attached: Vec<&'static str> = left.iter().map(|p| p.name).collect();
        for c in hook_choices(ProbeSet::Empty, &skip, &attached, &[]) {
            assert_eq!(c.hooks.is_empty(), c.sensor != "files", "{c:?}");
        }
        assert_eq!(skipped(false, false, &[]), ["sys_enter", "cap_capable"]);
        assert!(skipped(true, true, &[]).is_empty());
        for s in Sensor::ALL {
            assert_eq!(Sensor::from_name(s.name()), Some(s));
        }
        assert_eq!(Sensor::from_name("file"), None);
    }

    #[test]
    fn each_sensor_reports_its_hooks_and_why_and_a_flag_turns_one_off() {
        let attached: Vec<&'static str> = PROGRAMS
            .iter()
            .map(|p| p.name)
            .filter(|n| *n != "sys_enter" && *n != "fchmodat2_exit")
            .collect();
        let failed = vec![("fchmodat2_exit", "No such file or directory".to_string())];
        let choices = hook_choices(ProbeSet::Sensors, &["sys_enter"], &attached, &failed);
        let by = |s: &str| choices.iter().find(|h| h.sensor == s).expect(s);
        assert_eq!(
            choices.iter().map(|h| h.sensor).collect::<Vec<_>>(),
            ["files", "exec", "network", "syscalls", "capabilities"]
        );
        let files = by("files");
        assert!(files
            .hooks
            .contains(&"syscalls:sys_exit_openat".to_string()));
        assert!(!files
            .hooks
            .contains(&"syscalls:sys_exit_fchmodat2".to_string()));
        assert_eq!(
            files.failed,
            ["syscalls:sys_exit_fchmodat2: No such file or directory"]
        );
        assert!(files.why.contains("fentry"), "{}", files.why);
        assert_eq!(
            by("exec").hooks,
            ["sched:sched_process_exec", "sched:sched_process_exit"]
        );
        assert!(by("network")
            .hooks
            .contains(&"syscalls:sys_exit_connect".to_string()));
        let syscalls = by("syscalls");
        assert!(syscalls.hooks.is_empty());
        assert!(syscalls.why.starts_with("off"), "{}", syscalls.why);
        assert_eq!(by("capabilities").hooks, ["capability:cap_capable"]);

        // Every program is some sensor's hook, listed once.
        let all: Vec<&'static str> = PROGRAMS.iter().map(|p| p.name).collect();
        let listed: usize = hook_choices(ProbeSet::Sensors, &[], &all, &[])
            .iter()
            .map(|h| h.hooks.len())
            .sum();
        assert_eq!(listed, PROGRAMS.len());
        let empty = hook_choices(ProbeSet::Empty, &[], &all, &[]);
        assert!(empty.iter().all(|h| h.why.starts_with("empty programs")));
    }
}
