//! The warm tier on real collector output: windows of the synthetic sensor go through the
//! pipeline and the writer into a data directory over simulated hours; the compactor turns
//! closed hours into hour files and the closed day into a day file. Rows and counts are checked
//! against an independent aggregation of the inputs; retention works across tiers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use karmor_collector::attribution::NoPods;
use karmor_collector::compactor::compact_next;
use karmor_collector::datadir::{DataDir, Retention};
use karmor_collector::pipeline::{Pipeline, PipelineConfig};
use karmor_collector::raw::decode;
use karmor_collector::synthetic::SyntheticFeed;
use karmor_collector::tiers::{CompactionPolicy, Tier};
use karmor_contract::bundle::{
    parquet_files, parse_ts, read_manifest, verify_bundle, ManifestFile, DAY_PARTITION_HOUR,
};
use karmor_contract::compact::{identity_order, COMPACT_ROW_GROUP_ROWS};
use karmor_contract::schema::schema_version;
use karmor_contract::segment::{read_footer, read_segment, SegmentMeta};
use parquet::file::reader::{FileReader, SerializedFileReader};

/// 2025-11-20T08:00:00Z.
const T0: i64 = 1_763_625_600_000_000_000;
const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
/// One rotation window: the windows below, and the grace after an hour's end.
const WINDOW: i64 = 2 * MIN;

const POLICY: CompactionPolicy = CompactionPolicy {
    grace_ns: WINDOW,
    days: true,
};

fn unlimited() -> Retention {
    Retention {
        max_bytes: 0,
        max_age: None,
    }
}

/// Runs the synthetic sensor through the pipeline and the writer from `from` to `to`
/// (simulated), one window every [`WINDOW`]: windows repeat the same behaviours (4
/// containers, 1,024 paths), with other counts and times; a window across an hour's end is
/// written as two segments, as the collector does.
fn record(dir: &mut DataDir, from: i64, to: i64) {
    let mut pipeline = Pipeline::new(PipelineConfig {
        node: "node-a".into(),
        cluster: Some("test".into()),
        record_args: true,
        process_capacity: 4096,
    });
    let mut feed = SyntheticFeed::new(4);
    // Monotonic time starts at 1 s; real = monotonic + offset.
    let offset = from - SEC;
    let mut window = 0u64;
    let mut t = from;
    while t < to {
        let events = 1_000 + (window * 397) % 700;
        for i in 0..events {
            // Spread over the window, crossing an hour's end where the window does.
            let ts = t + (i as i64 * (WINDOW - SEC)) / events as i64 + WINDOW / 4;
            let rec = feed.next_record((ts - offset) as u64);
            pipeline.handle(&decode(&rec).expect("synthetic records decode"));
        }
        let raw = pipeline.raw_events();
        let drained = pipeline.drain_window(offset, &NoPods);
        let meta = SegmentMeta {
            schema_version: schema_version(),
            producer: "karmor-collector test".into(),
            node: "node-a".into(),
            events_seen: raw,
            events_dropped: window % 3,
            windows: 1,
            ..SegmentMeta::default()
        };
        drained
            .write_to(dir, &meta, t + WINDOW)
            .expect("the writer writes");
        window += 1;
        t += WINDOW;
    }
}

type Totals = BTreeMap<String, (i64, i64, u64)>;

/// The expected rows of `files`, computed without the compaction code: a map keyed by every
/// column but the times and the count.
fn aggregate(files: &[PathBuf]) -> Totals {
    let mut out = Totals::new();
    for f in files {
        for mut e in read_segment(f).expect("input").1 {
            let (first, last, count) = (e.ts_first, e.ts_last, e.count);
            (e.ts_first, e.ts_last, e.count) = (0, 0, 0);
            let slot = out
                .entry(format!("{e:?}"))
                .or_insert((i64::MAX, i64::MIN, 0));
            slot.0 = slot.0.min(first);
            slot.1 = slot.1.max(last);
            slot.2 += count;
        }
    }
    out
}

