//! Item digests: each file's distinct behaviour items, computed once and kept by a store file.
//!
//! `coverage`, `diff` and `recommend`'s verdicts group every row of the store into items
//! ([`super::items`]); on Parquet read in place that `GROUP BY` decodes every page again on
//! every command (design §8 wants each ≤ 5 s on 10M rows). A store file (`--store`, the
//! plugin's cache) owns its files and they never change (a file is named by its sha256), so
//! the items of each file are aggregated once, the first time a drift query needs them, into
//! `item_digest` (one row per file and item, the item keyed by the columns a scope selects on
//! too), and later queries fold the digests instead of grouping the rows. Items and texts are
//! dictionary-encoded (`item_key`, `item_text`): a digest row is integers, folded per item
//! key id into arrays in Rust ([`fold`]), and the texts are read for the keys in scope only.
//! `item_rollup` keeps every file's digests aggregated per item, for queries that take every
//! file (a whole store without times): one row per item instead of one per file and item.
//!
//! A digest holds every row of its file, so a query uses it only for files that lie wholly
//! inside (or wholly outside) each time window asked for; the rows of a file a window cuts
//! through are read as before, and so are the rows `observe --live` appended. Scopes with an
//! `-f` filter read rows (a filter may name any column). Digests are kept per file sha256,
//! and all of them are dropped when the SQL that makes them (or their layout) changes, so a
//! file unlisted by a merge or a change of that SQL never leaves a stale digest in use.

use std::collections::{HashMap, HashSet};

use duckdb::params;
use sha2::{Digest as _, Sha256};

use crate::error::{AnalyzerError, Result};
use crate::recommend::noise::PROBE_MIN_RUNS;
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

/// The listed files with a current digest: path → (file id, span).
pub(crate) type Digested = HashMap<String, (i64, Option<FileSpan>)>;

/// The digest tables. Items and the texts of their introducing process and pod are
/// dictionary-encoded (`item_key`, `item_text`), so that a digest row is a handful of
/// integers and a query groups integers, not strings: a store's digests hold about as many
/// rows as its files hold distinct items each, and grouping them as text cost about as
/// much as grouping the rows.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS item_digest_version (version VARCHAR NOT NULL);
    CREATE SEQUENCE IF NOT EXISTS item_file_ids;
    CREATE TABLE IF NOT EXISTS item_digested (
        sha256 VARCHAR PRIMARY KEY, fid BIGINT NOT NULL,
        first_min BIGINT, first_max BIGINT, last_min BIGINT, last_max BIGINT);
    CREATE TABLE IF NOT EXISTS item_key (
        id BIGINT NOT NULL, host BOOLEAN, namespace VARCHAR, workload_kind VARCHAR,
        workload VARCHAR, pod VARCHAR, node VARCHAR, k_ns VARCHAR, k_kind VARCHAR,
        k_name VARCHAR, op VARCHAR, item VARCHAR, actor VARCHAR, writes BOOLEAN);
    CREATE TABLE IF NOT EXISTS item_text (id BIGINT NOT NULL, s VARCHAR NOT NULL);
    CREATE TABLE IF NOT EXISTS item_digest (
        fid BIGINT NOT NULL, kid BIGINT NOT NULL, c UBIGINT, t0 BIGINT, t1 BIGINT,
        intro BIGINT, first_pod BIGINT, t0_max BIGINT, t1_min BIGINT);
    CREATE TABLE IF NOT EXISTS item_rollup (
        kid BIGINT NOT NULL, c UBIGINT, t0 BIGINT, t1 BIGINT, intro BIGINT, first_pod BIGINT);
    CREATE TABLE IF NOT EXISTS startup_key (
        id BIGINT NOT NULL, namespace VARCHAR, workload_kind VARCHAR, workload VARCHAR,
        pod VARCHAR, k_ns VARCHAR, k_kind VARCHAR, k_name VARCHAR, c VARCHAR NOT NULL,
        process VARCHAR NOT NULL, args VARCHAR NOT NULL);
    CREATE TABLE IF NOT EXISTS startup_digest (
        fid BIGINT NOT NULL, sid BIGINT NOT NULL, t0 BIGINT, parent VARCHAR, pids INTEGER[]);";

