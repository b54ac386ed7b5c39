//! The collector service (`karmor.collector.v1`, design §5) over the data directory.
//!
//! It reads what the writer leaves on disk — `manifest.json` and the segments it lists — so it
//! needs no lock with the writer: manifests and segments are replaced atomically, a segment
//! removed by retention while it is being sent is still read through the open file.
//!
//! - **ListSegments**: the manifest's segments overlapping the time range, each with the
//!   sha256s a compacted file `replaces` (from the manifest), so that a client swaps the
//!   minute segments it pulled for the hour or day file that now holds their rows. The manifest does
//!   not record namespaces, so the namespaces of a segment are read once from its `namespace`
//!   column (a projection, no other column is decoded) and cached by sha256; a segment matches
//!   a namespace filter when at least one of its rows is in one of the namespaces.
//!   The reply also lists the manifest's pods table files (this node's latest snapshot, design
//!   §3), whatever the filter: a pull takes them beside the segments.
//! - **FetchSegment**: chunks of the file from an offset, each with its CRC-32 and the file's
//!   size and sha256. Only paths listed in the manifest are served: segments and pods table
//!   files.
//! - **Follow**: segment announcements. Each segment gets a sequence number the first time the
//!   service sees it in the manifest (those present at start in (last row, path) order, then
//!   new ones as the writer lists them; the manifest is polled, cheaply, by modification time
//!   and size). A cursor is (epoch, seq) where the epoch identifies this run of the service;
//!   a cursor of another run starts from the beginning, so across restarts a client sees
//!   segments again, never misses one, and drops repeats by sha256. Rows are fetched with
//!   FetchSegment: they reach a follower one rotation interval after they happen.
//! - **Health**: the run's counters, the data directory's size, the KubeArmor feed's state,
//!   and the hooks each eBPF sensor stands on, with why.
//!
//! Serve it on 127.0.0.1 (the default): access is then what Kubernetes RBAC allows on
//! `pods/portforward` of the collector pods.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::{Array, StringArray};
use futures_core::Stream;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

use crate::kubearmor_source::KubeArmorStats;
use crate::metrics::Counters;
use karmor_contract::bundle::{parse_ts, read_manifest, Manifest, ManifestFile, MANIFEST};
use karmor_contract::error::ContractError;
use karmor_contract::pods::pods_schema_version;
use karmor_contract::schema::schema_version;
use karmor_proto::proto::collector as pb;
use karmor_proto::proto::collector::collector_server::{Collector, CollectorServer};

/// Default chunk size.
pub const DEFAULT_CHUNK: u32 = 256 * 1024;
const MIN_CHUNK: u32 = 4 * 1024;
const MAX_CHUNK: u32 = 1024 * 1024;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The data directory (a live bundle).
    pub data_dir: PathBuf,
    /// Node name reported.
    pub node: String,
    /// Cluster name reported.
    pub cluster: Option<String>,
    /// Sources running, for Health (`ebpf`, `kubearmor`, `synthetic`).
    pub sources: Vec<String>,
    /// How often Follow looks for new segments.
    pub poll_interval: Duration,
}

