//! Stores written before the catalog (rows copied into a DuckDB `events` table, one row per
//! merged segment in `segments`) are converted when opened: the rows become one Parquet file
//! of the store, sorted as compactions are, and the segments they came from are recorded as
//! replaced by it, so that merging their bundles again adds nothing.

use std::fs;
use std::path::Path;

use duckdb::Connection;
use karmor_contract::schema::schema_version;
use karmor_contract::segment::{read_footer, sha256_file, tmp_path};

use super::catalog::{self, Change, FileRecord, Origin, ReplacedRecord};
use super::{columns, sql_string};
use crate::error::{AnalyzerError, Result};

/// Converts an old store's `events` table, if there is one, into a Parquet file in `dir`.
pub(super) fn rows_table_to_parquet(conn: &Connection, dir: &Path) -> Result<()> {
    let ctx = "convert a store of an older version";
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'events'",
            [],
            |r| r.get(0),
        )
        .map_err(AnalyzerError::store(ctx))?;
    if old == 0 {
        return Ok(());
    }
    let (rows, seen, dropped, first, last): (i64, i64, i64, Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM main.events),
                    coalesce(sum(events_seen), 0), coalesce(sum(events_dropped), 0),
                    (SELECT epoch_us(min(ts_first)) FROM main.events),
                    (SELECT epoch_us(max(ts_last)) FROM main.events)
             FROM segments",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .map_err(AnalyzerError::store(ctx))?;
    let out = dir.join("converted-from-rows.parquet");
    if rows > 0 {
        let tmp = tmp_path(&out);
        let cols = columns()
            .iter()
            .map(|(c, _, _)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let kv = format!(
            "'karmor.schema_version': {}, 'karmor.producer': {}, 'karmor.node': 'several', \
             'karmor.events_seen': '{seen}', 'karmor.events_dropped': '{dropped}'",
            sql_string(&schema_version()),
            sql_string(&format!("kubectl-karmor {}", env!("CARGO_PKG_VERSION")))
        );
        conn.execute_batch(&format!(
            "COPY (SELECT {cols} FROM main.events ORDER BY namespace, workload, pod, container, op)
             TO {} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880, KV_METADATA {{{kv}}})",
            sql_string(&tmp.display().to_string())
        ))
        .map_err(AnalyzerError::store(ctx))?;
        fs::rename(&tmp, &out).map_err(|e| super::io_error(&out, e))?;
    }
    let mut change = Change::default();
    if rows > 0 {
        let footer = read_footer(&out)?;
        let sha = sha256_file(&out)?;
        let mut stmt = conn
            .prepare("SELECT sha256, bundle, path FROM segments")
            .map_err(AnalyzerError::store(ctx))?;
        let old_segments = stmt
            .query_map([], |r| {
                Ok(ReplacedRecord {
                    sha256: r.get(0)?,
                    by: sha.clone(),
                    bundle: r.get(1)?,
                    path: r.get(2)?,
                })
            })
            .map_err(AnalyzerError::store(ctx))?;
        for rec in old_segments {
            change.replace.push(rec.map_err(AnalyzerError::store(ctx))?);
        }
        change.add.push(FileRecord {
            sha256: sha,
            path: out.display().to_string(),
            bundle: "(converted from an older store)".into(),
            rel: out
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            node: "several".into(),
            rows: footer.rows,
            bytes: fs::metadata(&out).map_or(0, |m| m.len()),
            span: first.zip(last).map(|(a, b)| (a * 1000, b * 1000)),
            events_seen: seen as u64,
            events_dropped: dropped as u64,
            producer: footer.meta.producer,
            origin: Origin::Compaction,
        });
    }
    catalog::apply(conn, &change)?;
    conn.execute_batch("DROP TABLE main.events; DROP TABLE IF EXISTS segments;")
        .map_err(AnalyzerError::store(ctx))?;
    Ok(())
}
