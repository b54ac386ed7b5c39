//! Progress on standard error (hidden when it is not a terminal): one bar per node during a
//! pull, and a bar for a merge that takes more than a second.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use karmor_analyzer::store::{MergeProgress, MergeReport};
use karmor_analyzer::{AnalyzerError, Store};
use karmor_proto::{PullProgress, SegmentStatus};
use kubectl_karmor::pull::{self, NodeOutcome, Progress, PullError, PullRequest, PullSummary};

/// One progress bar per node.
struct Bar {
    bar: ProgressBar,
    /// Bytes of the segments finished so far.
    finished: u64,
    /// Bytes held of each segment in flight.
    in_flight: HashMap<String, u64>,
}

impl Bar {
    fn position(&self) -> u64 {
        self.finished + self.in_flight.values().sum::<u64>()
    }
}

impl Progress for Bar {
    fn connecting(&mut self) {
        self.bar.set_message("connecting");
    }

    fn event(&mut self, event: &PullProgress) {
        match event {
            PullProgress::Listed {
                segments,
                bytes,
                already_present,
            } => {
                self.bar.set_length(*bytes);
                self.bar.set_message(format!(
                    "{segments} segments to fetch, {already_present} already here"
                ));
            }
            PullProgress::Bytes { path, done, .. } => {
                self.in_flight.insert(path.clone(), *done);
                self.bar.set_position(self.position());
            }
            PullProgress::Segment(outcome) => {
                if self.in_flight.remove(&outcome.path).is_some()
                    || !matches!(
                        outcome.status,
                        SegmentStatus::AlreadyPresent | SegmentStatus::Superseded { .. }
                    )
                {
                    self.finished += outcome.bytes;
                }
                self.bar.set_position(self.position());
            }
        }
    }

    fn finish(&mut self, outcome: &NodeOutcome) {
        let message = match &outcome.error {
            Some(e) if outcome.new == 0 && outcome.skipped == 0 => format!("failed: {e}"),
            _ if outcome.replaced > 0 => format!(
                "{} new, {} already here, {} failed, {} replaced by {} compacted",
                outcome.new, outcome.skipped, outcome.failed, outcome.replaced, outcome.replaced_by
            ),
            _ => format!(
                "{} new, {} already here, {} failed",
                outcome.new, outcome.skipped, outcome.failed
            ),
        };
        self.bar.finish_with_message(message);
    }
}

/// Runs a pull ([`pull::execute`]) with one bar per node and the merge's bar.
pub fn pull(request: &PullRequest) -> Result<PullSummary, PullError> {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:<10} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut merge = MergeBar::new();
    pull::execute(
        request,
        |source| {
            let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
            bar.set_prefix(source.node().map_or_else(|| source.label(), str::to_string));
            Bar {
                bar,
                finished: 0,
                in_flight: HashMap::new(),
            }
        },
        &mut |p| merge.update(p),
    )
}

/// A merge's bar, drawn once the merge has taken a second: checking the segments, then
/// inserting their rows. Cleared when dropped.
pub struct MergeBar {
    started: Instant,
    bar: Option<ProgressBar>,
}

impl MergeBar {
    /// A bar not drawn yet.
    pub fn new() -> Self {
        MergeBar {
            started: Instant::now(),
            bar: None,
        }
    }

    /// Shows where the merge is.
    pub fn update(&mut self, p: &MergeProgress) {
        if self.bar.is_none() && self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let b = self.bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
        });
        if p.digesting {
            b.set_message("digesting items");
            b.set_length(1);
            b.set_position(0);
        } else if p.rows_total == 0 {
            b.set_message("checking files");
            b.set_length(p.segments as u64);
            b.set_position(p.checked as u64);
        } else {
            b.set_message("compacting rows");
            b.set_length(p.rows_total);
            b.set_position(p.rows_done);
        }
    }
}

impl Drop for MergeBar {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Merges a bundle into a store with a [`MergeBar`].
pub fn merge(store: &Store, bundle: &Path) -> Result<MergeReport, AnalyzerError> {
    let mut bar = MergeBar::new();
    store.merge_bundle_with_progress(bundle, &mut |p| bar.update(p))
}

/// A byte bar for archive uploads and downloads (stderr; indicatif hides it off a terminal).
pub struct ArchiveBar {
    bar: ProgressBar,
}

impl ArchiveBar {
    /// A bar with no length yet.
    pub fn new() -> Self {
        let style = ProgressStyle::with_template(
            "{msg:>18} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar =
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()).with_style(style);
        ArchiveBar { bar }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl karmor_archive::upload::ArchiveProgress for ArchiveBar {
    fn planned(&self, files: usize, bytes: u64) {
        self.bar.set_message(format!("uploading {files} files"));
        self.bar.set_length(bytes);
    }
    fn sent(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

impl karmor_archive::fetch::FetchProgress for ArchiveBar {
    fn planned(&self, files: usize, bytes: u64) {
        self.bar.set_message(format!("fetching {files} files"));
        self.bar.set_length(bytes);
    }
    fn fetched(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}
