use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;
use crate::schema::{Op, Source};
use crate::segment::{read_segment, write_segment};

/// A small deterministic generator (xorshift), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One of `pool` behaviours, seen at `ts` `count` times: windows of a collector repeat
/// behaviours, with other pids, counts and times.
fn behaviour(rng: &mut Rng, pool: u64, ts: i64) -> Event {
    let id = rng.below(pool);
    let ns = ["shop", "payments", "kube-system"][(id % 3) as usize];
    let op = [Op::Process, Op::File, Op::Network][(id % 5 % 3) as usize];
    Event {
        ts_first: ts,
        ts_last: ts + rng.below(1_000) as i64,
        count: 1 + rng.below(20),
        node: "node-a".into(),
        namespace: (!id.is_multiple_of(7)).then(|| ns.into()),
        host: id.is_multiple_of(7),
        pod: (!id.is_multiple_of(7)).then(|| format!("{ns}-pod-{}", id % 4)),
        container: (!id.is_multiple_of(7)).then(|| "main".into()),
        workload: (!id.is_multiple_of(7)).then(|| format!("{ns}-app")),
        labels: vec![format!("app={ns}"), format!("tier={}", id % 2)],
        pid: Some(100 + (id % 3) as i32),
        process: Some(format!("/usr/bin/p{}", id % 11)),
        op,
        source: Source::Ebpf,
        path: (op == Op::File).then(|| format!("/data/f{id}")),
        access: (op == Op::File).then(|| ["read", "write"][(id % 2) as usize].into()),
        proto: (op == Op::Network).then(|| "tcp".into()),
        remote_port: (op == Op::Network).then_some(443),
        result: Some(
            if id.is_multiple_of(13) {
                "No such file or directory"
            } else {
                "Passed"
            }
            .into(),
        ),
        ..Event::default()
    }
}

/// Writes `windows` segments of `rows` rows each, behaviours drawn from `pool`.
fn write_windows(dir: &Path, windows: usize, rows: usize, pool: u64) -> Vec<PathBuf> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..windows)
        .map(|w| {
            let mut events: Vec<Event> = (0..rows)
                .map(|_| {
                    let ts = 1_000_000 * w as i64 + rng.below(999) as i64;
                    behaviour(&mut rng, pool, ts)
                })
                .collect();
            let meta = SegmentMeta {
                schema_version: schema_version(),
                producer: "test".into(),
                node: "node-a".into(),
                events_seen: events.iter().map(|e| e.count).sum(),
                events_dropped: w as u64,
                windows: 1,
                kernel: Some("6.18".into()),
                ..SegmentMeta::default()
            };
            let path = dir.join(format!("seg-{w:03}.parquet"));
            write_segment(&path, &mut events, &meta).expect("segment");
            path
        })
        .collect()
}

