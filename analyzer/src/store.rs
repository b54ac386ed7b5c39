//! The DuckDB store: bundles merged into one file, idempotently, with provenance.
//!
//! Tables:
//! - `events`: the contract's columns plus `segment` (the sha256 of the file a row came from);
//! - `segments`: one row per merged segment file (sha256, bundle, path, node, rows, counters);
//! - `bundles`: one row per merge of a bundle (root, producer, drops outside segments).
//!
//! A segment is identified by its sha256: merging the same file twice, from the same bundle or
//! another copy of it, adds nothing. Each merge checks every segment (checksum against the
//! manifest, footer, schema version; on every core) and reports the bad ones by path; the good
//! ones land, in up to 8 transactions of at least 500k rows each, reported to a progress
//! callback. Each transaction's rows are sorted by (namespace, op) on the way in, which keeps
//! namespace-scoped queries to a fraction of the row groups.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use arrow_schema::DataType;
use duckdb::{params, Connection};
use karmor_contract::bundle::{open_bundle, SegmentRef};
use karmor_contract::schema::{arrow_schema, COLUMNS};
use karmor_contract::segment::{read_footer, sha256_file, SegmentFooter};

use crate::bundle_source::BundleSource;
use crate::error::{AnalyzerError, Result};

/// A DuckDB file (or in-memory database) holding merged bundles.
pub struct Store {
    conn: Connection,
}

/// What one [`Store::merge_bundle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// The bundle root.
    pub bundle: PathBuf,
    /// Segments merged now.
    pub merged: Vec<PathBuf>,
    /// Rows added.
    pub rows: u64,
    /// Segments already in the store (same sha256), skipped.
    pub already_present: Vec<PathBuf>,
    /// Segments that could not be merged, with the reason. The rest of the bundle still landed.
    pub problems: Vec<(PathBuf, String)>,
}

/// How far a merge has got, reported to [`Store::merge_bundle_with_progress`]'s callback after
/// each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeProgress {
    /// Segments checked (checksum, footer, schema) so far.
    pub checked: usize,
    /// Segments in the bundle.
    pub segments: usize,
    /// Rows inserted so far.
    pub rows_done: u64,
    /// Rows to insert (known once every segment is checked; 0 before).
    pub rows_total: u64,
}

/// Rows inserted per statement at least, so that a progress report comes every few seconds at
/// most while the statements stay large enough for DuckDB to read their files in parallel.
const MIN_ROWS_PER_STEP: u64 = 500_000;
/// Steps a large merge is cut into. Each step sorts its rows, and fewer, larger sorts are
/// cheaper: at 10M rows 8 steps merge in 29.2-29.4 s against 32.9-33.3 s for 16 (alternating
/// runs), for a peak of 3.4 GiB against 2.7 GiB.
const STEPS: u64 = 8;

/// Counters that tell whether the evidence is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataHealth {
    /// Segments in the store.
    pub segments: u64,
    /// Rows in the store.
    pub rows: u64,
    /// Raw events the rows stand for.
    pub events_seen: u64,
    /// Events lost by producers (ring buffer full, unreadable log lines).
    pub events_dropped: u64,
}

/// The DuckDB column type of a contract column.
fn duckdb_type(t: &DataType) -> &'static str {
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

