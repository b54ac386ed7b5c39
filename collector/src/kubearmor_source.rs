//! KubeArmor as a source (design §5): the node's KubeArmor daemon streams its telemetry
//! (`WatchLogs`, filter `system`) and alerts (`WatchAlerts`, filter `policy`); each message is
//! mapped with the same rules as `kubectl karmor import` ([`karmor_proto::kubearmor`]) and fed,
//! as another sensor, into a de-duplication window that the writer flushes into segments.
//!
//! # Reconnects without duplicate rows
//!
//! When a stream breaks, the source reconnects with exponential backoff (`backoff_min`,
//! doubled up to `backoff_max`, back to the minimum after a connection that delivered
//! messages). KubeArmor's daemon only streams events that happen after a watch starts, but a
//! relay, or a daemon serving from a buffer, may send again what was already received. Each
//! message therefore has a key (a hash of its stream and its whole protobuf encoding) and the source
//! remembers the last `recent_keys` keys in a bounded FIFO set: a message whose key is in the
//! set is counted in [`KubeArmorStats::duplicates`] and dropped. Genuinely repeated behaviour
//! still counts, because two real events differ at least in their microsecond time, pid or
//! severity (two alerts of one event by two rules differ in their rule's fields); only
//! byte-identical redeliveries are dropped. A redelivery older than the last `recent_keys` messages would be
//! counted twice (with the default of 65 536 keys, about a minute of a busy node).
//!
//! Messages that do not map onto a row (KubeArmor's `AlertThreshold` notices, unknown
//! operations) are counted as dropped events of the window, so the segment says so.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;

use crate::metrics::Counters;
use karmor_contract::dedup::DedupWindow;
use karmor_contract::schema::{schema_version, Event};
use karmor_contract::segment::SegmentMeta;
use karmor_proto::client::connect;
pub use karmor_proto::kubearmor::RecentKeys;
use karmor_proto::kubearmor::{watch_kubearmor, KubeArmorFeeds};

/// Settings of the KubeArmor source.
#[derive(Debug, Clone)]
pub struct KubeArmorSourceConfig {
    /// The daemon's gRPC address, e.g. `localhost:32767`.
    pub addr: String,
    /// Streams to watch.
    pub feeds: KubeArmorFeeds,
    /// First pause before reconnecting.
    pub backoff_min: Duration,
    /// Longest pause before reconnecting.
    pub backoff_max: Duration,
    /// Keys of recent messages remembered to drop redeliveries.
    pub recent_keys: usize,
}

impl KubeArmorSourceConfig {
    /// Both streams, backoff 200 ms to 30 s, 65 536 recent keys.
    pub fn new(addr: &str) -> Self {
        KubeArmorSourceConfig {
            addr: addr.to_string(),
            feeds: KubeArmorFeeds::default(),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            recent_keys: 65_536,
        }
    }
}

/// The source's counters (Health reports `connected` and `received`).
#[derive(Debug, Default)]
pub struct KubeArmorStats {
    /// Whether the streams are open.
    pub connected: AtomicBool,
    /// Messages received and passed on (duplicates excluded).
    pub received: AtomicU64,
    /// Messages that did not map onto a row.
    pub unmapped: AtomicU64,
    /// Redelivered messages dropped.
    pub duplicates: AtomicU64,
    /// Successful connections.
    pub connects: AtomicU64,
    /// Connections that failed or broke.
    pub failures: AtomicU64,
}

/// What a source hands to its window.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// A row (one raw event).
    Row(Box<Event>),
    /// Events lost (received but not mappable).
    Lost(u64),
}

