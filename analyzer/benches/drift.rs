//! Drift benchmark (design §8: `diff` of two 5M-row windows and `coverage` of 100 workloads on
//! the 10M-row store, ≤ 5 s each): synthetic rows (testdata's model: 100 workloads of 3
//! replicas over 7 days) written as a bundle and merged into a DuckDB file; then, three times
//! each, `coverage` (stability of every workload) and `diff` of the first half of the week
//! against the second (synthetic timestamps are uniform over the week, so each window holds
//! about half the rows; items of both windows are read, folded and compared). Prints the median and the slowest run, and what was found.
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
    /// Coverage's item query, start-up query and fold; diff's comparison of two windows'
    /// items (one run each): wall time and the process's CPU time (every thread, DuckDB's
    /// too), which says more than wall time on a machine others load.
    phases: [(Duration, Duration); 4],
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
        let t = Instant::now();
        let pair = items::read_pair(&store, &all, windows.0, windows.1).expect("items");
        let query_windows = t.elapsed();
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
            phases: [phase_items, phase_startup, phase_fold, phase_compare],
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
    println!("| rows | coverage: item query s (CPU s) | start-up query s (CPU s) | fold s (CPU s) | diff: compare s (CPU s) |");
    println!("|---:|---:|---:|---:|---:|");
    for l in &lines {
        let cells: Vec<String> = l
            .phases
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