/// Drops every digest table (a digest made by other SQL is of no use).
const DROP: &str = "
    DROP TABLE IF EXISTS item_digest; DROP TABLE IF EXISTS item_key;
    DROP TABLE IF EXISTS item_rollup;
    DROP TABLE IF EXISTS item_text; DROP TABLE IF EXISTS item_digested;
    DROP TABLE IF EXISTS item_digest_version; DROP SEQUENCE IF EXISTS item_file_ids;
    DROP TABLE IF EXISTS startup_digest; DROP TABLE IF EXISTS startup_key;";

/// The columns of `item_key` that make an item's identity.
const KEY_COLS: [&str; 13] = [
    "host",
    "namespace",
    "workload_kind",
    "workload",
    "pod",
    "node",
    "k_ns",
    "k_kind",
    "k_name",
    "op",
    "item",
    "actor",
    "writes",
];

/// Makes sure every listed file has a digest made by today's SQL (computing the missing ones
/// in one pass over their rows, in one transaction) and drops digests of files no longer
/// listed. Returns the listed files with their spans.
pub(crate) fn ensure(store: &Store, sql: &ItemSql) -> Result<Digested> {
    let conn = store.conn();
    let ctx = "keep item digests";
    let version = version(sql);
    let kept: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM duckdb_tables()
             WHERE table_name = 'item_digest_version' AND NOT temporary",
            [],
            |r| r.get(0),
        )
        .map_err(AnalyzerError::store(ctx))?;
    let current: Option<String> = if kept {
        conn.query_row("SELECT max(version) FROM item_digest_version", [], |r| {
            r.get(0)
        })
        .map_err(AnalyzerError::store(ctx))?
    } else {
        None
    };
    if current.as_deref() != Some(version.as_str()) {
        conn.execute_batch(&format!("{DROP}{SCHEMA}"))
            .map_err(AnalyzerError::store(ctx))?;
        conn.execute(
            "INSERT INTO item_digest_version VALUES (?)",
            params![version],
        )
        .map_err(AnalyzerError::store(ctx))?;
    }
    let listed = store.listed_files()?;
    let digested: HashSet<String> = {
        let mut stmt = conn
            .prepare("SELECT sha256 FROM item_digested")
            .map_err(AnalyzerError::store(ctx))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(AnalyzerError::store(ctx))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(AnalyzerError::store(ctx))?
    };
    let missing: Vec<String> = listed
        .iter()
        .filter(|(sha, _)| !digested.contains(sha))
        .map(|(_, path)| path.clone())
        .collect();
    let stale: i64 = conn
        .query_row(
            "SELECT count(*) FROM item_digested WHERE sha256 NOT IN (SELECT sha256 FROM files)",
            [],
            |r| r.get(0),
        )
        .map_err(AnalyzerError::store(ctx))?;
    if !missing.is_empty() || stale > 0 {
        conn.execute_batch("BEGIN TRANSACTION")
            .map_err(AnalyzerError::store(ctx))?;
        let done = build(store, sql, &missing, stale > 0).and_then(|()| rollup(store));
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
            "SELECT f.path, d.fid, d.first_min, d.first_max, d.last_min, d.last_max
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
            Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)?, span)))
        })
        .map_err(AnalyzerError::store(ctx))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store(ctx))
}

