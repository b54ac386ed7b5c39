//! The archive tier against a real S3-compatible server on loopback (moto in server mode):
//! `archive --to s3://…` of a bundle, then `--bundle s3://…` reads it back.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::moto::{copy_tree, Moto};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const NEEDS: &str = "needs moto's S3 server: python3 -m pip install 'moto[server]'";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

/// The plugin with the AWS environment of `endpoint` and its own cache under `home`.
fn karmor(endpoint: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("KARMOR_NO_PULL", "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("KARMOR_S3_RETRIES", "1")
        .output()
        .expect("run kubectl-karmor")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}\n{}", out(o), err(o));
    out(o)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

/// A JSON answer with every list sorted: observe orders rows by count and a few columns, and
/// rows that tie on those may come in either order from one run to the next.
fn rows_sorted(text: &str) -> serde_json::Value {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Array(items) => {
                let mut items: Vec<serde_json::Value> = items.into_iter().map(sort).collect();
                items.sort_by_key(|i| i.to_string());
                serde_json::Value::Array(items)
            }
            serde_json::Value::Object(map) => {
                serde_json::Value::Object(map.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            other => other,
        }
    }
    sort(serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

/// Replaces an object's bytes behind the plugin's back (boto3, which moto ships with).
fn overwrite(moto: &Moto, bucket: &str, key: &str, body: &str) {
    let script = r#"
import sys, boto3
ep, bucket, key, body = sys.argv[1:5]
boto3.client("s3", endpoint_url=ep, aws_access_key_id="testing", aws_secret_access_key="testing",
             region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=body.encode())
"#;
    let o = Command::new("python3")
        .args(["-c", script, &moto.endpoint(), bucket, key, body])
        .output()
        .expect("python3");
    ok(&o);
}

/// The keys under `prefix`, sorted (boto3).
fn keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let script = r#"
import sys, boto3
ep, bucket, prefix = sys.argv[1:4]
c = boto3.client("s3", endpoint_url=ep, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1")
for o in c.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
    print(o["Key"])
"#;
    let o = Command::new("python3")
        .args(["-c", script, &moto.endpoint(), bucket, prefix])
        .output()
        .expect("python3");
    let mut out: Vec<String> = ok(&o).lines().map(str::to_string).collect();
    out.sort();
    out
}

/// Requests of `moto` from the `from`th on.
fn since(moto: &Moto, from: usize) -> Vec<String> {
    moto.requests().into_iter().skip(from).collect()
}

fn writes(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST ") || r.starts_with("DELETE "))
        .collect()
}

fn parquet_gets(requests: &[String]) -> usize {
    requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains(".parquet"))
        .count()
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn archive_then_observe_from_s3_equals_local_and_a_second_archive_sends_nothing() {
    let _ = NEEDS;
    let moto = Moto::start(&[]);
    moto.create_bucket("audit");
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    copy_tree(&demo(), &bundle);
    let url = "s3://audit/karmor/fleet";
    let ep = moto.endpoint();

    let first = json(&karmor(
        &ep,
        home.path(),
        &[
            "archive",
            "--to",
            url,
            bundle.to_str().unwrap(),
            "--output",
            "json",
        ],
    ));
    assert_eq!(first["cluster"], "demo");
    assert_eq!(first["listed"], 12);
    assert_eq!(first["uploaded"], 12);
    assert_eq!(first["pods_listed"], 2);
    assert_eq!(first["pods_uploaded"], 2);
    assert_eq!(first["manifest_written"], true);
    let keys: Vec<String> = moto
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PUT /audit/"))
        .collect();
    assert!(
        keys.iter().any(|k| k.starts_with(
            "PUT /audit/karmor/fleet/cluster=demo/node=node-a/date=2026-11-20/hour=08/seg-"
        )),
        "{keys:?}"
    );
    assert!(keys
        .iter()
        .any(|k| k == "PUT /audit/karmor/fleet/cluster=demo/manifest.json"));
    for node in ["node-a", "node-b"] {
        let pods = format!("PUT /audit/karmor/fleet/cluster=demo/pods/node={node}/pods-");
        assert!(keys.iter().any(|k| k.starts_with(&pods)), "{keys:?}");
    }

    // A second archive of the same bundle sends nothing and writes nothing.
    let before = moto.requests().len();
    let second = json(&karmor(
        &ep,
        home.path(),
        &[
            "archive",
            "--to",
            url,
            bundle.to_str().unwrap(),
            "--output",
            "json",
        ],
    ));
    assert_eq!(second["uploaded"], 0);
    assert_eq!(second["pods_uploaded"], 0);
    assert_eq!(second["already_archived"], 12);
    assert_eq!(second["manifest_written"], false);
    let later = since(&moto, before);
    assert!(writes(&later).is_empty(), "{later:?}");

    // Read back: the same answers as the local bundle, for observe and recommend, and the
    // network drafts, whose peers resolve through the archived pods tables.
    for args in [
        vec!["observe", "pods", "-A", "--output", "json"],
        vec!["observe", "nodes", "--output", "json"],
        vec!["recommend", "-A"],
        vec![
            "recommend",
            "-n",
            "wordpress-mysql",
            "--network",
            "--until",
            "2026-11-20T12:00:00Z",
        ],
    ] {
        let mut local = args.clone();
        local.extend(["--bundle", bundle.to_str().unwrap()]);
        let mut remote = args.clone();
        remote.extend(["--bundle", url]);
        let l = ok(&karmor(&ep, home.path(), &local));
        let r = ok(&karmor(&ep, home.path(), &remote));
        assert!(l.len() > 100, "{l}");
        if args.contains(&"--network") {
            assert!(l.contains("kind: NetworkPolicy"), "{l}");
            assert!(l.contains("app: wordpress"), "{l}");
            assert!(
                !l.contains("cidr: 10.244."),
                "a pod address as an ipBlock:\n{l}"
            );
            assert_eq!(l, r, "{args:?}");
        } else if args[0] == "recommend" {
            // The drafts (YAML on standard output) are the same text.
            assert!(l.contains("kind: KubeArmorPolicy"), "{l}");
            assert_eq!(l, r, "{args:?}");
        } else {
            assert_eq!(rows_sorted(&l), rows_sorted(&r), "{args:?}");
        }
    }
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn since_cluster_and_node_fetch_only_the_files_needed_and_the_cache_is_reused() {
    let moto = Moto::start(&[]);
    moto.create_bucket("audit");
    let home = tempfile::tempdir().unwrap();
    let url = "s3://audit/k";
    let ep = moto.endpoint();
    // The demo bundle: two nodes, one file per node and hour, 08:00 to 14:00.
    // --older-than with the cut at 11:30 that day: the hours 08 to 10 go, the rest waits.
    let cut = chrono::DateTime::parse_from_rfc3339("2026-11-20T11:30:00Z").unwrap();
    let minutes = (chrono::Utc::now().signed_duration_since(cut)).num_minutes();
    let older = format!("{minutes}m");
    let aged = json(&karmor(
        &ep,
        home.path(),
        &[
            "archive",
            "--to",
            url,
            demo().to_str().unwrap(),
            "--older-than",
            &older,
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        (aged["uploaded"].as_u64(), aged["too_recent"].as_u64()),
        (Some(6), Some(6)),
        "{aged}"
    );
    let rest = json(&karmor(
        &ep,
        home.path(),
        &[
            "archive",
            "--to",
            url,
            demo().to_str().unwrap(),
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        (rest["uploaded"].as_u64(), rest["already_archived"].as_u64()),
        (Some(6), Some(6)),
        "{rest}"
    );

    let before = moto.requests().len();
    let since_noon = [
        "observe",
        "pods",
        "-A",
        "--since",
        "2026-11-20T12:00:00Z",
        "--output",
        "json",
        "--bundle",
        url,
    ];
    let r = ok(&karmor(&ep, home.path(), &since_noon));
    let reqs = since(&moto, before);
    assert_eq!(
        parquet_gets(&reqs),
        6,
        "hours 12 and 13 of two nodes, and both nodes' pods table snapshots: {reqs:?}"
    );
    let pods_gets = reqs
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/pods/node="))
        .count();
    assert_eq!(pods_gets, 2, "{reqs:?}");
    let lists = reqs.iter().filter(|r| r.contains("list-type=2")).count();
    let manifests = reqs
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with("/manifest.json"))
        .count();
    assert_eq!((lists, manifests), (1, 1), "{reqs:?}");
    let local = ok(&karmor(
        &ep,
        home.path(),
        &[
            "observe",
            "pods",
            "-A",
            "--since",
            "2026-11-20T12:00:00Z",
            "--output",
            "json",
            "--bundle",
            demo().to_str().unwrap(),
        ],
    ));
    assert_eq!(rows_sorted(&r), rows_sorted(&local));

    // Again: everything from the cache.
    let before = moto.requests().len();
    ok(&karmor(&ep, home.path(), &since_noon));
    assert_eq!(parquet_gets(&since(&moto, before)), 0);

    // One node, a wider window: only that node's files, the ones already fetched reused.
    let before = moto.requests().len();
    let o = karmor(
        &ep,
        home.path(),
        &[
            "observe",
            "nodes",
            "node-a",
            "--since",
            "2026-11-20T10:00:00Z",
            "--cluster",
            "demo",
            "--bundle",
            url,
        ],
    );
    ok(&o);
    let reqs = since(&moto, before);
    assert_eq!(parquet_gets(&reqs), 2, "node-a hours 10 and 11: {reqs:?}");
    assert!(reqs.iter().all(|r| !r.contains("node=node-b")), "{reqs:?}");
    assert!(err(&o).contains("4 of 12 files"), "{}", err(&o));

    // A cluster that is not archived is named, with those that are.
    let o = karmor(
        &ep,
        home.path(),
        &["observe", "--cluster", "prod", "--bundle", url],
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("no cluster \"prod\" archived there (archived: demo)"),
        "{}",
        err(&o)
    );
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn a_corrupted_object_is_reported_by_key_and_the_rest_analysed() {
    let moto = Moto::start(&[]);
    moto.create_bucket("audit");
    let home = tempfile::tempdir().unwrap();
    let url = "s3://audit/k";
    let ep = moto.endpoint();
    ok(&karmor(
        &ep,
        home.path(),
        &["archive", "--to", url, demo().to_str().unwrap()],
    ));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo().join("manifest.json")).unwrap())
            .unwrap();
    let victim = manifest["files"][0]["path"].as_str().unwrap().to_string();
    let key = format!("k/cluster=demo/{victim}");
    overwrite(&moto, "audit", &key, "PAR1 not what was archived PAR1");

    let o = karmor(
        &ep,
        home.path(),
        &["observe", "pods", "-A", "--output", "json", "--bundle", url],
    );
    let text = ok(&o);
    let expected = format!("warning: skipped s3://audit/{key}: sha256 ");
    assert!(err(&o).contains(&expected), "{}", err(&o));
    assert!(
        err(&o).contains("does not match the manifest's"),
        "{}",
        err(&o)
    );
    assert!(
        text.contains("wordpress"),
        "the other files are analysed: {text}"
    );
    // The corrupt bytes were not kept in the cache.
    let sha = manifest["files"][0]["sha256"].as_str().unwrap();
    let cached = home.path().join(format!(
        "cache/kubectl-karmor/archive/objects/{sha}.parquet"
    ));
    assert!(!cached.exists());
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn a_missing_bucket_and_wrong_credentials_are_clear_errors() {
    let moto = Moto::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let ep = moto.endpoint();
    let o = karmor(
        &ep,
        home.path(),
        &[
            "archive",
            "--to",
            "s3://no-such-bucket/k",
            demo().to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains(&format!("bucket \"no-such-bucket\" does not exist at {ep}")),
        "{}",
        err(&o)
    );
    let o = karmor(
        &ep,
        home.path(),
        &["observe", "--bundle", "s3://no-such-bucket/k"],
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("bucket \"no-such-bucket\" does not exist"),
        "{}",
        err(&o)
    );

    // moto with authentication on: keys it does not know are refused.
    let strict = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let o = karmor(
        &strict.endpoint(),
        home.path(),
        &["archive", "--to", "s3://audit/k", demo().to_str().unwrap()],
    );
    assert!(!o.status.success());
    let e = err(&o);
    assert!(e.contains("credentials refused by"), "{e}");
    assert!(e.contains("InvalidAccessKeyId"), "{e}");
    assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
}

/// A TCP proxy that forwards to `target` until `limit` bytes went upstream, then cuts every
/// connection and refuses new ones: a network cut in the middle of an upload.
fn cutting_proxy(target: u16, limit: u64) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let cut2 = cut.clone();
    std::thread::spawn(move || {
        while !cut2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((client, _)) => {
                    client.set_nonblocking(false).unwrap();
                    let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let (sent, cut) = (sent.clone(), cut2.clone());
                    std::thread::spawn(move || pump(client, server, Some((sent, limit, cut))));
                    std::thread::spawn(move || pump(s2, c2, None));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        // Dropping the listener: new connections are refused.
    });
    (port, cut)
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<(Arc<AtomicU64>, u64, Arc<AtomicBool>)>,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((sent, limit, cut)) = &budget {
            if cut.load(Ordering::SeqCst)
                || sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > *limit
            {
                cut.store(true, Ordering::SeqCst);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A bundle with one segment of about 1 MiB (synthetic rows of one node and hour).
fn big_bundle(dir: &Path) -> u64 {
    use karmor_contract::bundle::{write_bundle, BundleOptions};
    let hour = 1_795_680_000_000_000_000i64; // 2026-11-26T08:00:00Z
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let events: Vec<_> = karmor_testdata::synthetic::events(30_000, 7)
        .enumerate()
        .map(|(i, mut e)| {
            e.node = "node-x".into();
            e.ts_first = hour + i as i64 * 1_000_000;
            e.ts_last = e.ts_first + 1;
            // Incompressible arguments, so that the file is large enough for parts.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            e.args = Some(format!("--token={rng:016x}{:016x}", rng.rotate_left(21)));
            e
        })
        .collect();
    let m = write_bundle(
        dir,
        events,
        &BundleOptions {
            producer: "test".into(),
            cluster: Some("big".into()),
            ..BundleOptions::default()
        },
    )
    .unwrap();
    assert_eq!(m.files.len(), 1);
    m.files[0].bytes
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn an_upload_cut_mid_way_resumes_with_the_parts_already_sent() {
    let moto = Moto::start(&[]);
    moto.create_bucket("audit");
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("big");
    let bytes = big_bundle(&bundle);
    let part = 64 * 1024u64;
    let parts = bytes.div_ceil(part);
    assert!(parts >= 6, "{bytes} bytes: {parts} parts");
    let part_arg = part.to_string();
    let args = [
        "archive",
        "--to",
        "s3://audit/k",
        bundle.to_str().unwrap(),
        "--part-size",
        &part_arg,
        "--output",
        "json",
    ];

    // Cut after about three and a half parts went up.
    let (proxy, cut) = cutting_proxy(moto.port, part * 7 / 2);
    let o = karmor(&format!("http://127.0.0.1:{proxy}"), home.path(), &args);
    assert!(cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(!o.status.success(), "{}", out(&o));
    let cut_report: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(cut_report["uploaded"], 0);
    assert_eq!(cut_report["failed"].as_array().map(Vec::len), Some(1));
    // moto may have received one more part than the plugin knows of: its answer was cut.
    let parts_before: usize = moto
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("partNumber="))
        .count();
    assert!(parts_before >= 2, "{:?}", moto.requests());

    // Again, without the cut: the parts already there are not sent again.
    let before = moto.requests().len();
    let again = json(&karmor(&moto.endpoint(), home.path(), &args));
    assert_eq!(again["uploaded"], 1);
    let resumed = again["resumed_parts"].as_u64().unwrap();
    assert!(resumed >= 2 && resumed as usize <= parts_before, "{again}");
    let reqs = since(&moto, before);
    let sent = reqs
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("partNumber="))
        .count() as u64;
    assert_eq!(sent + resumed, parts, "{reqs:?}");
    assert!(
        reqs.iter().all(|r| !r.contains("?uploads")),
        "no new multipart upload: {reqs:?}"
    );

    // And the object reads back whole (sha256 checked on the way).
    let url = "s3://audit/k";
    let l = ok(&karmor(
        &moto.endpoint(),
        home.path(),
        &[
            "observe",
            "pods",
            "-A",
            "--output",
            "json",
            "--bundle",
            bundle.to_str().unwrap(),
        ],
    ));
    let o = karmor(
        &moto.endpoint(),
        home.path(),
        &["observe", "pods", "-A", "--output", "json", "--bundle", url],
    );
    assert_eq!(rows_sorted(&ok(&o)), rows_sorted(&l));
    assert!(!err(&o).contains("warning: skipped"), "{}", err(&o));
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn a_pulls_merged_pods_file_replaces_the_archived_snapshot() {
    use karmor_contract::bundle::{add_pods, merge_pods_files, read_manifest, write_manifest};
    use karmor_contract::pods::read_pods;
    let moto = Moto::start(&[]);
    moto.create_bucket("audit");
    let home = tempfile::tempdir().unwrap();
    let bundle = home.path().join("bundle");
    copy_tree(&demo(), &bundle);
    let url = "s3://audit/k";
    let ep = moto.endpoint();
    let archive = |home: &Path| {
        json(&karmor(
            &ep,
            home,
            &[
                "archive",
                "--to",
                url,
                bundle.to_str().unwrap(),
                "--output",
                "json",
            ],
        ))
    };
    assert_eq!(archive(home.path())["pods_uploaded"], 2);

    // node-b's next snapshot: its second WordPress pod went at 10:00. It is merged with the
    // node's snapshot in the bundle, as a pull does (the merged file `replaces` it).
    let mut m = read_manifest(&bundle).unwrap();
    let old = m.pods.iter().find(|p| p.node == "node-b").unwrap().clone();
    let gone_at = karmor_contract::bundle::parse_ts("2026-11-20T10:00:00Z").unwrap();
    let rows: Vec<_> = read_pods(&bundle.join(&old.path))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            if r.pod == "wordpress-7c9f6d8b5d-m8q7z" {
                r.valid_to = Some(gone_at);
            }
            r
        })
        .collect();
    let mut scratch = karmor_contract::bundle::new_manifest("test");
    let next = add_pods(&bundle, &mut scratch, rows, "test", "node-b").unwrap();
    let merged = merge_pods_files(&bundle, &[old.clone(), next.clone()], "test", "node-b").unwrap();
    // The next snapshot holds every span the old one did: the merge is the next snapshot.
    assert_eq!(
        (merged.path.as_str(), merged.replaces.as_slice()),
        (next.path.as_str(), std::slice::from_ref(&old.sha256))
    );
    m.pods.retain(|p| p.path != old.path);
    m.pods.push(merged);
    write_manifest(&bundle, &mut m).unwrap();
    std::fs::remove_file(bundle.join(&old.path)).unwrap();

    let before = moto.requests().len();
    let second = archive(home.path());
    assert_eq!(second["uploaded"], 0, "{second}");
    assert_eq!(second["pods_uploaded"], 1, "{second}");
    assert_eq!(second["pods_replaced"], 1, "{second}");
    let reqs = since(&moto, before);
    assert!(reqs.iter().any(|r| r == "POST /audit?delete"), "{reqs:?}");
    let pods_keys = keys(&moto, "audit", "k/cluster=demo/pods/");
    let want: Vec<String> = m
        .pods
        .iter()
        .map(|p| format!("k/cluster=demo/{}", p.path))
        .collect();
    assert_eq!(pods_keys, want, "the merged snapshot's object is deleted");

    // Read back: the archive's drafts are the bundle's, from one snapshot per node.
    let args = [
        "recommend",
        "-n",
        "wordpress-mysql",
        "--network",
        "--until",
        "2026-11-20T12:00:00Z",
        "--bundle",
    ];
    let mut local = args.to_vec();
    local.push(bundle.to_str().unwrap());
    let mut remote = args.to_vec();
    remote.push(url);
    let l = ok(&karmor(&ep, home.path(), &local));
    assert_eq!(l, ok(&karmor(&ep, home.path(), &remote)));
    let views = home.path().join("cache/kubectl-karmor/archive/views");
    let view = std::fs::read_dir(&views).unwrap().next().unwrap().unwrap();
    let vm = read_manifest(&view.path()).unwrap();
    assert_eq!(vm.pods, m.pods);
}
