//! The store: a catalog of Parquet files that DuckDB queries in place (design §7).
//!
//! No row is copied into DuckDB. A merge checks every file of a bundle (checksum against the
//! manifest, footer, schema; on every core), records the good ones in the catalog and points
//! the `events` view at them:
//! - `files`: the Parquet files the view reads (sha256, path, node, rows, time range, counters,
//!   provenance);
//! - `replaced`: files whose rows another file holds (a collector's hour or day file, or this
//!   store's own compaction of small files): merging them again adds nothing;
//! - `bundles`: one row per merge of a bundle (root, producer, drops outside files);
//! - `events` (a temporary view): the contract's columns over every listed file, plus the
//!   rows `observe --live` appends in memory ([`Store::append_live`]);
//! - `pod_files` and the temporary view `pods`: the bundles' pods tables (who held which
//!   address when, design §3), checked as segments are, read in place and merged by the view
//!   into one history (each node's earlier snapshots stay listed); `pod_replaced`: pods table
//!   files a listed file holds (merged into it by a pull).
//!
//! A file is identified by its sha256: merging the same file twice, from the same bundle or
//! another copy of it, adds nothing. Bundles of many small files (`import`, the KubeArmor feed,
//! an hour a collector has not compacted yet) are compacted once, per partition, with the
//! collector's rules ([`karmor_contract::compact`]), so that no query pays DuckDB's per-file
//! cost again ([`compaction`]).
//!
//! Where files live: an in-memory store (`--bundle`) reads bundles where they lie and keeps
//! its compactions in a cache directory, reused by the next run over the same files. A store
//! file (`--store`, the plugin's cache) owns its files: they are hard-linked (or copied) into
//! `<store>.files/`, so that deleting or re-pulling a bundle never breaks the store.

mod catalog;
mod compaction;
mod merge;
mod migrate;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use duckdb::{params, Connection};
use karmor_contract::schema::{arrow_schema, Event};

use crate::bundle_source::BundleSource;
use crate::error::{AnalyzerError, Result};

pub use merge::{MergeProgress, MergeReport};

/// Days a compaction of [`Store::in_memory_with_cache`] is kept without being used.
pub const COMPACTION_CACHE_DAYS: u64 = 14;

/// A catalog of Parquet files (in a DuckDB file, or in memory) and the `events` view over them.
pub struct Store {
    conn: Connection,
    /// Where the store keeps the files it owns; `None` when it reads bundles in place.
    owned_dir: Option<PathBuf>,
    /// Where compactions of small files are written and found again.
    compactions: CompactionDir,
    /// Archives unpacked for an in-memory store: their files are read in place, so they live
    /// as long as the store.
    sources: Mutex<Vec<BundleSource>>,
}

/// Where [`Store`] writes its compactions of small files.
enum CompactionDir {
    /// A directory that outlives the store: a compaction is reused by any later merge of the
    /// same files.
    Kept(PathBuf),
    /// A temporary directory removed with the store.
    Scratch(tempfile::TempDir),
}

impl CompactionDir {
    fn path(&self) -> &Path {
        match self {
            CompactionDir::Kept(p) => p,
            CompactionDir::Scratch(t) => t.path(),
        }
    }
}

/// Stops the query running on a store's connection from another thread: the query fails with
/// an interruption error, and the next query runs normally (DuckDB clears the flag when a
/// query starts). Nothing happens when no query runs.
#[derive(Clone)]
pub struct Interrupter(std::sync::Arc<duckdb::InterruptHandle>);

impl Interrupter {
    /// Interrupts the query running now, if any.
    pub fn interrupt(&self) {
        self.0.interrupt();
    }
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupter")
    }
}

/// Counters that tell whether the evidence is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataHealth {
    /// Segments merged (a compacted file counts as the segments it holds when they were
    /// merged, as one when it came compacted).
    pub segments: u64,
    /// Parquet files the queries read.
    pub files: u64,
    /// Rows in the store.
    pub rows: u64,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events lost by producers (ring buffer full, unreadable log lines).
    pub events_dropped: u64,
}

/// The DuckDB column type of a contract column.
fn duckdb_type(t: &arrow_schema::DataType) -> &'static str {
    use arrow_schema::DataType;
    match t {
        DataType::Timestamp(_, _) => "TIMESTAMPTZ",
        DataType::UInt64 => "UBIGINT",
        DataType::UInt32 => "UINTEGER",
        DataType::UInt16 => "USMALLINT",
        DataType::Int32 => "INTEGER",
        DataType::Boolean => "BOOLEAN",
        DataType::List(_) => "VARCHAR[]",
        _ => "VARCHAR",
    }
}

