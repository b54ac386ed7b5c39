//! The plugin binary, run as a user runs it, on the committed demo bundle and on KubeArmor's
//! documented telemetry.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn doc_events() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/kubearmor/events/doc-events.jsonl");
    assert!(
        p.exists(),
        "KubeArmor reference events expected at {} (../shared beside the clone)",
        p.display()
    );
    p
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .output()
        .expect("run kubectl-karmor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `kubectl karmor observe EXTRA... --bundle BUNDLE`.
fn observe_in(bundle: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["observe"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", bundle.to_str().unwrap()]);
    karmor(&args)
}

/// `observe` on the demo bundle.
fn observe(extra: &[&str]) -> Output {
    observe_in(&demo(), extra)
}

#[test]
fn observe_pods_prints_a_readable_table() {
    let o = observe(&["pods", "-n", "wordpress-mysql"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for section in ["PROCESSES", "FILES READ", "FILES WRITTEN", "NETWORK"] {
        assert!(out.contains(section), "missing {section}:\n{out}");
    }
    assert!(out.contains("POD") && out.contains("COUNT") && out.contains("LAST SEEN"));
    assert!(out.contains("/usr/sbin/apache2"), "{out}");
    assert!(out.contains("/usr/sbin/mysqld"), "{out}");
    assert!(
        !out.contains("kube-proxy"),
        "other namespaces leak in:\n{out}"
    );
}

#[test]
fn json_yaml_and_csv_outputs_parse_and_agree() {
    let j = observe(&["pods", "-n", "wordpress-mysql", "--output", "json"]);
    assert!(j.status.success(), "{}", stderr(&j));
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("valid JSON");
    let n_json: usize = ["processes", "files", "network"]
        .iter()
        .map(|k| v[k].as_array().expect(k).len())
        .sum();
    assert!(n_json > 10);

    let y = observe(&["pods", "-n", "wordpress-mysql", "--output", "yaml"]);
    let yv: serde_json::Value = serde_yaml::from_slice(&y.stdout).expect("valid YAML");
    assert_eq!(yv, v);

    let c = observe(&["pods", "-n", "wordpress-mysql", "--output", "csv"]);
    let mut r = csv::Reader::from_reader(c.stdout.as_slice());
    assert_eq!(r.headers().unwrap().get(0), Some("section"));
    let records: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), n_json);
}

#[test]
fn wide_adds_pids_containers_and_nodes() {
    let o = observe(&[
        "pods",
        "-n",
        "wordpress-mysql",
        "--output",
        "wide",
        "-o",
        "process",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("PIDS") && out.contains("CONTAINERS") && out.contains("NODES"));
    assert!(out.contains("node-a") && out.contains("node-b"), "{out}");
    assert!(
        !out.contains("FILES READ"),
        "-o process shows processes only"
    );
}

#[test]
fn describe_prints_a_header_then_the_data() {
    let o = observe(&["deployments", "wordpress", "-n", "wordpress-mysql", "-D"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let name = out.find("Name:").expect("header");
    let data = out.find("PROCESSES").expect("data");
    assert!(name < data);
    for field in [
        "Namespace:",
        "Pods:",
        "Containers:",
        "Labels:",
        "app=wordpress",
        "wordpress:6.4-apache",
    ] {
        assert!(out.contains(field), "missing {field}:\n{out}");
    }
}

#[test]
fn hostile_filter_gets_a_positioned_error_not_an_sql_error() {
    let o = observe(&[
        "pods",
        "-A",
        "-f",
        "process=/bin/sh' OR 1=1; DROP TABLE events; --&&(",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("filter error at column"), "{err}");
    assert!(!err.to_lowercase().contains("duckdb"), "{err}");
}

#[test]
fn empty_answer_hints_at_namespaces_in_the_data() {
    let o = observe(&["pods"]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("namespace default") && err.contains("wordpress-mysql"),
        "{err}"
    );
}

#[test]
fn import_verify_and_observe_kubearmor_logs() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    // One garbage line between two valid ones: reported with its line number, rest imported.
    let input = dir.path().join("logs.jsonl");
    let lines: Vec<String> = fs::read_to_string(doc_events())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut text = lines.join("\n");
    text.push_str("\n{\"Operation\": \n");
    fs::write(&input, text).unwrap();

    let o = karmor(&[
        "import",
        input.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("line {}", lines.len() + 1)),
        "{}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["inputs"][0]["imported"], lines.len() as u64);
    assert_eq!(report["inputs"][0]["bad_lines"], 1);

    let strict = karmor(&[
        "import",
        input.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--strict",
    ]);
    assert!(!strict.status.success(), "--strict fails on the bad line");

    let v = karmor(&["bundle", "verify", bundle.to_str().unwrap()]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));

    let info = karmor(&[
        "bundle",
        "info",
        bundle.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let m: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        m["totals"]["events_dropped"], 1,
        "bad line counted once, not per import"
    );

    let obs = observe_in(
        &bundle,
        &["pods", "-n", "wordpress-mysql", "--output", "json"],
    );
    assert!(obs.status.success(), "{}", stderr(&obs));
    assert!(
        stderr(&obs).contains("dropped 1"),
        "drops are surfaced: {}",
        stderr(&obs)
    );
    let s: serde_json::Value = serde_json::from_slice(&obs.stdout).unwrap();
    let files = s["files"].as_array().unwrap();
    assert!(files
        .iter()
        .any(|f| f["path"] == "/etc/ca-certificates.conf" && f["mode"] == "read"));
    assert!(files
        .iter()
        .any(|f| f["path"] == "/sbin/file" && f["mode"] == "write"));
}

#[test]
fn one_changed_byte_is_caught_and_the_rest_is_still_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("demo");
    copy_tree(&demo(), &copy);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(copy.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let victim = files[files.len() / 2]["path"].as_str().unwrap().to_string();
    let victim_path = copy.join(&victim);
    let mut bytes = fs::read(&victim_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] = bytes[mid].wrapping_add(1);
    fs::write(&victim_path, &bytes).unwrap();

    let v = karmor(&["bundle", "verify", copy.to_str().unwrap()]);
    assert!(!v.status.success());
    assert!(
        stdout(&v).contains(&victim) && stdout(&v).contains("sha256"),
        "{}",
        stdout(&v)
    );

    let o = observe_in(&copy, &["nodes", "--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&victim), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!s["processes"].as_array().unwrap().is_empty());

    // A truncated file too.
    let other = files[0]["path"].as_str().unwrap();
    let p = copy.join(other);
    let b = fs::read(&p).unwrap();
    fs::write(&p, &b[..b.len() / 3]).unwrap();
    let o = observe_in(&copy, &["nodes"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains(other) && stderr(&o).contains(&victim),
        "{}",
        stderr(&o)
    );
}

#[test]
fn tar_bundles_are_read_like_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("demo.tar.gz");
    let parent = demo().parent().unwrap().to_path_buf();
    let made = Command::new("tar")
        .args([
            "czf",
            archive.to_str().unwrap(),
            "-C",
            parent.to_str().unwrap(),
            "demo",
        ])
        .status()
        .expect("tar runs");
    assert!(made.success());

    let from_dir = observe(&["pods", "-n", "wordpress-mysql", "--output", "json"]);
    let from_tar = observe_in(
        &archive,
        &["pods", "-n", "wordpress-mysql", "--output", "json"],
    );
    assert!(from_tar.status.success(), "{}", stderr(&from_tar));
    assert_eq!(stdout(&from_tar), stdout(&from_dir));
    assert!(stderr(&from_tar).is_empty(), "{}", stderr(&from_tar));

    let v = karmor(&["bundle", "verify", archive.to_str().unwrap()]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("0 with problems"), "{}", stdout(&v));
    // `info` reads the archive's manifest: the same as the directory's.
    let info = |bundle: &Path| {
        let o = karmor(&[
            "bundle",
            "info",
            "--output",
            "json",
            bundle.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    assert_eq!(info(&archive), info(&demo()));

    // Not an archive: refused with its name.
    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "hello\n".repeat(200)).unwrap();
    let o = observe_in(&notes, &["pods", "-A"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(notes.to_str().unwrap()) && stderr(&o).contains(".tar"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs python3 with polars (pip install polars)"]
fn bundles_open_in_polars() {
    let has_polars = Command::new("python3")
        .args(["-c", "import polars"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_polars,
        "python3 cannot import polars: python3 -m pip install polars"
    );
    let script = r#"
import json, sys, polars as pl
root = sys.argv[1]
m = json.load(open(f"{root}/manifest.json"))
df = pl.read_parquet(f"{root}/node=*/**/*.parquet", hive_partitioning=False)
assert df.height == m["totals"]["rows"], (df.height, m["totals"]["rows"])
assert int(df["count"].sum()) == m["totals"]["events_seen"]
assert df.schema["ts_first"] == pl.Datetime("ns", "UTC"), df.schema["ts_first"]
assert set(["namespace", "pod", "process", "path", "remote_port", "labels"]) <= set(df.columns)
top = df.filter(pl.col("op") == "process").group_by("process").agg(pl.col("count").sum())
assert top.height > 0
print("polars ok", df.height)
"#;
    let o = Command::new("python3")
        .args(["-c", script, demo().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("polars ok"));
}

#[test]
fn completion_scripts_are_generated() {
    let o = karmor(&["completion", "bash"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("observe"));
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
