//! The collector's main loop: read the sensor, feed the pipeline, rotate windows into
//! segments on a writer thread, apply retention, keep counters.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;

use crate::archiver::{self, ArchiveConfig};
use crate::attribution::PodLookup;
use crate::compactor::{self, lock};
use crate::datadir::{DataDir, Retention};
use crate::kubearmor_source::{run_feed_window, FeedItem, FeedWindowConfig};
use crate::metrics::{self, Counters};
use crate::pipeline::{DrainedWindow, Pipeline, PipelineConfig};
use crate::probes::{ProbeError, ProbeSet, Probes};
use crate::raw::decode;
use crate::synthetic::SyntheticFeed;
use crate::tiers::CompactionPolicy;
use karmor_contract::error::ContractError;
use karmor_contract::schema::{schema_version, Event};
use karmor_contract::segment::SegmentMeta;

/// Where raw events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SensorSource {
    /// The kernel probes.
    Ebpf,
    /// A synthetic feed of `rate` events per second over `containers` containers.
    Synthetic {
        /// Events per second (0: as fast as possible).
        rate: u64,
        /// Distinct containers.
        containers: u32,
    },
    /// No sensor of its own: only the feeds given to [`run_with_feeds`] (e.g. KubeArmor).
    Feeds,
    /// Empty programs on the kernel probes' hooks ([`ProbeSet::Empty`]): the floor a
    /// benchmark measures beside [`SensorSource::Ebpf`]; no events.
    EmptyProbes,
}

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Node name stamped on rows.
    pub node: String,
    /// Cluster name stamped on rows.
    pub cluster: Option<String>,
    /// Data directory (a live bundle).
    pub data_dir: PathBuf,
    /// Retention limits.
    pub retention: Retention,
    /// A window is flushed into a segment at least this often.
    pub rotate_interval: Duration,
    /// … or when it holds this many distinct rows.
    pub rotate_rows: usize,
    /// … or when a sensor's window would hold more than this many bytes
    /// ([`Pipeline::window_bytes`]; default [`WINDOW_BYTES`]).
    pub window_bytes: usize,
    /// Keep exec arguments.
    pub record_args: bool,
    /// Count system calls per container and executable (the `raw_syscalls:sys_enter` probe).
    pub syscalls: bool,
    /// Count capability checks per container and executable (the `capability:cap_capable`
    /// probe).
    pub capabilities: bool,
    /// Only these sensors' probes are attached; empty: every sensor's (`--sensors`, which
    /// benchmarks use to measure one sensor's hooks alone).
    pub only_sensors: Vec<crate::probes::Sensor>,
    /// Sensor.
    pub source: SensorSource,
    /// Prometheus endpoint address.
    pub metrics_addr: Option<SocketAddr>,
    /// Compaction of closed hours (and days) into hour (and day) files; `None`: off.
    pub compaction: Option<CompactionPolicy>,
    /// The archive tier (`--archive-to`); `None`: off.
    pub archive: Option<ArchiveConfig>,
}

impl CollectorConfig {
    /// The compaction policy of `--compact`/`--compact-days`: an hour or a day is compacted
    /// once it has closed plus one rotation window (its last rows may still arrive meanwhile).
    pub fn compaction_policy(rotate_interval: Duration, days: bool) -> CompactionPolicy {
        CompactionPolicy {
            grace_ns: rotate_interval.as_nanos().min(i64::MAX as u128) as i64,
            days,
        }
    }
}

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The sensors could not start.
    #[error(transparent)]
    Probes(#[from] ProbeError),
    /// The data directory could not be opened.
    #[error(transparent)]
    Data(#[from] ContractError),
    /// I/O on the ring buffer or the metrics socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a run did, for logs and tests.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Raw events read.
    pub events_seen: u64,
    /// Events dropped by the kernel.
    pub events_dropped: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Segments written.
    pub segments_written: u64,
    /// Probes attached (eBPF source).
    pub attached: Vec<&'static str>,
    /// Probes that failed to attach, with reasons.
    pub failed: Vec<(&'static str, String)>,
}

/// Nanoseconds to add to CLOCK_MONOTONIC to get Unix time.
pub fn mono_to_real_offset() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = ts.tv_sec * 1_000_000_000 + ts.tv_nsec;
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    real - mono
}

fn now_mono() -> u64 {
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
        - mono_to_real_offset()) as u64
}

fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Default memory a sensor's de-duplication window may hold ([`Pipeline::window_bytes`])
/// before it is flushed, whatever `--rotate-rows` and `--rotate-seconds` say (`--window-mib`);
/// half of it while a compaction runs ([`Counters::window_budget`]). With at most one closed
/// window being written beside the one filling, it bounds the collector's memory (about 44 MiB
/// resident at 200k events/s over 500 containers, `benches/collector.rs`).
pub const WINDOW_BYTES: usize = 12 << 20;

enum Rows {
    /// Rows of a feed's window.
    Events(Vec<Event>),
    /// A closed sensor window, turned into events a chunk at a time while it is written; the
    /// sender is told once it is written and gone.
    Window(DrainedWindow, tokio::sync::oneshot::Sender<()>),
}

struct Flush {
    rows: Rows,
    meta: SegmentMeta,
}

/// The writer thread: writes flushed windows, applies retention, updates counters. It shares
/// the data directory with the compactor, which holds its lock only for short steps.
fn writer_thread(
    dir: Arc<Mutex<DataDir>>,
    mut rx: tokio::sync::mpsc::Receiver<Flush>,
    counters: Arc<Counters>,
    pods: Arc<dyn PodLookup>,
    node: String,
    cluster: Option<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        counters
            .bytes_on_disk
            .store(lock(&dir).bytes(), Ordering::Relaxed);
        while let Some(flush) = rx.blocking_recv() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            let mut dir = lock(&dir);
            let (n, result) = match flush.rows {
                Rows::Events(rows) => (rows.len() as u64, dir.write(rows, &flush.meta, now)),
                Rows::Window(w, written) => {
                    let result = w.write_to(&mut dir, &flush.meta, now);
                    let n = w.row_count() as u64;
                    drop(w);
                    let _ = written.send(());
                    (n, result)
                }
            };
            match result {
                Ok(out) => {
                    Counters::add(&counters.rows_written, n);
                    Counters::add(&counters.segments_written, out.written.len() as u64);
                    Counters::add(
                        &counters.bytes_written,
                        out.written.iter().map(|f| f.bytes).sum(),
                    );
                    Counters::add(&counters.segments_removed, out.removed.len() as u64);
                    counters.bytes_on_disk.store(dir.bytes(), Ordering::Relaxed);
                    store_losses(&dir, &counters);
                }
                Err(e) => {
                    Counters::add(&counters.write_errors, 1);
                    log::error!("writing a segment failed: {e}");
                }
            }
            // The pods table beside the segments: what the pod (and Service) watch knows
            // now, with the cluster's name (`--cluster`).
            let mut rows = pods.pod_addresses();
            for r in &mut rows {
                if r.cluster.is_none() {
                    r.cluster.clone_from(&cluster);
                }
            }
            if let Err(e) = dir.write_pods(&node, rows) {
                Counters::add(&counters.write_errors, 1);
                log::error!("writing the pods table failed: {e}");
            }
        }
    })
}

/// Copies the archive tier's losses (files the byte limit forced out unarchived) into the
/// counters.
fn store_losses(dir: &DataDir, counters: &Counters) {
    if let Some(l) = dir.archive_ledger() {
        counters
            .archive_lost_files
            .store(l.lost_files, Ordering::Relaxed);
        counters
            .archive_lost_bytes
            .store(l.lost_bytes, Ordering::Relaxed);
    }
}

