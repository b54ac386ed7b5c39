//! Drift benchmark (design §8: `diff` of two 5M-row windows and `coverage` of 100 workloads on
//! the 10M-row store, ≤ 5 s each): synthetic rows (testdata's model: 100 workloads of 3
//! replicas over 7 days) written as a bundle and merged into a DuckDB file; then, three times
//! each, `coverage` (stability of every workload) and `diff` of the first half of the week
//! against the second (synthetic timestamps are uniform over the week, so each window holds
//! about half the rows; items of both windows are read, folded and compared). Prints the median and the slowest run, and what was found.
//!
//! `cargo bench -p karmor-analyzer --bench drift` (or `scripts/bench-analyzer.sh`).
//! `KARMOR_BENCH_ROWS=1000000,10000000` picks the sizes; `KARMOR_BENCH_DIR` the scratch dir;
//! `KARMOR_BENCH_REUSE=1` keeps the merged store there and reuses it on the next run.

use std::path::Path;
use std::time::{Duration, Instant};

use karmor_analyzer::drift::{self, items, DiffOptions, StabilityOptions};
use karmor_analyzer::recommend::{Scope, WorkloadSelect};
use karmor_analyzer::Store;
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
    /// The item query over all rows (coverage's main phase).
    query_all: Duration,
    /// The item queries of the two windows (diff's main phase).
    query_windows: Duration,
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

        let t = Instant::now();
        let _ = items::read_counts(&store, &all).expect("items");
        let query_all = t.elapsed();
        let t = Instant::now();
        let _ =
            items::read_pair(&store, &all, (None, Some(mid)), (Some(mid), None)).expect("items");
        let query_windows = t.elapsed();

        let mut coverage = Vec::new();
        let mut workloads = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let v = drift::stability(&store, &all, &StabilityOptions::default()).expect("coverage");
            coverage.push(t.elapsed());
            workloads = v.len();
        }
        let mut diff = Vec::new();
        let mut changes = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let (a, b) = items::read_pair(&store, &all, (None, Some(mid)), (Some(mid), None))
                .expect("items");
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
            query_all,
            query_windows,
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
        "| rows | merge s | coverage s median (max) | of which item query | workloads | diff s median (max) | of which item query (both windows, one pass) | changes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        println!(
            "| {} | {} | {} ({}) | {} | {} | {} ({}) | {} | {} |",
            l.rows,
            l.merge.map_or("reused".into(), secs),
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
