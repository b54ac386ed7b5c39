//! The collector service over loopback, on a data directory of real segments written by the
//! collector's own writer: list (time range, namespaces), fetch and pull into a bundle, resume
//! after a cut connection, a corrupted chunk caught by its checksum, idempotent re-pulls,
//! follow, health. Faults are injected by wrapping the real service, never by faking it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::metrics::Counters;
use karmor_collector::service::{CollectorService, ServiceConfig};
use karmor_contract::bundle::{read_manifest, verify_bundle};
use karmor_contract::schema::{schema_version, Event, Op};
use karmor_contract::segment::{read_segment, SegmentMeta};
use karmor_proto::proto::collector as pb;
use karmor_proto::proto::collector::collector_server::{Collector, CollectorServer};
use karmor_proto::tonic::{self, Request, Response, Status};
use karmor_proto::{
    connect, fetch_segment, follow_segments, health, list_segments, part_path, pull_into_bundle,
    Channel, FollowCursor, ListFilter, PullOptions, PullProgress, SegmentStatus,
};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};

const HOUR: i64 = 3_600_000_000_000;
const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z
const CHUNK: u32 = 4096;

fn rows(n: usize, ts: i64, namespace: Option<&str>, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            ts_first: ts + i as i64,
            ts_last: ts + i as i64 + 5,
            count: 1 + (i % 3) as u64,
            node: "node-a".into(),
            namespace: namespace.map(str::to_string),
            pod: namespace.map(|ns| format!("{ns}-pod-{}", i % 7)),
            host: namespace.is_none(),
            op: Op::File,
            process: Some(format!("/usr/bin/tool-{}", i % 11)),
            path: Some(format!("/var/data/{tag}/{i:05}/{}", i * 7919 % 10007)),
            access: Some("read".into()),
            ..Event::default()
        })
        .collect()
}

fn meta() -> SegmentMeta {
    SegmentMeta {
        schema_version: schema_version(),
        windows: 1,
        ..SegmentMeta::default()
    }
}

/// A data directory with three segments: hour 0 (namespaces a and b), hour 1 (namespace c),
/// hour 2 (host rows only). Returns the writer, kept open for later writes.
fn data_dir(root: &Path) -> DataDir {
    let mut dir = DataDir::open(
        root,
        "karmor-collector test",
        Retention {
            max_bytes: 0,
            max_age: None,
        },
    )
    .unwrap();
    let mut first = rows(1500, T0, Some("a"), "h0a");
    first.extend(rows(1500, T0 + 1000, Some("b"), "h0b"));
    dir.write(first, &meta(), T0).unwrap();
    dir.write(rows(2000, T0 + HOUR, Some("c"), "h1c"), &meta(), T0)
        .unwrap();
    dir.write(rows(2000, T0 + 2 * HOUR, None, "h2host"), &meta(), T0)
        .unwrap();
    dir
}

fn service(root: &Path) -> CollectorService {
    let cfg = ServiceConfig {
        cluster: Some("test-cluster".into()),
        sources: vec!["ebpf".into()],
        poll_interval: Duration::from_millis(20),
        ..ServiceConfig::new(root, "node-a")
    };
    CollectorService::new(cfg, Arc::new(Counters::default()), None)
}

/// Serves any Collector implementation on 127.0.0.1:0; the server stops with the runtime.
async fn serve<S: Collector>(svc: S) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CollectorServer::new(svc))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    connect(&addr.to_string()).await.unwrap()
}

/// What a faulty wrapper does to FetchSegment streams.
#[derive(Clone, Copy)]
enum Fault {
    /// End the stream with UNAVAILABLE after this many chunks, on the first `times` fetches.
    Cut { after: usize, times: usize },
    /// Flip one bit of the chunk at this file offset (its CRC is left as sent), every time.
    Flip { offset: u64 },
}

