//! `.tar` bundles (design §4): archives made by GNU tar merge exactly like the directory they
//! hold; hostile or damaged archives lose only what is hostile or damaged.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::store::MergeReport;
use karmor_analyzer::Store;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

/// Runs GNU tar with `args`.
fn tar(args: &[&str]) {
    let out = Command::new("tar").args(args).output().expect("tar runs");
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn merged(path: &Path) -> (Store, MergeReport) {
    let store = Store::in_memory().unwrap();
    let report = store.merge_bundle(path).unwrap();
    (store, report)
}

/// Rows, segments and the file summary's counts: what a merge gave.
fn fingerprint(store: &Store) -> (u64, u64, Vec<(String, u64)>) {
    let health = store.health().unwrap();
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::All;
    let files = summarize(store, &q).unwrap().files.unwrap_or_default();
    let counts = files
        .iter()
        .map(|f| (format!("{}|{:?}", f.resource, f.path), f.seen.count))
        .collect();
    (health.rows, health.segments, counts)
}

#[test]
fn tar_and_tar_gz_bundles_merge_exactly_like_the_directory() {
    let (dir_store, dir_report) = merged(&demo());
    assert!(dir_report.problems.is_empty());
    let want = fingerprint(&dir_store);
    assert!(want.0 > 1000, "the demo has rows");

    let tmp = tempfile::tempdir().unwrap();
    let demo_text = demo().display().to_string();
    let parent = demo().parent().unwrap().display().to_string();
    let at_top = tmp.path().join("top.tar");
    let in_dir = tmp.path().join("in-dir.tar.gz");
    // `tar cf b.tar -C bundle .` (the bundle at the archive's top) and
    // `tar czf b.tar.gz bundle` (in one top-level directory, gzipped).
    tar(&["cf", &at_top.display().to_string(), "-C", &demo_text, "."]);
    tar(&["czf", &in_dir.display().to_string(), "-C", &parent, "demo"]);

    for archive in [&at_top, &in_dir] {
        let (store, report) = merged(archive);
        assert!(
            report.problems.is_empty(),
            "{archive:?}: {:?}",
            report.problems
        );
        assert_eq!(fingerprint(&store), want, "{archive:?}");
        assert_eq!(report.bundle, *archive);
        assert_eq!(report.merged.len(), dir_report.merged.len());
        assert!(
            report.merged.iter().all(|p| p.starts_with(archive)),
            "segments are named inside the archive: {:?}",
            report.merged.first()
        );
    }

    // The same segments through a directory and an archive are merged once.
    let again = dir_store.merge_bundle(&in_dir).unwrap();
    assert!(again.merged.is_empty());
    assert_eq!(again.already_present.len(), dir_report.merged.len());
    assert_eq!(fingerprint(&dir_store), want);
}

/// A tar entry with any name, written without the `tar` crate's own path checks.
fn raw_entry(name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn entries_outside_the_bundle_and_links_are_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("demo.tar");
    tar(&[
        "cf",
        &plain.display().to_string(),
        "-C",
        &demo().display().to_string(),
        ".",
    ]);
    let mut bytes = fs::read(&plain).unwrap();
    // Drop the end-of-archive blocks, add hostile entries, end the archive again.
    while bytes.len() >= 512 && bytes[bytes.len() - 512..].iter().all(|b| *b == 0) {
        bytes.truncate(bytes.len() - 512);
    }
    let escape = format!("escape-{}.txt", std::process::id());
    let escape_entry = format!("../{escape}");
    bytes.extend(raw_entry(
        &escape_entry,
        tar::EntryType::Regular,
        None,
        b"owned",
    ));
    bytes.extend(raw_entry(
        "/tmp/absolute.txt",
        tar::EntryType::Regular,
        None,
        b"owned",
    ));
    bytes.extend(raw_entry(
        "link",
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
        b"",
    ));
    bytes.extend([0u8; 1024]);
    let hostile = tmp.path().join("hostile.tar");
    fs::write(&hostile, &bytes).unwrap();

    let (store, report) = merged(&hostile);
    let (want_store, _) = merged(&demo());
    assert_eq!(fingerprint(&store), fingerprint(&want_store));
    assert!(report.problems.iter().all(|(p, _)| *p == hostile));
    let problems: Vec<&str> = report
        .problems
        .iter()
        .map(|(_, why)| why.as_str())
        .collect();
    assert_eq!(
        problems,
        [
            format!("entry {escape_entry}: a path outside the bundle: skipped").as_str(),
            "entry /tmp/absolute.txt: a path outside the bundle: skipped",
            "entry link: not a regular file (Symlink): skipped"
        ]
    );
    assert!(!std::env::temp_dir().join(&escape).exists());
    assert!(!Path::new("/tmp/absolute.txt").exists());
}

#[test]
fn a_cut_archive_keeps_the_segments_before_the_cut_and_names_the_lost_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole.tar");
    // Sorted, so that manifest.json comes first and the cut loses segments, not the manifest.
    let (whole_text, demo_text) = (whole.display().to_string(), demo().display().to_string());
    tar(&["cf", &whole_text, "--sort=name", "-C", &demo_text, "."]);
    let bytes = fs::read(&whole).unwrap();
    let cut = tmp.path().join("cut.tar");
    // Mid-block, so the cut falls inside an entry.
    fs::write(&cut, &bytes[..bytes.len() * 6 / 10 + 100]).unwrap();

    let (_, full) = merged(&demo());
    let (store, report) = merged(&cut);
    let rows = store.health().unwrap().rows;
    assert!(rows > 0 && rows < full.rows, "{rows} of {}", full.rows);
    assert_eq!(report.rows, rows);
    assert!(
        report
            .problems
            .iter()
            .any(|(_, why)| why.contains("cut short or corrupt") || why.contains("cannot unpack")),
        "{:?}",
        report.problems
    );
    // Every segment the manifest lists either landed or is reported by its path in the tar
    // (the pods table's files, under pods/, are not segments).
    let lost: Vec<&PathBuf> = report
        .problems
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .filter(|p| !p.components().any(|c| c.as_os_str() == "pods"))
        .collect();
    assert!(!lost.is_empty());
    assert!(lost.iter().all(|p| p.starts_with(&cut)), "{lost:?}");
    assert_eq!(report.merged.len() + lost.len(), full.merged.len());
}

#[test]
fn a_file_that_is_not_a_tar_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes.txt");
    fs::write(
        &notes,
        "not an archive, just some words that are long enough\n".repeat(20),
    )
    .unwrap();
    let err = Store::in_memory()
        .unwrap()
        .merge_bundle(&notes)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&notes.display().to_string()), "{err}");
    assert!(err.contains("not a bundle directory or a .tar"), "{err}");
}