fn listed(dir: &Path) -> Vec<ManifestFile> {
    read_manifest(dir).expect("manifest").files
}

fn under(files: &[ManifestFile], prefix: &str) -> Vec<ManifestFile> {
    files
        .iter()
        .filter(|f| f.path.starts_with(prefix))
        .cloned()
        .collect()
}

/// Footer counters summed: (events seen, dropped, windows).
fn counters(paths: &[PathBuf]) -> (u64, u64, u64) {
    paths.iter().fold((0, 0, 0), |acc, p| {
        let m = read_footer(p).expect("footer").meta;
        (
            acc.0 + m.events_seen,
            acc.1 + m.events_dropped,
            acc.2 + m.windows,
        )
    })
}

/// Checks a compacted file: exactly the expected rows and counts, sorted by identity, row
/// groups of at least [`COMPACT_ROW_GROUP_ROWS`] (or all rows in one), counters summed.
fn check_output(path: &Path, expected: &Totals, inputs_counters: (u64, u64, u64)) {
    let (_, rows) = read_segment(path).expect("output reads");
    let got = aggregate(&[path.to_path_buf()]);
    assert_eq!(got.len(), rows.len(), "one row per behaviour in {path:?}");
    assert_eq!(&got, expected, "rows and counts of {path:?}");
    for pair in rows.windows(2) {
        assert_eq!(
            identity_order(&pair[0], &pair[1]),
            std::cmp::Ordering::Less,
            "sorted by identity, no two rows alike"
        );
    }
    let reader = SerializedFileReader::new(fs::File::open(path).unwrap()).unwrap();
    let groups: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    let (last, full) = groups.split_last().unwrap();
    assert!(
        full.iter().all(|&n| n >= COMPACT_ROW_GROUP_ROWS as i64) && *last > 0,
        "row groups {groups:?}"
    );
    assert_eq!(counters(&[path.to_path_buf()]), inputs_counters);
}

