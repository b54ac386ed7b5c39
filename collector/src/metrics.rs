//! Counters, and the Prometheus text endpoint that serves them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::kubearmor_source::KubeArmorStats;
use crate::probes::HookChoice;

/// The collector's counters (monotonic, process lifetime).
#[derive(Debug, Default)]
pub struct Counters {
    /// Raw events read from the ring buffer (or a synthetic feed).
    pub events_seen: AtomicU64,
    /// Events the kernel could not put in the ring buffer (it was full).
    pub events_dropped: AtomicU64,
    /// Ring buffer records that could not be decoded.
    pub decode_errors: AtomicU64,
    /// Events the kernel counted as repeats of one already sent (same process image, cgroup,
    /// file or name, access, result) instead of sending them; part of `events_seen`.
    pub kernel_repeats: AtomicU64,
    /// Rows written to segments.
    pub rows_written: AtomicU64,
    /// Segments written.
    pub segments_written: AtomicU64,
    /// Bytes of segments written.
    pub bytes_written: AtomicU64,
    /// Segments removed by retention.
    pub segments_removed: AtomicU64,
    /// Failed segment writes (the window's rows are kept for the next try).
    pub write_errors: AtomicU64,
    /// Compactions done (hour and day files written).
    pub compactions: AtomicU64,
    /// Files replaced by compactions (and deleted).
    pub files_compacted: AtomicU64,
    /// Compactions that failed (their inputs stay listed; retried later).
    pub compaction_errors: AtomicU64,
    /// Bytes of segments currently on disk.
    pub bytes_on_disk: AtomicU64,
    /// Probes attached (set once the sensors run; 0 before, and for the synthetic source).
    pub probes_attached: AtomicU64,
    /// Files uploaded to the archive tier (`--archive-to`).
    pub archive_uploads: AtomicU64,
    /// Archive passes, and files or passes that failed (retried on the next pass).
    pub archive_passes: AtomicU64,
    /// Archive uploads or passes that failed.
    pub archive_errors: AtomicU64,
    /// Files the byte limit forced out before the archive held them (a loss).
    pub archive_lost_files: AtomicU64,
    /// Their bytes.
    pub archive_lost_bytes: AtomicU64,
    /// True while the compactor merges (not a counter): the sensor windows flush at half
    /// their memory budget meanwhile ([`Counters::window_budget`]), so that the collector and
    /// a compaction together stay within the memory one of them alone may take.
    pub compacting: AtomicBool,
    /// The KubeArmor source's counters, when that source runs (set once at start).
    pub kubearmor: OnceLock<Arc<KubeArmorStats>>,
    /// The eBPF source's hooks (`category:event`) and whether each attached (set once at
    /// start).
    pub hooks: OnceLock<Vec<(String, bool)>>,
    /// Per sensor, the hooks attached and why (set once at start; Health reports it too).
    pub hook_choices: OnceLock<Vec<HookChoice>>,
}

