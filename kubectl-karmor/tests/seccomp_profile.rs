//! `recommend --seccomp` end to end on a real workload: its system calls are recorded by an
//! independent tool (`strace -f`), written as `op = syscall` rows into a bundle through the
//! contract's writer, drafted into a profile by the real binary, and the profile is applied to
//! the same command by libseccomp and bubblewrap (`scripts/seccomp-run.py`: libseccomp compiles
//! the OCI JSON as runc and crun do, bubblewrap loads it just before the exec). The workload
//! runs again under its profile; a system call it never made is denied with EPERM.
//!
//! Needs strace, bubblewrap and Debian's python3-seccomp: ignored by default, installed and run
//! by .ci/run (`scripts/test.sh -- --include-ignored`). Fails, never passes, when one is
//! missing. Run: `cargo test -p kubectl-karmor --test seccomp_profile -- --include-ignored`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const T0: i64 = 1_790_000_000_000_000_000;
/// The recorded workload: a shell that runs two programs, as an entrypoint script would.
const WORKLOAD: &[&str] = &[
    "/bin/sh",
    "-c",
    "/bin/cat /etc/hostname && /bin/ls /etc >/dev/null",
];

fn runner() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/seccomp-run.py")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails, with what is missing, when the tools are not here.
fn require_tools() {
    for (tool, probe) in [
        ("strace", vec!["strace", "-V"]),
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
            "{tool} is missing: apt-get install strace bubblewrap python3-seccomp"
        );
    }
}

/// The system calls of `cmd` per executable, from `strace -f`: a pid's calls go to the
/// executable it executed (its `execve` included), a child's to its parent's until then. A
/// call cut by another process's (`<unfinished ...>`) is counted once; its result comes on
/// the `<... NAME resumed>` line.
fn record(cmd: &[&str], dir: &Path) -> BTreeMap<String, BTreeMap<String, u64>> {
    let trace = dir.join("trace.txt");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .args(cmd)
        .output()
        .expect("run strace");
    assert!(o.status.success(), "strace: {}", err(&o));
    let text = fs::read_to_string(&trace).expect("read trace");
    let mut exe_of: BTreeMap<u32, String> = BTreeMap::new();
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let returned = |rest: &str| -> Option<i64> {
        rest.rsplit_once(") = ")
            .or_else(|| rest.rsplit_once("= "))
            .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
    };
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        let (name, resumed) = match rest.strip_prefix("<... ") {
            Some(r) => match r.split_once(" resumed>") {
                Some((name, _)) => (name, true),
                None => continue,
            },
            None => match rest.find('(') {
                Some(open) => (&rest[..open], false),
                None => continue, // `+++ exited`, `--- SIGCHLD`
            },
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        if name == "execve" && !resumed {
            if let Some((path, _)) = rest["execve(".len()..]
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
            {
                // The exec belongs to the program it starts (the commands here use absolute
                // paths, so no attempt fails).
                exe_of.insert(pid, path.to_string());
            }
        }
        let exe = exe_of.get(&pid).cloned().unwrap_or_default();
        if !resumed {
            *out.entry(exe.clone())
                .or_default()
                .entry(name.to_string())
                .or_default() += 1;
        }
        let finished = resumed || !rest.ends_with("<unfinished ...>");
        if finished && matches!(name, "clone" | "clone3" | "fork" | "vfork") {
            if let Some(child) = returned(rest).filter(|c| *c > 0) {
                // A child that has not executed anything yet runs its parent's program.
                exe_of.entry(child as u32).or_insert(exe);
            }
        }
    }
    out
}

fn row(op: Op, workload: &str) -> Event {
    Event {
        ts_first: T0,
        ts_last: T0 + 1_000_000,
        count: 1,
        node: "node-a".into(),
        namespace: Some("shop".into()),
        pod: Some(format!("{workload}-7c9d-1")),
        pod_uid: Some(format!("uid-{workload}")),
        container: Some(workload.into()),
        container_id: Some(format!("{workload:0<64}")),
        workload_kind: Some("Deployment".into()),
        workload: Some(workload.into()),
        labels: vec![format!("app={workload}")],
        op,
        source: Source::Ebpf,
        pid: Some(40),
        ppid: Some(1),
        uid: Some(0),
        ..Event::default()
    }
}

/// The recording as the contract's rows: `SYS_<NAME>` per executable with counts, as the
/// collector writes them; plus a workload with processes but no system-call rows.
fn bundle(calls: &BTreeMap<String, BTreeMap<String, u64>>, dir: &Path) -> PathBuf {
    let mut events = Vec::new();
    for (exe, names) in calls {
        for (name, count) in names {
            let mut e = row(Op::Syscall, "web");
            e.process = (!exe.is_empty()).then(|| exe.clone());
            e.syscall = Some(format!("SYS_{}", name.to_ascii_uppercase()));
            e.count = *count;
            e.result = Some("Passed".into());
            events.push(e);
        }
    }
    let mut db = row(Op::Process, "db");
    db.process = Some("/usr/sbin/mysqld".into());
    db.parent_process = Some("/bin/sh".into());
    events.push(db);
    let path = dir.join("bundle");
    write_bundle(
        &path,
        events,
        &BundleOptions {
            producer: "seccomp-test".into(),
            ..BundleOptions::default()
        },
    )
    .expect("write bundle");
    path
}

