//! Bundles: the unit of exchange (design §4).
//!
//! A bundle is a directory with `manifest.json` and a Hive-partitioned Parquet tree,
//! `node=<node>/date=<YYYY-MM-DD>/hour=<HH>/<segment-id>.parquet`. Segment ids are derived from
//! the segment's content, so writing the same rows twice adds nothing. The manifest lists every
//! segment with its sha256, size, rows, time range and counters.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dedup::DedupWindow;
use crate::error::ContractError;
use crate::pods::{
    check_pods_version, encode_pods, pods_schema_version, read_pods_footer, PodAddress, PODS_DIR,
    PODS_FILE_PREFIX,
};
use crate::schema::{schema_version, Event};
use crate::segment::{
    self, check_schema_version, encode_segment, read_footer, SegmentMeta, TMP_SUFFIX,
};

/// File name of the manifest at a bundle's root.
pub const MANIFEST: &str = "manifest.json";
/// Value of [`Manifest::format`].
pub const FORMAT: &str = "karmor-bundle";
/// File name prefix of an hour file: an hour's segments compacted into one (the warm tier),
/// in the hour's own partition directory.
pub const HOUR_FILE_PREFIX: &str = "hour-";
/// File name prefix of a day file: a day's hour files compacted into one, in the partition
/// `hour=`[`DAY_PARTITION_HOUR`] of its date.
pub const DAY_FILE_PREFIX: &str = "day-";
/// The `hour=` value of a day file's partition: Hive's NULL partition value, so that every file
/// keeps the same partition depth and engines read `hour` as NULL for a file covering a day.
pub const DAY_PARTITION_HOUR: &str = "__HIVE_DEFAULT_PARTITION__";

/// Whether the file at `rel` (a bundle-relative path) is a compaction's output (an hour or a
/// day file), by its name.
pub fn is_compacted_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.starts_with(HOUR_FILE_PREFIX) || name.starts_with(DAY_FILE_PREFIX)
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Schema version of the segments, e.g. `"1.0"`.
    pub schema_version: String,
    /// Who wrote the bundle last.
    pub producer: String,
    /// When the manifest was last written (RFC 3339).
    pub updated_at: String,
    /// Clusters the rows come from.
    pub clusters: Vec<String>,
    /// Nodes the rows come from.
    pub nodes: Vec<String>,
    /// Earliest and latest behaviour in the bundle.
    pub time_range: Option<TimeRange>,
    /// Sums over all segments.
    pub totals: Totals,
    /// Events lost outside any segment and not tied to a known input.
    pub events_dropped_unattributed: u64,
    /// Events lost per input (e.g. unreadable lines per imported file, keyed by the file's
    /// sha256), so that importing the same input twice counts its losses once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped_by_input: BTreeMap<String, u64>,
    /// Every segment, sorted by path.
    pub files: Vec<ManifestFile>,
    /// Version of the pods table ([`crate::pods`]) when the bundle holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_schema_version: Option<String>,
    /// Every file of the pods table, sorted by path (absent from bundles without one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodsFile>,
}

/// One file of the pods table in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodsFile {
    /// Path relative to the bundle root, `pods/node=<node>/pods-<sha16>.parquet`.
    pub path: String,
    /// Node (or writer) the rows come from.
    pub node: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Row count.
    pub rows: u64,
    /// sha256 of the pods table files whose spans this file holds, merged into it
    /// ([`crate::pods::merge_snapshots`]), transitively: a reader that holds this file never
    /// needs them (empty for a writer's own snapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

/// A closed time range, RFC 3339 with nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Earliest `ts_first`.
    pub first: String,
    /// Latest `ts_last`.
    pub last: String,
}

/// Sums over a bundle's segments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Number of segments.
    pub files: u64,
    /// Rows (distinct behaviours per window).
    pub rows: u64,
    /// Bytes of Parquet.
    pub bytes: u64,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events lost, in segments and outside them.
    pub events_dropped: u64,
}

/// One segment in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the bundle root, with `/` separators.
    pub path: String,
    /// Node the rows come from.
    pub node: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Row count.
    pub rows: u64,
    /// Earliest `ts_first`, RFC 3339.
    pub first: String,
    /// Latest `ts_last`, RFC 3339.
    pub last: String,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events dropped while this segment's window was open.
    pub events_dropped: u64,
    /// For a compacted file (an hour or day file, or a cache's compaction): the sha256 of
    /// every file whose rows it holds, transitively (a day file lists its hour files and their
    /// minute segments). A reader that already has one of these files must not count its rows
    /// again; empty for a segment written from events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