fn no_problems(dir: &Path) {
    let checks = verify_bundle(dir).unwrap();
    let bad: Vec<_> = checks.iter().filter(|c| c.problem.is_some()).collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn compaction_of_collector_output_gives_exactly_the_rows_of_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut dir = DataDir::open(root, "karmor-collector test", unlimited()).unwrap();
    // 08:00 to 10:10: hours 08 and 09 close, 10 stays open.
    record(&mut dir, T0, T0 + 2 * HOUR + 10 * MIN);
    let dir = Mutex::new(dir);
    let before = read_manifest(root).unwrap();
    let h08 = "node=node-a/date=2025-11-20/hour=08/";
    let h09 = "node=node-a/date=2025-11-20/hour=09/";
    let h10 = "node=node-a/date=2025-11-20/hour=10/";
    let paths = |fs: &[ManifestFile]| fs.iter().map(|f| root.join(&f.path)).collect::<Vec<_>>();
    let inputs08 = under(&before.files, h08);
    let inputs09 = under(&before.files, h09);
    assert!(
        inputs08.len() >= 30 && inputs09.len() >= 30,
        "a segment per window"
    );
    let expected08 = aggregate(&paths(&inputs08));
    let expected09 = aggregate(&paths(&inputs09));
    let raw_rows: usize = inputs08.iter().map(|f| f.rows as usize).sum();
    assert!(
        raw_rows >= expected08.len() * 3 / 2,
        "windows repeat behaviours: {raw_rows} rows, {} behaviours",
        expected08.len()
    );
    let counters08 = counters(&paths(&inputs08));
    let counters09 = counters(&paths(&inputs09));
    let all_before = paths(&before.files);
    let expected_day = aggregate(&all_before);
    let counters_day = counters(&all_before);

    // An hour is not compacted while open, nor within the grace after its end.
    assert_eq!(compact_next(&dir, T0 + 59 * MIN, POLICY).unwrap(), None);
    assert_eq!(
        compact_next(&dir, T0 + HOUR + WINDOW - 1, POLICY).unwrap(),
        None
    );
    assert_eq!(read_manifest(root).unwrap().files, before.files);

    // 10:10 plus a window: 08 and 09 are due, oldest first; 10 is not.
    let now = T0 + 2 * HOUR + 10 * MIN + WINDOW;
    let first = compact_next(&dir, now, POLICY).unwrap().expect("08 is due");
    assert_eq!(first.tier, Tier::Hour);
    assert!(first.output.starts_with(h08), "{first:?}");
    assert!(first
        .output
        .rsplit('/')
        .next()
        .unwrap()
        .starts_with("hour-"));
    assert_eq!(first.replaced.len(), inputs08.len());
    let second = compact_next(&dir, now, POLICY).unwrap().expect("09 is due");
    assert!(second.output.starts_with(h09), "{second:?}");
    assert_eq!(compact_next(&dir, now, POLICY).unwrap(), None, "10 is open");

    let after = read_manifest(root).unwrap();
    check_output(&root.join(&first.output), &expected08, counters08);
    check_output(&root.join(&second.output), &expected09, counters09);
    for (out, inputs) in [(&first.output, &inputs08), (&second.output, &inputs09)] {
        let entry = after.files.iter().find(|f| &f.path == out).unwrap();
        let mut want: Vec<String> = inputs.iter().map(|f| f.sha256.clone()).collect();
        want.sort();
        assert_eq!(entry.replaces, want, "replaces: every input");
        assert_eq!(
            entry.events_seen,
            inputs.iter().map(|f| f.events_seen).sum::<u64>()
        );
        for f in inputs.iter() {
            assert!(!root.join(&f.path).exists(), "{} deleted", f.path);
            assert!(after.files.iter().all(|l| l.path != f.path));
        }
    }
    assert_eq!(after.totals.events_seen, before.totals.events_seen);
    assert_eq!(after.totals.events_dropped, before.totals.events_dropped);
    assert_eq!(under(&after.files, h10), under(&before.files, h10));
    no_problems(root);
    assert_eq!(parquet_files(root).unwrap().len(), after.files.len());

    // The next day: hour 10 first, then the day from its three hour files.
    let next_day = T0 + 16 * HOUR + WINDOW;
    let third = compact_next(&dir, next_day, POLICY).unwrap().expect("10");
    assert!(third.output.starts_with(h10));
    let hours = read_manifest(root).unwrap().files;
    assert_eq!(hours.len(), 3);
    assert!(hours.iter().all(|f| Tier::of(&f.path) == Tier::Hour));
    let day = compact_next(&dir, next_day, POLICY)
        .unwrap()
        .expect("the day");
    assert_eq!(day.tier, Tier::Day);
    assert!(
        day.output.starts_with(&format!(
            "node=node-a/date=2025-11-20/hour={DAY_PARTITION_HOUR}/day-"
        )),
        "{day:?}"
    );
    assert_eq!(compact_next(&dir, next_day, POLICY).unwrap(), None);
    let end = read_manifest(root).unwrap();
    assert_eq!(end.files.len(), 1);
    let entry = &end.files[0];
    let mut want: Vec<String> = before
        .files
        .iter()
        .chain(&hours)
        .map(|f| f.sha256.clone())
        .collect();
    want.sort();
    assert_eq!(
        entry.replaces, want,
        "transitive: hour files and their segments"
    );
    check_output(&root.join(&entry.path), &expected_day, counters_day);
    assert_eq!(end.totals.events_seen, before.totals.events_seen);
    assert_eq!(end.time_range, before.time_range);
    // The hour directories went with their files.
    let date = root.join("node=node-a/date=2025-11-20");
    let dirs: BTreeSet<String> = fs::read_dir(&date)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, BTreeSet::from([format!("hour={DAY_PARTITION_HOUR}")]));
    no_problems(root);
    assert_eq!(parquet_files(root).unwrap().len(), 1);
}

