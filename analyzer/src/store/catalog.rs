//! The catalog's tables and the statements that read and change them.

use std::collections::{HashMap, HashSet};

use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Connection};
use karmor_contract::schema::Event;
use karmor_contract::segment::events_to_batch;

use super::columns;
use crate::error::{AnalyzerError, Result};

/// Where a listed file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file of a merged bundle (a segment, or a collector's hour or day file).
    Bundle,
    /// This store's compaction of small files of a bundle.
    Compaction,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Bundle => "bundle",
            Origin::Compaction => "compaction",
        }
    }
}

/// A file the `events` view reads.
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Where the view reads it.
    pub path: String,
    /// The bundle it was merged from, as the user named it.
    pub bundle: String,
    /// Its path inside that bundle (for a compaction: the partition it compacts).
    pub rel: String,
    /// Node its rows come from.
    pub node: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// Earliest `ts_first` and latest `ts_last`, ns since the epoch, when known.
    pub span: Option<(i64, i64)>,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events lost while its windows were open.
    pub events_dropped: u64,
    /// Who wrote it.
    pub producer: String,
    /// Where it came from.
    pub origin: Origin,
}

/// A file whose rows another file holds.
#[derive(Debug, Clone)]
pub struct ReplacedRecord {
    /// Its sha256.
    pub sha256: String,
    /// The sha256 of the file that holds its rows.
    pub by: String,
    /// Where it was read from, when this store read it (empty when it was only named by a
    /// manifest's `replaces`).
    pub path: String,
    /// The bundle that named it.
    pub bundle: String,
}

