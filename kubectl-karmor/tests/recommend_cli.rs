//! `kubectl karmor recommend`, run as a user runs it, on the committed demo bundle.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use karmor_contract::bundle::{write_bundle, BundleOptions};
use karmor_contract::{Event, Op, Source};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

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

#[test]
fn writes_one_valid_file_per_workload_a_summary_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let drafts = dir.path().join("drafts");
    let report = dir.path().join("REPORT.md");
    let o = karmor(&[
        "recommend",
        "-A",
        "--bundle",
        demo().to_str().unwrap(),
        "--out",
        drafts.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--hardening",
        policies().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let table = out(&o);
    assert!(table.starts_with("WORKLOAD"), "{table}");
    assert!(
        table.contains("wordpress-mysql/Deployment/wordpress"),
        "{table}"
    );
    assert!(table.contains("ksp/karmor-deployment-mysql"), "{table}");
    assert!(table.contains("hsp/karmor-host-node-a"), "{table}");
    let mut files: Vec<String> = fs::read_dir(&drafts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "host_node-a.yaml",
            "host_node-b.yaml",
            "kube-system_daemonset_kube-proxy.yaml",
            "wordpress-mysql_deployment_mysql.yaml",
            "wordpress-mysql_deployment_wordpress.yaml"
        ]
    );
    // Every document passes `validate` (as a cluster would check it).
    let v = karmor(&["validate", drafts.to_str().unwrap()]);
    assert!(v.status.success(), "{}\n{}", out(&v), err(&v));
    assert!(!out(&v).contains("INVALID"), "{}", out(&v));
    let wp = fs::read_to_string(drafts.join("wordpress-mysql_deployment_wordpress.yaml")).unwrap();
    assert!(wp.contains("# generalised from"), "{wp}");
    assert!(wp.contains("# Left out: exec"), "{wp}");
    assert!(wp.contains("under a block posture"), "{wp}");
    assert!(wp.contains("# startup: "), "{wp}");
    assert!(
        wp.contains("karmor-harden-shadow-file-access-wordpress"),
        "{wp}"
    );
    let md = fs::read_to_string(&report).unwrap();
    for section in [
        "# kubectl karmor recommend report",
        "## wordpress-mysql/Deployment/wordpress",
        "allows",
        "### Generalisations",
        "### Noise left out",
        "### Hardening",
        "FLAGGED",
    ] {
        assert!(md.contains(section), "missing {section}:\n{md}");
    }
}

