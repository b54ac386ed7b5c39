//! Bundles rewritten by other Parquet writers read back as the original (design §3: "bundles
//! open in users' notebooks" works both ways). DuckDB writes every column nullable, lists with
//! an `element` item, and timestamps as it was asked; pyarrow writes `element` lists with
//! nullable items. Each rewritten file must read row for row as the original, and the whole
//! bundle must give the same `observe` answer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use duckdb::Connection;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind, Summary};
use karmor_analyzer::Store;
use karmor_contract::bundle::{format_ts, parse_ts, read_manifest, write_manifest};
use karmor_contract::segment::{read_footer, read_segment, sha256_file};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

/// The key-value metadata of a Parquet file, as (key, value) pairs.
fn kv_metadata(path: &Path) -> Vec<(String, String)> {
    let reader = SerializedFileReader::new(fs::File::open(path).expect("open")).expect("parquet");
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter(|k| k.key.starts_with("karmor."))
                .filter_map(|k| Some((k.key.clone(), k.value.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Copies the demo bundle to `dst`, each segment rewritten by `rewrite(src, dst)`, with a
/// manifest whose checksums and sizes are the new files'.
fn rewritten_demo(dst: &Path, rewrite: &dyn Fn(&Path, &Path)) {
    let src = demo();
    let mut manifest = read_manifest(&src).expect("demo manifest");
    for f in &mut manifest.files {
        let (from, to) = (src.join(&f.path), dst.join(&f.path));
        fs::create_dir_all(to.parent().expect("segment dir")).expect("mkdir");
        rewrite(&from, &to);
        f.sha256 = sha256_file(&to).expect("sha256");
        f.bytes = fs::metadata(&to).expect("stat").len();
    }
    // The pods table travels as it is (its own schema, not the events').
    for p in &manifest.pods {
        let (from, to) = (src.join(&p.path), dst.join(&p.path));
        fs::create_dir_all(to.parent().expect("pods dir")).expect("mkdir");
        fs::copy(&from, &to).expect("copy pods table");
    }
    write_manifest(dst, &mut manifest).expect("manifest");
}

fn summary(bundle: &Path) -> Summary {
    let store = Store::in_memory().expect("store");
    let merged = store.merge_bundle(bundle).expect("merge");
    assert!(merged.problems.is_empty(), "{:?}", merged.problems);
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::All;
    q.wide = true;
    summarize(&store, &q).expect("summary")
}

/// `text` with every RFC 3339 time in it floored to `precision_ns`.
fn floor_times(text: &str, precision_ns: i64) -> String {
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").expect("regex");
    times
        .replace_all(text, |c: &regex::Captures| {
            let ns = parse_ts(&c[0]).expect("an RFC 3339 time");
            format_ts(ns - ns.rem_euclid(precision_ns))
        })
        .into_owned()
}

/// Every rewritten segment reads row for row as its original, and the bundle answers alike,
/// with times floored to `precision_ns` (the writer's timestamp unit).
fn assert_reads_as_demo(rewritten: &Path, precision_ns: i64) {
    let src = demo();
    let manifest = read_manifest(&src).expect("demo manifest");
    for f in &manifest.files {
        let (orig, new) = (src.join(&f.path), rewritten.join(&f.path));
        read_footer(&new).unwrap_or_else(|e| panic!("{e}"));
        let (meta_a, mut rows_a) = read_segment(&orig).expect("original");
        for e in &mut rows_a {
            e.ts_first -= e.ts_first.rem_euclid(precision_ns);
            e.ts_last -= e.ts_last.rem_euclid(precision_ns);
        }
        let (meta_b, rows_b) = read_segment(&new).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta_a, meta_b, "{}", f.path);
        assert_eq!(rows_a.len(), rows_b.len(), "{}", f.path);
        if let Some(i) = (0..rows_a.len()).find(|&i| rows_a[i] != rows_b[i]) {
            panic!(
                "{}: row {i} differs\noriginal:  {:?}\nrewritten: {:?}",
                f.path, rows_a[i], rows_b[i]
            );
        }
    }
    let json = |s: Summary| serde_json::to_string_pretty(&s).expect("json");
    assert_eq!(
        floor_times(&json(summary(rewritten)), precision_ns),
        floor_times(&json(summary(&src)), precision_ns)
    );
}

#[test]
fn a_bundle_rewritten_by_duckdb_reads_as_the_original() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open_in_memory().expect("duckdb");
    rewritten_demo(dir.path(), &|from, to| {
        let kv = kv_metadata(from)
            .iter()
            .map(|(k, v)| format!("'{k}': '{v}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // TIMESTAMPTZ in microseconds, as a DuckDB user's table would hold them.
        let sql = format!(
            "COPY (SELECT * REPLACE (ts_first::TIMESTAMPTZ AS ts_first, ts_last::TIMESTAMPTZ AS ts_last) \
             FROM read_parquet('{}', hive_partitioning = false)) TO '{}' \
             (FORMAT parquet, KV_METADATA {{{kv}}})",
            from.display(),
            to.display()
        );
        conn.execute_batch(&sql).expect("duckdb rewrite");
    });
    // The precondition of this test: DuckDB really wrote another spelling.
    let any = dir
        .path()
        .join(&read_manifest(&demo()).expect("m").files[0].path);
    let schema = format!("{:?}", read_schema(&any));
    assert!(schema.contains("Microsecond"), "{schema}");
    assert_reads_as_demo(dir.path(), 1_000);
}

#[test]
#[ignore = "needs python3 with pyarrow (CI installs it)"]
fn a_bundle_rewritten_by_pyarrow_reads_as_the_original() {
    let dir = tempfile::tempdir().expect("tempdir");
    rewritten_demo(dir.path(), &|from, to| {
        // pyarrow's defaults (snappy; lists with the standard `element` item, nullable), and
        // the file's key-value metadata carried over as a user would.
        let script = "import sys, pyarrow.parquet as pq\n\
                      t = pq.read_table(sys.argv[1])\n\
                      kv = pq.read_metadata(sys.argv[1]).metadata\n\
                      t = t.replace_schema_metadata({**(t.schema.metadata or {}), **kv})\n\
                      pq.write_table(t, sys.argv[2], use_compliant_nested_type=True)\n";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(from)
            .arg(to)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "pyarrow rewrite failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let any = dir
        .path()
        .join(&read_manifest(&demo()).expect("m").files[0].path);
    let schema = format!("{:?}", read_schema(&any));
    assert!(schema.contains("\"element\""), "{schema}");
    assert_reads_as_demo(dir.path(), 1);
}

/// The Arrow schema a reader sees in `path`.
fn read_schema(path: &Path) -> arrow_schema::SchemaRef {
    let file = fs::File::open(path).expect("open");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .schema()
        .clone()
}