/// How [`write_bundle`] writes.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// Recorded in the manifest and in each segment, e.g. `kubectl-karmor import 0.1.0`.
    pub producer: String,
    /// Cluster name to record when the rows carry none.
    pub cluster: Option<String>,
    /// Events lost before they became rows, not tied to an input (added to the bundle's).
    pub events_dropped: u64,
    /// Events lost per input, keyed by the input's identity (set, not added: idempotent).
    pub dropped_by_input: Vec<(String, u64)>,
    /// Merge identical behaviours within each hour partition first.
    pub dedup: bool,
}

/// Formats ns since epoch as RFC 3339 UTC with nanoseconds.
pub fn format_ts(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 time to ns since epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()?
        .with_timezone(&Utc)
        .timestamp_nanos_opt()
}

/// Makes a node name safe as a path component (`[A-Za-z0-9._-]`, others become `_`).
pub fn sanitize_component(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        "unknown".into()
    } else {
        clean
    }
}

/// The partition directory of a row: `node=<node>/date=<YYYY-MM-DD>/hour=<HH>`.
pub fn partition_dir(node: &str, ts_ns: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
    format!(
        "node={}/date={}/hour={}",
        sanitize_component(node),
        t.format("%Y-%m-%d"),
        t.format("%H")
    )
}

/// Reads `dir/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, ContractError> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(|e| ContractError::io(&path, e))?;
    parse_manifest(&path, &text)
}

/// Writes `dir/manifest.json` atomically, recomputing totals, nodes and time range.
pub fn write_manifest(dir: &Path, manifest: &mut Manifest) -> Result<(), ContractError> {
    let path = dir.join(MANIFEST);
    let text = manifest_json(manifest).map_err(|message| ContractError::Manifest {
        path: path.clone(),
        message,
    })?;
    segment::write_atomic(&path, text.as_bytes())
}

/// The text of `manifest.json` for `manifest`, after sorting its files and recomputing totals,
/// nodes, time range and `updated_at` as [`write_manifest`] does (for manifests kept
/// elsewhere than a local directory, e.g. an archive on object storage).
pub fn manifest_json(manifest: &mut Manifest) -> Result<String, String> {
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.files.dedup_by(|a, b| a.path == b.path);
    manifest.pods.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.pods.dedup_by(|a, b| a.path == b.path);
    if !manifest.pods.is_empty() && manifest.pods_schema_version.is_none() {
        manifest.pods_schema_version = Some(pods_schema_version());
    }
    let mut totals = Totals {
        events_dropped: manifest.dropped_outside_segments(),
        ..Totals::default()
    };
    let mut nodes = BTreeSet::new();
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    for f in &manifest.files {
        totals.files += 1;
        totals.rows += f.rows;
        totals.bytes += f.bytes;
        totals.events_seen += f.events_seen;
        totals.events_dropped += f.events_dropped;
        nodes.insert(f.node.clone());
        if let (Some(a), Some(b)) = (parse_ts(&f.first), parse_ts(&f.last)) {
            first = Some(first.map_or(a, |x| x.min(a)));
            last = Some(last.map_or(b, |x| x.max(b)));
        }
    }
    manifest.totals = totals;
    manifest.nodes = nodes.into_iter().collect();
    manifest.time_range = first.zip(last).map(|(a, b)| TimeRange {
        first: format_ts(a),
        last: format_ts(b),
    });
    manifest.updated_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let text = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    Ok(format!("{text}\n"))
}

/// Parses the text of a `manifest.json` read from `origin` (a path or a URL, for messages),
/// checking its format and schema version as [`read_manifest`] does.
pub fn parse_manifest(origin: &Path, text: &str) -> Result<Manifest, ContractError> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| ContractError::Manifest {
        path: origin.to_path_buf(),
        message: e.to_string(),
    })?;
    if m.format != FORMAT {
        return Err(ContractError::Manifest {
            path: origin.to_path_buf(),
            message: format!("format is {:?}, expected {FORMAT:?}", m.format),
        });
    }
    check_schema_version(origin, &m.schema_version)?;
    if let Some(v) = &m.pods_schema_version {
        check_pods_version(origin, v)?;
    }
    Ok(m)
}

/// An empty manifest for a new bundle.
pub fn new_manifest(producer: &str) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        schema_version: schema_version(),
        producer: producer.into(),
        updated_at: String::new(),
        clusters: Vec::new(),
        nodes: Vec::new(),
        time_range: None,
        totals: Totals::default(),
        events_dropped_unattributed: 0,
        dropped_by_input: BTreeMap::new(),
        files: Vec::new(),
        pods_schema_version: None,
        pods: Vec::new(),
    }
}

