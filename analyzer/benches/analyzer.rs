//! Analyzer benchmark (design §8): time to first answer on a bundle never seen before, then
//! repeated and filtered `observe` summaries, side by side with the original proposal's storage
//! (one SQL table with a JSON `Details` text column and `LIKE` filters; SQLite as its stand-in:
//! load, then query), measured in the same run.
//!
//! The rows arrive as real collectors leave them: one segment per node and minute (10 nodes ×
//! 24 h = 14,400 files at the default sizes), and the same rows after the collector's
//! compaction (hour files folded into one day file per node, with the contract's compaction).
//! "First answer" is a fresh in-memory store with an empty compaction cache: verification,
//! any compaction and the `observe pods -n NS` summary, all included.
//!
//! `cargo bench -p karmor-analyzer --bench analyzer` (or `scripts/bench-analyzer.sh`).
//! `KARMOR_BENCH_ROWS=1000000,10000000` picks the sizes; `KARMOR_BENCH_DIR` the scratch dir;
//! `KARMOR_BENCH_KEEP=1` keeps it (its files, to query by hand); `KARMOR_BENCH_QUERIES=<kept
//! rows-N dir>` times only the queries on its compacted bundle again (first answer, repeated
//! and filtered summaries, with their CPU time; `KARMOR_BENCH_REPEAT` runs each), without
//! writing anything or loading the proposal's table.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use karmor_analyzer::filter;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::Store;
use karmor_contract::bundle::{
    format_ts, new_manifest, partition_dir, write_manifest, Manifest, ManifestFile,
};
use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::segment::{write_segment, SegmentMeta};
use karmor_contract::{Event, Op};
use rusqlite::params;

/// Query repetitions; the median is reported.
const REPEAT: usize = 5;
/// Nodes and one-minute windows of the realistic layout.
const NODES: usize = 10;
const MINUTES: usize = 24 * 60;
const MINUTE_NS: i64 = 60_000_000_000;

struct Row {
    rows: usize,
    what: String,
    ours: Duration,
    theirs: Option<Duration>,
}

