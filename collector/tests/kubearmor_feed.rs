//! KubeArmor as a source: a fake KubeArmor `LogService` (real tonic, loopback) streams the 18
//! events of KubeArmor's documentation (`shared/kubearmor/events/doc-events.jsonl`) into the
//! collector (`run_with_feeds` with the KubeArmor source). The rows the collector writes equal
//! the rows `kubectl karmor import` makes of the same file, and a connection cut in the middle,
//! followed by a replay from the start, adds no duplicate row.
//!
//! Two columns differ by construction and are set on the expected rows, per line: `source`
//! (`kubearmor` instead of `import`), and `uid` where the JSON line has no `UID` (protobuf
//! cannot tell "absent" from 0, and the gRPC mapping reads 0 as root; see
//! `karmor_proto::kubearmor`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use karmor_collector::attribution::NoPods;
use karmor_collector::datadir::Retention;
use karmor_collector::kubearmor_source::{run_source, KubeArmorSourceConfig, KubeArmorStats};
use karmor_collector::metrics::Counters;
use karmor_collector::run::{run_with_feeds, CollectorConfig, SensorSource};
use karmor_contract::bundle::{read_manifest, write_bundle, BundleOptions};
use karmor_contract::kubearmor::read_json_logs;
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Source};
use karmor_proto::kubearmor::{message_from_json, FeedMessage};
use karmor_proto::proto::feeder::log_service_server::{LogService, LogServiceServer};
use karmor_proto::proto::feeder::{
    Alert, Log, Message, NonceMessage, ReplyMessage, RequestMessage,
};
use karmor_proto::tonic::{self, Request, Response, Status};
use karmor_proto::{watch_kubearmor, FeedKind, KubeArmorFeeds};
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};

const DOC_EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/kubearmor/events/doc-events.jsonl"
);

fn doc_lines() -> Vec<Value> {
    std::fs::read_to_string(DOC_EVENTS)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A fake KubeArmor daemon. On its first `cut_times` connections each stream stops with
/// UNAVAILABLE after `cut_after` messages; every connection sends from the start (as a relay
/// replaying its buffer would).
struct FakeKubeArmor {
    logs: Vec<Log>,
    alerts: Vec<Alert>,
    cut_after: usize,
    cut_times: usize,
    log_calls: Arc<AtomicUsize>,
    alert_calls: Arc<AtomicUsize>,
    filters: Arc<std::sync::Mutex<Vec<String>>>,
}

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn replay<T: Clone + Send + 'static>(items: &[T], cut: Option<usize>) -> Out<T> {
    let items: Vec<Result<T, Status>> = items.iter().cloned().map(Ok).collect();
    match cut {
        Some(n) => Box::pin(tokio_stream::iter(items.into_iter().take(n)).chain(
            tokio_stream::once(Err(Status::unavailable("cut by the test"))),
        )),
        // After the events, stay open like a daemon with nothing new to say.
        None => Box::pin(tokio_stream::iter(items).chain(tokio_stream::pending())),
    }
}

#[tonic::async_trait]
impl LogService for FakeKubeArmor {
    async fn health_check(
        &self,
        r: Request<NonceMessage>,
    ) -> Result<Response<ReplyMessage>, Status> {
        Ok(Response::new(ReplyMessage {
            retval: r.into_inner().nonce,
        }))
    }

    type WatchMessagesStream = Out<Message>;

    async fn watch_messages(
        &self,
        _r: Request<RequestMessage>,
    ) -> Result<Response<Out<Message>>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }

    type WatchAlertsStream = Out<Alert>;

    async fn watch_alerts(
        &self,
        r: Request<RequestMessage>,
    ) -> Result<Response<Out<Alert>>, Status> {
        self.filters
            .lock()
            .unwrap()
            .push(format!("alerts:{}", r.get_ref().filter));
        let n = self.alert_calls.fetch_add(1, Ordering::SeqCst);
        let cut = (n < self.cut_times).then_some(self.cut_after);
        Ok(Response::new(replay(&self.alerts, cut)))
    }

    type WatchLogsStream = Out<Log>;

    async fn watch_logs(&self, r: Request<RequestMessage>) -> Result<Response<Out<Log>>, Status> {
        self.filters
            .lock()
            .unwrap()
            .push(format!("logs:{}", r.get_ref().filter));
        let n = self.log_calls.fetch_add(1, Ordering::SeqCst);
        let cut = (n < self.cut_times).then_some(self.cut_after);
        Ok(Response::new(replay(&self.logs, cut)))
    }
}

