//! Pulls stay incremental across the collector's compaction (issue 9): the collector service
//! over loopback on a real data directory (minute segments written by the collector's own
//! writer), pulled with `pull_into_bundle`; then the directory is made to look as compaction
//! leaves it (an hour or day file written with `karmor_contract::compact`, listed with
//! `replaces` in one manifest swap that unlists its inputs, which are then deleted) and pulled
//! again. Every row must be in the pulled bundle once: the sum of counts per identity equals
//! what was written, whatever was pulled before, after or in between.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::metrics::Counters;
use karmor_collector::service::{CollectorService, ServiceConfig};
use karmor_contract::bundle::{
    format_ts, parquet_files, read_manifest, verify_bundle, write_manifest, ManifestFile,
};
use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::schema::{schema_version, Event, Op};
use karmor_contract::segment::{read_segment, SegmentMeta};
use karmor_proto::proto::collector::collector_server::CollectorServer;
use karmor_proto::tonic;
use karmor_proto::{
    connect, fetch_segment, list_segments, part_path, pull_into_bundle, Channel, ListFilter,
    PullOptions, PullProgress, PullReport, SegmentStatus,
};
use tokio_stream::wrappers::TcpListenerStream;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
const NODE: &str = "node-a";

/// Rows of one flush window at `ts`: `n` behaviours of which the first `shared` are the same
/// in every window (so compaction folds them across windows), the rest unique to `tag`.
fn window(ts: i64, n: usize, shared: usize, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let ns = ["shop", "payments", "kube-system"][i % 3];
            let path = if i < shared {
                format!("/etc/shared/{i:04}")
            } else {
                format!("/var/{tag}/{i:05}")
            };
            Event {
                ts_first: ts + i as i64,
                ts_last: ts + i as i64 + 1_000,
                count: 1 + (i % 4) as u64,
                node: NODE.into(),
                namespace: Some(ns.into()),
                pod: Some(format!("{ns}-pod-{}", i % 5)),
                container: Some("app".into()),
                workload: Some(format!("{ns}-app")),
                op: Op::File,
                process: Some(format!("/usr/bin/tool-{}", i % 7)),
                path: Some(path),
                access: Some(["read", "write"][i % 2].into()),
                ..Event::default()
            }
        })
        .collect()
}

/// A row's identity: every column but the times and the count.
fn identity(e: &Event) -> String {
    format!(
        "{:?}",
        Event {
            ts_first: 0,
            ts_last: 0,
            count: 0,
            ..e.clone()
        }
    )
}

/// Sum of counts per identity.
type Totals = BTreeMap<String, u64>;

fn add(totals: &mut Totals, rows: &[Event]) {
    for e in rows {
        *totals.entry(identity(e)).or_default() += e.count;
    }
}

/// Sum of counts per identity over the files a bundle's manifest lists.
fn bundle_totals(bundle: &Path) -> Totals {
    let mut totals = Totals::new();
    for f in read_manifest(bundle).unwrap().files {
        add(&mut totals, &read_segment(&bundle.join(&f.path)).unwrap().1);
    }
    totals
}

fn meta() -> SegmentMeta {
    SegmentMeta {
        schema_version: schema_version(),
        windows: 1,
        ..SegmentMeta::default()
    }
}

fn open(root: &Path) -> DataDir {
    let no_limit = Retention {
        max_bytes: 0,
        max_age: None,
    };
    DataDir::open(root, "karmor-collector test", no_limit).unwrap()
}

/// The collector's data directory and what was written into it.
struct Node {
    root: tempfile::TempDir,
    written: Totals,
}

impl Node {
    fn new() -> Self {
        Node {
            root: tempfile::tempdir().unwrap(),
            written: Totals::new(),
        }
    }

    /// Writes one minute segment with the collector's writer; returns its manifest entry.
    fn write_minute(&mut self, ts: i64, n: usize, tag: &str) -> ManifestFile {
        let rows = window(ts, n, n / 2, tag);
        add(&mut self.written, &rows);
        let mut dir = open(self.root.path());
        let out = dir.write(rows, &meta(), ts).unwrap();
        assert_eq!(out.written.len(), 1);
        out.written[0].clone()
    }

