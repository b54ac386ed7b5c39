//! Archive tier benchmark against a real S3-compatible server on loopback (moto in server
//! mode, `pip install 'moto[server]'`): a 30-day bundle (hour files of two nodes) is archived,
//! read back whole, then read back for a one-day `--since`; prints a table of throughput and
//! of the objects listed and fetched. `cargo bench -p karmor-archive --bench archive`
//! (`KARMOR_BENCH_ROWS_PER_HOUR`, default 400, sets the size).

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use karmor_archive::fetch::{fetch, NoProgress as NoFetchProgress, Selection};
use karmor_archive::upload::{archive_bundle, ArchiveOptions, NoProgress};
use karmor_archive::{connect, ArchiveUrl};
use karmor_contract::bundle::{write_bundle, BundleOptions};

const DAY: i64 = 86_400_000_000_000;
const T0: i64 = 1_793_491_200_000_000_000; // 2026-11-01T00:00:00Z

fn requests(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let start = l.find("] \"")? + 3;
            let rest = &l[start..];
            Some(rest[..rest.find(" HTTP/")?].to_string())
        })
        .collect()
}

fn main() {
    let per_hour: usize = std::env::var("KARMOR_BENCH_ROWS_PER_HOUR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let work = tempfile::tempdir().expect("temp dir");
    let bundle = work.path().join("bundle");

    // 30 days x 24 hours x 2 nodes of synthetic rows.
    let started = Instant::now();
    let mut events = Vec::new();
    for (i, mut e) in karmor_testdata::synthetic::events(per_hour * 24 * 30 * 2, 11).enumerate() {
        let slot = (i / per_hour) as i64; // one (node, hour) per per_hour rows
        e.node = if slot % 2 == 0 { "node-a" } else { "node-b" }.into();
        let hour = slot / 2;
        e.ts_first = T0 + hour * 3_600_000_000_000 + (i % per_hour) as i64 * 1_000_000;
        e.ts_last = e.ts_first + 1_000;
        events.push(e);
    }
    let m = write_bundle(
        &bundle,
        events,
        &BundleOptions {
            producer: "bench".into(),
            cluster: Some("bench".into()),
            ..BundleOptions::default()
        },
    )
    .expect("write the bundle");
    let gen = started.elapsed();

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let log = work.path().join("moto.log");
    let mut moto = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("moto (pip install 'moto[server]')");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let create = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], method='PUT'))",
            &format!("http://127.0.0.1:{port}/bench"),
        ])
        .status()
        .expect("create bucket");
    assert!(create.success());
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    std::env::set_var("AWS_REGION", "us-east-1");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = ArchiveUrl::parse("s3://bench/k").expect("url");
    let remote = connect::connect(&url).expect("connect");
    let mut opts = ArchiveOptions::new(work.path().join("journal"), "bench");
    opts.parallel = 8;

    let t = Instant::now();
    let up = rt
        .block_on(archive_bundle(&remote, &bundle, &opts, &NoProgress))
        .expect("archive");
    let up_time = t.elapsed();
    assert_eq!(up.uploaded, m.files.len());
    let t = Instant::now();
    let again = rt
        .block_on(archive_bundle(&remote, &bundle, &opts, &NoProgress))
        .expect("archive again");
    let again_time = t.elapsed();
    assert_eq!(again.uploaded, 0);

    let cache = work.path().join("cache");
    let before = requests(&log).len();
    let t = Instant::now();
    let all = rt
        .block_on(fetch(
            &remote,
            &cache,
            &Selection::default(),
            8,
            &NoFetchProgress,
        ))
        .expect("read back");
    let all_time = t.elapsed();
    let all_reqs = requests(&log).len() - before;

    let day_cache = work.path().join("cache-day");
    let since = Selection {
        since_ns: Some(T0 + 29 * DAY),
        ..Selection::default()
    };
    let before = requests(&log).len();
    let t = Instant::now();
    let day = rt
        .block_on(fetch(&remote, &day_cache, &since, 8, &NoFetchProgress))
        .expect("read back one day");
    let day_time = t.elapsed();
    let day_log: Vec<String> = requests(&log).into_iter().skip(before).collect();
    let lists = day_log.iter().filter(|r| r.contains("list-type=2")).count();
    let gets = day_log
        .iter()
        .filter(|r| r.starts_with("GET ") && !r.contains("list-type=2"))
        .count();
    let _ = moto.kill();
    let _ = moto.wait();

    let mib = m.totals.bytes as f64 / (1 << 20) as f64;
    println!(
        "archive tier against moto on loopback: {} files, {:.1} MiB, {} rows (generated in {:.1} s)",
        m.files.len(),
        mib,
        m.totals.rows,
        gen.as_secs_f64()
    );
    println!();
    println!("| step | files | MiB | seconds | MiB/s | requests |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| archive (upload all) | {} | {mib:.1} | {:.2} | {:.1} | - |",
        up.uploaded,
        up_time.as_secs_f64(),
        mib / up_time.as_secs_f64()
    );
    println!(
        "| archive again (nothing to send) | {} | 0 | {:.2} | - | - |",
        again.uploaded,
        again_time.as_secs_f64()
    );
    println!(
        "| read back all (30 days) | {} | {:.1} | {:.2} | {:.1} | {all_reqs} |",
        all.fetched,
        all.fetched_bytes as f64 / (1 << 20) as f64,
        all_time.as_secs_f64(),
        all.fetched_bytes as f64 / (1 << 20) as f64 / all_time.as_secs_f64()
    );
    println!(
        "| read back --since last day | {} | {:.2} | {:.2} | {:.1} | {} |",
        day.fetched,
        day.fetched_bytes as f64 / (1 << 20) as f64,
        day_time.as_secs_f64(),
        day.fetched_bytes as f64 / (1 << 20) as f64 / day_time.as_secs_f64(),
        day_log.len()
    );
    println!();
    println!(
        "one-day --since on the 30-day archive: {lists} listing request, {} manifest listing {} files read, {} files selected, {gets} GET requests ({} of them files)",
        day.manifests, day.listed, day.selected, day.fetched
    );
}