impl Manifest {
    /// Events lost outside the segments: unattributed plus per input.
    pub fn dropped_outside_segments(&self) -> u64 {
        self.events_dropped_unattributed + self.dropped_by_input.values().sum::<u64>()
    }
}

/// Writes rows into the bundle at `dir` (created if missing, added to if it exists): one
/// segment per (node, hour), named by content, then the manifest. Returns the new manifest.
pub fn write_bundle(
    dir: &Path,
    events: Vec<Event>,
    opts: &BundleOptions,
) -> Result<Manifest, ContractError> {
    fs::create_dir_all(dir).map_err(|e| ContractError::io(dir, e))?;
    let mut manifest = if dir.join(MANIFEST).exists() {
        read_manifest(dir)?
    } else {
        new_manifest(&opts.producer)
    };
    manifest.producer = opts.producer.clone();

    let mut clusters: BTreeSet<String> = manifest.clusters.iter().cloned().collect();
    let mut parts: BTreeMap<String, (String, Vec<Event>)> = BTreeMap::new();
    for mut e in events {
        if e.cluster.is_none() {
            e.cluster = opts.cluster.clone();
        }
        if let Some(c) = &e.cluster {
            clusters.insert(c.clone());
        }
        if e.node.is_empty() {
            e.node = "unknown".into();
        }
        let key = partition_dir(&e.node, e.ts_first);
        parts
            .entry(key)
            .or_insert_with(|| (e.node.clone(), Vec::new()))
            .1
            .push(e);
    }
    manifest.clusters = clusters.into_iter().collect();

    for (_, (node, rows)) in parts {
        let rows = if opts.dedup {
            let mut w = DedupWindow::new();
            rows.into_iter().for_each(|e| w.push(e));
            w.drain()
        } else {
            rows
        };
        let meta = SegmentMeta {
            schema_version: schema_version(),
            producer: opts.producer.clone(),
            node,
            events_seen: rows.iter().map(|e| e.count).sum(),
            windows: 1,
            ..SegmentMeta::default()
        };
        add_segment(dir, &mut manifest, rows, &meta)?;
    }
    manifest.events_dropped_unattributed += opts.events_dropped;
    for (input, n) in &opts.dropped_by_input {
        manifest.dropped_by_input.insert(input.clone(), *n);
    }
    write_manifest(dir, &mut manifest)?;
    Ok(manifest)
}

/// Writes rows of one node and hour as a segment of the bundle at `dir` (named by content,
/// written atomically) and lists it in `manifest` (which the caller writes). Returns the entry;
/// a segment already listed is not written again.
pub fn add_segment(
    dir: &Path,
    manifest: &mut Manifest,
    rows: Vec<Event>,
    meta: &SegmentMeta,
) -> Result<ManifestFile, ContractError> {
    let segment = PreparedSegment::encode(dir, rows, meta)?;
    segment.publish(dir, manifest)
}

/// Writes pod addresses into the bundle at `dir` (created if missing, added to if it exists):
/// one pods table file per node, named by content, then the manifest. Returns the manifest.
pub fn write_pods(
    dir: &Path,
    rows: Vec<PodAddress>,
    producer: &str,
) -> Result<Manifest, ContractError> {
    fs::create_dir_all(dir).map_err(|e| ContractError::io(dir, e))?;
    let mut manifest = if dir.join(MANIFEST).exists() {
        read_manifest(dir)?
    } else {
        new_manifest(producer)
    };
    let mut by_node: BTreeMap<String, Vec<PodAddress>> = BTreeMap::new();
    for r in rows {
        by_node.entry(r.node.clone()).or_default().push(r);
    }
    for (node, rows) in by_node {
        add_pods(dir, &mut manifest, rows, producer, &node)?;
    }
    write_manifest(dir, &mut manifest)?;
    Ok(manifest)
}

/// Writes one pods table file for `node` into the bundle at `dir` (named by content, written
/// atomically) and lists it in `manifest` (which the caller writes). A file already listed is
/// not written again.
pub fn add_pods(
    dir: &Path,
    manifest: &mut Manifest,
    rows: Vec<PodAddress>,
    producer: &str,
    node: &str,
) -> Result<PodsFile, ContractError> {
    let rows = crate::pods::fold_pods(rows);
    let n = rows.len() as u64;
    let part = format!("{PODS_DIR}/node={}", sanitize_component(node));
    let bytes = encode_pods(rows, producer, node)
        .map_err(|m| ContractError::parquet(dir.join(&part).join("<new pods file>"), m))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let entry = PodsFile {
        path: format!("{part}/{PODS_FILE_PREFIX}{}.parquet", &sha[..16]),
        node: node.into(),
        sha256: sha,
        bytes: bytes.len() as u64,
        rows: n,
        replaces: Vec::new(),
    };
    if let Some(f) = manifest.pods.iter().find(|f| f.path == entry.path) {
        return Ok(f.clone());
    }
    segment::write_atomic(&dir.join(&entry.path), &bytes)?;
    manifest.pods.push(entry.clone());
    manifest.pods_schema_version = Some(pods_schema_version());
    Ok(entry)
}