/// Creates the catalog's tables and the in-memory table of live rows.
pub fn create(conn: &Connection) -> Result<()> {
    let live_cols: Vec<String> = columns()
        .iter()
        .map(|(c, t, nullable)| {
            let null = if *nullable { "" } else { " NOT NULL" };
            format!("\"{c}\" {t}{null}")
        })
        .collect();
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS files (
             sha256 VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, bundle VARCHAR NOT NULL,
             rel VARCHAR NOT NULL, node VARCHAR NOT NULL, rows UBIGINT NOT NULL,
             bytes UBIGINT NOT NULL, first TIMESTAMPTZ, last TIMESTAMPTZ,
             events_seen UBIGINT NOT NULL, events_dropped UBIGINT NOT NULL,
             producer VARCHAR NOT NULL, origin VARCHAR NOT NULL,
             merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS replaced (
             sha256 VARCHAR PRIMARY KEY, by_sha256 VARCHAR NOT NULL, path VARCHAR NOT NULL,
             bundle VARCHAR NOT NULL, merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS bundles (
             root VARCHAR NOT NULL, producer VARCHAR,
             events_dropped_unattributed UBIGINT NOT NULL,
             merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS pod_files (
             sha256 VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, bundle VARCHAR NOT NULL,
             rel VARCHAR NOT NULL, node VARCHAR NOT NULL, rows UBIGINT NOT NULL,
             merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS pod_replaced (
             sha256 VARCHAR PRIMARY KEY, by_sha256 VARCHAR NOT NULL,
             merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TEMP TABLE IF NOT EXISTS live_events ({});",
        live_cols.join(", ")
    );
    conn.execute_batch(&ddl)
        .map_err(AnalyzerError::store("create the catalog"))
}

/// Every sha256 the store holds the rows of: listed files and the files they replace.
pub fn known(conn: &Connection) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for sql in ["SELECT sha256 FROM files", "SELECT sha256 FROM replaced"] {
        let mut stmt = conn
            .prepare(sql)
            .map_err(AnalyzerError::store("read the catalog"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(AnalyzerError::store("read the catalog"))?;
        for sha in rows {
            out.insert(sha.map_err(AnalyzerError::store("read the catalog"))?);
        }
    }
    Ok(out)
}

/// `(sha256, path)` of every listed file.
pub fn listed(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT sha256, path FROM files ORDER BY path")
        .map_err(AnalyzerError::store("read the catalog"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(AnalyzerError::store("read the catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the catalog"))
}

/// Paths of every listed file, the `events` view's inputs.
pub fn listed_paths(conn: &Connection) -> Result<Vec<String>> {
    Ok(listed(conn)?.into_iter().map(|(_, p)| p).collect())
}

/// Every listed file: sha256 → (path, origin).
pub fn listed_by_sha(conn: &Connection) -> Result<HashMap<String, (String, Origin)>> {
    let mut stmt = conn
        .prepare("SELECT sha256, path, origin FROM files")
        .map_err(AnalyzerError::store("read the catalog"))?;
    let rows = stmt
        .query_map([], |r| {
            let origin = if r.get::<_, String>(2)? == "compaction" {
                Origin::Compaction
            } else {
                Origin::Bundle
            };
            Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, origin)))
        })
        .map_err(AnalyzerError::store("read the catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the catalog"))
}

/// The sha256 of every listed compaction of this store.
pub fn compactions(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT sha256 FROM files WHERE origin = 'compaction' ORDER BY sha256")
        .map_err(AnalyzerError::store("read the catalog"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(AnalyzerError::store("read the catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the catalog"))
}

/// The files a compaction of this store replaced: `(sha256, path)`.
pub fn inputs_of(conn: &Connection, by: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT sha256, path FROM replaced WHERE by_sha256 = ? ORDER BY path")
        .map_err(AnalyzerError::store("read the catalog"))?;
    let rows = stmt
        .query_map(params![by], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(AnalyzerError::store("read the catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the catalog"))
}

/// What one merge changes in the catalog, applied in one transaction.
#[derive(Debug, Default)]
pub struct Change {
    /// Files to list.
    pub add: Vec<FileRecord>,
    /// Files whose rows another file holds now (listed ones are unlisted).
    pub replace: Vec<ReplacedRecord>,
    /// Listed files to unlist without a replacement record (a compaction of this store
    /// whose inputs are listed again, or replaced, one by one).
    pub unlist: Vec<String>,
    /// The bundle's drops outside files: `(root, producer, dropped)`.
    pub bundle: Option<(String, Option<String>, u64)>,
}

/// Applies `change` in one transaction: all of it or nothing.
pub fn apply(conn: &Connection, change: &Change) -> Result<()> {
    let ctx = "record the merge";
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(AnalyzerError::store(ctx))?;
    let result = (|| -> Result<()> {
        let now = now_value();
        // Thousands of files change at once (a day file replaces 1,440 minutes): set
        // operations through a temporary table, not a statement per file.
        conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE change_unlist (sha256 VARCHAR);
             CREATE OR REPLACE TEMP TABLE change_replaced (sha256 VARCHAR, by_sha256 VARCHAR, path VARCHAR, bundle VARCHAR);
             CREATE OR REPLACE TEMP TABLE change_added (sha256 VARCHAR);",
        )
        .map_err(AnalyzerError::store(ctx))?;
        {
            let mut unlist = conn
                .appender("change_unlist")
                .map_err(AnalyzerError::store(ctx))?;
            for sha in change
                .unlist
                .iter()
                .chain(change.replace.iter().map(|r| &r.sha256))
            {
                unlist
                    .append_row(params![sha])
                    .map_err(AnalyzerError::store(ctx))?;
            }
            unlist.flush().map_err(AnalyzerError::store(ctx))?;
            let mut replaced = conn
                .appender("change_replaced")
                .map_err(AnalyzerError::store(ctx))?;
            for r in &change.replace {
                replaced
                    .append_row(params![r.sha256, r.by, r.path, r.bundle])
                    .map_err(AnalyzerError::store(ctx))?;
            }
            replaced.flush().map_err(AnalyzerError::store(ctx))?;
            let mut added = conn
                .appender("change_added")
                .map_err(AnalyzerError::store(ctx))?;
            for f in &change.add {
                added
                    .append_row(params![f.sha256])
                    .map_err(AnalyzerError::store(ctx))?;
            }
            added.flush().map_err(AnalyzerError::store(ctx))?;
        }
        conn.execute(
            "DELETE FROM files WHERE sha256 IN (SELECT sha256 FROM change_unlist)",
            [],
        )
        .map_err(AnalyzerError::store(ctx))?;
        // A file replaced twice keeps its first record; a file listed again (its compaction
        // undone) is no longer replaced.
        conn.execute(
            "INSERT INTO replaced (sha256, by_sha256, path, bundle, merged_at)
             SELECT sha256, any_value(by_sha256), any_value(path), any_value(bundle), ?
             FROM change_replaced
             WHERE sha256 NOT IN (SELECT sha256 FROM replaced)
             GROUP BY sha256",
            params![now.clone()],
        )
        .map_err(AnalyzerError::store(ctx))?;
        conn.execute(
            "DELETE FROM replaced WHERE sha256 IN (SELECT sha256 FROM change_added)",
            [],
        )
        .map_err(AnalyzerError::store(ctx))?;
        let mut app = conn.appender("files").map_err(AnalyzerError::store(ctx))?;
        for f in &change.add {
            let (first, last) = match f.span {
                Some((a, b)) => (ts_value(a), ts_value(b)),
                None => (Value::Null, Value::Null),
            };
            app.append_row(params![
                f.sha256,
                f.path,
                f.bundle,
                f.rel,
                f.node,
                f.rows,
                f.bytes,
                first,
                last,
                f.events_seen,
                f.events_dropped,
                f.producer,
                f.origin.as_str(),
                now.clone()
            ])
            .map_err(AnalyzerError::store(ctx))?;
        }
        app.flush().map_err(AnalyzerError::store(ctx))?;
        drop(app);
        if let Some((root, producer, dropped)) = &change.bundle {
            // Unattributed drops are recorded once per distinct bundle content.
            let known: i64 = conn
                .query_row(
                    "SELECT count(*) FROM bundles WHERE root = ? AND producer IS NOT DISTINCT FROM ? AND events_dropped_unattributed = ?",
                    params![root, producer, dropped],
                    |r| r.get(0),
                )
                .map_err(AnalyzerError::store(ctx))?;
            if known == 0 {
                conn.execute(
                    "INSERT INTO bundles (root, producer, events_dropped_unattributed) VALUES (?, ?, ?)",
                    params![root, producer, dropped],
                )
                .map_err(AnalyzerError::store(ctx))?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .map_err(AnalyzerError::store(ctx)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Appends rows to the in-memory `live_events` table.
pub fn append_live(conn: &Connection, rows: &[Event]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let batch = events_to_batch(rows);
    let mut app = conn
        .appender("live_events")
        .map_err(AnalyzerError::store("append live rows"))?;
    app.append_record_batch(batch)
        .map_err(AnalyzerError::store("append live rows"))?;
    app.flush()
        .map_err(AnalyzerError::store("append live rows"))?;
    Ok(())
}

/// A file of the pods table the store lists.
#[derive(Debug, Clone)]
pub struct PodFileRecord {
    /// Its sha256.
    pub sha256: String,
    /// Where the `pods` view reads it.
    pub path: String,
    /// The bundle it came from.
    pub bundle: String,
    /// Its path inside that bundle.
    pub rel: String,
    /// The node (writer) it came from.
    pub node: String,
    /// Its rows.
    pub rows: u64,
}

/// The sha256 of every pods table file listed, and of those a listed file holds (merged into
/// it, its manifest entry's `replaces`).
pub fn known_pod_files(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn
        .prepare("SELECT sha256 FROM pod_files UNION SELECT sha256 FROM pod_replaced")
        .map_err(AnalyzerError::store("read the pods catalog"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(AnalyzerError::store("read the pods catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the pods catalog"))
}

/// Lists pods table files.
pub fn add_pod_files(conn: &Connection, records: &[PodFileRecord]) -> Result<()> {
    for r in records {
        conn.execute(
            "INSERT OR IGNORE INTO pod_files (sha256, path, bundle, rel, node, rows)
             VALUES (?, ?, ?, ?, ?, ?)",
            duckdb::params![r.sha256, r.path, r.bundle, r.rel, r.node, r.rows],
        )
        .map_err(AnalyzerError::store("list a pods table file"))?;
    }
    Ok(())
}

/// Records that the pods table file `sha256` is held by the file `by_sha256` (merged into it),
/// so that merging it again adds nothing.
pub fn add_pod_replaced(conn: &Connection, sha256: &str, by_sha256: &str) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO pod_replaced (sha256, by_sha256) VALUES (?, ?)",
        duckdb::params![sha256, by_sha256],
    )
    .map(|_| ())
    .map_err(AnalyzerError::store("record a merged pods table file"))
}

/// Unlists a pods table file.
pub fn remove_pod_file(conn: &Connection, sha256: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM pod_files WHERE sha256 = ?",
        duckdb::params![sha256],
    )
    .map(|_| ())
    .map_err(AnalyzerError::store("unlist a pods table file"))
}

/// Every listed pods table file: (sha256, path).
pub fn listed_pod_files(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT sha256, path FROM pod_files ORDER BY path")
        .map_err(AnalyzerError::store("read the pods catalog"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(AnalyzerError::store("read the pods catalog"))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store("read the pods catalog"))
}

/// Counters over the catalog and the live rows.
pub fn health(conn: &Connection) -> Result<super::DataHealth> {
    conn.query_row(
        "SELECT
             (SELECT count(*) FROM files WHERE origin = 'bundle')
               + (SELECT count(*) FROM replaced r WHERE r.path <> ''
                    AND NOT EXISTS (SELECT 1 FROM replaced c WHERE c.by_sha256 = r.sha256)),
             (SELECT count(*) FROM files),
             (SELECT coalesce(sum(rows), 0) FROM files) + (SELECT count(*) FROM live_events),
             (SELECT coalesce(sum(events_seen), 0) FROM files)
               + (SELECT coalesce(sum(count), 0) FROM live_events),
             (SELECT coalesce(sum(events_dropped), 0) FROM files)
               + (SELECT coalesce(sum(d), 0) FROM
                   (SELECT max(events_dropped_unattributed) AS d FROM bundles GROUP BY root))",
        [],
        |r| {
            Ok(super::DataHealth {
                segments: r.get::<_, i64>(0)? as u64,
                files: r.get::<_, i64>(1)? as u64,
                rows: r.get::<_, i64>(2)? as u64,
                events_seen: r.get::<_, i64>(3)? as u64,
                events_dropped: r.get::<_, i64>(4)? as u64,
            })
        },
    )
    .map_err(AnalyzerError::store("read counters"))
}

fn ts_value(ns: i64) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, ns / 1000)
}

fn now_value() -> Value {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    Value::Timestamp(TimeUnit::Microsecond, micros)
}
