//! One merge of a bundle into the catalog: check every file, skip what the store already
//! holds, honour the manifest's `replaces`, compact small files, list the rest.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use karmor_contract::bundle::{open_bundle, parse_ts, SegmentRef};
use karmor_contract::segment::{read_footer, sha256_file, SegmentFooter};

use super::catalog::{self, Change, FileRecord, Origin, ReplacedRecord};
use super::compaction;
use super::Store;
use crate::bundle_source::BundleSource;
use crate::error::Result;

/// What one [`Store::merge_bundle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// The bundle root.
    pub bundle: PathBuf,
    /// Files merged now (listed as they are, or through a compaction).
    pub merged: Vec<PathBuf>,
    /// Rows they hold.
    pub rows: u64,
    /// Files whose rows the store already held (same sha256, or replaced by a file it
    /// holds), skipped.
    pub already_present: Vec<PathBuf>,
    /// Files that could not be merged, with the reason. The rest of the bundle still landed.
    pub problems: Vec<(PathBuf, String)>,
    /// Compacted files written (or found again in the compaction cache) for small files.
    pub compactions: usize,
    /// Files the store listed before and dropped now because a merged file holds their rows
    /// (a collector's hour or day file replacing minute segments).
    pub replaced: usize,
    /// Files of the pods table merged now (design §3), and the rows they hold.
    pub pods_merged: Vec<PathBuf>,
    /// Rows of the pods table files merged now.
    pub pods_rows: u64,
    /// Files of the pods table the store already held, skipped.
    pub pods_already_present: Vec<PathBuf>,
    /// Files of the pods table the store listed that a new file holds (its manifest entry's
    /// `replaces`: a pull merged them into it), unlisted now.
    pub pods_replaced: usize,
}

/// How far a merge has got, reported to [`Store::merge_bundle_with_progress`]'s callback after
/// each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeProgress {
    /// Files checked (checksum, footer, schema) so far.
    pub checked: usize,
    /// Files in the bundle.
    pub segments: usize,
    /// Rows compacted or listed so far.
    pub rows_done: u64,
    /// Rows to compact or list (known once every file is checked; 0 before).
    pub rows_total: u64,
    /// A store file is making the item digests of the files merged (after the rows).
    pub digesting: bool,
}

/// A file of the bundle that passed its checks.
pub(super) struct Checked {
    pub seg: SegmentRef,
    pub sha: String,
    pub footer: SegmentFooter,
}

impl Checked {
    /// The file's time range, from its manifest entry.
    pub(super) fn span(&self) -> Option<(i64, i64)> {
        let f = self.seg.listed.as_ref()?;
        Some((parse_ts(&f.first)?, parse_ts(&f.last)?))
    }
}

