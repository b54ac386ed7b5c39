//! Compaction of one busy hour: 60 one-minute segments holding 1M rows in all (design §8: the
//! collector stays within 64 MiB while it compacts). Prints a table: time, rows in and out,
//! bytes in and out, and the peak resident memory of a process that does nothing but the
//! compaction (this binary re-run as a child, so that generating the inputs does not count).
//!
//! `cargo bench -p karmor-contract --bench compact` (`KARMOR_BENCH_ROWS=N` for another size,
//! `KARMOR_BENCH_DIR` for where the inputs go; default the system's temporary directory;
//! `KARMOR_RUN_ROWS`, `KARMOR_MERGE_BATCH_ROWS`, `KARMOR_MERGE_FAN_IN` override the merge's
//! defaults, to measure them; `KARMOR_BENCH_KEEP=1` keeps the inputs).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::schema::{schema_version, Event, Op, Source};
use karmor_contract::segment::{write_segment, SegmentMeta};

const CHILD: &str = "KARMOR_COMPACT_CHILD";

fn main() {
    if let Ok(dir) = env::var(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let rows: usize = env::var("KARMOR_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = env::var_os("KARMOR_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(env::temp_dir);
    let dir = base.join(format!("karmor-compact-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("bench dir");
    let inputs = write_hour(&dir, rows);
    let bytes_in: u64 = inputs
        .iter()
        .map(|p| fs::metadata(p).expect("stat").len())
        .sum();

    let exe = env::current_exe().expect("this bench");
    let out = Command::new(exe)
        .env(CHILD, &dir)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    println!("| input | rows in | MiB in | rows out | MiB out | time | peak RSS |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} one-minute segments | {rows} | {:.1} | {} |",
        inputs.len(),
        bytes_in as f64 / 1048576.0,
        report.trim()
    );
    if env::var_os("KARMOR_BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        // Kept, so that other settings can be measured on the same inputs:
        // `KARMOR_COMPACT_CHILD=<dir> <this bench>`.
        eprintln!("inputs kept in {}", dir.display());
    }
}

/// Compacts the inputs in `dir` and prints `rows_out | MiB out | seconds | peak RSS`.
fn child(dir: &Path) {
    let mut inputs: Vec<PathBuf> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    inputs.sort();
    let out = dir.join("hour").join("hour.parquet");
    let start = Instant::now();
    let mut options = CompactOptions::new("bench", dir);
    let knob = |name: &str| env::var(name).ok().and_then(|v| v.parse().ok());
    if let Some(n) = knob("KARMOR_RUN_ROWS") {
        options.run_rows = n;
    }
    if let Some(n) = knob("KARMOR_MERGE_BATCH_ROWS") {
        options.merge_batch_rows = n;
    }
    if let Some(n) = knob("KARMOR_MERGE_FAN_IN") {
        options.merge_fan_in = n;
    }
    let done = compact(&inputs, &out, &options).expect("compact");
    let secs = start.elapsed().as_secs_f64();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "?".into());
    println!(
        "{} | {:.1} | {secs:.2} s | {hwm}",
        done.written.rows,
        done.written.bytes as f64 / 1048576.0
    );
}

/// 60 one-minute segments of one node: 200 containers whose behaviours repeat from minute to
/// minute (as a busy node's do), with a tail of new ones.
fn write_hour(dir: &Path, rows: usize) -> Vec<PathBuf> {
    let per = rows.div_ceil(60);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..60)
        .map(|minute| {
            let mut events: Vec<Event> = (0..per)
                .map(|_| {
                    let r = next();
                    let c = r % 200;
                    let ns = format!("ns-{}", c % 20);
                    let id = if r.is_multiple_of(10) {
                        next() % 1_000_000
                    } else {
                        r % 5_000
                    };
                    let op = [Op::Process, Op::File, Op::File, Op::Network][(id % 4) as usize];
                    let ts = 1_795_161_600_000_000_000
                        + minute * 60_000_000_000
                        + (r % 60_000) as i64 * 1_000_000;
                    Event {
                        ts_first: ts,
                        ts_last: ts + 1_000,
                        count: 1 + r % 9,
                        cluster: Some("bench".into()),
                        node: "node-a".into(),
                        namespace: Some(ns.clone()),
                        pod: Some(format!("{ns}-pod-{c}")),
                        pod_uid: Some(format!("uid-{c}")),
                        container: Some("main".into()),
                        container_id: Some(format!("{c:064x}")),
                        image: Some(format!("registry/app-{}:1.0", c % 20)),
                        workload_kind: Some("Deployment".into()),
                        workload: Some(format!("app-{}", c % 20)),
                        labels: vec![format!("app=app-{}", c % 20)],
                        pid: Some(1000 + (id % 50) as i32),
                        ppid: Some(1),
                        uid: Some(0),
                        process: Some(format!("/usr/bin/tool-{}", id % 40)),
                        parent_process: Some("/bin/sh".into()),
                        op,
                        source: Source::Ebpf,
                        path: (op == Op::File).then(|| format!("/var/lib/app/data/{id}.db")),
                        access: (op == Op::File).then(|| "read".into()),
                        proto: (op == Op::Network).then(|| "tcp".into()),
                        direction: (op == Op::Network).then(|| "connect".into()),
                        remote_addr: (op == Op::Network)
                            .then(|| format!("10.0.{}.{}", id % 250, c % 250)),
                        remote_port: (op == Op::Network).then_some(5432),
                        result: Some("Passed".into()),
                        ..Event::default()
                    }
                })
                .collect();
            let meta = SegmentMeta {
                schema_version: schema_version(),
                producer: "bench".into(),
                node: "node-a".into(),
                events_seen: events.iter().map(|e| e.count).sum(),
                windows: 1,
                ..SegmentMeta::default()
            };
            let path = dir.join(format!("seg-{minute:02}.parquet"));
            write_segment(&path, &mut events, &meta).expect("segment");
            path
        })
        .collect()
}
