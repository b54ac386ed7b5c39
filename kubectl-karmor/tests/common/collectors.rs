//! Real collector services (the daemon's `service` module) on loopback, each serving one
//! node's share of the committed demo bundle (`testdata/demo`) as its data directory: its
//! segments and its pods table snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use karmor_collector::metrics::Counters;
use karmor_collector::service::{serve_listener, CollectorService, ServiceConfig};
use karmor_contract::bundle::{format_ts, read_manifest, write_manifest, ManifestFile};
use karmor_contract::compact::{compact, CompactOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The committed demo bundle.
pub fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("demo")
}

/// A collector serving one node; stops when dropped.
pub struct Collector {
    /// Its data directory.
    pub dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
    /// Segments it serves.
    pub segments: usize,
    /// Pods table files it serves (the node's snapshot: 1, or 0 for a collector that predates
    /// the pods table).
    pub pods: usize,
    _stop: oneshot::Sender<()>,
}

impl Collector {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Does to the data directory what the collector's day compaction does: every listed file
    /// becomes one `node=N/date=D/hour=__HIVE_DEFAULT_PARTITION__/day-<sha16>.parquet` (the
    /// date of the first file), listed with `replaces` in the manifest write that unlists the
    /// inputs, which are then deleted. Returns the new entry.
    pub fn compact_day(&self) -> ManifestFile {
        let root = self.dir.path();
        let mut manifest = read_manifest(root).expect("the collector's manifest");
        let inputs = std::mem::take(&mut manifest.files);
        let first = inputs.first().expect("files to compact");
        let date_dir = first.path.rsplitn(3, '/').nth(2).expect("node=N/date=D");
        let partition = format!("{date_dir}/hour=__HIVE_DEFAULT_PARTITION__");
        std::fs::create_dir_all(root.join(&partition)).expect("create the partition");
        let paths: Vec<PathBuf> = inputs.iter().map(|f| root.join(&f.path)).collect();
        let pending = root.join(&partition).join("day-pending.parquet");
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let c = compact(
            &paths,
            &pending,
            &CompactOptions::new("karmor-collector test", scratch.path()),
        )
        .expect("compaction");
        let rel = format!("{partition}/day-{}.parquet", &c.written.sha256[..16]);
        std::fs::rename(&pending, root.join(&rel)).expect("rename the day file");
        let mut replaces: Vec<String> = inputs
            .iter()
            .flat_map(|f| std::iter::once(f.sha256.clone()).chain(f.replaces.clone()))
            .collect();
        replaces.sort();
        replaces.dedup();
        let entry = ManifestFile {
            path: rel,
            node: first.node.clone(),
            sha256: c.written.sha256.clone(),
            bytes: c.written.bytes,
            rows: c.written.rows,
            first: format_ts(c.written.ts_first),
            last: format_ts(c.written.ts_last),
            events_seen: c.meta.events_seen,
            events_dropped: c.meta.events_dropped,
            replaces,
        };
        manifest.files.push(entry.clone());
        write_manifest(root, &mut manifest).expect("swap the manifest");
        for p in &paths {
            std::fs::remove_file(p).expect("delete an input");
        }
        entry
    }
}

/// Copies `node`'s segments and pods table of the demo bundle into a data directory (with a
/// manifest listing only them) and serves it on 127.0.0.1 with the collector's own service.
pub async fn start(node: &str) -> Collector {
    start_with(node, true).await
}

/// [`start`], with or without the node's pods table (without: as a collector that predates it,
/// or whose pod watch has not written a snapshot yet).
pub async fn start_with(node: &str, with_pods: bool) -> Collector {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let src = demo();
    let mut manifest = read_manifest(&src).expect("the demo manifest");
    manifest.files.retain(|f| f.node == node);
    manifest.pods.retain(|p| with_pods && p.node == node);
    if manifest.pods.is_empty() {
        manifest.pods_schema_version = None;
    }
    manifest.nodes = vec![node.to_string()];
    assert!(
        !manifest.files.is_empty(),
        "the demo bundle has no node {node}"
    );
    let paths = manifest.files.iter().map(|f| &f.path);
    for rel in paths.chain(manifest.pods.iter().map(|p| &p.path)) {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("create the partition");
        std::fs::copy(src.join(rel), &to).expect("copy a file");
    }
    write_manifest(dir.path(), &mut manifest).expect("write the manifest");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("an address").port();
    let service = CollectorService::new(
        ServiceConfig::new(dir.path(), node),
        Arc::new(Counters::default()),
        None,
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = serve_listener(listener, service, async {
            let _ = stopped.await;
        })
        .await;
    });
    Collector {
        segments: manifest.files.len(),
        pods: manifest.pods.len(),
        dir,
        port,
        _stop: stop,
    }
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("an address").port()
}
