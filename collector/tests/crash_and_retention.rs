//! The collector binary under a write storm (synthetic sensor, no kernel needed): `kill -9`
//! never leaves an unreadable segment, and retention holds the byte limit under load.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use karmor_collector::datadir::{DataDir, Retention};
use karmor_contract::bundle::{parquet_files, read_manifest, verify_bundle};
use karmor_contract::segment::read_segment;

const BIN: &str = env!("CARGO_BIN_EXE_karmor-collector");

fn start(dir: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args([
            "--source",
            "synthetic",
            "--synthetic-rate",
            "0",
            "--no-metrics",
            "--no-kube",
            "--no-listen",
        ])
        .args([
            "--node-name",
            "storm",
            "--rotate-seconds",
            "0.05",
            "--rotate-rows",
            "5000",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start karmor-collector")
}

fn tmp_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(".tmp") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn kill_9_during_writes_never_leaves_an_unreadable_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen_segments = HashSet::new();
    let mut tmp_seen = 0;
    for round in 0..20u64 {
        let before = parquet_files(dir.path()).map_or(0, |f| f.len());
        let mut child = start(dir.path(), &[]);
        // Kill only once this round's storm is writing (start-up time varies with the
        // machine's load), at a moment that varies across rounds.
        let deadline = Instant::now() + Duration::from_secs(30);
        while parquet_files(dir.path()).map_or(0, |f| f.len()) <= before {
            assert!(
                Instant::now() < deadline,
                "round {round}: no segment within 30 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis((round * 37) % 200));
        child.kill().expect("kill -9");
        child.wait().unwrap();
        tmp_seen += tmp_files(dir.path()).len();

        // Every finished segment on disk opens and validates, whatever the manifest says.
        let files = parquet_files(dir.path()).unwrap();
        for f in &files {
            let (_, rows) = read_segment(f).unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(!rows.is_empty());
            seen_segments.insert(f.clone());
        }
        // The manifest never lists a temporary file.
        if let Ok(m) = read_manifest(dir.path()) {
            assert!(m.files.iter().all(|f| !f.path.ends_with(".tmp")));
        }
    }
    assert!(
        seen_segments.len() >= 20,
        "the storm wrote segments: {}",
        seen_segments.len()
    );
    // A restart cleans up after the last crash: no tmp file, and the bundle verifies.
    let mut child = start(dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "graceful stop");
    assert!(tmp_files(dir.path()).is_empty());
    let checks = verify_bundle(dir.path()).unwrap();
    let bad: Vec<_> = checks.iter().filter(|c| c.problem.is_some()).collect();
    assert!(bad.is_empty(), "{bad:?}");
    eprintln!(
        "{} segments over 20 kills; {tmp_seen} torn temporary files seen and ignored",
        seen_segments.len()
    );
}

#[test]
fn retention_holds_the_byte_limit_under_sustained_load() {
    let dir = tempfile::tempdir().unwrap();
    let limit: u64 = 400 * 1024;
    let mut child = start(dir.path(), &["--max-bytes", &limit.to_string()]);
    let started = Instant::now();
    let mut max_total = 0u64;
    let mut max_segment = 0u64;
    let mut samples = 0;
    let mut ever: std::collections::HashMap<std::path::PathBuf, u64> = Default::default();
    while started.elapsed() < Duration::from_secs(6) {
        let mut total = 0;
        for f in parquet_files(dir.path()).unwrap_or_default() {
            if let Ok(m) = fs::metadata(&f) {
                total += m.len();
                max_segment = max_segment.max(m.len());
                ever.insert(f, m.len());
            }
        }
        max_total = max_total.max(total);
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let m = read_manifest(dir.path()).unwrap();
    assert!(samples > 100);
    assert!(max_segment > 0);
    let written: u64 = m.totals.bytes;
    assert!(written <= limit, "manifest total {written} > {limit}");
    assert!(
        max_total <= limit,
        "data dir reached {max_total} bytes with limit {limit} (largest segment {max_segment})"
    );
    // Retention really worked: more was written than the limit allows, and what the manifest
    // lists is on disk.
    assert!(m.files.iter().all(|f| dir.path().join(&f.path).exists()));
    let ever_bytes: u64 = ever.values().sum();
    let at_kill = written_total(dir.path());
    assert!(
        ever_bytes > limit && at_kill <= limit,
        "segments seen {ever_bytes} bytes in all, {at_kill} kept"
    );
    // A restart with a lower limit prunes at once.
    let lower = limit / 2;
    let retention = Retention {
        max_bytes: lower,
        max_age: None,
    };
    let reopened = DataDir::open(dir.path(), "storm", retention).unwrap();
    assert!(written_total(dir.path()) <= lower);
    assert_eq!(written_total(dir.path()), reopened.bytes());
    eprintln!("peak {max_total} bytes with limit {limit} (largest segment {max_segment})");
}

fn written_total(dir: &Path) -> u64 {
    parquet_files(dir)
        .unwrap()
        .iter()
        .map(|f| fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}
