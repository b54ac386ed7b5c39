//! `observe -o syscall,capability` in every output format, its filters, and
//! `recommend --seccomp` / `--syscall-rules` as a user runs them, on a bundle with system-call
//! and capability rows written by the contract's writer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const T0: i64 = 1_790_000_000_000_000_000;

fn base() -> Event {
    Event {
        ts_first: T0,
        ts_last: T0 + 1_000_000,
        count: 1,
        node: "node-a".into(),
        namespace: Some("shop".into()),
        pod: Some("web-5d8f-1".into()),
        container: Some("web".into()),
        container_id: Some(format!("{:b<64}", "web")),
        workload_kind: Some("Deployment".into()),
        workload: Some("web".into()),
        labels: vec!["app=web".into()],
        source: Source::Ebpf,
        pid: Some(42),
        ppid: Some(1),
        uid: Some(0),
        ..Event::default()
    }
}

fn bundle(dir: &Path) -> PathBuf {
    let mut events = Vec::new();
    for (exe, name, count) in [
        ("/usr/bin/app", "SYS_OPENAT", 30),
        ("/usr/bin/app", "SYS_READ", 50),
        ("/bin/sh", "SYS_EXECVE", 2),
    ] {
        events.push(Event {
            op: Op::Syscall,
            process: Some(exe.into()),
            syscall: Some(name.into()),
            count,
            result: Some("Passed".into()),
            ..base()
        });
    }
    for (cap, result) in [
        ("CAP_NET_BIND_SERVICE", "Passed"),
        ("CAP_SYS_ADMIN", "Operation not permitted"),
    ] {
        events.push(Event {
            op: Op::Capability,
            process: Some("/usr/bin/app".into()),
            capability: Some(cap.into()),
            result: Some(result.into()),
            ..base()
        });
    }
    events.push(Event {
        op: Op::Process,
        process: Some("/usr/bin/app".into()),
        parent_process: Some("/bin/sh".into()),
        ..base()
    });
    let path = dir.join("bundle");
    write_bundle(
        &path,
        events,
        &BundleOptions {
            producer: "syscalls-cli-test".into(),
            ..BundleOptions::default()
        },
    )
    .expect("write bundle");
    path
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .output()
        .expect("run kubectl-karmor")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn observe(bundle: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "observe",
        "deploy/web",
        "-n",
        "shop",
        "-o",
        "syscall,capability",
        "--bundle",
        bundle.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = karmor(&args);
    assert!(o.status.success(), "{args:?}: {}", err(&o));
    o
}

#[test]
fn observe_shows_syscalls_and_capabilities_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());

    let table = out(&observe(&b, &[]));
    assert!(table.contains("SYSCALLS (3 rows)"), "{table}");
    assert!(table.contains("CAPABILITIES (2 rows)"), "{table}");
    assert!(!table.contains("PROCESSES"), "{table}");
    let line = table
        .lines()
        .find(|l| l.contains("openat"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("/usr/bin/app") && line.contains("Passed") && line.contains("30"),
        "{line}"
    );
    assert!(
        !table.contains("SYS_OPENAT"),
        "names are shown as policies name them: {table}"
    );
    assert!(table
        .lines()
        .any(|l| l.contains("CAP_SYS_ADMIN") && l.contains("Operation not permitted")));

    let wide = out(&observe(&b, &["--output", "wide"]));
    assert!(
        wide.contains("PIDS") && wide.contains("web-5d8f-1/web"),
        "{wide}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&out(&observe(&b, &["--output", "json"]))).expect("json");
    let calls = json["syscalls"].as_array().expect("syscalls");
    assert_eq!(calls.len(), 3, "{json}");
    assert_eq!(calls[0]["syscall"], "read");
    assert_eq!(calls[0]["count"], 50);
    assert_eq!(calls[0]["results"], "Passed");
    assert_eq!(json["capabilities"].as_array().expect("caps").len(), 2);
    assert!(json.get("processes").is_none(), "{json}");
    let yaml: serde_json::Value =
        serde_yaml::from_str(&out(&observe(&b, &["--output", "yaml"]))).expect("yaml");
    assert_eq!(yaml, json);

    let csv_text = out(&observe(&b, &["--output", "csv"]));
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 5, "{csv_text}");
    let openat = rows
        .iter()
        .find(|r| &r[col("syscall")] == "openat")
        .unwrap_or_else(|| panic!("{csv_text}"));
    assert_eq!(&openat[col("section")], "syscall");
    assert_eq!(&openat[col("process")], "/usr/bin/app");
    assert_eq!(&openat[col("count")], "30");
    let admin = rows
        .iter()
        .find(|r| &r[col("capability")] == "CAP_SYS_ADMIN")
        .unwrap_or_else(|| panic!("{csv_text}"));
    assert_eq!(&admin[col("section")], "capability");
    assert_eq!(&admin[col("results")], "Operation not permitted");
}

