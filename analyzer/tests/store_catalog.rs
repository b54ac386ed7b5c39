//! The store as a catalog over Parquet in place (design §7): no row copied, small files
//! compacted once with the collector's rules, files a compacted file replaces never counted
//! twice, stores of the older row-copying layout converted, live rows appended in memory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use karmor_analyzer::observe::{summarize, ObserveQuery, ResourceKind, Summary};
use karmor_analyzer::store::owned_dir;
use karmor_analyzer::Store;
use karmor_contract::bundle::{read_manifest, write_bundle, write_manifest, BundleOptions};
use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Op, Source};

const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
const MINUTE: i64 = 60_000_000_000;

/// One behaviour of `pod` on `node`, `minute` minutes after T0.
fn ev(node: &str, minute: i64, pod: &str, op: Op, what: &str) -> Event {
    let mut e = Event {
        ts_first: T0 + minute * MINUTE,
        ts_last: T0 + minute * MINUTE + 1_000,
        count: 1 + (minute as u64 % 3),
        node: node.into(),
        namespace: Some(
            if pod.starts_with("db") {
                "data"
            } else {
                "shop"
            }
            .into(),
        ),
        pod: Some(pod.into()),
        container: Some("app".into()),
        workload_kind: Some("Deployment".into()),
        workload: Some(pod.split('-').next().unwrap_or(pod).into()),
        labels: vec!["app=web".into()],
        process: Some("/usr/bin/app".into()),
        parent_process: Some("/bin/sh".into()),
        pid: Some(100 + minute as i32 % 4),
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

/// A collector's minute windows: the same behaviours again and again, and a few new ones, on
/// two nodes over two hours.
fn windows(minutes: i64) -> Vec<Vec<Event>> {
    (0..minutes)
        .map(|m| {
            let mut w = Vec::new();
            for (node, pod) in [("node-a", "web-1"), ("node-b", "db-1")] {
                w.push(ev(node, m, pod, Op::Process, "/usr/bin/app"));
                w.push(ev(node, m, pod, Op::File, "/etc/app.conf"));
                w.push(ev(node, m, pod, Op::File, &format!("/var/cache/{}", m % 7)));
                w.push(ev(node, m, pod, Op::Network, "10.0.0.9"));
            }
            w
        })
        .collect()
}

fn opts() -> BundleOptions {
    BundleOptions {
        producer: "test".into(),
        ..BundleOptions::default()
    }
}

/// The windows as a collector writes them: one segment per node and window.
fn minute_bundle(dir: &Path, minutes: i64) {
    for w in windows(minutes) {
        write_bundle(dir, w, &opts()).unwrap();
    }
}

/// The same rows written at once and de-duplicated: one file per node and hour.
fn hour_bundle(dir: &Path, minutes: i64) {
    let all: Vec<Event> = windows(minutes).into_iter().flatten().collect();
    let o = BundleOptions {
        dedup: true,
        ..opts()
    };
    write_bundle(dir, all, &o).unwrap();
}

fn summary(store: &Store) -> Summary {
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.wide = true;
    summarize(store, &q).unwrap()
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Sums of `count` per behaviour (every column but times and count) over Parquet files.
fn counts_by_identity(files: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for f in files {
        for mut e in read_segment(f).unwrap().1 {
            let count = e.count;
            (e.ts_first, e.ts_last, e.count) = (0, 0, 0);
            *out.entry(format!("{e:?}")).or_default() += count;
        }
    }
    out
}

#[test]
fn a_bundle_is_queried_where_it_lies_and_a_store_file_links_not_copies() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    hour_bundle(&bundle, 90);
    let files = parquet_files(&bundle);
    assert_eq!(files.len(), 4, "two nodes, two hours");

    let store_path = dir.path().join("store.duckdb");
    let store = Store::open(&store_path).unwrap();
    let report = store.merge_bundle(&bundle).unwrap();
    assert_eq!(report.merged.len(), 4);
    assert_eq!(
        report.compactions, 0,
        "no file is small enough to share a partition"
    );
    let before = summary(&store);
    assert!(!before.is_empty());
    drop(store);

    // The store's own directory holds the very same files (hard links), and the DuckDB file
    // only the catalog and the drift digests merging made (a few DuckDB blocks per table,
    // whatever the rows).
    let own = owned_dir(&store_path);
    let inodes = |fs: &[PathBuf]| -> Vec<u64> {
        let mut v: Vec<u64> = fs.iter().map(|f| f.metadata().unwrap().ino()).collect();
        v.sort();
        v
    };
    assert_eq!(inodes(&parquet_files(&own)), inodes(&files));
    let rows_bytes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    let store_bytes = store_path.metadata().unwrap().len();
    assert!(
        store_bytes < 4 * 1024 * 1024,
        "{store_bytes} bytes, rows {rows_bytes}"
    );
    assert!(rows_bytes > 0);

    // The bundle can go: the store still answers, the same.
    fs::remove_dir_all(&bundle).unwrap();
    let store = Store::open(&store_path).unwrap();
    assert_eq!(summary(&store), before);
    assert_eq!(store.health().unwrap().files, 4);
}

#[test]
fn many_small_files_are_compacted_once_per_partition_and_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let whole = dir.path().join("whole");
    minute_bundle(&small, 90);
    hour_bundle(&whole, 90);
    let inputs = read_manifest(&small).unwrap().files.len();
    assert_eq!(inputs, 180, "one segment per node and minute");

    let reference = Store::in_memory().unwrap();
    reference.merge_bundle(&whole).unwrap();
    let expected = summary(&reference);

    let cache = dir.path().join("compactions");
    let store = Store::in_memory_with_cache(&cache).unwrap();
    let report = store.merge_bundle(&small).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.merged.len(), 180);
    assert_eq!(report.compactions, 4, "one per node and hour");
    let health = store.health().unwrap();
    assert_eq!((health.files, health.segments), (4, 180));
    assert_eq!(health.rows, reference.health().unwrap().rows);
    assert_eq!(health.events_seen, reference.health().unwrap().events_seen);
    assert_eq!(summary(&store), expected);

    // The compactions hold exactly the rows of the inputs, folded.
    let compacted = parquet_files(&cache);
    assert_eq!(compacted.len(), 4);
    assert_eq!(
        counts_by_identity(&compacted),
        counts_by_identity(&parquet_files(&small))
    );

    // The next command over the same bundle finds them: nothing is compacted again.
    let stamps: Vec<_> = compacted
        .iter()
        .map(|f| fs::read(f).unwrap())
        .collect::<Vec<_>>();
    let again = Store::in_memory_with_cache(&cache).unwrap();
    let report = again.merge_bundle(&small).unwrap();
    assert_eq!(report.compactions, 4);
    assert_eq!(parquet_files(&cache), compacted);
    let now: Vec<_> = compacted.iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(
        now, stamps,
        "the cached compactions were reused, not rewritten"
    );
    assert_eq!(summary(&again), expected);

    // Merging the bundle again adds nothing.
    let report = again.merge_bundle(&small).unwrap();
    assert_eq!(
        (report.merged.len(), report.already_present.len()),
        (0, 180)
    );
    assert_eq!(summary(&again), expected);
}