#[test]
fn a_day_is_left_in_hour_files_without_compact_days() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = DataDir::open(tmp.path(), "t", unlimited()).unwrap();
    record(&mut dir, T0, T0 + HOUR + 58 * MIN);
    let dir = Mutex::new(dir);
    let hours_only = CompactionPolicy {
        days: false,
        ..POLICY
    };
    let next_day = T0 + 16 * HOUR + WINDOW;
    let mut tiers = Vec::new();
    while let Some(o) = compact_next(&dir, next_day, hours_only).unwrap() {
        tiers.push(o.tier);
    }
    assert_eq!(tiers, [Tier::Hour, Tier::Hour]);
    no_problems(tmp.path());
}

#[test]
fn a_corrupt_input_is_left_listed_and_the_others_are_compacted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut dir = DataDir::open(root, "t", unlimited()).unwrap();
    record(&mut dir, T0, T0 + 20 * MIN);
    let dir = Mutex::new(dir);
    let inputs = listed(root);
    let victim = &inputs[3];
    let mut bytes = fs::read(root.join(&victim.path)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(root.join(&victim.path), &bytes).unwrap();
    let now = T0 + HOUR + WINDOW;
    let err = compact_next(&dir, now, POLICY).unwrap_err().to_string();
    assert!(err.contains(&victim.path), "names the file: {err}");
    let o = compact_next(&dir, now, POLICY)
        .unwrap()
        .expect("the others");
    assert_eq!(o.replaced.len(), inputs.len() - 1);
    let m = read_manifest(root).unwrap();
    assert_eq!(m.files.len(), 2);
    assert!(
        m.files.iter().any(|f| f.path == victim.path),
        "still listed"
    );
    assert_eq!(
        compact_next(&dir, now, POLICY).unwrap(),
        None,
        "not retried"
    );
}

/// Bytes of the bundle's files on disk.
fn on_disk(root: &Path) -> u64 {
    parquet_files(root)
        .unwrap()
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

const DAY: i64 = 24 * HOUR;

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Three days before today (UTC) at 00:00: `DataDir::open` applies retention at the real time.
fn three_days_ago() -> i64 {
    real_now() / DAY * DAY - 3 * DAY
}

/// A data directory with all three tiers: day 1 (08:00 to 09:00) in a day file, day 2's 08 and
/// 09 in hour files (the day is not closed yet at day 2's 10:02), day 3's 08:00 to 08:10 hot.
/// Returns (day file, hour files oldest first, hot segments).
fn three_tiers(root: &Path, base: i64) -> (ManifestFile, Vec<ManifestFile>, Vec<ManifestFile>) {
    let mut dir = DataDir::open(root, "t", unlimited()).unwrap();
    // (Windows end 2.5 minutes after they start: these stay within their hours.)
    record(&mut dir, base + 8 * HOUR, base + 8 * HOUR + 58 * MIN);
    record(
        &mut dir,
        base + DAY + 8 * HOUR,
        base + DAY + 9 * HOUR + 58 * MIN,
    );
    let dir = Mutex::new(dir);
    let at = base + DAY + 10 * HOUR + WINDOW;
    while compact_next(&dir, at, POLICY).unwrap().is_some() {}
    let mut dir = dir.into_inner().unwrap();
    record(
        &mut dir,
        base + 2 * DAY + 8 * HOUR,
        base + 2 * DAY + 8 * HOUR + 10 * MIN,
    );
    let files = listed(root);
    let of = |t: Tier| -> Vec<ManifestFile> {
        let mut v: Vec<ManifestFile> = files
            .iter()
            .filter(|f| Tier::of(&f.path) == t)
            .cloned()
            .collect();
        v.sort_by_key(|f| parse_ts(&f.last));
        v
    };
    let (days, hours, hot) = (of(Tier::Day), of(Tier::Hour), of(Tier::Hot));
    assert_eq!((days.len(), hours.len(), hot.len()), (1, 2, 5), "{files:?}");
    (days[0].clone(), hours, hot)
}

fn bytes_limit(max_bytes: u64) -> Retention {
    Retention {
        max_bytes,
        max_age: None,
    }
}

#[test]
fn retention_by_bytes_removes_the_oldest_files_whatever_their_tier() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (day, hours, hot) = three_tiers(root, three_days_ago());
    let all = listed(root);
    // A limit that holds all but the oldest file: the day file goes.
    let total: u64 = all.iter().map(|f| f.bytes).sum();
    let limit = total - day.bytes;
    drop(DataDir::open(root, "t", bytes_limit(limit)).unwrap());
    let left = listed(root);
    assert_eq!(left.len(), all.len() - 1);
    assert!(
        left.iter().all(|f| f.path != day.path),
        "the day file first"
    );
    assert!(!root.join(&day.path).exists());
    assert!(on_disk(root) <= limit);
    // Then the oldest hour file, before the newer hour and the hot segments.
    let limit = limit - hours[0].bytes;
    drop(DataDir::open(root, "t", bytes_limit(limit)).unwrap());
    let left = listed(root);
    assert_eq!(left.len(), all.len() - 2);
    assert!(left.iter().all(|f| f.path != hours[0].path));
    assert!(left.iter().any(|f| f.path == hours[1].path));
    assert!(hot.iter().all(|h| left.iter().any(|f| f.path == h.path)));
    assert!(on_disk(root) <= limit);
    no_problems(root);
}