/// The real service, with a fault injected into the byte stream of one segment.
struct Faulty {
    inner: CollectorService,
    fault: Fault,
    target: String,
    fetches: Arc<AtomicUsize>,
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::SegmentChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Collector for Faulty {
    async fn list_segments(
        &self,
        r: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        self.inner.list_segments(r).await
    }

    type FetchSegmentStream = ChunkStream;

    async fn fetch_segment(
        &self,
        r: Request<pb::FetchSegmentRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let hit = r.get_ref().path == self.target;
        let inner = self.inner.fetch_segment(r).await?.into_inner();
        if !hit {
            return Ok(Response::new(inner));
        }
        let n = self.fetches.fetch_add(1, Ordering::SeqCst);
        let stream: ChunkStream = match self.fault {
            Fault::Cut { after, times } if n < times => Box::pin(inner.take(after).chain(
                tokio_stream::once(Err(Status::unavailable("connection cut by the test"))),
            )),
            Fault::Cut { .. } => inner,
            Fault::Flip { offset } => Box::pin(inner.map(move |c| {
                let mut c = c?;
                if c.offset == offset {
                    let mid = c.data.len() / 2;
                    c.data[mid] ^= 0x10;
                }
                Ok(c)
            })),
        };
        Ok(Response::new(stream))
    }

    type FollowStream = <CollectorService as Collector>::FollowStream;

    async fn follow(
        &self,
        r: Request<pb::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        self.inner.follow(r).await
    }

    async fn health(
        &self,
        r: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        self.inner.health(r).await
    }
}

fn all_rows(bundle: &Path) -> Vec<String> {
    let m = read_manifest(bundle).unwrap();
    let mut out: Vec<String> = m
        .files
        .iter()
        .flat_map(|f| read_segment(&bundle.join(&f.path)).unwrap().1)
        .map(|e| format!("{e:?}"))
        .collect();
    out.sort();
    out
}

fn opts() -> PullOptions {
    PullOptions {
        chunk_bytes: CHUNK,
        retry_backoff: Duration::from_millis(10),
        ..PullOptions::default()
    }
}

fn no_progress() -> impl FnMut(&PullProgress) + Send {
    |_: &PullProgress| {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_time_range_and_namespace() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let ch = channel(serve(service(root.path())).await).await;

    let all = list_segments(ch.clone(), &ListFilter::default())
        .await
        .unwrap();
    assert_eq!(all.node, "node-a");
    assert_eq!(all.cluster.as_deref(), Some("test-cluster"));
    assert_eq!(all.segments.len(), 3);
    let ns: Vec<Vec<String>> = all.segments.iter().map(|s| s.namespaces.clone()).collect();
    assert!(
        ns.contains(&vec!["a".to_string(), "b".to_string()]),
        "{ns:?}"
    );
    assert!(ns.contains(&vec!["c".to_string()]), "{ns:?}");
    assert!(ns.contains(&vec![]), "host-only segment: {ns:?}");
    let manifest = read_manifest(root.path()).unwrap();
    for s in &all.segments {
        let f = manifest.files.iter().find(|f| f.path == s.path).unwrap();
        assert_eq!(
            (s.sha256.as_str(), s.bytes, s.rows),
            (f.sha256.as_str(), f.bytes, f.rows)
        );
    }

    let only_c = ListFilter {
        namespaces: vec!["c".into(), "zzz".into()],
        ..ListFilter::default()
    };
    let c = list_segments(ch.clone(), &only_c).await.unwrap();
    assert_eq!(c.segments.len(), 1);
    assert!(
        c.segments[0].path.contains("hour=09"),
        "{}",
        c.segments[0].path
    );

    let since = ListFilter {
        since_ns: Some(T0 + HOUR),
        ..ListFilter::default()
    };
    let later = list_segments(ch.clone(), &since).await.unwrap();
    assert_eq!(later.segments.len(), 2);
    assert!(later.segments.iter().all(|s| s.last_ns >= T0 + HOUR));

    let until = ListFilter {
        until_ns: Some(T0 + HOUR - 1),
        namespaces: vec!["b".into()],
        ..ListFilter::default()
    };
    let early = list_segments(ch, &until).await.unwrap();
    assert_eq!(early.segments.len(), 1);
    assert!(early.segments[0].path.contains("hour=08"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_copies_every_segment_verified_and_a_second_pull_adds_nothing() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let ch = channel(serve(service(root.path())).await).await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");

    let mut chunks_seen = 0usize;
    let mut progress = |p: &PullProgress| {
        if matches!(p, PullProgress::Bytes { .. }) {
            chunks_seen += 1;
        }
    };
    let report = pull_into_bundle(ch.clone(), &bundle, &opts(), &mut progress)
        .await
        .unwrap();
    assert_eq!((report.listed, report.fetched, report.failed), (3, 3, 0));
    let source_bytes: u64 = read_manifest(root.path()).unwrap().totals.bytes;
    assert_eq!(report.bytes_fetched, source_bytes);
    assert!(chunks_seen > 3, "several chunks per segment: {chunks_seen}");
    assert!(verify_bundle(&bundle)
        .unwrap()
        .iter()
        .all(|c| c.problem.is_none()));
    assert_eq!(all_rows(&bundle), all_rows(root.path()));
    let m = read_manifest(&bundle).unwrap();
    assert_eq!(m.clusters, vec!["test-cluster".to_string()]);
    assert_eq!(m.totals.rows, 7000);

    let again = pull_into_bundle(ch, &bundle, &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!((again.fetched, again.already_present), (0, 3));
    assert_eq!(again.bytes_fetched, 0);
    assert_eq!(read_manifest(&bundle).unwrap().files, m.files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_resumed_from_the_verified_prefix() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let good = service(root.path());
    let list = list_segments(
        channel(serve(good.clone()).await).await,
        &ListFilter::default(),
    )
    .await
    .unwrap();
    let target = list.segments[1].clone();
    assert!(
        target.bytes > 5 * CHUNK as u64,
        "needs several chunks: {}",
        target.bytes
    );

    // A server that always cuts the target after 3 chunks, and one try per segment.
    let cutting = Faulty {
        inner: good.clone(),
        fault: Fault::Cut {
            after: 3,
            times: usize::MAX,
        },
        target: target.path.clone(),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let ch = channel(serve(cutting).await).await;
    let out = tempfile::tempdir().unwrap();
    let one_try = PullOptions {
        attempts: 1,
        ..opts()
    };
    let report = pull_into_bundle(ch, out.path(), &one_try, &mut no_progress())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.failed), (2, 1), "{report:?}");
    let failed = report
        .segments
        .iter()
        .find(|s| s.path == target.path)
        .unwrap();
    let SegmentStatus::Failed { error } = &failed.status else {
        panic!("{failed:?}");
    };
    assert!(
        error.contains("Unavailable") || error.contains("unavailable"),
        "{error}"
    );
    let part = part_path(&out.path().join(&target.path));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 3 * CHUNK as u64);
    assert!(read_manifest(out.path())
        .unwrap()
        .files
        .iter()
        .all(|f| f.path != target.path));

    // The same pull against a healthy collector transfers only the rest.
    let ch = channel(serve(good.clone()).await).await;
    let report = pull_into_bundle(ch, out.path(), &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.already_present), (1, 2));
    assert_eq!(
        report
            .segments
            .iter()
            .find(|s| s.path == target.path)
            .unwrap()
            .status,
        SegmentStatus::Fetched {
            resumed_from: 3 * CHUNK as u64,
            attempts: 1
        }
    );
    assert_eq!(report.bytes_fetched, target.bytes - 3 * CHUNK as u64);
    assert!(!part.exists());
    assert!(verify_bundle(out.path())
        .unwrap()
        .iter()
        .all(|c| c.problem.is_none()));
    assert_eq!(all_rows(out.path()), all_rows(root.path()));

    // Within one pull: a server that cuts once is resumed by the retry.
    let once = Faulty {
        inner: good,
        fault: Fault::Cut { after: 2, times: 1 },
        target: target.path.clone(),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let fetches = once.fetches.clone();
    let ch = channel(serve(once).await).await;
    let fresh = tempfile::tempdir().unwrap();
    let report = pull_into_bundle(ch, fresh.path(), &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.failed), (3, 0));
    assert_eq!(
        report
            .segments
            .iter()
            .find(|s| s.path == target.path)
            .unwrap()
            .status,
        SegmentStatus::Fetched {
            resumed_from: 2 * CHUNK as u64,
            attempts: 2
        }
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(all_rows(fresh.path()), all_rows(root.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_is_caught_by_its_checksum_and_nothing_bad_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let good = service(root.path());
    let list = list_segments(
        channel(serve(good.clone()).await).await,
        &ListFilter::default(),
    )
    .await
    .unwrap();
    let target = list.segments[0].clone();
    let flipping = Faulty {
        inner: good.clone(),
        fault: Fault::Flip {
            offset: 2 * CHUNK as u64,
        },
        target: target.path.clone(),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let fetches = flipping.fetches.clone();
    let ch = channel(serve(flipping).await).await;
    let out = tempfile::tempdir().unwrap();
    let report = pull_into_bundle(ch.clone(), out.path(), &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!(
        (report.fetched, report.failed),
        (2, 1),
        "others are not affected"
    );
    let failed = report
        .segments
        .iter()
        .find(|s| s.path == target.path)
        .unwrap();
    let SegmentStatus::Failed { error } = &failed.status else {
        panic!("{failed:?}");
    };
    assert!(
        error.contains("crc32") && error.contains(&target.path),
        "{error}"
    );
    assert!(error.contains(&format!("offset {}", 2 * CHUNK)), "{error}");
    assert_eq!(fetches.load(Ordering::SeqCst), 3, "retried up to attempts");
    // Only the two good chunks before the bad one are kept, never the bad bytes.
    let part = part_path(&out.path().join(&target.path));
    let kept = std::fs::read(&part).unwrap();
    let original = std::fs::read(root.path().join(&target.path)).unwrap();
    assert_eq!(kept.len(), 2 * CHUNK as usize);
    assert_eq!(kept[..], original[..kept.len()]);
    assert!(!out.path().join(&target.path).exists());
    assert!(verify_bundle(out.path())
        .unwrap()
        .iter()
        .all(|c| c.problem.is_none()));

    // fetch_segment alone reports the same, naming the chunk.
    let mut sink = |_: u64| {};
    let err = fetch_segment(ch, &target, out.path(), CHUNK, &mut sink)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("crc32"), "{err}");

    // A healthy collector completes it.
    let ch = channel(serve(good).await).await;
    let report = pull_into_bundle(ch, out.path(), &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.already_present), (1, 2));
    assert_eq!(all_rows(out.path()), all_rows(root.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_serves_only_listed_segments_and_checks_the_expected_sha() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let ch = channel(serve(service(root.path())).await).await;
    let mut client = pb::collector_client::CollectorClient::new(ch.clone());
    for path in ["manifest.json", "../../etc/passwd", "node=node-a/x.parquet"] {
        let status = client
            .fetch_segment(pb::FetchSegmentRequest {
                path: path.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{path}");
    }
    let list = list_segments(ch, &ListFilter::default()).await.unwrap();
    let status = client
        .fetch_segment(pb::FetchSegmentRequest {
            path: list.segments[0].path.clone(),
            sha256: "0".repeat(64),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_announces_existing_then_new_segments_and_resumes_after_a_cursor() {
    let root = tempfile::tempdir().unwrap();
    let mut dir = data_dir(root.path());
    let ch = channel(serve(service(root.path())).await).await;
    let wait = Duration::from_secs(30);

    let mut stream = Box::pin(
        follow_segments(ch.clone(), FollowCursor::default(), Vec::new())
            .await
            .unwrap(),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let a = tokio::time::timeout(wait, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(a);
    }
    let seqs: Vec<u64> = seen.iter().map(|a| a.cursor.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let cursor = seen[2].cursor;

    dir.write(rows(50, T0 + 3 * HOUR, Some("d"), "h3d"), &meta(), T0)
        .unwrap();
    let new = tokio::time::timeout(wait, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(new.cursor.seq, 4);
    assert_eq!(new.segment.namespaces, vec!["d".to_string()]);
    drop(stream);

    // Resuming after the third: only the fourth; with a namespace filter: only matches.
    let mut resumed = Box::pin(
        follow_segments(ch.clone(), cursor, Vec::new())
            .await
            .unwrap(),
    );
    let a = tokio::time::timeout(wait, resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(a.segment.path, new.segment.path);
    let mut only_c = Box::pin(
        follow_segments(ch.clone(), FollowCursor::default(), vec!["c".into()])
            .await
            .unwrap(),
    );
    let a = tokio::time::timeout(wait, only_c.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(a.segment.namespaces, vec!["c".to_string()]);

    // A cursor of another collector run starts from the beginning.
    let stale = FollowCursor {
        epoch: cursor.epoch + 1,
        seq: 3,
    };
    let mut restarted = Box::pin(
        follow_segments(ch.clone(), stale, Vec::new())
            .await
            .unwrap(),
    );
    let a = tokio::time::timeout(wait, restarted.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(a.cursor.seq, 1);

    let h = health(ch).await.unwrap();
    assert_eq!((h.node.as_str(), h.segments), ("node-a", 4));
    let paths: BTreeSet<String> = read_manifest(root.path())
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert!(paths.contains(&new.segment.path));
    assert_eq!(
        h.bytes_on_disk,
        read_manifest(root.path()).unwrap().totals.bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_over_any_byte_stream_reaches_the_service() {
    let root = tempfile::tempdir().unwrap();
    let _dir = data_dir(root.path());
    let addr = serve(service(root.path())).await;
    let dials = Arc::new(AtomicUsize::new(0));
    let d = dials.clone();
    // As a port-forward would: a fresh stream per connection, here a plain TCP one.
    let ch = karmor_proto::channel_from_io(move || {
        d.fetch_add(1, Ordering::SeqCst);
        tokio::net::TcpStream::connect(addr)
    });
    assert_eq!(dials.load(Ordering::SeqCst), 0, "lazy");
    let list = list_segments(ch.clone(), &ListFilter::default())
        .await
        .unwrap();
    assert_eq!(list.segments.len(), 3);
    let out = tempfile::tempdir().unwrap();
    let report = pull_into_bundle(ch, out.path(), &opts(), &mut no_progress())
        .await
        .unwrap();
    assert_eq!(report.fetched, 3);
    assert!(dials.load(Ordering::SeqCst) >= 1);
}