/// Merges the bundle `source` into `store`.
pub(super) fn merge(
    store: &Store,
    source: &BundleSource,
    progress: &mut dyn FnMut(&MergeProgress),
) -> Result<MergeReport> {
    let conn = store.conn();
    let bundle = open_bundle(source.root())?;
    let named = source.named().display().to_string();
    let mut report = MergeReport {
        bundle: source.named().to_path_buf(),
        ..MergeReport::default()
    };
    for (entry, why) in source.skipped() {
        report.problems.push((
            source.named().to_path_buf(),
            format!("entry {entry}: {why}"),
        ));
    }
    let mut state = MergeProgress {
        segments: bundle.segments.len(),
        ..MergeProgress::default()
    };
    let checks = check_segments(&bundle.segments, &mut |checked| {
        state.checked = checked;
        progress(&state);
    });
    let mut good = Vec::new();
    for (seg, check) in bundle.segments.into_iter().zip(checks) {
        match check {
            Err(problem) => report.problems.push((seg.path, problem)),
            Ok((sha, footer)) => good.push(Checked { seg, sha, footer }),
        }
    }

    // What the store holds already, and what the bundle's own good files hold.
    let known = catalog::known(conn)?;
    let held_here: HashSet<String> = holders(&good).into_keys().map(str::to_string).collect();
    let mut new = Vec::new();
    let mut seen_now = HashSet::new();
    for c in good {
        if known.contains(&c.sha) || held_here.contains(&c.sha) || !seen_now.insert(c.sha.clone()) {
            report.already_present.push(c.seg.path);
        } else {
            new.push(c);
        }
    }

    let mut change = Change::default();
    let mut relist = Vec::new();
    replace_held(store, &new, &named, &mut change, &mut relist, &mut report)?;
    new.extend(relist);

    state.rows_total = new.iter().map(|c| c.footer.rows).sum();
    progress(&state);

    // Small files are compacted per partition; the others are listed as they are.
    let (groups, alone) = compaction::plan(new);
    let outcomes = compaction::run(store, &named, groups, &mut |rows| {
        state.rows_done += rows;
        progress(&state);
    });
    let mut listed_alone = Vec::new();
    for outcome in outcomes {
        report.problems.extend(outcome.problems);
        if let Some(done) = outcome.compacted {
            report.compactions += 1;
            for input in &done.inputs {
                report.merged.push(input.seg.path.clone());
                report.rows += input.footer.rows;
                change.replace.push(ReplacedRecord {
                    sha256: input.sha.clone(),
                    by: done.record.sha256.clone(),
                    path: input.seg.path.display().to_string(),
                    bundle: named.clone(),
                });
            }
            change.add.push(done.record);
        }
        listed_alone.extend(outcome.left);
    }
    for c in alone.into_iter().chain(listed_alone) {
        if c.seg.listed.is_none() {
            // No checksum to vouch for the pages: read them once, so that damage is
            // reported now, by path, instead of failing every query later.
            if let Err(problem) = compaction::read_all_pages(&c.seg.path) {
                report.problems.push((c.seg.path.clone(), problem));
                continue;
            }
        }
        let path = match store.own(&c.seg.path, &c.sha) {
            Ok(p) => p,
            Err(problem) => {
                report.problems.push((c.seg.path.clone(), problem));
                continue;
            }
        };
        state.rows_done += c.footer.rows;
        progress(&state);
        report.merged.push(c.seg.path.clone());
        report.rows += c.footer.rows;
        change.add.push(record(&c, path, &named, Origin::Bundle));
    }

    if !report.merged.is_empty() || bundle.manifest.is_some() {
        let dropped = bundle
            .manifest
            .as_ref()
            .map_or(0, |m| m.dropped_outside_segments());
        let producer = bundle.manifest.as_ref().map(|m| m.producer.clone());
        change.bundle = Some((named.clone(), producer, dropped));
    }
    let listed = catalog::listed_by_sha(conn)?;
    let dropped_files: Vec<String> = change
        .unlist
        .iter()
        .chain(change.replace.iter().map(|r| &r.sha256))
        .filter_map(|sha| listed.get(sha))
        .map(|(path, _)| path.clone())
        .collect();
    catalog::apply(conn, &change)?;
    merge_pods(
        store,
        bundle.manifest.as_ref(),
        &bundle.pods,
        &named,
        &mut report,
    )?;
    store.refresh_view()?;
    for path in dropped_files {
        store.delete_owned(Path::new(&path));
    }

    // Paths inside an unpacked archive are shown inside the archive.
    for path in report
        .merged
        .iter_mut()
        .chain(report.already_present.iter_mut())
        .chain(report.pods_merged.iter_mut())
        .chain(report.pods_already_present.iter_mut())
    {
        *path = source.shown(path);
    }
    for (path, why) in &mut report.problems {
        *why = source.shown_text(why);
        *path = source.shown(path);
    }
    Ok(report)
}

