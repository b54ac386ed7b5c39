//! Analyzer benchmark (design §8): merge time and `observe` summary time on 1M and 10M rows,
//! side by side with the original proposal's storage (one SQL table with a JSON `Details`
//! text column and `LIKE` filters; SQLite as its stand-in), measured in the same run.
//!
//! `cargo bench -p karmor-analyzer --bench analyzer` (or `scripts/bench-analyzer.sh`).
//! `KARMOR_BENCH_ROWS=1000000,10000000` picks the sizes; `KARMOR_BENCH_DIR` the scratch dir.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use karmor_analyzer::filter;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op};
use rusqlite::params;

/// Rows generated and written per chunk (bounds the benchmark's own memory).
const CHUNK: usize = 250_000;
/// Query repetitions; the median is reported.
const REPEAT: usize = 5;

struct Row {
    rows: usize,
    what: &'static str,
    ours: Duration,
    theirs: Duration,
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KARMOR_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let guard = Scratch(
        std::env::var_os("KARMOR_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("karmor-bench-{}", std::process::id())),
    );
    let scratch = &guard.0;
    let mut table = Vec::new();
    let mut facts = Vec::new();
    for &n in &sizes {
        let dir = scratch.join(format!("rows-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let (bundle_bytes, segments) = write_synthetic_bundle(&dir.join("bundle"), n);
        facts.push(format!(
            "{n} rows: bundle {segments} segments, {:.1} MiB of Parquet",
            bundle_bytes as f64 / 1048576.0
        ));

        // Ours: merge the bundle into a DuckDB file, then query.
        let t = Instant::now();
        let store = Store::open(&dir.join("store.duckdb")).expect("store");
        let report = store.merge_bundle(&dir.join("bundle")).expect("merge");
        let merge = t.elapsed();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.rows as usize, n);

        // Theirs: the same rows in SQLite, one table with a JSON Details column.
        let sqlite_path = dir.join("proposal.sqlite");
        let t = Instant::now();
        let sqlite = load_sqlite(&sqlite_path, n);
        let sqlite_load = t.elapsed();
        table.push(Row {
            rows: n,
            what: "merge / load",
            ours: merge,
            theirs: sqlite_load,
        });

        let ns = "search";
        let mut q = ObserveQuery::new(ResourceKind::Pod);
        q.namespace = NamespaceScope::One(ns.into());
        let ours = median(|| {
            let s = summarize(&store, &q).expect("summary");
            assert!(!s.is_empty());
        });
        let theirs = median(|| sqlite_summary(&sqlite, ns, None));
        table.push(Row {
            rows: n,
            what: "observe pods -n (process+file+network)",
            ours,
            theirs,
        });

        let mut fq = q.clone();
        fq.operations = vec![Op::File];
        fq.filter = Some(filter::compile("path=/etc/*").expect("filter"));
        let ours = median(|| {
            summarize(&store, &fq).expect("summary");
        });
        let theirs = median(|| sqlite_summary(&sqlite, ns, Some("/etc/%")));
        table.push(Row {
            rows: n,
            what: "observe pods -n -o file -f path=/etc/*",
            ours,
            theirs,
        });
        let duck_bytes = std::fs::metadata(dir.join("store.duckdb")).map_or(0, |m| m.len());
        let sqlite_bytes = std::fs::metadata(&sqlite_path).map_or(0, |m| m.len());
        facts.push(format!(
            "{n} rows: DuckDB store {:.1} MiB, SQLite proposal {:.1} MiB",
            duck_bytes as f64 / 1048576.0,
            sqlite_bytes as f64 / 1048576.0
        ));
        drop(store);
        drop(sqlite);
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!();
    println!(
        "| rows | step | kubectl-karmor (DuckDB) | proposal (SQLite, JSON Details) | speed-up |"
    );
    println!("|---:|---|---:|---:|---:|");
    for r in &table {
        println!(
            "| {} | {} | {} | {} | {:.1}x |",
            r.rows,
            r.what,
            fmt(r.ours),
            fmt(r.theirs),
            r.theirs.as_secs_f64() / r.ours.as_secs_f64().max(1e-9)
        );
    }
    println!();
    for f in facts {
        println!("- {f}");
    }
    println!("- targets (design §8, at 10M rows): merge <= 10 s, observe summary <= 0.5 s, >= 20x the proposal");
}

/// The benchmark's scratch directory, removed when the benchmark ends, also by a panic: a
/// 10M-row run leaves gigabytes behind otherwise.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fmt(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut times: Vec<Duration> = (0..REPEAT)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[REPEAT / 2]
}

fn write_synthetic_bundle(dir: &Path, n: usize) -> (u64, u64) {
    let opts = BundleOptions {
        producer: "karmor bench".into(),
        ..BundleOptions::default()
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut manifest = None;
    for e in karmor_testdata::synthetic::events(n, 42) {
        chunk.push(e);
        if chunk.len() == CHUNK {
            manifest = Some(write_bundle(dir, std::mem::take(&mut chunk), &opts).expect("bundle"));
        }
    }
    if !chunk.is_empty() || manifest.is_none() {
        manifest = Some(write_bundle(dir, chunk, &opts).expect("bundle"));
    }
    let m = manifest.expect("manifest");
    (m.totals.bytes, m.totals.files)
}

/// The original proposal's storage: typed where-columns, everything else as JSON text.
fn load_sqlite(path: &Path, n: usize) -> rusqlite::Connection {
    let _ = std::fs::remove_file(path);
    let mut conn = rusqlite::Connection::open(path).expect("sqlite");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, timestamp INTEGER, cluster TEXT, node TEXT,
             namespace TEXT, pod TEXT, container TEXT, operation TEXT, details TEXT);",
    )
    .expect("schema");
    let tx = conn.transaction().expect("tx");
    {
        let mut stmt = tx
            .prepare("INSERT INTO events (timestamp, cluster, node, namespace, pod, container, operation, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .expect("insert");
        for e in karmor_testdata::synthetic::events(n, 42) {
            stmt.execute(params![
                e.ts_last,
                e.cluster,
                e.node,
                e.namespace,
                e.pod,
                e.container,
                e.op.as_str(),
                details_json(&e)
            ])
            .expect("row");
        }
    }
    // The index a careful implementer of the proposal would add for per-namespace views.
    tx.execute_batch("CREATE INDEX events_ns ON events (namespace, operation);")
        .expect("index");
    tx.commit().expect("commit");
    conn
}

fn details_json(e: &Event) -> String {
    serde_json::json!({
        "count": e.count, "ts_first": e.ts_first, "workload": e.workload, "pid": e.pid,
        "uid": e.uid, "process": e.process, "parent_process": e.parent_process,
        "path": e.path, "access": e.access, "proto": e.proto, "direction": e.direction,
        "remote_addr": e.remote_addr, "remote_port": e.remote_port,
        "local_port": e.local_port, "result": e.result,
    })
    .to_string()
}

/// The same three summaries as `observe pods -n NS` through json_extract, with an optional
/// `LIKE` filter on the JSON text as the proposal filters.
fn sqlite_summary(conn: &rusqlite::Connection, ns: &str, path_like: Option<&str>) {
    let ops: &[&str] = if path_like.is_some() {
        &["file"]
    } else {
        &["process", "file", "network"]
    };
    for op in ops {
        let group = match *op {
            "process" => "json_extract(details, '$.parent_process'), json_extract(details, '$.process')",
            "file" => "json_extract(details, '$.process'), json_extract(details, '$.path')",
            _ => "json_extract(details, '$.direction'), json_extract(details, '$.proto'), json_extract(details, '$.process'), json_extract(details, '$.remote_addr'), json_extract(details, '$.remote_port')",
        };
        let like = if path_like.is_some() {
            "AND details LIKE ?3"
        } else {
            "AND ?3 IS NULL"
        };
        let sql = format!(
            "SELECT pod, {group}, sum(json_extract(details, '$.count')), min(json_extract(details, '$.ts_first')), max(timestamp)
             FROM events WHERE namespace = ?1 AND operation = ?2 {like} GROUP BY pod, {group}"
        );
        let pattern = path_like.map(|p| format!("%\"path\":\"{p}"));
        let mut stmt = conn.prepare_cached(&sql).expect("prepare");
        let rows = stmt
            .query_map(params![ns, op, pattern], |r| r.get::<_, Option<String>>(0))
            .expect("query")
            .count();
        std::hint::black_box(rows);
    }
}