/// Merges the listed pods table files `merged` of `node` (paths relative to the bundle at
/// `dir`) into one history file ([`crate::pods::merge_snapshots`]), written atomically and
/// named by content, whose `replaces` names them and what they replaced. Returns its entry;
/// the caller lists it in place of `merged` and deletes them. A file that cannot be read is
/// an error naming it (nothing is changed).
pub fn merge_pods_files(
    dir: &Path,
    merged: &[PodsFile],
    producer: &str,
    node: &str,
) -> Result<PodsFile, ContractError> {
    let mut snapshots = Vec::with_capacity(merged.len());
    let mut replaces: BTreeSet<String> = BTreeSet::new();
    for f in merged {
        snapshots.push(crate::pods::read_pods(&dir.join(&f.path))?);
        replaces.insert(f.sha256.clone());
        replaces.extend(f.replaces.iter().cloned());
    }
    let rows = crate::pods::merge_snapshots(snapshots);
    let mut scratch = new_manifest(producer);
    let mut entry = add_pods(dir, &mut scratch, rows, producer, node)?;
    replaces.remove(&entry.sha256);
    entry.replaces = replaces.into_iter().collect();
    Ok(entry)
}

/// A segment encoded in memory, not yet on disk: its size is known before anything is written,
/// so retention can make room first.
#[derive(Debug)]
pub struct PreparedSegment {
    bytes: Vec<u8>,
    entry: ManifestFile,
}

impl PreparedSegment {
    /// Encodes rows of one node and hour (sorted in place) for the bundle at `dir`.
    pub fn encode(
        dir: &Path,
        mut rows: Vec<Event>,
        meta: &SegmentMeta,
    ) -> Result<Self, ContractError> {
        let first = rows.iter().map(|e| e.ts_first).min().unwrap_or(0);
        let last = rows.iter().map(|e| e.ts_last).max().unwrap_or(0);
        let part = partition_dir(&meta.node, first);
        let bytes = encode_segment(&mut rows, meta)
            .map_err(|m| ContractError::parquet(dir.join(&part).join("<new segment>"), m))?;
        Ok(Self::from_bytes(
            bytes,
            part,
            rows.len(),
            (first, last),
            meta,
        ))
    }

    /// Encodes rows of one node and hour, given in segment order, for the bundle at `dir`,
    /// holding only a chunk of them as events at a time ([`segment::encode_rows`]).
    pub fn encode_rows(
        dir: &Path,
        rows: &dyn segment::SegmentRows,
        meta: &SegmentMeta,
    ) -> Result<Self, ContractError> {
        let (first, last) = rows.time_range();
        let part = partition_dir(&meta.node, first);
        let bytes = segment::encode_rows(rows, meta)
            .map_err(|m| ContractError::parquet(dir.join(&part).join("<new segment>"), m))?;
        Ok(Self::from_bytes(
            bytes,
            part,
            rows.row_count(),
            (first, last),
            meta,
        ))
    }

    fn from_bytes(
        bytes: Vec<u8>,
        part: String,
        rows: usize,
        (first, last): (i64, i64),
        meta: &SegmentMeta,
    ) -> Self {
        let sha = hex::encode(Sha256::digest(&bytes));
        let entry = ManifestFile {
            path: format!("{part}/seg-{}.parquet", &sha[..16]),
            node: meta.node.clone(),
            sha256: sha,
            bytes: bytes.len() as u64,
            rows: rows as u64,
            first: format_ts(first),
            last: format_ts(last),
            events_seen: meta.events_seen,
            events_dropped: meta.events_dropped,
            replaces: Vec::new(),
        };
        PreparedSegment { bytes, entry }
    }

    /// The manifest entry the segment gets once published.
    pub fn entry(&self) -> &ManifestFile {
        &self.entry
    }

