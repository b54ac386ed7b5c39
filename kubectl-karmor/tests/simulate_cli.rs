//! `kubectl karmor simulate`, run as a user runs it, on the committed demo bundle with a policy
//! of our hardening library (`policies/`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use karmor_contract::bundle::read_manifest;
use karmor_contract::segment::read_segment;
use karmor_contract::{Event, Op};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn demo() -> PathBuf {
    root().join("testdata/demo")
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .output()
        .expect("run kubectl-karmor")
}

fn demo_rows() -> Vec<Event> {
    let m = read_manifest(&demo()).expect("demo manifest");
    m.files
        .iter()
        .flat_map(|f| read_segment(&demo().join(&f.path)).expect("segment").1)
        .collect()
}

/// The library's system-binary-write policy, selecting the demo's MySQL pods.
fn library_policy_for_mysql(dir: &Path) -> (PathBuf, Vec<String>) {
    let text =
        fs::read_to_string(root().join("policies/filesystem-integrity/system-binary-write.yaml"))
            .expect("library policy");
    assert!(text.contains("kubearmor.io/harden: \"true\""));
    let adapted = text.replace("kubearmor.io/harden: \"true\"", "tier: backend");
    let path = dir.join("system-binary-write.yaml");
    fs::write(&path, adapted).expect("write policy");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let dirs = value["spec"]["file"]["matchDirectories"]
        .as_sequence()
        .expect("matchDirectories")
        .iter()
        .map(|d| d["dir"].as_str().expect("dir").to_string())
        .collect();
    (path, dirs)
}

#[test]
fn simulate_json_reports_exactly_the_blocked_writes_and_skips_a_broken_policy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_policy, dirs) = library_policy_for_mysql(tmp.path());
    // A broken document next to it must not stop the simulation.
    fs::write(
        tmp.path().join("broken.yaml"),
        "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: broken, namespace: wordpress-mysql}\n\
         spec:\n  selector: {matchLabels: {app: mysql}}\n  file:\n    matchDirectories: [{dir: /etc}]\n  action: Block\n",
    )
    .expect("write");
    let out = karmor(&[
        "simulate",
        "-p",
        tmp.path().to_str().unwrap(),
        "-n",
        "wordpress-mysql",
        "--output",
        "json",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");

    let warnings = doc["invalid_documents"]
        .as_array()
        .expect("invalid_documents");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("broken.yaml")
                && w.as_str().unwrap().contains("matchDirectories[0].dir")),
        "{warnings:?}"
    );
    assert_eq!(
        doc["policies"],
        serde_json::json!(["wordpress-mysql/karmor-harden-system-binary-write"])
    );
    assert_eq!(doc["unmatched_policies"], serde_json::json!([]));

    // Independent expectation from the rows: MySQL writes below the library's directories.
    let writes = ["write", "create", "delete", "rename", "chmod", "chown"];
    let expected: Vec<Event> = demo_rows()
        .into_iter()
        .filter(|e| {
            e.namespace.as_deref() == Some("wordpress-mysql")
                && e.labels.iter().any(|l| l == "tier=backend")
                && e.op == Op::File
                && e.access.as_deref().is_some_and(|a| writes.contains(&a))
                && e.path
                    .as_deref()
                    .is_some_and(|p| dirs.iter().any(|d| p.starts_with(d.as_str())))
        })
        .collect();
    assert!(!expected.is_empty());
    let blocked: Vec<&serde_json::Value> = doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["decision"] == "blocked")
        .collect();
    let mut got: Vec<String> = blocked
        .iter()
        .map(|e| e["resource"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    got.dedup();
    let mut want: Vec<String> = expected.iter().map(|e| e.path.clone().unwrap()).collect();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
    let events: u64 = expected.iter().map(|e| e.count).sum();
    assert_eq!(doc["totals"]["blocked"].as_u64(), Some(events));
    for e in &blocked {
        assert_eq!(
            e["policy"],
            "wordpress-mysql/karmor-harden-system-binary-write"
        );
        assert!(e["rule"].as_str().unwrap().contains("readOnly"), "{e}");
    }
    // Reads of the same directories stay allowed; every entry is in the namespace asked for.
    let entries = doc["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["decision"] == "allowed"
            && e["resource"].as_str().unwrap().starts_with("/usr/lib/")));
    assert!(entries.iter().all(|e| e["namespace"] == "wordpress-mysql"));
}