/// Makes `item_rollup` again: every digest row of the store aggregated per item key, as
/// [`fold`] would aggregate them for a window that takes every file. A query over the whole
/// store (coverage, recommend's verdicts, diff of two stores) reads its one row per item
/// instead of the item's row in every file it occurs in (on the bench's 10M-row store,
/// 0.9M rows instead of 7.75M: an item recurs in about 8.6 hour files). It is made again
/// whenever the digests change (a merge that lists or unlists files): about as much work as
/// one coverage query used to do.
fn rollup(store: &Store) -> Result<()> {
    store
        .conn()
        .execute_batch(
            "DELETE FROM item_rollup;
             INSERT INTO item_rollup
             SELECT kid, CAST(sum(c) AS UBIGINT), min(t0), max(t1), arg_min(intro, t0),
                    arg_min(first_pod, t0)
             FROM item_digest GROUP BY kid;",
        )
        .map_err(AnalyzerError::store("keep the item roll-up"))
}

/// The files whose digests answer a query over some windows, and the files whose rows it
/// must read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chosen {
    /// Per file id: bit `i` set when window `i` takes the file whole (0: no window takes it,
    /// or its rows are read).
    pub flags: Vec<u32>,
    /// Paths of the files a window cuts through, sorted: their rows are read.
    pub cut: Vec<String>,
    /// Per window: whether it takes every digested file with rows whole (and no window cuts
    /// one), so that `item_rollup` answers it.
    pub all: Vec<bool>,
}

/// Chooses, for a query over `windows` (`(since, until)` in ns, at most 32), the files whose
/// digests answer (each window takes them whole or not at all) and the files whose rows must
/// be read (a window cuts through them).
pub(crate) fn sides(
    store: &Store,
    sql: &ItemSql,
    windows: &[(Option<i64>, Option<i64>)],
) -> Result<Chosen> {
    if windows.len() > 32 {
        return Err(AnalyzerError::Invalid(format!(
            "{} time windows in one item query, at most 32",
            windows.len()
        )));
    }
    let files = ensure(store, sql)?;
    let mut chosen = Chosen::default();
    let (mut with_rows, mut whole) = (0usize, vec![0usize; windows.len()]);
    for (path, (fid, span)) in files {
        // A file without rows holds no items.
        let Some(span) = span else { continue };
        with_rows += 1;
        let taken: Vec<Coverage> = windows
            .iter()
            .map(|&(since, until)| span.coverage(since, until))
            .collect();
        if taken.contains(&Coverage::Cut) {
            chosen.cut.push(path);
            continue;
        }
        let mut mask = 0u32;
        for (i, c) in taken.iter().enumerate() {
            if *c == Coverage::Whole {
                mask |= 1 << i;
                whole[i] += 1;
            }
        }
        let Ok(fid) = usize::try_from(fid) else {
            continue;
        };
        if mask != 0 {
            if chosen.flags.len() <= fid {
                chosen.flags.resize(fid + 1, 0);
            }
            chosen.flags[fid] = mask;
        }
    }
    chosen.cut.sort();
    let none_cut = chosen.cut.is_empty();
    chosen.all = whole
        .into_iter()
        .map(|w| none_cut && w == with_rows)
        .collect();
    Ok(chosen)
}

/// One item's digests aggregated over the files one window takes: what the item query's
/// `sum(c)`, `min(t0)`, `max(t1)`, `arg_min(intro, t0)` and `arg_min(first_pod, t0)` would
/// give (`intro` and `pod` are `item_text` ids, 0 without detail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Folded {
    /// Whether any digest row with a count was folded in (the sum is not NULL).
    pub present: bool,
    /// Events.
    pub c: u64,
    /// First seen (ns); `i64::MAX` when no row had one.
    pub t0: i64,
    /// Last seen (ns); `i64::MIN` when no row had one.
    pub t1: i64,
    /// The introducing process's text id at the earliest row.
    pub intro: i64,
    /// The pod's text id at the earliest row.
    pub pod: i64,
}

impl Folded {
    const EMPTY: Folded = Folded {
        present: false,
        c: 0,
        t0: i64::MAX,
        t1: i64::MIN,
        intro: 0,
        pod: 0,
    };
}