/// `(name, DuckDB type, nullable)` of every contract column, in contract order.
fn columns() -> Vec<(String, &'static str, bool)> {
    arrow_schema()
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                duckdb_type(f.data_type()),
                f.is_nullable(),
            )
        })
        .collect()
}

impl Store {
    /// Opens (or creates) a store file. Its Parquet files live in `<path>.files/`, its
    /// compactions too. A store written by an older version (rows copied into DuckDB) is
    /// converted on the way: its rows become one Parquet file of the catalog.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|source| AnalyzerError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let owned = owned_dir(path);
        std::fs::create_dir_all(&owned).map_err(|e| io_error(&owned, e))?;
        let store = Store {
            conn,
            compactions: CompactionDir::Kept(owned.clone()),
            owned_dir: Some(owned),
            sources: Mutex::new(Vec::new()),
        };
        store.init()?;
        Ok(store)
    }

    /// An in-memory store (tests, one-shot offline analysis): bundles are read where they
    /// lie; compactions go to a temporary directory.
    pub fn in_memory() -> Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix("karmor-compactions-")
            .tempdir()
            .map_err(|e| io_error(Path::new("temporary directory"), e))?;
        Self::in_memory_at(CompactionDir::Scratch(scratch))
    }

    /// An in-memory store whose compactions of small files are kept in `cache`, so that the
    /// next run over the same files finds them instead of compacting again. Compactions not
    /// used for [`COMPACTION_CACHE_DAYS`] days are deleted.
    pub fn in_memory_with_cache(cache: &Path) -> Result<Self> {
        std::fs::create_dir_all(cache).map_err(|e| io_error(cache, e))?;
        compaction::evict_unused(cache, COMPACTION_CACHE_DAYS);
        Self::in_memory_at(CompactionDir::Kept(cache.to_path_buf()))
    }

    fn in_memory_at(compactions: CompactionDir) -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(AnalyzerError::store("open in memory"))?;
        let store = Store {
            conn,
            owned_dir: None,
            compactions,
            sources: Mutex::new(Vec::new()),
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        self.conn
            .execute_batch(
                "SET TimeZone = 'UTC';
                 -- Every query orders its own output, so scans need not keep file order.
                 SET preserve_insertion_order = false;
                 -- Parquet footers are read once per process, not once per query.
                 SET parquet_metadata_cache = true;",
            )
            .map_err(AnalyzerError::store("configure"))?;
        catalog::create(&self.conn)?;
        if let Some(dir) = &self.owned_dir {
            migrate::rows_table_to_parquet(&self.conn, dir)?;
        }
        self.forget_missing_files()?;
        self.refresh_view()
    }

    /// The DuckDB connection, for the query modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// A handle that stops the query running on this store, from any thread (see
    /// [`Interrupter`]).
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.conn.interrupt_handle())
    }

    /// Merges every file of the bundle at `root` (a directory, or a `.tar` of one). Fails
    /// only when the bundle cannot be opened at all; bad files are listed in the report and
    /// the others are merged.
    pub fn merge_bundle(&self, root: &Path) -> Result<MergeReport> {
        self.merge_bundle_with_progress(root, &mut |_| {})
    }

    /// [`Store::merge_bundle`], calling `progress` after each file checked and each batch of
    /// rows compacted or listed.
    pub fn merge_bundle_with_progress(
        &self,
        root: &Path,
        progress: &mut dyn FnMut(&MergeProgress),
    ) -> Result<MergeReport> {
        let source = BundleSource::open(root)?;
        let mut report = merge::merge(self, &source, progress)?;
        if self.is_persistent() && !report.merged.is_empty() {
            // A store file keeps the item and start-up digests of the files it holds: make
            // them now, so that the first `coverage` or `diff` does not pay for every file.
            progress(&MergeProgress {
                digesting: true,
                ..MergeProgress::default()
            });
            if let Err(e) = crate::drift::keep_digests(self) {
                report.problems.push((
                    root.to_path_buf(),
                    format!(
                        "merged, but the item digests drift queries read were not kept ({e}); the next coverage or diff makes them"
                    ),
                ));
            }
        }
        if self.owned_dir.is_none()
            && source.is_archive()
            && !(report.merged.is_empty() && report.pods_merged.is_empty())
        {
            // The view reads the unpacked files: keep them as long as the store.
            if let Ok(mut kept) = self.sources.lock() {
                kept.push(source);
            }
        }
        Ok(report)
    }

    /// Appends rows to the store's in-memory part (`observe --live`): they are part of the
    /// `events` view until the store is dropped, and never written to disk.
    pub fn append_live(&self, rows: &[Event]) -> Result<()> {
        catalog::append_live(&self.conn, rows)
    }

    /// Segment, file, row and drop counters over everything merged (and appended live).
    pub fn health(&self) -> Result<DataHealth> {
        catalog::health(&self.conn)
    }

    /// Points the `events` view at the files the catalog lists now.
    fn refresh_view(&self) -> Result<()> {
        let paths = catalog::listed_paths(&self.conn)?;
        let live = "SELECT * FROM live_events";
        let sql = if paths.is_empty() {
            format!("CREATE OR REPLACE TEMP VIEW events AS {live}")
        } else {
            format!(
                "CREATE OR REPLACE TEMP VIEW events AS {} UNION ALL {live}",
                parquet_select(&paths, false)
            )
        };
        self.conn
            .execute_batch(&sql)
            .map_err(AnalyzerError::store("create the events view"))?;
        self.refresh_pods_view()
    }

    /// Points the `pods` view (design §3's pods table) at the pods table files the catalog
    /// lists, merged as [`karmor_contract::pods::merge_snapshots`] merges snapshots: one row
    /// per (cluster, namespace, pod, pod_uid, ip, valid_from); the span is open when the
    /// latest file holding it open (a file's time: the latest time its rows mention) is no
    /// older than its latest recorded end, else it ends there; the other columns come from
    /// the latest file holding the span.
    fn refresh_pods_view(&self) -> Result<()> {
        let paths: Vec<String> = catalog::listed_pod_files(&self.conn)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let sql = if paths.is_empty() {
            "CREATE OR REPLACE TEMP VIEW pods AS
             SELECT NULL::VARCHAR AS cluster, NULL::VARCHAR AS node, NULL::VARCHAR AS namespace,
                    NULL::VARCHAR AS pod, NULL::VARCHAR AS pod_uid,
                    NULL::VARCHAR AS workload_kind, NULL::VARCHAR AS workload,
                    NULL::VARCHAR[] AS labels, NULL::BOOLEAN AS host_network,
                    NULL::VARCHAR AS ip, NULL::TIMESTAMPTZ AS valid_from,
                    NULL::TIMESTAMPTZ AS valid_to, NULL::VARCHAR AS kind,
                    NULL::VARCHAR[] AS ports
             WHERE false"
                .to_string()
        } else {
            let list = paths
                .iter()
                .map(|p| sql_string(p))
                .collect::<Vec<_>>()
                .join(", ");
            // Pods schema 1.1 columns: read when some file has them, else null.
            let has_1_1: i64 = self
                .conn
                .query_row(
                    &format!("SELECT count(*) FROM parquet_schema([{list}]) WHERE name = 'kind'"),
                    [],
                    |r| r.get(0),
                )
                .map_err(AnalyzerError::store("read the pods tables' schema"))?;
            let extra = if has_1_1 > 0 {
                "CAST(kind AS VARCHAR) AS kind, CAST(ports AS VARCHAR[]) AS ports"
            } else {
                "NULL::VARCHAR AS kind, NULL::VARCHAR[] AS ports"
            };
            format!(
                "CREATE OR REPLACE TEMP VIEW pods AS
                 WITH spans AS (
                   SELECT *, max(greatest(valid_from, coalesce(valid_to, valid_from)))
                               OVER (PARTITION BY filename) AS snapshot_time
                   FROM (SELECT CAST(cluster AS VARCHAR) AS cluster, CAST(node AS VARCHAR) AS node,
                                CAST(namespace AS VARCHAR) AS namespace, CAST(pod AS VARCHAR) AS pod,
                                CAST(pod_uid AS VARCHAR) AS pod_uid,
                                CAST(workload_kind AS VARCHAR) AS workload_kind,
                                CAST(workload AS VARCHAR) AS workload,
                                CAST(labels AS VARCHAR[]) AS labels,
                                CAST(host_network AS BOOLEAN) AS host_network,
                                CAST(ip AS VARCHAR) AS ip,
                                CAST(valid_from AS TIMESTAMPTZ) AS valid_from,
                                CAST(valid_to AS TIMESTAMPTZ) AS valid_to, {extra}, filename
                         FROM read_parquet([{list}], hive_partitioning = false,
                                           union_by_name = true, filename = true)))
                 SELECT cluster, arg_max(node, snapshot_time) AS node, namespace, pod, pod_uid,
                        arg_max(workload_kind, snapshot_time) AS workload_kind,
                        arg_max(workload, snapshot_time) AS workload,
                        arg_max(labels, snapshot_time) AS labels,
                        arg_max(host_network, snapshot_time) AS host_network, ip, valid_from,
                        CASE WHEN max(snapshot_time) FILTER (WHERE valid_to IS NULL)
                                  >= coalesce(max(valid_to), '-infinity'::TIMESTAMPTZ)
                             THEN NULL ELSE max(valid_to) END AS valid_to,
                        arg_max(kind, snapshot_time) AS kind,
                        arg_max(ports, snapshot_time) AS ports
                 FROM spans
                 GROUP BY cluster, namespace, pod, pod_uid, ip, valid_from"
            )
        };
        self.conn
            .execute_batch(&sql)
            .map_err(AnalyzerError::store("create the pods view"))
    }

    /// `(sha256, path)` of every file the `events` view reads.
    pub(crate) fn listed_files(&self) -> Result<Vec<(String, String)>> {
        catalog::listed(&self.conn)
    }

    /// Whether `observe --live` has appended rows to this store (they are not in any file).
    pub(crate) fn has_live_rows(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT count(*) > 0 FROM live_events", [], |r| r.get(0))
            .map_err(AnalyzerError::store("count live rows"))
    }

    /// Whether the store lives in a file (`--store`, the plugin's cache): what it learns
    /// about its files (e.g. drift's item digests) is kept for the next command.
    pub(crate) fn is_persistent(&self) -> bool {
        self.owned_dir.is_some()
    }

    /// Drops from the catalog the files that are no longer readable (a store's directory
    /// cleaned by hand, a bundle moved away), so that the rest still answers; says which on
    /// standard error.
    fn forget_missing_files(&self) -> Result<()> {
        let gone: Vec<(String, String)> = catalog::listed(&self.conn)?
            .into_iter()
            .filter(|(_, path)| !Path::new(path).is_file())
            .collect();
        let gone_pods: Vec<(String, String)> = catalog::listed_pod_files(&self.conn)?
            .into_iter()
            .filter(|(_, path)| !Path::new(path).is_file())
            .collect();
        for (sha, path) in &gone_pods {
            eprintln!("warning: {path} is gone: its pods table rows are no longer in the store");
            self.conn
                .execute("DELETE FROM pod_files WHERE sha256 = ?", params![sha])
                .map_err(AnalyzerError::store("forget a missing file"))?;
        }
        for (sha, path) in &gone {
            eprintln!(
                "warning: {path} is gone: its rows are no longer in the store (merge its bundle again to restore them)"
            );
            self.conn
                .execute("DELETE FROM files WHERE sha256 = ?", params![sha])
                .map_err(AnalyzerError::store("forget a missing file"))?;
        }
        Ok(())
    }
}