/// Makes `bundle` look as a collector's compaction leaves it: the minute segments of
/// `partition` become one hour file listed with `replaces`; `keep` minute segments (by
/// position) are left out of the compaction, as if retention had deleted them first.
fn collector_compacts(bundle: &Path, partition: &str, skip: usize) -> (PathBuf, Vec<String>) {
    let mut manifest = read_manifest(bundle).unwrap();
    let (inputs, rest): (Vec<_>, Vec<_>) = manifest
        .files
        .drain(..)
        .partition(|f| f.path.starts_with(partition));
    let (left_out, inputs) = inputs.split_at(skip);
    let out = bundle.join(partition).join("hour-test.parquet");
    let paths: Vec<PathBuf> = inputs.iter().map(|f| bundle.join(&f.path)).collect();
    let scratch = tempfile::tempdir().unwrap();
    let done = compact(
        &paths,
        &out,
        &CompactOptions::new("collector", scratch.path()),
    )
    .unwrap();
    let replaces: Vec<String> = inputs.iter().map(|f| f.sha256.clone()).collect();
    let mut entry = inputs[0].clone();
    entry.path = format!("{partition}/hour-test.parquet");
    entry.sha256 = done.written.sha256.clone();
    entry.bytes = done.written.bytes;
    entry.rows = done.written.rows;
    entry.events_seen = done.meta.events_seen;
    entry.events_dropped = done.meta.events_dropped;
    entry.replaces = replaces.clone();
    manifest.files = rest;
    manifest.files.extend(left_out.iter().cloned());
    manifest.files.push(entry);
    write_manifest(bundle, &mut manifest).unwrap();
    for p in &paths {
        fs::remove_file(p).unwrap();
    }
    (out, replaces)
}

#[test]
fn a_collector_hour_file_replaces_the_minutes_already_merged_and_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node-dir");
    minute_bundle(&node, 90);
    let whole = dir.path().join("whole");
    hour_bundle(&whole, 90);
    let reference = Store::in_memory().unwrap();
    reference.merge_bundle(&whole).unwrap();
    let expected = summary(&reference);
    let expected_seen = reference.health().unwrap().events_seen;

    // A pull copies the node's minutes into the cache and merges them (the store compacts
    // them); later the collector compacts the first hour and the next pull brings it.
    let pulled = dir.path().join("pulled");
    copy_tree(&node, &pulled);
    let store = Store::open(&dir.path().join("store.duckdb")).unwrap();
    store.merge_bundle(&pulled).unwrap();
    assert_eq!(summary(&store), expected);

    let partition = "node=node-a/date=2025-11-20/hour=08";
    collector_compacts(&node, partition, 0);
    fs::remove_dir_all(&pulled).unwrap();
    copy_tree(&node, &pulled);
    let report = store.merge_bundle(&pulled).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.merged.len(), 1, "only the hour file is new");
    assert_eq!(
        report.replaced, 1,
        "the store's compaction of those minutes"
    );
    assert_eq!(summary(&store), expected);
    assert_eq!(store.health().unwrap().events_seen, expected_seen);

    // The other way round: the hour file first, the old minutes later add nothing.
    let fresh = Store::in_memory().unwrap();
    fresh.merge_bundle(&node).unwrap();
    let old_minutes = dir.path().join("old-minutes");
    minute_bundle(&old_minutes, 90);
    let report = fresh.merge_bundle(&old_minutes).unwrap();
    assert_eq!(report.merged.len(), 0, "{report:?}");
    assert_eq!(summary(&fresh), expected);
}