/// The digests of the files `chosen` takes, aggregated per item key id and window:
/// `result[window][kid]`. The digest rows are read as Arrow batches and folded into arrays
/// indexed by key id (ids are dense): no hash table and no `GROUP BY`. DuckDB grouping the
/// bench's 7.75M digest rows per item cost 2.5 s (coverage) and 4.9 s (diff's two windows)
/// under load, more than everything else the commands do. When every window takes every
/// file, the roll-up's one row per item is read instead of every file's.
pub(crate) fn fold(
    store: &Store,
    chosen: &Chosen,
    windows: usize,
    detail: bool,
) -> Result<Vec<Vec<Folded>>> {
    use duckdb::arrow::array::{Array, AsArray};
    use duckdb::arrow::datatypes::{Int64Type, UInt64Type};
    let ctx = "fold item digests";
    let mut out: Vec<Vec<Folded>> = vec![Vec::new(); windows];
    let whole_store = chosen.all.len() == windows && chosen.all.iter().all(|&a| a);
    if !whole_store && chosen.flags.iter().all(|&m| m == 0) {
        return Ok(out);
    }
    let every = if windows >= 32 {
        u32::MAX
    } else {
        (1u32 << windows) - 1
    };
    let sql = match (whole_store, detail) {
        (true, true) => {
            "SELECT CAST(-1 AS BIGINT) AS fid, kid, c, t0, t1, intro, first_pod FROM item_rollup"
        }
        (true, false) => "SELECT CAST(-1 AS BIGINT) AS fid, kid, c, t0, t1 FROM item_rollup",
        (false, true) => "SELECT fid, kid, c, t0, t1, intro, first_pod FROM item_digest",
        (false, false) => "SELECT fid, kid, c, t0, t1 FROM item_digest",
    };
    let mut stmt = store
        .conn()
        .prepare(sql)
        .map_err(AnalyzerError::store(ctx))?;
    let batches = stmt.query_arrow([]).map_err(AnalyzerError::store(ctx))?;
    let wrong =
        |col: &str| AnalyzerError::Invalid(format!("item digest column {col}: unexpected type"));
    for batch in batches {
        let int = |i: usize, name: &str| {
            batch
                .column(i)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| wrong(name))
        };
        let (fid, kid, t0, t1) = (int(0, "fid")?, int(1, "kid")?, int(3, "t0")?, int(4, "t1")?);
        let c = batch
            .column(2)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| wrong("c"))?;
        let texts = if detail {
            Some((int(5, "intro")?, int(6, "first_pod")?))
        } else {
            None
        };
        for r in 0..batch.num_rows() {
            let mask = if whole_store {
                every
            } else {
                usize::try_from(fid.value(r))
                    .ok()
                    .and_then(|f| chosen.flags.get(f))
                    .copied()
                    .unwrap_or(0)
            };
            if mask == 0 || kid.is_null(r) {
                continue;
            }
            let Ok(k) = usize::try_from(kid.value(r)) else {
                continue;
            };
            for (w, side) in out.iter_mut().enumerate() {
                if mask & (1 << w) == 0 {
                    continue;
                }
                if side.len() <= k {
                    side.resize((k + 1).max(side.len() * 3 / 2), Folded::EMPTY);
                }
                let f = &mut side[k];
                if c.is_valid(r) {
                    f.present = true;
                    f.c += c.value(r);
                }
                if t0.is_valid(r) && t0.value(r) < f.t0 {
                    f.t0 = t0.value(r);
                    if let Some((intro, pod)) = texts {
                        f.intro = intro.value(r);
                        f.pod = pod.value(r);
                    }
                }
                if t1.is_valid(r) {
                    f.t1 = f.t1.max(t1.value(r));
                }
            }
        }
    }
    Ok(out)
}

/// The texts of `item_text` by id (the introducing processes and pods of digests: a few per
/// workload).
pub(crate) fn texts(store: &Store) -> Result<HashMap<i64, String>> {
    let ctx = "read item texts";
    let mut stmt = store
        .conn()
        .prepare("SELECT id, s FROM item_text")
        .map_err(AnalyzerError::store(ctx))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(AnalyzerError::store(ctx))?;
    rows.collect::<std::result::Result<_, _>>()
        .map_err(AnalyzerError::store(ctx))
}

