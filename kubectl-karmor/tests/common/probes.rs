//! For the tests that load the collector's eBPF probes (root, `#[ignore]`d, run by CI): the
//! collector on the real probes in a thread of its own, and real processes in cgroups named as
//! container runtimes name them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use karmor_collector::attribution::PodLookup;
use karmor_collector::datadir::Retention;
use karmor_collector::metrics::Counters;
use karmor_collector::probes::built_with_probes;
use karmor_collector::run::{run, CollectorConfig, CollectorError, RunSummary, SensorSource};

extern "C" {
    fn geteuid() -> u32;
}

/// Where the cgroup v2 hierarchy is mounted (beside v1 on a hybrid host).
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
}

/// Fails, with the reason, when a probe test cannot run here (an ignored test run on purpose
/// must not pass without doing its work): root, the probes built, kernel BTF, the `tools` its
/// workloads run, a cgroup v2 hierarchy. Returns that hierarchy's root.
pub fn require_probe_preconditions(tools: &[&str]) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { geteuid() }, 0, "needs root");
    assert!(
        built_with_probes(),
        "karmor-collector was built without its eBPF probes (clang, bpftool or BTF missing)"
    );
    assert!(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "no kernel BTF (/sys/kernel/btf/vmlinux)"
    );
    for tool in tools {
        assert!(Path::new(tool).exists(), "{tool} missing");
    }
    cgroup2_root().expect("no cgroup v2 hierarchy mounted")
}

/// A container's cgroup made for a test, removed afterwards (and its `parent` too, when the
/// test made that as well, as a pod's slice).
pub struct Cgroup {
    leaf: PathBuf,
    parent: Option<PathBuf>,
}

impl Cgroup {
    /// Creates `leaf` (and the directories above it).
    pub fn create(leaf: PathBuf, parent: Option<PathBuf>) -> Cgroup {
        fs::create_dir_all(&leaf).expect("create cgroup");
        Cgroup { leaf, parent }
    }

    /// `sh -c SCRIPT` inside the cgroup: the shell moves itself in first. The environment is
    /// an image's, not the test runner's (cargo's `LD_LIBRARY_PATH`, a user's `PATH` shims).
    pub fn command(&self, script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root");
        c.arg("-c").arg(format!(
            "echo $$ > {} && {script}",
            self.leaf.join("cgroup.procs").display()
        ));
        c
    }

    /// Runs `script` inside the cgroup to its end; it must succeed.
    pub fn run(&self, script: &str) {
        let out = self.command(script).output().expect("sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `script` inside the cgroup.
    pub fn spawn(&self, script: &str) -> Child {
        self.command(script).spawn().expect("spawn sh")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A cgroup can be removed once its last process has exited, which takes a moment.
        for _ in 0..100 {
            if fs::remove_dir(&self.leaf).is_ok() || !self.leaf.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(parent) = &self.parent {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// The collector on the real probes, writing half-second segments into a data directory.
pub struct ProbeCollector {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<Result<RunSummary, CollectorError>>,
}

impl ProbeCollector {
    /// Starts it as node `node` with `pods` naming containers, and waits until its probes are
    /// attached (a collector that stops first fails the test with its error).
    pub fn start(node: &str, data_dir: &Path, pods: Arc<dyn PodLookup>) -> ProbeCollector {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cfg = CollectorConfig {
            node: node.into(),
            cluster: None,
            data_dir: data_dir.to_path_buf(),
            retention: Retention {
                max_bytes: 0,
                max_age: None,
            },
            rotate_interval: Duration::from_millis(500),
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
                .expect("runtime");
            rt.block_on(run(cfg, pods, c2, async {
                let _ = stopped.await;
            }))
        });
        let started = Instant::now();
        while counters.probes_attached.load(Ordering::Relaxed) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "probes did not attach"
            );
            if thread.is_finished() {
                match thread.join() {
                    Ok(Err(e)) => panic!("collector stopped: {e}"),
                    other => panic!("collector stopped: {other:?}"),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ProbeCollector { stop, thread }
    }

    /// Stops it (its last window is written) and returns what it counted.
    pub fn stop(self) -> RunSummary {
        self.stop.send(()).expect("stop");
        self.thread
            .join()
            .expect("collector thread")
            .expect("collector run")
    }
}