impl Store {
    /// Where the view reads `path` (a good file of a merged bundle, sha256 `sha`): in place
    /// for an in-memory store; for a store file, a hard link (or a copy, across file systems)
    /// in its own directory, so that the store outlives the bundle.
    fn own(&self, path: &Path, sha: &str) -> std::result::Result<PathBuf, String> {
        let Some(dir) = &self.owned_dir else {
            return std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()));
        };
        let target = dir.join(format!("{sha}.parquet"));
        if target.is_file() {
            return Ok(target);
        }
        if std::fs::hard_link(path, &target).is_ok() {
            return Ok(target);
        }
        let tmp = karmor_contract::segment::tmp_path(&target);
        std::fs::copy(path, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &target))
            .map_err(|e| {
                format!(
                    "cannot copy {} into the store ({}): {e}",
                    path.display(),
                    dir.display()
                )
            })?;
        Ok(target)
    }

    /// Deletes a file the store no longer lists, if it is one of its own.
    fn delete_owned(&self, path: &Path) {
        if let Some(dir) = &self.owned_dir {
            if path.starts_with(dir) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The directory where a store file keeps its Parquet files: `<store>.files`.
pub fn owned_dir(store: &Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map_or_else(|| std::ffi::OsString::from("store"), |n| n.to_os_string());
    name.push(".files");
    store.with_file_name(name)
}

/// A `SELECT` of the contract's columns over the Parquet files at `paths` (not empty), as the
/// `events` view reads them; with `filename`, also each row's file path as `filename`.
pub(crate) fn parquet_select(paths: &[String], filename: bool) -> String {
    // Paths come from the catalog, not from a user's query text; they are quoted as SQL
    // string literals because table functions take no bound lists. The casts give other
    // writers' spellings of the contract (microsecond timestamps, signed integers) the
    // store's types; on our own files they are no-ops.
    let list = paths
        .iter()
        .map(|p| sql_string(p))
        .collect::<Vec<_>>()
        .join(", ");
    let mut select = columns()
        .iter()
        .map(|(c, t, _)| format!("CAST(\"{c}\" AS {t}) AS \"{c}\""))
        .collect::<Vec<_>>();
    if filename {
        select.push("filename".to_string());
    }
    format!(
        "SELECT {} FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true, filename = {filename})",
        select.join(", ")
    )
}

/// Quotes text as a DuckDB string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn io_error(path: &Path, e: std::io::Error) -> AnalyzerError {
    AnalyzerError::Bundle(karmor_contract::ContractError::io(path, e))
}