/// Runs the source until `stop` becomes true (or the receiving window goes away): connects,
/// watches, passes rows to `sink`, reconnects with backoff.
pub async fn run_source(
    cfg: KubeArmorSourceConfig,
    stats: Arc<KubeArmorStats>,
    sink: mpsc::Sender<FeedItem>,
    mut stop: watch::Receiver<bool>,
) {
    let mut recent = RecentKeys::new(cfg.recent_keys);
    let mut backoff = cfg.backoff_min;
    while !*stop.borrow() {
        let delivered = tokio::select! {
            r = session(&cfg, &stats, &sink, &mut recent) => r,
            _ = stop.changed() => break,
        };
        stats.connected.store(false, Ordering::Relaxed);
        Counters::add(&stats.failures, 1);
        match delivered {
            Err(SinkClosed) => return,
            Ok(n) if n > 0 => backoff = cfg.backoff_min,
            Ok(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
    stats.connected.store(false, Ordering::Relaxed);
}

struct SinkClosed;

/// One connection: returns how many messages it delivered before it broke.
async fn session(
    cfg: &KubeArmorSourceConfig,
    stats: &KubeArmorStats,
    sink: &mpsc::Sender<FeedItem>,
    recent: &mut RecentKeys,
) -> Result<u64, SinkClosed> {
    let stream = match connect(&cfg.addr).await {
        Ok(channel) => watch_kubearmor(channel, cfg.feeds).await,
        Err(e) => Err(e),
    };
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            log::warn!("KubeArmor at {}: {e}", cfg.addr);
            return Ok(0);
        }
    };
    stats.connected.store(true, Ordering::Relaxed);
    Counters::add(&stats.connects, 1);
    log::info!("KubeArmor at {}: watching", cfg.addr);
    let mut delivered = 0;
    while let Some(item) = stream.next().await {
        let msg = match item {
            Ok(msg) => msg,
            Err(e) => {
                log::warn!("KubeArmor at {}: {e}; reconnecting", cfg.addr);
                return Ok(delivered);
            }
        };
        if !recent.insert(msg.key) {
            Counters::add(&stats.duplicates, 1);
            continue;
        }
        let item = match msg.event {
            Ok(event) => FeedItem::Row(Box::new(event)),
            Err(e) => {
                log::debug!("KubeArmor message not mapped: {e}");
                Counters::add(&stats.unmapped, 1);
                FeedItem::Lost(1)
            }
        };
        sink.send(item).await.map_err(|_| SinkClosed)?;
        Counters::add(&stats.received, 1);
        delivered += 1;
    }
    Ok(delivered)
}

/// How a feed's window is flushed.
#[derive(Debug, Clone)]
pub struct FeedWindowConfig {
    /// Node stamped on rows that carry none (`unknown`).
    pub node: String,
    /// Cluster stamped on rows that carry none.
    pub cluster: Option<String>,
    /// Producer recorded in segments.
    pub producer: String,
    /// Flush at least this often.
    pub rotate_interval: Duration,
    /// … or when the window holds this many distinct rows.
    pub rotate_rows: usize,
}

/// The de-duplication window of a feed: collects rows from `rx`, and hands them to `flush`
/// (awaited) every `rotate_interval` (or `rotate_rows`), when `stop` becomes true (after taking
/// what is already queued), and when every sender is gone.
pub async fn run_feed_window<F: Future<Output = ()> + Send>(
    mut rx: mpsc::Receiver<FeedItem>,
    cfg: FeedWindowConfig,
    counters: Arc<Counters>,
    mut flush: impl FnMut(Vec<Event>, SegmentMeta) -> F + Send,
    mut stop: watch::Receiver<bool>,
) {
    let mut window = DedupWindow::new();
    let mut lost = 0u64;
    let mut opened: Option<Instant> = None;
    let tick = (cfg.rotate_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let take = |item: FeedItem, window: &mut DedupWindow, lost: &mut u64| {
        Counters::add(&counters.events_seen, 1);
        match item {
            FeedItem::Row(mut e) => {
                if e.node.is_empty() || e.node == "unknown" {
                    e.node = cfg.node.clone();
                }
                if e.cluster.is_none() {
                    e.cluster = cfg.cluster.clone();
                }
                window.push(*e);
            }
            FeedItem::Lost(n) => *lost += n,
        }
    };
    // The window's rows and counters, when there is anything to write.
    let close = |window: &mut DedupWindow, lost: &mut u64, opened: &mut Option<Instant>| {
        *opened = None;
        if window.is_empty() && *lost == 0 {
            return None;
        }
        let meta = SegmentMeta {
            schema_version: schema_version(),
            producer: cfg.producer.clone(),
            collector_version: Some(env!("CARGO_PKG_VERSION").into()),
            kernel: None,
            node: cfg.node.clone(),
            events_seen: window.raw_events(),
            events_dropped: std::mem::take(lost),
            windows: 1,
        };
        Some((window.drain(), meta))
    };
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(item) => {
                    take(item, &mut window, &mut lost);
                    opened.get_or_insert_with(Instant::now);
                    if window.len() >= cfg.rotate_rows.max(1) {
                        if let Some((rows, meta)) = close(&mut window, &mut lost, &mut opened) {
                            flush(rows, meta).await;
                        }
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if opened.is_some_and(|t| t.elapsed() >= cfg.rotate_interval) {
                    if let Some((rows, meta)) = close(&mut window, &mut lost, &mut opened) {
                        flush(rows, meta).await;
                    }
                }
            }
            _ = stop.changed() => {
                while let Ok(item) = rx.try_recv() {
                    take(item, &mut window, &mut lost);
                }
                break;
            }
        }
    }
    if let Some((rows, meta)) = close(&mut window, &mut lost, &mut opened) {
        flush(rows, meta).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keys_forget_the_oldest_beyond_capacity() {
        let mut r = RecentKeys::new(3);
        assert!(r.insert(1) && r.insert(2) && r.insert(3));
        assert!(!r.insert(2), "2 is recent");
        assert!(r.insert(4), "4 is new; 1 is forgotten");
        assert_eq!(r.len(), 3);
        assert!(r.insert(1), "1 was forgotten, so it is new again");
        assert!(!r.insert(4));
    }
}
