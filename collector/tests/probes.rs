//! The real probes on this machine's kernel: short-lived processes in a cgroup named like a
//! containerd container exec, read and write files, change, rename and remove them, connect
//! over TCP and send over UDP, and every behaviour must come out as an attributed row. A
//! process opening one file many times, across window flushes, checks that the kernel's
//! de-duplication loses no count. Needs root, BPF, the probes built in and a cgroup v2 hierarchy:
//! it is `#[ignore]`d so that a plain `cargo test` says it did not run, and run with
//! `cargo test -- --include-ignored` (CI does, as root) it fails when one of those is missing.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use karmor_collector::attribution::NoPods;
use karmor_collector::datadir::Retention;
use karmor_collector::metrics::Counters;
use karmor_collector::probes::built_with_probes;
use karmor_collector::run::{run, CollectorConfig, SensorSource};
use karmor_contract::bundle::read_manifest;
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Op};

const CONTAINER: &str = "5e1ec7ab1e0c0ffee0ddba11c0de5eedfacefeed0123456789abcdef01234567";
const POD_UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
/// Opens of one file by one process.
const REPEATS: u64 = 200_000;

/// What this machine lacks for the test, if anything.
fn missing_precondition() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return Some("not root".into());
    }
    if !built_with_probes() {
        return Some("built without eBPF probes (clang/bpftool/BTF missing at build time)".into());
    }
    if cgroup2_root().is_none() {
        return Some("no cgroup v2 hierarchy mounted".into());
    }
    None
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn cgroup2_root() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
}

/// A cgroup laid out as the kubelet and containerd (systemd driver) lay them out.
struct TestCgroup {
    pod: PathBuf,
    leaf: PathBuf,
}

impl TestCgroup {
    fn create() -> TestCgroup {
        TestCgroup::create_for(CONTAINER, POD_UID)
    }

    fn create_for(container: &str, pod_uid: &str) -> TestCgroup {
        let root = cgroup2_root().expect("cgroup2");
        let pod = root.join(format!(
            "kubepods-besteffort-pod{}.slice",
            pod_uid.replace('-', "_")
        ));
        let leaf = pod.join(format!("cri-containerd-{container}.scope"));
        fs::create_dir_all(&leaf).expect("create test cgroup");
        TestCgroup { pod, leaf }
    }

    /// Runs `script` with sh inside the cgroup; the shell moves itself in, then execs.
    fn run(&self, script: &str) {
        let procs = self.leaf.join("cgroup.procs");
        let full = format!("echo $$ > {} && {script}", procs.display());
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&full)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if fs::remove_dir(&self.leaf).is_ok() || !self.leaf.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir(&self.pod);
    }
}

fn rows(dir: &Path) -> Vec<Event> {
    let m = read_manifest(dir).expect("manifest");
    m.files
        .iter()
        .flat_map(|f| read_segment(&dir.join(&f.path)).expect("segment").1)
        .collect()
}

