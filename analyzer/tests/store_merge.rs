//! The DuckDB store on real bundles: idempotent merges, provenance, bad segments isolated.

use std::fs;
use std::path::Path;

use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::segment::{write_segment, SegmentMeta};
use karmor_contract::{Event, Op, Source};

const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
const HOUR: i64 = 3_600_000_000_000;

fn ev(node: &str, hour: i64, pod: &str, op: Op, what: &str, count: u64) -> Event {
    let mut e = Event {
        ts_first: T0 + hour * HOUR,
        ts_last: T0 + hour * HOUR + 1_000,
        count,
        node: node.into(),
        namespace: Some("shop".into()),
        pod: Some(pod.into()),
        container: Some("app".into()),
        workload_kind: Some("Deployment".into()),
        workload: Some("web".into()),
        labels: vec!["app=web".into()],
        process: Some("/usr/bin/app".into()),
        parent_process: Some("/bin/sh".into()),
        op,
        source: Source::Ebpf,
        ..Event::default()
    };
    match op {
        Op::File => {
            e.path = Some(what.into());
            e.access = Some("read".into());
        }
        Op::Network => {
            e.proto = Some("tcp".into());
            e.direction = Some("connect".into());
            e.remote_addr = Some(what.into());
            e.remote_port = Some(443);
        }
        _ => e.process = Some(what.into()),
    }
    e
}

fn sample() -> Vec<Event> {
    vec![
        ev("node-a", 0, "web-1", Op::Process, "/usr/bin/app", 1),
        ev("node-a", 0, "web-1", Op::File, "/etc/app.conf", 5),
        ev("node-a", 1, "web-1", Op::File, "/etc/app.conf", 7),
        ev("node-b", 0, "web-2", Op::Network, "10.0.0.9", 3),
        ev("node-b", 2, "web-2", Op::File, "/etc/app.conf", 2),
    ]
}

fn bundle(dir: &Path, events: Vec<Event>) {
    let opts = BundleOptions {
        producer: "test".into(),
        ..BundleOptions::default()
    };
    write_bundle(dir, events, &opts).unwrap();
}

fn count_rows(store: &Store) -> u64 {
    store.health().unwrap().rows
}

#[test]
fn merging_the_same_bundle_twice_adds_nothing_and_keeps_provenance() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let store = Store::in_memory().unwrap();
    let first = store.merge_bundle(dir.path()).unwrap();
    assert_eq!(
        first.merged.len(),
        4,
        "node-a h0, node-a h1, node-b h0, node-b h2"
    );
    assert_eq!(first.rows, 5);
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    let again = store.merge_bundle(dir.path()).unwrap();
    assert!(again.merged.is_empty());
    assert_eq!(again.already_present.len(), 4);
    assert_eq!(count_rows(&store), 5);

    // A copy of the bundle elsewhere is the same data: still nothing added.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir.path(), copy.path());
    let third = store.merge_bundle(copy.path()).unwrap();
    assert_eq!(third.already_present.len(), 4);
    assert_eq!(count_rows(&store), 5);
}

#[test]
fn a_store_file_keeps_its_data_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let db = dir.path().join("store.duckdb");
    {
        let store = Store::open(&db).unwrap();
        store.merge_bundle(dir.path()).unwrap();
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(count_rows(&store), 5);
    assert_eq!(store.merge_bundle(dir.path()).unwrap().merged.len(), 0);
}

#[test]
fn merge_progress_counts_every_segment_and_ends_at_the_rows_merged() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let store = Store::in_memory().unwrap();
    let mut seen = Vec::new();
    let report = store
        .merge_bundle_with_progress(dir.path(), &mut |p| seen.push(*p))
        .unwrap();
    let last = *seen.last().unwrap();
    assert_eq!(last.segments, 4);
    assert_eq!(last.checked, 4);
    assert_eq!(last.rows_total, report.rows);
    assert_eq!(last.rows_done, 5);
    assert!(seen
        .windows(2)
        .all(|w| w[0].checked <= w[1].checked && w[0].rows_done <= w[1].rows_done));
    // Nothing left to do: checks are still reported, no rows are.
    let mut again = Vec::new();
    store
        .merge_bundle_with_progress(dir.path(), &mut |p| again.push(*p))
        .unwrap();
    let last = *again.last().unwrap();
    assert_eq!((last.checked, last.rows_total, last.rows_done), (4, 0, 0));
}

