//! The client side of `karmor.collector.v1`: list, fetch and follow segments, and pull them
//! into a bundle.
//!
//! # Integrity and resumption
//!
//! A segment is received into `<bundle>/<path>.part` (bundle readers ignore it: it does not end
//! in `.parquet`). Every chunk is checked before it is written: its offset must be where the
//! file ends, its CRC-32 must match, and the file size and sha256 it announces must be the ones
//! listed. So a `.part` file only ever holds a verified prefix of the segment, and a fetch cut
//! in the middle resumes from its length. Segment names are derived from their content
//! (`seg-<sha256[..16]>`), so a `.part` left by another attempt can only belong to the same
//! bytes. At the end the size, the sha256 of the whole file and the Parquet footer's row count
//! are checked, the file is fsynced and renamed to its final name, and only then listed in the
//! bundle's `manifest.json`.
//!
//! The collector's pods table (who held which address when, design §3) travels the same way:
//! ListSegments names the files of the node's latest snapshot, FetchSegment serves them, and
//! [`pull_into_bundle`] lands each beside the segments, in place of the node's snapshot it
//! pulled before ([`crate::pulled_bundle`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::transport::{Endpoint, Uri};

pub use tonic::transport::Channel;

use crate::error::ClientError;
use crate::proto::collector as pb;
use crate::proto::collector::collector_client::CollectorClient;
use crate::pulled_bundle::land_pods;
use crate::pulled_bundle::{delete_replaced, land, sweep_replaced, Holdings};
use karmor_contract::pods::{check_pods_version, read_pods_footer, PODS_DIR};
use karmor_contract::segment::{check_schema_version, read_footer, sha256_file};

/// Largest message the clients accept (a chunk is at most 1 MiB; lists of many segments are
/// larger).
const MAX_MESSAGE: usize = 64 << 20;

/// Which segments to list: those overlapping `[since_ns, until_ns]` (ns since epoch, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Lower bound on a segment's last row.
    pub since_ns: Option<i64>,
    /// Upper bound on a segment's first row.
    pub until_ns: Option<i64>,
    /// Empty: all. Otherwise segments holding at least one row of one of these namespaces.
    /// Whole segments are transferred, so they may hold rows of other namespaces too.
    pub namespaces: Vec<String>,
}

/// A segment as a collector lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Bundle-relative path: `node=<n>/date=<d>/hour=<h>/seg-<sha16>.parquet`.
    pub path: String,
    /// Node the rows come from.
    pub node: String,
    /// Hex sha256 of the whole file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
    /// Earliest `ts_first` (ns).
    pub first_ns: i64,
    /// Latest `ts_last` (ns).
    pub last_ns: i64,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events lost while the segment's window was open.
    pub events_dropped: u64,
    /// Distinct namespaces of the rows, sorted (host rows have none).
    pub namespaces: Vec<String>,
    /// For a compacted file: hex sha256 of every file whose rows it holds, transitively
    /// (empty for a segment written from events, and from collectors that predate the field).
    pub replaces: Vec<String>,
}

impl From<pb::SegmentInfo> for SegmentInfo {
    fn from(s: pb::SegmentInfo) -> Self {
        SegmentInfo {
            path: s.path,
            node: s.node,
            sha256: s.sha256,
            bytes: s.bytes,
            rows: s.rows,
            first_ns: s.first_ns,
            last_ns: s.last_ns,
            events_seen: s.events_seen,
            events_dropped: s.events_dropped,
            namespaces: s.namespaces,
            replaces: s.replaces,
        }
    }
}

impl From<SegmentInfo> for pb::SegmentInfo {
    fn from(s: SegmentInfo) -> Self {
        pb::SegmentInfo {
            path: s.path,
            node: s.node,
            sha256: s.sha256,
            bytes: s.bytes,
            rows: s.rows,
            first_ns: s.first_ns,
            last_ns: s.last_ns,
            events_seen: s.events_seen,
            events_dropped: s.events_dropped,
            namespaces: s.namespaces,
            replaces: s.replaces,
        }
    }
}

/// A file of a collector's pods table, as it lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodsFileInfo {
    /// Bundle-relative path: `pods/node=<n>/pods-<sha16>.parquet`.
    pub path: String,
    /// Node the rows come from.
    pub node: String,
    /// Hex sha256 of the whole file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows.
    pub rows: u64,
}