/// Runs until `shutdown` completes, then flushes the open window and returns.
pub async fn run(
    cfg: CollectorConfig,
    pods: Arc<dyn PodLookup>,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, CollectorError> {
    run_with_feeds(cfg, pods, counters, shutdown, Vec::new()).await
}

/// [`run`], with event feeds beside (or, with [`SensorSource::Feeds`], instead of) the
/// sensor: each feed has its own de-duplication window, flushed to the same writer.
pub async fn run_with_feeds(
    cfg: CollectorConfig,
    pods: Arc<dyn PodLookup>,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
    feeds: Vec<tokio::sync::mpsc::Receiver<FeedItem>>,
) -> Result<RunSummary, CollectorError> {
    let producer = format!("karmor-collector {}", env!("CARGO_PKG_VERSION"));
    let dir = DataDir::open_with_archive(
        &cfg.data_dir,
        &producer,
        cfg.retention,
        cfg.archive.is_some(),
    )?;
    store_losses(&dir, &counters);
    let r = dir.recovery();
    if !(r.relisted.is_empty() && r.discarded.is_empty() && r.replaced.is_empty()) {
        log::warn!(
            "after a crash: {} segments listed again, {} unfinished compaction outputs discarded, {} replaced files deleted",
            r.relisted.len(),
            r.discarded.len(),
            r.replaced.len()
        );
    }
    let dir = Arc::new(Mutex::new(dir));
    // Senders await a free slot, so a writer that falls behind slows the windows down without
    // blocking the runtime's other tasks.
    let (tx, rx) = tokio::sync::mpsc::channel::<Flush>(4);
    let writer = writer_thread(
        dir.clone(),
        rx,
        counters.clone(),
        pods.clone(),
        cfg.node.clone(),
        cfg.cluster.clone(),
    );
    // Closed hours and days, also those left while the collector was down, are compacted on a
    // thread of their own.
    let compactor = match cfg.compaction {
        Some(policy) => {
            let tick = cfg
                .rotate_interval
                .clamp(Duration::from_millis(100), Duration::from_secs(60));
            Some(compactor::spawn(
                dir.clone(),
                policy,
                tick,
                counters.clone(),
            )?)
        }
        None => None,
    };
    // Aged files go to the archive tier before retention may delete them.
    let archiver = match &cfg.archive {
        Some(a) => Some(archiver::spawn(
            dir.clone(),
            cfg.data_dir.clone(),
            a.clone(),
            counters.clone(),
        )?),
        None => None,
    };
    let (feeds_stop, feeds_stopped) = tokio::sync::watch::channel(false);
    let feed_tasks: Vec<_> = feeds
        .into_iter()
        .map(|feed| {
            let (tx, counters2) = (tx.clone(), counters.clone());
            let window = FeedWindowConfig {
                node: cfg.node.clone(),
                cluster: cfg.cluster.clone(),
                producer: producer.clone(),
                rotate_interval: cfg.rotate_interval,
                rotate_rows: cfg.rotate_rows,
            };
            let flush = move |rows: Vec<Event>, meta: SegmentMeta| {
                let (tx, counters) = (tx.clone(), counters2.clone());
                async move {
                    let rows = Rows::Events(rows);
                    if tx.send(Flush { rows, meta }).await.is_err() {
                        Counters::add(&counters.write_errors, 1);
                    }
                }
            };
            let stop = feeds_stopped.clone();
            tokio::spawn(run_feed_window(feed, window, counters.clone(), flush, stop))
        })
        .collect();
    let metrics_task = cfg
        .metrics_addr
        .map(|addr| tokio::spawn(metrics::serve(addr, counters.clone())));

    let mut pipeline = Pipeline::new(PipelineConfig {
        node: cfg.node.clone(),
        cluster: cfg.cluster.clone(),
        record_args: cfg.record_args,
        process_capacity: 65_536,
    });
    let mut summary = RunSummary::default();
    let mut dropped_reported = 0u64;
    let kernel = kernel_release();
    // The sensor loop closes a window only once the writer is done with the previous one (the
    // kernel's ring buffer holds events meanwhile): at most one closed window is in memory
    // beside the open one. The wait is awaited, so the runtime's other tasks (metrics, the
    // gRPC service, the pod watch) go on meanwhile.
    let mut in_flight: Option<tokio::sync::oneshot::Receiver<()>> = None;
    // `last`: the final flush, which keeps nothing back for a next window.
    let mut flush = async |pipeline: &mut Pipeline, dropped_total: u64, last: bool| {
        if pipeline.raw_events() == 0 && dropped_total == dropped_reported {
            return;
        }
        if let Some(written) = in_flight.take() {
            // Also returns when the writer is gone (the send below counts that).
            let _ = written.await;
        }
        let raw = pipeline.raw_events();
        let window = if last {
            pipeline.drain_window(mono_to_real_offset(), pods.as_ref())
        } else {
            pipeline.drain_window_holding(mono_to_real_offset(), pods.as_ref())
        };
        let meta = SegmentMeta {
            schema_version: schema_version(),
            producer: producer.clone(),
            collector_version: Some(env!("CARGO_PKG_VERSION").into()),
            kernel: kernel.clone(),
            node: cfg.node.clone(),
            events_seen: raw,
            events_dropped: dropped_total - dropped_reported,
            windows: 1,
        };
        if window.row_count() == 0 {
            // Drops without rows stay to be reported with the next window's segment.
            return;
        }
        dropped_reported = dropped_total;
        let (written_tx, written) = tokio::sync::oneshot::channel();
        let rows = Rows::Window(window, written_tx);
        if tx.send(Flush { rows, meta }).await.is_ok() {
            in_flight = Some(written);
        } else {
            Counters::add(&counters.write_errors, 1);
        }
    };
    let tick = (cfg.rotate_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    // Ticks missed while a burst was handled are skipped, not fired at once: the synthetic
    // source catches up from the clock anyway, and shutdown is not kept waiting behind them.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);

    match cfg.source.clone() {
        SensorSource::Ebpf | SensorSource::EmptyProbes => {
            let set = if cfg.source == SensorSource::EmptyProbes {
                ProbeSet::Empty
            } else {
                ProbeSet::Sensors
            };
            let skip = crate::probes::skipped(cfg.syscalls, cfg.capabilities, &cfg.only_sensors);
            let (mut probes, ring) = Probes::load_set(set, &skip)?;
            summary.attached = probes.attached.clone();
            counters
                .probes_attached
                .store(probes.attached.len() as u64, Ordering::Relaxed);
            summary.failed = probes.failed.clone();
            let _ = counters.hooks.set(probes.hooks.clone());
            let _ = counters.hook_choices.set(probes.choices.clone());
            for c in &probes.choices {
                log::info!("sensor {}: {} ({})", c.sensor, c.hooks.join(", "), c.why);
            }
            // SAFETY: the ring buffer owns its map fd, which stays open and the same until the
            // RingBuf (moved into the AsyncFd) is dropped with it.
            let mut ring =
                unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            loop {
                tokio::select! {
                    guard = ring.readable_mut() => {
                        let mut guard = guard?;
                        let rb = guard.get_inner_mut();
                        loop {
                            let Some(item) = rb.next() else { break };
                            Counters::add(&counters.events_seen, 1);
                            match decode(&item) {
                                Ok(ev) => pipeline.handle(&ev),
                                Err(_) => Counters::add(&counters.decode_errors, 1),
                            }
                            let full = full(&pipeline, cfg.rotate_rows, counters.window_budget(cfg.window_bytes));
                            drop(item);
                            if full {
                                settle(&mut probes, rb, &mut pipeline, &counters);
                                flush(&mut pipeline, probes.dropped(), false).await;
                            }
                        }
                        guard.clear_ready();
                    }
                    _ = ticker.tick() => {
                        let dropped = probes.dropped();
                        counters.events_dropped.store(dropped, Ordering::Relaxed);
                        if due(&pipeline, cfg.rotate_interval) {
                            settle(&mut probes, ring.get_mut(), &mut pipeline, &counters);
                            flush(&mut pipeline, probes.dropped(), false).await;
                        }
                    }
                    _ = &mut shutdown => {
                        // Drain what is already in the ring buffer and the kernel's counts,
                        // then flush.
                        settle(&mut probes, ring.get_mut(), &mut pipeline, &counters);
                        let dropped = probes.dropped();
                        counters.events_dropped.store(dropped, Ordering::Relaxed);
                        flush(&mut pipeline, dropped, true).await;
                        break;
                    }
                }
            }
        }
        SensorSource::Feeds => shutdown.await,
        SensorSource::Synthetic { rate, containers } => {
            let mut feed = SyntheticFeed::new(containers);
            let started = Instant::now();
            let mut sent = 0u64;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let target = if rate == 0 {
                            sent + 20_000
                        } else {
                            (started.elapsed().as_secs_f64() * rate as f64) as u64
                        };
                        while sent < target {
                            let rec = feed.next_record(now_mono());
                            Counters::add(&counters.events_seen, 1);
                            if let Ok(ev) = decode(&rec) {
                                pipeline.handle(&ev);
                            }
                            sent += 1;
                            if full(&pipeline, cfg.rotate_rows, counters.window_budget(cfg.window_bytes)) {
                                flush(&mut pipeline, 0, false).await;
                            }
                        }
                        if due(&pipeline, cfg.rotate_interval) {
                            flush(&mut pipeline, 0, false).await;
                        }
                    }
                    _ = &mut shutdown => {
                        flush(&mut pipeline, 0, true).await;
                        break;
                    }
                }
            }
        }
    }
    let _ = feeds_stop.send(true);
    for task in feed_tasks {
        let _ = task.await;
    }
    drop(tx);
    // The writer finishes what is queued; wait for it off the runtime's thread.
    let joined = tokio::task::spawn_blocking(move || writer.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        Counters::add(&counters.write_errors, 1);
    }
    // The archive thread stops after the pass under way (a cut upload resumes next start).
    if let Some((stop, handle)) = archiver {
        let _ = stop.send(());
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    // The compactor stops after the compaction under way (a `kill -9` meanwhile is safe too).
    if let Some((stop, handle)) = compactor {
        let _ = stop.send(());
        let joined = tokio::task::spawn_blocking(move || handle.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            Counters::add(&counters.compaction_errors, 1);
        }
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    summary.events_seen = counters.events_seen.load(Ordering::Relaxed);
    summary.events_dropped = counters.events_dropped.load(Ordering::Relaxed);
    summary.rows_written = counters.rows_written.load(Ordering::Relaxed);
    summary.segments_written = counters.segments_written.load(Ordering::Relaxed);
    Ok(summary)
}

/// Closes the kernel's de-duplication generation into the open window (see
/// [`Probes::settle`]) before it is flushed.
fn settle(
    probes: &mut Probes,
    ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
    pipeline: &mut Pipeline,
    counters: &Counters,
) {
    let s = probes.settle(ring, pipeline);
    Counters::add(&counters.events_seen, s.records + s.repeats + s.counted);
    Counters::add(&counters.decode_errors, s.decode_errors);
    Counters::add(&counters.kernel_repeats, s.repeats);
}

/// The window holds `rotate_rows` rows, or its next row could take it past `window_bytes`.
fn full(p: &Pipeline, rotate_rows: usize, window_bytes: usize) -> bool {
    p.rows() >= rotate_rows || p.window_bytes() >= window_bytes
}

fn due(p: &Pipeline, interval: Duration) -> bool {
    p.window_start()
        .is_some_and(|start| now_mono().saturating_sub(start) >= interval.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::NoPods;

    #[test]
    fn windows_are_flushed_by_size_whatever_the_row_limit() {
        let mut p = Pipeline::new(PipelineConfig {
            node: "n".into(),
            cluster: None,
            record_args: true,
            process_capacity: 1024,
        });
        let mut feed = SyntheticFeed::new(500);
        let n = 200_000u64;
        let (mut windows, mut raw, mut rows) = (Vec::new(), 0, 0);
        for i in 0..n {
            let rec = feed.next_record(i);
            p.handle(&decode(&rec).expect("synthetic records decode"));
            assert!(full(&p, 1000, WINDOW_BYTES) || p.rows() < 1000);
            if full(&p, usize::MAX, WINDOW_BYTES) {
                raw += p.raw_events();
                let w = p.drain_window(0, &NoPods);
                rows += w.row_count();
                windows.push(w.row_count());
            }
        }
        assert!(windows.len() >= 2, "{windows:?}");
        // The budget holds windows of thousands of rows, all alike, and loses no event.
        assert!(
            windows.iter().all(|&w| w > 1000 && w == windows[0]),
            "{windows:?}"
        );
        raw += p.raw_events();
        rows += p.drain(0, &NoPods).len();
        assert_eq!(raw, n);
        assert!(rows >= windows.len() * windows[0]);
    }

    /// A pod watch that knows one pod's address (without a cluster name, as the watch does).
    struct OnePod;

    impl PodLookup for OnePod {
        fn by_container(&self, _: &str) -> Option<crate::attribution::PodInfo> {
            None
        }

        fn pod_addresses(&self) -> Vec<karmor_contract::pods::PodAddress> {
            vec![karmor_contract::pods::PodAddress {
                node: "n".into(),
                namespace: "shop".into(),
                pod: "web-1".into(),
                ip: "10.0.0.5".into(),
                valid_from: 1,
                ..Default::default()
            }]
        }
    }

    #[test]
    fn the_writer_writes_the_pods_table_with_the_cluster_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(
            dir.path(),
            "test",
            Retention {
                max_bytes: 0,
                max_age: None,
            },
        )
        .unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel::<Flush>(1);
        let writer = writer_thread(
            Arc::new(Mutex::new(data)),
            rx,
            Arc::new(Counters::default()),
            Arc::new(OnePod),
            "n".into(),
            Some("prod".into()),
        );
        let event = Event {
            ts_first: 1_795_161_600_000_000_000,
            ts_last: 1_795_161_600_000_000_000,
            count: 1,
            node: "n".into(),
            ..Event::default()
        };
        let meta = SegmentMeta {
            schema_version: karmor_contract::schema::schema_version(),
            node: "n".into(),
            ..SegmentMeta::default()
        };
        tx.blocking_send(Flush {
            rows: Rows::Events(vec![event]),
            meta,
        })
        .unwrap();
        drop(tx);
        writer.join().unwrap();
        let manifest = karmor_contract::bundle::read_manifest(dir.path()).unwrap();
        assert_eq!(manifest.pods.len(), 1);
        let rows =
            karmor_contract::pods::read_pods(&dir.path().join(&manifest.pods[0].path)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cluster.as_deref(), Some("prod"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_collector_rotates_by_size_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CollectorConfig {
            node: "n".into(),
            cluster: None,
            data_dir: dir.path().to_path_buf(),
            retention: Retention {
                max_bytes: 0,
                max_age: None,
            },
            // Neither time nor the row limit closes a window in this run: only its size.
            rotate_interval: Duration::from_secs(3600),
            rotate_rows: usize::MAX,
            window_bytes: WINDOW_BYTES,
            record_args: true,
            syscalls: true,
            capabilities: true,
            only_sensors: Vec::new(),
            // About 70k distinct rows: at least two windows closed by size, and the last one.
            source: SensorSource::Synthetic {
                rate: 100_000,
                containers: 500,
            },
            metrics_addr: None,
            compaction: None,
            archive: None,
        };
        let counters = Arc::new(Counters::default());
        let seen = counters.clone();
        let shutdown = async move {
            while seen.events_seen.load(Ordering::Relaxed) < 100_000 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let summary = run(cfg, Arc::new(NoPods), counters, shutdown)
            .await
            .unwrap();
        assert!(summary.segments_written >= 3, "{summary:?}");
        let m = karmor_contract::bundle::read_manifest(dir.path()).unwrap();
        assert_eq!(m.totals.files, summary.segments_written);
        assert_eq!(m.totals.events_seen, summary.events_seen);
        assert_eq!(m.totals.rows, summary.rows_written);
    }
}
