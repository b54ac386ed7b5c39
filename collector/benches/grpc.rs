//! gRPC benchmark, printed as a table:
//!
//! 1. pull throughput over loopback: a data directory of real segments served by the
//!    collector service, pulled with `pull_into_bundle` (every chunk CRC-checked, every file
//!    sha256-checked, fsynced and listed) into an empty bundle, per chunk size;
//! 2. ingestion from a KubeArmor stream: a loopback `LogService` streams alerts and logs
//!    shaped like KubeArmor's documentation events into the collector (`run_with_feeds`, the
//!    KubeArmor source, its de-duplication window and the segment writer); messages/s from the
//!    first message to the last row written.
//!
//! `cargo bench -p karmor-collector --bench grpc` (also run by `scripts/bench-collector.sh`).

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use karmor_collector::attribution::NoPods;
use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::kubearmor_source::{run_source, KubeArmorSourceConfig, KubeArmorStats};
use karmor_collector::metrics::Counters;
use karmor_collector::run::{run_with_feeds, CollectorConfig, SensorSource};
use karmor_collector::service::{serve_listener, CollectorService, ServiceConfig};
use karmor_contract::schema::{schema_version, Event, Op};
use karmor_contract::segment::SegmentMeta;
use karmor_proto::proto::feeder::log_service_server::{LogService, LogServiceServer};
use karmor_proto::proto::feeder::{
    Alert, Log, Message, NonceMessage, ReplyMessage, RequestMessage,
};
use karmor_proto::tonic::{self, Request, Response, Status};
use karmor_proto::{connect, pull_into_bundle, PullOptions, PullProgress};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::Stream;

const T0: i64 = 1_763_625_600_000_000_000;
const HOUR: i64 = 3_600_000_000_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut table: Vec<[String; 4]> = Vec::new();
    rt.block_on(pull_throughput(&mut table));
    rt.block_on(kubearmor_ingest(&mut table));
    println!();
    println!("| measure | size | time | rate |");
    println!("|---|---:|---:|---:|");
    for [a, b, c, d] in table {
        println!("| {a} | {b} | {c} | {d} |");
    }
}

/// Rows with varied paths and processes, so that segments are not trivially compressible.
fn rows(n: usize, hour: i64) -> Vec<Event> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ hour as u64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Event {
                ts_first: T0 + hour * HOUR + i as i64 * 1000,
                ts_last: T0 + hour * HOUR + i as i64 * 1000 + 500,
                count: 1 + x % 5,
                node: "bench-node".into(),
                namespace: Some(format!("ns-{}", x % 20)),
                pod: Some(format!("pod-{}", x % 500)),
                container: Some("app".into()),
                op: Op::File,
                process: Some(format!("/usr/bin/p{}", x % 300)),
                path: Some(format!("/data/{:x}/{}", x, i)),
                access: Some("read".into()),
                pid: Some((x % 60_000) as i32),
                ..Event::default()
            }
        })
        .collect()
}

async fn pull_throughput(table: &mut Vec<[String; 4]>) {
    let src = tempfile::tempdir().expect("tmp");
    let mut dir = DataDir::open(
        src.path(),
        "bench",
        Retention {
            max_bytes: 0,
            max_age: None,
        },
    )
    .expect("data dir");
    let meta = SegmentMeta {
        schema_version: schema_version(),
        windows: 1,
        ..SegmentMeta::default()
    };
    for hour in 0..6 {
        dir.write(rows(250_000, hour), &meta, T0).expect("write");
    }
    let total: u64 = dir.bytes();
    let segments = dir.manifest().files.len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let svc = CollectorService::new(
        ServiceConfig::new(src.path(), "bench-node"),
        Arc::new(Counters::default()),
        None,
    );
    tokio::spawn(serve_listener(listener, svc, std::future::pending()));
    let channel = connect(&addr.to_string()).await.expect("connect");
    for chunk in [64 * 1024u32, 256 * 1024, 1024 * 1024] {
        let out = tempfile::tempdir().expect("tmp");
        let opts = PullOptions {
            chunk_bytes: chunk,
            ..PullOptions::default()
        };
        let started = Instant::now();
        let mut progress = |_: &PullProgress| {};
        let report = pull_into_bundle(channel.clone(), out.path(), &opts, &mut progress)
            .await
            .expect("pull");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(report.failed, 0);
        assert_eq!(report.bytes_fetched, total);
        table.push([
            format!("pull over loopback, {} KiB chunks", chunk / 1024),
            format!("{segments} segments, {:.1} MB", total as f64 / 1e6),
            format!("{:.2} s", secs),
            format!("{:.0} MB/s", total as f64 / 1e6 / secs),
        ]);
    }
}

