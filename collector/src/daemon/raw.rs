//! Raw events as the kernel probes write them into the ring buffer.
//!
//! Mirrors `struct karmor_event` in `bpf/karmor.bpf.c` (little-endian, fixed offsets). Decoding
//! borrows from the ring buffer item: nothing is allocated until the pipeline needs it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Size of `struct karmor_event`.
pub const EVENT_SIZE: usize = 1584;

const OFF_COMM: usize = 84;
const OFF_CG_LEAF: usize = 100;
const OFF_CG_PARENT: usize = 196;
const OFF_PATH: usize = 292;
const OFF_ARGS: usize = 548;
const OFF_NCOMPS: usize = 804;
const OFF_COMPS: usize = 812;
/// Path components the kernel records per event.
pub const MAX_COMPS: usize = 16;
/// Bytes per path component (including the NUL).
pub const COMP_LEN: usize = 48;
const COMPS_TRUNCATED: u32 = 0x8000_0000;
const CG_LEN: usize = 96;
const PATH_LEN: usize = 256;
const ARGS_LEN: usize = 256;

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
            _ => return None,
        })
    }
}

/// Why a ring buffer record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record is shorter than `struct karmor_event`.
    #[error("raw event of {0} bytes, expected {EVENT_SIZE}")]
    Short(usize),
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
    /// file: `f_flags`; socket: type; exec: bytes of args.
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
    /// Name of the task's cgroup.
    pub cg_leaf: &'a [u8],
    /// Name of its parent cgroup.
    pub cg_parent: &'a [u8],
    /// exec: filename; file: absolute path.
    pub path: &'a [u8],
    /// exec: argv, NUL-separated.
    pub args: &'a [u8],
    /// Path components recorded by the kernel, leaf first (see [`RawEvent::file_path`]).
    pub ncomps: u32,
    /// The component slots (`MAX_COMPS` × `COMP_LEN` bytes).
    pub comps: &'a [u8],
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
fn cstr(b: &[u8], at: usize, len: usize) -> &[u8] {
    let field = &b[at..at + len];
    let end = field.iter().position(|&c| c == 0).unwrap_or(len);
    &field[..end]
}

/// Decodes one ring buffer record.
pub fn decode(b: &[u8]) -> Result<RawEvent<'_>, DecodeError> {
    if b.len() < EVENT_SIZE {
        return Err(DecodeError::Short(b.len()));
    }
    let kind_raw = u32_at(b, 16);
    let kind = Kind::from_u32(kind_raw).ok_or(DecodeError::Kind(kind_raw))?;
    let mut laddr = [0u8; 16];
    laddr.copy_from_slice(&b[52..68]);
    let mut raddr = [0u8; 16];
    raddr.copy_from_slice(&b[68..84]);
    let args_len = if kind == Kind::Exec {
        (u32_at(b, 36) as usize).min(ARGS_LEN)
    } else {
        0
    };
    Ok(RawEvent {
        ts_mono_ns: u64_at(b, 0),
        cgroup_id: u64_at(b, 8),
        kind,
        pid: u32_at(b, 20),
        ppid: u32_at(b, 24),
        uid: u32_at(b, 28),
        ret: u32_at(b, 32) as i32,
        flags: u32_at(b, 36),
        mode: u32_at(b, 40),
        family: u16_at(b, 44),
        proto: u16_at(b, 46),
        lport: u16_at(b, 48),
        rport: u16_at(b, 50),
        laddr,
        raddr,
        comm: cstr(b, OFF_COMM, 16),
        cg_leaf: cstr(b, OFF_CG_LEAF, CG_LEN),
        cg_parent: cstr(b, OFF_CG_PARENT, CG_LEN),
        path: cstr(b, OFF_PATH, PATH_LEN),
        args: &b[OFF_ARGS..OFF_ARGS + args_len],
        ncomps: u32_at(b, OFF_NCOMPS),
        comps: &b[OFF_COMPS..OFF_COMPS + MAX_COMPS * COMP_LEN],
    })
}

