//! The historical tier (`--archive-to s3://BUCKET/PREFIX`, `--archive-after 24h`): a thread
//! that, every tick, uploads the data directory's files whose behaviour ended more than
//! `--archive-after` ago to the archive ([`karmor_archive::upload::archive_bundle`]: the
//! bundle layout under `cluster=<name>/`, content-named, resumable, the cluster's manifest
//! merged with a conditional write, so every node's collector can archive into it), then tells
//! retention what the archive holds ([`DataDir::mark_archived`]). Until then retention keeps
//! those files (the byte limit excepted: [`crate::datadir::ArchiveLedger`]).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use karmor_archive::upload::{archive_bundle, read_remote_manifest, ArchiveOptions, NoProgress};
use karmor_archive::{connect, ArchiveUrl};

use crate::compactor::lock;
use crate::datadir::DataDir;
use crate::metrics::Counters;

/// Where cut multipart uploads are journalled, under the data directory (hidden: not part of
/// the bundle).
pub const JOURNAL_DIR: &str = ".archive-uploads";

/// The archive tier's settings.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// `--archive-to`.
    pub url: ArchiveUrl,
    /// `--archive-after`: files whose last behaviour is older than this are archived.
    pub after: Duration,
    /// How often to look for files to archive.
    pub tick: Duration,
    /// The cluster the archive files them under.
    pub cluster: String,
}

/// Parses `--archive-after`: a number and a unit, `s`, `m`, `h` or `d` (`24h`, `2d`, `90m`).
pub fn parse_after(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 24h or 2d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        other => return Err(format!("{text:?}: unknown unit {other:?} (s, m, h, d)")),
    };
    Ok(Duration::from_secs(n * secs))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// One pass: archives what is due, then marks what the archive holds. Returns the files
/// uploaded. Errors are counted (`karmor_archive_errors_total`) and logged.
pub async fn archive_once(
    dir: &Mutex<DataDir>,
    root: &std::path::Path,
    cfg: &ArchiveConfig,
    counters: &Counters,
) -> usize {
    let remote = match connect::connect(&cfg.url) {
        Ok(r) => r,
        Err(e) => {
            Counters::add(&counters.archive_errors, 1);
            log::error!("archive {}: {e}", cfg.url);
            return 0;
        }
    };
    let mut opts = ArchiveOptions::new(
        root.join(JOURNAL_DIR),
        &format!("karmor-collector {}", env!("CARGO_PKG_VERSION")),
    );
    opts.cluster = Some(cfg.cluster.clone());
    opts.parallel = 2;
    opts.before_ns =
        Some(now_ns().saturating_sub(cfg.after.as_nanos().min(i64::MAX as u128) as i64));
    let uploaded = match archive_bundle(&remote, root, &opts, &NoProgress).await {
        Ok(report) => {
            Counters::add(&counters.archive_uploads, report.uploaded as u64);
            Counters::add(&counters.archive_errors, report.failed.len() as u64);
            for (path, e) in &report.failed {
                log::warn!("archive {}: {path}: {e}", cfg.url);
            }
            report.uploaded
        }
        Err(e) => {
            Counters::add(&counters.archive_errors, 1);
            log::error!("archive {}: {e}", cfg.url);
            return 0;
        }
    };
    match read_remote_manifest(&remote, &cfg.cluster).await {
        Ok(Some(m)) => {
            let held = m
                .files
                .into_iter()
                .flat_map(|f| std::iter::once(f.sha256).chain(f.replaces));
            lock(dir).mark_archived(held);
        }
        Ok(None) => {}
        Err(e) => {
            Counters::add(&counters.archive_errors, 1);
            log::error!("archive {}: {e}", cfg.url);
        }
    }
    uploaded
}

/// Starts the archive thread; it runs a pass at once, then every tick, until told to stop.
pub fn spawn(
    dir: Arc<Mutex<DataDir>>,
    root: PathBuf,
    cfg: ArchiveConfig,
    counters: Arc<Counters>,
) -> std::io::Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = std::thread::Builder::new()
        .name("karmor-archive".into())
        .spawn(move || loop {
            runtime.block_on(archive_once(&dir, &root, &cfg, &counters));
            counters.archive_passes.fetch_add(1, Ordering::Relaxed);
            match stop_rx.recv_timeout(cfg.tick) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        })?;
    Ok((stop_tx, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_after_takes_a_unit() {
        assert_eq!(parse_after("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_after("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_after("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_after("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_after("1w").is_err_and(|e| e.contains("unknown unit")));
        assert!(parse_after("h").is_err());
    }
}