/// The item keys `where_sql` (a scope's condition on `events`, its placeholders `params`')
/// selects (fixed SQL): `id, k_ns, k_kind, k_name, op, item, actor, writes`. The keys keep the
/// columns a scope selects on under their names, so the scope applies to them as to rows.
pub(crate) fn keys_sql(where_sql: &str) -> String {
    format!(
        "SELECT id, k_ns, k_kind, k_name, op, item, actor, writes
         FROM (SELECT *, NULL::VARCHAR AS action FROM item_key)
         WHERE {where_sql}"
    )
}

/// Drops digests of unlisted files (and, with `prune`, the keys and texts no digest uses any
/// more), and digests the files at `paths`.
fn build(store: &Store, sql: &ItemSql, paths: &[String], prune: bool) -> Result<()> {
    let conn = store.conn();
    let ctx = "compute item digests";
    conn.execute_batch(
        "DELETE FROM item_digest WHERE fid IN
             (SELECT fid FROM item_digested WHERE sha256 NOT IN (SELECT sha256 FROM files));
         DELETE FROM item_digested WHERE sha256 NOT IN (SELECT sha256 FROM files);",
    )
    .map_err(AnalyzerError::store(ctx))?;
    conn.execute_batch(
        "DELETE FROM startup_digest WHERE fid NOT IN (SELECT fid FROM item_digested);",
    )
    .map_err(AnalyzerError::store(ctx))?;
    if prune {
        conn.execute_batch(
            "DELETE FROM startup_key WHERE id NOT IN (SELECT DISTINCT sid FROM startup_digest);
             DELETE FROM item_key WHERE id NOT IN (SELECT DISTINCT kid FROM item_digest);
             DELETE FROM item_text WHERE id NOT IN
                 (SELECT intro FROM item_digest UNION SELECT first_pod FROM item_digest);",
        )
        .map_err(AnalyzerError::store(ctx))?;
    }
    if paths.is_empty() {
        return Ok(());
    }
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
    conn.execute_batch(
        "INSERT INTO item_digested
         SELECT f.sha256, nextval('item_file_ids'), NULL, NULL, NULL, NULL
         FROM files f WHERE f.path IN (SELECT path FROM digest_new);",
    )
    .map_err(AnalyzerError::store(ctx))?;
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
    let key_list = KEY_COLS.join(", ");
    let row_keys = KEY_COLS
        .iter()
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE digest_rows AS
         SELECT d.fid, {row_keys}, CAST(sum(c) AS UBIGINT) AS c, min(t0) AS t0, max(t1) AS t1,
                arg_min(intro, t0) AS intro, arg_min(p, t0) AS first_pod,
                max(t0) AS t0_max, min(t1) AS t1_min
         FROM (SELECT filename, host, namespace, workload_kind, workload,
                      CASE WHEN workload IS NULL THEN pod END AS pod,
                      CASE WHEN host THEN node END AS node,
                      {keys}, op, {item} AS item, {actor} AS actor, {writes} AS writes,
                      count AS c, epoch_ns(ts_first) AS t0, epoch_ns(ts_last) AS t1,
                      {intro} AS intro, coalesce(pod, '') AS p
               FROM ({rows})
               WHERE op IN ('process', 'file', 'network', 'capability', 'syscall')
                 AND coalesce(action, '') <> 'Block') r
         JOIN files f ON f.path = r.filename
         JOIN item_digested d ON d.sha256 = f.sha256
         GROUP BY d.fid, {row_keys};"
    ))
    .map_err(AnalyzerError::store(ctx))?;
    // New keys and texts get the next ids; the nullable key columns match NULL to NULL.
    let same_key = KEY_COLS
        .iter()
        .map(|c| format!("k.{c} IS NOT DISTINCT FROM r.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    conn.execute_batch(&format!(
        "INSERT INTO item_key
         SELECT (SELECT coalesce(max(id), 0) FROM item_key) + row_number() OVER (), *
         FROM (SELECT DISTINCT {key_list} FROM digest_rows r
               WHERE NOT EXISTS (SELECT 1 FROM item_key k WHERE {same_key}));
         INSERT INTO item_text
         SELECT (SELECT coalesce(max(id), 0) FROM item_text) + row_number() OVER (), s
         FROM (SELECT intro AS s FROM digest_rows UNION SELECT first_pod FROM digest_rows) n
         WHERE NOT EXISTS (SELECT 1 FROM item_text t WHERE t.s = n.s);
         INSERT INTO item_digest
         SELECT r.fid, k.id, r.c, r.t0, r.t1, ti.id, tp.id, r.t0_max, r.t1_min
         FROM digest_rows r JOIN item_key k ON {same_key}
              JOIN item_text ti ON ti.s = r.intro JOIN item_text tp ON tp.s = r.first_pod;
         DROP TABLE digest_rows;"
    ))
    .map_err(AnalyzerError::store(ctx))?;
    build_startup(store, keys, &rows)?;
    // A file's span is that of its digested rows: a window that takes them all is answered
    // by the digest exactly, whatever it does to rows the digest leaves out.
    conn.execute_batch(
        "UPDATE item_digested SET first_min = s.a, first_max = s.b, last_min = s.c, last_max = s.d
         FROM (SELECT fid, min(t0) AS a, max(t0_max) AS b, min(t1_min) AS c, max(t1) AS d
               FROM item_digest
               WHERE fid IN (SELECT d.fid FROM item_digested d JOIN files f USING (sha256)
                             WHERE f.path IN (SELECT path FROM digest_new))
               GROUP BY fid) s
         WHERE item_digested.fid = s.fid;",
    )
    .map_err(AnalyzerError::store(ctx))?;
    Ok(())
}