fn run_under(profile: &Path, cmd: &[&str]) -> Output {
    Command::new("/usr/bin/python3")
        .arg(runner())
        .arg(profile)
        .args(cmd)
        .output()
        .expect("run seccomp-run.py")
}

fn allowed(profile: &Path) -> BTreeSet<String> {
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(profile).expect("read profile")).expect("json");
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO", "{json}");
    assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64", "{json}");
    let rules = json["syscalls"].as_array().expect("syscalls");
    assert_eq!(rules.len(), 1, "{json}");
    assert_eq!(rules[0]["action"], "SCMP_ACT_ALLOW");
    rules[0]["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name").to_string())
        .collect()
}

#[test]
#[ignore = "needs strace, bubblewrap and python3-seccomp (.ci/run installs them)"]
fn a_drafted_profile_runs_its_workload_again_and_denies_what_it_never_did() {
    require_tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = record(WORKLOAD, dir.path());
    let recorded: BTreeSet<String> = calls.values().flat_map(|m| m.keys().cloned()).collect();
    // The independent record saw the programs the shell ran.
    for exe in ["/bin/sh", "/bin/cat", "/bin/ls"] {
        assert!(calls.contains_key(exe), "{exe} not in {:?}", calls.keys());
    }
    assert!(!recorded.contains("mkdir"), "{recorded:?}");
    let bundle = bundle(&calls, dir.path());

    for exact in [false, true] {
        let out = dir.path().join(if exact { "exact" } else { "default" });
        let report = out.join("SECCOMP.md");
        let mut args = vec![
            "recommend",
            "deployments",
            "-n",
            "shop",
            "--seccomp",
            "--bundle",
            bundle.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ];
        if exact {
            args.push("--seccomp-exact");
        }
        let o = Command::new(BIN)
            .args(&args)
            .env_remove("KARMOR_STORE")
            .output()
            .expect("run kubectl-karmor");
        assert!(o.status.success(), "{}", err(&o));
        // The workload without system-call rows gets no profile, and a note saying why.
        assert!(
            err(&o).contains("note: shop/Deployment/db: no system calls recorded"),
            "{}",
            err(&o)
        );
        let mut files: Vec<String> = fs::read_dir(&out)
            .expect("out dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "SECCOMP.md",
                "shop_deployment_web.seccomp.json",
                "shop_deployment_web.seccompprofile.yaml"
            ]
        );

        // Exactly the recorded calls (and, by default, the runtime's few), nothing else.
        let profile = out.join("shop_deployment_web.seccomp.json");
        let names = allowed(&profile);
        let mut expected = recorded.clone();
        if !exact {
            expected.extend(
                karmor_analyzer::recommend::seccomp::RUNTIME_SYSCALLS
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        assert_eq!(names, expected);

        // The Security Profiles Operator's resource carries the same allow-list.
        let yaml = fs::read_to_string(out.join("shop_deployment_web.seccompprofile.yaml"))
            .expect("spo yaml");
        let spo: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("spo parses");
        assert_eq!(
            spo["apiVersion"].as_str(),
            Some("security-profiles-operator.x-k8s.io/v1beta1")
        );
        assert_eq!(spo["kind"].as_str(), Some("SeccompProfile"));
        assert_eq!(spo["metadata"]["namespace"].as_str(), Some("shop"));
        assert_eq!(
            spo["spec"]["defaultAction"].as_str(),
            Some("SCMP_ACT_ERRNO")
        );
        let spo_names: BTreeSet<String> = spo["spec"]["syscalls"][0]["names"]
            .as_sequence()
            .expect("names")
            .iter()
            .map(|n| n.as_str().expect("name").to_string())
            .collect();
        assert_eq!(spo_names, names);
        let md = fs::read_to_string(&report).expect("report");
        assert!(md.contains("## shop/Deployment/web"), "{md}");
        assert!(md.contains("No profile: no system calls recorded"), "{md}");

        // The workload runs again under its profile, with the same output.
        let again = run_under(&profile, WORKLOAD);
        assert!(
            again.status.success(),
            "exact={exact}: the workload failed under its profile: {}",
            err(&again)
        );
        let hostname = fs::read_to_string("/etc/hostname").expect("hostname");
        assert_eq!(String::from_utf8_lossy(&again.stdout), hostname);

        // A system call it never made is denied with EPERM (mkdir(2)); without the profile
        // the same command succeeds.
        let target = dir.path().join(format!("made-{exact}"));
        let denied = run_under(&profile, &["/bin/mkdir", target.to_str().unwrap()]);
        assert!(!denied.status.success(), "mkdir ran under the profile");
        assert!(
            err(&denied).contains("Operation not permitted"),
            "{}",
            err(&denied)
        );
        assert!(!target.exists());
        let free = Command::new("/bin/mkdir")
            .arg(&target)
            .output()
            .expect("mkdir");
        assert!(free.status.success() && target.is_dir(), "{}", err(&free));

        // And what was recorded is needed: without openat, cat cannot open the file.
        if exact {
            let mut json: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&profile).unwrap()).unwrap();
            let names = json["syscalls"][0]["names"].as_array_mut().unwrap();
            names.retain(|n| n != "openat");
            let narrower = dir.path().join("without-openat.json");
            fs::write(&narrower, json.to_string()).unwrap();
            let broken = run_under(&narrower, WORKLOAD);
            assert!(!broken.status.success(), "ran without openat");
            assert!(broken.stdout.is_empty(), "read the file without openat");
        }
    }
}
