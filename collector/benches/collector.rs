//! Collector benchmark (design §8), printed as a table:
//!
//! 1. user-space pipeline throughput on one core: kernel-layout records through decode,
//!    attribution, the de-duplication window and the segment writer;
//! 2. resident memory of the collector binary with 500 containers, and bytes on disk per raw
//!    event for a repetitive workload;
//! 3. the throughput of syscall-heavy loops (open/close, fork+exec, loopback TCP connect) with
//!    and without the eBPF probes attached, side by side in one run (root and BPF needed).
//!
//! `cargo bench -p karmor-collector --bench collector` (or `scripts/bench-collector.sh`).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use karmor_collector::daemon::attribution::NoPods;
use karmor_collector::daemon::datadir::{DataDir, Retention};
use karmor_collector::daemon::pipeline::{Pipeline, PipelineConfig};
use karmor_collector::daemon::probes::built_with_probes;
use karmor_collector::daemon::raw::decode;
use karmor_collector::daemon::synthetic::SyntheticFeed;
use karmor_collector::schema::schema_version;
use karmor_collector::segment::SegmentMeta;

const BIN: &str = env!("CARGO_BIN_EXE_karmor-collector");

fn main() {
    let mut rows: Vec<[String; 3]> = Vec::new();
    pipeline_throughput(&mut rows);
    memory_and_disk(&mut rows);
    probe_overhead(&mut rows);
    println!();
    println!("| measure | value | target (design §8) |");
    println!("|---|---:|---|");
    for [a, b, c] in rows {
        println!("| {a} | {b} | {c} |");
    }
}

fn pipeline_throughput(rows: &mut Vec<[String; 3]>) {
    let n: usize = 2_000_000;
    let mut feed = SyntheticFeed::new(500);
    let records: Vec<Vec<u8>> = (0..100_000)
        .map(|i| feed.next_record(i as u64 * 1000))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let mut data = DataDir::open(
        dir.path(),
        "bench",
        Retention {
            max_bytes: 0,
            max_age: None,
        },
    )
    .expect("data dir");
    let mut p = Pipeline::new(PipelineConfig {
        node: "bench".into(),
        cluster: None,
        record_args: true,
        process_capacity: 65_536,
    });
    let meta = SegmentMeta {
        schema_version: schema_version(),
        windows: 1,
        ..SegmentMeta::default()
    };
    let t = Instant::now();
    let mut written = 0;
    for i in 0..n {
        let rec = &records[i % records.len()];
        if let Ok(ev) = decode(rec) {
            p.handle(&ev);
        }
        // A window every 250k events, as a busy node flushes every few seconds.
        if (i + 1) % 250_000 == 0 {
            let out = p.drain(0, &NoPods);
            written += out.len();
            data.write(out, &meta, 0).expect("write");
        }
    }
    let secs = t.elapsed().as_secs_f64();
    rows.push([
        "pipeline: decode → attribution → dedup → Parquet writer, one core".into(),
        format!(
            "{:.0} events/s ({n} events, {written} rows written)",
            n as f64 / secs
        ),
        ">= 500k events/s".into(),
    ]);
}

fn hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    karmor_collector::bundle::parquet_files(dir)
        .unwrap_or_default()
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

fn memory_and_disk(rows: &mut Vec<[String; 3]>) {
    let dir = tempfile::tempdir().expect("tmp");
    let rate = 200_000;
    let secs = 8;
    let mut child = Command::new(BIN)
        .args([
            "--source",
            "synthetic",
            "--synthetic-containers",
            "500",
            "--no-kube",
        ])
        .args([
            "--synthetic-rate",
            &rate.to_string(),
            "--rotate-seconds",
            "2",
        ])
        .args(["--node-name", "bench", "--metrics-addr", "127.0.0.1:19464"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collector");
    std::thread::sleep(Duration::from_secs(secs));
    let hwm = hwm_kib(child.id()).unwrap_or(0);
    let seen = scrape(19464, "karmor_events_seen_total").unwrap_or(0);
    stop(&mut child);
    let bytes = dir_bytes(dir.path());
    rows.push([
        "collector resident memory (peak), 500 containers, 200k events/s".into(),
        format!("{:.1} MiB", hwm as f64 / 1024.0),
        "<= 64 MiB".into(),
    ]);
    rows.push([
        "bytes on disk per raw event, repetitive workload".into(),
        format!(
            "{:.3} B ({} events, {} bytes)",
            bytes as f64 / seen.max(1) as f64,
            seen,
            bytes
        ),
        "(reported)".into(),
    ]);
}

fn scrape(port: u16, metric: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find(|l| l.starts_with(metric))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Operations per second of three syscall-heavy loops.
fn loops() -> [f64; 3] {
    let t = Instant::now();
    let n_open = 200_000;
    for _ in 0..n_open {
        drop(fs::File::open("/etc/hostname").expect("open"));
    }
    let open_rate = n_open as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let n_exec = 400;
    for _ in 0..n_exec {
        Command::new("/bin/true").status().expect("exec");
    }
    let exec_rate = n_exec as f64 / t.elapsed().as_secs_f64();

    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    let acceptor = std::thread::spawn(move || {
        for s in listener.incoming().take(5_000) {
            drop(s);
        }
    });
    let t = Instant::now();
    for _ in 0..5_000 {
        drop(TcpStream::connect(addr).expect("connect"));
    }
    let connect_rate = 5_000.0 / t.elapsed().as_secs_f64();
    let _ = acceptor.join();
    [open_rate, exec_rate, connect_rate]
}

fn probe_overhead(rows: &mut Vec<[String; 3]>) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { geteuid() } == 0;
    if !root || !built_with_probes() {
        rows.push([
            "syscall-heavy loops with probes".into(),
            "skipped: needs root and a build with probes".into(),
            "<= 5 % loss".into(),
        ]);
        return;
    }
    let before = loops();
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(BIN)
        .args([
            "--no-kube",
            "--node-name",
            "bench",
            "--metrics-addr",
            "127.0.0.1:19465",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collector");
    let t = Instant::now();
    while scrape(19465, "karmor_probes_attached").unwrap_or(0) == 0 {
        if t.elapsed() > Duration::from_secs(30) {
            stop(&mut child);
            rows.push([
                "syscall-heavy loops with probes".into(),
                "skipped: probes did not attach".into(),
                "".into(),
            ]);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let with = loops();
    let dropped = scrape(19465, "karmor_events_dropped_total").unwrap_or(0);
    let seen = scrape(19465, "karmor_events_seen_total").unwrap_or(0);
    stop(&mut child);
    let after = loops();
    for (i, name) in ["open+close", "fork+exec /bin/true", "loopback TCP connect"]
        .iter()
        .enumerate()
    {
        let base = (before[i] + after[i]) / 2.0;
        rows.push([
            format!("{name} loop: ops/s without → with probes"),
            format!(
                "{:.0} → {:.0} ({:+.1} %)",
                base,
                with[i],
                (with[i] / base - 1.0) * 100.0
            ),
            "<= 5 % loss".into(),
        ]);
    }
    rows.push([
        "events seen / dropped by the ring buffer during the loops".into(),
        format!("{seen} / {dropped}"),
        "(reported)".into(),
    ]);
}

extern "C" {
    fn geteuid() -> u32;
}