    /// Writes the segment atomically and lists it in `manifest` (which the caller writes); a
    /// segment already listed is not written again.
    pub fn publish(
        self,
        dir: &Path,
        manifest: &mut Manifest,
    ) -> Result<ManifestFile, ContractError> {
        if let Some(f) = manifest.files.iter().find(|f| f.path == self.entry.path) {
            return Ok(f.clone());
        }
        segment::write_atomic(&dir.join(&self.entry.path), &self.bytes)?;
        manifest.files.push(self.entry.clone());
        Ok(self.entry)
    }
}

/// A segment of a bundle, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    /// Absolute (or caller-relative) path of the file.
    pub path: PathBuf,
    /// Path relative to the bundle root, `/`-separated.
    pub rel: String,
    /// The manifest's entry, when there is a manifest.
    pub listed: Option<ManifestFile>,
}

/// A bundle opened for reading.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Root directory.
    pub root: PathBuf,
    /// The manifest, or `None` for a bare Parquet tree (a collector data directory whose
    /// manifest is missing, or a tree copied by hand).
    pub manifest: Option<Manifest>,
    /// Segments to read: the manifest's files, or every `*.parquet` under the root (but the
    /// pods table's).
    pub segments: Vec<SegmentRef>,
    /// Files of the pods table: the manifest's `pods`, or every `*.parquet` under `pods/`.
    pub pods: Vec<SegmentRef>,
}