#[test]
fn truncated_segment_is_reported_by_path_and_the_rest_is_analysed() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let m = karmor_contract::bundle::read_manifest(dir.path()).unwrap();
    let victim = m
        .files
        .iter()
        .find(|f| f.node == "node-b" && f.path.contains("hour=10"))
        .unwrap();
    let victim_path = dir.path().join(&victim.path);
    let bytes = fs::read(&victim_path).unwrap();
    fs::write(&victim_path, &bytes[..bytes.len() - 20]).unwrap();

    let store = Store::in_memory().unwrap();
    let report = store.merge_bundle(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].0, victim_path);
    assert_eq!(report.merged.len(), 3);
    assert_eq!(count_rows(&store), 4);
}

#[test]
fn corrupt_pages_in_a_bare_tree_are_isolated_to_their_file() {
    // No manifest, so no checksum: DuckDB itself meets the damage while reading pages.
    let dir = tempfile::tempdir().unwrap();
    let meta = SegmentMeta {
        schema_version: "1.0".into(),
        producer: "test".into(),
        node: "node-a".into(),
        ..SegmentMeta::default()
    };
    let good = dir.path().join("node=node-a/good.parquet");
    let bad = dir.path().join("node=node-a/bad.parquet");
    let many: Vec<Event> = (0..2000)
        .map(|i| ev("node-a", 0, "web-1", Op::File, &format!("/data/{i}"), 1))
        .collect();
    write_segment(&good, &mut many.clone(), &meta).unwrap();
    write_segment(&bad, &mut many.clone(), &meta).unwrap();
    let mut bytes = fs::read(&bad).unwrap();
    // Overwrite the start of the data pages (after the 4-byte magic) with garbage.
    for b in bytes.iter_mut().skip(4).take(2000) {
        *b = 0xAB;
    }
    fs::write(&bad, &bytes).unwrap();

    let store = Store::in_memory().unwrap();
    let report = store.merge_bundle(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].0, bad);
    assert_eq!(report.merged, vec![good]);
    assert_eq!(count_rows(&store), 2000);
}

#[test]
fn a_segment_of_an_unknown_schema_major_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let meta = SegmentMeta {
        schema_version: "2.0".into(),
        producer: "future".into(),
        node: "node-c".into(),
        ..SegmentMeta::default()
    };
    let future = dir.path().join("node=node-c/future.parquet");
    write_segment(&future, &mut sample(), &meta).unwrap();
    // Without a manifest the tree is scanned, so the future file is found.
    fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let store = Store::in_memory().unwrap();
    let report = store.merge_bundle(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1);
    let (path, why) = &report.problems[0];
    assert_eq!(path, &future);
    assert!(
        why.contains("future.parquet") && why.contains("schema version 2.0"),
        "{why}"
    );
    assert_eq!(count_rows(&store), 5);
}

#[test]
fn summaries_count_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), sample());
    let store = Store::in_memory().unwrap();
    store.merge_bundle(dir.path()).unwrap();
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::One("shop".into());
    let s = summarize(&store, &q).unwrap();
    let files = s.files.unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let web1 = files.iter().find(|f| f.resource == "web-1").unwrap();
    assert_eq!(web1.seen.count, 12);
    assert_eq!(web1.mode, "read");
    assert_eq!(web1.seen.first_seen, "2025-11-20T08:00:00Z");
    assert_eq!(web1.seen.last_seen, "2025-11-20T09:00:00.000001Z");
    let net = s.network.unwrap();
    assert_eq!(net.len(), 1);
    assert_eq!(
        (net[0].peer.as_deref(), net[0].port),
        (Some("10.0.0.9"), Some(443))
    );
    assert_eq!(s.processes.unwrap().len(), 1);

    q.namespace = NamespaceScope::One("other".into());
    assert!(summarize(&store, &q).unwrap().is_empty());
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