impl PodsFileInfo {
    /// The file as a fetch sees it (no time range, no counters).
    fn as_segment(&self) -> SegmentInfo {
        SegmentInfo {
            path: self.path.clone(),
            node: self.node.clone(),
            sha256: self.sha256.clone(),
            bytes: self.bytes,
            rows: self.rows,
            ..SegmentInfo::default()
        }
    }
}

/// What a collector has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentList {
    /// The collector's node.
    pub node: String,
    /// The collector's cluster name, when it was given one.
    pub cluster: Option<String>,
    /// Producer recorded in its data directory.
    pub producer: String,
    /// Schema version of its segments.
    pub schema_version: String,
    /// The segments that match the filter, sorted by path.
    pub segments: Vec<SegmentInfo>,
    /// The files of the node's latest pods table snapshot, whatever the filter (empty from
    /// collectors that predate the pods table in the protocol), sorted by path.
    pub pods: Vec<PodsFileInfo>,
    /// Version of the pods table files, when there are any.
    pub pods_schema_version: Option<String>,
}

/// A collector's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Node name.
    pub node: String,
    /// Collector version.
    pub version: String,
    /// Schema version written.
    pub schema_version: String,
    /// Sources running: `ebpf`, `kubearmor`, `synthetic`.
    pub sources: Vec<String>,
    /// Seconds since the service started.
    pub uptime_seconds: u64,
    /// Segments in the data directory.
    pub segments: u64,
    /// Bytes of segments in the data directory.
    pub bytes_on_disk: u64,
    /// Raw events seen.
    pub events_seen: u64,
    /// Events dropped.
    pub events_dropped: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Segments written.
    pub segments_written: u64,
    /// Failed segment writes.
    pub write_errors: u64,
    /// Files uploaded to the archive tier.
    pub archive_uploads: u64,
    /// Files the byte limit forced out before the archive held them (lost).
    pub archive_lost_files: u64,
    /// Their bytes.
    pub archive_lost_bytes: u64,
    /// Whether the KubeArmor feed is connected.
    pub kubearmor_connected: bool,
    /// KubeArmor messages received.
    pub kubearmor_events: u64,
}

/// Connects to a collector (or any gRPC server) at `http://HOST:PORT` or `HOST:PORT`.
pub async fn connect(addr: &str) -> Result<Channel, ClientError> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let err = |message: String| ClientError::Connect {
        addr: addr.to_string(),
        message,
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| err(e.to_string()))?;
    endpoint
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| err(error_chain(&e)))
}

/// A channel over any byte stream, e.g. a Kubernetes port-forward stream. `make_io` is called
/// for every (re)connection and must return a fresh stream. Nothing happens before the first
/// call on the channel.
pub fn channel_from_io<F, Fut, IO>(make_io: F) -> Channel
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<IO>> + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let make_io = Arc::new(make_io);
    Endpoint::from_static("http://karmor-collector.invalid").connect_with_connector_lazy(
        tower::service_fn(move |_: Uri| {
            let make_io = make_io.clone();
            async move {
                let io = make_io().await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(io))
            }
        }),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

