//! Raw events as the kernel probes write them into the ring buffer.
//!
//! Mirrors `struct karmor_event` in `bpf/karmor.bpf.c` (little-endian): a fixed header, then
//! a variable data area holding only the strings used (cgroup names, name, arguments, path
//! components). Decoding borrows from the ring buffer item: nothing is allocated until the
//! pipeline needs it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Size of the fixed header of a record (`offsetof(struct karmor_event, data)`).
pub const HEADER_SIZE: usize = 224;
/// Size of `struct dedup_key`: the identity under which the kernel counts repeats.
pub const KEY_SIZE: usize = 80;
/// The kernel's de-duplication key of an event, as bytes (`struct dedup_key`).
pub type KernelKey = [u8; KEY_SIZE];

// Field offsets in `struct karmor_event`. When the probes are built, build.rs reads the real
// offsets from the compiled object's BTF and the assertions at the end of this list fail the
// build if one of these differs.
const OFF_TS: usize = 0;
const OFF_CGROUP_ID: usize = 8;
const OFF_KIND: usize = 16;
const OFF_PID: usize = 20;
const OFF_PPID: usize = 24;
const OFF_UID: usize = 28;
const OFF_RET: usize = 32;
const OFF_FLAGS: usize = 36;
const OFF_MODE: usize = 40;
const OFF_FAMILY: usize = 44;
const OFF_PROTO: usize = 46;
const OFF_LPORT: usize = 48;
const OFF_RPORT: usize = 50;
const OFF_LADDR: usize = 52;
const OFF_RADDR: usize = 68;
const OFF_COMM: usize = 84;
const OFF_NCOMPS: usize = 100;
const OFF_GEN: usize = 104;
const OFF_CG_LEN: usize = 108;
const OFF_PATH_LEN: usize = 110;
const OFF_ARGS_LEN: usize = 112;
const OFF_COMPS_LEN: usize = 114;
const OFF_SYS: usize = 116;
const OFF_DEDUP: usize = 118;
const OFF_KEY: usize = 120;
const OFF_EXE: usize = 200;
const OFF_PEXE: usize = 208;
const OFF_DIR: usize = 216;
/// Offset of the generation inside a [`KernelKey`].
pub const KEY_OFF_GEN: usize = 48;
/// Path components the kernel records per event.
pub const MAX_COMPS: usize = 24;
/// Bytes per path component (including the NUL).
pub const COMP_LEN: usize = 128;
/// `ncomps` flag: the path was deeper than the kernel records (it starts with `/…/`).
pub const COMPS_TRUNCATED: u32 = 0x8000_0000;
/// `ncomps` flag: the components are the leaf's alone; the directory's follow in user space,
/// from the record that defined [`RawEvent::dir`] earlier in the generation.
pub const COMPS_DIR_REF: u32 = 0x4000_0000;
/// `ncomps` flag: the components after the first are the path of directory
/// [`RawEvent::dir`], which later records of the generation name by that id alone.
pub const COMPS_DIR_DEF: u32 = 0x2000_0000;
/// The bits of `ncomps` that count components.
const COMPS_COUNT: u32 = !(COMPS_TRUNCATED | COMPS_DIR_REF | COMPS_DIR_DEF);
const CG_LEN: usize = 96;
const PATH_LEN: usize = 256;
const ARGS_LEN: usize = 256;

/// The C layout, as build.rs read it from the BTF of the compiled `karmor.bpf.o`.
#[cfg(karmor_probes)]
mod c_layout {
    include!(concat!(env!("OUT_DIR"), "/c_layout.rs"));
}