impl Store {
    /// Opens (or creates) a store file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|source| AnalyzerError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::init(conn)
    }

    /// An in-memory store (tests, one-shot offline analysis).
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(AnalyzerError::store("open in memory"))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self> {
        let schema = arrow_schema();
        let cols: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "" } else { " NOT NULL" };
                format!("\"{}\" {}{null}", f.name(), duckdb_type(f.data_type()))
            })
            .collect();
        let ddl = format!(
            "SET TimeZone = 'UTC';
             -- Every query orders its own output, so inserts need not keep file order: this
             -- lets DuckDB insert the segments of a merge in parallel.
             SET preserve_insertion_order = false;
             CREATE TABLE IF NOT EXISTS events ({}, segment VARCHAR NOT NULL);
             CREATE TABLE IF NOT EXISTS segments (
                 sha256 VARCHAR PRIMARY KEY, bundle VARCHAR NOT NULL, path VARCHAR NOT NULL,
                 node VARCHAR NOT NULL, rows UBIGINT NOT NULL, events_seen UBIGINT NOT NULL,
                 events_dropped UBIGINT NOT NULL, producer VARCHAR NOT NULL,
                 merged_at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS bundles (
                 root VARCHAR NOT NULL, producer VARCHAR, events_dropped_unattributed UBIGINT NOT NULL,
                 merged_at TIMESTAMPTZ NOT NULL DEFAULT now());",
            cols.join(", ")
        );
        conn.execute_batch(&ddl)
            .map_err(AnalyzerError::store("create tables"))?;
        Ok(Store { conn })
    }

    /// The DuckDB connection, for the query modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Merges every segment of the bundle at `root` (a directory, or a `.tar` of one). Fails
    /// only when the bundle cannot be opened at all; bad segments are listed in the report and
    /// the others are merged.
    pub fn merge_bundle(&self, root: &Path) -> Result<MergeReport> {
        self.merge_bundle_with_progress(root, &mut |_| {})
    }

    /// [`Store::merge_bundle`], calling `progress` after each segment checked and each batch of
    /// rows inserted (a large merge lands in up to 8 transactions, each all or nothing).
    pub fn merge_bundle_with_progress(
        &self,
        root: &Path,
        progress: &mut dyn FnMut(&MergeProgress),
    ) -> Result<MergeReport> {
        let source = BundleSource::open(root)?;
        let bundle = open_bundle(source.root())?;
        let mut report = MergeReport {
            bundle: root.to_path_buf(),
            ..MergeReport::default()
        };
        for (entry, why) in source.skipped() {
            report
                .problems
                .push((root.to_path_buf(), format!("entry {entry}: {why}")));
        }
        let present = self.present_segments()?;
        let mut seen_now = HashSet::new();
        let mut todo: Vec<(SegmentRef, String, SegmentFooter)> = Vec::new();
        let mut state = MergeProgress {
            segments: bundle.segments.len(),
            ..MergeProgress::default()
        };
        let checks = check_segments(&bundle.segments, &mut |checked| {
            state.checked = checked;
            progress(&state);
        });
        for (seg, check) in bundle.segments.into_iter().zip(checks) {
            match check {
                Err(problem) => report.problems.push((seg.path, problem)),
                Ok((sha, _)) if present.contains(&sha) || seen_now.contains(&sha) => {
                    report.already_present.push(seg.path)
                }
                Ok((sha, footer)) => {
                    seen_now.insert(sha.clone());
                    todo.push((seg, sha, footer));
                }
            }
        }
        let root_text = root.display().to_string();
        state.rows_total = todo.iter().map(|(_, _, f)| f.rows).sum();
        progress(&state);
        let step_rows = (state.rows_total / STEPS).max(MIN_ROWS_PER_STEP);
        for step in steps(&todo, step_rows) {
            if self.insert_all(&root_text, step).is_err() {
                // One file fails somewhere inside its pages: find it by merging one at a time.
                for item in step {
                    if let Err(e) = self.insert_all(&root_text, std::slice::from_ref(item)) {
                        report.problems.push((item.0.path.clone(), e.to_string()));
                    }
                }
            }
            state.rows_done += step.iter().map(|(_, _, f)| f.rows).sum::<u64>();
            progress(&state);
        }
        let failed: HashSet<&PathBuf> = report.problems.iter().map(|(p, _)| p).collect();
        for (seg, _, footer) in &todo {
            if !failed.contains(&seg.path) {
                // Paths inside an unpacked archive are shown inside the archive.
                report.merged.push(source.shown(&seg.path));
                report.rows += footer.rows;
            }
        }
        for path in &mut report.already_present {
            *path = source.shown(path);
        }
        for (path, why) in &mut report.problems {
            *why = source.shown_text(why);
            *path = source.shown(path);
        }
        if !report.merged.is_empty() || bundle.manifest.is_some() {
            let dropped = bundle
                .manifest
                .as_ref()
                .map_or(0, |m| m.dropped_outside_segments());
            let producer = bundle.manifest.as_ref().map(|m| m.producer.clone());
            // Record unattributed drops once per distinct bundle content.
            let known: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM bundles WHERE root = ? AND producer IS NOT DISTINCT FROM ? AND events_dropped_unattributed = ?",
                    params![root_text, producer, dropped],
                    |r| r.get(0),
                )
                .map_err(AnalyzerError::store("read bundles"))?;
            if known == 0 {
                self.conn
                    .execute(
                        "INSERT INTO bundles (root, producer, events_dropped_unattributed) VALUES (?, ?, ?)",
                        params![root_text, producer, dropped],
                    )
                    .map_err(AnalyzerError::store("record bundle"))?;
            }
        }
        Ok(report)
    }

    fn present_segments(&self) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256 FROM segments")
            .map_err(AnalyzerError::store("read segments"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(AnalyzerError::store("read segments"))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store("read segments"))
    }

    /// Inserts the rows of `items` in one transaction: all land or none.
    fn insert_all(&self, root: &str, items: &[(SegmentRef, String, SegmentFooter)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let ctx = "merge segments";
        self.conn
            .execute_batch(
                "BEGIN TRANSACTION; CREATE OR REPLACE TEMP TABLE merge_files (filename VARCHAR, sha VARCHAR);",
            )
            .map_err(AnalyzerError::store(ctx))?;
        let result = (|| -> Result<()> {
            {
                let mut app = self
                    .conn
                    .appender("merge_files")
                    .map_err(AnalyzerError::store(ctx))?;
                for (seg, sha, _) in items {
                    app.append_row(params![seg.path.display().to_string(), sha])
                        .map_err(AnalyzerError::store(ctx))?;
                }
            }
            // Paths come from the file system, not from the user's query text; they are
            // quoted as SQL string literals because table functions take no bound lists.
            let list = items
                .iter()
                .map(|(seg, _, _)| sql_string(&seg.path.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            let cols = COLUMNS
                .iter()
                .map(|c| format!("p.\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            // Each step lands sorted by (namespace, op), so that a row group holds few
            // namespaces and operations and the zone maps let namespace-scoped queries skip
            // the rest. At 10M rows this costs the merge about 15 % and makes `observe pods
            // -n NS` about 40 % faster (the filtered one two to three times).
            let sql = format!(
                "INSERT INTO events SELECT {cols}, f.sha FROM read_parquet([{list}], filename = true, hive_partitioning = false) p JOIN merge_files f ON p.filename = f.filename ORDER BY p.namespace, p.op"
            );
            self.conn
                .execute_batch(&sql)
                .map_err(AnalyzerError::store(ctx))?;
            // One appender instead of a statement per segment: thousands of segments per
            // merge are normal (a collector writes one per node and window).
            let merged_at = duckdb::types::Value::Timestamp(
                duckdb::types::TimeUnit::Microsecond,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            );
            let mut app = self
                .conn
                .appender("segments")
                .map_err(AnalyzerError::store(ctx))?;
            for (seg, sha, footer) in items {
                app.append_row(params![
                    sha,
                    root,
                    seg.rel,
                    footer.meta.node,
                    footer.rows,
                    footer.meta.events_seen,
                    footer.meta.events_dropped,
                    footer.meta.producer,
                    merged_at
                ])
                .map_err(AnalyzerError::store(ctx))?;
            }
            app.flush().map_err(AnalyzerError::store(ctx))?;
            Ok(())
        })();
        match result {
            Ok(()) => self
                .conn
                .execute_batch("COMMIT")
                .map_err(AnalyzerError::store(ctx)),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Segment, row and drop counters over everything merged.
    pub fn health(&self) -> Result<DataHealth> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(events_seen), 0),
                        coalesce(sum(events_dropped), 0) + (SELECT coalesce(sum(d), 0) FROM
                          (SELECT max(events_dropped_unattributed) AS d FROM bundles GROUP BY root))
                 FROM segments",
                [],
                |r| {
                    Ok(DataHealth {
                        segments: r.get::<_, i64>(0)? as u64,
                        rows: r.get::<_, i64>(1)? as u64,
                        events_seen: r.get::<_, i64>(2)? as u64,
                        events_dropped: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .map_err(AnalyzerError::store("read counters"))
    }
}

/// Cuts the segments to insert into consecutive runs of at least `target` rows (the last run
/// may be shorter).
fn steps<T>(
    todo: &[(T, String, SegmentFooter)],
    target: u64,
) -> Vec<&[(T, String, SegmentFooter)]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, (_, _, footer)) in todo.iter().enumerate() {
        rows += footer.rows;
        if rows >= target {
            out.push(&todo[start..=i]);
            (start, rows) = (i + 1, 0);
        }
    }
    if start < todo.len() {
        out.push(&todo[start..]);
    }
    out
}

/// Checks a segment before merging: checksum against the manifest, then footer and schema.
fn check_segment(seg: &SegmentRef) -> Check {
    let sha = sha256_file(&seg.path).map_err(|e| e.to_string())?;
    if let Some(listed) = &seg.listed {
        if listed.sha256 != sha {
            return Err(format!(
                "{}: sha256 {sha} does not match the manifest ({}): the file changed or is corrupt",
                seg.path.display(),
                listed.sha256
            ));
        }
    }
    let footer = read_footer(&seg.path).map_err(|e| e.to_string())?;
    Ok((sha, footer))
}

/// What [`check_segment`] says of one segment.
type Check = std::result::Result<(String, SegmentFooter), String>;

/// Checks every segment, on as many threads as there are cores (hashing a bundle is a
/// second of CPU at 10M rows), calling `checked` with the running count; results come back
/// in the order of `segs`.
fn check_segments(segs: &[SegmentRef], checked: &mut dyn FnMut(usize)) -> Vec<Check> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Check>> = segs.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..workers.min(segs.len()) {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seg) = segs.get(i) else { break };
                if tx.send((i, check_segment(seg))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (done, (i, check)) in rx.iter().enumerate() {
            out[i] = Some(check);
            checked(done + 1);
        }
    });
    out.into_iter()
        .map(|c| c.unwrap_or_else(|| Err("segment was not checked".into())))
        .collect()
}

/// Quotes text as a DuckDB string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use karmor_contract::segment::SegmentMeta;

    use super::*;

    fn footers(rows: &[u64]) -> Vec<((), String, SegmentFooter)> {
        rows.iter()
            .map(|&rows| {
                let meta = SegmentMeta::default();
                ((), String::new(), SegmentFooter { meta, rows })
            })
            .collect()
    }

    #[test]
    fn steps_cover_every_segment_once_in_order_with_at_least_the_target() {
        let todo = footers(&[400, 100, 700, 50, 50, 900, 10]);
        let cut = steps(&todo, 500);
        let sizes: Vec<Vec<u64>> = cut
            .iter()
            .map(|s| s.iter().map(|(_, _, f)| f.rows).collect())
            .collect();
        assert_eq!(
            sizes,
            vec![vec![400, 100], vec![700], vec![50, 50, 900], vec![10]]
        );
        assert!(steps(&footers(&[]), 500).is_empty());
        assert_eq!(steps(&footers(&[1, 2, 3]), 500).len(), 1);
    }
}
