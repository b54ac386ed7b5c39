//! `kubectl karmor diff` and `coverage`, and recommend's stability verdict, run as a user runs
//! them, on the committed demo bundle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const NOON: &str = "2026-11-20T12:00:00Z";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_POLICIES")
        .output()
        .expect("run kubectl-karmor")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (workload, category, item) of the new changes of a JSON report.
fn new_items(o: &Output) -> BTreeSet<(String, String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&out(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", out(o), err(o)));
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "new")
        .map(|c| {
            let w = &c["workload"];
            (
                format!(
                    "{}/{}",
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                c["category"].as_str().unwrap().to_string(),
                c["item"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn attack() -> BTreeSet<(String, String, String)> {
    [
        ("Deployment/mysql", "executables", "/bin/sh"),
        ("Deployment/mysql", "files", "/usr/bin/kworker"),
        ("Deployment/wordpress", "executables", "/bin/sh"),
        ("Deployment/wordpress", "executables", "/usr/bin/curl"),
        (
            "Deployment/wordpress",
            "files",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ),
        (
            "Deployment/wordpress",
            "network",
            "tcp connect 203.0.113.66:4444",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect()
}

#[test]
fn the_afternoon_against_the_morning_exits_1_with_the_attack() {
    let d = demo();
    let o = karmor(&[
        "diff",
        "-A",
        "--baseline-until",
        NOON,
        "--bundle",
        d.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(new_items(&o), attack());

    // The table names who introduced each new item.
    let o = karmor(&[
        "diff",
        "-A",
        "--baseline-until",
        NOON,
        "--only",
        "new",
        "--bundle",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let table = out(&o);
    assert!(table.starts_with("WORKLOAD"), "{table}");
    assert_eq!(table.lines().count(), 7, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("/usr/bin/curl") && l.contains("/bin/sh")),
        "{table}"
    );
    assert!(err(&o).contains("6 new"), "{}", err(&o));
}

#[test]
fn the_morning_drafts_as_the_baseline_give_the_same_set() {
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    let d = demo();
    let o = karmor(&[
        "recommend",
        "-A",
        "--until",
        NOON,
        "--out",
        drafts.to_str().unwrap(),
        "--bundle",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let o = karmor(&[
        "diff",
        "-A",
        "--since",
        NOON,
        "--baseline-policy",
        drafts.to_str().unwrap(),
        "--bundle",
        d.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(new_items(&o), attack());
}

#[test]
fn the_policy_delta_is_valid_and_allows_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let delta = dir.path().join("delta");
    let d = demo();
    let o = karmor(&[
        "diff",
        "-A",
        "--baseline-until",
        NOON,
        "--as-policy-delta",
        delta.to_str().unwrap(),
        "--bundle",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let mut files: Vec<String> = std::fs::read_dir(&delta)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "wordpress-mysql_deployment_mysql.yaml",
            "wordpress-mysql_deployment_wordpress.yaml"
        ]
    );
    // The files are valid policies.
    let o = karmor(&["validate", delta.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let text =
        std::fs::read_to_string(delta.join("wordpress-mysql_deployment_wordpress.yaml")).unwrap();
    for want in [
        "/usr/bin/curl",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "protocol: tcp",
        "app: wordpress",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // Simulated with the delta, the afternoon's new behaviour of both workloads is allowed.
    let o = karmor(&[
        "simulate",
        "-p",
        delta.to_str().unwrap(),
        "-n",
        "wordpress-mysql",
        "--since",
        NOON,
        "--only",
        "allowed",
        "--output",
        "json",
        "--bundle",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let doc: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let allowed: BTreeSet<String> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].as_str().unwrap().to_string())
        .collect();
    for want in ["/usr/bin/kworker", "/usr/bin/curl", "/bin/sh"] {
        assert!(allowed.contains(want), "{want}: {allowed:?}");
    }
}

#[test]
fn a_bundle_against_itself_exits_0_and_errors_exit_2() {
    let d = demo();
    let d = d.to_str().unwrap();
    let o = karmor(&["diff", "-A", "--baseline", d, "--bundle", d]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).is_empty(), "{}", out(&o));
    assert!(err(&o).contains("No changes"), "{}", err(&o));

    for (args, want) in [
        (vec!["diff", "-A"], "give a baseline"),
        (vec!["diff", "-A", "--baseline-until", "lunch"], "RFC 3339"),
        (
            vec!["diff", "-A", "--baseline-until", NOON, "--only", "odd"],
            "--only",
        ),
        (
            vec![
                "diff",
                "-A",
                "--baseline-until",
                NOON,
                "--volume-factor",
                "1",
            ],
            "--volume-factor",
        ),
        (
            vec!["diff", "-A", "--baseline", "/nonexistent/bundle"],
            "baseline",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--bundle", d]);
        let o = karmor(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", err(&o));
        assert!(err(&o).contains(want), "{a:?}: {}", err(&o));
    }
}

#[test]
fn coverage_shows_a_verdict_per_workload_in_every_format() {
    let d = demo();
    let d = d.to_str().unwrap();
    let o = karmor(&["coverage", "-A", "--bundle", d]);
    assert!(o.status.success(), "{}", err(&o));
    let table = out(&o);
    assert!(table.starts_with("WORKLOAD"), "{table}");
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {table}"))
            .to_string()
    };
    assert!(line("kube-system/DaemonSet/kube-proxy").contains("partial"));
    assert!(line("wordpress-mysql/Deployment/mysql").contains("learning"));
    assert!(line("node/node-a").contains("learning"));

    // With short quiet periods, the morning of the web workloads is stable.
    let o = karmor(&[
        "coverage",
        "deployments",
        "-n",
        "wordpress-mysql",
        "--until",
        NOON,
        "--quiet",
        "1h",
        "--bundle",
        d,
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let doc: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let verdicts: Vec<(&str, &str)> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["workload"]["name"].as_str().unwrap(),
                s["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [("mysql", "stable"), ("wordpress", "stable")],
        "{doc}"
    );

    for format in ["yaml", "csv", "wide"] {
        let o = karmor(&["coverage", "-A", "--bundle", d, "--output", format]);
        assert!(o.status.success(), "{format}: {}", err(&o));
        assert!(out(&o).contains("kube-proxy"), "{format}: {}", out(&o));
    }
}

#[test]
fn recommend_shows_the_verdict_and_refuses_block_until_forced() {
    let d = demo();
    let d = d.to_str().unwrap();
    let p = policies();
    let p = p.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "recommend",
        "deployments",
        "-n",
        "wordpress-mysql",
        "--action",
        "Block",
        "--hardening",
        p,
        "--out",
        out_dir.to_str().unwrap(),
        "--bundle",
        d,
    ];
    let o = karmor(&args);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(out(&o).contains("STABILITY"), "{}", out(&o));
    assert!(
        err(&o).contains("--action Block refused: wordpress-mysql/Deployment/mysql is learning"),
        "{}",
        err(&o)
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = karmor(&forced);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!err(&o).contains("refused"), "{}", err(&o));
}