/// Fails the build when `raw.rs` and `struct karmor_event`/`struct dedup_key` disagree.
#[cfg(karmor_probes)]
const _: () = {
    use c_layout::{count_key as ck, count_val as cv, dedup_key as k, karmor_event as e};
    macro_rules! same {
        ($($ours:expr => $c:expr),* $(,)?) => {$(
            assert!(
                $ours == $c,
                concat!("raw.rs: ", stringify!($ours), " differs from ", stringify!($c), " in bpf/karmor.bpf.c")
            );
        )*};
    }
    same!(
        OFF_TS => e::TS_NS,
        OFF_CGROUP_ID => e::CGROUP_ID,
        OFF_KIND => e::KIND,
        OFF_PID => e::PID,
        OFF_PPID => e::PPID,
        OFF_UID => e::UID,
        OFF_RET => e::RET,
        OFF_FLAGS => e::FLAGS,
        OFF_MODE => e::MODE,
        OFF_FAMILY => e::FAMILY,
        OFF_PROTO => e::PROTO,
        OFF_LPORT => e::LPORT,
        OFF_RPORT => e::RPORT,
        OFF_LADDR => e::LADDR,
        OFF_RADDR => e::RADDR,
        OFF_COMM => e::COMM,
        OFF_NCOMPS => e::NCOMPS,
        OFF_GEN => e::GEN,
        OFF_CG_LEN => e::CG_LEN,
        OFF_PATH_LEN => e::PATH_LEN,
        OFF_ARGS_LEN => e::ARGS_LEN,
        OFF_COMPS_LEN => e::COMPS_LEN,
        OFF_SYS => e::SYS,
        OFF_DEDUP => e::DEDUP,
        OFF_KEY => e::KEY,
        OFF_EXE => e::EXE,
        OFF_PEXE => e::PEXE,
        OFF_DIR => e::DIR,
        HEADER_SIZE => e::DATA,
        KEY_SIZE => k::SIZE,
        KEY_OFF_GEN => k::GEN,
        COUNT_KEY_SIZE => ck::SIZE,
        CK_CGROUP_ID => ck::CGROUP_ID,
        CK_EXE => ck::EXE,
        CK_GEN => ck::GEN,
        CK_ITEM => ck::ITEM,
        COUNT_VAL_SIZE => cv::SIZE,
        CV_COUNT => cv::COUNT,
        CV_FIRST_NS => cv::FIRST_NS,
        CV_TGID => cv::TGID,
        CV_PPID => cv::PPID,
        CV_UID => cv::UID,
        CV_COMM => cv::COMM,
    );
};

/// `enum karmor_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kind {
    /// A program was executed.
    Exec = 1,
    /// A process exited.
    Exit = 2,
    /// A file was opened.
    File = 3,
    /// A TCP connect.
    Connect = 4,
    /// A TCP accept.
    Accept = 5,
    /// A bind.
    Bind = 6,
    /// A listen.
    Listen = 7,
    /// A UDP send.
    UdpSend = 8,
    /// A raw, packet or ICMP socket was created.
    Socket = 9,
    /// A file or directory was removed (unlink, unlinkat, rmdir).
    Unlink = 10,
    /// A file was renamed (one event for the old name, one for the new).
    Rename = 11,
    /// A file's mode was changed.
    Chmod = 12,
    /// A file's owner was changed.
    Chown = 13,
    /// System calls of one executable in one cgroup: counted in the kernel's `counts` map,
    /// never a ring buffer record.
    Syscall = 14,
    /// Capability checks of one executable in one cgroup: counted in the kernel's `counts`
    /// map, never a ring buffer record.
    Capability = 15,
}

impl Kind {
    fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Exec,
            2 => Kind::Exit,
            3 => Kind::File,
            4 => Kind::Connect,
            5 => Kind::Accept,
            6 => Kind::Bind,
            7 => Kind::Listen,
            8 => Kind::UdpSend,
            9 => Kind::Socket,
            10 => Kind::Unlink,
            11 => Kind::Rename,
            12 => Kind::Chmod,
            13 => Kind::Chown,
            _ => return None,
        })
    }

    /// True for the kinds whose row is a file access (a path and an access).
    pub fn is_file(self) -> bool {
        matches!(
            self,
            Kind::File | Kind::Unlink | Kind::Rename | Kind::Chmod | Kind::Chown
        )
    }
}

/// Why a ring buffer record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record is shorter than its header and the data lengths it declares.
    #[error("raw event of {0} bytes, shorter than its header and declared data ({1} bytes)")]
    Short(usize, usize),
    /// An unknown `kind`.
    #[error("raw event of unknown kind {0}")]
    Kind(u32),
}

