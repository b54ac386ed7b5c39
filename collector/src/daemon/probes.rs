//! Loading and attaching the kernel probes (aya), and reading their ring buffer.

use std::path::Path;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

/// The compiled probes, or an empty slice when the build had no clang/bpftool/BTF.
#[cfg(karmor_probes)]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/karmor.bpf.o"));
#[cfg(not(karmor_probes))]
static OBJECT: &[u8] = &[];

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

/// Program name in the object → the tracepoint it attaches to.
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("handle_exec", "sched", "sched_process_exec"),
    ("handle_exit", "sched", "sched_process_exit"),
    ("openat_enter", "syscalls", "sys_enter_openat"),
    ("openat_exit", "syscalls", "sys_exit_openat"),
    ("openat2_enter", "syscalls", "sys_enter_openat2"),
    ("openat2_exit", "syscalls", "sys_exit_openat2"),
    ("open_enter", "syscalls", "sys_enter_open"),
    ("open_exit_tp", "syscalls", "sys_exit_open"),
    ("creat_enter", "syscalls", "sys_enter_creat"),
    ("creat_exit", "syscalls", "sys_exit_creat"),
    ("connect_enter", "syscalls", "sys_enter_connect"),
    ("connect_exit", "syscalls", "sys_exit_connect"),
    ("bind_enter", "syscalls", "sys_enter_bind"),
    ("bind_exit", "syscalls", "sys_exit_bind"),
    ("listen_enter", "syscalls", "sys_enter_listen"),
    ("listen_exit", "syscalls", "sys_exit_listen"),
    ("accept_exit_tp", "syscalls", "sys_exit_accept"),
    ("accept4_exit", "syscalls", "sys_exit_accept4"),
    ("sendto_enter", "syscalls", "sys_enter_sendto"),
    ("sendmsg_enter", "syscalls", "sys_enter_sendmsg"),
    ("socket_enter", "syscalls", "sys_enter_socket"),
];

/// Loaded, attached probes. Dropping this detaches them.
pub struct Probes {
    _bpf: Ebpf,
    drops: PerCpuArray<MapData, u64>,
    /// Programs attached.
    pub attached: Vec<&'static str>,
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
    /// Loads the object, attaches every probe it can, and returns the ring buffer to read.
    pub fn load() -> Result<(Probes, RingBuf<MapData>), ProbeError> {
        if !built_with_probes() {
            return Err(ProbeError::NotBuilt);
        }
        ensure_tracefs();
        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e.to_string()))?;
        let me = std::process::id();
        let mut bpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("self_tgid", &me, true)
            .load(OBJECT)
            .map_err(|e| ProbeError::Load(e.to_string()))?;
        let mut attached = Vec::new();
        let mut failed = Vec::new();
        for (name, category, event) in PROGRAMS {
            match attach(&mut bpf, name, category, event) {
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
        Ok((
            Probes {
                _bpf: bpf,
                drops,
                attached,
                failed,
            },
            ring,
        ))
    }

    /// Events the kernel dropped because the ring buffer was full (all CPUs, since load).
    pub fn dropped(&self) -> u64 {
        self.drops
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
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
