//! Collector benchmark (design §8), printed as a table:
//!
//! 1. user-space pipeline throughput on one core: kernel-layout records through decode,
//!    attribution, the de-duplication window and the segment writer;
//! 2. resident memory of the collector binary with 500 containers, and bytes on disk per raw
//!    event for a repetitive workload;
//! 3. the throughput of syscall-heavy loops (open/close, fork+exec, loopback TCP connect) with
//!    and without the eBPF probes attached, in interleaved rounds (every side in turn) so that
//!    other load on the machine falls on every side; medians of wall-clock rates and of rates
//!    per CPU-second of the loop are reported (root and BPF needed). Each probe set (file,
//!    process and network probes; all probes) runs next to its floor: the collector with
//!    empty programs on the same hooks (`--source empty-probes`), so that each loss splits
//!    into the kernel's part (what any program on those hooks costs, e.g. the syscall
//!    tracepoints' slow path) and the points above it that our programs cost; in the same
//!    rounds, two
//!    realistic workloads (`workloads`): `make -j2` of a generated 120-file C project and `tar`
//!    create + extract + list of a generated 20,000-file tree, wall and CPU time and their loss
//!    (on tmpfs, or in `KARMOR_BENCH_WORKDIR`);
//! 4. compaction of a 1M-row hour (60 one-minute segments written by the collector's writer,
//!    rows from `karmor_testdata::synthetic`): the collector's compaction code path
//!    (`compactor::compact_next`) alone in a child process (time, peak RSS as VmHWM), then the
//!    collector binary compacting the same hour at start-up while its synthetic source runs at
//!    200k events/s over 500 containers (its peak RSS, and the time until the hour file is
//!    listed).
//!
//! `cargo bench -p karmor-collector --bench collector` (or `scripts/bench-collector.sh`);
//! `… -- pipeline` runs only parts 1 and 2, `… -- probes` only part 3, `… -- compaction` only
//! part 4 (`KARMOR_BENCH_ROWS` for another size than 1M, `KARMOR_BENCH_DIR` for where it goes, `KARMOR_BENCH_KEEP=1` keeps a copy of the hour), `KARMOR_BENCH_ROUNDS` sets its rounds (default 5) and
//! `KARMOR_COLLECTOR_BIN` runs another collector build against the same loops, and
//! `KARMOR_BASELINE_BIN` adds a side with all the probes of another build (a before → after
//! in the same rounds).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use karmor_collector::attribution::NoPods;
use karmor_collector::compactor::compact_next;
use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::pipeline::{Pipeline, PipelineConfig};
use karmor_collector::probes::built_with_probes;
use karmor_collector::raw::decode;
use karmor_collector::run::CollectorConfig;
use karmor_collector::synthetic::SyntheticFeed;
use karmor_contract::schema::schema_version;
use karmor_contract::segment::SegmentMeta;
use libc::geteuid;

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::Workloads;

/// The collector binary; `KARMOR_COLLECTOR_BIN` runs another build (e.g. a saved baseline).
fn bin() -> String {
    std::env::var("KARMOR_COLLECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_karmor-collector").to_string())
}