/// The start-up columns of a process row of `events` (fixed SQL, `{keys}` filled in): the
/// columns a scope selects container rows on, the workload key, the container, the executed
/// process, its arguments and parent, pid and time.
const STARTUP_ROW_SQL: &str = "namespace, workload_kind, workload,
    CASE WHEN workload IS NULL THEN pod END AS pod, {keys},
    coalesce(container_id, pod, '') AS c, coalesce(process, '') AS process,
    coalesce(args, '') AS args, coalesce(parent_process, '') AS parent, pid,
    epoch_ns(ts_first) AS t";

/// The columns of `startup_key` that make a start-up key's identity.
const STARTUP_KEY_COLS: [&str; 10] = [
    "namespace",
    "workload_kind",
    "workload",
    "pod",
    "k_ns",
    "k_kind",
    "k_name",
    "c",
    "process",
    "args",
];

/// The start-up digest of the files in `digest_new` (their rows are `rows`, with
/// `filename`): per file and (container, process, arguments), its earliest time and the
/// parent at that time, and up to [`PROBE_MIN_RUNS`] of its distinct pids. Folded across
/// files that answers [`super::stability::startup_seen`] exactly: each container's earliest
/// process is the earliest of its per-file earliest, and a count of distinct pids under
/// `PROBE_MIN_RUNS` is exact when each file keeps that many (a file with more keeps enough to
/// reach it).
fn build_startup(store: &Store, keys: &str, rows: &str) -> Result<()> {
    let conn = store.conn();
    let ctx = "compute start-up digests";
    let cols = STARTUP_ROW_SQL.replace("{keys}", keys);
    let key_list = STARTUP_KEY_COLS.join(", ");
    let row_keys = STARTUP_KEY_COLS
        .iter()
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let same_key = STARTUP_KEY_COLS
        .iter()
        .map(|c| format!("k.{c} IS NOT DISTINCT FROM r.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE startup_rows AS
         SELECT d.fid, {row_keys}, min(r.t) AS t0, arg_min(r.parent, r.t) AS parent,
                list(DISTINCT r.pid ORDER BY r.pid) FILTER (WHERE r.pid IS NOT NULL) AS pids
         FROM (SELECT filename, {cols}
               FROM ({rows})
               WHERE op = 'process' AND NOT host AND coalesce(action, '') <> 'Block') r
         JOIN files f ON f.path = r.filename
         JOIN item_digested d ON d.sha256 = f.sha256
         GROUP BY d.fid, {row_keys};
         INSERT INTO startup_key
         SELECT (SELECT coalesce(max(id), 0) FROM startup_key) + row_number() OVER (), *
         FROM (SELECT DISTINCT {key_list} FROM startup_rows r
               WHERE NOT EXISTS (SELECT 1 FROM startup_key k WHERE {same_key}));
         INSERT INTO startup_digest
         SELECT r.fid, k.id, r.t0, r.parent, coalesce(r.pids, [])[1:{PROBE_MIN_RUNS}]
         FROM startup_rows r JOIN startup_key k ON {same_key};
         DROP TABLE startup_rows;"
    ))
    .map_err(AnalyzerError::store(ctx))?;
    Ok(())
}