/// Lists the bundle's pods table files that pass their checks (sha256 and size against the
/// manifest, footer, pods schema version) and that the store does not hold yet; the others
/// are reported by path. The pods table is kept as a history: files listed before stay
/// listed (the `pods` view merges them, a newer snapshot's end closing what an older one held
/// open), unless a new file's manifest entry `replaces` them (a pull merged them into it),
/// in which case they are unlisted (and deleted when the store owns a copy).
fn merge_pods(
    store: &Store,
    manifest: Option<&karmor_contract::bundle::Manifest>,
    pods: &[SegmentRef],
    named: &str,
    report: &mut MergeReport,
) -> Result<()> {
    let conn = store.conn();
    if pods.is_empty() {
        return Ok(());
    }
    let known = catalog::known_pod_files(conn)?;
    let listed: HashMap<String, String> = catalog::listed_pod_files(conn)?.into_iter().collect();
    let mut records = Vec::new();
    let mut held: Vec<(String, String)> = Vec::new();
    for seg in pods {
        let checked = karmor_contract::bundle::check_pods_file(manifest, seg).and_then(|rows| {
            sha256_file(&seg.path)
                .map(|sha| (rows, sha))
                .map_err(|e| e.to_string())
        });
        let (rows, sha) = match checked {
            Ok(x) => x,
            Err(problem) => {
                report.problems.push((seg.path.clone(), problem));
                continue;
            }
        };
        if known.contains(&sha)
            || records
                .iter()
                .any(|r: &catalog::PodFileRecord| r.sha256 == sha)
        {
            report.pods_already_present.push(seg.path.clone());
            continue;
        }
        let path = match store.own(&seg.path, &sha) {
            Ok(p) => p,
            Err(problem) => {
                report.problems.push((seg.path.clone(), problem));
                continue;
            }
        };
        let replaces = manifest
            .and_then(|m| m.pods.iter().find(|p| p.path == seg.rel))
            .map(|p| p.replaces.clone())
            .unwrap_or_default();
        held.extend(replaces.into_iter().map(|r| (r, sha.clone())));
        let node = seg
            .rel
            .split('/')
            .find_map(|c| c.strip_prefix("node="))
            .unwrap_or("unknown")
            .to_string();
        report.pods_merged.push(seg.path.clone());
        report.pods_rows += rows;
        records.push(catalog::PodFileRecord {
            sha256: sha,
            path: path.display().to_string(),
            bundle: named.to_string(),
            rel: seg.rel.clone(),
            node,
            rows,
        });
    }
    catalog::add_pod_files(conn, &records)?;
    for (sha, by) in held {
        catalog::add_pod_replaced(conn, &sha, &by)?;
        if let Some(path) = listed.get(&sha) {
            catalog::remove_pod_file(conn, &sha)?;
            store.delete_owned(Path::new(path));
            report.pods_replaced += 1;
        }
    }
    Ok(())
}

/// Handles the `replaces` lists of the new files: listed files they hold are unlisted; files
/// the store never saw are recorded, so that they add nothing when they come later; a
/// compaction of this store whose inputs a new file holds is undone, and its inputs that the
/// new file does not hold are listed again (`relist`) from where they were read.
fn replace_held(
    store: &Store,
    new: &[Checked],
    named: &str,
    change: &mut Change,
    relist: &mut Vec<Checked>,
    report: &mut MergeReport,
) -> Result<()> {
    let conn = store.conn();
    let held = holders(new);
    if held.is_empty() {
        return Ok(());
    }
    let mut undone = HashSet::new();
    let listed = catalog::listed_by_sha(conn)?;
    for (&sha, &by) in &held {
        match listed.get(sha).cloned() {
            Some((path, Origin::Bundle)) => {
                report.replaced += 1;
                change.replace.push(ReplacedRecord {
                    sha256: sha.to_string(),
                    by: by.to_string(),
                    path,
                    bundle: named.to_string(),
                });
            }
            Some((_, Origin::Compaction)) => {
                undone.insert(sha.to_string());
            }
            None => change.replace.push(ReplacedRecord {
                sha256: sha.to_string(),
                by: by.to_string(),
                path: String::new(),
                bundle: named.to_string(),
            }),
        }
    }
    // Compactions of this store whose inputs a new file holds, in whole or in part.
    for compaction_sha in catalog::compactions(conn)? {
        let inputs = catalog::inputs_of(conn, &compaction_sha)?;
        if inputs
            .iter()
            .any(|(input, _)| held.contains_key(input.as_str()))
        {
            undone.insert(compaction_sha);
        }
    }
    for compaction_sha in undone {
        report.replaced += 1;
        change.unlist.push(compaction_sha.clone());
        for (input, path) in catalog::inputs_of(conn, &compaction_sha)? {
            if held.contains_key(input.as_str()) {
                continue;
            }
            // Not held by the new file: list it again from where it was read.
            match reread(Path::new(&path), &input) {
                Ok(checked) => relist.push(checked),
                Err(why) => report.problems.push((
                    PathBuf::from(&path),
                    format!(
                        "its rows were in a compaction that a newer file partly replaces, and it cannot be read again ({why}): they are missing from the store"
                    ),
                )),
            }
        }
    }
    Ok(())
}