/// A decoded raw event, borrowing its strings from the record.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_mono_ns: u64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// What happened.
    pub kind: Kind,
    /// Process (thread group) id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// User id.
    pub uid: u32,
    /// 0 or -errno.
    pub ret: i32,
    /// file: `f_flags` (or the open flags of a failed open); socket: type.
    pub flags: u32,
    /// file: `f_mode`; socket: protocol.
    pub mode: u32,
    /// Address family.
    pub family: u16,
    /// IP protocol number.
    pub proto: u16,
    /// Local port.
    pub lport: u16,
    /// Remote port.
    pub rport: u16,
    /// Local address (4 or 16 bytes used).
    pub laddr: [u8; 16],
    /// Remote address.
    pub raddr: [u8; 16],
    /// Task command name.
    pub comm: &'a [u8],
    /// False when the kernel left the cgroup names out because it sent them earlier in the
    /// same generation (the pipeline knows them by `cgroup_id`).
    pub cg_names: bool,
    /// Name of the task's cgroup.
    pub cg_leaf: &'a [u8],
    /// Name of its parent cgroup.
    pub cg_parent: &'a [u8],
    /// exec: filename; failed open, unlink, rename, chmod: the name as given.
    pub path: &'a [u8],
    /// exec: argv, NUL-separated.
    pub args: &'a [u8],
    /// Path components recorded by the kernel, leaf first (see [`RawEvent::file_path`]).
    pub ncomps: u32,
    /// The components, each NUL-terminated, leaf first.
    pub comps: &'a [u8],
    /// De-duplication generation (window) the probe ran in.
    pub gen: u32,
    /// Which syscall (`enum karmor_sys`; see [`syscall_name`]).
    pub sys: u16,
    /// When set, the kernel counts later repeats of this event under this key instead of
    /// sending them; user space adds the count at the window flush.
    pub dedup: Option<&'a KernelKey>,
    /// The task's executable as the kernel identifies it in [`CountKey::exe`] (exec: the
    /// new image's); 0 for kernel threads and records of older probes.
    pub exe_id: u64,
    /// The parent's executable, identified the same way.
    pub parent_exe_id: u64,
    /// With [`COMPS_DIR_DEF`] or [`COMPS_DIR_REF`] in `ncomps`: the id of the directory the
    /// record defines or names (see `Pipeline::handle`); else 0.
    pub dir: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// The generation stored in a kernel key.
pub fn key_gen(key: &KernelKey) -> u32 {
    u32_at(key, KEY_OFF_GEN)
}

/// Decodes one ring buffer record.
pub fn decode(b: &[u8]) -> Result<RawEvent<'_>, DecodeError> {
    if b.len() < HEADER_SIZE {
        return Err(DecodeError::Short(b.len(), HEADER_SIZE));
    }
    let kind_raw = u32_at(b, OFF_KIND);
    let kind = Kind::from_u32(kind_raw).ok_or(DecodeError::Kind(kind_raw))?;
    let cg_len = u16_at(b, OFF_CG_LEN) as usize;
    let path_len = u16_at(b, OFF_PATH_LEN) as usize;
    let args_len = u16_at(b, OFF_ARGS_LEN) as usize;
    let comps_len = u16_at(b, OFF_COMPS_LEN) as usize;
    let need = HEADER_SIZE + cg_len + path_len + args_len + comps_len;
    if b.len() < need {
        return Err(DecodeError::Short(b.len(), need));
    }
    let mut laddr = [0u8; 16];
    laddr.copy_from_slice(&b[OFF_LADDR..OFF_LADDR + 16]);
    let mut raddr = [0u8; 16];
    raddr.copy_from_slice(&b[OFF_RADDR..OFF_RADDR + 16]);
    let mut at = HEADER_SIZE;
    let cg = &b[at..at + cg_len];
    at += cg_len;
    let (cg_leaf, cg_parent) = match cg.iter().position(|&c| c == 0) {
        Some(i) => (&cg[..i], cstr(&cg[i + 1..])),
        None => (cg, &cg[cg.len()..]),
    };
    let path = cstr(&b[at..at + path_len]);
    at += path_len;
    let args = &b[at..at + args_len];
    at += args_len;
    let comps = &b[at..at + comps_len];
    let dedup = (u16_at(b, OFF_DEDUP) != 0)
        .then(|| <&KernelKey>::try_from(&b[OFF_KEY..OFF_KEY + KEY_SIZE]).ok())
        .flatten();
    Ok(RawEvent {
        ts_mono_ns: u64_at(b, OFF_TS),
        cgroup_id: u64_at(b, OFF_CGROUP_ID),
        kind,
        pid: u32_at(b, OFF_PID),
        ppid: u32_at(b, OFF_PPID),
        uid: u32_at(b, OFF_UID),
        ret: u32_at(b, OFF_RET) as i32,
        flags: u32_at(b, OFF_FLAGS),
        mode: u32_at(b, OFF_MODE),
        family: u16_at(b, OFF_FAMILY),
        proto: u16_at(b, OFF_PROTO),
        lport: u16_at(b, OFF_LPORT),
        rport: u16_at(b, OFF_RPORT),
        laddr,
        raddr,
        comm: cstr(&b[OFF_COMM..OFF_COMM + 16]),
        cg_names: cg_len > 0,
        cg_leaf,
        cg_parent,
        path,
        args,
        ncomps: u32_at(b, OFF_NCOMPS),
        comps,
        gen: u32_at(b, OFF_GEN),
        sys: u16_at(b, OFF_SYS),
        dedup,
        exe_id: u64_at(b, OFF_EXE),
        parent_exe_id: u64_at(b, OFF_PEXE),
        dir: u64_at(b, OFF_DIR),
    })
}