fn client(channel: Channel) -> CollectorClient<Channel> {
    CollectorClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Asks a collector for its state and counters.
pub async fn health(channel: Channel) -> Result<Health, ClientError> {
    let h = client(channel)
        .health(pb::HealthRequest {})
        .await
        .map_err(|s| ClientError::rpc("Health", s))?
        .into_inner();
    Ok(Health {
        node: h.node,
        version: h.version,
        schema_version: h.schema_version,
        sources: h.sources,
        uptime_seconds: h.uptime_seconds,
        segments: h.segments,
        bytes_on_disk: h.bytes_on_disk,
        events_seen: h.events_seen,
        events_dropped: h.events_dropped,
        rows_written: h.rows_written,
        segments_written: h.segments_written,
        write_errors: h.write_errors,
        archive_uploads: h.archive_uploads,
        archive_lost_files: h.archive_lost_files,
        archive_lost_bytes: h.archive_lost_bytes,
        kubearmor_connected: h.kubearmor_connected,
        kubearmor_events: h.kubearmor_events,
    })
}

/// Lists a collector's segments. Every path is checked to be a safe bundle-relative path.
pub async fn list_segments(
    channel: Channel,
    filter: &ListFilter,
) -> Result<SegmentList, ClientError> {
    let r = client(channel)
        .list_segments(pb::ListSegmentsRequest {
            since_ns: filter.since_ns.unwrap_or(0),
            until_ns: filter.until_ns.unwrap_or(0),
            namespaces: filter.namespaces.clone(),
        })
        .await
        .map_err(|s| ClientError::rpc("ListSegments", s))?
        .into_inner();
    let mut segments = Vec::with_capacity(r.segments.len());
    for s in r.segments {
        check_segment_path(&s.path)?;
        for sha in std::iter::once(&s.sha256).chain(&s.replaces) {
            if !is_sha256(sha) {
                return Err(ClientError::Protocol {
                    message: format!("segment {}: sha256 {sha:?} is not 64 hex digits", s.path),
                });
            }
        }
        segments.push(SegmentInfo::from(s));
    }
    segments.sort_by(|a, b| a.path.cmp(&b.path));
    let mut pods = Vec::with_capacity(r.pods.len());
    for p in r.pods {
        check_pods_path(&p.path)?;
        if !is_sha256(&p.sha256) {
            return Err(ClientError::Protocol {
                message: format!(
                    "pods file {}: sha256 {:?} is not 64 hex digits",
                    p.path, p.sha256
                ),
            });
        }
        pods.push(PodsFileInfo {
            path: p.path,
            node: p.node,
            sha256: p.sha256,
            bytes: p.bytes,
            rows: p.rows,
        });
    }
    pods.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SegmentList {
        node: r.node,
        cluster: (!r.cluster.is_empty()).then_some(r.cluster),
        producer: r.producer,
        schema_version: r.schema_version,
        segments,
        pods,
        pods_schema_version: (!r.pods_schema_version.is_empty()).then_some(r.pods_schema_version),
    })
}

/// Refuses a pods table path that is not a safe bundle-relative path under `pods/`.
pub fn check_pods_path(path: &str) -> Result<(), ClientError> {
    check_segment_path(path)?;
    if path.starts_with(&format!("{PODS_DIR}/")) {
        Ok(())
    } else {
        Err(ClientError::Protocol {
            message: format!("pods table path {path:?} is not under {PODS_DIR}/"),
        })
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuses a segment path that could escape the bundle: it must be relative, made of plain
/// components, and end in `.parquet`.
pub fn check_segment_path(path: &str) -> Result<(), ClientError> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && path.ends_with(".parquet");
    if plain {
        Ok(())
    } else {
        Err(ClientError::Protocol {
            message: format!("unsafe or invalid segment path {path:?}"),
        })
    }
}

/// What [`fetch_segment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Final path of the segment.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Bytes that were already in a `.part` file and were not transferred again.
    pub resumed_from: u64,
}

/// The `.part` file a segment is received into.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut name = final_path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    final_path.with_file_name(name)
}

/// Fetches one segment into `bundle_dir/<seg.path>` (see the module documentation): resumes
/// an existing `.part`, checks every chunk, then size, sha256 and footer, and renames. The
/// manifest is not touched. `progress` gets the bytes held so far after every chunk.
///
/// After a cut connection the verified prefix stays in the `.part` file for the next call;
/// after a corrupted chunk too (the bad chunk is not written). A whole file whose sha256 does
/// not match is removed.
pub async fn fetch_segment(
    channel: Channel,
    seg: &SegmentInfo,
    bundle_dir: &Path,
    chunk_bytes: u32,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Fetched, ClientError> {
    fetch_file(
        channel,
        seg,
        FileKind::Segment,
        bundle_dir,
        chunk_bytes,
        progress,
    )
    .await
}

/// Fetches one pods table file into `bundle_dir/<file.path>` as [`fetch_segment`] fetches a
/// segment (its footer is checked as a pods table's). The manifest is not touched.
pub async fn fetch_pods_file(
    channel: Channel,
    file: &PodsFileInfo,
    bundle_dir: &Path,
    chunk_bytes: u32,
) -> Result<Fetched, ClientError> {
    check_pods_path(&file.path)?;
    fetch_file(
        channel,
        &file.as_segment(),
        FileKind::Pods,
        bundle_dir,
        chunk_bytes,
        &mut |_| {},
    )
    .await
}

/// What a fetched file holds, for the footer check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// An events segment (schema v1).
    Segment,
    /// A pods table file.
    Pods,
}