#[test]
fn an_hour_file_that_replaces_part_of_a_compaction_brings_the_rest_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node-dir");
    minute_bundle(&node, 60);
    let whole = dir.path().join("whole");
    hour_bundle(&whole, 60);
    let reference = Store::in_memory().unwrap();
    reference.merge_bundle(&whole).unwrap();

    // The store compacted all 60 minutes of node-a; the collector's hour file holds only
    // 57 of them (three were gone before it compacted).
    let store = Store::in_memory().unwrap();
    let minutes = dir.path().join("minutes");
    copy_tree(&node, &minutes);
    store.merge_bundle(&minutes).unwrap();
    collector_compacts(&node, "node=node-a/date=2025-11-20/hour=08", 3);
    let report = store.merge_bundle(&node).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(summary(&store), summary(&reference));
    assert_eq!(
        store.health().unwrap().events_seen,
        reference.health().unwrap().events_seen
    );
}

#[test]
fn a_store_of_the_row_copying_layout_is_converted_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    hour_bundle(&bundle, 90);
    let reference = Store::in_memory().unwrap();
    reference.merge_bundle(&bundle).unwrap();

    // What kubectl-karmor 0.1 left in the cache: the rows in an `events` table, the merged
    // segments in `segments`.
    let path = dir.path().join("old.duckdb");
    {
        let conn = duckdb::Connection::open(&path).unwrap();
        let manifest = read_manifest(&bundle).unwrap();
        let list = manifest
            .files
            .iter()
            .map(|f| format!("'{}'", bundle.join(&f.path).display()))
            .collect::<Vec<_>>()
            .join(", ");
        conn.execute_batch(&format!(
            "SET TimeZone = 'UTC';
             CREATE TABLE events AS SELECT * EXCLUDE (filename), 'x' AS segment
               FROM read_parquet([{list}], filename = true);
             CREATE TABLE segments (sha256 VARCHAR PRIMARY KEY, bundle VARCHAR NOT NULL,
               path VARCHAR NOT NULL, node VARCHAR NOT NULL, rows UBIGINT NOT NULL,
               events_seen UBIGINT NOT NULL, events_dropped UBIGINT NOT NULL,
               producer VARCHAR NOT NULL, merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE bundles (root VARCHAR NOT NULL, producer VARCHAR,
               events_dropped_unattributed UBIGINT NOT NULL,
               merged_at TIMESTAMPTZ NOT NULL DEFAULT now());"
        ))
        .unwrap();
        for f in &manifest.files {
            conn.execute(
                "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, 'test', now())",
                duckdb::params![
                    f.sha256,
                    bundle.display().to_string(),
                    f.path,
                    f.node,
                    f.rows,
                    f.events_seen,
                    f.events_dropped
                ],
            )
            .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(summary(&store), summary(&reference));
    let health = store.health().unwrap();
    assert_eq!(health.rows, reference.health().unwrap().rows);
    assert_eq!(health.segments, 4);
    // Its segments are known: merging their bundle again adds nothing.
    let report = store.merge_bundle(&bundle).unwrap();
    assert_eq!((report.merged.len(), report.already_present.len()), (0, 4));
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(summary(&store), summary(&reference));
}

#[test]
fn live_rows_are_appended_in_memory_and_join_the_merged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    hour_bundle(&bundle, 30);
    let store = Store::in_memory().unwrap();
    store.merge_bundle(&bundle).unwrap();
    let before = store.health().unwrap();
    let live = vec![
        ev("node-c", 5, "web-9", Op::File, "/etc/live.conf"),
        ev("node-c", 6, "web-9", Op::File, "/etc/live.conf"),
    ];
    store.append_live(&live).unwrap();
    let after = store.health().unwrap();
    assert_eq!(after.rows, before.rows + 2);
    assert_eq!(after.files, before.files, "nothing was written");
    let s = summary(&store);
    let files = s.files.unwrap();
    let row = files
        .iter()
        .find(|f| f.resource == "web-9" && f.path.as_deref() == Some("/etc/live.conf"))
        .unwrap();
    assert_eq!(row.seen.count, live.iter().map(|e| e.count).sum::<u64>());
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