/// Encodes an event in the kernel's layout (synthetic feeds and tests). The cgroup names are
/// written when `cg_names` is set or either name is non-empty.
pub fn encode(e: &RawEvent<'_>) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_SIZE];
    b[OFF_TS..OFF_TS + 8].copy_from_slice(&e.ts_mono_ns.to_le_bytes());
    b[OFF_CGROUP_ID..OFF_CGROUP_ID + 8].copy_from_slice(&e.cgroup_id.to_le_bytes());
    b[OFF_KIND..OFF_KIND + 4].copy_from_slice(&(e.kind as u32).to_le_bytes());
    b[OFF_PID..OFF_PID + 4].copy_from_slice(&e.pid.to_le_bytes());
    b[OFF_PPID..OFF_PPID + 4].copy_from_slice(&e.ppid.to_le_bytes());
    b[OFF_UID..OFF_UID + 4].copy_from_slice(&e.uid.to_le_bytes());
    b[OFF_RET..OFF_RET + 4].copy_from_slice(&e.ret.to_le_bytes());
    b[OFF_FLAGS..OFF_FLAGS + 4].copy_from_slice(&e.flags.to_le_bytes());
    b[OFF_MODE..OFF_MODE + 4].copy_from_slice(&e.mode.to_le_bytes());
    b[OFF_FAMILY..OFF_FAMILY + 2].copy_from_slice(&e.family.to_le_bytes());
    b[OFF_PROTO..OFF_PROTO + 2].copy_from_slice(&e.proto.to_le_bytes());
    b[OFF_LPORT..OFF_LPORT + 2].copy_from_slice(&e.lport.to_le_bytes());
    b[OFF_RPORT..OFF_RPORT + 2].copy_from_slice(&e.rport.to_le_bytes());
    b[OFF_LADDR..OFF_LADDR + 16].copy_from_slice(&e.laddr);
    b[OFF_RADDR..OFF_RADDR + 16].copy_from_slice(&e.raddr);
    let n = e.comm.len().min(15);
    b[OFF_COMM..OFF_COMM + n].copy_from_slice(&e.comm[..n]);
    b[OFF_NCOMPS..OFF_NCOMPS + 4].copy_from_slice(&e.ncomps.to_le_bytes());
    b[OFF_GEN..OFF_GEN + 4].copy_from_slice(&e.gen.to_le_bytes());
    b[OFF_SYS..OFF_SYS + 2].copy_from_slice(&e.sys.to_le_bytes());
    b[OFF_EXE..OFF_EXE + 8].copy_from_slice(&e.exe_id.to_le_bytes());
    b[OFF_PEXE..OFF_PEXE + 8].copy_from_slice(&e.parent_exe_id.to_le_bytes());
    b[OFF_DIR..OFF_DIR + 8].copy_from_slice(&e.dir.to_le_bytes());
    if let Some(k) = e.dedup {
        b[OFF_DEDUP..OFF_DEDUP + 2].copy_from_slice(&1u16.to_le_bytes());
        b[OFF_KEY..OFF_KEY + KEY_SIZE].copy_from_slice(k);
    }
    let str_with_nul = |b: &mut Vec<u8>, s: &[u8], max: usize| -> usize {
        let n = s.len().min(max - 1);
        b.extend_from_slice(&s[..n]);
        b.push(0);
        n + 1
    };
    let mut cg_len = 0;
    if e.cg_names || !e.cg_leaf.is_empty() || !e.cg_parent.is_empty() {
        cg_len += str_with_nul(&mut b, e.cg_leaf, CG_LEN);
        cg_len += str_with_nul(&mut b, e.cg_parent, CG_LEN);
    }
    let path_len = if e.path.is_empty() {
        0
    } else {
        str_with_nul(&mut b, e.path, PATH_LEN)
    };
    let args_len = e.args.len().min(ARGS_LEN - 1);
    b.extend_from_slice(&e.args[..args_len]);
    b.extend_from_slice(e.comps);
    let lens = [cg_len, path_len, args_len, e.comps.len()];
    for (i, len) in lens.iter().enumerate() {
        let at = OFF_CG_LEN + 2 * i;
        b[at..at + 2].copy_from_slice(&(*len as u16).to_le_bytes());
    }
    b
}

