//! Item digests: each file's distinct behaviour items, computed once and kept by a store file.
//!
//! `coverage`, `diff` and `recommend`'s verdicts group every row of the store into items
//! ([`super::items`]); on Parquet read in place that `GROUP BY` decodes every page again on
//! every command (design §8 wants each ≤ 5 s on 10M rows). A store file (`--store`, the
//! plugin's cache) owns its files and they never change (a file is named by its sha256), so
//! the items of each file are aggregated once, the first time a drift query needs them, into
//! `item_digest` (one row per file, workload, item and the columns a scope selects on), and
//! later queries group the digests instead of the rows.
//!
//! A digest holds every row of its file, so a query uses it only for files that lie wholly
//! inside (or wholly outside) each time window asked for; the rows of a file a window cuts
//! through are read as before, and so are the rows `observe --live` appended. Scopes with an
//! `-f` filter read rows (a filter may name any column). Digests are keyed by the file's
//! sha256 and by a version derived from the SQL that makes them, so a file unlisted by a
//! merge or a change of that SQL never leaves a stale digest in use.

use std::collections::{HashMap, HashSet};

use duckdb::params;
use sha2::{Digest as _, Sha256};

use crate::error::{AnalyzerError, Result};
use crate::store::{parquet_select, Store};

/// The columns of an item row, computed from a row of `events` (fixed SQL, `{keys}`,
/// `{item}`, `{actor}`, `{writes}` and `{intro}` filled in by [`super::items`]).
pub(crate) struct ItemSql {
    /// `k_ns, k_kind, k_name` (named).
    pub keys: &'static str,
    /// The item text.
    pub item: &'static str,
    /// The actor.
    pub actor: &'static str,
    /// Whether a file item writes.
    pub writes: String,
    /// The process that introduced it.
    pub intro: &'static str,
}

/// Per file: the span of its rows' `ts_first` and `ts_last` (ns), `None` for a file without
/// rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileSpan {
    /// Smallest and largest `ts_first`.
    pub first: (i64, i64),
    /// Smallest and largest `ts_last`.
    pub last: (i64, i64),
}

/// How a query over a time window uses one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// Every row of the file is in the window: its digest answers.
    Whole,
    /// No row is.
    Outside,
    /// Some rows are: they are read.
    Cut,
}

impl FileSpan {
    /// How the window `since ≤ ts_last` and `ts_first < until` takes this file's rows.
    pub fn coverage(&self, since: Option<i64>, until: Option<i64>) -> Coverage {
        let outside =
            since.is_some_and(|s| self.last.1 < s) || until.is_some_and(|u| self.first.0 >= u);
        let whole =
            since.is_none_or(|s| self.last.0 >= s) && until.is_none_or(|u| self.first.1 < u);
        if outside {
            Coverage::Outside
        } else if whole {
            Coverage::Whole
        } else {
            Coverage::Cut
        }
    }
}

/// The listed files with a current digest: path → (sha256, span).
pub(crate) type Digested = HashMap<String, (String, Option<FileSpan>)>;

