//! `recommend` benchmark (design §8: 100 workloads over 10M rows in ≤ 5 s): synthetic rows
//! (testdata's model: 100 workloads of 3 replicas) written as a bundle, merged into a DuckDB
//! file, then every workload drafted: once phase by phase (which also warms the store's
//! cache), then three times whole. Prints the median time and the peak resident memory of the
//! `recommend` runs (the peak is reset just before them through `/proc/self/clear_refs`, so
//! bundle generation and the merge do not count), and the phases.
//!
//! `cargo bench -p karmor-analyzer --bench recommend` (or `scripts/bench-analyzer.sh`).
//! `KARMOR_BENCH_ROWS=1000000,10000000` picks the sizes; `KARMOR_BENCH_DIR` the scratch dir;
//! `KARMOR_BENCH_REUSE=1` keeps the merged store there and reuses it on the next run.

use std::path::Path;
use std::time::{Duration, Instant};

use karmor_analyzer::policy::{validate_policy, Outcome};
use karmor_analyzer::recommend::{
    draft, evidence, noise, recommend, RecommendOptions, Scope, WorkloadSelect,
};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};

const CHUNK: usize = 250_000;

struct Line {
    rows: usize,
    merge: Option<Duration>,
    phases: [Duration; 5],
    recommend: Duration,
    peak_mib: Option<f64>,
    workloads: usize,
    drafts: usize,
    rules: usize,
    generalised: usize,
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
            "karmor-bench-recommend".to_string()
        } else {
            format!("karmor-bench-recommend-{}", std::process::id())
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
        let opts = RecommendOptions::new(Scope {
            workloads: Some(WorkloadSelect::default()),
            ..Scope::default()
        });
        // The phases one by one (what recommend does inside), then the whole.
        let t = Instant::now();
        let mut w = evidence::workloads(&store, &opts.scope).expect("workloads");
        let p0 = t.elapsed();
        let t = Instant::now();
        let last = evidence::pid_last_seen(&store, &opts.scope).expect("pids");
        let p1 = t.elapsed();
        let t = Instant::now();
        let marks = noise::classify(&mut w, &last);
        let p2 = t.elapsed();
        let t = Instant::now();
        evidence::behaviour(&store, &opts.scope, &marks, &mut w).expect("behaviour");
        let p3 = t.elapsed();
        let t = Instant::now();
        let dopts = draft::DraftOptions::default();
        for (id, ev) in &w {
            std::hint::black_box(draft::draft(id, ev, &dopts));
        }
        let p4 = t.elapsed();
        drop(w);
        // The whole, three times after the phases above warmed the store's cache: the median
        // time is reported, and the peak memory of those runs.
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let mut times = Vec::new();
        let mut rec = None;
        for _ in 0..3 {
            let t = Instant::now();
            rec = Some(recommend(&store, &opts).expect("recommend"));
            times.push(t.elapsed());
        }
        times.sort();
        let elapsed = times[1];
        let rec = rec.expect("three runs");
        let peak_mib = reset.then(peak_rss_mib).flatten();
        let drafts: Vec<_> = rec
            .workloads
            .iter()
            .filter_map(|w| w.draft.policy.as_ref())
            .collect();
        for p in &drafts {
            assert_eq!(
                validate_policy(p).outcome,
                Outcome::Valid,
                "{}",
                p.metadata.name
            );
        }
        lines.push(Line {
            rows: n,
            merge,
            phases: [p0, p1, p2, p3, p4],
            recommend: elapsed,
            peak_mib,
            workloads: rec.workloads.len(),
            drafts: drafts.len(),
            rules: rec.workloads.iter().map(|w| w.draft.rules.total()).sum(),
            generalised: rec
                .workloads
                .iter()
                .map(|w| w.draft.generalisations.len())
                .sum(),
        });
        drop(store);
        if !reuse {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if !reuse {
        let _ = std::fs::remove_dir_all(&scratch);
    }

    println!();
    println!("| rows | merge | recommend (all workloads) | peak RSS during recommend | workloads | drafts | rules | generalised rules |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            l.rows,
            l.merge.map_or("reused".into(), fmt),
            fmt(l.recommend),
            l.peak_mib.map_or("n/a".into(), |m| format!("{m:.0} MiB")),
            l.workloads,
            l.drafts,
            l.rules,
            l.generalised
        );
    }
    println!();
    println!("| rows | workloads + process query | pid query | noise tags | file/network/capability queries | drafting |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            l.rows,
            fmt(l.phases[0]),
            fmt(l.phases[1]),
            fmt(l.phases[2]),
            fmt(l.phases[3]),
            fmt(l.phases[4])
        );
    }
    println!();
    println!("- target (design §8): recommend for 100 workloads over 10M rows <= 5 s");
}

fn fmt(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

/// Peak resident set size since the last reset (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
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