/// Path components for a path, leaf first, NUL-terminated, as the kernel writes them
/// (synthetic feeds, tests): their count and bytes.
pub fn comps_of(path: &str) -> (u32, Vec<u8>) {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut out = Vec::new();
    let mut n = 0;
    for part in parts.iter().rev().take(MAX_COMPS) {
        let bytes = part.as_bytes();
        let len = bytes.len().min(COMP_LEN - 1);
        out.extend_from_slice(&bytes[..len]);
        out.push(0);
        n += 1;
    }
    if parts.len() > MAX_COMPS {
        n |= COMPS_TRUNCATED;
    }
    (n, out)
}

/// The `syscall` column for `enum karmor_sys`.
pub fn syscall_name(sys: u16) -> Option<&'static str> {
    Some(match sys {
        1 => "SYS_OPEN",
        2 => "SYS_OPENAT",
        3 => "SYS_OPENAT2",
        4 => "SYS_CREAT",
        5 => "SYS_UNLINK",
        6 => "SYS_UNLINKAT",
        7 => "SYS_RMDIR",
        8 => "SYS_RENAME",
        9 => "SYS_RENAMEAT",
        10 => "SYS_RENAMEAT2",
        11 => "SYS_CHMOD",
        12 => "SYS_FCHMODAT",
        13 => "SYS_FCHMOD",
        14 => "SYS_CHOWN",
        15 => "SYS_LCHOWN",
        16 => "SYS_FCHOWNAT",
        17 => "SYS_FCHOWN",
        18 => "SYS_FCHMODAT2",
        _ => return None,
    })
}

/// Size of `struct count_key`, a key of the kernel's `counts` map.
pub const COUNT_KEY_SIZE: usize = 24;
/// Size of `struct count_val`.
pub const COUNT_VAL_SIZE: usize = 48;
const CK_CGROUP_ID: usize = 0;
const CK_EXE: usize = 8;
const CK_GEN: usize = 16;
const CK_ITEM: usize = 20;
const CV_COUNT: usize = 0;
const CV_FIRST_NS: usize = 8;
const CV_TGID: usize = 16;
const CV_PPID: usize = 20;
const CV_UID: usize = 24;
const CV_COMM: usize = 32;
/// Items at or above this are capability checks (`COUNT_CAP` in the probes).
pub const COUNT_CAP: u32 = 0x1_0000;

/// A key of the kernel's `counts` map, as bytes (`struct count_key`).
pub type CountKeyBytes = [u8; COUNT_KEY_SIZE];
/// A value of the kernel's `counts` map, as bytes (`struct count_val`).
pub type CountValBytes = [u8; COUNT_VAL_SIZE];

/// What the kernel counted under one key of its `counts` map in one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<'a> {
    /// cgroup v2 id of the tasks.
    pub cgroup_id: u64,
    /// The executable (its inode's kernel address), as exec records carry it in
    /// [`RawEvent::exe_id`].
    pub exe_id: u64,
    /// Generation (window).
    pub gen: u32,
    /// What was counted.
    pub item: CountedItem,
    /// Calls or checks.
    pub count: u64,
    /// CLOCK_MONOTONIC time of the first.
    pub first_ns: u64,
    /// Process that made the first, its parent and user.
    pub pid: u32,
    /// Parent of `pid`.
    pub ppid: u32,
    /// User of `pid`.
    pub uid: u32,
    /// Command name of `pid`.
    pub comm: &'a [u8],
}

/// A system call or a capability check, as the `counts` map's item encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountedItem {
    /// A system call, by number.
    Syscall(u16),
    /// A capability check, by capability number, and whether it was denied.
    Capability {
        /// `CAP_*` number.
        cap: u16,
        /// The check failed.
        denied: bool,
    },
}

