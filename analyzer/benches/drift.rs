//! Drift benchmark (design §8: `diff` of two 5M-row windows and `coverage` of 100 workloads on
//! the 10M-row store, ≤ 5 s each): synthetic rows (testdata's model: 100 workloads of 3
//! replicas over 7 days) written as a bundle and merged into a DuckDB file; then, three times
//! each, `coverage` (stability of every workload) and `diff` of the first half of the week
//! against the second (synthetic timestamps are uniform over the week, so each window holds
//! about half the rows; items of both windows are read, folded and compared). Prints the median and the slowest run, and what was found,
//! and DuckDB alone on the digest rows those answers need: their scan (the floor of reading
//! them) and their grouping per item (what the queries paid before they folded the digests in
//! Rust and kept a roll-up per item).
//!
//! `cargo bench -p karmor-analyzer --bench drift` (or `scripts/bench-analyzer.sh`).
//! `KARMOR_BENCH_ROWS=1000000,10000000` picks the sizes; `KARMOR_BENCH_DIR` the scratch dir;
//! `KARMOR_BENCH_REUSE=1` keeps the merged store there and reuses it on the next run;
//! `KARMOR_BENCH_PHASES=1` runs each query once and skips the rows-in-place comparison.

use std::path::Path;
use std::time::{Duration, Instant};

use karmor_analyzer::drift::{self, items, DiffOptions, StabilityOptions};
use karmor_analyzer::recommend::{Scope, WorkloadSelect};
use karmor_analyzer::{filter, Store};
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_testdata::synthetic::{BASE_NS, SPAN_NS};

const CHUNK: usize = 250_000;
const RUNS: usize = 3;

struct Line {
    rows: usize,
    merge: Option<Duration>,
    coverage: Vec<Duration>,
    workloads: usize,
    diff: Vec<Duration>,
    changes: usize,
    /// The first item query of the store: every file's digest computed and kept.
    digest: Duration,
    /// The item query over all rows (coverage's main phase), from the digests.
    query_all: Duration,
    /// The item queries of the two windows (diff's main phase), from the digests and the
    /// rows of the files the boundary cuts.
    query_windows: Duration,
    /// The same two queries reading every row in place (a scope with a filter, which
    /// digests cannot answer: what every query paid before digests).
    rows_all: Duration,
    rows_windows: Duration,
    /// Coverage's item query, start-up query and fold; diff's item query of both windows and
    /// its comparison of their items (one run each): wall time and the process's CPU time (every thread, DuckDB's
    /// too), which says more than wall time on a machine others load.
    phases: [(Duration, Duration); 5],
    /// What DuckDB alone takes, on the same store: a scan of the digest columns the answers
    /// need, coverage's grouping of them per item, and diff's per item and window (results
    /// reduced to one row, so nothing is transferred or built).
    floor: [(Duration, Duration); 3],
}

/// The floor of the item queries on the bench's store (see [`Line::floor`]).
fn floor(store: &Path, mid: i64) -> [(Duration, Duration); 3] {
    let conn = duckdb::Connection::open(store).expect("store");
    let run = |sql: &str| timed(|| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql)).1;
    let side = |i: usize| {
        format!(
            "sum(c) FILTER (WHERE in_{i}) AS c_{i}, min(t0) FILTER (WHERE in_{i}) AS t0_{i},
             max(t1) FILTER (WHERE in_{i}) AS t1_{i},
             arg_min(intro, t0) FILTER (WHERE in_{i}) AS i_{i},
             arg_min(first_pod, t0) FILTER (WHERE in_{i}) AS p_{i}"
        )
    };
    [
        run("SELECT count(*) + sum(kid) + min(t0) + max(t1) + CAST(sum(c) AS BIGINT) FROM item_digest"),
        run("SELECT count(*) + min(t0_) + max(t1_) + CAST(sum(c_) AS BIGINT)
             FROM (SELECT kid, sum(c) AS c_, min(t0) AS t0_, max(t1) AS t1_
                   FROM item_digest GROUP BY kid)"),
        run(&format!(
            "SELECT count(*) + min(t0_0) + max(t1_1) + CAST(sum(c_0) + sum(c_1) AS BIGINT)
                    + max(i_0) + max(p_0) + max(i_1) + max(p_1)
             FROM (SELECT kid, {}, {}
                   FROM item_digest JOIN (SELECT fid, first_max < {mid} AS in_0,
                                                 last_min >= {mid} AS in_1
                                          FROM item_digested) USING (fid)
                   GROUP BY kid)",
            side(0),
            side(1)
        )),
    ]
}