impl Counters {
    /// Adds to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The memory a sensor window may hold before it is flushed: `window_bytes`, or half of it
    /// while a compaction runs.
    pub fn window_budget(&self, window_bytes: usize) -> usize {
        if self.compacting.load(Ordering::Relaxed) {
            window_bytes / 2
        } else {
            window_bytes
        }
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &str, &AtomicU64); 19] = [
            (
                "karmor_probes_attached",
                "gauge",
                "eBPF programs attached.",
                &self.probes_attached,
            ),
            (
                "karmor_events_seen_total",
                "counter",
                "Raw events read from the sensors.",
                &self.events_seen,
            ),
            (
                "karmor_events_dropped_total",
                "counter",
                "Events lost because the ring buffer was full.",
                &self.events_dropped,
            ),
            (
                "karmor_decode_errors_total",
                "counter",
                "Ring buffer records that could not be decoded.",
                &self.decode_errors,
            ),
            (
                "karmor_kernel_repeats_total",
                "counter",
                "Events the kernel counted as repeats of one already sent instead of sending them.",
                &self.kernel_repeats,
            ),
            (
                "karmor_rows_written_total",
                "counter",
                "Rows written to segments.",
                &self.rows_written,
            ),
            (
                "karmor_segments_written_total",
                "counter",
                "Segments written.",
                &self.segments_written,
            ),
            (
                "karmor_segment_bytes_written_total",
                "counter",
                "Bytes of segments written.",
                &self.bytes_written,
            ),
            (
                "karmor_segments_removed_total",
                "counter",
                "Segments removed by retention.",
                &self.segments_removed,
            ),
            (
                "karmor_write_errors_total",
                "counter",
                "Failed segment writes.",
                &self.write_errors,
            ),
            (
                "karmor_compactions_total",
                "counter",
                "Compactions done (hour and day files written).",
                &self.compactions,
            ),
            (
                "karmor_files_compacted_total",
                "counter",
                "Files replaced by compactions.",
                &self.files_compacted,
            ),
            (
                "karmor_compaction_errors_total",
                "counter",
                "Compactions that failed (inputs kept, retried later).",
                &self.compaction_errors,
            ),
            (
                "karmor_data_bytes",
                "gauge",
                "Bytes of segments on disk.",
                &self.bytes_on_disk,
            ),
            (
                "karmor_archive_uploads_total",
                "counter",
                "Files uploaded to the archive tier.",
                &self.archive_uploads,
            ),
            (
                "karmor_archive_passes_total",
                "counter",
                "Passes of the archive tier over the data directory.",
                &self.archive_passes,
            ),
            (
                "karmor_archive_errors_total",
                "counter",
                "Archive uploads or passes that failed (retried on the next pass).",
                &self.archive_errors,
            ),
            (
                "karmor_archive_lost_files_total",
                "counter",
                "Files the byte limit forced out before the archive held them.",
                &self.archive_lost_files,
            ),
            (
                "karmor_archive_lost_bytes_total",
                "counter",
                "Bytes of files the byte limit forced out before the archive held them.",
                &self.archive_lost_bytes,
            ),
        ];
        for (name, kind, help, v) in rows {
            metric(&mut out, name, kind, help, v.load(Ordering::Relaxed));
        }
        if let Some(hooks) = self.hooks.get() {
            let _ = writeln!(
                out,
                "# HELP karmor_probe_hook Whether the eBPF probe on this kernel hook attached (1) or failed (0).\n# TYPE karmor_probe_hook gauge"
            );
            for (hook, up) in hooks {
                let _ = writeln!(
                    out,
                    "karmor_probe_hook{{hook=\"{hook}\"}} {}",
                    u8::from(*up)
                );
            }
        }
        if let Some(choices) = self.hook_choices.get() {
            let _ = writeln!(
                out,
                "# HELP karmor_probe_sensor_hooks Hooks attached per sensor (0: off), and why those.\n# TYPE karmor_probe_sensor_hooks gauge"
            );
            for c in choices {
                let _ = writeln!(
                    out,
                    "karmor_probe_sensor_hooks{{sensor=\"{}\",why=\"{}\"}} {}",
                    c.sensor,
                    label_value(&c.why),
                    c.hooks.len()
                );
            }
        }
        if let Some(k) = self.kubearmor.get() {
            let rows: [(&str, &str, &AtomicU64); 5] = [
                (
                    "karmor_kubearmor_messages_total",
                    "KubeArmor messages received (redeliveries excluded).",
                    &k.received,
                ),
                (
                    "karmor_kubearmor_unmapped_total",
                    "KubeArmor messages that did not map onto a row.",
                    &k.unmapped,
                ),
                (
                    "karmor_kubearmor_duplicates_total",
                    "KubeArmor messages dropped as redeliveries.",
                    &k.duplicates,
                ),
                (
                    "karmor_kubearmor_connects_total",
                    "Connections to KubeArmor's LogService.",
                    &k.connects,
                ),
                (
                    "karmor_kubearmor_failures_total",
                    "Connections to KubeArmor's LogService that failed or broke.",
                    &k.failures,
                ),
            ];
            let up = u64::from(k.connected.load(Ordering::Relaxed));
            metric(
                &mut out,
                "karmor_kubearmor_connected",
                "gauge",
                "Whether the KubeArmor streams are open.",
                up,
            );
            for (name, help, v) in rows {
                metric(&mut out, name, "counter", help, v.load(Ordering::Relaxed));
            }
        }
        out
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` (and `/healthz`) on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, counters: Arc<Counters>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut sock, _) = listener.accept().await?;
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = match sock.read(&mut buf).await {
                Ok(n) => n,
                Err(_) => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/metrics" => ("200 OK", counters.render()),
                "/healthz" => ("200 OK", "ok\n".to_string()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_windows_take_half_their_budget_while_a_compaction_runs() {
        let c = Counters::default();
        assert_eq!(c.window_budget(12 << 20), 12 << 20);
        c.compacting.store(true, Ordering::Relaxed);
        assert_eq!(c.window_budget(12 << 20), 6 << 20);
        c.compacting.store(false, Ordering::Relaxed);
        assert_eq!(c.window_budget(12 << 20), 12 << 20);
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_counters() {
        let counters = Arc::new(Counters::default());
        Counters::add(&counters.events_seen, 42);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let task = tokio::spawn(serve(addr, counters.clone()));
        let mut body = String::new();
        for _ in 0..50 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                s.read_to_string(&mut body).await.unwrap();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        task.abort();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("karmor_events_seen_total 42"), "{body}");
        assert!(body.contains("# TYPE karmor_data_bytes gauge"));
        assert!(
            !body.contains("karmor_kubearmor"),
            "no KubeArmor source: {body}"
        );
        assert!(
            !body.contains("karmor_probe_hook"),
            "no eBPF source: {body}"
        );
    }

    #[test]
    fn the_probes_hooks_are_rendered_with_whether_they_attached() {
        let counters = Counters::default();
        let _ = counters.hooks.set(vec![
            ("raw_syscalls:sys_enter".into(), true),
            ("capability:cap_capable".into(), false),
        ]);
        let body = counters.render();
        assert!(body.contains("# TYPE karmor_probe_hook gauge"), "{body}");
        assert!(
            body.contains("karmor_probe_hook{hook=\"raw_syscalls:sys_enter\"} 1"),
            "{body}"
        );
        assert!(
            body.contains("karmor_probe_hook{hook=\"capability:cap_capable\"} 0"),
            "{body}"
        );
    }

    #[test]
    fn each_sensors_hook_choice_is_rendered_with_its_reason() {
        let counters = Counters::default();
        let _ = counters.hook_choices.set(vec![
            HookChoice {
                sensor: "files",
                hooks: vec![
                    "syscalls:sys_exit_openat".into(),
                    "syscalls:sys_exit_open".into(),
                ],
                failed: Vec::new(),
                why: "system call \"exit\" tracepoints".into(),
            },
            HookChoice {
                sensor: "syscalls",
                hooks: Vec::new(),
                failed: Vec::new(),
                why: "off".into(),
            },
        ]);
        let body = counters.render();
        assert!(
            body.contains("# TYPE karmor_probe_sensor_hooks gauge"),
            "{body}"
        );
        assert!(
            body.contains(
                "karmor_probe_sensor_hooks{sensor=\"files\",why=\"system call \\\"exit\\\" tracepoints\"} 2"
            ),
            "{body}"
        );
        assert!(
            body.contains("karmor_probe_sensor_hooks{sensor=\"syscalls\",why=\"off\"} 0"),
            "{body}"
        );
    }

    #[test]
    fn the_kubearmor_source_counters_are_rendered_when_it_runs() {
        let counters = Counters::default();
        let stats = Arc::new(KubeArmorStats::default());
        Counters::add(&stats.received, 7);
        Counters::add(&stats.unmapped, 2);
        Counters::add(&stats.duplicates, 3);
        stats
            .connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(counters.kubearmor.set(stats).is_ok());
        let text = counters.render();
        for line in [
            "karmor_kubearmor_connected 1",
            "karmor_kubearmor_messages_total 7",
            "karmor_kubearmor_unmapped_total 2",
            "karmor_kubearmor_duplicates_total 3",
            "karmor_kubearmor_failures_total 0",
            "# TYPE karmor_kubearmor_connected gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