impl CountedItem {
    /// The item of the kernel's encoding (`nr`, or `COUNT_CAP | cap << 1 | denied`).
    pub fn from_raw(item: u32) -> CountedItem {
        if item >= COUNT_CAP {
            let c = item - COUNT_CAP;
            CountedItem::Capability {
                cap: (c >> 1) as u16,
                denied: c & 1 != 0,
            }
        } else {
            CountedItem::Syscall(item as u16)
        }
    }

    /// The kernel's encoding of this item.
    pub fn to_raw(self) -> u32 {
        match self {
            CountedItem::Syscall(nr) => nr as u32,
            CountedItem::Capability { cap, denied } => {
                COUNT_CAP | (cap as u32) << 1 | denied as u32
            }
        }
    }
}

/// Decodes one entry of the kernel's `counts` map.
pub fn decode_counted<'a>(key: &CountKeyBytes, val: &'a CountValBytes) -> Counted<'a> {
    Counted {
        cgroup_id: u64_at(key, CK_CGROUP_ID),
        exe_id: u64_at(key, CK_EXE),
        gen: u32_at(key, CK_GEN),
        item: CountedItem::from_raw(u32_at(key, CK_ITEM)),
        count: u64_at(val, CV_COUNT),
        first_ns: u64_at(val, CV_FIRST_NS),
        pid: u32_at(val, CV_TGID),
        ppid: u32_at(val, CV_PPID),
        uid: u32_at(val, CV_UID),
        comm: cstr(&val[CV_COMM..CV_COMM + 16]),
    }
}

/// Encodes a `counts` entry in the kernel's layout (tests, synthetic feeds).
pub fn encode_counted(c: &Counted<'_>) -> (CountKeyBytes, CountValBytes) {
    let mut k = [0u8; COUNT_KEY_SIZE];
    k[CK_CGROUP_ID..CK_CGROUP_ID + 8].copy_from_slice(&c.cgroup_id.to_le_bytes());
    k[CK_EXE..CK_EXE + 8].copy_from_slice(&c.exe_id.to_le_bytes());
    k[CK_GEN..CK_GEN + 4].copy_from_slice(&c.gen.to_le_bytes());
    k[CK_ITEM..CK_ITEM + 4].copy_from_slice(&c.item.to_raw().to_le_bytes());
    let mut v = [0u8; COUNT_VAL_SIZE];
    v[CV_COUNT..CV_COUNT + 8].copy_from_slice(&c.count.to_le_bytes());
    v[CV_FIRST_NS..CV_FIRST_NS + 8].copy_from_slice(&c.first_ns.to_le_bytes());
    v[CV_TGID..CV_TGID + 4].copy_from_slice(&c.pid.to_le_bytes());
    v[CV_PPID..CV_PPID + 4].copy_from_slice(&c.ppid.to_le_bytes());
    v[CV_UID..CV_UID + 4].copy_from_slice(&c.uid.to_le_bytes());
    let n = c.comm.len().min(15);
    v[CV_COMM..CV_COMM + n].copy_from_slice(&c.comm[..n]);
    (k, v)
}

/// The generation of a `counts` key.
pub fn count_key_gen(key: &CountKeyBytes) -> u32 {
    u32_at(key, CK_GEN)
}

/// `SYS_<NAME>` of a system call number (x86-64), from the table generated from the kernel
/// headers (`scripts/gen-syscall-names.sh`); `SYS_<nr>` for a number the headers do not name.
pub fn syscall_nr_name(nr: u16) -> std::borrow::Cow<'static, str> {
    match crate::kernel_names::SYSCALLS
        .get(nr as usize)
        .copied()
        .flatten()
    {
        Some(name) => name.into(),
        None => format!("SYS_{nr}").into(),
    }
}

/// `CAP_<NAME>` of a capability number; `CAP_<n>` for one the headers do not name.
pub fn capability_name(cap: u16) -> std::borrow::Cow<'static, str> {
    match crate::kernel_names::CAPABILITIES.get(cap as usize) {
        Some(name) => (*name).into(),
        None => format!("CAP_{cap}").into(),
    }
}