#[test]
fn simulate_table_has_a_totals_line_and_only_filters() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (policy, _) = library_policy_for_mysql(tmp.path());
    let out = karmor(&[
        "simulate",
        "-p",
        policy.to_str().unwrap(),
        "-n",
        "wordpress-mysql",
        "--only",
        "blocked",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE"), "{text}");
    assert!(
        lines[1].contains("/usr/bin/kworker") && lines[1].contains("blocked"),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.contains("allowed"))
            .all(|l| l.starts_with("Totals:")),
        "{text}"
    );
    assert!(
        text.contains("Totals: ") && text.contains(" blocked (1)"),
        "{text}"
    );
}

#[test]
fn simulate_without_any_valid_policy_fails_and_names_the_problem() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.yaml");
    fs::write(&bad, "this: is: not [valid yaml\n").expect("write");
    let out = karmor(&[
        "simulate",
        "-p",
        bad.to_str().unwrap(),
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no valid KubeArmor policy") && stderr.contains("bad.yaml"),
        "{stderr}"
    );
}

#[test]
fn a_policy_that_selects_nothing_is_named() {
    // The library's placeholder selector (kubearmor.io/harden) matches no demo pod.
    let policy = root().join("policies/execution/shell-from-web-server.yaml");
    let out = karmor(&[
        "simulate",
        "-p",
        policy.to_str().unwrap(),
        "-A",
        "--output",
        "json",
        "--bundle",
        demo().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        doc["unmatched_policies"],
        serde_json::json!(["default/karmor-harden-shell-from-web-server"])
    );
    assert_eq!(doc["policies"], serde_json::json!([]));
    assert_eq!(doc["totals"]["blocked"].as_u64(), Some(0));
    assert_eq!(doc["totals"]["audited"].as_u64(), Some(0));
    // -A replays the hosts too.
    assert!(doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["host"] == true));
}