/// The expected rows, computed without the module: a map keyed by the row with its times and
/// count zeroed.
fn aggregate(inputs: &[PathBuf]) -> BTreeMap<String, (i64, i64, u64)> {
    let mut out = BTreeMap::new();
    for input in inputs {
        for mut e in read_segment(input).expect("input").1 {
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

fn small(dir: &Path) -> CompactOptions {
    CompactOptions {
        row_group_rows: 40,
        run_rows: 64,
        merge_batch_rows: 7,
        ..CompactOptions::new("karmor-collector test", dir)
    }
}

/// [`small`], but every input fits in one run: the in-memory path.
fn in_memory(dir: &Path) -> CompactOptions {
    CompactOptions {
        run_rows: 1_000_000,
        ..small(dir)
    }
}

#[test]
fn compaction_gives_the_rows_and_counts_of_an_independent_aggregation() {
    matches_an_independent_aggregation(small);
}

#[test]
fn compaction_on_columns_gives_the_rows_and_counts_of_an_independent_aggregation() {
    matches_an_independent_aggregation(in_memory);
}

#[test]
fn the_in_memory_and_external_paths_write_the_same_rows_in_the_same_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = write_windows(dir.path(), 7, 400, 250);
    let rows = dir.path().join("rows.parquet");
    let columns = dir.path().join("columns.parquet");
    let by_rows = compact(&inputs, &rows, &small(dir.path())).expect("external path");
    let by_columns = compact(&inputs, &columns, &in_memory(dir.path())).expect("in-memory path");
    assert_eq!(by_rows.input_rows, by_columns.input_rows);
    assert_eq!(by_rows.meta, by_columns.meta);
    assert_eq!(
        (
            by_rows.written.rows,
            by_rows.written.ts_first,
            by_rows.written.ts_last
        ),
        (
            by_columns.written.rows,
            by_columns.written.ts_first,
            by_columns.written.ts_last
        )
    );
    assert_eq!(
        read_segment(&rows).expect("rows").1,
        read_segment(&columns).expect("columns").1
    );
}

#[test]
fn an_unknown_operation_is_refused_by_file_column_and_row_on_the_column_path() {
    use arrow_array::{ArrayRef, StringArray};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut inputs = write_windows(dir.path(), 2, 30, 20);
    let events: Vec<Event> = (0..5).map(|i| behaviour(&mut Rng(11), 20, i)).collect();
    let batch = crate::segment::events_to_batch(&events);
    let at = batch.schema().index_of("op").expect("op column");
    let mut columns = batch.columns().to_vec();
    columns[at] = Arc::new(StringArray::from(vec![
        "process", "file", "file", "teleport", "network",
    ])) as ArrayRef;
    let batch = RecordBatch::try_new(batch.schema(), columns).expect("batch");
    let meta = SegmentMeta {
        schema_version: schema_version(),
        node: "node-a".into(),
        ..SegmentMeta::default()
    };
    let path = dir.path().join("odd.parquet");
    let file = fs::File::create(&path).expect("create");
    let mut writer = ArrowWriter::try_new(
        file,
        batch.schema(),
        Some(crate::segment::writer_properties(&meta, 1024)),
    )
    .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    inputs.push(path);

    let out = dir.path().join("hour.parquet");
    let err = compact(&inputs, &out, &in_memory(dir.path())).expect_err("unknown op");
    let text = err.to_string();
    assert!(
        text.contains("odd.parquet") && text.contains("op") && text.contains("row 3"),
        "{text}"
    );
    assert!(!out.exists());
    assert!(!tmp_path(&out).exists());
}

fn matches_an_independent_aggregation(options: fn(&Path) -> CompactOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = write_windows(dir.path(), 9, 300, 180);
    let out = dir.path().join("hour.parquet");
    let done = compact(&inputs, &out, &options(dir.path())).expect("compact");

    let (meta, rows) = read_segment(&out).expect("output");
    let expected = aggregate(&inputs);
    let mut got = BTreeMap::new();
    for mut e in rows.clone() {
        let v = (e.ts_first, e.ts_last, e.count);
        (e.ts_first, e.ts_last, e.count) = (0, 0, 0);
        assert!(
            got.insert(format!("{e:?}"), v).is_none(),
            "a behaviour appears twice in the output: {e:?}"
        );
    }
    assert_eq!(got, expected);
    assert!(
        rows.len() < 9 * 300,
        "windows repeat behaviours: {}",
        rows.len()
    );
    assert_eq!(done.input_rows, 9 * 300);
    assert_eq!(done.written.rows, rows.len() as u64);
    assert_eq!(done.written.sha256, sha256_file(&out).expect("sha"));
    assert_eq!(done.written.bytes, fs::metadata(&out).expect("stat").len());
    assert_eq!(
        done.written.ts_first,
        rows.iter().map(|e| e.ts_first).min().expect("rows")
    );

    // Sorted strictly by identity: namespace first, then workload, pod, container, op.
    for pair in rows.windows(2) {
        assert_eq!(
            identity_order(&pair[0], &pair[1]),
            Ordering::Less,
            "{:?}\n{:?}",
            pair[0],
            pair[1]
        );
    }

    // Counters summed, node kept.
    assert_eq!(meta.windows, 9);
    assert_eq!(meta.events_dropped, (0..9).sum::<u64>());
    assert_eq!(
        meta.events_seen,
        expected.values().map(|v| v.2).sum::<u64>()
    );
    assert_eq!(meta.node, "node-a");
    assert_eq!(meta.producer, "karmor-collector test");
    assert_eq!(meta.kernel.as_deref(), Some("6.18"));
    assert_eq!(done.meta, meta);

    // Row groups of the asked size, the last one holding the rest.
    let reader = SerializedFileReader::new(fs::File::open(&out).expect("open")).expect("parquet");
    let groups: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert!(groups.len() > 2, "{groups:?}");
    assert!(
        groups[..groups.len() - 1].iter().all(|&n| n == 40),
        "{groups:?}"
    );

    // The scratch runs are gone, and no temporary file is left.
    let left: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".compact") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn compacting_a_compacted_file_with_new_windows_equals_compacting_all_at_once() {
    // Hour files into a day file: compaction is associative.
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = write_windows(dir.path(), 8, 200, 150);
    let once = dir.path().join("once.parquet");
    compact(&inputs, &once, &small(dir.path())).expect("once");
    let first_half = dir.path().join("h1.parquet");
    let second_half = dir.path().join("h2.parquet");
    compact(&inputs[..4], &first_half, &small(dir.path())).expect("h1");
    compact(&inputs[4..], &second_half, &small(dir.path())).expect("h2");
    let twice = dir.path().join("twice.parquet");
    compact(&[first_half, second_half], &twice, &small(dir.path())).expect("day");
    assert_eq!(
        read_segment(&once).expect("once").1,
        read_segment(&twice).expect("twice").1
    );
}

#[test]
fn another_nodes_file_is_refused_by_name_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inputs = write_windows(dir.path(), 2, 20, 10);
    let mut other = vec![Event {
        node: "node-b".into(),
        ..behaviour(&mut Rng(7), 10, 5)
    }];
    let meta = SegmentMeta {
        schema_version: schema_version(),
        node: "node-b".into(),
        ..SegmentMeta::default()
    };
    let path = dir.path().join("other.parquet");
    write_segment(&path, &mut other, &meta).expect("segment");
    inputs.push(path);
    let out = dir.path().join("hour.parquet");
    let err = compact(&inputs, &out, &small(dir.path())).expect_err("two nodes");
    let text = err.to_string();
    assert!(
        text.contains("other.parquet") && text.contains("node-b"),
        "{text}"
    );
    assert!(!out.exists());
}

#[test]
fn a_corrupt_input_fails_the_compaction_without_a_partial_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = write_windows(dir.path(), 3, 50, 40);
    let bytes = fs::read(&inputs[1]).expect("read");
    fs::write(&inputs[1], &bytes[..bytes.len() / 2]).expect("truncate");
    let out = dir.path().join("hour.parquet");
    let err = compact(&inputs, &out, &small(dir.path())).expect_err("corrupt");
    assert!(err.to_string().contains("seg-001.parquet"), "{err}");
    assert!(!out.exists());
    assert!(!tmp_path(&out).exists());
}