/// Files named by the manifest `replaces` of `files` → the sha256 of the file holding them.
fn holders(files: &[Checked]) -> HashMap<&str, &str> {
    let mut held = HashMap::new();
    for c in files {
        for r in c.seg.listed.iter().flat_map(|f| &f.replaces) {
            held.insert(r.as_str(), c.sha.as_str());
        }
    }
    held
}

/// A file read again for listing: it must still hold the same bytes.
fn reread(path: &Path, sha: &str) -> std::result::Result<Checked, String> {
    let now = sha256_file(path).map_err(|e| e.to_string())?;
    if now != sha {
        return Err(format!("sha256 {now} is not {sha}: the file changed"));
    }
    let footer = read_footer(path).map_err(|e| e.to_string())?;
    Ok(Checked {
        seg: SegmentRef {
            path: path.to_path_buf(),
            rel: path.display().to_string(),
            listed: None,
        },
        sha: now,
        footer,
    })
}

/// The catalog row of a file listed as it is.
fn record(c: &Checked, path: PathBuf, bundle: &str, origin: Origin) -> FileRecord {
    FileRecord {
        sha256: c.sha.clone(),
        path: path.display().to_string(),
        bundle: bundle.to_string(),
        rel: c.seg.rel.clone(),
        node: c.footer.meta.node.clone(),
        rows: c.footer.rows,
        bytes: fs::metadata(&c.seg.path).map_or(0, |m| m.len()),
        span: c.span(),
        events_seen: c.footer.meta.events_seen,
        events_dropped: c.footer.meta.events_dropped,
        producer: c.footer.meta.producer.clone(),
        origin,
    }
}

/// Checks a file before merging: checksum against the manifest, then footer and schema.
fn check_segment(seg: &SegmentRef) -> Check {
    let sha = sha256_file(&seg.path).map_err(|e| e.to_string())?;
    if let Some(listed) = &seg.listed {
        if listed.sha256 != sha {
            return Err(format!(
                "{}: sha256 {sha} does not match the manifest ({}): the file changed or is corrupt",
                seg.path.display(),
                listed.sha256
            ));
        }
    }
    let footer = read_footer(&seg.path).map_err(|e| e.to_string())?;
    Ok((sha, footer))
}

/// What [`check_segment`] says of one file.
type Check = std::result::Result<(String, SegmentFooter), String>;

/// Checks every file, on as many threads as there are cores (hashing a bundle is a second of
/// CPU at 10M rows), calling `checked` with the running count; results come back in the order
/// of `segs`.
fn check_segments(segs: &[SegmentRef], checked: &mut dyn FnMut(usize)) -> Vec<Check> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Check>> = segs.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..workers.min(segs.len()) {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seg) = segs.get(i) else { break };
                if tx.send((i, check_segment(seg))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (done, (i, check)) in rx.iter().enumerate() {
            out[i] = Some(check);
            checked(done + 1);
        }
    });
    out.into_iter()
        .map(|c| c.unwrap_or_else(|| Err("file was not checked".into())))
        .collect()
}
