//! The collector's main loop: read the sensor, feed the pipeline, rotate windows into
//! segments on a writer thread, apply retention, keep counters.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;

use crate::daemon::attribution::PodLookup;
use crate::daemon::datadir::{DataDir, Retention};
use crate::daemon::kubearmor_source::{run_feed_window, FeedItem, FeedWindowConfig};
use crate::daemon::metrics::{self, Counters};
use crate::daemon::pipeline::{Pipeline, PipelineConfig};
use crate::daemon::probes::{ProbeError, Probes};
use crate::daemon::raw::decode;
use crate::daemon::synthetic::SyntheticFeed;
use crate::error::ContractError;
use crate::schema::{schema_version, Event};
use crate::segment::SegmentMeta;

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
    /// Keep exec arguments.
    pub record_args: bool,
    /// Sensor.
    pub source: SensorSource,
    /// Prometheus endpoint address.
    pub metrics_addr: Option<SocketAddr>,
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

struct Flush {
    rows: Vec<Event>,
    meta: SegmentMeta,
}

/// The writer thread: writes flushed windows, applies retention, updates counters.
fn writer_thread(
    mut dir: DataDir,
    rx: mpsc::Receiver<Flush>,
    counters: Arc<Counters>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        counters.bytes_on_disk.store(dir.bytes(), Ordering::Relaxed);
        for flush in rx {
            let n = flush.rows.len() as u64;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            match dir.write(flush.rows, &flush.meta, now) {
                Ok(out) => {
                    Counters::add(&counters.rows_written, n);
                    Counters::add(&counters.segments_written, out.written.len() as u64);
                    Counters::add(
                        &counters.bytes_written,
                        out.written.iter().map(|f| f.bytes).sum(),
                    );
                    Counters::add(&counters.segments_removed, out.removed.len() as u64);
                    counters.bytes_on_disk.store(dir.bytes(), Ordering::Relaxed);
                }
                Err(e) => {
                    Counters::add(&counters.write_errors, 1);
                    log::error!("writing a segment failed: {e}");
                }
            }
        }
    })
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
    let dir = DataDir::open(&cfg.data_dir, &producer, cfg.retention)?;
    let (tx, rx) = mpsc::sync_channel::<Flush>(4);
    let writer = writer_thread(dir, rx, counters.clone());
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
                if tx.send(Flush { rows, meta }).is_err() {
                    Counters::add(&counters2.write_errors, 1);
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
    let mut flush = |pipeline: &mut Pipeline, dropped_total: u64| {
        if pipeline.raw_events() == 0 && dropped_total == dropped_reported {
            return;
        }
        let raw = pipeline.raw_events();
        let rows = pipeline.drain(mono_to_real_offset(), pods.as_ref());
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
        dropped_reported = dropped_total;
        if !rows.is_empty() && tx.send(Flush { rows, meta }).is_err() {
            Counters::add(&counters.write_errors, 1);
        }
    };
    let tick = (cfg.rotate_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    tokio::pin!(shutdown);

    match cfg.source.clone() {
        SensorSource::Ebpf => {
            let (mut probes, ring) = Probes::load()?;
            summary.attached = probes.attached.clone();
            counters
                .probes_attached
                .store(probes.attached.len() as u64, Ordering::Relaxed);
            summary.failed = probes.failed.clone();
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
                            let full = pipeline.rows() >= cfg.rotate_rows;
                            drop(item);
                            if full {
                                settle(&mut probes, rb, &mut pipeline, &counters);
                                flush(&mut pipeline, probes.dropped());
                            }
                        }
                        guard.clear_ready();
                    }
                    _ = ticker.tick() => {
                        let dropped = probes.dropped();
                        counters.events_dropped.store(dropped, Ordering::Relaxed);
                        if due(&pipeline, cfg.rotate_interval) {
                            settle(&mut probes, ring.get_mut(), &mut pipeline, &counters);
                            flush(&mut pipeline, probes.dropped());
                        }
                    }
                    _ = &mut shutdown => {
                        // Drain what is already in the ring buffer and the kernel's counts,
                        // then flush.
                        settle(&mut probes, ring.get_mut(), &mut pipeline, &counters);
                        let dropped = probes.dropped();
                        counters.events_dropped.store(dropped, Ordering::Relaxed);
                        flush(&mut pipeline, dropped);
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
                            if pipeline.rows() >= cfg.rotate_rows {
                                flush(&mut pipeline, 0);
                            }
                        }
                        if due(&pipeline, cfg.rotate_interval) {
                            flush(&mut pipeline, 0);
                        }
                    }
                    _ = &mut shutdown => {
                        flush(&mut pipeline, 0);
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
    if writer.join().is_err() {
        Counters::add(&counters.write_errors, 1);
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
    Counters::add(&counters.events_seen, s.records + s.repeats);
    Counters::add(&counters.decode_errors, s.decode_errors);
}

fn due(p: &Pipeline, interval: Duration) -> bool {
    p.window_start()
        .is_some_and(|start| now_mono().saturating_sub(start) >= interval.as_nanos() as u64)
}
