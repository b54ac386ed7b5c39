//! A synthetic sensor: repetitive container behaviour encoded exactly as the kernel writes it,
//! so that the whole user-space pipeline (decode, attribution, de-duplication, writer) can be
//! driven without the kernel — for the benchmark and the crash tests.

use crate::raw::{comps_of, encode, Kind, RawEvent};

/// Generates ring-buffer records for `containers` containers.
pub struct SyntheticFeed {
    containers: Vec<(u64, String, String)>,
    paths: Vec<(u32, Vec<u8>)>,
    seq: u64,
}

impl SyntheticFeed {
    /// A feed spread over `containers` containers (each with its own cgroup).
    pub fn new(containers: u32) -> Self {
        let containers = (0..containers.max(1))
            .map(|i| {
                let id = format!("{:064x}", 0x5eed_0000_u64 + i as u64);
                let uid = format!("{:08x}_0000_4000_8000_{:012x}", i, i);
                (
                    1000 + i as u64,
                    format!("cri-containerd-{id}.scope"),
                    format!("kubepods-burstable-pod{uid}.slice"),
                )
            })
            .collect();
        // File paths arrive as the kernel records them: components, leaf first.
        let paths = (0..1024)
            .map(|i| comps_of(&format!("/srv/app/data/file-{i}.dat")))
            .collect();
        SyntheticFeed {
            containers,
            paths,
            seq: 0,
        }
    }

    /// The next record, with monotonic time `ts`.
    pub fn next_record(&mut self, ts: u64) -> Vec<u8> {
        self.seq += 1;
        let s = self.seq;
        let (cg, leaf, parent) = &self.containers[(s % self.containers.len() as u64) as usize];
        let kind = match s % 10 {
            0 => Kind::Exec,
            1 | 2 => Kind::Connect,
            _ => Kind::File,
        };
        let mut e = RawEvent::empty(kind);
        e.ts_mono_ns = ts;
        e.cgroup_id = *cg;
        e.cg_leaf = leaf.as_bytes();
        e.cg_parent = parent.as_bytes();
        e.pid = 4_000_000 + (*cg as u32 % 1000);
        e.ppid = 3_999_999;
        e.uid = 1000;
        e.comm = b"app";
        match kind {
            Kind::Exec => {
                e.path = b"/usr/bin/worker";
                e.args = b"worker\0--once\0";
            }
            Kind::Connect => {
                e.family = 2;
                e.proto = 6;
                e.raddr[..4].copy_from_slice(&[10, 96, 0, (s % 4) as u8 + 1]);
                e.rport = 5432;
                e.lport = 40000 + (s % 20000) as u16;
            }
            _ => {
                let (n, slots) = &self.paths[(s / 10 % self.paths.len() as u64) as usize];
                e.ncomps = *n;
                e.comps = slots;
            }
        }
        encode(&e)
    }
}