/// A small bundle of a pod whose interpreter probes missing paths, under an allow-list with a
/// block posture: the failed look-ups come out `unaffected` (not blocked) in every format.
#[test]
fn failed_lookups_are_unaffected_in_every_output_format() {
    use karmor_contract::bundle::{write_bundle, BundleOptions};
    use karmor_contract::Source;

    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = tmp.path().join("bundle");
    let row =
        |op: Op, process: &str, path: Option<&str>, access: Option<&str>, result: &str| Event {
            ts_first: 1_763_625_600_000_000_000,
            ts_last: 1_763_625_600_000_001_000,
            count: 2,
            node: "node-a".into(),
            namespace: Some("shop".into()),
            pod: Some("web-1".into()),
            container: Some("app".into()),
            workload_kind: Some("Deployment".into()),
            workload: Some("web".into()),
            labels: vec!["app=web".into()],
            uid: Some(1000),
            op,
            process: Some(process.into()),
            parent_process: Some("/bin/sh".into()),
            path: path.map(str::to_string),
            access: access.map(str::to_string),
            result: Some(result.into()),
            source: Source::Ebpf,
            ..Event::default()
        };
    let py = "/usr/bin/python3";
    let rows = vec![
        row(Op::Process, py, None, None, "Passed"),
        row(Op::File, py, Some("/app/main.py"), Some("read"), "Passed"),
        row(
            Op::File,
            py,
            Some("/usr/lib/python3.12/missing.pyc"),
            Some("read"),
            "No such file or directory",
        ),
        row(
            Op::Process,
            "/usr/local/bin/helper",
            None,
            None,
            "No such file or directory",
        ),
        row(
            Op::File,
            py,
            Some("/etc/shadow"),
            Some("read"),
            "Permission denied",
        ),
    ];
    write_bundle(
        &bundle,
        rows,
        &BundleOptions {
            producer: "simulate-cli-test".into(),
            ..BundleOptions::default()
        },
    )
    .expect("bundle");
    let policy = tmp.path().join("web.yaml");
    fs::write(
        &policy,
        "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\n\
         metadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  \
         process:\n    matchPaths: [{path: /usr/bin/python3}]\n  \
         file:\n    matchPaths: [{path: /app/main.py, readOnly: true}]\n  action: Allow\n",
    )
    .expect("policy");
    let sim = |format: &str| -> String {
        let out = karmor(&[
            "simulate",
            "-p",
            policy.to_str().unwrap(),
            "-n",
            "shop",
            "--default-posture",
            "block",
            "--output",
            format,
            "--bundle",
            bundle.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let doc: serde_json::Value = serde_json::from_str(&sim("json")).expect("json");
    let entries = doc["entries"].as_array().expect("entries");
    let decision_of = |resource: &str| -> (String, serde_json::Value) {
        let e = entries
            .iter()
            .find(|e| e["resource"] == resource)
            .unwrap_or_else(|| panic!("no entry for {resource}: {entries:#?}"));
        (
            e["decision"].as_str().unwrap().to_string(),
            e["result"].clone(),
        )
    };
    assert_eq!(
        decision_of("/usr/lib/python3.12/missing.pyc"),
        ("unaffected".into(), "No such file or directory".into())
    );
    assert_eq!(decision_of("/usr/local/bin/helper").0, "unaffected");
    assert_eq!(
        decision_of("/etc/shadow"),
        ("blocked".into(), "Permission denied".into())
    );
    assert_eq!(decision_of("/app/main.py").0, "allowed");
    assert_eq!(decision_of("/usr/bin/python3").0, "allowed");
    assert_eq!(doc["totals"]["unaffected"].as_u64(), Some(4));
    assert_eq!(doc["totals"]["unaffected_entries"].as_u64(), Some(2));
    assert_eq!(doc["totals"]["blocked_entries"].as_u64(), Some(1));

    let yaml: serde_yaml::Value = serde_yaml::from_str(&sim("yaml")).expect("yaml");
    assert_eq!(yaml["totals"]["unaffected_entries"].as_u64(), Some(2));
    assert!(yaml["entries"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|e| e["decision"].as_str() == Some("unaffected")
            && e["resource"].as_str() == Some("/usr/local/bin/helper")));

    let csv = sim("csv");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (res, dec, result) = (col("resource"), col("decision"), col("result"));
    let missing: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[res] == "/usr/lib/python3.12/missing.pyc")
        .collect();
    assert_eq!(missing.len(), 1, "{csv}");
    assert_eq!(
        (missing[0][dec], missing[0][result]),
        ("unaffected", "No such file or directory")
    );

    let table = sim("table");
    let line = |text: &str, needle: &str| -> String {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{text}"))
            .to_string()
    };
    assert!(
        line(&table, "missing.pyc").contains("unaffected"),
        "{table}"
    );
    assert!(line(&table, "/etc/shadow").contains("blocked"), "{table}");
    assert!(
        line(&table, "Totals:").contains("4 unaffected (2)"),
        "{table}"
    );
    // Blocked first, unaffected last.
    let pos = |needle: &str| table.find(needle).unwrap();
    assert!(pos("/etc/shadow") < pos("missing.pyc"), "{table}");

    let wide = sim("wide");
    let l = line(&wide, "/usr/local/bin/helper");
    assert!(
        l.contains("No such file or directory")
            && l.contains("unaffected")
            && l.contains("did not resolve"),
        "{wide}"
    );

    // --only unaffected keeps just those.
    let out = karmor(&[
        "simulate",
        "-p",
        policy.to_str().unwrap(),
        "-n",
        "shop",
        "--default-posture",
        "block",
        "--only",
        "unaffected",
        "--output",
        "json",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let only: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let decisions: Vec<&str> = only["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["unaffected", "unaffected"]);
}