#[test]
fn retention_by_age_removes_files_of_every_tier_by_their_last_row() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let base = three_days_ago();
    let (day, hours, hot) = three_tiers(root, base);
    // Everything whose last row is before day 2 started: the day file only.
    let age = Duration::from_nanos((real_now() - (base + DAY)) as u64);
    let retention = Retention {
        max_bytes: 0,
        max_age: Some(age),
    };
    drop(DataDir::open(root, "t", retention).unwrap());
    let left = listed(root);
    assert!(left.iter().all(|f| f.path != day.path));
    assert_eq!(left.len(), hours.len() + hot.len());
    // Up to the middle of day 2: its hour files too (each by its own last row).
    let age = Duration::from_nanos((real_now() - (base + DAY + 9 * HOUR + 30 * MIN)) as u64);
    let retention = Retention {
        max_bytes: 0,
        max_age: Some(age),
    };
    drop(DataDir::open(root, "t", retention).unwrap());
    let left = listed(root);
    assert_eq!(left.len(), 1 + hot.len(), "{left:?}");
    assert!(left.iter().any(|f| f.path == hours[1].path));
    no_problems(root);
}

#[test]
fn retention_spares_files_being_compacted_and_keeps_room_for_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let base = three_days_ago();
    let (_, hours, hot) = three_tiers(root, base);
    let limit = on_disk(root) + hot.iter().map(|f| f.bytes).sum::<u64>();
    let mut dir = DataDir::open(root, "t", bytes_limit(limit)).unwrap();
    // Day 3's 08 hour closes: its hot segments are claimed, their bytes reserved (day 2 is
    // due too: left out here).
    let hours_only = CompactionPolicy {
        days: false,
        ..POLICY
    };
    let job = dir
        .claim_compaction(base + 2 * DAY + 9 * HOUR + WINDOW, hours_only)
        .unwrap()
        .expect("day 3's 08 hour is due");
    assert_eq!(job.inputs.len(), hot.len());
    assert!(dir.bytes() + job.input_bytes() <= limit);
    // Newer rows flood in while it runs: retention removes older files, never the claimed.
    record(
        &mut dir,
        base + 2 * DAY + 9 * HOUR,
        base + 2 * DAY + 10 * HOUR,
    );
    for f in &job.inputs {
        assert!(
            root.join(&f.path).exists(),
            "{} kept while compacted",
            f.path
        );
        assert!(dir.manifest().files.iter().any(|l| l.path == f.path));
    }
    assert!(
        dir.manifest().files.iter().all(|f| f.path != hours[0].path),
        "older files went instead"
    );
    assert!(dir.bytes() + job.input_bytes() <= limit);
    assert!(on_disk(root) <= limit);
    dir.release_compaction(&job);
    no_problems(root);
}
