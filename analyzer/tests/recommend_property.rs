//! Properties of `recommend` over generated bundles (real Parquet through the contract
//! writers, a real DuckDB store, the real simulator):
//!
//! - every draft passes our validator and the CRD schemas;
//! - a draft of all the behaviour (noise included) simulates clean on the data it came from,
//!   with a `block` default posture: nothing is blocked;
//! - the same holds when `--max-rules` forces more generalisation;
//! - with the default `--include`, whatever is blocked was left out as noise by the draft.

#[path = "common/openapi.rs"]
mod openapi;

use std::collections::BTreeSet;
use std::path::Path;

use karmor_analyzer::policy::{validate_policy, Outcome, Policy};
use karmor_analyzer::recommend::{
    recommend, HostSelect, Include, RecommendOptions, Recommendation, Scope, WorkloadSelect,
};
use karmor_analyzer::simulate::{simulate, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};
use proptest::prelude::*;

const T0: i64 = 1_795_161_600 * 1_000_000_000;
const SEC: i64 = 1_000_000_000;
const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

const EXES: &[&str] = &[
    "/app/server",
    "/bin/sh",
    "/usr/bin/curl",
    "/usr/sbin/nginx",
    "/usr/local/bin/php",
    "/bin/ls",
];
const DIRS: &[&str] = &[
    "/etc",
    "/var/lib/app",
    "/tmp",
    "/proc/4242",
    "/var/lib/kubelet/pods/0f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
    "/srv/uploads/2026/11",
    "/usr/lib/x86_64-linux-gnu",
];
const NAMES: &[&str] = &[
    "a.conf",
    "b",
    "sess_3f2a9c0d1e4b5a6f7c8d9e0a1b2c3d4e",
    "c.log",
    "d.db",
    "e",
    "f.so.1",
    "g.pid",
];
const ACCESS: &[&str] = &["read", "read", "write", "create", "delete", "rename"];
const PROTOS: &[&str] = &["tcp", "udp", "unix", "icmp", "raw"];
const CAPS: &[&str] = &["CAP_NET_RAW", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"];

/// One generated behaviour: (workload or host, pod, op, exe, parent, dir, name, access, proto,
/// pid, minute).
type Spec = (u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u16);

fn event(s: &Spec) -> Event {
    let (w, pod, op, exe, parent, dir, name, access, proto, pid, minute) = *s;
    let host = w % 4 == 3;
    let ts = T0 + i64::from(minute) * 60 * SEC;
    let mut e = Event {
        ts_first: ts,
        ts_last: ts + SEC,
        count: 1 + u64::from(minute % 3),
        cluster: Some("prop".into()),
        node: format!("node-{}", pod % 2),
        host,
        source: Source::Ebpf,
        pid: Some(100 + i32::from(pid % 20)),
        ppid: Some(100 + i32::from(parent % 20)),
        uid: Some(0),
        process: Some(EXES[exe as usize % EXES.len()].into()),
        parent_process: Some(if parent % 5 == 0 {
            SHIM.to_string()
        } else {
            EXES[parent as usize % EXES.len()].to_string()
        }),
        result: Some("Passed".into()),
        ..Event::default()
    };
    if !host {
        let w = w % 3;
        let podname = format!("w{w}-abc-{}", pod % 3);
        e.namespace = Some("prop".into());
        e.pod = Some(podname.clone());
        e.container = Some("main".into());
        e.container_id = Some(format!("cid-{podname}"));
        e.workload_kind = Some("Deployment".into());
        e.workload = Some(format!("w{w}"));
        e.labels = vec![
            format!("app=w{w}"),
            format!("pod-template-hash=h{}", pod % 3),
        ];
    }
    match op % 4 {
        0 => e.op = Op::Process,
        1 => {
            e.op = Op::File;
            e.path = Some(format!(
                "{}/{}",
                DIRS[dir as usize % DIRS.len()],
                NAMES[name as usize % NAMES.len()]
            ));
            e.access = Some(ACCESS[access as usize % ACCESS.len()].into());
        }
        2 => {
            e.op = Op::Network;
            e.proto = Some(PROTOS[proto as usize % PROTOS.len()].into());
            e.direction = Some(if access % 2 == 0 { "connect" } else { "accept" }.into());
            e.remote_addr = Some(format!("10.0.0.{}", name));
            e.remote_port = Some(443);
        }
        _ => {
            e.op = Op::Capability;
            e.capability = Some(CAPS[proto as usize % CAPS.len()].into());
        }
    }
    e
}

fn store_of(specs: &[Spec]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Event> = specs.iter().map(event).collect();
    write_bundle(
        &dir.path().join("b"),
        events,
        &BundleOptions {
            producer: "proptest".into(),
            ..BundleOptions::default()
        },
    )
    .unwrap();
    let store = Store::in_memory().unwrap();
    let r = store.merge_bundle(&dir.path().join("b")).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    (dir, store)
}

fn everything() -> Scope {
    Scope {
        workloads: Some(WorkloadSelect::default()),
        hosts: Some(HostSelect::default()),
        ..Scope::default()
    }
}

fn drafts(rec: &Recommendation) -> Vec<Policy> {
    rec.workloads
        .iter()
        .filter_map(|w| w.draft.policy.clone())
        .collect()
}

fn check_valid(policies: &[Policy], crds: &openapi::Crds) {
    for p in policies {
        let v = validate_policy(p);
        assert_eq!(
            v.outcome,
            Outcome::Valid,
            "{:?}\n{}",
            v.errors,
            p.to_yaml().unwrap()
        );
        let value = serde_yaml::to_value(p).unwrap();
        let verdict = crds.check(&value, true).unwrap();
        assert!(verdict.errors.is_empty(), "{:?}", verdict.errors);
    }
}

fn blocked(store: &Store, policies: &[Policy]) -> Vec<String> {
    let sim = simulate(
        store,
        policies,
        &SimOptions {
            include_host: true,
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        },
    )
    .unwrap();
    sim.blocked()
        .map(|e| {
            format!(
                "{} {} {:?} {:?} {}",
                e.workload, e.node, e.op, e.process, e.resource
            )
        })
        .collect()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u16..600,
        ),
    )
        .prop_map(|((a, b, c, d, e, f), (g, h, i, j, k))| (a, b, c, d, e, f, g, h, i, j, k))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn drafts_validate_and_simulate_clean_on_their_data(
        specs in prop::collection::vec(spec(), 1..120),
        max_rules in prop::option::of(2usize..12),
    ) {
        let crds = openapi::Crds::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kubearmor/crds"),
        );
        let (_dir, store) = store_of(&specs);

        let mut opts = RecommendOptions::new(everything());
        opts.include = Include::ALL;
        opts.max_rules = max_rules;
        let rec = recommend(&store, &opts).unwrap();
        let policies = drafts(&rec);
        check_valid(&policies, &crds);
        if let Some(m) = max_rules {
            for w in &rec.workloads {
                let d = &w.draft;
                prop_assert!(
                    d.rules.total() <= m || d.warnings.iter().any(|x| x.contains("--max-rules")),
                    "{} rules over --max-rules {} without a warning", d.rules.total(), m
                );
            }
        }
        let b = blocked(&store, &policies);
        prop_assert!(b.is_empty(), "blocked on its own data: {:?}", b);

        // Default include: only behaviour of processes left out as noise, or held out as
        // suspicious, may be blocked.
        let rec = recommend(&store, &RecommendOptions::new(everything())).unwrap();
        let policies = drafts(&rec);
        check_valid(&policies, &crds);
        let noise: BTreeSet<String> = rec
            .workloads
            .iter()
            .flat_map(|w| {
                w.draft
                    .excluded
                    .values()
                    .flat_map(|e| e.executables.keys().cloned())
                    .chain(w.draft.held_out.iter().map(|h| h.key.process.clone()))
            })
            .collect();
        let sim = simulate(&store, &policies, &SimOptions {
            include_host: true,
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        }).unwrap();
        for e in sim.blocked() {
            let exe = if e.op == Op::Process { e.resource.clone() } else { e.process.clone().unwrap_or_default() };
            prop_assert!(
                noise.contains(&exe) || e.op != Op::Process,
                "blocked a process that was not left out as noise: {:?}", e
            );
        }
    }
}