/// An address from the kernel's bytes for `family` (AF_INET = 2, AF_INET6 = 10).
pub fn ip(family: u16, bytes: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        10 => {
            let v6 = Ipv6Addr::from(*bytes);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

impl<'a> RawEvent<'a> {
    /// The bytes that identify the file of a file event (components and name), for hashing
    /// without building the path.
    pub fn path_identity(&self) -> (&'a [u8], &'a [u8]) {
        (self.comps, self.path)
    }

    /// The absolute path of a file event: the kernel's components joined root first; for a
    /// name given relative to a directory, that name under the directory the components give.
    /// A path deeper than the kernel records starts with `/…/`.
    pub fn file_path(&self) -> String {
        let n = ((self.ncomps & COMPS_COUNT) as usize).min(MAX_COMPS);
        let parts: Vec<&[u8]> = self.comps.split(|&c| c == 0).take(n).collect();
        let mut out = String::new();
        if self.ncomps & COMPS_TRUNCATED != 0 {
            out.push_str("/\u{2026}");
        }
        for part in parts.iter().rev() {
            out.push('/');
            out.push_str(&String::from_utf8_lossy(part));
        }
        let name = String::from_utf8_lossy(self.path);
        if name.starts_with('/') {
            return name.into_owned();
        }
        if !name.is_empty() {
            let name = name.strip_prefix("./").unwrap_or(&name);
            out.push('/');
            out.push_str(name);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// An empty event of `kind` (for synthetic feeds and tests).
    pub fn empty(kind: Kind) -> RawEvent<'static> {
        RawEvent {
            ts_mono_ns: 0,
            cgroup_id: 0,
            kind,
            pid: 0,
            ppid: 0,
            uid: 0,
            ret: 0,
            flags: 0,
            mode: 0,
            family: 0,
            proto: 0,
            lport: 0,
            rport: 0,
            laddr: [0; 16],
            raddr: [0; 16],
            comm: b"",
            cg_leaf: b"",
            cg_parent: b"",
            path: b"",
            args: b"",
            ncomps: 0,
            comps: &[],
            cg_names: false,
            gen: 0,
            sys: 0,
            dedup: None,
            exe_id: 0,
            parent_exe_id: 0,
            dir: 0,
        }
    }

    /// The number of path components in `comps` (without the flags of `ncomps`).
    pub fn comps_count(&self) -> u32 {
        self.ncomps & COMPS_COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut e = RawEvent::empty(Kind::Exec);
        e.ts_mono_ns = 123;
        e.cgroup_id = 77;
        e.pid = 10;
        e.ppid = 1;
        e.uid = 33;
        e.comm = b"sh";
        e.cg_leaf = b"cri-containerd-abc.scope";
        e.path = b"/bin/sh";
        e.args = b"sh\0-c\0true\0";
        let b = encode(&e);
        let d = decode(&b).unwrap();
        assert_eq!(
            (d.ts_mono_ns, d.cgroup_id, d.kind, d.pid, d.ppid, d.uid),
            (123, 77, Kind::Exec, 10, 1, 33)
        );
        assert_eq!(d.path, b"/bin/sh");
        assert_eq!(d.args, b"sh\0-c\0true\0");
        assert_eq!(d.cg_leaf, b"cri-containerd-abc.scope");
        assert_eq!(d.comm, b"sh");
        assert!(d.cg_names && d.dedup.is_none());
        // Only the header and the strings used travel.
        assert_eq!(b.len(), HEADER_SIZE + 25 + 1 + 8 + 11);
    }

    #[test]
    fn names_left_out_and_dedup_key() {
        let mut key = [0u8; KEY_SIZE];
        key[KEY_OFF_GEN..KEY_OFF_GEN + 4].copy_from_slice(&7u32.to_le_bytes());
        key[0] = 42;
        let (n, comps) = comps_of("/etc/hostname");
        let mut e = RawEvent::empty(Kind::File);
        e.gen = 7;
        e.sys = 2;
        e.ncomps = n;
        e.comps = &comps;
        e.dedup = Some(&key);
        let b = encode(&e);
        assert_eq!(b.len(), HEADER_SIZE + "hostname\0etc\0".len());
        let d = decode(&b).unwrap();
        assert!(!d.cg_names);
        assert_eq!((d.cg_leaf, d.cg_parent), (&b""[..], &b""[..]));
        assert_eq!(d.dedup, Some(&key));
        assert_eq!(key_gen(d.dedup.unwrap()), 7);
        assert_eq!((d.gen, d.sys), (7, 2));
        assert_eq!(syscall_name(d.sys), Some("SYS_OPENAT"));
        assert_eq!(d.file_path(), "/etc/hostname");
    }

    #[test]
    fn counted_entries_round_trip_and_are_named_as_kubearmor_names_them() {
        let c = Counted {
            cgroup_id: 77,
            exe_id: 0xffff_8880_0000_1000,
            gen: 3,
            item: CountedItem::Capability {
                cap: 21,
                denied: true,
            },
            count: 12,
            first_ns: 99,
            pid: 10,
            ppid: 1,
            uid: 1000,
            comm: b"nginx",
        };
        let (k, v) = encode_counted(&c);
        assert_eq!(decode_counted(&k, &v), c);
        assert_eq!(count_key_gen(&k), 3);
        assert_eq!(CountedItem::from_raw(0x1_0000 | 21 << 1 | 1), c.item);
        assert_eq!(CountedItem::from_raw(257), CountedItem::Syscall(257));
        assert_eq!(syscall_nr_name(0), "SYS_READ");
        assert_eq!(syscall_nr_name(59), "SYS_EXECVE");
        assert_eq!(syscall_nr_name(257), "SYS_OPENAT");
        assert_eq!(syscall_nr_name(231), "SYS_EXIT_GROUP");
        assert_eq!(syscall_nr_name(1000), "SYS_1000");
        assert_eq!(capability_name(0), "CAP_CHOWN");
        assert_eq!(capability_name(21), "CAP_SYS_ADMIN");
        assert_eq!(capability_name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(capability_name(63), "CAP_63");
    }

    #[test]
    fn exec_records_carry_the_executable_identity() {
        let mut e = RawEvent::empty(Kind::Exec);
        e.exe_id = 0xffff_8880_dead_beef;
        e.parent_exe_id = 0xffff_8880_0bad_cafe;
        e.path = b"/bin/true";
        let b = encode(&e);
        let d = decode(&b).unwrap();
        assert_eq!((d.exe_id, d.parent_exe_id), (e.exe_id, e.parent_exe_id));
    }

    #[test]
    fn file_paths_from_components() {
        let (n, slots) = comps_of("/etc/nginx/nginx.conf");
        let mut e = RawEvent::empty(Kind::File);
        e.ncomps = n;
        e.comps = &slots;
        let b = encode(&e);
        let d = decode(&b).unwrap();
        assert_eq!(d.file_path(), "/etc/nginx/nginx.conf");
        // A failed relative open under a directory.
        let (n, slots) = comps_of("/srv/app");
        let mut e = RawEvent::empty(Kind::File);
        e.ncomps = n;
        e.comps = &slots;
        e.path = b"./missing.txt";
        assert_eq!(
            decode(&encode(&e)).unwrap().file_path(),
            "/srv/app/missing.txt"
        );
        e.path = b"/abs/name";
        assert_eq!(decode(&encode(&e)).unwrap().file_path(), "/abs/name");
        let deep = (0..30)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join("/");
        let (n, slots) = comps_of(&format!("/{deep}"));
        let mut e = RawEvent::empty(Kind::File);
        e.ncomps = n;
        e.comps = &slots;
        let p = decode(&encode(&e)).unwrap().file_path();
        assert!(p.starts_with("/\u{2026}/d6/") && p.ends_with("/d29"), "{p}");
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert_eq!(
            decode(&[0; 10]).unwrap_err(),
            DecodeError::Short(10, HEADER_SIZE)
        );
        let mut e = RawEvent::empty(Kind::Exec);
        e.path = b"/bin/sh";
        let b = encode(&e);
        assert!(matches!(
            decode(&b[..b.len() - 1]).unwrap_err(),
            DecodeError::Short(_, _)
        ));
        let mut b = encode(&RawEvent::empty(Kind::File));
        b[16] = 99;
        assert_eq!(decode(&b).unwrap_err(), DecodeError::Kind(99));
    }

    #[test]
    fn addresses_including_v4_mapped_v6() {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(ip(2, &a).unwrap().to_string(), "10.0.0.1");
        let mapped: [u8; 16] = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped().octets();
        assert_eq!(ip(10, &mapped).unwrap().to_string(), "127.0.0.1");
        assert_eq!(
            ip(10, &Ipv6Addr::LOCALHOST.octets()).unwrap().to_string(),
            "::1"
        );
        assert!(ip(1, &a).is_none());
    }
}