/// Makes sure every listed file has a digest made by today's SQL (computing the missing ones
/// in one pass over their rows, in one transaction) and drops digests of files no longer
/// listed. Returns the listed files with their spans.
pub(crate) fn ensure(store: &Store, sql: &ItemSql) -> Result<Digested> {
    let conn = store.conn();
    let ctx = "keep item digests";
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS item_digest (
             sha256 VARCHAR NOT NULL, host BOOLEAN, namespace VARCHAR, workload_kind VARCHAR,
             workload VARCHAR, pod VARCHAR, node VARCHAR, k_ns VARCHAR, k_kind VARCHAR,
             k_name VARCHAR, op VARCHAR, item VARCHAR, actor VARCHAR, writes BOOLEAN,
             c UBIGINT, t0 BIGINT, t1 BIGINT, intro VARCHAR, first_pod VARCHAR,
             t0_max BIGINT, t1_min BIGINT);
         CREATE TABLE IF NOT EXISTS item_digested (
             sha256 VARCHAR PRIMARY KEY, version VARCHAR NOT NULL,
             first_min BIGINT, first_max BIGINT, last_min BIGINT, last_max BIGINT);",
    )
    .map_err(AnalyzerError::store(ctx))?;
    let version = version(sql);
    let listed = store.listed_files()?;
    let current: HashSet<String> = {
        let mut stmt = conn
            .prepare("SELECT sha256 FROM item_digested WHERE version = ?")
            .map_err(AnalyzerError::store(ctx))?;
        let rows = stmt
            .query_map(params![version], |r| r.get::<_, String>(0))
            .map_err(AnalyzerError::store(ctx))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store(ctx))?
    };
    let missing: Vec<String> = listed
        .iter()
        .filter(|(sha, _)| !current.contains(sha))
        .map(|(_, path)| path.clone())
        .collect();
    let stale: i64 = conn
        .query_row(
            "SELECT count(*) FROM item_digested
             WHERE version <> ? OR sha256 NOT IN (SELECT sha256 FROM files)",
            params![version],
            |r| r.get(0),
        )
        .map_err(AnalyzerError::store(ctx))?;
    if !missing.is_empty() || stale > 0 {
        conn.execute_batch("BEGIN TRANSACTION")
            .map_err(AnalyzerError::store(ctx))?;
        let done = build(store, sql, &version, &missing);
        match done {
            Ok(()) => conn
                .execute_batch("COMMIT")
                .map_err(AnalyzerError::store(ctx))?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    let mut stmt = conn
        .prepare(
            "SELECT f.path, d.sha256, d.first_min, d.first_max, d.last_min, d.last_max
             FROM item_digested d JOIN files f USING (sha256)",
        )
        .map_err(AnalyzerError::store(ctx))?;
    let rows = stmt
        .query_map([], |r| {
            let span = match (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?) {
                (Some(a), Some(b), Some(c), Some(d)) => Some(FileSpan {
                    first: (a, b),
                    last: (c, d),
                }),
                _ => None,
            };
            Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, span)))
        })
        .map_err(AnalyzerError::store(ctx))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store(ctx))
}

/// Prepares a query over `windows` (`(since, until)` in ns): fills the temporary table
/// `drift_sides` (`sha256`, then `in_0`, `in_1`, … per window) with the files whose digests
/// answer (each window takes them whole or not at all) and returns the paths of the files
/// whose rows must be read (a window cuts through them).
pub(crate) fn sides(
    store: &Store,
    sql: &ItemSql,
    windows: &[(Option<i64>, Option<i64>)],
) -> Result<Vec<String>> {
    let files = ensure(store, sql)?;
    let conn = store.conn();
    let ctx = "choose item digests";
    let cols: Vec<String> = (0..windows.len())
        .map(|i| format!("in_{i} BOOLEAN"))
        .collect();
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE drift_sides (sha256 VARCHAR, {})",
        cols.join(", ")
    ))
    .map_err(AnalyzerError::store(ctx))?;
    let mut cut = Vec::new();
    let mut app = conn
        .appender("drift_sides")
        .map_err(AnalyzerError::store(ctx))?;
    for (path, (sha, span)) in files {
        // A file without rows holds no items.
        let Some(span) = span else { continue };
        let taken: Vec<Coverage> = windows
            .iter()
            .map(|&(since, until)| span.coverage(since, until))
            .collect();
        if taken.contains(&Coverage::Cut) {
            cut.push(path);
        } else if taken.contains(&Coverage::Whole) {
            let mut row = vec![duckdb::types::Value::Text(sha)];
            row.extend(
                taken
                    .iter()
                    .map(|c| duckdb::types::Value::Boolean(*c == Coverage::Whole)),
            );
            app.append_row(duckdb::appender_params_from_iter(row))
                .map_err(AnalyzerError::store(ctx))?;
        }
    }
    app.flush().map_err(AnalyzerError::store(ctx))?;
    cut.sort();
    Ok(cut)
}