async fn fetch_file(
    channel: Channel,
    seg: &SegmentInfo,
    kind: FileKind,
    bundle_dir: &Path,
    chunk_bytes: u32,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Fetched, ClientError> {
    check_segment_path(&seg.path)?;
    let final_path = bundle_dir.join(&seg.path);
    let part = part_path(&final_path);
    if let Some(parent) = final_path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ClientError::io(parent, e))?;
    }
    let mut offset = match tokio::fs::metadata(&part).await {
        Ok(m) if m.len() <= seg.bytes => m.len(),
        Ok(_) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(ClientError::io(&part, e)),
    };
    let resumed_from = offset;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .await
        .map_err(|e| ClientError::io(&part, e))?;
    file.set_len(offset)
        .await
        .map_err(|e| ClientError::io(&part, e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| ClientError::io(&part, e))?;
    progress(offset);
    let call = || format!("FetchSegment {}", seg.path);
    if offset < seg.bytes {
        let mut stream = client(channel)
            .fetch_segment(pb::FetchSegmentRequest {
                path: seg.path.clone(),
                offset,
                chunk_bytes,
                sha256: seg.sha256.clone(),
            })
            .await
            .map_err(|s| ClientError::rpc(call(), s))?
            .into_inner();
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(status) => {
                    file.sync_all()
                        .await
                        .map_err(|e| ClientError::io(&part, e))?;
                    return Err(ClientError::rpc(call(), status));
                }
            };
            let bad = check_chunk(seg, offset, &chunk);
            if let Some(message) = bad {
                file.sync_all()
                    .await
                    .map_err(|e| ClientError::io(&part, e))?;
                return Err(ClientError::Integrity {
                    path: seg.path.clone(),
                    message,
                });
            }
            file.write_all(&chunk.data)
                .await
                .map_err(|e| ClientError::io(&part, e))?;
            offset += chunk.data.len() as u64;
            progress(offset);
        }
    }
    file.sync_all()
        .await
        .map_err(|e| ClientError::io(&part, e))?;
    drop(file);
    if offset != seg.bytes {
        return Err(ClientError::Integrity {
            path: seg.path.clone(),
            message: format!(
                "the stream ended after {offset} of {} bytes (kept for resuming)",
                seg.bytes
            ),
        });
    }
    finish_part(seg, kind, &part, &final_path).await?;
    Ok(Fetched {
        path: final_path,
        bytes: seg.bytes,
        resumed_from,
    })
}

/// Why a chunk cannot be written at `offset`, if it cannot.
fn check_chunk(seg: &SegmentInfo, offset: u64, chunk: &pb::SegmentChunk) -> Option<String> {
    if chunk.offset != offset {
        return Some(format!(
            "chunk at offset {} where {offset} was expected",
            chunk.offset
        ));
    }
    let crc = crc32fast::hash(&chunk.data);
    if crc != chunk.crc32 {
        return Some(format!(
            "chunk at offset {offset} ({} bytes): crc32 {crc:08x} does not match {:08x}",
            chunk.data.len(),
            chunk.crc32
        ));
    }
    if chunk.sha256 != seg.sha256 || chunk.total_bytes != seg.bytes {
        return Some(format!(
            "the segment changed on the collector (now {} bytes, sha256 {})",
            chunk.total_bytes, chunk.sha256
        ));
    }
    if offset + chunk.data.len() as u64 > seg.bytes {
        return Some(format!(
            "chunk at offset {offset} runs past the end ({} bytes)",
            seg.bytes
        ));
    }
    None
}