#[test]
fn streams_yaml_on_stdout_and_the_summary_on_stderr() {
    let o = karmor(&[
        "recommend",
        "deployment/wordpress",
        "-n",
        "wordpress-mysql",
        "--until",
        "2026-11-20T12:00:00Z",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let yaml = out(&o);
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{yaml}");
    assert_eq!(docs[0]["kind"], "KubeArmorPolicy");
    assert_eq!(docs[0]["metadata"]["namespace"], "wordpress-mysql");
    assert_eq!(docs[0]["spec"]["action"], "Allow");
    assert!(err(&o).contains("WORKLOAD"), "{}", err(&o));
    // Learned before 12:00: the attacker's curl is not in it.
    assert!(!yaml.contains("/usr/bin/curl"), "{yaml}");
}

#[test]
fn audit_action_and_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let o = karmor(&[
        "recommend",
        "deployments",
        "-n",
        "wordpress-mysql",
        "--action",
        "audit",
        "--include",
        "exec,probes",
        "--max-rules",
        "30",
        "--dir-threshold",
        "8,/var/www/=3",
        "--out",
        dir.path().to_str().unwrap(),
        "--output",
        "json",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let total: u64 = ["process", "file", "network", "capabilities"]
            .iter()
            .map(|k| r[k].as_u64().unwrap())
            .sum();
        assert!(total <= 30 || r["warnings"].as_u64().unwrap() > 0, "{r}");
    }
    let my = fs::read_to_string(dir.path().join("wordpress-mysql_deployment_mysql.yaml")).unwrap();
    assert!(my.contains("action: Audit"), "{my}");
    assert!(
        my.contains("/usr/bin/mysqladmin"),
        "probes were asked for:\n{my}"
    );
}

#[test]
fn bad_arguments_say_what_is_wrong() {
    let demo = demo();
    let d = demo.to_str().unwrap();
    for (args, want) in [
        (vec!["recommend", "gadgets", "-A"], "unknown resource type"),
        (vec!["recommend", "-A", "--action", "Block"], "--hardening"),
        (
            vec!["recommend", "-A", "--include", "naps"],
            "unknown --include value",
        ),
        (
            vec!["recommend", "-A", "--dir-threshold", "tmp=x"],
            "invalid --dir-threshold",
        ),
        (
            vec![
                "recommend",
                "-A",
                "--since",
                "2026-11-20T12:00:00Z",
                "--until",
                "2026-11-20T08:00:00Z",
            ],
            "--since must be before --until",
        ),
        (vec!["recommend", "-A", "--until", "lunchtime"], "RFC 3339"),
        (vec!["recommend", "-n", "nowhere"], "Namespaces in the data"),
        (vec!["recommend", "-A", "-f", "path=("], "filter"),
    ] {
        let mut a = args.clone();
        a.extend(["--bundle", d]);
        let o = karmor(&a);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
    }
}

#[test]
fn the_report_warns_when_the_evidence_had_drops() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("lossy");
    let row = |op: Op, process: &str, path: Option<&str>| Event {
        ts_first: 1_795_161_600_000_000_000,
        ts_last: 1_795_161_600_000_000_000,
        count: 1,
        node: "n1".into(),
        namespace: Some("shop".into()),
        pod: Some("web-1".into()),
        container: Some("web".into()),
        workload_kind: Some("Deployment".into()),
        workload: Some("web".into()),
        labels: vec!["app=web".into()],
        pid: Some(10),
        process: Some(process.into()),
        parent_process: Some("/bin/init".into()),
        op,
        source: Source::Ebpf,
        path: path.map(String::from),
        access: path.map(|_| "read".into()),
        ..Event::default()
    };
    write_bundle(
        &bundle,
        vec![
            row(Op::Process, "/usr/bin/web", None),
            row(Op::File, "/usr/bin/web", Some("/etc/web.conf")),
        ],
        &BundleOptions {
            producer: "test".into(),
            events_dropped: 42,
            ..BundleOptions::default()
        },
    )
    .unwrap();
    let report = dir.path().join("r.md");
    let o = karmor(&[
        "recommend",
        "-n",
        "shop",
        "--report",
        report.to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let md = fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("incomplete evidence") && md.contains("dropped 42 events"),
        "{md}"
    );
    assert!(
        out(&o).contains("the evidence is incomplete"),
        "{}",
        out(&o)
    );
}

/// Defaults keep probes (commented), `--exclude probes` leaves them out; the JSON summary
/// carries the held-out count and the permissiveness measure; simulate names held-out rows.
#[test]
fn exclude_probes_held_out_and_permissiveness_in_the_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = demo();
    let run = |extra: &[&str], out_dir: &std::path::Path| {
        let mut args = vec![
            "recommend",
            "deployments",
            "-n",
            "wordpress-mysql",
            "--out",
            out_dir.to_str().unwrap(),
            "--output",
            "json",
            "--bundle",
            bundle.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = karmor(&args);
        assert!(o.status.success(), "{}", err(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("JSON summary")
    };
    let v = run(&[], &dir.path().join("a"));
    let my =
        fs::read_to_string(dir.path().join("a/wordpress-mysql_deployment_mysql.yaml")).unwrap();
    assert!(
        my.contains("# probe: ") && my.contains("- path: /usr/bin/mysqladmin"),
        "{my}"
    );
    let wp = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workload"] == "wordpress-mysql/Deployment/wordpress")
        .unwrap();
    assert_eq!(wp["held_out"], 4, "{wp}");
    assert!(wp["warnings"].as_u64().unwrap() >= 4, "{wp}");
    let allowed = wp["behaviours_allowed"].as_u64().unwrap();
    assert!(
        allowed > 0 && allowed < wp["behaviours_seen"].as_u64().unwrap(),
        "{wp}"
    );
    assert!(wp["unobserved_files_allowed"].is_u64(), "{wp}");

    run(&["--exclude", "probes,startup"], &dir.path().join("b"));
    let my =
        fs::read_to_string(dir.path().join("b/wordpress-mysql_deployment_mysql.yaml")).unwrap();
    assert!(!my.contains("/usr/bin/mysqladmin\n"), "{my}");

    let o = karmor(&[
        "simulate",
        "-p",
        dir.path().join("a").to_str().unwrap(),
        "--default-posture",
        "block",
        "--only",
        "blocked",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("Held out by recommend as suspicious"),
        "{text}"
    );
    assert!(text.contains("203.0.113.66"), "{text}");
}