/// CPU time of this process so far (user + system, every thread), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command (in parentheses): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // Clock ticks are 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}

/// Runs `f`, returning its result, wall time and CPU time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, (Duration, Duration)) {
    let (t, c) = (Instant::now(), cpu_time());
    let v = f();
    (v, (t.elapsed(), cpu_time().saturating_sub(c)))
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KARMOR_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reuse = std::env::var_os("KARMOR_BENCH_REUSE").is_some();
    let phases_only = std::env::var_os("KARMOR_BENCH_PHASES").is_some();
    let scratch = std::env::var_os("KARMOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(if reuse {
            "karmor-bench-drift".to_string()
        } else {
            format!("karmor-bench-drift-{}", std::process::id())
        });
    let mut lines = Vec::new();
    for &n in &sizes {
        let dir = scratch.join(format!("rows-{n}"));
        let store_path = dir.join("store.duckdb");
        let merge = if reuse && store_path.exists() {
            None
        } else {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            write_synthetic_bundle(&dir.join("bundle"), n);
            let t = Instant::now();
            let store = Store::open(&store_path).expect("store");
            let report = store.merge_bundle(&dir.join("bundle")).expect("merge");
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            Some(t.elapsed())
        };
        let store = Store::open(&store_path).expect("store");
        let all = Scope {
            workloads: Some(WorkloadSelect::default()),
            ..Scope::default()
        };
        let mid = BASE_NS + SPAN_NS / 2;
        let windows = ((None, Some(mid)), (Some(mid), None));

        let t = Instant::now();
        let from_digests = items::read_counts(&store, &all).expect("items");
        let digest = t.elapsed();
        let t = Instant::now();
        let _ = items::read_counts(&store, &all).expect("items");
        let query_all = t.elapsed();
        let (pair, phase_pair) =
            timed(|| items::read_pair(&store, &all, windows.0, windows.1).expect("items"));
        let query_windows = phase_pair.0;
        // Side by side: the rows read in place, as a filtered scope (every row passes the
        // filter) still reads them. `KARMOR_BENCH_PHASES=1` leaves this and the repeated
        // runs out (the phase table only, for profiling).
        let (rows_all, rows_windows) = if phases_only {
            (Duration::ZERO, Duration::ZERO)
        } else {
            let filtered = Scope {
                filter: Some(filter::compile("node=*").expect("filter")),
                ..all.clone()
            };
            let t = Instant::now();
            let from_rows = items::read_counts(&store, &filtered).expect("items");
            let rows_all = t.elapsed();
            let t = Instant::now();
            let pair_rows =
                items::read_pair(&store, &filtered, windows.0, windows.1).expect("items");
            let rows_windows = t.elapsed();
            assert_eq!(from_digests, from_rows, "digests and rows disagree");
            assert_eq!(pair, pair_rows, "digests and rows disagree on the windows");
            (rows_all, rows_windows)
        };
        let runs = if phases_only { 1 } else { RUNS };

        let mut coverage = Vec::new();
        let mut workloads = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let v = drift::stability(&store, &all, &StabilityOptions::default()).expect("coverage");
            coverage.push(t.elapsed());
            workloads = v.len();
        }
        // Where coverage's time goes, one run: the item query, the start-up query and
        // folding the items into verdicts.
        let (counted, phase_items) = timed(|| items::read_counts(&store, &all).expect("items"));
        let (startup, phase_startup) =
            timed(|| drift::stability::startup_seen(&store, &all).expect("start-up"));
        let (_, phase_fold) =
            timed(|| drift::stability::assess(&counted, &startup, 0, &StabilityOptions::default()));
        let (_, phase_compare) = timed(|| drift::diff(&pair.0, &pair.1, &DiffOptions::default()));
        let mut diff = Vec::new();
        let mut changes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let (a, b) = items::read_pair(&store, &all, windows.0, windows.1).expect("items");
            let r = drift::diff(&a, &b, &DiffOptions::default());
            diff.push(t.elapsed());
            changes = r.changes.len();
        }
        drop(store);
        let floor = floor(&store_path, mid);
        lines.push(Line {
            rows: n,
            merge,
            coverage,
            workloads,
            diff,
            changes,
            digest,
            query_all,
            query_windows,
            rows_all,
            rows_windows,
            phases: [
                phase_items,
                phase_startup,
                phase_fold,
                phase_pair,
                phase_compare,
            ],
            floor,
        });
        if !reuse {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if !reuse {
        let _ = std::fs::remove_dir_all(&scratch);
    }

    println!("\ndrift (design §8: diff of two 5M-row windows and coverage of 100 workloads, each ≤ 5 s on 10M rows)");
    println!(
        "| rows | merge s | first item query (digests made) s | coverage s median (max) | of which item query | workloads | diff s median (max) | of which item query (both windows, one pass) | changes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} ({}) | {} | {} | {} ({}) | {} | {} |",
            l.rows,
            l.merge.map_or("reused".into(), secs),
            secs(l.digest),
            secs(median(&l.coverage)),
            secs(*l.coverage.iter().max().expect("runs")),
            secs(l.query_all),
            l.workloads,
            secs(median(&l.diff)),
            secs(*l.diff.iter().max().expect("runs")),
            secs(l.query_windows),
            l.changes
        );
    }
    println!("\nwhere the time goes (one run each): coverage = item query + start-up query + fold; diff = item query (both windows) + compare");
    println!("| rows | coverage: item query s (CPU s) | start-up query s (CPU s) | fold s (CPU s) | diff: item query s (CPU s) | compare s (CPU s) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        let cells: Vec<String> = l
            .phases
            .iter()
            .map(|&(wall, cpu)| format!("{} ({})", secs(wall), secs(cpu)))
            .collect();
        println!("| {} | {} |", l.rows, cells.join(" | "));
    }
    println!("\nDuckDB alone on the same store (the digest columns scanned; grouped per item as coverage once grouped them; per item and window as diff did; the queries now fold them in Rust), results reduced to one row");
    println!(
        "| rows | scan s (CPU s) | coverage's grouping s (CPU s) | diff's grouping s (CPU s) |"
    );
    println!("|---:|---:|---:|---:|");
    for l in &lines {
        let cells: Vec<String> = l
            .floor
            .iter()
            .map(|&(wall, cpu)| format!("{} ({})", secs(wall), secs(cpu)))
            .collect();
        println!("| {} | {} |", l.rows, cells.join(" | "));
    }
    println!("\nitem queries side by side, same store and run: from digests vs every row read in place (a filtered scope)");
    println!("| rows | all rows: digests s | rows s | speed-up | two windows: digests s | rows s | speed-up |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        let ratio = |a: Duration, b: Duration| {
            format!("{:.1}x", b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.rows,
            secs(l.query_all),
            secs(l.rows_all),
            ratio(l.query_all, l.rows_all),
            secs(l.query_windows),
            secs(l.rows_windows),
            ratio(l.query_windows, l.rows_windows)
        );
    }
}

fn write_synthetic_bundle(dir: &Path, n: usize) {
    let opts = BundleOptions {
        producer: "karmor bench".into(),
        ..BundleOptions::default()
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    for e in karmor_testdata::synthetic::events(n, 42) {
        chunk.push(e);
        if chunk.len() == CHUNK {
            write_bundle(dir, std::mem::take(&mut chunk), &opts).expect("bundle");
        }
    }
    if !chunk.is_empty() {
        write_bundle(dir, chunk, &opts).expect("bundle");
    }
}