/// Checks a complete `.part` (sha256, footer rows) and renames it to its final name.
async fn finish_part(
    seg: &SegmentInfo,
    kind: FileKind,
    part: &Path,
    final_path: &Path,
) -> Result<(), ClientError> {
    let (seg2, part2, final2) = (seg.clone(), part.to_path_buf(), final_path.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<(), ClientError> {
        let sha = sha256_file(&part2)?;
        if sha != seg2.sha256 {
            let _ = std::fs::remove_file(&part2);
            return Err(ClientError::Integrity {
                path: seg2.path.clone(),
                message: format!(
                    "sha256 of the received file is {sha}, the collector listed {} (removed)",
                    seg2.sha256
                ),
            });
        }
        let rows = match kind {
            FileKind::Segment => read_footer(&part2)?.rows,
            FileKind::Pods => read_pods_footer(&part2)?,
        };
        if rows != seg2.rows {
            let _ = std::fs::remove_file(&part2);
            return Err(ClientError::Integrity {
                path: seg2.path.clone(),
                message: format!(
                    "{rows} rows in the footer, the collector listed {}",
                    seg2.rows
                ),
            });
        }
        std::fs::rename(&part2, &final2).map_err(|e| ClientError::io(&final2, e))?;
        if let Some(dir) = final2.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| ClientError::Protocol {
        message: format!("verifying {}: {e}", seg.path),
    })?
}

/// How [`pull_into_bundle`] pulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// Which segments.
    pub filter: ListFilter,
    /// Recorded in the bundle manifest, e.g. `kubectl-karmor pull 0.1.0`.
    pub producer: String,
    /// Chunk size asked of the server (0: the server's default).
    pub chunk_bytes: u32,
    /// Tries per segment; each retry resumes from the verified prefix.
    pub attempts: u32,
    /// Pause before the first retry (doubled for each further one).
    pub retry_backoff: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            filter: ListFilter::default(),
            producer: format!("karmor pull {}", env!("CARGO_PKG_VERSION")),
            chunk_bytes: 0,
            attempts: 3,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// Progress of a pull, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// After listing: what will be fetched (segments already present excluded).
    Listed {
        /// Segments to fetch.
        segments: usize,
        /// Their bytes.
        bytes: u64,
        /// Segments whose rows the bundle already has: listed in it, or held by a compacted
        /// file it lists or is about to fetch.
        already_present: usize,
    },
    /// Bytes of one segment held so far (a resumed prefix included).
    Bytes {
        /// The segment.
        path: String,
        /// Bytes held.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// One segment is finished.
    Segment(SegmentOutcome),
}

/// What happened to one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// Bundle-relative path.
    pub path: String,
    /// Its sha256.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Its rows.
    pub rows: u64,
    /// The outcome.
    pub status: SegmentStatus,
    /// Bundle paths of the files this one replaced: unlisted in the manifest write that listed
    /// it, then deleted (empty for an ordinary segment).
    pub replaced: Vec<String>,
}

/// The outcome for one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentStatus {
    /// Written, verified and listed; `resumed_from` > 0 when a `.part` prefix was reused by the
    /// successful attempt.
    Fetched {
        /// Bytes reused from an earlier attempt.
        resumed_from: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// The bundle already lists this sha256: nothing transferred.
    AlreadyPresent,
    /// A compacted file the bundle lists holds this segment's rows (a collector still lists a
    /// segment it compacted): nothing transferred, nothing listed.
    Superseded {
        /// Bundle path of the compacted file.
        by: String,
    },
    /// The collector no longer has it: compacted or aged out between the listing and the
    /// fetch. Not a failure: the next pull lists what replaced it.
    Gone,
    /// Every attempt failed; the others segments are not affected.
    Failed {
        /// The last attempt's error.
        error: String,
    },
}

/// What [`pull_into_bundle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// The collector's node.
    pub node: String,
    /// The collector's cluster name.
    pub cluster: Option<String>,
    /// Segments listed.
    pub listed: usize,
    /// One outcome per listed segment, in path order.
    pub segments: Vec<SegmentOutcome>,
    /// Segments fetched.
    pub fetched: usize,
    /// Segments already present.
    pub already_present: usize,
    /// Segments the collector compacted or aged out between the listing and the fetch.
    pub gone: usize,
    /// Segments not fetched because a compacted file in the bundle holds their rows.
    pub superseded: usize,
    /// Files of the bundle unlisted and deleted because a fetched compacted file holds their
    /// rows.
    pub replaced: usize,
    /// Compacted files that replaced at least one file of the bundle.
    pub replaced_by: usize,
    /// Leftovers of replaced files deleted (unlisted files a crash left behind, `.part`
    /// files of segments that will never be fetched).
    pub swept: usize,
    /// Segments that failed.
    pub failed: usize,
    /// Bytes transferred by this call (resumed prefixes excluded).
    pub bytes_fetched: u64,
    /// Rows of the fetched segments.
    pub rows_fetched: u64,
    /// Pods table files the collector listed.
    pub pods_listed: usize,
    /// Pods table files fetched now (each merged with the node's files pulled before).
    pub pods_fetched: usize,
    /// Rows of the pods table files fetched now.
    pub pods_rows: u64,
    /// Pods table files the bundle already listed.
    pub pods_present: usize,
    /// Earlier pods table files of the node merged with a fetched snapshot into one history
    /// file (unlisted and deleted; the merged file's `replaces` names them).
    pub pods_replaced: usize,
    /// Pods table files that could not be fetched or landed, with why (the segments are not
    /// affected).
    pub pods_failed: Vec<String>,
}

