//! Properties of `diff` over generated bundles (real Parquet through the contract writers, a
//! real DuckDB store): `diff A A` is empty, and `diff A B` ∪ A covers B (every behaviour of B
//! is covered by A's generalised items or listed as new).

use std::path::Path;

use karmor_analyzer::drift::{self, diff::covers_all, items, DiffOptions, Items};
use karmor_analyzer::recommend::{HostSelect, Scope, WorkloadSelect};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};
use proptest::prelude::*;

const T0: i64 = 1_795_161_600 * 1_000_000_000;
const SEC: i64 = 1_000_000_000;

const EXES: &[&str] = &[
    "/app/server",
    "/bin/sh",
    "/usr/bin/curl",
    "/usr/local/bin/php",
];
const DIRS: &[&str] = &[
    "/etc",
    "/var/lib/app",
    "/tmp",
    "/proc/4242",
    "/srv/uploads/2026/11",
];
const NAMES: &[&str] = &[
    "a.conf",
    "b",
    "sess_3f2a9c0d1e4b5a6f7c8d9e0a1b2c3d4e",
    "c.log",
    "phpA1b2C3",
    "e",
    "f.so.1",
];
const ACCESS: &[&str] = &["read", "write", "create", "delete"];

/// (workload or host, op, exe, parent, dir, name, access, peer, minute).
type Spec = (u8, u8, u8, u8, u8, u8, u8, u8, u16);

fn event(s: &Spec) -> Event {
    let (w, op, exe, parent, dir, name, access, peer, minute) = *s;
    let host = w % 4 == 3;
    let ts = T0 + i64::from(minute) * 60 * SEC;
    let mut e = Event {
        ts_first: ts,
        ts_last: ts + SEC,
        count: 1 + u64::from(minute % 3),
        cluster: Some("prop".into()),
        node: "node-1".into(),
        host,
        source: Source::Ebpf,
        pid: Some(100 + i32::from(minute % 7)),
        uid: Some(0),
        process: Some(EXES[exe as usize % EXES.len()].into()),
        parent_process: Some(EXES[parent as usize % EXES.len()].into()),
        result: Some("Passed".into()),
        ..Event::default()
    };
    if !host {
        let w = w % 3;
        e.namespace = Some("prop".into());
        e.pod = Some(format!("w{w}-abc-1"));
        e.container_id = Some(format!("cid-w{w}"));
        e.workload_kind = Some("Deployment".into());
        e.workload = Some(format!("w{w}"));
    }
    match op % 3 {
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
        _ => {
            e.op = Op::Network;
            e.proto = Some("tcp".into());
            e.direction = Some(if access % 2 == 0 { "connect" } else { "accept" }.into());
            e.remote_addr = Some(format!("10.0.0.{}", peer % 8));
            e.remote_port = Some(443);
            e.local_port = Some(8080);
        }
    }
    e
}

fn items_of(dir: &Path, specs: &[Spec]) -> Items {
    write_bundle(
        dir,
        specs.iter().map(event).collect(),
        &BundleOptions {
            producer: "proptest".into(),
            ..BundleOptions::default()
        },
    )
    .unwrap();
    let store = Store::in_memory().unwrap();
    let r = store.merge_bundle(dir).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let scope = Scope {
        workloads: Some(WorkloadSelect::default()),
        hosts: Some(HostSelect::default()),
        ..Scope::default()
    };
    items::read(&store, &scope).unwrap()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u16..600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn diff_of_a_with_itself_is_empty_and_b_is_covered(
        a in prop::collection::vec(spec(), 1..60),
        b in prop::collection::vec(spec(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let ia = items_of(&dir.path().join("a"), &a);
        let ib = items_of(&dir.path().join("b"), &b);
        let opts = DiffOptions::default();

        let same = drift::diff(&ia, &ia, &opts);
        prop_assert!(same.changes.is_empty(), "{:?}", same.changes);
        prop_assert!(!same.has_new());

        let ab = drift::diff(&ia, &ib, &opts);
        prop_assert!(covers_all(&ia, &ab, &ib, &opts), "{:?}", ab.changes);
        // Without its new items, the report no longer covers B whenever something was new.
        let mut without = ab.clone();
        without.changes.retain(|c| c.kind != drift::ChangeKind::New);
        prop_assert_eq!(covers_all(&ia, &without, &ib, &opts), !ab.has_new());
    }
}

/// Items read by a store file (from its per-file digests, and rows where a window cuts a
/// file) equal items read from the rows by an in-memory store, for any windows and scope.
mod digests {
    use super::*;
    use karmor_analyzer::drift::items::Window;

    /// Events of `specs`, each first seen at its own instant (no ties in "first seen", so
    /// that "introduced by" is one answer).
    fn events(specs: &[Spec]) -> Vec<Event> {
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut e = event(s);
                e.ts_first += i as i64 * 1_000;
                e.ts_last += i as i64 * 1_000;
                e
            })
            .collect()
    }

    fn scopes() -> Vec<Scope> {
        let all = Scope {
            workloads: Some(WorkloadSelect::default()),
            hosts: Some(HostSelect::default()),
            ..Scope::default()
        };
        let one = Scope {
            workloads: Some(WorkloadSelect {
                namespace: Some("prop".into()),
                kind: Some("Deployment".into()),
                name: Some("w1".into()),
            }),
            ..Scope::default()
        };
        let node = Scope {
            hosts: Some(HostSelect {
                node: Some("node-1".into()),
            }),
            ..Scope::default()
        };
        vec![all, one, node]
    }

    /// A window bound: on an hour (files are hours: windows take them whole or not at all)
    /// or any minute (windows cut through them).
    fn minute() -> impl Strategy<Value = u16> {
        prop_oneof![(0u16..11).prop_map(|h| h * 60), 0u16..660]
    }

    fn window(a: Option<u16>, b: Option<u16>) -> Window {
        (
            a.map(|m| T0 + i64::from(m) * 60 * SEC),
            b.map(|m| T0 + i64::from(m) * 60 * SEC),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn a_store_file_answers_as_the_rows_do(
            specs in prop::collection::vec(spec(), 1..80),
            a in (prop::option::of(minute()), prop::option::of(minute())),
            b in (prop::option::of(minute()), prop::option::of(minute())),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let bundle = dir.path().join("bundle");
            write_bundle(&bundle, events(&specs), &BundleOptions {
                producer: "proptest".into(),
                ..BundleOptions::default()
            }).unwrap();
            let rows = Store::in_memory().unwrap();
            rows.merge_bundle(&bundle).unwrap();
            let file = Store::open(&dir.path().join("store.duckdb")).unwrap();
            file.merge_bundle(&bundle).unwrap();
            let (wa, wb) = (window(a.0, a.1), window(b.0, b.1));
            for scope in scopes() {
                let windowed = Scope { since_ns: wa.0, until_ns: wa.1, ..scope.clone() };
                prop_assert_eq!(items::read(&file, &windowed).unwrap(), items::read(&rows, &windowed).unwrap());
                prop_assert_eq!(
                    items::read_counts(&file, &scope).unwrap(),
                    items::read_counts(&rows, &scope).unwrap()
                );
                prop_assert_eq!(
                    drift::stability::startup_seen(&file, &scope).unwrap(),
                    drift::stability::startup_seen(&rows, &scope).unwrap()
                );
                prop_assert_eq!(
                    items::read_pair(&file, &scope, wa, wb).unwrap(),
                    items::read_pair(&rows, &scope, wa, wb).unwrap()
                );
            }
        }
    }
}