impl ServiceConfig {
    /// Settings for a data directory, with a 500 ms follow poll.
    pub fn new(data_dir: &Path, node: &str) -> Self {
        ServiceConfig {
            data_dir: data_dir.to_path_buf(),
            node: node.to_string(),
            cluster: None,
            sources: Vec::new(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("collector service: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Segments known to the service, with their follow sequence numbers.
#[derive(Default)]
struct Index {
    /// (mtime, len) of the manifest last read.
    stamp: Option<(SystemTime, u64)>,
    manifest: Option<Manifest>,
    next_seq: u64,
    /// sha256 → seq.
    seqs: HashMap<String, u64>,
    /// sha256 → namespaces of the rows (segments are immutable).
    namespaces: HashMap<String, Vec<String>>,
}

struct Shared {
    cfg: ServiceConfig,
    counters: Arc<Counters>,
    kubearmor: Option<Arc<KubeArmorStats>>,
    started: Instant,
    epoch: u64,
    index: Mutex<Index>,
}

/// The tonic service. Cheap to clone.
#[derive(Clone)]
pub struct CollectorService {
    shared: Arc<Shared>,
}

impl CollectorService {
    /// A service over `cfg.data_dir`, reporting `counters` (and the KubeArmor feed's state,
    /// when there is one) in Health.
    pub fn new(
        cfg: ServiceConfig,
        counters: Arc<Counters>,
        kubearmor: Option<Arc<KubeArmorStats>>,
    ) -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            .max(1);
        CollectorService {
            shared: Arc::new(Shared {
                cfg,
                counters,
                kubearmor,
                started: Instant::now(),
                epoch,
                index: Mutex::new(Index {
                    next_seq: 1,
                    ..Index::default()
                }),
            }),
        }
    }

    /// The tonic server wrapping this service (large enough messages for long lists).
    pub fn into_server(self) -> CollectorServer<Self> {
        CollectorServer::new(self)
            .max_decoding_message_size(1 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// The segments as the manifest lists them now, with their sequence numbers; reads the
    /// manifest again only when it changed.
    fn refresh(&self) -> Result<Vec<(u64, ManifestFile)>, Status> {
        let dir = &self.shared.cfg.data_dir;
        let mut index = self.shared.index.lock().unwrap_or_else(|p| p.into_inner());
        let stamp = std::fs::metadata(dir.join(MANIFEST))
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_some() && stamp != index.stamp {
            let manifest = read_manifest(dir).map_err(|e| Status::internal(e.to_string()))?;
            let mut files = manifest.files.clone();
            files.sort_by(|a, b| (parse_ts(&a.last), &a.path).cmp(&(parse_ts(&b.last), &b.path)));
            for f in &files {
                if !index.seqs.contains_key(&f.sha256) {
                    let seq = index.next_seq;
                    index.next_seq += 1;
                    index.seqs.insert(f.sha256.clone(), seq);
                }
            }
            let live: BTreeSet<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
            index.seqs.retain(|k, _| live.contains(k.as_str()));
            index.namespaces.retain(|k, _| live.contains(k.as_str()));
            index.manifest = Some(manifest);
            index.stamp = stamp;
        }
        let Some(manifest) = &index.manifest else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(u64, ManifestFile)> = manifest
            .files
            .iter()
            .filter_map(|f| index.seqs.get(&f.sha256).map(|s| (*s, f.clone())))
            .collect();
        out.sort_by_key(|(s, _)| *s);
        Ok(out)
    }

    /// The pods table files the manifest lists now, as segments are served (the manifest is
    /// the one [`Self::refresh`] read last).
    fn pods_files(&self) -> Vec<ManifestFile> {
        let index = self.shared.index.lock().unwrap_or_else(|p| p.into_inner());
        index
            .manifest
            .as_ref()
            .map(|m| {
                m.pods
                    .iter()
                    .map(|p| ManifestFile {
                        path: p.path.clone(),
                        node: p.node.clone(),
                        sha256: p.sha256.clone(),
                        bytes: p.bytes,
                        rows: p.rows,
                        first: String::new(),
                        last: String::new(),
                        events_seen: 0,
                        events_dropped: 0,
                        replaces: Vec::new(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pods schema version the manifest records.
    fn pods_version(&self) -> Option<String> {
        let index = self.shared.index.lock().unwrap_or_else(|p| p.into_inner());
        index.manifest.as_ref()?.pods_schema_version.clone()
    }

    /// Namespaces of a segment's rows, read once and cached.
    fn namespaces_of(&self, f: &ManifestFile) -> Vec<String> {
        {
            let index = self.shared.index.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ns) = index.namespaces.get(&f.sha256) {
                return ns.clone();
            }
        }
        let path = self.shared.cfg.data_dir.join(&f.path);
        match segment_namespaces(&path) {
            Ok(ns) => {
                let mut index = self.shared.index.lock().unwrap_or_else(|p| p.into_inner());
                index.namespaces.insert(f.sha256.clone(), ns.clone());
                ns
            }
            // Unreadable (e.g. removed by retention meanwhile): not cached, matches no filter.
            Err(_) => Vec::new(),
        }
    }

    fn info(&self, f: &ManifestFile) -> pb::SegmentInfo {
        pb::SegmentInfo {
            path: f.path.clone(),
            node: f.node.clone(),
            sha256: f.sha256.clone(),
            bytes: f.bytes,
            rows: f.rows,
            first_ns: parse_ts(&f.first).unwrap_or(0),
            last_ns: parse_ts(&f.last).unwrap_or(0),
            events_seen: f.events_seen,
            events_dropped: f.events_dropped,
            namespaces: self.namespaces_of(f),
            replaces: f.replaces.clone(),
        }
    }

    fn matches_namespaces(info: &pb::SegmentInfo, wanted: &[String]) -> bool {
        wanted.is_empty() || info.namespaces.iter().any(|n| wanted.contains(n))
    }
}

/// Distinct namespaces of a segment's rows, sorted (reads only the `namespace` column).
pub fn segment_namespaces(path: &Path) -> Result<Vec<String>, ContractError> {
    let err = |e: &dyn std::fmt::Display| ContractError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| ContractError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["namespace"]);
    let reader = builder.with_projection(mask).build().map_err(|e| err(&e))?;
    let mut out = BTreeSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let Some(col) = batch
            .column_by_name("namespace")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        else {
            return Err(ContractError::Column {
                path: path.to_path_buf(),
                column: "namespace".into(),
                message: "missing or not a string column".into(),
            });
        };
        for i in 0..col.len() {
            if !col.is_null(i) && !out.contains(col.value(i)) {
                out.insert(col.value(i).to_string());
            }
        }
    }
    Ok(out.into_iter().collect())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Collector for CollectorService {
    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        let req = request.into_inner();
        let this = self.clone();
        let reply = tokio::task::spawn_blocking(move || -> Result<_, Status> {
            let files = this.refresh()?;
            let mut segments = Vec::new();
            for (_, f) in files {
                let first = parse_ts(&f.first).unwrap_or(0);
                let last = parse_ts(&f.last).unwrap_or(0);
                if req.since_ns != 0 && last < req.since_ns {
                    continue;
                }
                if req.until_ns != 0 && first > req.until_ns {
                    continue;
                }
                let info = this.info(&f);
                if Self::matches_namespaces(&info, &req.namespaces) {
                    segments.push(info);
                }
            }
            segments.sort_by(|a, b| a.path.cmp(&b.path));
            let pods: Vec<pb::PodsFileInfo> = this
                .pods_files()
                .into_iter()
                .map(|p| pb::PodsFileInfo {
                    path: p.path,
                    node: p.node,
                    sha256: p.sha256,
                    bytes: p.bytes,
                    rows: p.rows,
                })
                .collect();
            let producer = this
                .shared
                .index
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .manifest
                .as_ref()
                .map(|m| m.producer.clone())
                .unwrap_or_default();
            Ok(pb::ListSegmentsResponse {
                node: this.shared.cfg.node.clone(),
                cluster: this.shared.cfg.cluster.clone().unwrap_or_default(),
                producer,
                schema_version: schema_version(),
                segments,
                pods_schema_version: if pods.is_empty() {
                    String::new()
                } else {
                    this.pods_version().unwrap_or_else(pods_schema_version)
                },
                pods,
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(reply))
    }

    type FetchSegmentStream = BoxStream<pb::SegmentChunk>;

    async fn fetch_segment(
        &self,
        request: Request<pb::FetchSegmentRequest>,
    ) -> Result<Response<Self::FetchSegmentStream>, Status> {
        let req = request.into_inner();
        let this = self.clone();
        let files = tokio::task::spawn_blocking(move || {
            this.refresh().map(|files| (files, this.pods_files()))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        let (files, pods) = files;
        let found = files
            .into_iter()
            .map(|(_, f)| f)
            .chain(pods)
            .find(|f| f.path == req.path);
        let Some(f) = found else {
            return Err(Status::not_found(format!(
                "no segment {:?} in this collector's manifest",
                req.path
            )));
        };
        if !req.sha256.is_empty() && req.sha256 != f.sha256 {
            return Err(Status::failed_precondition(format!(
                "segment {} has sha256 {}, not {}",
                f.path, f.sha256, req.sha256
            )));
        }
        if req.offset > f.bytes {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end of {} ({} bytes)",
                req.offset, f.path, f.bytes
            )));
        }
        let path = self.shared.cfg.data_dir.join(&f.path);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Status::not_found(format!("{}: {e}", f.path)))?;
        file.seek(std::io::SeekFrom::Start(req.offset))
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", f.path)))?;
        let chunk = if req.chunk_bytes == 0 {
            DEFAULT_CHUNK
        } else {
            req.chunk_bytes.clamp(MIN_CHUNK, MAX_CHUNK)
        } as usize;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut offset = req.offset;
            while offset < f.bytes {
                let want = chunk.min((f.bytes - offset) as usize);
                let mut data = vec![0u8; want];
                if let Err(e) = file.read_exact(&mut data).await {
                    let _ = tx
                        .send(Err(Status::internal(format!(
                            "{}: read at {offset}: {e}",
                            f.path
                        ))))
                        .await;
                    return;
                }
                let msg = pb::SegmentChunk {
                    offset,
                    crc32: crc32fast::hash(&data),
                    data,
                    total_bytes: f.bytes,
                    sha256: f.sha256.clone(),
                };
                offset += want as u64;
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type FollowStream = BoxStream<pb::FollowUpdate>;

    async fn follow(
        &self,
        request: Request<pb::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let req = request.into_inner();
        let epoch = self.shared.epoch;
        let mut after = match req.after {
            Some(c) if c.epoch == epoch => c.seq,
            _ => 0,
        };
        let this = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let t = this.clone();
                let ns = req.namespaces.clone();
                let batch = tokio::task::spawn_blocking(move || -> Result<_, Status> {
                    let mut out = Vec::new();
                    for (seq, f) in t.refresh()? {
                        if seq <= after {
                            continue;
                        }
                        let info = t.info(&f);
                        out.push((seq, Self::matches_namespaces(&info, &ns).then_some(info)));
                    }
                    Ok(out)
                })
                .await
                .map_err(|e| Status::internal(e.to_string()))
                .and_then(|r| r);
                match batch {
                    Ok(batch) => {
                        for (seq, info) in batch {
                            after = seq;
                            let Some(info) = info else { continue };
                            let update = pb::FollowUpdate {
                                cursor: Some(pb::FollowCursor { epoch, seq }),
                                segment: Some(info),
                            };
                            if tx.send(Ok(update)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(this.shared.cfg.poll_interval) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let this = self.clone();
        let files = tokio::task::spawn_blocking(move || this.refresh())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let c = &self.shared.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let ka = self.shared.kubearmor.as_deref();
        let ka_count =
            |f: fn(&KubeArmorStats) -> &std::sync::atomic::AtomicU64| ka.map_or(0, |k| load(f(k)));
        Ok(Response::new(pb::HealthResponse {
            node: self.shared.cfg.node.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version: schema_version(),
            sources: self.shared.cfg.sources.clone(),
            uptime_seconds: self.shared.started.elapsed().as_secs(),
            segments: files.len() as u64,
            bytes_on_disk: files.iter().map(|(_, f)| f.bytes).sum(),
            events_seen: load(&c.events_seen),
            events_dropped: load(&c.events_dropped),
            rows_written: load(&c.rows_written),
            segments_written: load(&c.segments_written),
            write_errors: load(&c.write_errors),
            compactions: load(&c.compactions),
            compaction_errors: load(&c.compaction_errors),
            archive_uploads: load(&c.archive_uploads),
            archive_errors: load(&c.archive_errors),
            archive_lost_files: load(&c.archive_lost_files),
            archive_lost_bytes: load(&c.archive_lost_bytes),
            kubearmor_connected: ka.is_some_and(|k| k.connected.load(Ordering::Relaxed)),
            kubearmor_events: ka_count(|k| &k.received),
            kubearmor_unmapped: ka_count(|k| &k.unmapped),
            kubearmor_duplicates: ka_count(|k| &k.duplicates),
            kubearmor_connects: ka_count(|k| &k.connects),
            kubearmor_failures: ka_count(|k| &k.failures),
            probe_hooks: c
                .hook_choices
                .get()
                .map(|choices| {
                    choices
                        .iter()
                        .map(|h| pb::SensorHooks {
                            sensor: h.sensor.to_string(),
                            hooks: h.hooks.clone(),
                            failed: h.failed.clone(),
                            why: h.why.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }
}

/// Serves `service` on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    service: CollectorService,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Bind { addr, source })?;
    serve_listener(listener, service, shutdown).await
}

/// Serves `service` on an already bound listener (tests bind 127.0.0.1:0).
pub async fn serve_listener(
    listener: TcpListener,
    service: CollectorService,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