/// Pulls a collector's segments into the bundle at `bundle_dir` (created if missing):
/// segments whose sha256 the manifest already lists are skipped, and so are those a listed
/// compacted file replaces; the others are fetched with [`fetch_segment`] (up to `attempts`
/// tries each, resuming), compacted files first, and each verified file is added to
/// `manifest.json` as soon as it lands, in the same write that unlists the bundle's files it
/// replaces (which are then deleted; see [`crate::pulled_bundle`]). A segment that fails is
/// reported in the [`PullReport`] and does not stop the others. Errors only when listing
/// fails, the collector writes another schema major version, or the manifest cannot be read
/// or written.
///
/// Pulling twice fetches nothing the second time, and a pull before and after the collector's
/// compaction holds every row once. Pulls of different collectors into the same bundle may run
/// concurrently in one process.
pub async fn pull_into_bundle(
    channel: Channel,
    bundle_dir: &Path,
    opts: &PullOptions,
    progress: &mut (dyn FnMut(&PullProgress) + Send),
) -> Result<PullReport, ClientError> {
    let list = list_segments(channel.clone(), &opts.filter).await?;
    check_schema_version(
        Path::new(&format!("collector {}", list.node)),
        &list.schema_version,
    )?;
    std::fs::create_dir_all(bundle_dir).map_err(|e| ClientError::io(bundle_dir, e))?;
    let mut holdings = Holdings::read(bundle_dir)?;
    let mut report = PullReport {
        node: list.node.clone(),
        cluster: list.cluster.clone(),
        listed: list.segments.len(),
        swept: sweep_replaced(bundle_dir, &list.node, &holdings)?.len(),
        ..PullReport::default()
    };
    // Compacted files first, those holding the most files first (a day file before its hour
    // files): the segments they hold are then skipped, not fetched and replaced.
    let mut order: Vec<&SegmentInfo> = list.segments.iter().collect();
    order.sort_by(|a, b| {
        (
            a.replaces.is_empty(),
            std::cmp::Reverse(a.replaces.len()),
            &a.path,
        )
            .cmp(&(
                b.replaces.is_empty(),
                std::cmp::Reverse(b.replaces.len()),
                &b.path,
            ))
    });
    let planned: BTreeSet<&str> = order
        .iter()
        .filter(|s| !holdings.listed.contains(&s.sha256))
        .flat_map(|s| s.replaces.iter().map(String::as_str))
        .collect();
    let (todo, present): (Vec<&SegmentInfo>, Vec<&SegmentInfo>) = order.iter().partition(|s| {
        !holdings.listed.contains(&s.sha256)
            && holdings.covering(&s.sha256).is_none()
            && !planned.contains(s.sha256.as_str())
    });
    progress(&PullProgress::Listed {
        segments: todo.len(),
        bytes: todo.iter().map(|s| s.bytes).sum(),
        already_present: present.len(),
    });
    let mut outcomes = Vec::with_capacity(order.len());
    for seg in order {
        let mut replaced = Vec::new();
        let status = if holdings.listed.contains(&seg.sha256) {
            report.already_present += 1;
            // The bundle may still list files this one replaces (pulled before this client
            // knew of `replaces`): swap them now.
            if seg.replaces.iter().any(|r| holdings.listed.contains(r)) {
                replaced = land_and_replace(bundle_dir, seg, &list, opts, &mut holdings)?;
            }
            SegmentStatus::AlreadyPresent
        } else if let Some(by) = holdings.covering(&seg.sha256) {
            report.superseded += 1;
            SegmentStatus::Superseded { by: by.to_string() }
        } else {
            match pull_one(channel.clone(), seg, bundle_dir, opts, progress).await {
                Ok((fetched, attempts)) => {
                    replaced = land_and_replace(bundle_dir, seg, &list, opts, &mut holdings)?;
                    report.fetched += 1;
                    report.bytes_fetched += fetched.bytes - fetched.resumed_from;
                    report.rows_fetched += seg.rows;
                    SegmentStatus::Fetched {
                        resumed_from: fetched.resumed_from,
                        attempts,
                    }
                }
                Err(ClientError::Rpc { status, .. }) if status.code() == tonic::Code::NotFound => {
                    report.gone += 1;
                    SegmentStatus::Gone
                }
                Err(e) => {
                    report.failed += 1;
                    SegmentStatus::Failed {
                        error: e.to_string(),
                    }
                }
            }
        };
        if !replaced.is_empty() {
            report.replaced += replaced.len();
            report.replaced_by += 1;
        }
        let outcome = SegmentOutcome {
            path: seg.path.clone(),
            sha256: seg.sha256.clone(),
            bytes: seg.bytes,
            rows: seg.rows,
            status,
            replaced,
        };
        progress(&PullProgress::Segment(outcome.clone()));
        outcomes.push(outcome);
    }
    outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    report.segments = outcomes;
    pull_pods(channel, bundle_dir, &list, opts, &holdings, &mut report).await?;
    Ok(report)
}

