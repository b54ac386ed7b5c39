//! `recommend --network`, `simulate` and `validate` with network policies, run as a user runs
//! them on the committed demo bundle: the morning's drafts drop only the attack's connection of
//! the afternoon, and validate; bad network policies are named by file and field.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .output()
        .expect("run kubectl-karmor")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn draft(dir: &Path, format: &str) -> Vec<PathBuf> {
    let demo = demo();
    let out = karmor(&[
        "recommend",
        "-n",
        "wordpress-mysql",
        "--network-format",
        format,
        "--until",
        "2026-11-20T12:00:00Z",
        "--out",
        dir.to_str().unwrap(),
        "--report",
        dir.join("REPORT.md").to_str().unwrap(),
        "--bundle",
        demo.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn morning_network_drafts_simulated_on_the_day_drop_only_the_attack() {
    for (format, ext) in [("kubernetes", "netpol.yaml"), ("cilium", "cnp.yaml")] {
        let dir = tempfile::tempdir().unwrap();
        let files = draft(dir.path(), format);
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(
            names,
            [
                format!("wordpress-mysql_deployment_mysql.{ext}"),
                format!("wordpress-mysql_deployment_wordpress.{ext}")
            ]
        );
        let report = fs::read_to_string(dir.path().join("REPORT.md")).unwrap();
        assert!(report.contains("# Network policy drafts"), "{report}");

        let validate = karmor(&["validate", dir.path().to_str().unwrap()]);
        assert!(validate.status.success(), "{}", text(&validate));

        let demo = demo();
        let sim = karmor(&[
            "simulate",
            "-p",
            dir.path().to_str().unwrap(),
            "-n",
            "wordpress-mysql",
            "--output",
            "json",
            "--bundle",
            demo.to_str().unwrap(),
        ]);
        assert!(sim.status.success(), "{}", text(&sim));
        let doc: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
        let dropped: Vec<&serde_json::Value> = doc["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["decision"] == "Dropped")
            .collect();
        assert_eq!(dropped.len(), 1, "{format}: {dropped:#?}");
        assert_eq!(dropped[0]["flow"]["remote_addr"], "203.0.113.66");
        assert_eq!(dropped[0]["flow"]["port"], 4444);
        assert_eq!(
            dropped[0]["policies"][0],
            "wordpress-mysql/karmor-wordpress"
        );
        assert_eq!(doc["totals"]["dropped"][1], 1, "{format}");
        assert!(doc["totals"]["allowed"][1].as_u64().unwrap() > 10_000);
    }
}

#[test]
fn invalid_network_policies_are_named_by_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    fs::write(
        &bad,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}\n    ports:\n    - {protocol: HTTP, port: 80}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c}\nspec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [internet]\n",
    )
    .unwrap();
    let out = karmor(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    for want in [
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "strict subset",
        "spec.ingress[0].ports[0].protocol",
        "spec.egress[0].toEntities[0]",
    ] {
        assert!(t.contains(want), "{want:?} missing:\n{t}");
    }
}