#[test]
fn both_paths_order_nulls_empty_values_prefixes_and_label_lists_as_identity_order() {
    // The in-memory path sorts on ranks of each column's distinct values, the external merge on
    // the values' row encoding: both must order and group exactly as identity_order does, also
    // where it is subtle (and the merge across runs, levels and batches).
    let dir = tempfile::tempdir().expect("tempdir");
    let labels: [&[&str]; 5] = [&[], &["a"], &["a", "b"], &["a=1", "b"], &["b"]];
    let pods = [None, Some(""), Some("a"), Some("Z"), Some("é")];
    let mut events = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        for (j, pod) in pods.iter().enumerate() {
            events.push(Event {
                ts_first: (i * 10 + j) as i64,
                ts_last: (i * 10 + j) as i64 + 5,
                count: 1 + j as u64,
                node: "node-a".into(),
                namespace: Some("shop".into()),
                pod: pod.map(str::to_string),
                labels: l.iter().map(|s| s.to_string()).collect(),
                process: Some(format!("/bin/p{}", (i + j) % 3)),
                op: Op::Process,
                source: Source::Ebpf,
                ..Event::default()
            });
        }
    }
    // Two windows that repeat every behaviour, in opposite orders.
    let mut inputs = Vec::new();
    for (w, mut rows) in [events.clone(), events.iter().rev().cloned().collect()]
        .into_iter()
        .enumerate()
    {
        let meta = SegmentMeta {
            schema_version: schema_version(),
            node: "node-a".into(),
            windows: 1,
            ..SegmentMeta::default()
        };
        let path = dir.path().join(format!("w{w}.parquet"));
        write_segment(&path, &mut rows, &meta).expect("segment");
        inputs.push(path);
    }
    let rows = dir.path().join("rows.parquet");
    let columns = dir.path().join("columns.parquet");
    let tiny = CompactOptions {
        run_rows: 4,
        merge_batch_rows: 3,
        merge_fan_in: 3,
        ..small(dir.path())
    };
    compact(&inputs, &rows, &tiny).expect("external path");
    compact(&inputs, &columns, &in_memory(dir.path())).expect("in-memory path");
    let by_rows = read_segment(&rows).expect("rows").1;
    let by_columns = read_segment(&columns).expect("columns").1;
    assert_eq!(by_columns.len(), events.len(), "every behaviour once");
    assert_eq!(by_rows, by_columns);
    for pair in by_columns.windows(2) {
        assert_eq!(
            identity_order(&pair[0], &pair[1]),
            Ordering::Less,
            "{pair:?}"
        );
    }
    assert!(
        by_columns.iter().all(|e| e.count % 2 == 0),
        "both windows folded"
    );
}