#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF) and cgroup v2"]
fn probes_record_attributed_behaviour_of_short_lived_processes() {
    if let Some(why) = missing_precondition() {
        panic!("the probes test cannot run here: {why}");
    }
    let work = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let collector = Collector::start(Duration::from_millis(500));

    let cg = TestCgroup::create();
    let wdir = work.path().display().to_string();
    cg.run("exec /bin/echo hello-karmor > /dev/null");
    cg.run("exec cat /etc/hostname > /dev/null");
    cg.run("cd /etc && exec cat ./passwd > /dev/null");
    cg.run(&format!(
        "cd {wdir} && echo one > ./created.txt && echo two > ./created.txt"
    ));
    cg.run(&format!(
        "cd {wdir} && touch victim && chmod 600 victim && chown 0 victim && mv victim moved && rm moved"
    ));
    // One process opens one file REPEATS times, between two marker files; the loop spans
    // several 500 ms windows on a busy machine, or at least one.
    for name in ["repeat.txt", "before.txt", "after.txt"] {
        fs::write(work.path().join(name), b"x").unwrap();
    }
    cg.run(&format!(
        "exec python3 -c \"
import os
os.close(os.open('{wdir}/before.txt', os.O_RDONLY))
for _ in range({REPEATS}):
    os.close(os.open('{wdir}/repeat.txt', os.O_RDONLY))
os.close(os.open('{wdir}/after.txt', os.O_RDONLY))
\""
    ));
    // A file opened again after its directory was renamed: same dentry, another path.
    fs::create_dir(work.path().join("dir-a")).unwrap();
    fs::write(work.path().join("dir-a/inner.txt"), b"x").unwrap();
    cg.run(&format!(
        "exec python3 -c \"
import os
os.close(os.open('{wdir}/dir-a/inner.txt', os.O_RDONLY))
os.rename('{wdir}/dir-a', '{wdir}/dir-b')
os.close(os.open('{wdir}/dir-b/inner.txt', os.O_RDONLY))
\""
    ));
    cg.run(&format!(
        "exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/{tcp_port}'"
    ));
    cg.run(&format!(
        "exec python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp_port}))\""
    ));
    let mut buf = [0u8; 8];
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(udp.recv(&mut buf).unwrap(), 1, "the UDP datagram arrived");
    let (mut conn, _) = tcp.accept().unwrap();
    let _ = conn.read(&mut buf);

    let (all, summary) = collector.stop();
    assert!(summary.events_seen > 0);

    let ours: Vec<&Event> = all
        .iter()
        .filter(|e| e.container_id.as_deref() == Some(CONTAINER))
        .collect();
    assert!(
        !ours.is_empty(),
        "no row attributed to the test container among {} rows",
        all.len()
    );
    for e in &ours {
        assert!(!e.host, "{e:?}");
        assert_eq!(e.pod_uid.as_deref(), Some(POD_UID));
        assert_eq!(e.node, "probe-test");
    }
    let find = |what: &str, pred: &dyn Fn(&Event) -> bool| -> Event {
        match ours.iter().find(|e| pred(e)) {
            Some(e) => (*e).clone(),
            None => panic!(
                "no row for {what}; container rows:\n{}",
                ours.iter()
                    .map(|e| format!(
                        "{:?} {:?} {:?} {:?} {:?}:{:?}",
                        e.op, e.process, e.path, e.access, e.remote_addr, e.remote_port
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    };
    let echo = find("exec of echo", &|e| {
        e.op == Op::Process && e.process.as_deref() == Some("/bin/echo")
    });
    assert_eq!(echo.args.as_deref(), Some("hello-karmor"));
    assert!(echo.parent_process.is_some());
    let host = find("read of /etc/hostname", &|e| {
        e.op == Op::File && e.path.as_deref() == Some("/etc/hostname")
    });
    assert_eq!(host.access.as_deref(), Some("read"));
    assert!(
        host.process.as_deref().is_some_and(|p| p.ends_with("/cat")),
        "{host:?}"
    );
    let rel = find("read of ./passwd from /etc", &|e| {
        e.op == Op::File && e.path.as_deref() == Some("/etc/passwd")
    });
    assert_eq!(rel.result.as_deref(), Some("Passed"));
    let created = format!("{wdir}/created.txt");
    let c = find("create", &|e| {
        e.path.as_deref() == Some(created.as_str()) && e.access.as_deref() == Some("create")
    });
    assert_eq!(c.count, 1);
    find("write of the existing file", &|e| {
        e.path.as_deref() == Some(created.as_str()) && e.access.as_deref() == Some("write")
    });
    let t = find("tcp connect", &|e| {
        e.op == Op::Network
            && e.direction.as_deref() == Some("connect")
            && e.remote_port == Some(tcp_port)
    });
    assert_eq!(
        (t.proto.as_deref(), t.remote_addr.as_deref()),
        (Some("tcp"), Some("127.0.0.1"))
    );
    let u = find("udp send", &|e| {
        e.op == Op::Network
            && e.direction.as_deref() == Some("send")
            && e.remote_port == Some(udp_port)
    });
    assert_eq!(
        (u.proto.as_deref(), u.remote_addr.as_deref()),
        (Some("udp"), Some("127.0.0.1"))
    );
    assert!(
        u.process.as_deref().is_some_and(|p| p.contains("python")),
        "{u:?}"
    );

    // Changes, renames and removals.
    let victim = format!("{wdir}/victim");
    let moved = format!("{wdir}/moved");
    let access_row = |path: &str, access: &str| {
        find(&format!("{access} of {path}"), &|e| {
            e.op == Op::File
                && e.path.as_deref() == Some(path)
                && e.access.as_deref() == Some(access)
        })
    };
    let ch = access_row(&victim, "chmod");
    assert_eq!(ch.result.as_deref(), Some("Passed"));
    assert!(
        ch.syscall.as_deref().is_some_and(|s| s.contains("CHMOD")),
        "{ch:?}"
    );
    access_row(&victim, "chown");
    access_row(&victim, "rename");
    access_row(&moved, "rename");
    let rm = access_row(&moved, "delete");
    assert!(
        rm.process.as_deref().is_some_and(|p| p.ends_with("/rm")),
        "{rm:?}"
    );

    // Every open of the repeated file is counted, in rows whose times lie between the two
    // markers' (kernel timestamps, so the order is exact).
    let python_open = |e: &Event, path: &str| {
        e.op == Op::File
            && e.path.as_deref() == Some(path)
            && e.process.as_deref().is_some_and(|p| p.contains("python"))
    };
    let (before_txt, after_txt, repeat_txt) = (
        format!("{wdir}/before.txt"),
        format!("{wdir}/after.txt"),
        format!("{wdir}/repeat.txt"),
    );
    let before = find("open of before.txt", &|e| python_open(e, &before_txt));
    let after = find("open of after.txt", &|e| python_open(e, &after_txt));
    let repeated: Vec<&Event> = ours
        .iter()
        .copied()
        .filter(|e| python_open(e, &repeat_txt))
        .collect();
    let total: u64 = repeated.iter().map(|e| e.count).sum();
    assert_eq!(total, REPEATS, "opens counted over {} rows", repeated.len());
    for r in &repeated {
        assert_eq!(r.access.as_deref(), Some("read"));
        assert!(r.ts_first <= r.ts_last, "{r:?}");
        assert!(r.ts_first >= before.ts_first, "{r:?} before {before:?}");
        assert!(r.ts_last <= after.ts_first, "{r:?} after {after:?}");
    }
    for dir in ["dir-a", "dir-b"] {
        let path = format!("{wdir}/{dir}/inner.txt");
        let r = find(&format!("open of {path}"), &|e| python_open(e, &path));
        assert_eq!(r.count, 1, "{r:?}");
    }
    access_row(&format!("{wdir}/dir-a"), "rename");
    let first = repeated.iter().map(|e| e.ts_first).min().unwrap_or(0);
    let last = repeated.iter().map(|e| e.ts_last).max().unwrap_or(0);
    assert!(last > first, "the repeats' times span the loop");
    eprintln!(
        "{REPEATS} opens in {} rows (one per window), over {:.3} s",
        repeated.len(),
        (last - first) as f64 / 1e9
    );
}

/// A collector with its probes, run on a thread of its own until [`Collector::stop`].
struct Collector {
    data: tempfile::TempDir,
    counters: Arc<Counters>,
    stop_tx: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<
        Result<karmor_collector::run::RunSummary, karmor_collector::run::CollectorError>,
    >,
}

impl Collector {
    /// Starts it and waits until its probes are attached.
    fn start(rotate_interval: Duration) -> Collector {
        let data = tempfile::tempdir().unwrap();
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = CollectorConfig {
            node: "probe-test".into(),
            cluster: None,
            data_dir: data.path().to_path_buf(),
            retention: Retention {
                max_bytes: 0,
                max_age: None,
            },
            rotate_interval,
            rotate_rows: 100_000,
            window_bytes: karmor_collector::run::WINDOW_BYTES,
            record_args: true,
            syscalls: true,
            capabilities: true,
            only_sensors: Vec::new(),
            source: SensorSource::Ebpf,
            metrics_addr: None,
            compaction: None,
            archive: None,
        };
        let c2 = counters.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run(cfg, Arc::new(NoPods), c2, async {
                let _ = stop_rx.await;
            }))
        });
        let started = Instant::now();
        while counters.probes_attached.load(Ordering::Relaxed) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "probes did not attach"
            );
            if thread.is_finished() {
                let err = thread.join().unwrap().unwrap_err();
                panic!("collector stopped: {err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Collector {
            data,
            counters,
            stop_tx,
            thread,
        }
    }

    /// Stops it (a last flush) and returns its rows and what it attached.
    fn stop(self) -> (Vec<Event>, karmor_collector::run::RunSummary) {
        std::thread::sleep(Duration::from_millis(300));
        self.stop_tx.send(()).unwrap();
        let summary = self.thread.join().unwrap().expect("collector run");
        (rows(self.data.path()), summary)
    }
}

/// `strace -f -c` of a command (its output to /dev/null): calls per system call, named as our
/// rows name them (`SYS_<UPPERCASE>`).
fn strace_counts(argv: &[&str]) -> std::collections::BTreeMap<String, u64> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(out.path())
        .args(argv)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace is installed (apt-get install strace)");
    assert!(status.success(), "strace {argv:?}");
    let table = fs::read_to_string(out.path()).unwrap();
    let mut calls = std::collections::BTreeMap::new();
    // `% time  seconds  usecs/call  calls  [errors]  syscall`, between two rules.
    for line in table.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || f[0].starts_with('%') || f[0].starts_with('-') {
            continue;
        }
        let name = f[f.len() - 1];
        if name == "total" {
            continue;
        }
        let n: u64 = f[3]
            .parse()
            .unwrap_or_else(|_| panic!("strace line {line}"));
        calls.insert(format!("SYS_{}", name.to_uppercase()), n);
    }
    calls
}