/// Pulls the collector's pods table snapshot: each listed file the bundle does not list is
/// fetched (with retries) and merged with the node's earlier files into one history file
/// (see [`crate::pulled_bundle::land_pods`]). A file that fails is reported in
/// `report.pods_failed`.
async fn pull_pods(
    channel: Channel,
    bundle_dir: &Path,
    list: &SegmentList,
    opts: &PullOptions,
    holdings: &Holdings,
    report: &mut PullReport,
) -> Result<(), ClientError> {
    report.pods_listed = list.pods.len();
    if list.pods.is_empty() {
        return Ok(());
    }
    if let Some(v) = &list.pods_schema_version {
        if let Err(e) = check_pods_version(Path::new(&format!("collector {}", list.node)), v) {
            report.pods_failed.push(e.to_string());
            return Ok(());
        }
    }
    let current: BTreeSet<String> = list.pods.iter().map(|p| p.sha256.clone()).collect();
    for file in &list.pods {
        if holdings.pods.contains(&file.sha256) {
            report.pods_present += 1;
            continue;
        }
        let attempts = opts.attempts.max(1);
        let mut backoff = opts.retry_backoff;
        let mut attempt = 0;
        let fetched = loop {
            attempt += 1;
            match fetch_pods_file(channel.clone(), file, bundle_dir, opts.chunk_bytes).await {
                Ok(f) => break Ok(f),
                Err(e) if attempt < attempts && e.is_retryable() => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => break Err(e),
            }
        };
        match fetched {
            Ok(_) => match land_pods(bundle_dir, file, &current, list, &opts.producer) {
                Ok(merged) => {
                    report.pods_fetched += 1;
                    report.pods_rows += file.rows;
                    report.pods_replaced += merged;
                }
                // An earlier file that cannot be read, or a manifest that cannot be written:
                // the bundle is as it was, the segments stay landed.
                Err(e) => report.pods_failed.push(format!("{}: {e}", file.path)),
            },
            // Replaced by a newer snapshot between the listing and the fetch: the next pull
            // takes that one.
            Err(ClientError::Rpc { status, .. }) if status.code() == tonic::Code::NotFound => {}
            Err(e) => report.pods_failed.push(format!("{}: {e}", file.path)),
        }
    }
    Ok(())
}