/// Opens a bundle directory. Fails only when the directory or its manifest is unreadable;
/// problems with single segments are left to the reader of each segment.
pub fn open_bundle(root: &Path) -> Result<Bundle, ContractError> {
    let meta = fs::metadata(root).map_err(|e| ContractError::io(root, e))?;
    if !meta.is_dir() {
        return Err(ContractError::Manifest {
            path: root.to_path_buf(),
            message: "a bundle is a directory with manifest.json (unpack .tar bundles first)"
                .into(),
        });
    }
    if root.join(MANIFEST).exists() {
        let manifest = read_manifest(root)?;
        let segments = manifest
            .files
            .iter()
            .map(|f| SegmentRef {
                path: root.join(&f.path),
                rel: f.path.clone(),
                listed: Some(f.clone()),
            })
            .collect();
        let pods = manifest
            .pods
            .iter()
            .map(|f| SegmentRef {
                path: root.join(&f.path),
                rel: f.path.clone(),
                listed: None,
            })
            .collect();
        return Ok(Bundle {
            root: root.to_path_buf(),
            manifest: Some(manifest),
            segments,
            pods,
        });
    }
    let mut segments = Vec::new();
    for path in parquet_files(root)? {
        segments.push(SegmentRef {
            rel: relative(root, &path),
            path,
            listed: None,
        });
    }
    let pods = pods_files(root)?
        .into_iter()
        .map(|path| SegmentRef {
            rel: relative(root, &path),
            path,
            listed: None,
        })
        .collect();
    Ok(Bundle {
        root: root.to_path_buf(),
        manifest: None,
        segments,
        pods,
    })
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every finished `*.parquet` segment under `root`, sorted (temporary files are skipped, and
/// so are hidden directories such as a collector's `.compact-tmp/` scratch runs, and the pods
/// table's directory `pods/`, see [`pods_files`]).
pub fn parquet_files(root: &Path) -> Result<Vec<PathBuf>, ContractError> {
    let pods = root.join(PODS_DIR);
    Ok(parquet_files_under(root)?
        .into_iter()
        .filter(|p| !p.starts_with(&pods))
        .collect())
}

/// Every finished `*.parquet` file of the pods table (under `root/pods/`), sorted.
pub fn pods_files(root: &Path) -> Result<Vec<PathBuf>, ContractError> {
    let dir = root.join(PODS_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    parquet_files_under(&dir)
}

fn parquet_files_under(root: &Path) -> Result<Vec<PathBuf>, ContractError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| ContractError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ContractError::io(&dir, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| ContractError::io(&path, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if ft.is_dir() {
                if !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".parquet") && !name.ends_with(TMP_SUFFIX) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The outcome of checking one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// Path relative to the bundle root.
    pub rel: String,
    /// `None` when the segment is intact, otherwise what is wrong.
    pub problem: Option<String>,
}

/// Checks every segment of a bundle against its manifest: present, same size, same sha256,
/// a readable footer with a supported schema and the listed row count. Files on disk that
/// the manifest does not list are reported too, except the two a compaction leaves behind when
/// it is cut short (they hold no row that the listed files do not, and a collector deletes them
/// when it starts): a file whose sha256 a listed file [`replaces`](ManifestFile::replaces)
/// (replaced, awaiting deletion), and an hour or day file ([`is_compacted_file`]) not yet
/// listed while its inputs still are (some listed file in the same hour directory, or the same
/// date for a day file): a compaction not finished, discarded on restart.
pub fn verify_bundle(root: &Path) -> Result<Vec<FileCheck>, ContractError> {
    let bundle = open_bundle(root)?;
    let Some(manifest) = &bundle.manifest else {
        return Err(ContractError::Manifest {
            path: root.join(MANIFEST),
            message: "missing: nothing to verify against".into(),
        });
    };
    let mut checks = Vec::new();
    for seg in &bundle.segments {
        let problem = match &seg.listed {
            Some(f) => check_listed(&seg.path, f).err(),
            None => None,
        };
        checks.push(FileCheck {
            rel: seg.rel.clone(),
            problem,
        });
    }
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let replaced: BTreeSet<&str> = manifest
        .files
        .iter()
        .flat_map(|f| f.replaces.iter().map(String::as_str))
        .collect();
    for path in parquet_files(root)? {
        let rel = relative(root, &path);
        if listed.contains(rel.as_str()) {
            continue;
        }
        if is_compacted_file(&rel) && compaction_inputs_listed(&rel, &listed) {
            continue;
        }
        if !replaced.is_empty() {
            if let Ok(sha) = segment::sha256_file(&path) {
                if replaced.contains(sha.as_str()) {
                    continue;
                }
            }
        }
        checks.push(FileCheck {
            rel,
            problem: Some("not listed in manifest.json".into()),
        });
    }
    let pods_listed: BTreeSet<&str> = manifest.pods.iter().map(|f| f.path.as_str()).collect();
    for f in &manifest.pods {
        checks.push(FileCheck {
            rel: f.path.clone(),
            problem: check_listed_pods(&root.join(&f.path), f).err(),
        });
    }
    for path in pods_files(root)? {
        let rel = relative(root, &path);
        if !pods_listed.contains(rel.as_str()) {
            checks.push(FileCheck {
                rel,
                problem: Some("not listed in manifest.json (pods)".into()),
            });
        }
    }
    Ok(checks)
}

/// Checks that the file at `path` has the size and sha256 its manifest entry lists.
fn check_bytes(path: &Path, bytes: u64, sha256: &str) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() != bytes {
        return Err(format!("size {} bytes, manifest says {bytes}", meta.len()));
    }
    let sha = segment::sha256_file(path).map_err(|e| e.to_string())?;
    if sha != sha256 {
        return Err(format!("sha256 {sha} does not match manifest {sha256}"));
    }
    Ok(())
}

/// Checks one listed pods table file: present, same size and sha256, a readable footer with a
/// supported pods schema and the listed row count.
fn check_listed_pods(path: &Path, f: &PodsFile) -> Result<(), String> {
    check_bytes(path, f.bytes, &f.sha256)?;
    let rows = read_pods_footer(path).map_err(|e| e.to_string())?;
    if rows != f.rows {
        return Err(format!("{rows} rows, manifest says {}", f.rows));
    }
    Ok(())
}

/// Checks the pods table file `seg` of a bundle against its manifest entry (when the manifest
/// lists it) and reads its footer: its row count, or what is wrong.
pub fn check_pods_file(manifest: Option<&Manifest>, seg: &SegmentRef) -> Result<u64, String> {
    match manifest.and_then(|m| m.pods.iter().find(|f| f.path == seg.rel)) {
        Some(f) => check_listed_pods(&seg.path, f).map(|()| f.rows),
        None => read_pods_footer(&seg.path).map_err(|e| e.to_string()),
    }
}

/// Whether the inputs of the unlisted compaction output at `rel` may still be listed: a listed
/// file (of `listed`, bundle-relative paths) in its hour directory (an hour file) or under its
/// date (a day file). Such an output is a compaction cut short, safe to delete.
pub fn compaction_inputs_listed(rel: &str, listed: &BTreeSet<&str>) -> bool {
    let Some((dir, name)) = rel.rsplit_once('/') else {
        return false;
    };
    let scope = if name.starts_with(DAY_FILE_PREFIX) {
        match dir.rsplit_once('/') {
            Some((date, _)) => date,
            None => return false,
        }
    } else {
        dir
    };
    let prefix = format!("{scope}/");
    listed.iter().any(|l| l.starts_with(&prefix))
}

fn check_listed(path: &Path, f: &ManifestFile) -> Result<(), String> {
    check_bytes(path, f.bytes, &f.sha256)?;
    let footer = read_footer(path).map_err(|e| e.to_string())?;
    if footer.rows != f.rows {
        return Err(format!("{} rows, manifest says {}", footer.rows, f.rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Op;

    fn ev(node: &str, ts: i64, path: &str) -> Event {
        Event {
            ts_first: ts,
            ts_last: ts,
            count: 1,
            node: node.into(),
            namespace: Some("ns".into()),
            op: Op::File,
            path: Some(path.into()),
            access: Some("read".into()),
            ..Event::default()
        }
    }

    const H: i64 = 3_600_000_000_000;
    const T0: i64 = 1_763_625_600_000_000_000; // 2025-11-20T08:00:00Z

    fn opts() -> BundleOptions {
        BundleOptions {
            producer: "test".into(),
            dedup: true,
            ..BundleOptions::default()
        }
    }

    #[test]
    fn rows_are_partitioned_by_node_and_hour_and_deduplicated() {
        let dir = tempfile::tempdir().unwrap();
        let events = vec![
            ev("a", T0, "/x"),
            ev("a", T0 + 5, "/x"),
            ev("a", T0 + H, "/x"),
            ev("b/../evil", T0, "/y"),
        ];
        let m = write_bundle(dir.path(), events, &opts()).unwrap();
        assert_eq!(m.totals.files, 3);
        assert_eq!(m.totals.rows, 3);
        assert_eq!(m.totals.events_seen, 4);
        assert_eq!(m.nodes, vec!["a".to_string(), "b/../evil".to_string()]);
        assert!(m
            .files
            .iter()
            .all(|f| f.path.contains("date=2025-11-20/hour=")));
        assert!(m
            .files
            .iter()
            .any(|f| f.path.starts_with("node=b_.._evil/")));
        assert_eq!(read_manifest(dir.path()).unwrap().files, m.files);
        assert!(verify_bundle(dir.path())
            .unwrap()
            .iter()
            .all(|c| c.problem.is_none()));
    }

    #[test]
    fn writing_the_same_rows_twice_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        let b = write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        assert_eq!(a.files, b.files);
        let c = write_bundle(dir.path(), vec![ev("a", T0, "/z")], &opts()).unwrap();
        assert_eq!(c.totals.files, 2);
    }

    #[test]
    fn verify_catches_one_changed_byte_and_unlisted_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        let seg = dir.path().join(&m.files[0].path);
        let mut bytes = fs::read(&seg).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        fs::copy(&seg, dir.path().join("stray.parquet")).unwrap();
        let checks = verify_bundle(dir.path()).unwrap();
        let bad: Vec<_> = checks.iter().filter(|c| c.problem.is_some()).collect();
        assert_eq!(bad.len(), 2, "{checks:?}");
        assert!(bad[0].problem.as_ref().unwrap().contains("sha256"));
        assert_eq!(bad[1].rel, "stray.parquet");
    }

    #[test]
    fn verify_tolerates_what_a_compaction_cut_short_leaves_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let m = write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        let seg = dir.path().join(&m.files[0].path);
        let hour_dir = seg.parent().unwrap();
        // An hour file not yet listed while its inputs are: a compaction cut short.
        fs::copy(&seg, hour_dir.join("hour-00000000000000aa.parquet")).unwrap();
        // A day file of the same date, likewise.
        let day_dir = hour_dir
            .parent()
            .unwrap()
            .join(format!("hour={DAY_PARTITION_HOUR}"));
        fs::create_dir_all(&day_dir).unwrap();
        fs::copy(&seg, day_dir.join("day-00000000000000bb.parquet")).unwrap();
        // A file the listed one replaces, awaiting deletion.
        let other = tempfile::tempdir().unwrap();
        let o = write_bundle(other.path(), vec![ev("a", T0, "/y")], &opts()).unwrap();
        let replaced = hour_dir.join("seg-replaced.parquet");
        fs::copy(other.path().join(&o.files[0].path), &replaced).unwrap();
        let mut m = read_manifest(dir.path()).unwrap();
        m.files[0].replaces = vec![o.files[0].sha256.clone()];
        write_manifest(dir.path(), &mut m).unwrap();
        // A scratch run in a hidden directory is not part of the bundle.
        fs::create_dir_all(dir.path().join(".compact-tmp")).unwrap();
        fs::copy(&seg, dir.path().join(".compact-tmp/run-000001.parquet")).unwrap();
        let checks = verify_bundle(dir.path()).unwrap();
        assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
        assert_eq!(checks.len(), 1);
        // An hour file whose directory lists nothing, and an unknown segment: reported.
        let lonely = dir.path().join("node=a/date=2025-11-20/hour=23");
        fs::create_dir_all(&lonely).unwrap();
        fs::copy(&seg, lonely.join("hour-00000000000000cc.parquet")).unwrap();
        fs::copy(&seg, hour_dir.join("seg-unknown.parquet")).unwrap();
        let bad: Vec<String> = verify_bundle(dir.path())
            .unwrap()
            .into_iter()
            .filter(|c| c.problem.is_some())
            .map(|c| c.rel)
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad
            .iter()
            .any(|r| r.ends_with("hour=23/hour-00000000000000cc.parquet")));
        assert!(bad.iter().any(|r| r.ends_with("seg-unknown.parquet")));
    }

    fn pod_row(node: &str, pod: &str, ip: &str) -> PodAddress {
        PodAddress {
            cluster: Some("c".into()),
            node: node.into(),
            namespace: "ns".into(),
            pod: pod.into(),
            ip: ip.into(),
            valid_from: T0,
            ..PodAddress::default()
        }
    }

    #[test]
    fn the_pods_table_sits_beside_the_events_listed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        let rows = vec![
            pod_row("a", "web-1", "10.0.0.2"),
            pod_row("b", "db-1", "10.0.0.3"),
        ];
        let m = write_pods(dir.path(), rows.clone(), "test").unwrap();
        assert_eq!(m.pods.len(), 2);
        assert_eq!(
            m.pods_schema_version.as_deref(),
            Some(crate::pods::pods_schema_version().as_str())
        );
        assert!(m.pods[0].path.starts_with("pods/node=a/pods-"));
        // The events are untouched: same segments, same totals.
        assert_eq!(m.totals.files, 1);
        // Writing the same rows again adds nothing.
        let again = write_pods(dir.path(), rows, "test").unwrap();
        assert_eq!(again.pods, m.pods);
        let b = open_bundle(dir.path()).unwrap();
        assert_eq!((b.segments.len(), b.pods.len()), (1, 2));
        let checks = verify_bundle(dir.path()).unwrap();
        assert_eq!(checks.len(), 3);
        assert!(checks.iter().all(|c| c.problem.is_none()), "{checks:?}");
        assert_eq!(
            check_pods_file(b.manifest.as_ref(), &b.pods[0]),
            Ok(m.pods[0].rows)
        );
        // One changed byte in a pods file, and a pods file the manifest does not list.
        let p = dir.path().join(&m.pods[1].path);
        let mut bytes = fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(&p, &bytes).unwrap();
        fs::copy(
            dir.path().join(&m.pods[0].path),
            dir.path().join("pods/node=a/pods-stray.parquet"),
        )
        .unwrap();
        let bad: Vec<_> = verify_bundle(dir.path())
            .unwrap()
            .into_iter()
            .filter_map(|c| c.problem.map(|p| (c.rel, p)))
            .collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].0.starts_with("pods/node=b/") && bad[0].1.contains("sha256"));
        assert!(bad[1].0.ends_with("pods-stray.parquet"));
        // A bare tree keeps the pods table apart from the segments.
        fs::remove_file(dir.path().join(MANIFEST)).unwrap();
        let bare = open_bundle(dir.path()).unwrap();
        assert_eq!((bare.segments.len(), bare.pods.len()), (1, 3));
    }

    #[test]
    fn a_manifest_with_another_pods_major_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_pods(dir.path(), vec![pod_row("a", "web-1", "10.0.0.2")], "t").unwrap();
        let p = dir.path().join(MANIFEST);
        let text = fs::read_to_string(&p).unwrap().replace(
            &format!(
                "\"pods_schema_version\": \"{}\"",
                crate::pods::pods_schema_version()
            ),
            "\"pods_schema_version\": \"3.0\"",
        );
        fs::write(&p, text).unwrap();
        let err = open_bundle(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("manifest.json") && err.contains("pods 3.0"),
            "{err}"
        );
    }

    #[test]
    fn bare_parquet_tree_opens_without_manifest() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        fs::remove_file(dir.path().join(MANIFEST)).unwrap();
        fs::write(dir.path().join("half.parquet.tmp"), b"partial").unwrap();
        let b = open_bundle(dir.path()).unwrap();
        assert!(b.manifest.is_none());
        assert_eq!(b.segments.len(), 1);
        assert!(b.segments[0].rel.starts_with("node=a/"));
    }

    #[test]
    fn manifest_with_unknown_major_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), vec![ev("a", T0, "/x")], &opts()).unwrap();
        let p = dir.path().join(MANIFEST);
        let text = fs::read_to_string(&p)
            .unwrap()
            .replace("\"schema_version\": \"1.0\"", "\"schema_version\": \"7.1\"");
        fs::write(&p, text).unwrap();
        let err = open_bundle(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("manifest.json") && err.contains("7.1"),
            "{err}"
        );
    }
}