fn main() {
    if let Ok(dir) = std::env::var(COMPACT_CHILD) {
        compact_child(Path::new(&dir));
        return;
    }
    // `cargo bench ... -- probes` runs only the probe-overhead part, `-- pipeline` only the
    // pipeline and memory parts, `-- compaction` only the compaction part.
    let only = |name: &str| std::env::args().skip(1).any(|a| a == name);
    let (only_probes, only_pipeline, only_compaction) =
        (only("probes"), only("pipeline"), only("compaction"));
    let all = !only_probes && !only_pipeline && !only_compaction;
    let mut rows: Vec<[String; 3]> = Vec::new();
    if all || only_pipeline {
        pipeline_throughput(&mut rows);
        memory_and_disk(&mut rows);
    }
    if all || only_probes {
        probe_overhead(&mut rows);
    }
    if all || only_compaction {
        compaction(&mut rows);
    }
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
            let window = p.drain_window(0, &NoPods);
            written += window.row_count();
            window.write_to(&mut data, &meta, 0).expect("write");
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
    karmor_contract::bundle::parquet_files(dir)
        .unwrap_or_default()
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

/// What one run of the collector binary on the synthetic source did.
struct Run {
    hwm_kib: u64,
    seen: u64,
    bytes: u64,
    rows: u64,
    segments: u64,
}

/// Runs the collector on the synthetic source (500 containers) at `rate` events/s for `secs`.
fn run_synthetic(rate: u64, secs: u64, port: u16) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(bin())
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
        .args(["--node-name", "bench", "--metrics-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collector");
    std::thread::sleep(Duration::from_secs(secs));
    let hwm_kib = hwm_kib(child.id()).unwrap_or(0);
    let seen = scrape(port, "karmor_events_seen_total").unwrap_or(0);
    stop(&mut child);
    let totals = karmor_contract::bundle::read_manifest(dir.path())
        .map(|m| m.totals)
        .unwrap_or_default();
    Run {
        hwm_kib,
        seen,
        bytes: dir_bytes(dir.path()),
        rows: totals.rows,
        segments: totals.files,
    }
}

fn memory_and_disk(rows: &mut Vec<[String; 3]>) {
    let idle = run_synthetic(1, 3, 19463);
    let rate = 200_000;
    let busy = run_synthetic(rate, 8, 19464);
    rows.push([
        "collector resident memory (peak), 500 containers, 200k events/s".into(),
        format!("{:.1} MiB", busy.hwm_kib as f64 / 1024.0),
        "<= 64 MiB".into(),
    ]);
    rows.push([
        "… of which the idle collector (peak, 1 event/s)".into(),
        format!("{:.1} MiB", idle.hwm_kib as f64 / 1024.0),
        "(reported)".into(),
    ]);
    rows.push([
        "bytes on disk per raw event, repetitive workload".into(),
        format!(
            "{:.3} B ({} events, {} bytes)",
            busy.bytes as f64 / busy.seen.max(1) as f64,
            busy.seen,
            busy.bytes
        ),
        "(reported)".into(),
    ]);
    rows.push([
        "rows / segments written in that run".into(),
        format!("{} / {}", busy.rows, busy.segments),
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

/// CPU time (user + system) of this process and of its waited-for children, in seconds.
fn cpu_seconds() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes into the struct we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut ru) } == 0 {
            for tv in [ru.ru_utime, ru.ru_stime] {
                total += tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
            }
        }
    }
    total
}

/// One loop's rate: operations per wall-clock second, and per CPU-second of the loop (its
/// own process and children; the collector's CPU is not in it). The second is steadier on a
/// machine shared with other work.
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

fn measure(n: u64, mut op: impl FnMut()) -> Rate {
    let (t, c) = (Instant::now(), cpu_seconds());
    for _ in 0..n {
        op();
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - c).max(1e-6);
    Rate {
        wall: n as f64 / wall,
        cpu: n as f64 / cpu,
    }
}

/// Wall-clock and CPU seconds (this process and its waited-for children) of one run of a
/// workload.
#[derive(Clone, Copy)]
struct Timed {
    wall: f64,
    cpu: f64,
}

fn timed(op: impl FnOnce() -> Result<(), String>) -> Result<Timed, String> {
    let (t, c) = (Instant::now(), cpu_seconds());
    op()?;
    Ok(Timed {
        wall: t.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - c,
    })
}

/// One run of each realistic workload, from a clean state (the cleaning is not timed).
fn realistic(w: &Workloads) -> Result<[Timed; 2], String> {
    w.make_clean()?;
    let make = timed(|| w.make())?;
    w.tar_clean()?;
    let tar = timed(|| w.tar())?;
    w.tar_clean()?;
    Ok([make, tar])
}

/// SO_LINGER with a zero timeout: close sends a reset and leaves no TIME_WAIT.
fn reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for the call; the option value is a valid `linger` of that size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Rates of three syscall-heavy loops.
fn loops() -> [Rate; 3] {
    let open = measure(1_000_000, || {
        drop(fs::File::open("/etc/hostname").expect("open"));
    });
    let exec = measure(400, || {
        Command::new("/bin/true").status().expect("exec");
    });
    // Connect and accept in turn, so that the accept queue never overflows (a dropped SYN
    // costs a one-second retransmission and measures nothing); the client resets instead of
    // closing (SO_LINGER 0), so that no TIME_WAIT state runs out of ports across rounds.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    let connect = measure(20_000, || {
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        reset_on_close(&client);
        drop(client);
        drop(server);
    });
    [open, exec, connect]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A loopback port free right now, for the collector's metrics: other engineers' collectors