/// Lists a landed file and unlists what it replaces (one manifest write), then deletes the
/// replaced files. Returns their bundle paths.
fn land_and_replace(
    bundle_dir: &Path,
    seg: &SegmentInfo,
    list: &SegmentList,
    opts: &PullOptions,
    holdings: &mut Holdings,
) -> Result<Vec<String>, ClientError> {
    let (entry, removed) = land(bundle_dir, seg, list, &opts.producer)?;
    holdings.landed(&entry, &removed);
    // A file that cannot be deleted is unlisted: no reader counts it, the next pull sweeps it.
    let _ = delete_replaced(bundle_dir, &removed);
    Ok(removed.into_iter().map(|f| f.path).collect())
}

/// Fetches one segment with retries. A complete file already at the final path with the
/// listed sha256 (a crash between the rename and the manifest update) is taken as is.
async fn pull_one(
    channel: Channel,
    seg: &SegmentInfo,
    bundle_dir: &Path,
    opts: &PullOptions,
    progress: &mut (dyn FnMut(&PullProgress) + Send),
) -> Result<(Fetched, u32), ClientError> {
    check_segment_path(&seg.path)?;
    let final_path = bundle_dir.join(&seg.path);
    if final_path.exists() && sha256_file(&final_path).is_ok_and(|s| s == seg.sha256) {
        return Ok((
            Fetched {
                path: final_path,
                bytes: seg.bytes,
                resumed_from: seg.bytes,
            },
            0,
        ));
    }
    let attempts = opts.attempts.max(1);
    let mut backoff = opts.retry_backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut on_bytes = |done: u64| {
            progress(&PullProgress::Bytes {
                path: seg.path.clone(),
                done,
                total: seg.bytes,
            })
        };
        match fetch_segment(
            channel.clone(),
            seg,
            bundle_dir,
            opts.chunk_bytes,
            &mut on_bytes,
        )
        .await
        {
            Ok(f) => return Ok((f, attempt)),
            Err(e) if attempt < attempts && e.is_retryable() => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Position in a collector's stream of segment announcements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FollowCursor {
    /// The collector run that assigned `seq` (a new run numbers segments anew).
    pub epoch: u64,
    /// Last sequence number seen (0: none).
    pub seq: u64,
}

/// A segment the collector has written, announced by [`follow_segments`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Cursor to resume after this segment.
    pub cursor: FollowCursor,
    /// The segment; fetch it with [`fetch_segment`].
    pub segment: SegmentInfo,
}

/// Follows a collector: announcements of the segments written after `cursor`. With a cursor
/// of another collector run (or the default), every segment currently held is announced
/// first, so a client that keeps segments by sha256 (bundles, the analyzer's store) never
/// misses or duplicates rows across collector restarts.
pub async fn follow_segments(
    channel: Channel,
    cursor: FollowCursor,
    namespaces: Vec<String>,
) -> Result<impl Stream<Item = Result<Announcement, ClientError>> + Send + 'static, ClientError> {
    let stream = client(channel)
        .follow(pb::FollowRequest {
            after: Some(pb::FollowCursor {
                epoch: cursor.epoch,
                seq: cursor.seq,
            }),
            namespaces,
        })
        .await
        .map_err(|s| ClientError::rpc("Follow", s))?
        .into_inner();
    Ok(stream.map(|item| {
        let update = item.map_err(|s| ClientError::rpc("Follow", s))?;
        let (Some(c), Some(s)) = (update.cursor, update.segment) else {
            return Err(ClientError::Protocol {
                message: "Follow update without cursor or segment".into(),
            });
        };
        check_segment_path(&s.path)?;
        Ok(Announcement {
            cursor: FollowCursor {
                epoch: c.epoch,
                seq: c.seq,
            },
            segment: s.into(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_that_could_escape_the_bundle_are_refused() {
        for ok in [
            "node=a/date=2025-11-20/hour=08/seg-0123456789abcdef.parquet",
            "x.parquet",
        ] {
            assert!(check_segment_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x.parquet",
            "node=a/../../x.parquet",
            "/etc/x.parquet",
            "node=a/./x.parquet",
            "node=a\\..\\x.parquet",
            "manifest.json",
            "node=a/seg.parquet.tmp",
        ] {
            assert!(check_segment_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn part_files_sit_beside_their_segment_and_are_not_parquet() {
        let p = part_path(Path::new("b/node=a/seg-1.parquet"));
        assert_eq!(p, Path::new("b/node=a/seg-1.parquet.part"));
        assert!(!p.to_string_lossy().ends_with(".parquet"));
    }
}