fn main() {
    if let Some(dir) = std::env::var_os("KARMOR_BENCH_QUERIES") {
        queries_only(&PathBuf::from(dir).join("compacted"));
        return;
    }
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
        let minutes = dir.join("minutes");
        let t = Instant::now();
        let (files, bytes) = write_minute_bundle(&minutes, n);
        facts.push(format!(
            "{n} rows: {files} one-minute segments ({NODES} nodes x 24 h), {:.1} MiB, written in {}",
            bytes as f64 / 1048576.0,
            fmt(t.elapsed())
        ));
        let compacted = dir.join("compacted");
        let t = Instant::now();
        let (rows, files, bytes) = collector_compaction(&minutes, &compacted, &dir.join("tmp"));
        facts.push(format!(
            "{n} rows: after the collector's compaction {files} day files, {rows} rows, {:.1} MiB (compacted in {} here)",
            bytes as f64 / 1048576.0,
            fmt(t.elapsed())
        ));

        let ns = "search";
        let (q, fq) = queries();

        // Theirs: load every row into SQLite, then the first query.
        let sqlite_path = dir.join("proposal.sqlite");
        let t = Instant::now();
        let sqlite = load_sqlite(&sqlite_path, n);
        sqlite_summary(&sqlite, ns, None);
        let theirs_first = t.elapsed();

        // Ours, on the 14,400 minute segments: verification, compaction into the cache, query.
        let cache = dir.join("cache-minutes");
        let t = Instant::now();
        let store = Store::in_memory_with_cache(&cache).expect("store");
        let report = store.merge_bundle(&minutes).expect("merge");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(!summarize(&store, &q).expect("summary").is_empty());
        let first_minutes = t.elapsed();
        facts.push(format!(
            "{n} rows: first answer on the minute segments costs {:.2} ms per input file ({} compactions into the cache)",
            first_minutes.as_secs_f64() * 1000.0 / report.merged.len().max(1) as f64,
            report.compactions
        ));
        table.push(Row {
            rows: n,
            what: format!("first answer, {} minute segments", report.merged.len()),
            ours: first_minutes,
            theirs: Some(theirs_first),
        });
        let t = Instant::now();
        let again = Store::in_memory_with_cache(&cache).expect("store");
        again.merge_bundle(&minutes).expect("merge");
        summarize(&again, &q).expect("summary");
        table.push(Row {
            rows: n,
            what: "next command on the same minute segments (compactions cached)".into(),
            ours: t.elapsed(),
            theirs: None,
        });
        drop((store, again));

        // Ours, on the collector's compacted files.
        let t = Instant::now();
        let store = Store::in_memory_with_cache(&dir.join("cache-compacted")).expect("store");
        let report = store.merge_bundle(&compacted).expect("merge");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(!summarize(&store, &q).expect("summary").is_empty());
        table.push(Row {
            rows: n,
            what: format!("first answer, {} compacted files", report.merged.len()),
            ours: t.elapsed(),
            theirs: Some(theirs_first),
        });

        let ours = median(|| {
            assert!(!summarize(&store, &q).expect("summary").is_empty());
        });
        let theirs = median(|| sqlite_summary(&sqlite, ns, None));
        table.push(Row {
            rows: n,
            what: "observe pods -n (process+file+network), repeated".into(),
            ours,
            theirs: Some(theirs),
        });
        let ours = median(|| {
            summarize(&store, &fq).expect("summary");
        });
        let theirs = median(|| sqlite_summary(&sqlite, ns, Some("/etc/%")));
        table.push(Row {
            rows: n,
            what: "observe pods -n -o file -f path=/etc/*, repeated".into(),
            ours,
            theirs: Some(theirs),
        });
        let sqlite_bytes = std::fs::metadata(&sqlite_path).map_or(0, |m| m.len());
        facts.push(format!(
            "{n} rows: SQLite proposal {:.1} MiB",
            sqlite_bytes as f64 / 1048576.0
        ));
        drop(store);
        drop(sqlite);
        if std::env::var_os("KARMOR_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    println!();
    println!("| rows | step | kubectl-karmor (DuckDB over Parquet) | proposal (SQLite, JSON Details: load + query) | speed-up |");
    println!("|---:|---|---:|---:|---:|");
    for r in &table {
        let (theirs, ratio) = match r.theirs {
            Some(t) => (
                fmt(t),
                format!("{:.1}x", t.as_secs_f64() / r.ours.as_secs_f64().max(1e-9)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.rows,
            r.what,
            fmt(r.ours),
            theirs,
            ratio
        );
    }
    println!();
    for f in facts {
        println!("- {f}");
    }
    println!("- targets (design §8, at 10M rows): first answer <= 2 s compacted and <= 30 s on 14,400 segments; repeated summary <= 0.5 s; filtered <= 50 ms; first answer >= 20x the proposal's");
}

/// The benchmark's scratch directory, removed when the benchmark ends, also by a panic: a
/// 10M-row run leaves gigabytes behind otherwise.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("KARMOR_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
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

/// The first answer, the repeated summary and the filtered one on a kept compacted bundle.
fn queries_only(compacted: &Path) {
    let (q, fq) = queries();
    let cache = tempfile::tempdir().expect("cache dir");
    let t = Instant::now();
    let store = Store::in_memory_with_cache(cache.path()).expect("store");
    let report = store.merge_bundle(compacted).expect("merge");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(!summarize(&store, &q).expect("summary").is_empty());
    let first = t.elapsed();
    let repeat = std::env::var("KARMOR_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(REPEAT);
    let repeated = median_with_cpu(repeat, || {
        assert!(!summarize(&store, &q).expect("summary").is_empty());
    });
    let filtered = median_with_cpu(repeat, || {
        summarize(&store, &fq).expect("summary");
    });
    println!("| step | kubectl-karmor (DuckDB over Parquet) | CPU (all threads) |");
    println!("|---|---:|---:|");
    println!(
        "| first answer, {} compacted files | {} | - |",
        report.merged.len(),
        fmt(first)
    );
    println!(
        "| observe pods -n (process+file+network), repeated | {} | {} |",
        fmt(repeated.0),
        fmt(repeated.1)
    );
    println!(
        "| observe pods -n -o file -f path=/etc/*, repeated | {} | {} |",
        fmt(filtered.0),
        fmt(filtered.1)
    );
}

/// The process's CPU time so far, all threads (DuckDB's workers included).
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Medians of `f`'s wall time and CPU time over `repeat` runs after a warm-up: the CPU time
/// compares two builds or layouts run on a machine other work is loading, where wall times
/// do not.
fn median_with_cpu(repeat: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f(); // warm-up
    let (mut walls, mut cpus): (Vec<Duration>, Vec<Duration>) = (0..repeat.max(1))
        .map(|_| {
            let (t, c) = (Instant::now(), process_cpu());
            f();
            (t.elapsed(), process_cpu().saturating_sub(c))
        })
        .unzip();
    walls.sort();
    cpus.sort();
    (walls[walls.len() / 2], cpus[cpus.len() / 2])
}

/// The benchmark's summary (`observe pods -n search`) and its filtered form
/// (`-o file -f path=/etc/*`).
fn queries() -> (ObserveQuery, ObserveQuery) {
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::One("search".into());
    let mut fq = q.clone();
    fq.operations = vec![Op::File];
    fq.filter = Some(filter::compile("path=/etc/*").expect("filter"));
    (q, fq)
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

/// `n` synthetic rows as collectors write them: node `i % 10` of the synthetic model's nodes,
/// consecutive rows in consecutive minutes of one day, one segment per node and minute, listed
/// in a manifest. Returns (files, bytes).
fn write_minute_bundle(dir: &Path, n: usize) -> (u64, u64) {
    let per_minute = n.div_ceil(MINUTES).max(1);
    let base = karmor_testdata::synthetic::BASE_NS;
    let mut manifest = new_manifest("karmor bench collector");
    let mut rows = karmor_testdata::synthetic::events(n, 42);
    for minute in 0..MINUTES {
        let mut by_node: Vec<Vec<Event>> = vec![Vec::new(); NODES];
        for mut e in rows.by_ref().take(per_minute) {
            let node = node_of(&e.node);
            let start = base + minute as i64 * MINUTE_NS;
            e.ts_first = start + (e.ts_first.rem_euclid(MINUTE_NS) / 2);
            e.ts_last = e
                .ts_first
                .max(start + MINUTE_NS / 2 + e.ts_last.rem_euclid(MINUTE_NS / 2));
            e.node = format!("node-{node:02}");
            by_node[node].push(e);
        }
        for (node, mut events) in by_node.into_iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let name = format!("node-{node:02}");
            let start = base + minute as i64 * MINUTE_NS;
            let rel = format!("{}/seg-{minute:04}.parquet", partition_dir(&name, start));
            let meta = SegmentMeta {
                schema_version: karmor_contract::schema::schema_version(),
                producer: "karmor bench collector".into(),
                node: name.clone(),
                events_seen: events.iter().map(|e| e.count).sum(),
                windows: 1,
                ..SegmentMeta::default()
            };
            let w = write_segment(&dir.join(&rel), &mut events, &meta).expect("segment");
            manifest
                .files
                .push(entry(rel, &name, &w, &meta, Vec::new()));
        }
    }
    write_manifest(dir, &mut manifest).expect("manifest");
    (manifest.totals.files, manifest.totals.bytes)
}

fn node_of(name: &str) -> usize {
    name.bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        % NODES
}

fn entry(
    rel: String,
    node: &str,
    w: &karmor_contract::segment::WrittenSegment,
    meta: &SegmentMeta,
    replaces: Vec<String>,
) -> ManifestFile {
    ManifestFile {
        path: rel,
        node: node.into(),
        sha256: w.sha256.clone(),
        bytes: w.bytes,
        rows: w.rows,
        first: format_ts(w.ts_first),
        last: format_ts(w.ts_last),
        events_seen: meta.events_seen,
        events_dropped: meta.events_dropped,
        replaces,
    }
}

/// What the collector's compaction leaves of `minutes` in `out`: per node, each hour's minute
/// segments folded into an hour file, then the day's hour files into one day file listed with
/// every file it replaces. Returns (rows, files, bytes).
fn collector_compaction(minutes: &Path, out: &Path, tmp: &Path) -> (u64, u64, u64) {
    let source = karmor_contract::bundle::read_manifest(minutes).expect("manifest");
    std::fs::create_dir_all(tmp).expect("tmp");
    let options = CompactOptions {
        run_rows: 262_144,
        ..CompactOptions::new("karmor bench collector", tmp)
    };
    let mut manifest: Manifest = new_manifest("karmor bench collector");
    let mut nodes: Vec<&str> = source.files.iter().map(|f| f.node.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    for node in nodes {
        let mine: Vec<&ManifestFile> = source.files.iter().filter(|f| f.node == node).collect();
        let mut hours: Vec<PathBuf> = Vec::new();
        let mut replaces: Vec<String> = Vec::new();
        let mut dirs: Vec<&str> = mine
            .iter()
            .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
            .collect();
        dirs.dedup();
        for (i, d) in dirs.iter().enumerate() {
            let inputs: Vec<PathBuf> = mine
                .iter()
                .filter(|f| f.path.starts_with(d))
                .map(|f| minutes.join(&f.path))
                .collect();
            replaces.extend(
                mine.iter()
                    .filter(|f| f.path.starts_with(d))
                    .map(|f| f.sha256.clone()),
            );
            let hour = tmp.join(format!("{node}-hour-{i:02}.parquet"));
            let done = compact(&inputs, &hour, &options).expect("hour compaction");
            replaces.push(done.written.sha256.clone());
            hours.push(hour);
        }
        let first = mine.first().map_or(0, |f| {
            karmor_contract::bundle::parse_ts(&f.first).unwrap_or(0)
        });
        let rel = format!(
            "{}/hour=__HIVE_DEFAULT_PARTITION__/day.parquet",
            partition_dir(node, first)
                .rsplit_once('/')
                .map_or("", |(d, _)| d)
        );
        let done = compact(&hours, &out.join(&rel), &options).expect("day compaction");
        for h in &hours {
            let _ = std::fs::remove_file(h);
        }
        manifest
            .files
            .push(entry(rel, node, &done.written, &done.meta, replaces));
    }
    write_manifest(out, &mut manifest).expect("manifest");
    (
        manifest.totals.rows,
        manifest.totals.files,
        manifest.totals.bytes,
    )
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