/// and tests on this machine hold the default ports, and scraping theirs would measure them.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts the collector `bin` with its eBPF probes (`extra` flags, e.g. `--no-syscalls`),
/// without its gRPC service and with its metrics on a free port, and waits until they are
/// attached. Returns the child and its metrics port.
fn start_collector(bin: &str, dir: &Path, extra: &[&str]) -> Result<(Child, u16), String> {
    let port = free_port()?;
    let mut child = Command::new(bin)
        .args(["--no-kube", "--no-listen", "--node-name", "bench"])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("collector did not start: {e}"))?;
    let t = Instant::now();
    while scrape(port, "karmor_probes_attached").unwrap_or(0) == 0 {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the collector exited before its probes attached: {status}"
            ));
        }
        if t.elapsed() > Duration::from_secs(60) {
            stop(&mut child);
            return Err("probes did not attach within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, port))
}

/// Flags of the file, process and network probes alone (no system call or capability counts).
const FPN: &[&str] = &["--no-syscalls", "--no-capabilities"];
/// Flags of empty programs on the same hooks as the sensors (`karmor_empty.bpf.c`).
const EMPTY: &[&str] = &["--source", "empty-probes"];
/// Flags of the file sensor's hooks alone (its system call exit tracepoints).
const FILES_ONLY: &[&str] = &["--sensors", "files"];

/// One side of the comparison: a name, and the collector (binary and flags) running during
/// the loops and workloads, or none.
struct Side {
    name: String,
    run: Option<(String, Vec<&'static str>)>,
    /// The side whose loss is this one's floor (empty programs on the same hooks).
    floor: Option<usize>,
}

/// The sides measured in turn: none; empty programs on the file sensor's hooks alone (the
/// kernel's syscall tracepoint slow path, with the fewest programs); empty programs on the
/// hooks of the file, process and network probes, then those probes; empty programs on all the hooks, then all the probes
/// (each probe set next to its floor: what any program on those hooks costs on this kernel);
/// and, with `KARMOR_BASELINE_BIN`, all the probes of that build (a before → after in the
/// same rounds).
fn sides() -> Vec<Side> {
    let me = bin();
    let with = |name: &str, flags: &[&'static str], floor: Option<usize>| Side {
        name: name.into(),
        run: Some((me.clone(), [EMPTY, flags].concat().to_vec())),
        floor,
    };
    let mut v = vec![
        Side {
            name: "no probes".into(),
            run: None,
            floor: None,
        },
        with("empty programs, file hooks only", FILES_ONLY, None),
        with("empty programs, file/process/network hooks", FPN, None),
        Side {
            name: "files, processes, network".into(),
            run: Some((me.clone(), FPN.to_vec())),
            floor: Some(2),
        },
        with("empty programs, all hooks", &[], None),
        Side {
            name: "all probes (+ syscall and capability counts)".into(),
            run: Some((me.clone(), Vec::new())),
            floor: Some(EMPTY_ALL),
        },
    ];
    if let Ok(base) = std::env::var("KARMOR_BASELINE_BIN") {
        v.push(Side {
            name: format!("all probes, baseline {base}"),
            run: Some((base, Vec::new())),
            floor: Some(EMPTY_ALL),
        });
    }
    v
}

/// The side of empty programs on all the hooks.
const EMPTY_ALL: usize = 4;
/// The side whose events are counted in the summary: all the probes of this build.
const COUNTED_SIDE: usize = 5;

/// Rounds of each side in turn, interleaved so that load from other processes on the
/// machine falls on every side; medians are reported (`KARMOR_BENCH_ROUNDS`, default 5).
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
    let rounds: usize = std::env::var("KARMOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let skip = |rows: &mut Vec<[String; 3]>, why: String| {
        rows.push([
            "syscall-heavy loops and realistic workloads with probes".into(),
            format!("skipped: {why}"),
            "".into(),
        ]);
    };
    let work = match Workloads::generate() {
        Ok(w) => w,
        Err(why) => return skip(rows, why),
    };
    // One untimed run of each workload first: the page cache and the compiler warm for all.
    if let Err(why) = realistic(&work) {
        return skip(rows, why);
    }
    let sides = sides();
    // [side][loop] → one rate per round; [side][workload] → one time per round.
    let mut rates: Vec<[Vec<Rate>; 3]> = sides.iter().map(|_| Default::default()).collect();
    let mut times: Vec<[Vec<Timed>; 2]> = sides.iter().map(|_| Default::default()).collect();
    let (mut seen, mut dropped) = (0u64, 0u64);
    for round in 0..rounds {
        let mut line = format!("round {round}:");
        for (set, side) in sides.iter().enumerate() {
            let dir = tempfile::tempdir().expect("tmp");
            let mut child = match &side.run {
                None => None,
                Some((bin, flags)) => match start_collector(bin, dir.path(), flags) {
                    Ok(c) => Some(c),
                    Err(why) => return skip(rows, format!("{}: {why}", side.name)),
                },
            };
            let r = loops();
            let w = realistic(&work);
            if let Some((child, port)) = child.as_mut() {
                if set == COUNTED_SIDE {
                    dropped += scrape(*port, "karmor_events_dropped_total").unwrap_or(0);
                    seen += scrape(*port, "karmor_events_seen_total").unwrap_or(0);
                }
                stop(child);
            }
            let w = match w {
                Ok(w) => w,
                Err(why) => return skip(rows, why),
            };
            line += &format!(
                " {}: {:.0} / {:.0} / {:.0} ops/s, make {:.2} s, tar {:.2} s;",
                side.name, r[0].wall, r[1].wall, r[2].wall, w[0].wall, w[1].wall
            );
            for (i, rate) in r.into_iter().enumerate() {
                rates[set][i].push(rate);
            }
            for (i, t) in w.into_iter().enumerate() {
                times[set][i].push(t);
            }
        }
        eprintln!("{line}");
    }
    // Loops: the change of rate, (with / without - 1), negative when slower (as before);
    // workloads: the extra time, (with / without - 1). "Above its floor": the points of loss
    // beyond that of empty programs on the same hooks, i.e. what our programs themselves cost.
    let pct = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    // The floor table: per loop and workload, each side's loss in wall time and in CPU
    // seconds (loops: the drop of the rate; workloads: the extra time).
    let mut floors: Vec<(String, Vec<String>)> = Vec::new();
    let above = |points: f64, side: &Side| {
        side.floor
            .map(|_| format!("; {points:+.1} points above its floor"))
            .unwrap_or_default()
    };
    for (i, name) in ["open+close", "fork+exec /bin/true", "loopback TCP connect"]
        .iter()
        .enumerate()
    {
        let wall = |v: &[Rate]| median(v.iter().map(|r| r.wall).collect());
        let cpu = |v: &[Rate]| median(v.iter().map(|r| r.cpu).collect());
        let (w0, c0) = (wall(&rates[0][i]), cpu(&rates[0][i]));
        let change: Vec<f64> = rates.iter().map(|r| pct(w0, wall(&r[i]))).collect();
        let parts: Vec<String> = sides
            .iter()
            .enumerate()
            .skip(1)
            .map(|(set, side)| {
                let (w, c) = (wall(&rates[set][i]), cpu(&rates[set][i]));
                let floor = change[side.floor.unwrap_or(set)];
                format!(
                    "{}: {w:.0} ({:+.1} %{}), per CPU-s {c:.0} ({:+.1} %)",
                    side.name,
                    change[set],
                    above(floor - change[set], side),
                    pct(c0, c)
                )
            })
            .collect();
        floors.push((
            name.to_string(),
            (1..sides.len())
                .map(|set| {
                    let loss = |a: f64, b: f64| -pct(a, b);
                    format!(
                        "{:.1} % / {:.1} %",
                        loss(w0, wall(&rates[set][i])),
                        loss(c0, cpu(&rates[set][i]))
                    )
                })
                .collect(),
        ));
        rows.push([
            format!("{name} loop: ops/s (median of {rounds} interleaved rounds; change of rate)"),
            format!(
                "no probes: {w0:.0}, per CPU-s {c0:.0}; {}",
                parts.join("; ")
            ),
            "<= 5 points above the floor; fork+exec, connect <= 5 % in total".into(),
        ]);
    }
    let at = work.path().display();
    let names = [
        format!(
            "make -j2 of a generated {}-file C project (in {at})",
            workloads::C_FILES + 1
        ),
        format!(
            "tar create + extract + list of a generated {}-file tree (in {at})",
            workloads::TREE_FILES
        ),
    ];
    for (i, name) in names.iter().enumerate() {
        let wall = |v: &[Timed]| median(v.iter().map(|t| t.wall).collect());
        let cpu = |v: &[Timed]| median(v.iter().map(|t| t.cpu).collect());
        let (w0, c0) = (wall(&times[0][i]), cpu(&times[0][i]));
        let losses: Vec<f64> = times.iter().map(|t| pct(w0, wall(&t[i]))).collect();
        let parts: Vec<String> = sides
            .iter()
            .enumerate()
            .skip(1)
            .map(|(set, side)| {
                let (w, c) = (wall(&times[set][i]), cpu(&times[set][i]));
                let floor = losses[side.floor.unwrap_or(set)];
                format!(
                    "{}: {w:.2} s ({:+.1} %{}), CPU {c:.2} s ({:+.1} %)",
                    side.name,
                    losses[set],
                    above(losses[set] - floor, side),
                    pct(c0, c)
                )
            })
            .collect();
        floors.push((
            ["make -j2", "tar c+x+t"][i].to_string(),
            (1..sides.len())
                .map(|set| {
                    format!(
                        "{:.1} % / {:.1} %",
                        pct(w0, wall(&times[set][i])),
                        pct(c0, cpu(&times[set][i]))
                    )
                })
                .collect(),
        ));
        rows.push([
            format!("{name}: seconds (median of {rounds} interleaved rounds; loss = extra time)"),
            format!("no probes: {w0:.2} s, CPU {c0:.2} s; {}", parts.join("; ")),
            "<= 5 % in total".into(),
        ]);
    }
    println!();
    println!("Loss against no probes, wall / CPU seconds (medians of {rounds} interleaved rounds; loops: the drop of the rate, workloads: the extra time):");
    println!();
    let names: Vec<&str> = sides.iter().skip(1).map(|s| s.name.as_str()).collect();
    println!("| measure | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(names.len()));
    for (name, cells) in &floors {
        println!("| {name} | {} |", cells.join(" | "));
    }
    rows.push([
        "events seen (records, kernel-counted repeats, system calls and capability checks) / dropped, all-probes loops and workloads (all rounds)".into(),
        format!("{seen} / {dropped}"),
        "(reported)".into(),
    ]);
}

/// The child process of the compaction part: compacts the closed hour of the data directory
/// `dir` with the collector's own code path and prints `seconds rows_in rows_out bytes_out
/// peak_kib`.
const COMPACT_CHILD: &str = "KARMOR_BENCH_COMPACT_CHILD";
const HOUR_NS: i64 = 3_600_000_000_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn compact_child(dir: &Path) {
    let unlimited = Retention {
        max_bytes: 0,
        max_age: None,
    };
    let data = DataDir::open(dir, "bench", unlimited).expect("data dir");
    let data = std::sync::Mutex::new(data);
    let policy = CollectorConfig::compaction_policy(Duration::from_secs(60), false);
    let t = Instant::now();
    let done = compact_next(&data, now_ns(), policy)
        .expect("compaction")
        .expect("the hour is due");
    let secs = t.elapsed().as_secs_f64();
    let bytes = fs::metadata(dir.join(&done.output)).map_or(0, |m| m.len());
    println!(
        "{secs} {} {} {bytes} {}",
        done.rows_in,
        done.rows_out,
        hwm_kib(std::process::id()).unwrap_or(0)
    );
}

/// Writes `rows` rows of the closed hour starting at `start` as 60 one-minute segments through
/// the collector's writer: rows of the synthetic cluster model, on one node.
fn write_hour(dir: &Path, rows: usize, start: i64) {
    let unlimited = Retention {
        max_bytes: 0,
        max_age: None,
    };
    let mut data = DataDir::open(dir, "bench", unlimited).expect("data dir");
    let per = rows.div_ceil(60);
    for minute in 0..60i64 {
        let events: Vec<_> = karmor_testdata::synthetic::events(per, minute as u64 % 7)
            .enumerate()
            .map(|(i, mut e)| {
                e.node = "bench".into();
                e.ts_first =
                    start + minute * 60_000_000_000 + (i as i64 * 59_000_000_000) / per as i64;
                e.ts_last = e.ts_first + 1_000_000;
                e
            })
            .collect();
        let meta = SegmentMeta {
            schema_version: schema_version(),
            node: "bench".into(),
            events_seen: events.iter().map(|e| e.count).sum(),
            windows: 1,
            ..SegmentMeta::default()
        };
        data.write(events, &meta, now_ns()).expect("write");
    }
}

fn compaction(rows: &mut Vec<[String; 3]>) {
    let n: usize = std::env::var("KARMOR_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var_os("KARMOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let alone = tempfile::tempdir_in(&base).expect("tmp");
    // Yesterday's hour at this time: closed, and within the default age limit.
    let start = now_ns() / HOUR_NS * HOUR_NS - 24 * HOUR_NS;
    write_hour(alone.path(), n, start);
    let mib_in = dir_bytes(alone.path()) as f64 / 1048576.0;
    let live = tempfile::tempdir_in(&base).expect("tmp");
    if std::env::var_os("KARMOR_BENCH_KEEP").is_some() {
        // Kept (with its inputs), to measure the compaction again on the same hour, e.g. under
        // heaptrack: `KARMOR_BENCH_COMPACT_CHILD=<dir> <this bench>`.
        let kept = base.join(format!("compaction-hour-{}", std::process::id()));
        let copied = Command::new("cp")
            .arg("-a")
            .arg(alone.path())
            .arg(&kept)
            .status()
            .expect("cp");
        assert!(copied.success());
        eprintln!("hour kept in {}", kept.display());
    }
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", alone.path().display()))
        .arg(live.path())
        .status()
        .expect("cp");
    assert!(copied.success());

    // The compaction code path alone, in a child process.
    let out = Command::new(std::env::current_exe().expect("this bench"))
        .env(COMPACT_CHILD, alone.path())
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = report
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let [secs, rows_in, rows_out, bytes_out, hwm] = f[..] else {
        panic!("child said {report:?}");
    };
    rows.push([
        format!("compaction of a {n}-row hour (60 minute segments, {mib_in:.1} MiB), the collector's code path alone"),
        format!(
            "{secs:.2} s, {rows_in} → {rows_out} rows, {:.1} MiB out, peak RSS {:.1} MiB",
            bytes_out / 1048576.0,
            hwm / 1024.0
        ),
        "<= 64 MiB".into(),
    ]);

    // The collector binary compacting the same hour at start-up under load.
    let port = 19465;
    let mut child = Command::new(bin())
        .args(["--source", "synthetic", "--synthetic-containers", "500"])
        .args([
            "--no-kube",
            "--synthetic-rate",
            "200000",
            "--rotate-seconds",
            "2",
        ])
        .args([
            "--node-name",
            "bench",
            "--compact-days=false",
            "--metrics-addr",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(live.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collector");
    let t = Instant::now();
    let mut done = None;
    while t.elapsed() < Duration::from_secs(300) {
        if scrape(port, "karmor_compactions_total").is_some_and(|c| c >= 1) {
            done = Some(t.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few more windows after it, so that the peak covers compaction and load together.
    std::thread::sleep(Duration::from_secs(2));
    let peak = hwm_kib(child.id()).unwrap_or(0);
    stop(&mut child);
    rows.push([
        "collector compacting that hour at start-up, 500 containers, 200k events/s".into(),
        match done {
            Some(s) => format!(
                "peak RSS {:.1} MiB, hour file listed after {s:.1} s",
                peak as f64 / 1024.0
            ),
            None => format!(
                "not compacted within 300 s (peak RSS {:.1} MiB)",
                peak as f64 / 1024.0
            ),
        },
        "<= 64 MiB".into(),
    ]);
}