/// Drops digests of unlisted files or of another version, and digests the files at `paths`.
fn build(store: &Store, sql: &ItemSql, version: &str, paths: &[String]) -> Result<()> {
    let conn = store.conn();
    let ctx = "compute item digests";
    conn.execute_batch(
        "DELETE FROM item_digested WHERE sha256 NOT IN (SELECT sha256 FROM files);
         DELETE FROM item_digest WHERE sha256 NOT IN (SELECT sha256 FROM item_digested);",
    )
    .map_err(AnalyzerError::store(ctx))?;
    conn.execute(
        "DELETE FROM item_digest WHERE sha256 IN
             (SELECT sha256 FROM item_digested WHERE version <> ?)",
        params![version],
    )
    .map_err(AnalyzerError::store(ctx))?;
    conn.execute(
        "DELETE FROM item_digested WHERE version <> ?",
        params![version],
    )
    .map_err(AnalyzerError::store(ctx))?;
    if paths.is_empty() {
        return Ok(());
    }
    let rows = parquet_select(paths, true);
    let ItemSql {
        keys,
        item,
        actor,
        writes,
        intro,
    } = sql;
    // Blocked rows never count as behaviour (every scope leaves them out); the columns a
    // scope selects on are kept where they decide: `pod` only without a workload
    // (`coalesce(workload, pod)`), `node` only on the host.
    conn.execute_batch(&format!(
        "INSERT INTO item_digest
         SELECT f.sha256, host, namespace, workload_kind, workload, pod_key, node_key,
                k_ns, k_kind, k_name, op, item, actor, writes, CAST(sum(c) AS UBIGINT),
                min(t0), max(t1), arg_min(intro, t0), arg_min(p, t0), max(t0), min(t1)
         FROM (SELECT filename, host, namespace, workload_kind, workload,
                      CASE WHEN workload IS NULL THEN pod END AS pod_key,
                      CASE WHEN host THEN node END AS node_key,
                      {keys}, op, {item} AS item, {actor} AS actor, {writes} AS writes,
                      count AS c, epoch_ns(ts_first) AS t0, epoch_ns(ts_last) AS t1,
                      {intro} AS intro, coalesce(pod, '') AS p
               FROM ({rows})
               WHERE op IN ('process', 'file', 'network', 'capability', 'syscall')
                 AND coalesce(action, '') <> 'Block') r
         JOIN files f ON f.path = r.filename
         GROUP BY f.sha256, host, namespace, workload_kind, workload, pod_key, node_key,
                  k_ns, k_kind, k_name, op, item, actor, writes;"
    ))
    .map_err(AnalyzerError::store(ctx))?;
    conn.execute_batch("CREATE OR REPLACE TEMP TABLE digest_new (path VARCHAR)")
        .map_err(AnalyzerError::store(ctx))?;
    {
        let mut app = conn
            .appender("digest_new")
            .map_err(AnalyzerError::store(ctx))?;
        for p in paths {
            app.append_row(params![p])
                .map_err(AnalyzerError::store(ctx))?;
        }
        app.flush().map_err(AnalyzerError::store(ctx))?;
    }
    // A file's span is that of its digested rows: a window that takes them all is answered
    // by the digest exactly, whatever it does to rows the digest leaves out.
    conn.execute(
        "INSERT INTO item_digested
         SELECT f.sha256, ?, s.a, s.b, s.c, s.d
         FROM files f LEFT JOIN
              (SELECT sha256, min(t0) AS a, max(t0_max) AS b, min(t1_min) AS c, max(t1) AS d
               FROM item_digest
               WHERE sha256 IN (SELECT sha256 FROM files WHERE path IN (SELECT path FROM digest_new))
               GROUP BY sha256) s USING (sha256)
         WHERE f.path IN (SELECT path FROM digest_new)",
        params![version],
    )
    .map_err(AnalyzerError::store(ctx))?;
    Ok(())
}

