//! scripts/fleet/ on a real engine: the Spark SQL summary (PySpark in local mode) over an
//! archive written by `kubectl karmor archive` (to moto's S3 server on loopback, then copied to
//! a local directory as `aws s3 sync` would) gives the per-workload counts that
//! `observe --output json` gives.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::moto::Moto;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn karmor(endpoint: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("KARMOR_NO_PULL", "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run kubectl-karmor")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copies every object under `prefix` of `bucket` into `dir` (boto3, which moto ships with).
fn sync_down(endpoint: &str, bucket: &str, prefix: &str, dir: &Path) {
    let script = r#"
import os, sys, boto3
ep, bucket, prefix, out = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        path = os.path.join(out, o["Key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, o["Key"], path)
        n += 1
print(n)
"#;
    let o = Command::new("python3")
        .args([
            "-c",
            script,
            endpoint,
            bucket,
            prefix,
            dir.to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    let n: usize = ok(&o).trim().parse().unwrap_or(0);
    let files = parquet_files(&root().join("testdata/demo"));
    assert_eq!(
        n,
        files + 1,
        "the demo's {files} Parquet files (events and pods table) and the manifest"
    );
}

/// The Parquet files under `dir`, at any depth.
fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                parquet_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[test]
#[ignore = "needs pyspark + JRE (and moto's S3 server)"]
fn spark_sql_summary_over_the_archive_matches_observe() {
    let has_spark = Command::new("python3")
        .args(["-c", "import pyspark"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_spark,
        "python3 cannot import pyspark: python3 -m pip install pyspark (and a JRE)"
    );
    let moto = Moto::start(&[]);
    moto.create_bucket("fleet");
    let home = tempfile::tempdir().unwrap();
    let demo = root().join("testdata/demo");
    ok(&karmor(
        &moto.endpoint(),
        home.path(),
        &[
            "archive",
            "--to",
            "s3://fleet/karmor",
            demo.to_str().unwrap(),
        ],
    ));
    let local = home.path().join("copy");
    sync_down(&moto.endpoint(), "fleet", "karmor/", &local);
    let archive = local.join("karmor");
    assert!(archive.join("cluster=demo/manifest.json").exists());

    let o = Command::new("python3")
        .args([
            root().join("scripts/fleet/spark.py").to_str().unwrap(),
            archive.to_str().unwrap(),
            "summary",
            "--json",
        ])
        .output()
        .expect("spark.py");
    let text = ok(&o);
    let mut spark: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["cluster"], "demo");
        let key = (
            v["namespace"].as_str().unwrap().to_string(),
            v["workload"].as_str().unwrap().to_string(),
            v["op"].as_str().unwrap().to_string(),
        );
        spark.insert(key, v["events"].as_u64().unwrap());
    }

    let o = karmor(
        &moto.endpoint(),
        home.path(),
        &[
            "observe",
            "workloads",
            "-A",
            "--output",
            "json",
            "--bundle",
            "s3://fleet/karmor",
        ],
    );
    let observed: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let mut ours: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (section, op) in [
        ("processes", "process"),
        ("files", "file"),
        ("network", "network"),
    ] {
        for row in observed[section].as_array().unwrap() {
            let Some(ns) = row["namespace"].as_str() else {
                continue;
            };
            let key = (
                ns.to_string(),
                row["resource"].as_str().unwrap().to_string(),
                op.to_string(),
            );
            *ours.entry(key).or_default() += row["count"].as_u64().unwrap();
        }
    }
    let spark_ops: BTreeMap<_, _> = spark
        .into_iter()
        .filter(|((_, _, op), _)| ["process", "file", "network"].contains(&op.as_str()))
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(spark_ops, ours);
}