/// The system calls of one short-lived process are counted in the kernel per container and
/// executable, and come out as `op = syscall` rows equal to strace's count of the same
/// command (strace sees `execve` in the new image, we in the shell that made it; strace does
/// not count `exit_group`, which does not return). A `chown` to another user as root is a
/// granted CAP_CHOWN check; the same as an unprivileged user, a denied one.
#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF), cgroup v2 and strace"]
fn probes_count_system_calls_and_capability_checks_per_container_and_executable() {
    if let Some(why) = missing_precondition() {
        panic!("the probes test cannot run here: {why}");
    }
    const CONTAINER2: &str = "5ca11ab1e5ca11ab1e0ddba11c0de5eedfacefeed0123456789abcdef7654321";
    const POD_UID2: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let command = "exec /bin/cat /etc/hostname > /dev/null";
    let expected = strace_counts(&["/bin/cat", "/etc/hostname"]);
    assert!(expected.contains_key("SYS_OPENAT"), "{expected:?}");

    let work = tempfile::tempdir().unwrap();
    // Searchable by the unprivileged user, so that its chown reaches the CAP_CHOWN check.
    fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let wdir = work.path().display().to_string();
    let collector = Collector::start(Duration::from_millis(500));
    let cg = TestCgroup::create_for(CONTAINER2, POD_UID2);
    cg.run(command);
    cg.run(&format!(
        "cd {wdir} && touch capfile && exec chown 1234 capfile"
    ));
    cg.run(&format!(
        "cd {wdir} && setpriv --reuid=4321 --regid=4321 --clear-groups chown 0 capfile 2>/dev/null || true"
    ));
    let (all, summary) = collector.stop();
    assert!(
        summary.attached.contains(&"sys_enter") && summary.attached.contains(&"cap_capable"),
        "attached {:?}, failed {:?}",
        summary.attached,
        summary.failed
    );
    let ours: Vec<&Event> = all
        .iter()
        .filter(|e| e.container_id.as_deref() == Some(CONTAINER2))
        .collect();
    for e in &ours {
        assert_eq!(e.pod_uid.as_deref(), Some(POD_UID2), "{e:?}");
        assert!(!e.host);
    }

    // cat's system calls, as one row per call with its count (rows of several windows added).
    let mut recorded = std::collections::BTreeMap::new();
    for e in ours
        .iter()
        .filter(|e| e.op == Op::Syscall && e.process.as_deref() == Some("/bin/cat"))
    {
        assert_eq!(e.result.as_deref(), Some("Passed"), "{e:?}");
        assert!(e.ts_first <= e.ts_last, "{e:?}");
        *recorded
            .entry(e.syscall.clone().expect("syscall named"))
            .or_insert(0u64) += e.count;
    }
    let mut want = expected.clone();
    want.remove("SYS_EXECVE");
    want.insert("SYS_EXIT_GROUP".into(), 1);
    let processes: std::collections::BTreeSet<String> = ours
        .iter()
        .filter(|e| e.op == Op::Syscall)
        .map(|e| format!("{:?} pid {:?}", e.process, e.pid))
        .collect();
    assert_eq!(
        recorded, want,
        "recorded (left) against strace -f -c (right); syscall rows of the container: {processes:?}"
    );
    // The shell that exec'd cat made the execve, in the same container.
    assert!(
        ours.iter().any(|e| e.op == Op::Syscall
            && e.syscall.as_deref() == Some("SYS_EXECVE")
            && e.process.as_deref() == Some("/bin/sh")),
        "no execve row of /bin/sh"
    );

    // Capability checks.
    let caps: Vec<&&Event> = ours.iter().filter(|e| e.op == Op::Capability).collect();
    let chown_cap = |result: &str| {
        caps.iter().find(|e| {
            e.capability.as_deref() == Some("CAP_CHOWN")
                && e.result.as_deref() == Some(result)
                && e.process.as_deref().is_some_and(|p| p.ends_with("/chown"))
        })
    };
    let granted =
        chown_cap("Passed").unwrap_or_else(|| panic!("no granted CAP_CHOWN in {caps:#?}"));
    assert_eq!(granted.uid, Some(0));
    assert!(granted.count >= 1);
    let denied = chown_cap("Operation not permitted")
        .unwrap_or_else(|| panic!("no denied CAP_CHOWN in {caps:#?}"));
    assert_eq!(denied.uid, Some(4321));
    for e in &caps {
        assert!(
            e.syscall.is_none()
                && e.capability
                    .as_deref()
                    .is_some_and(|c| c.starts_with("CAP_"))
        );
    }
}

