//! The collector's historical tier against a real S3-compatible server on loopback (moto in
//! server mode): aged files are archived, and retention deletes them only afterwards.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use karmor_archive::upload::read_remote_manifest;
use karmor_archive::{connect, ArchiveUrl};
use karmor_collector::archiver::{archive_once, ArchiveConfig};
use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::metrics::Counters;
use karmor_contract::schema::{schema_version, Event, Op};
use karmor_contract::segment::SegmentMeta;

struct Moto(Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (pip install 'moto[server]')");
    let m = Moto(child, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start: pip install 'moto[server]'"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], method='PUT'))",
            &format!("http://127.0.0.1:{port}/tier"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "create the bucket");
    m
}

fn rows(t: i64, tag: &str) -> Vec<Event> {
    (0..50)
        .map(|i| Event {
            ts_first: t + i,
            ts_last: t + i,
            count: 1,
            node: "n1".into(),
            op: Op::File,
            path: Some(format!("/data/{tag}-{i}")),
            ..Event::default()
        })
        .collect()
}

fn meta() -> SegmentMeta {
    SegmentMeta {
        schema_version: schema_version(),
        node: "n1".into(),
        windows: 1,
        ..SegmentMeta::default()
    }
}

#[test]
#[ignore = "needs moto's S3 server: python3 -m pip install 'moto[server]'"]
fn aged_files_are_archived_before_retention_deletes_them() {
    let s3 = moto();
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.1));
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let hour = 3_600_000_000_000i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let data = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_bytes: 0,
        max_age: Some(Duration::from_secs(6 * 3600)),
    };
    let mut d = DataDir::open_with_archive(data.path(), "test", retention, true).unwrap();
    let old = d.write(rows(now - 48 * hour, "old"), &meta(), now).unwrap();
    let older = d
        .write(rows(now - 30 * hour, "older"), &meta(), now)
        .unwrap();
    assert!(
        old.removed.is_empty() && older.removed.is_empty(),
        "not archived: kept"
    );
    let recent = d
        .write(rows(now - 2 * hour, "recent"), &meta(), now)
        .unwrap();
    assert_eq!(d.manifest().files.len(), 3);
    // The pod watch's snapshot of the node's pods table goes with the aged files.
    d.write_pods("n1", vec![pod("web-1", now - 48 * hour, None)])
        .unwrap();
    let snapshot = d.manifest().pods[0].clone();
    let dir = Mutex::new(d);

    let cfg = ArchiveConfig {
        url: ArchiveUrl::parse("s3://tier/karmor").unwrap(),
        after: Duration::from_secs(24 * 3600),
        tick: Duration::from_secs(60),
        cluster: "edge".into(),
    };
    let counters = Counters::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sent = rt.block_on(archive_once(&dir, data.path(), &cfg, &counters));
    assert_eq!(sent, 2, "the two files older than a day");
    assert_eq!(counters.archive_uploads.load(Ordering::Relaxed), 2);
    assert_eq!(counters.archive_errors.load(Ordering::Relaxed), 0);
    let remote = connect::connect(&cfg.url).unwrap();
    let m = rt
        .block_on(read_remote_manifest(&remote, "edge"))
        .unwrap()
        .expect("the cluster's manifest");
    let mut archived: Vec<&str> = m.files.iter().map(|f| f.sha256.as_str()).collect();
    archived.sort_unstable();
    let mut expected = vec![
        old.written[0].sha256.as_str(),
        older.written[0].sha256.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(archived, expected);
    assert_eq!(m.pods, vec![snapshot.clone()]);
    assert_eq!(
        m.pods_schema_version.as_deref(),
        Some(karmor_contract::pods::pods_schema_version().as_str())
    );

    // Archived now: age retention removes them on the next write; the recent one stays.
    let mut d = dir.into_inner().unwrap();
    let out = d.write(rows(now - hour, "new"), &meta(), now).unwrap();
    let mut removed = out.removed.clone();
    removed.sort();
    let mut want = vec![old.written[0].path.clone(), older.written[0].path.clone()];
    want.sort();
    assert_eq!(removed, want);
    assert!(d
        .manifest()
        .files
        .iter()
        .any(|f| f.path == recent.written[0].path));
    let ledger = d.archive_ledger().cloned().unwrap_or_default();
    assert_eq!((ledger.lost_files, ledger.lost_bytes), (0, 0));

    // A second pass sends no segment; the node's next snapshot joins the archived one (the
    // archive keeps the history, which readers merge: a collector's snapshot replaces nothing).
    d.write_pods(
        "n1",
        vec![
            pod("web-1", now - 48 * hour, Some(now - hour)),
            pod("web-2", now - hour, None),
        ],
    )
    .unwrap();
    let next = d.manifest().pods[0].clone();
    assert_ne!(next.sha256, snapshot.sha256);
    let dir = Mutex::new(d);
    assert_eq!(
        rt.block_on(archive_once(&dir, data.path(), &cfg, &counters)),
        0
    );
    assert_eq!(counters.archive_errors.load(Ordering::Relaxed), 0);
    let m = rt
        .block_on(read_remote_manifest(&remote, "edge"))
        .unwrap()
        .expect("the cluster's manifest");
    let mut held: Vec<&str> = m.pods.iter().map(|p| p.sha256.as_str()).collect();
    held.sort_unstable();
    let mut want = vec![snapshot.sha256.as_str(), next.sha256.as_str()];
    want.sort_unstable();
    assert_eq!(held, want, "{:?}", m.pods);
    assert_eq!(m.files.len(), 2);
}

fn pod(name: &str, from: i64, to: Option<i64>) -> karmor_contract::pods::PodAddress {
    karmor_contract::pods::PodAddress {
        node: "n1".into(),
        namespace: "shop".into(),
        pod: name.into(),
        ip: "10.244.0.5".into(),
        valid_from: from,
        valid_to: to,
        ..Default::default()
    }
}