/// The digest version: a hash of the SQL that makes an item, so that changing it makes new
/// digests.
fn version(sql: &ItemSql) -> String {
    let mut h = Sha256::new();
    for part in [sql.keys, sql.item, sql.actor, &sql.writes, sql.intro] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::{HostSelect, Scope, WorkloadSelect};
    use karmor_contract::bundle::{write_bundle, BundleOptions};
    use karmor_contract::{Event, Op, Source};

    const HOUR: i64 = 3_600 * 1_000_000_000;
    const T0: i64 = 1_795_161_600 * 1_000_000_000;

    /// A process and a file read of workload `web`, in hour `h`.
    fn events(h: i64, exe: &str) -> Vec<Event> {
        let base = Event {
            ts_first: T0 + h * HOUR + 60,
            ts_last: T0 + h * HOUR + 120,
            count: 2,
            node: "node-1".into(),
            namespace: Some("ns".into()),
            pod: Some("web-1".into()),
            workload_kind: Some("Deployment".into()),
            workload: Some("web".into()),
            source: Source::Ebpf,
            process: Some(exe.into()),
            parent_process: Some("/bin/sh".into()),
            op: Op::Process,
            ..Event::default()
        };
        let file = Event {
            op: Op::File,
            path: Some("/etc/hosts".into()),
            access: Some("read".into()),
            ..base.clone()
        };
        vec![base, file]
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn digests_follow_the_listed_files() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BundleOptions {
            producer: "test".into(),
            ..BundleOptions::default()
        };
        write_bundle(&dir.path().join("a"), events(0, "/app/a"), &opts).unwrap();
        write_bundle(&dir.path().join("b"), events(1, "/app/b"), &opts).unwrap();
        let path = dir.path().join("store.duckdb");
        let scope = Scope {
            workloads: Some(WorkloadSelect::default()),
            hosts: Some(HostSelect::default()),
            ..Scope::default()
        };
        let exes = |store: &Store| -> Vec<String> {
            let items = crate::drift::items::read(store, &scope).unwrap();
            items
                .by_workload
                .values()
                .flatten()
                .filter(|i| i.group.category == crate::drift::Category::Executables)
                .map(|i| i.item.clone())
                .collect()
        };
        let store = Store::open(&path).unwrap();
        store.merge_bundle(&dir.path().join("a")).unwrap();
        assert_eq!(exes(&store), ["/app/a"]);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 1);
        // Two items (the exec, the read) in one file.
        assert_eq!(count(&store, "SELECT count(*) FROM item_digest"), 2);

        store.merge_bundle(&dir.path().join("b")).unwrap();
        assert_eq!(exes(&store), ["/app/a", "/app/b"]);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 2);
        let b_sha: String = store
            .conn()
            .query_row("SELECT sha256 FROM files WHERE bundle LIKE '%b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let b_path: String = store
            .conn()
            .query_row("SELECT path FROM files WHERE sha256 = ?", [&b_sha], |r| {
                r.get(0)
            })
            .unwrap();
        drop(store);

        // The store's copy of b's file is deleted by hand: the store forgets it, and its
        // digest goes with it.
        std::fs::remove_file(&b_path).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(exes(&store), ["/app/a"]);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 1);
        assert_eq!(
            count(
                &store,
                &format!("SELECT count(*) FROM item_digest WHERE sha256 = '{b_sha}'")
            ),
            0
        );
    }

    #[test]
    fn coverage_of_a_window() {
        // Rows first seen 10..20, last seen 15..30.
        let s = FileSpan {
            first: (10, 20),
            last: (15, 30),
        };
        assert_eq!(s.coverage(None, None), Coverage::Whole);
        assert_eq!(s.coverage(Some(15), Some(21)), Coverage::Whole);
        assert_eq!(s.coverage(Some(16), None), Coverage::Cut);
        assert_eq!(s.coverage(None, Some(20)), Coverage::Cut);
        assert_eq!(s.coverage(Some(31), None), Coverage::Outside);
        assert_eq!(s.coverage(None, Some(10)), Coverage::Outside);
        assert_eq!(s.coverage(Some(30), Some(11)), Coverage::Cut);
    }
}