/// A loopback LogService that streams `n` messages per stream, as fast as it can, then stays
/// open.
struct Firehose {
    alerts: Arc<Vec<Alert>>,
    logs: Arc<Vec<Log>>,
}

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn firehose<T: Clone + Send + Sync + 'static>(items: Arc<Vec<T>>) -> Out<T> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        for item in items.iter() {
            if tx.send(Ok(item.clone())).await.is_err() {
                return;
            }
        }
        tx.closed().await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl LogService for Firehose {
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
        _r: Request<RequestMessage>,
    ) -> Result<Response<Out<Alert>>, Status> {
        Ok(Response::new(firehose(self.alerts.clone())))
    }
    type WatchLogsStream = Out<Log>;
    async fn watch_logs(&self, _r: Request<RequestMessage>) -> Result<Response<Out<Log>>, Status> {
        Ok(Response::new(firehose(self.logs.clone())))
    }
}

/// Messages shaped like KubeArmor's documentation events: file opens and execs of 200 pods.
fn messages(n: usize) -> (Vec<Alert>, Vec<Log>) {
    let base = 1_686_478_371i64;
    let alerts = (0..n / 2)
        .map(|i| Alert {
            timestamp: base + (i / 1000) as i64,
            updated_time: format!("2023-06-11T10:12:51.{:06}Z", i % 1_000_000),
            cluster_name: "default".into(),
            host_name: "node-1".into(),
            namespace_name: format!("ns-{}", i % 10),
            pod_name: format!("web-8f458dc5b-fl4{:02}", i % 200),
            labels: "app=web".into(),
            container_id: format!("{:064x}", i % 200),
            container_name: "web".into(),
            host_pid: 3_000_000 + (i % 5000) as i32,
            pid: 800 + (i % 5000) as i32,
            ppid: 1,
            process_name: "/bin/cat".into(),
            policy_name: "audit-etc".into(),
            severity: "1".into(),
            r#type: "MatchedPolicy".into(),
            source: "/bin/cat /etc/nginx/conf.d/default.conf".into(),
            operation: "File".into(),
            resource: format!("/etc/nginx/conf.d/file-{}.conf", i % 300),
            data: "syscall=SYS_OPENAT fd=-100 flags=O_RDONLY".into(),
            action: "Audit".into(),
            result: "Passed".into(),
            ..Alert::default()
        })
        .collect();
    let logs = (0..n - n / 2)
        .map(|i| Log {
            timestamp: base + (i / 1000) as i64,
            updated_time: format!("2023-06-11T10:12:52.{:06}Z", i % 1_000_000),
            cluster_name: "default".into(),
            host_name: "node-1".into(),
            namespace_name: format!("ns-{}", i % 10),
            pod_name: format!("api-7c9d8b6f5-x2k{:02}", i % 200),
            container_id: format!("{:064x}", 1000 + i % 200),
            container_name: "api".into(),
            host_pid: 3_100_000 + (i % 5000) as i32,
            pid: 900 + (i % 5000) as i32,
            ppid: 1,
            r#type: "ContainerLog".into(),
            source: "/bin/sh".into(),
            operation: "Process".into(),
            resource: format!("/usr/bin/tool-{} --flag", i % 100),
            data: "syscall=SYS_EXECVE".into(),
            result: "Passed".into(),
            ..Log::default()
        })
        .collect();
    (alerts, logs)
}

async fn kubearmor_ingest(table: &mut Vec<[String; 4]>) {
    let n = 400_000usize;
    let (alerts, logs) = messages(n);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogServiceServer::new(Firehose {
                alerts: Arc::new(alerts),
                logs: Arc::new(logs),
            }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let data = tempfile::tempdir().expect("tmp");
    let cfg = CollectorConfig {
        node: "node-1".into(),
        cluster: None,
        data_dir: data.path().to_path_buf(),
        retention: Retention {
            max_bytes: 0,
            max_age: None,
        },
        rotate_interval: Duration::from_secs(60),
        rotate_rows: 200_000,
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
    let counters = Arc::new(Counters::default());
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let source = tokio::spawn(run_source(
        KubeArmorSourceConfig::new(&addr.to_string()),
        stats.clone(),
        tx,
        stopped,
    ));
    let (quit, quitting) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(run_with_feeds(
        cfg,
        Arc::new(NoPods),
        counters.clone(),
        async {
            let _ = quitting.await;
        },
        vec![rx],
    ));
    while stats.received.load(Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = quit.send(());
    let summary = collector.await.expect("join").expect("run");
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = source.await;
    assert_eq!(summary.events_seen, n as u64);
    table.push([
        "KubeArmor stream → rows written (source, dedup window, writer)".into(),
        format!("{n} messages → {} rows", summary.rows_written),
        format!("{secs:.2} s"),
        format!("{:.0} messages/s", n as f64 / secs),
    ]);
    let bytes = dir_bytes(data.path());
    table.push([
        "KubeArmor stream, bytes on disk".into(),
        format!("{:.1} MB", bytes as f64 / 1e6),
        "-".into(),
        format!("{:.1} bytes/message", bytes as f64 / n as f64),
    ]);
}

fn dir_bytes(root: &Path) -> u64 {
    karmor_contract::bundle::parquet_files(root)
        .map(|files| {
            files
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