#[test]
fn observe_filters_syscalls_and_capabilities_in_any_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    for f in ["syscall=openat", "syscall=SYS_OPENAT", "syscall=*open*"] {
        let json: serde_json::Value =
            serde_json::from_str(&out(&observe(&b, &["-f", f, "--output", "json"]))).unwrap();
        let names: Vec<&str> = json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["syscall"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["openat"], "{f}");
        assert!(json["capabilities"].as_array().unwrap().is_empty(), "{f}");
    }
    let json: serde_json::Value = serde_json::from_str(&out(&observe(
        &b,
        &["-f", "capability=sys_admin", "--output", "json"],
    )))
    .unwrap();
    let caps = json["capabilities"].as_array().unwrap();
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0]["capability"], "CAP_SYS_ADMIN");

    let o = karmor(&[
        "observe",
        "-n",
        "shop",
        "-o",
        "syscalls,bogus",
        "--bundle",
        b.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("expected process, file, network, syscall or capability"));
}

#[test]
fn recommend_seccomp_streams_profiles_and_syscall_rules_can_be_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let o = karmor(&[
        "recommend",
        "deployments",
        "-n",
        "shop",
        "--seccomp",
        "--seccomp-exact",
        "--seccomp-arch",
        "x86_64,aarch64",
        "--bundle",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let spo: serde_yaml::Value = serde_yaml::from_str(&out(&o)).expect("one SeccompProfile");
    assert_eq!(spo["kind"].as_str(), Some("SeccompProfile"));
    let names: Vec<&str> = spo["spec"]["syscalls"][0]["names"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, ["execve", "openat", "read"]);
    assert_eq!(
        spo["spec"]["architectures"],
        serde_yaml::from_str::<serde_yaml::Value>("[SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64]").unwrap()
    );
    assert!(out(&o).starts_with("# Seccomp profile of shop/Deployment/web"));
    assert!(err(&o).contains("RUNTIME ADDED"), "{}", err(&o));

    let bad = karmor(&[
        "recommend",
        "-n",
        "shop",
        "--seccomp",
        "--seccomp-arch",
        "amd64",
        "--bundle",
        b.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(
        err(&bad).contains("unknown seccomp architecture \"amd64\""),
        "{}",
        err(&bad)
    );

    // The KubeArmor draft audits the calls per executable; --syscall-rules none drops them.
    let with = karmor(&["recommend", "-n", "shop", "--bundle", b.to_str().unwrap()]);
    assert!(with.status.success(), "{}", err(&with));
    assert!(out(&with).contains("matchSyscalls"), "{}", out(&with));
    assert!(out(&with).contains("KubeArmor only audits system calls"));
    let without = karmor(&[
        "recommend",
        "-n",
        "shop",
        "--syscall-rules",
        "none",
        "--bundle",
        b.to_str().unwrap(),
    ]);
    assert!(without.status.success(), "{}", err(&without));
    assert!(!out(&without).contains("syscalls:"), "{}", out(&without));
}
