//! `simulate` benchmark: synthetic rows merged into a DuckDB file, then replayed through our
//! hardening library (every policy turned into a cluster-wide `KubeArmorClusterPolicy`) plus
//! one allow-list policy per workload (its processes), with the block posture. Prints a table.
//!
//! `cargo bench -p karmor-analyzer --bench simulate`; `KARMOR_BENCH_ROWS=1000000,10000000`
//! picks the sizes; `KARMOR_BENCH_DIR` the scratch directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use karmor_analyzer::policy::{
    validate_path, Action, Outcome, Policy, PolicyKind, ProcessPathRule, ProcessRules, Selector,
};
use karmor_analyzer::simulate::{simulate, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op};

const CHUNK: usize = 250_000;
const REPEAT: usize = 3;

fn library() -> Vec<Policy> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    validate_path(&dir)
        .into_iter()
        .filter(|r| r.outcome == Outcome::Valid)
        .filter_map(|r| r.policy)
        .map(|mut p| {
            p.kind = PolicyKind::KubeArmorClusterPolicy;
            p.metadata.namespace = None;
            p.spec.selector = None;
            p
        })
        .collect()
}

/// Writes the bundle and learns, per (namespace, workload, labels), the processes seen.
fn write_synthetic(dir: &Path, rows: usize) -> Vec<Policy> {
    let mut learned: BTreeMap<(String, String), (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut it = karmor_testdata::synthetic::events(rows, 7);
    let opts = BundleOptions {
        producer: "bench-simulate".into(),
        ..BundleOptions::default()
    };
    loop {
        let chunk: Vec<Event> = it.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        for e in &chunk {
            if let (Some(ns), Some(w), Op::Process, Some(p)) =
                (&e.namespace, &e.workload, e.op, &e.process)
            {
                let entry = learned
                    .entry((ns.clone(), w.clone()))
                    .or_insert_with(|| (e.labels.clone(), BTreeSet::new()));
                entry.1.insert(p.clone());
            }
        }
        write_bundle(dir, chunk, &opts).expect("write bundle");
    }
    learned
        .into_iter()
        .enumerate()
        .map(|(i, ((ns, _w), (labels, procs)))| {
            let mut p = Policy::new(PolicyKind::KubeArmorPolicy, format!("allow-{i}"));
            p.metadata.namespace = Some(ns);
            p.spec.selector = Some(Selector {
                match_labels: labels
                    .iter()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Selector::default()
            });
            p.spec.process = Some(ProcessRules {
                match_paths: procs
                    .into_iter()
                    .map(|path| ProcessPathRule {
                        path: Some(path),
                        ..ProcessPathRule::default()
                    })
                    .collect(),
                ..ProcessRules::default()
            });
            p.spec.action = Some(Action::Allow);
            p
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KARMOR_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let scratch = std::env::var_os("KARMOR_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("karmor-bench-simulate-{}", std::process::id()));
    let lib = library();
    println!(
        "| rows | policies (rules) | behaviours | blocked | audited | simulate (median of {REPEAT}) | same, no policy (query and report only) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let dir = scratch.join(format!("rows-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        let mut policies = write_synthetic(&dir.join("bundle"), n);
        policies.extend(lib.iter().cloned());
        let rules: usize = policies
            .iter()
            .map(|p| karmor_analyzer::simulate::compile(p, "default").rules.len())
            .sum();
        let store = Store::open(&dir.join("store.duckdb")).expect("store");
        let merged = store.merge_bundle(&dir.join("bundle")).expect("merge");
        assert_eq!(merged.rows as usize, n);
        let opts = SimOptions {
            include_host: true,
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        };
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..REPEAT {
            let t = Instant::now();
            let r = simulate(&store, &policies, &opts).expect("simulate");
            times.push(t.elapsed());
            last = Some(r);
        }
        let r = last.expect("ran");
        let t = r.totals();
        let mut bare = Vec::new();
        for _ in 0..REPEAT {
            let t = Instant::now();
            let r = simulate(&store, &[], &opts).expect("simulate");
            bare.push(t.elapsed());
            assert!(r.blocked().next().is_none(), "no policy blocks nothing");
        }
        println!(
            "| {n} | {} ({rules}) | {} | {} | {} | {:.2} s | {:.2} s |",
            policies.len(),
            r.entries.len(),
            t.blocked_entries,
            t.audited_entries,
            median(times).as_secs_f64(),
            median(bare).as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
