//! `recommend --seccomp` on system calls the collector's own probes recorded: a workload runs
//! in a `docker-<id>.scope` cgroup (named through a Docker `config.v2.json` this test writes)
//! while the collector runs on the real probes; the plugin drafts the container's profile from
//! the data directory, and the same workload runs again under that profile, loaded as a
//! container runtime loads it (`scripts/seccomp-run.py`: libseccomp and bubblewrap), while a
//! system call it never made (`mkdir`) is denied.
//!
//! Needs root, BPF, the probes built, cgroup v2, bubblewrap and python3-seccomp: ignored by
//! default, run (as root) by .ci/run; fails, never passes, when one is missing.
//! Run: `cargo test -p kubectl-karmor --test seccomp_recorded -- --include-ignored`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use karmor_collector::attribution::{NoPods, RuntimeRoots, RuntimeState, WithRuntimeState};

mod common;
use common::probes::{require_probe_preconditions, Cgroup, ProbeCollector};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const ID: &str = "5ecc0000000000000000000000000000000000000000000000000000000000e1";
/// The workload, as an entrypoint script runs two programs.
const SCRIPT: &str = "/bin/cat /etc/hostname && /bin/ls /etc >/dev/null";

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `cmd` under `profile`, in the environment the workload was recorded in (the test cgroup's
/// shell clears it, as an image's would be: no locale, so no locale loading; the runner's
/// Python must not coerce the C locale to C.UTF-8 for its children either).
fn run_under(profile: &Path, cmd: &[&str]) -> Output {
    Command::new("/usr/bin/python3")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("PYTHONCOERCECLOCALE", "0")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/seccomp-run.py"))
        .arg(profile)
        .args(cmd)
        .output()
        .expect("run seccomp-run.py")
}

#[test]
#[ignore = "needs root, BPF, probes built, cgroup v2, bubblewrap and python3-seccomp"]
fn a_profile_drafted_from_the_probes_runs_its_workload_again_and_denies_the_rest() {
    let cgroot = require_probe_preconditions(&["/bin/sh", "/bin/cat", "/bin/ls", "/bin/mkdir"]);
    for (tool, probe) in [
        ("bubblewrap", vec!["bwrap", "--version"]),
        (
            "python3-seccomp",
            vec!["/usr/bin/python3", "-c", "import seccomp"],
        ),
    ] {
        let ok = Command::new(probe[0])
            .args(&probe[1..])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is missing: apt-get install bubblewrap python3-seccomp"
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let docker = tmp.path().join("docker");
    let dir = docker.join("containers").join(ID);
    fs::create_dir_all(&dir).expect("mkdir");
    let config = serde_json::json!({
        "ID": ID,
        "Name": "/sec-web",
        "Config": {"Image": "busybox:1.36", "Labels": {}}
    });
    fs::write(dir.join("config.v2.json"), config.to_string()).expect("write");
    let state = RuntimeState::new(RuntimeRoots {
        docker: Some(docker.clone()),
        containerd: Some(tmp.path().join("no-containerd")),
        containers_storage: Some(tmp.path().join("no-storage")),
    });
    let lookup = Arc::new(WithRuntimeState::new(Arc::new(NoPods), state));
    let collector = ProbeCollector::start("seccomp-test", &data, lookup);
    {
        let slice = cgroot.join("karmor-seccomp-test.slice");
        let web = Cgroup::create(slice.join(format!("docker-{ID}.scope")), Some(slice));
        web.run(&format!("exec /bin/sh -c '{SCRIPT}'"));
        std::thread::sleep(Duration::from_millis(300));
    }
    collector.stop();

    let out = tmp.path().join("profiles");
    let o = Command::new(BIN)
        .args([
            "recommend",
            "-A",
            "--seccomp",
            "--seccomp-exact",
            "--bundle",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_POLICIES")
        .output()
        .expect("run kubectl-karmor");
    assert!(o.status.success(), "recommend --seccomp: {}", err(&o));
    let profiles: Vec<_> = fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".seccomp.json"))
        })
        .collect();
    let ours: Vec<_> = profiles
        .iter()
        .filter(|p| p.to_string_lossy().contains("sec-web"))
        .collect();
    assert_eq!(ours.len(), 1, "one profile for sec-web among {profiles:?}");
    let profile = ours[0];
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(profile).expect("read")).expect("json");
    let names: Vec<&str> = json["syscalls"][0]["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for call in [
        "openat",
        "read",
        "write",
        "execve",
        "getdents64",
        "exit_group",
    ] {
        assert!(names.contains(&call), "{call} not in {names:?}");
    }
    assert!(!names.contains(&"mkdir"), "{names:?}");

    // Exactly the recorded calls: the workload runs again under them.
    let again = run_under(profile, &["/bin/sh", "-c", SCRIPT]);
    assert!(
        again.status.success(),
        "the workload failed under its profile {names:?}: {}",
        err(&again)
    );
    let hostname = fs::read_to_string("/etc/hostname").expect("hostname");
    assert_eq!(String::from_utf8_lossy(&again.stdout), hostname);
    let target = tmp.path().join("made");
    let denied = run_under(profile, &["/bin/mkdir", target.to_str().expect("utf-8")]);
    assert!(!denied.status.success(), "mkdir ran under the profile");
    assert!(
        !target.exists(),
        "mkdir made its directory under the profile"
    );
}