    /// Does what the collector's compaction does: compacts `inputs` into
    /// `<partition>/<kind>-<sha16>.parquet`, lists it with `replaces` (the inputs and what they
    /// replaced) and unlists the inputs in one manifest write, then deletes them.
    fn compact(&self, inputs: &[&ManifestFile], kind: &str, partition: &str) -> ManifestFile {
        let root = self.root.path();
        let mut manifest = read_manifest(root).unwrap();
        let paths: Vec<PathBuf> = inputs.iter().map(|f| root.join(&f.path)).collect();
        let dir = root.join(partition);
        std::fs::create_dir_all(&dir).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let pending = dir.join(format!("{kind}-pending.parquet"));
        let c = compact(
            &paths,
            &pending,
            &CompactOptions::new("karmor-collector test", scratch.path()),
        )
        .unwrap();
        let rel = format!("{partition}/{kind}-{}.parquet", &c.written.sha256[..16]);
        std::fs::rename(&pending, root.join(&rel)).unwrap();
        let mut replaces: BTreeSet<String> = BTreeSet::new();
        for f in inputs {
            replaces.insert(f.sha256.clone());
            replaces.extend(f.replaces.iter().cloned());
        }
        let entry = ManifestFile {
            path: rel,
            node: NODE.into(),
            sha256: c.written.sha256.clone(),
            bytes: c.written.bytes,
            rows: c.written.rows,
            first: format_ts(c.written.ts_first),
            last: format_ts(c.written.ts_last),
            events_seen: c.meta.events_seen,
            events_dropped: c.meta.events_dropped,
            replaces: replaces.into_iter().collect(),
        };
        let gone: BTreeSet<&str> = inputs.iter().map(|f| f.path.as_str()).collect();
        manifest.files.retain(|f| !gone.contains(f.path.as_str()));
        manifest.files.push(entry.clone());
        write_manifest(root, &mut manifest).unwrap();
        for p in &paths {
            std::fs::remove_file(p).unwrap();
        }
        entry
    }