fn fake(cut_after: usize, cut_times: usize) -> FakeKubeArmor {
    let (mut logs, mut alerts) = (Vec::new(), Vec::new());
    for v in doc_lines() {
        match message_from_json(&v) {
            FeedMessage::Log(l) => logs.push(l),
            FeedMessage::Alert(a) => alerts.push(a),
        }
    }
    FakeKubeArmor {
        logs,
        alerts,
        cut_after,
        cut_times,
        log_calls: Arc::default(),
        alert_calls: Arc::default(),
        filters: Arc::default(),
    }
}

async fn serve(svc: FakeKubeArmor) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogServiceServer::new(svc))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

/// The rows `kubectl karmor import doc-events.jsonl` writes (same reader, same bundle writer
/// and options), with `source` and absent `UID`s as the gRPC path necessarily has them.
fn import_rows() -> Vec<String> {
    let lines = doc_lines();
    let outcome = read_json_logs(std::io::BufReader::new(
        std::fs::File::open(DOC_EVENTS).unwrap(),
    ));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.events.len(), lines.len());
    let events: Vec<Event> = outcome
        .events
        .into_iter()
        .zip(&lines)
        .map(|(mut e, v)| {
            e.source = Source::Kubearmor;
            if v.get("UID").is_none() {
                e.uid = Some(0);
            }
            e
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let opts = BundleOptions {
        producer: "kubectl-karmor import".into(),
        dedup: true,
        ..BundleOptions::default()
    };
    write_bundle(dir.path(), events, &opts).unwrap();
    bundle_rows(dir.path())
}

fn bundle_rows(dir: &std::path::Path) -> Vec<String> {
    let m = read_manifest(dir).unwrap();
    let mut rows: Vec<String> = m
        .files
        .iter()
        .flat_map(|f| read_segment(&dir.join(&f.path)).unwrap().1)
        .map(|e| format!("{e:?}"))
        .collect();
    rows.sort();
    rows
}

/// Runs the collector with only the KubeArmor source against `addr` until the source has
/// passed on `expect` distinct messages, then stops it; returns the data directory's rows.
async fn collect(addr: SocketAddr, expect: u64) -> (Vec<String>, Arc<KubeArmorStats>) {
    let data = tempfile::tempdir().unwrap();
    let cfg = CollectorConfig {
        node: "collector-node".into(),
        cluster: None,
        data_dir: data.path().to_path_buf(),
        retention: Retention {
            max_bytes: 0,
            max_age: None,
        },
        rotate_interval: Duration::from_secs(3600),
        rotate_rows: 1_000_000,
        window_bytes: karmor_collector::run::WINDOW_BYTES,
        record_args: true,
        syscalls: true,
        capabilities: true,
        only_sensors: Vec::new(),
        source: SensorSource::Feeds,
        metrics_addr: None,
        compaction: None,
        archive: None,
    };
    let stats = Arc::new(KubeArmorStats::default());
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let source_cfg = KubeArmorSourceConfig {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..KubeArmorSourceConfig::new(&addr.to_string())
    };
    let source = tokio::spawn(run_source(source_cfg, stats.clone(), tx, stopped));
    let (quit, quitting) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(run_with_feeds(
        cfg,
        Arc::new(NoPods),
        Arc::new(Counters::default()),
        async {
            let _ = quitting.await;
        },
        vec![rx],
    ));
    // Bounded wait for the feed (not a timing assertion: it fails only if nothing arrives).
    for _ in 0..3000 {
        if stats.received.load(Ordering::SeqCst) >= expect {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats.received.load(Ordering::SeqCst), expect);
    quit.send(()).unwrap();
    let summary = collector.await.unwrap().unwrap();
    let _ = stop.send(true);
    source.await.unwrap();
    assert_eq!(summary.events_seen, expect);
    (bundle_rows(data.path()), stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_the_kubearmor_feed_equal_the_rows_of_import() {
    let svc = fake(usize::MAX, 0);
    let filters = svc.filters.clone();
    let addr = serve(svc).await;
    let expected = import_rows();
    let (rows, stats) = collect(addr, doc_lines().len() as u64).await;
    assert_eq!(rows.len(), expected.len());
    for (got, want) in rows.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert_eq!(stats.duplicates.load(Ordering::SeqCst), 0);
    assert_eq!(stats.unmapped.load(Ordering::SeqCst), 0);
    let mut f = filters.lock().unwrap().clone();
    f.sort();
    assert_eq!(
        f,
        vec!["alerts:policy".to_string(), "logs:system".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_and_a_replay_from_the_start_add_no_duplicate_rows() {
    // Streams break after 4 messages on the first two connections; each reconnection
    // replays everything from the start.
    let svc = fake(4, 2);
    let calls = svc.alert_calls.clone();
    let addr = serve(svc).await;
    let expected = import_rows();
    let (rows, stats) = collect(addr, doc_lines().len() as u64).await;
    assert_eq!(rows, expected);
    assert!(calls.load(Ordering::SeqCst) >= 3, "reconnected twice");
    assert!(stats.connects.load(Ordering::SeqCst) >= 3);
    assert!(
        stats.duplicates.load(Ordering::SeqCst) >= 2,
        "replayed messages were dropped: {}",
        stats.duplicates.load(Ordering::SeqCst)
    );

    // The collector's Health and /metrics report what the source counted.
    use karmor_collector::service::{CollectorService, ServiceConfig};
    use karmor_proto::proto::collector::collector_server::Collector;
    use karmor_proto::proto::collector::HealthRequest;
    let root = tempfile::tempdir().unwrap();
    let counters = Arc::new(Counters::default());
    assert!(counters.kubearmor.set(stats.clone()).is_ok());
    let svc = CollectorService::new(
        ServiceConfig::new(root.path(), "node-a"),
        counters.clone(),
        Some(stats.clone()),
    );
    let h = svc
        .health(karmor_proto::tonic::Request::new(HealthRequest {}))
        .await
        .unwrap()
        .into_inner();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::SeqCst);
    assert_eq!(h.kubearmor_events, doc_lines().len() as u64);
    assert_eq!(h.kubearmor_duplicates, load(&stats.duplicates));
    assert_eq!(h.kubearmor_connects, load(&stats.connects));
    assert!(h.kubearmor_failures >= 2, "two broken streams: {h:?}");
    assert_eq!(h.kubearmor_unmapped, 0);
    let metrics = counters.render();
    let line = format!(
        "karmor_kubearmor_duplicates_total {}",
        load(&stats.duplicates)
    );
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_kubearmor_maps_each_message_with_its_stream() {
    let addr = serve(fake(usize::MAX, 0)).await;
    let ch = karmor_proto::connect(&addr.to_string()).await.unwrap();
    let mut stream = Box::pin(
        watch_kubearmor(
            ch,
            KubeArmorFeeds {
                logs: true,
                alerts: false,
            },
        )
        .await
        .unwrap(),
    );
    let first = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.kind, FeedKind::Log);
    let event = first.event.unwrap();
    assert_eq!(event.source, Source::Kubearmor);
    assert_eq!(event.op.as_str(), "file");
}

/// The collector binary end to end: `--source kubearmor` against the fake daemon, its own
/// service on a loopback port reporting the feed in Health, and after SIGTERM a data directory
/// whose rows equal import's; then `pull_into_bundle` from the service while it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_binary_records_from_kubearmor_and_serves_what_it_wrote() {
    use karmor_proto::{connect, health, pull_into_bundle, PullOptions};
    use std::process::{Command, Stdio};

    let addr = serve(fake(usize::MAX, 0)).await;
    let data = tempfile::tempdir().unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let start = |listen: String| {
        Command::new(env!("CARGO_BIN_EXE_karmor-collector"))
            .args(["--source", "kubearmor", "--no-kube", "--no-metrics"])
            // The documentation's events are years old: their hours are closed, and compacting
            // them would replace segments while this test pulls them (a pull racing a
            // compaction is the pull's to handle, not this test's subject).
            .arg("--compact=false")
            .args(["--node-name", "collector-node", "--rotate-seconds", "3600"])
            // The documentation's events are years old: keep them (no retention by age).
            .args(["--max-age-hours", "0"])
            .args(["--kubearmor-addr", &addr.to_string(), "--listen", &listen])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = start(listen.clone());
    let expect = doc_lines().len() as u64;
    let mut last = None;
    for _ in 0..3000 {
        if let Ok(ch) = connect(&listen).await {
            if let Ok(h) = health(ch).await {
                if h.kubearmor_events >= expect {
                    last = Some(h);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let h = last.expect("the collector reported every KubeArmor message");
    assert_eq!(h.sources, vec!["kubearmor".to_string()]);
    assert!(h.kubearmor_connected);
    assert_eq!(h.kubearmor_events, expect);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success(), "graceful stop");
    assert_eq!(bundle_rows(data.path()), import_rows());

    // Restarted (the feed replays; its rows go to a new window), it serves what it wrote.
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = start(listen.clone());
    let mut channel = None;
    for _ in 0..3000 {
        if let Ok(ch) = connect(&listen).await {
            channel = Some(ch);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = tempfile::tempdir().unwrap();
    let report = pull_into_bundle(
        channel.expect("service up"),
        out.path(),
        &PullOptions::default(),
        &mut |_: &karmor_proto::PullProgress| {},
    )
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(report.fetched >= 1 && report.failed == 0, "{report:?}");
    let pulled = bundle_rows(out.path());
    let expected = import_rows();
    assert!(expected.iter().all(|r| pulled.contains(r)));
}