/// Failed opens, removals of a missing file, and chmods by name and by descriptor, each
/// repeated by one process: the kernel counts the repeats instead of sending them (the
/// collector reads far fewer records than the process made calls), and the rows still hold
/// every call, on the path as the process saw it, relative names made absolute from the
/// working directory, a renamed working directory giving its new path.
#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF) and cgroup v2"]
fn probes_count_repeated_failed_opens_removals_and_mode_changes_in_the_kernel() {
    if let Some(why) = missing_precondition() {
        panic!("the probes test cannot run here: {why}");
    }
    const CONTAINER3: &str = "fa11ed0be9ca11ab1e0ddba11c0de5eedfacefeed0123456789abcdef7654321";
    const POD_UID3: &str = "2b3c4d5e-6f70-4a8b-9c0d-1e2f3a4b5c6d";
    const N: u64 = 30_000;
    let work = tempfile::tempdir().unwrap();
    let wdir = work.path().display().to_string();
    let collector = Collector::start(Duration::from_millis(500));
    let cg = TestCgroup::create_for(CONTAINER3, POD_UID3);
    cg.run(&format!(
        "exec python3 -c \"
import os
def fail(f):
    try:
        f()
    except OSError:
        pass
for _ in range({N}):
    fail(lambda: os.open('{wdir}/missing-abs.txt', os.O_RDONLY))
os.chdir('{wdir}')
for _ in range({N}):
    fail(lambda: os.open('missing-rel.txt', os.O_WRONLY))
for _ in range({N}):
    fail(lambda: os.unlink('gone.txt'))
os.close(os.open('mode.txt', os.O_WRONLY | os.O_CREAT))
for _ in range({N}):
    os.chmod('mode.txt', 0o644)
fd = os.open('mode.txt', os.O_RDONLY)
for _ in range({N}):
    os.fchmod(fd, 0o600)
os.mkdir('d1')
os.chdir('d1')
fail(lambda: os.open('x', os.O_RDONLY))
os.chdir('..')
os.rename('d1', 'd2')
os.chdir('d2')
fail(lambda: os.open('x', os.O_RDONLY))
\""
    ));
    let counters = collector.counters.clone();
    let (all, _) = collector.stop();
    let ours: Vec<&Event> = all
        .iter()
        .filter(|e| {
            e.container_id.as_deref() == Some(CONTAINER3)
                && e.op == Op::File
                && e.process.as_deref().is_some_and(|p| p.contains("python"))
        })
        .collect();
    let rows_of = |path: &str, access: &str| -> Vec<&Event> {
        ours.iter()
            .copied()
            .filter(|e| e.path.as_deref() == Some(path) && e.access.as_deref() == Some(access))
            .collect()
    };
    let total = |path: &str, access: &str, passed: bool| -> u64 {
        let rows = rows_of(path, access);
        for e in &rows {
            assert_eq!(e.result.as_deref() == Some("Passed"), passed, "{e:?}");
            assert!(e.ts_first <= e.ts_last, "{e:?}");
        }
        rows.iter().map(|e| e.count).sum()
    };
    let listing = || {
        ours.iter()
            .map(|e| format!("{:?} {:?} {:?} {}", e.path, e.access, e.result, e.count))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (path, access, passed, want) in [
        (format!("{wdir}/missing-abs.txt"), "read", false, N),
        (format!("{wdir}/missing-rel.txt"), "write", false, N),
        (format!("{wdir}/gone.txt"), "delete", false, N),
        // chmod by name, then fchmod of the open file: one path, two system calls.
        (format!("{wdir}/mode.txt"), "chmod", true, 2 * N),
        (format!("{wdir}/d1/x"), "read", false, 1),
        (format!("{wdir}/d2/x"), "read", false, 1),
    ] {
        assert_eq!(
            total(&path, access, passed),
            want,
            "{access} of {path}; python's file rows:\n{}",
            listing()
        );
    }
    let by_syscall = |sys: &str| {
        rows_of(&format!("{wdir}/mode.txt"), "chmod")
            .iter()
            .filter(|e| e.syscall.as_deref() == Some(sys))
            .map(|e| e.count)
            .sum::<u64>()
    };
    assert_eq!(by_syscall("SYS_FCHMOD"), N, "{}", listing());
    // 5 N calls repeated one of five behaviours: the kernel counted them instead of sending
    // records (other processes' repeats add to the counter; a rename anywhere on the machine
    // makes the next relative-name call a first event again, hence the slack).
    let repeats = counters.kernel_repeats.load(Ordering::Relaxed);
    assert!(
        repeats >= 4 * N,
        "the kernel counted {repeats} repeats for {} repeated calls",
        5 * N
    );
}

/// The floor the collector bench sets beside the probes (`--source empty-probes`) must stand
/// on exactly the sensors' hooks, or it measures some other kernel path; and its programs must
/// do nothing (no record, whatever runs meanwhile).
#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF) and cgroup v2"]
fn empty_programs_attach_the_sensors_hooks_and_record_nothing() {
    use karmor_collector::probes::{ProbeSet, Probes};
    if let Some(why) = missing_precondition() {
        panic!("the probes test cannot run here: {why}");
    }
    for skip in [&[][..], &["sys_enter", "cap_capable"][..]] {
        let (sensors, _ring) = Probes::load(skip).expect("sensors load");
        let (hooks, attached) = (sensors.hooks.clone(), sensors.attached.clone());
        drop(sensors);
        let (empty, mut ring) = Probes::load_set(ProbeSet::Empty, skip).expect("empty load");
        assert_eq!(empty.hooks, hooks, "skipping {skip:?}");
        assert_eq!(empty.attached, attached, "skipping {skip:?}");
        assert!(
            hooks.iter().any(|(h, _)| h == "syscalls:sys_exit_openat"),
            "{hooks:?}"
        );
        let cg = TestCgroup::create();
        cg.run("exec cat /etc/hostname > /dev/null");
        assert!(ring.next().is_none(), "an empty program sent a record");
    }
}

/// Execs of one image with the same arguments by the same parent image in one cgroup are
/// counted in the kernel, as repeated opens are: one record per window, and every exec in the
/// row's count. The processes whose exec was only counted are still named by their own
/// records (each `cat` opens a file: every open is the `/bin/cat` of the exec row, not the
/// bare command name a dead process leaves).
#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF) and cgroup v2"]
fn repeated_execs_are_counted_in_the_kernel_and_their_processes_still_named() {
    use karmor_collector::pipeline::{Pipeline, PipelineConfig};
    use karmor_collector::probes::Probes;
    use karmor_collector::raw::{decode, Kind};
    use std::os::unix::fs::MetadataExt;
    const EXECS: u64 = 300;
    if let Some(why) = missing_precondition() {
        panic!("the probes test cannot run here: {why}");
    }
    let work = tempfile::tempdir().unwrap();
    let note = work.path().join("note.txt");
    fs::write(&note, b"x").unwrap();
    let (mut probes, mut ring) = Probes::load(&["sys_enter", "cap_capable"]).expect("probes");
    let container = "e8ec0de0e8ec0de0e8ec0de0e8ec0de0e8ec0de0e8ec0de0e8ec0de0e8ec0de0";
    let cg = TestCgroup::create_for(container, "e8ec0de0-0000-4000-8000-000000000001");
    let cgroup_id = fs::metadata(&cg.leaf).unwrap().ino();
    cg.run(&format!(
        "for i in $(seq {EXECS}); do /bin/cat {}; done > /dev/null",
        note.display()
    ));
    let mut pipeline = Pipeline::new(PipelineConfig {
        node: "probe-test".into(),
        cluster: None,
        record_args: true,
        process_capacity: 65_536,
    });
    let mut exec_records = 0;
    while let Some(item) = ring.next() {
        let ev = decode(&item).expect("record");
        if ev.kind == Kind::Exec && ev.cgroup_id == cgroup_id && ev.path == b"/bin/cat" {
            exec_records += 1;
        }
        pipeline.handle(&ev);
    }
    let settled = probes.settle(&mut ring, &mut pipeline);
    let rows = pipeline.drain(0, &NoPods);
    assert_eq!(probes.dropped(), 0, "records lost: the test saw only part");
    assert_eq!(
        exec_records, 1,
        "every exec of /bin/cat was sent, not counted"
    );
    assert!(settled.repeats >= EXECS - 1, "{settled:?}");
    let ours: Vec<&Event> = rows
        .iter()
        .filter(|e| e.container_id.as_deref() == Some(container))
        .collect();
    let execs: Vec<&&Event> = ours
        .iter()
        .filter(|e| e.op == Op::Process && e.process.as_deref() == Some("/bin/cat"))
        .collect();
    assert_eq!(execs.len(), 1, "{execs:#?}");
    assert_eq!(execs[0].count, EXECS);
    assert!(
        execs[0]
            .parent_process
            .as_deref()
            .is_some_and(|p| p.ends_with("sh")),
        "{:?}",
        execs[0]
    );
    let path = note.display().to_string();
    let opens: Vec<&&Event> = ours
        .iter()
        .filter(|e| e.op == Op::File && e.path.as_deref() == Some(path.as_str()))
        .collect();
    assert_eq!(opens.iter().map(|e| e.count).sum::<u64>(), EXECS);
    for o in &opens {
        assert_eq!(o.process.as_deref(), Some("/bin/cat"), "{o:?}");
    }
}