    /// Lists `file` again in the collector's manifest (its bytes restored from `copy`): a
    /// collector that still lists a segment it compacted.
    fn relist(&self, file: &ManifestFile, copy: &Path) {
        let root = self.root.path();
        let to = root.join(&file.path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(copy, &to).unwrap();
        let mut manifest = read_manifest(root).unwrap();
        manifest.files.push(file.clone());
        write_manifest(root, &mut manifest).unwrap();
    }

    async fn serve(&self) -> Channel {
        let cfg = ServiceConfig {
            poll_interval: Duration::from_millis(20),
            ..ServiceConfig::new(self.root.path(), NODE)
        };
        let svc = CollectorService::new(cfg, Arc::new(Counters::default()), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(CollectorServer::new(svc))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        connect(&addr.to_string()).await.unwrap()
    }
}

fn opts() -> PullOptions {
    PullOptions {
        chunk_bytes: 4096,
        retry_backoff: Duration::from_millis(10),
        ..PullOptions::default()
    }
}

async fn pull(ch: &Channel, bundle: &Path) -> PullReport {
    let report = pull_into_bundle(ch.clone(), bundle, &opts(), &mut |_: &PullProgress| {})
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    report
}

/// The bundle's listed paths.
fn listed(bundle: &Path) -> BTreeSet<String> {
    read_manifest(bundle)
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// Every `*.parquet` under the bundle, relative.
fn on_disk(bundle: &Path) -> BTreeSet<String> {
    parquet_files(bundle)
        .unwrap()
        .iter()
        .map(|p| {
            p.strip_prefix(bundle)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Listed files match their entries, and nothing else is on disk.
fn assert_clean(bundle: &Path) {
    let problems: Vec<_> = verify_bundle(bundle)
        .unwrap()
        .into_iter()
        .filter(|c| c.problem.is_some())
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(on_disk(bundle), listed(bundle));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_before_and_after_the_hour_is_compacted_holds_every_row_once() {
    let mut node = Node::new();
    let minutes: Vec<ManifestFile> = (0..3)
        .map(|m| node.write_minute(T0 + m * MINUTE, 900, &format!("m{m}")))
        .collect();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");

    let first = pull(&ch, &bundle).await;
    assert_eq!((first.fetched, first.replaced), (3, 0));
    assert_eq!(bundle_totals(&bundle), node.written);
    // Kept aside to play a lagging collector later.
    let kept = out.path().join("minute-0.parquet");
    std::fs::copy(bundle.join(&minutes[0].path), &kept).unwrap();

    // The hour closes: its minutes become one hour file; a minute of the next hour arrives.
    let inputs: Vec<&ManifestFile> = minutes.iter().collect();
    let hour = node.compact(&inputs, "hour", "node=node-a/date=2025-11-20/hour=08");
    let next = node.write_minute(T0 + HOUR + MINUTE, 700, "next");
    assert!(
        hour.rows < minutes.iter().map(|f| f.rows).sum::<u64>(),
        "shared behaviours fold across minutes"
    );

    let second = pull(&ch, &bundle).await;
    assert_eq!((second.listed, second.fetched), (2, 2), "{second:?}");
    assert_eq!((second.replaced, second.replaced_by), (3, 1));
    let hour_outcome = second
        .segments
        .iter()
        .find(|s| s.path == hour.path)
        .unwrap();
    let mut replaced = hour_outcome.replaced.clone();
    replaced.sort();
    let mut expected: Vec<String> = minutes.iter().map(|f| f.path.clone()).collect();
    expected.sort();
    assert_eq!(replaced, expected);
    assert_eq!(
        listed(&bundle),
        BTreeSet::from([hour.path.clone(), next.path.clone()])
    );
    for m in &minutes {
        assert!(!bundle.join(&m.path).exists(), "{} deleted", m.path);
    }
    let entry = read_manifest(&bundle)
        .unwrap()
        .files
        .into_iter()
        .find(|f| f.path == hour.path)
        .unwrap();
    assert_eq!(entry.replaces, hour.replaces, "replaces kept in the bundle");
    assert_eq!(entry.replaces.len(), 3);
    assert_clean(&bundle);
    assert_eq!(bundle_totals(&bundle), node.written);

    // Nothing new: nothing fetched.
    let third = pull(&ch, &bundle).await;
    assert_eq!((third.fetched, third.already_present), (0, 2));

    // A collector that still lists a compacted minute: it is not fetched again.
    node.relist(&minutes[0], &kept);
    let fourth = pull(&ch, &bundle).await;
    assert_eq!(
        (fourth.fetched, fourth.already_present, fourth.superseded),
        (0, 2, 1)
    );
    let lagging = fourth
        .segments
        .iter()
        .find(|s| s.path == minutes[0].path)
        .unwrap();
    assert_eq!(
        lagging.status,
        SegmentStatus::Superseded {
            by: hour.path.clone()
        }
    );
    assert_clean(&bundle);
    assert_eq!(bundle_totals(&bundle), node.written);

    // A fresh bundle pulled from that collector also holds every row once: the hour file is
    // fetched first and the minute it holds is skipped.
    let fresh = out.path().join("fresh");
    let report = pull(&ch, &fresh).await;
    assert_eq!((report.fetched, report.superseded), (2, 1), "{report:?}");
    assert_eq!(bundle_totals(&fresh), node.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_interrupted_around_the_swap_ends_as_an_uninterrupted_one() {
    let mut node = Node::new();
    let minutes: Vec<ManifestFile> = (0..3)
        .map(|m| node.write_minute(T0 + m * MINUTE, 600, &format!("m{m}")))
        .collect();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let (straight, cut) = (out.path().join("straight"), out.path().join("cut"));
    pull(&ch, &straight).await;
    pull(&ch, &cut).await;
    let copies: Vec<PathBuf> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let copy = out.path().join(format!("minute-{i}.parquet"));
            std::fs::copy(straight.join(&m.path), &copy).unwrap();
            copy
        })
        .collect();
    let inputs: Vec<&ManifestFile> = minutes.iter().collect();
    let hour = node.compact(&inputs, "hour", "node=node-a/date=2025-11-20/hour=08");
    node.write_minute(T0 + HOUR, 500, "next");

    pull(&ch, &straight).await;

    // Interrupted after the hour file landed and before the manifest write: the file is at its
    // final name, the manifest still lists the minutes.
    let list = list_segments(ch.clone(), &ListFilter::default())
        .await
        .unwrap();
    let info = list.segments.iter().find(|s| s.path == hour.path).unwrap();
    fetch_segment(ch.clone(), info, &cut, 4096, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(listed(&cut).len(), 3, "the manifest is untouched");
    let resumed = pull(&ch, &cut).await;
    assert_eq!(
        (resumed.fetched, resumed.bytes_fetched, resumed.replaced),
        (
            2,
            list.segments.iter().map(|s| s.bytes).sum::<u64>() - hour.bytes,
            3
        ),
        "the landed hour file is taken as is: {resumed:?}"
    );
    let files = |b: &Path| {
        let mut m = read_manifest(b).unwrap();
        m.files.sort_by(|a, b| a.path.cmp(&b.path));
        m.files
    };
    assert_eq!(files(&cut), files(&straight));
    assert_eq!(on_disk(&cut), on_disk(&straight));
    assert_clean(&cut);
    assert_eq!(bundle_totals(&cut), node.written);

    // Interrupted after the manifest write and before the deletions: the replaced minutes are
    // unlisted but still on disk, and a fetch of one was cut halfway. The next pull sweeps
    // them, and reads none of them.
    for (m, copy) in minutes.iter().zip(&copies) {
        std::fs::create_dir_all(cut.join(&m.path).parent().unwrap()).unwrap();
        std::fs::copy(copy, cut.join(&m.path)).unwrap();
    }
    let part = part_path(&cut.join(&minutes[1].path));
    std::fs::write(&part, &std::fs::read(&copies[1]).unwrap()[..1000]).unwrap();
    let unrelated = cut.join("node=node-a/date=2025-11-20/hour=08/notes.txt");
    std::fs::write(&unrelated, "kept").unwrap();
    let swept = pull(&ch, &cut).await;
    assert_eq!((swept.fetched, swept.swept), (0, 4), "{swept:?}");
    assert!(!part.exists());
    assert!(unrelated.exists(), "only replaced segments are swept");
    std::fs::remove_file(&unrelated).unwrap();
    assert_eq!(files(&cut), files(&straight));
    assert_clean(&cut);
    assert_eq!(bundle_totals(&cut), node.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_file_replaces_the_hour_files_and_minutes_it_holds() {
    let mut node = Node::new();
    let h08: Vec<ManifestFile> = (0..2)
        .map(|m| node.write_minute(T0 + m * MINUTE, 500, &format!("a{m}")))
        .collect();
    let h09: Vec<ManifestFile> = (0..2)
        .map(|m| node.write_minute(T0 + HOUR + m * MINUTE, 500, &format!("b{m}")))
        .collect();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    assert_eq!(pull(&ch, &bundle).await.fetched, 4);

    // Hour 08 closes and is pulled: the bundle holds its hour file and hour 09's minutes.
    let hour08 = node.compact(
        &h08.iter().collect::<Vec<_>>(),
        "hour",
        "node=node-a/date=2025-11-20/hour=08",
    );
    let r = pull(&ch, &bundle).await;
    assert_eq!((r.fetched, r.replaced, r.already_present), (1, 2, 2));
    assert_eq!(bundle_totals(&bundle), node.written);

    // Hour 09 closes, then the day: only the day file is listed. The bundle never had hour
    // 09's file; the day file replaces hour 08's file and hour 09's minutes.
    let minute_copy = out.path().join("minute-b0.parquet");
    std::fs::copy(bundle.join(&h09[0].path), &minute_copy).unwrap();
    let hour09 = node.compact(
        &h09.iter().collect::<Vec<_>>(),
        "hour",
        "node=node-a/date=2025-11-20/hour=09",
    );
    let hour_copy = out.path().join("hour09.parquet");
    std::fs::copy(node.root.path().join(&hour09.path), &hour_copy).unwrap();
    let day = node.compact(
        &[&hour08, &hour09],
        "day",
        "node=node-a/date=2025-11-20/hour=__HIVE_DEFAULT_PARTITION__",
    );
    assert_eq!(day.replaces.len(), 6, "hour files and their minutes");
    let r = pull(&ch, &bundle).await;
    assert_eq!((r.listed, r.fetched), (1, 1));
    assert_eq!((r.replaced, r.replaced_by), (3, 1), "{r:?}");
    assert_eq!(listed(&bundle), BTreeSet::from([day.path.clone()]));
    assert_clean(&bundle);
    assert_eq!(bundle_totals(&bundle), node.written);
    assert!(
        !bundle.join("node=node-a/date=2025-11-20/hour=09").exists(),
        "emptied partitions are removed"
    );

    // A lagging collector that still lists hour 09's file and one of its minutes: neither is
    // fetched, the day file holds their rows.
    node.relist(&hour09, &hour_copy);
    node.relist(&h09[0], &minute_copy);
    let r = pull(&ch, &bundle).await;
    assert_eq!(
        (r.fetched, r.superseded, r.already_present),
        (0, 2, 1),
        "{r:?}"
    );
    assert!(r.segments.iter().all(|s| s.path == day.path
        || s.status
            == SegmentStatus::Superseded {
                by: day.path.clone()
            }));
    assert_clean(&bundle);
    assert_eq!(bundle_totals(&bundle), node.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_listing_a_compacted_file_beside_its_inputs_is_repaired() {
    // What a client that predates `replaces` leaves: the minutes and the hour file that holds
    // them, all listed, the hour file without `replaces` (its rows counted twice).
    let mut node = Node::new();
    let minutes: Vec<ManifestFile> = (0..3)
        .map(|m| node.write_minute(T0 + m * MINUTE, 400, &format!("m{m}")))
        .collect();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    pull(&ch, &bundle).await;
    let hour = node.compact(
        &minutes.iter().collect::<Vec<_>>(),
        "hour",
        "node=node-a/date=2025-11-20/hour=08",
    );
    let list = list_segments(ch.clone(), &ListFilter::default())
        .await
        .unwrap();
    fetch_segment(ch.clone(), &list.segments[0], &bundle, 4096, &mut |_| {})
        .await
        .unwrap();
    let mut m = read_manifest(&bundle).unwrap();
    m.files.push(ManifestFile {
        replaces: Vec::new(),
        ..hour.clone()
    });
    write_manifest(&bundle, &mut m).unwrap();
    assert_ne!(bundle_totals(&bundle), node.written, "counted twice");

    let r = pull(&ch, &bundle).await;
    assert_eq!(
        (r.fetched, r.already_present, r.replaced),
        (0, 1, 3),
        "{r:?}"
    );
    assert_eq!(listed(&bundle), BTreeSet::from([hour.path.clone()]));
    assert_eq!(
        read_manifest(&bundle).unwrap().files[0].replaces,
        hour.replaces
    );
    assert_clean(&bundle);
    assert_eq!(bundle_totals(&bundle), node.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_replaces_that_is_not_a_sha256_is_refused_naming_the_file() {
    let mut node = Node::new();
    let minute = node.write_minute(T0, 100, "m");
    let mut m = read_manifest(node.root.path()).unwrap();
    m.files[0].replaces = vec!["../../etc/passwd".into()];
    write_manifest(node.root.path(), &mut m).unwrap();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let err = pull_into_bundle(ch, out.path(), &opts(), &mut |_: &PullProgress| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&minute.path), "{err}");
    assert!(err.contains("not 64 hex digits"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_compacted_away_between_listing_and_fetch_is_gone_not_failed() {
    let mut node = Node::new();
    let kept = node.write_minute(T0, 500, "kept");
    let gone = node.write_minute(T0 + MINUTE, 500, "gone");
    // The collector's compaction deletes it after the pull listed it: the manifest the service
    // answered from still names it, the file is no longer there.
    std::fs::remove_file(node.root.path().join(&gone.path)).unwrap();
    let ch = node.serve().await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    let report = pull(&ch, &bundle).await;
    assert_eq!(
        (report.fetched, report.gone, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    let status = |path: &str| {
        report
            .segments
            .iter()
            .find(|s| s.path == path)
            .map(|s| s.status.clone())
    };
    assert_eq!(status(&gone.path), Some(SegmentStatus::Gone));
    assert!(matches!(
        status(&kept.path),
        Some(SegmentStatus::Fetched { .. })
    ));
    assert_eq!(listed(&bundle), BTreeSet::from([kept.path.clone()]));
}
