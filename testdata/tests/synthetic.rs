//! The benchmark generator: exact row counts, the promised mix, determinism and speed.

use std::collections::BTreeSet;

use karmor_contract::{Event, Op};
use karmor_testdata::synthetic::{self, BASE_NS, SPAN_NS};

#[test]
fn yields_exactly_the_requested_rows() {
    for n in [0usize, 1, 7, 1000, 123_457] {
        let it = synthetic::events(n, 42);
        assert_eq!(it.len(), n);
        assert_eq!(it.count(), n);
    }
}

#[test]
fn op_mix_is_20_60_20() {
    let n = 200_000;
    let mut ops = [0usize; 5];
    for e in synthetic::events(n, 7) {
        ops[e.op as usize] += 1;
    }
    let share = |op: Op| ops[op as usize] as f64 / n as f64;
    assert!((share(Op::Process) - 0.20).abs() < 0.02, "{ops:?}");
    assert!((share(Op::File) - 0.60).abs() < 0.02, "{ops:?}");
    assert!((share(Op::Network) - 0.20).abs() < 0.02, "{ops:?}");
    assert_eq!(ops[Op::Syscall as usize] + ops[Op::Capability as usize], 0);
}

#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let a: Vec<Event> = synthetic::events(2000, 1).collect();
    let b: Vec<Event> = synthetic::events(2000, 1).collect();
    let c: Vec<Event> = synthetic::events(2000, 2).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn rows_fit_the_model() {
    let mut pods = BTreeSet::new();
    let mut workloads = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    let mut procs_of_one = BTreeSet::new();
    let mut files_of_one = BTreeSet::new();
    for e in synthetic::events(300_000, 3) {
        assert!(e.ts_first >= BASE_NS && e.ts_last < BASE_NS + SPAN_NS + 3_600_000_000_000);
        assert!(e.ts_first <= e.ts_last);
        assert!((1..=50).contains(&e.count));
        assert!(e.pid.is_some() && e.process.is_some() && e.pod_uid.is_some());
        match e.op {
            Op::File => assert!(e.path.is_some() && e.access.is_some()),
            Op::Network => {
                assert!(e.proto.is_some() && e.direction.is_some() && e.remote_addr.is_some())
            }
            _ => assert!(e.path.is_none()),
        }
        if e.workload.as_deref() == Some("payments-api") {
            procs_of_one.insert(e.process.clone().unwrap());
            if let Some(p) = &e.path {
                files_of_one.insert(p.clone());
            }
        }
        pods.insert(e.pod.unwrap());
        workloads.insert(e.workload.unwrap());
        namespaces.insert(e.namespace.unwrap());
        nodes.insert(e.node);
    }
    assert_eq!(pods.len(), synthetic::WORKLOADS * synthetic::REPLICAS);
    assert_eq!(workloads.len(), synthetic::WORKLOADS);
    assert_eq!(namespaces.len(), synthetic::NAMESPACES);
    assert!(
        nodes.len() > 15 && nodes.len() <= synthetic::NODES,
        "{nodes:?}"
    );
    assert!(procs_of_one.len() <= synthetic::PROCESSES && procs_of_one.len() > 20);
    assert!(files_of_one.len() <= synthetic::FILES && files_of_one.len() > 200);
}