/// Start-up of every container workload `where_sql` (a scope's condition on `events`
/// without times or filter; its placeholders are `params`') selects, from the digests of every
/// listed file: per workload and container, the parent of its earliest process and how many
/// distinct pids ran that process with those arguments in that container (at least
/// [`PROBE_MIN_RUNS`] when there were that many). `None` when the digests cannot answer (a
/// store in memory, or live rows).
pub(crate) fn startup(
    store: &Store,
    sql: &ItemSql,
    where_sql: &str,
    params: &[crate::filter::Param],
) -> Result<Option<Vec<(crate::recommend::WorkloadId, String, i64)>>> {
    if !store.is_persistent() || store.has_live_rows()? {
        return Ok(None);
    }
    ensure(store, sql)?;
    let query = format!(
        "WITH k AS (SELECT * FROM (SELECT *, FALSE AS host, NULL::VARCHAR AS node,
                                          NULL::VARCHAR AS action FROM startup_key)
                    WHERE {where_sql}),
              d AS (SELECT * FROM startup_digest WHERE sid IN (SELECT id FROM k)),
              g AS (SELECT sid, min(t0) AS t0, arg_min(parent, t0) AS parent
                    FROM d GROUP BY sid),
              firsts AS (SELECT k.k_ns, k.k_kind, k.k_name, k.c,
                                arg_min(k.process, g.t0) AS process,
                                arg_min(k.args, g.t0) AS args,
                                arg_min(g.parent, g.t0) AS parent
                         FROM g JOIN k ON k.id = g.sid
                         GROUP BY k.k_ns, k.k_kind, k.k_name, k.c),
              wanted AS (SELECT DISTINCT k.id, k.c, k.process, k.args
                         FROM k JOIN firsts f
                           ON f.c = k.c AND f.process = k.process AND f.args = k.args),
              starts AS (SELECT w.c, w.process, w.args, count(DISTINCT p) AS n
                         FROM (SELECT sid, unnest(pids) AS p FROM d
                               WHERE sid IN (SELECT id FROM wanted)) u
                         JOIN wanted w ON w.id = u.sid
                         GROUP BY w.c, w.process, w.args)
         SELECT f.k_ns, f.k_kind, f.k_name, f.parent, coalesce(s.n, 0)
         FROM firsts f LEFT JOIN starts s
           ON s.c = f.c AND s.process = f.process AND s.args = f.args"
    );
    let ctx = "read start-up digests";
    let mut stmt = store
        .conn()
        .prepare(&query)
        .map_err(AnalyzerError::store(ctx))?;
    let rows = stmt
        .query_map(duckdb::params_from_iter(params.iter()), |r| {
            Ok((
                crate::recommend::WorkloadId {
                    namespace: r.get(0)?,
                    kind: r.get(1)?,
                    name: r.get(2)?,
                },
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(AnalyzerError::store(ctx))?;
    rows.collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
        .map_err(AnalyzerError::store(ctx))
}

/// The digest version: a hash of the SQL that makes an item and of the digest tables'
/// layout, so that changing either makes new digests.
fn version(sql: &ItemSql) -> String {
    let mut h = Sha256::new();
    for part in [
        sql.keys,
        sql.item,
        sql.actor,
        &sql.writes,
        sql.intro,
        SCHEMA,
        STARTUP_ROW_SQL,
        &PROBE_MIN_RUNS.to_string(),
    ] {
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

    /// Items whose roll-up row differs from their digests aggregated afresh.
    const ROLLUP_MISMATCHES: &str = "
        SELECT count(*) FROM item_rollup r
        FULL JOIN (SELECT kid, CAST(sum(c) AS UBIGINT) AS c, min(t0) AS t0, max(t1) AS t1
                   FROM item_digest GROUP BY kid) d USING (kid)
        WHERE r.c IS DISTINCT FROM d.c OR r.t0 IS DISTINCT FROM d.t0
           OR r.t1 IS DISTINCT FROM d.t1";

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
        // Merging made the digests, before any query: the file's, its two items (the exec,
        // the read), and its one (container, process, args) start-up row.
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 1);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digest"), 2);
        assert_eq!(count(&store, "SELECT count(*) FROM startup_digest"), 1);
        assert_eq!(exes(&store), ["/app/a"]);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 1);
        // Two items (the exec, the read) in one file.
        assert_eq!(count(&store, "SELECT count(*) FROM item_digest"), 2);

        store.merge_bundle(&dir.path().join("b")).unwrap();
        assert_eq!(exes(&store), ["/app/a", "/app/b"]);
        assert_eq!(count(&store, "SELECT count(*) FROM item_digested"), 2);
        // The roll-up holds each item of both files once, with both files' events.
        assert_eq!(count(&store, "SELECT count(*) FROM item_rollup"), 4);
        assert_eq!(count(&store, ROLLUP_MISMATCHES), 0);
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
                &format!("SELECT count(*) FROM item_digested WHERE sha256 = '{b_sha}'")
            ),
            0
        );
        // Its digest rows went with it, and so did the key only it used.
        assert_eq!(count(&store, "SELECT count(*) FROM item_digest"), 2);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM item_key WHERE item = '/app/b'"
            ),
            0
        );
        // The roll-up was made again without b's items.
        assert_eq!(count(&store, "SELECT count(*) FROM item_rollup"), 2);
        assert_eq!(count(&store, ROLLUP_MISMATCHES), 0);
        // And so did its start-up rows and key.
        assert_eq!(count(&store, "SELECT count(*) FROM startup_digest"), 1);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM startup_key WHERE process = '/app/b'"
            ),
            0
        );
    }

    #[test]
    fn digests_of_another_version_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BundleOptions {
            producer: "test".into(),
            ..BundleOptions::default()
        };
        write_bundle(&dir.path().join("a"), events(0, "/app/a"), &opts).unwrap();
        let scope = Scope {
            workloads: Some(WorkloadSelect::default()),
            hosts: Some(HostSelect::default()),
            ..Scope::default()
        };
        let store = Store::open(&dir.path().join("store.duckdb")).unwrap();
        store.merge_bundle(&dir.path().join("a")).unwrap();
        let first = crate::drift::items::read(&store, &scope).unwrap();
        // A digest made by other SQL: its keys say something else.
        store
            .conn()
            .execute_batch(
                "UPDATE item_digest_version SET version = 'older';
                 UPDATE item_key SET item = '/stale' WHERE op = 'process';",
            )
            .unwrap();
        let again = crate::drift::items::read(&store, &scope).unwrap();
        assert_eq!(first, again);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM item_key WHERE item = '/stale'"
            ),
            0
        );
        assert_eq!(count(&store, "SELECT count(*) FROM item_digest_version"), 1);
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
