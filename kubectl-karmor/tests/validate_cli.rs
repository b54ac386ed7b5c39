//! `kubectl karmor validate`, run as a user runs it.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

const VALID: &str = "apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ksp-web-allow
  namespace: web
spec:
  selector:
    matchLabels:
      app: web
  process:
    matchPaths:
    - path: /usr/sbin/nginx
  action: Allow
";

const INVALID: &str = "apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: hsp-bin
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: node-1
  process:
    matchDirectories:
    - dir: /usr/bin
      recursive: true
  action: Block
";

const NOT_YAML: &str = "this: is: not [valid yaml\n";

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run kubectl-karmor")
}

fn setup(dir: &Path) {
    fs::write(dir.join("a-valid.yaml"), VALID).expect("write");
    fs::write(dir.join("b-invalid.yaml"), INVALID).expect("write");
    fs::write(dir.join("c-broken.yaml"), NOT_YAML).expect("write");
    fs::write(dir.join("README.txt"), "not a policy file, not looked at").expect("write");
}

#[test]
fn reports_every_file_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let d = dir.path().to_str().expect("utf-8 temp path");
    let out = karmor(&["validate", d]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("FILE"), "{stdout}");
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{stdout}"))
            .to_string()
    };
    let valid = row("a-valid.yaml");
    assert!(valid.contains("KubeArmorPolicy"), "{valid}");
    assert!(valid.contains("ksp-web-allow"), "{valid}");
    assert!(valid.trim_end().ends_with("OK"), "{valid}");
    let invalid = row("b-invalid.yaml");
    assert!(invalid.contains("KubeArmorHostPolicy"), "{invalid}");
    assert!(
        invalid.ends_with("spec.process.matchDirectories[0].dir: must end with \"/\""),
        "{invalid}"
    );
    let broken = row("c-broken.yaml");
    assert!(broken.contains("not valid YAML"), "{broken}");
    assert!(broken.contains("line 1"), "{broken}");
    assert!(!stdout.contains("README"), "{stdout}");
    assert!(
        stdout.contains("3 documents: 1 valid, 2 invalid, 0 skipped"),
        "{stdout}"
    );
}

#[test]
fn valid_files_exit_0_and_warnings_go_to_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.yaml");
    // A typo the cluster would silently drop: valid, with a warning.
    fs::write(&file, VALID.replace("matchPaths", "matchPath")).expect("write");
    let out = karmor(&["validate", file.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("OK (2 warnings)"), "{stdout}");
    assert!(
        stderr.contains(
            "Warning: {}: document 1 (KubeArmorPolicy ksp-web-allow): spec.process.matchPath: \
             unknown field (did you mean matchPaths?)"
                .replace("{}", file.to_str().expect("path"))
                .as_str()
        ),
        "{stderr}"
    );
}

#[test]
fn json_output_lists_documents_with_field_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let b = dir.path().join("b-invalid.yaml");
    let a = dir.path().join("a-valid.yaml");
    let out = karmor(&[
        "validate",
        a.to_str().expect("path"),
        b.to_str().expect("path"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let reports = v.as_array().expect("array");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["outcome"], "valid");
    assert_eq!(reports[0]["document"], 1);
    assert_eq!(reports[1]["outcome"], "invalid");
    assert_eq!(reports[1]["kind"], "KubeArmorHostPolicy");
    assert_eq!(reports[1]["name"], "hsp-bin");
    assert_eq!(
        reports[1]["errors"][0]["path"],
        "spec.process.matchDirectories[0].dir"
    );
    assert_eq!(reports[1]["errors"][0]["message"], "must end with \"/\"");
}

#[test]
fn missing_path_is_reported_and_others_still_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.yaml");
    fs::write(&a, VALID).expect("write");
    let missing = dir.path().join("missing.yaml");
    let out = karmor(&[
        "validate",
        missing.to_str().expect("path"),
        a.to_str().expect("path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cannot read"), "{stdout}");
    assert!(stdout.contains("ksp-web-allow"), "{stdout}");
}