/// Encodes an event in the kernel's layout (synthetic feeds and tests).
pub fn encode(e: &RawEvent<'_>) -> Vec<u8> {
    let mut b = vec![0u8; EVENT_SIZE];
    b[0..8].copy_from_slice(&e.ts_mono_ns.to_le_bytes());
    b[8..16].copy_from_slice(&e.cgroup_id.to_le_bytes());
    b[16..20].copy_from_slice(&(e.kind as u32).to_le_bytes());
    b[20..24].copy_from_slice(&e.pid.to_le_bytes());
    b[24..28].copy_from_slice(&e.ppid.to_le_bytes());
    b[28..32].copy_from_slice(&e.uid.to_le_bytes());
    b[32..36].copy_from_slice(&e.ret.to_le_bytes());
    let flags = if e.kind == Kind::Exec {
        e.args.len().min(ARGS_LEN) as u32
    } else {
        e.flags
    };
    b[36..40].copy_from_slice(&flags.to_le_bytes());
    b[40..44].copy_from_slice(&e.mode.to_le_bytes());
    b[44..46].copy_from_slice(&e.family.to_le_bytes());
    b[46..48].copy_from_slice(&e.proto.to_le_bytes());
    b[48..50].copy_from_slice(&e.lport.to_le_bytes());
    b[50..52].copy_from_slice(&e.rport.to_le_bytes());
    b[52..68].copy_from_slice(&e.laddr);
    b[68..84].copy_from_slice(&e.raddr);
    let put = |b: &mut Vec<u8>, at: usize, len: usize, s: &[u8]| {
        let n = s.len().min(len - 1);
        b[at..at + n].copy_from_slice(&s[..n]);
    };
    put(&mut b, OFF_COMM, 16, e.comm);
    put(&mut b, OFF_CG_LEAF, CG_LEN, e.cg_leaf);
    put(&mut b, OFF_CG_PARENT, CG_LEN, e.cg_parent);
    put(&mut b, OFF_PATH, PATH_LEN, e.path);
    let n = e.args.len().min(ARGS_LEN);
    b[OFF_ARGS..OFF_ARGS + n].copy_from_slice(&e.args[..n]);
    b[OFF_NCOMPS..OFF_NCOMPS + 4].copy_from_slice(&e.ncomps.to_le_bytes());
    let n = e.comps.len().min(MAX_COMPS * COMP_LEN);
    b[OFF_COMPS..OFF_COMPS + n].copy_from_slice(&e.comps[..n]);
    b
}

/// Component slots for a path, leaf first, as the kernel writes them (synthetic feeds, tests).
pub fn comps_of(path: &str) -> (u32, Vec<u8>) {
    let mut slots = vec![0u8; MAX_COMPS * COMP_LEN];
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut n = 0;
    for (i, part) in parts.iter().rev().take(MAX_COMPS).enumerate() {
        let bytes = part.as_bytes();
        let len = bytes.len().min(COMP_LEN - 1);
        slots[i * COMP_LEN..i * COMP_LEN + len].copy_from_slice(&bytes[..len]);
        n += 1;
    }
    if parts.len() > MAX_COMPS {
        n |= COMPS_TRUNCATED;
    }
    (n, slots)
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
        let n = (self.ncomps & !COMPS_TRUNCATED) as usize;
        (&self.comps[..n.min(MAX_COMPS) * COMP_LEN], self.path)
    }

    /// The absolute path of a file event: the kernel's components joined root first; for a
    /// failed open of a relative name, that name under the directory the components give.
    /// A path deeper than the kernel records starts with `/…/`.
    pub fn file_path(&self) -> String {
        let n = ((self.ncomps & !COMPS_TRUNCATED) as usize).min(MAX_COMPS);
        let mut out = String::new();
        if self.ncomps & COMPS_TRUNCATED != 0 {
            out.push_str("/\u{2026}");
        }
        for i in (0..n).rev() {
            out.push('/');
            out.push_str(&String::from_utf8_lossy(cstr(
                self.comps,
                i * COMP_LEN,
                COMP_LEN,
            )));
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
        }
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
        let deep = (0..20)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join("/");
        let (n, slots) = comps_of(&format!("/{deep}"));
        let mut e = RawEvent::empty(Kind::File);
        e.ncomps = n;
        e.comps = &slots;
        let p = decode(&encode(&e)).unwrap().file_path();
        assert!(p.starts_with("/\u{2026}/d4/") && p.ends_with("/d19"), "{p}");
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert_eq!(decode(&[0; 10]).unwrap_err(), DecodeError::Short(10));
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
