//! `observe --tui` benchmark (design §8: key press to redrawn screen ≤ 100 ms for sort and
//! scroll, ≤ 0.5 s for a new filter, on the 10M-row store).
//!
//! Synthetic rows (testdata's model: 300 pods over 10 namespaces on 20 nodes, 7 days) are
//! laid out as the collectors' compaction leaves them, one day file per node and day (design
//! §4, the layout §8's targets assume), and merged into a store file; the UI is opened on `observe pods -A` and drawn on
//! ratatui's `TestBackend` (200×50). Each measurement is the time from handing the UI a key
//! to the end of the draw that shows its answer (the worker's DuckDB queries included),
//! median of several presses (a view shown as a preview while it is built: the first
//! screen, and the time until the whole view is there); it also reports how many rows the UI holds (the screen plus
//! one page) against the rows of the view.
//!
//! `cargo bench -p kubectl-karmor --bench tui`. `KARMOR_BENCH_ROWS=1000000,10000000` picks
//! the sizes (default 10M); `KARMOR_BENCH_DIR` the scratch dir; `KARMOR_BENCH_REUSE=1` keeps
//! the merged store there and reuses it on the next run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use karmor_analyzer::observe::{ObserveQuery, ResourceKind};
use karmor_analyzer::Store;
use karmor_contract::bundle::{
    format_ts, new_manifest, partition_dir, write_manifest, ManifestFile,
};
use karmor_contract::compact::{compact, CompactOptions};
use karmor_contract::segment::{write_segment, SegmentMeta};
use karmor_contract::Event;
use kubectl_karmor::tui::{self, ui, App, Msg, Options};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const CHUNK: usize = 250_000;
const REPEAT: usize = 5;

struct Ui {
    app: App,
    term: Terminal<TestBackend>,
}

impl Ui {
    /// Handles the worker's answers until the view is built, then draws it.
    fn wait_built(&mut self) {
        while self.app.level().building {
            let msg = self.app.next().expect("the worker answers");
            self.app.handle(msg);
        }
        self.draw();
    }

    fn draw(&mut self) {
        loop {
            self.app.settle();
            self.term.draw(|f| ui::draw(f, &self.app)).expect("draw");
            self.app.after_draw();
            if !self.app.busy() {
                break;
            }
        }
    }

    /// Time from the keys to the redrawn screen.
    fn press(&mut self, keys: &[KeyCode]) -> Duration {
        let t = Instant::now();
        for k in keys {
            self.app
                .handle(Msg::Key(KeyEvent::new(*k, KeyModifiers::NONE)));
        }
        self.draw();
        t.elapsed()
    }
}

fn record(
    lines: &mut Vec<Line>,
    rows: usize,
    ui: &Ui,
    what: &str,
    target: &'static str,
    time: Duration,
) {
    let level = ui.app.level();
    lines.push(Line {
        rows,
        what: what.to_string(),
        target,
        time,
        view_rows: level.total.unwrap_or(0),
        held: level.window.len(),
    });
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn typed(prefix: char, text: &str) -> Vec<KeyCode> {
    let mut keys = vec![KeyCode::Char(prefix)];
    keys.extend(text.chars().map(KeyCode::Char));
    keys.push(KeyCode::Enter);
    keys
}

fn clear_input(prefix: char) -> Vec<KeyCode> {
    let mut keys = vec![KeyCode::Char(prefix)];
    keys.extend(std::iter::repeat_n(KeyCode::Backspace, 64));
    keys.push(KeyCode::Enter);
    keys
}

fn clear_filter() -> Vec<KeyCode> {
    clear_input('f')
}

/// A filter on a field that varies within a view's rows (none of its grouping fields, so the
/// built view cannot be narrowed: `events` are grouped again): the key press to the first
/// screen (median of `presses`), PgDn right after that screen, and the press to the whole
/// filtered view; the filter is cleared after each press. Lines: (what, target, time, view
/// rows, rows held).
fn ungrouped_filter(
    ui: &mut Ui,
    tab: &str,
    text: &str,
    presses: usize,
) -> Vec<(String, &'static str, Duration, u64, usize)> {
    let mut firsts = Vec::new();
    let mut out = Vec::new();
    let shot = |ui: &Ui| {
        let level = ui.app.level();
        (level.total.unwrap_or(0), level.window.len())
    };
    for i in 0..presses {
        let t = Instant::now();
        firsts.push(ui.press(&typed('f', text)));
        if i + 1 == presses {
            let (view, held) = shot(ui);
            out.push((
                format!("{tab}: new filter {text} (first screen)"),
                "≤ 0.5 s",
                median(firsts.clone()),
                view,
                held,
            ));
            let building = ui.app.level().building;
            let pgdn = ui.press(&[KeyCode::PageDown]);
            let (view, held) = shot(ui);
            out.push((
                format!(
                    "{tab}: {text}, PgDn after the first screen{}",
                    if building { " (view building)" } else { "" }
                ),
                "≤ 100 ms",
                pgdn,
                view,
                held,
            ));
            ui.wait_built();
            let (view, held) = shot(ui);
            out.push((
                format!("{tab}: {text}, whole filtered view"),
                "-",
                t.elapsed(),
                view,
                held,
            ));
            ui.press(&[KeyCode::Home]);
        }
        ui.press(&clear_filter());
    }
    out
}

struct Line {
    rows: usize,
    what: String,
    target: &'static str,
    time: Duration,
    view_rows: u64,
    held: usize,
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KARMOR_BENCH_ROWS")
        .unwrap_or_else(|_| "10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reuse = std::env::var_os("KARMOR_BENCH_REUSE").is_some();
    let scratch = std::env::var_os("KARMOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(if reuse {
            "karmor-bench-tui".to_string()
        } else {
            format!("karmor-bench-tui-{}", std::process::id())
        });
    let mut lines = Vec::new();
    for &n in &sizes {
        let dir = scratch.join(format!("rows-{n}"));
        let store_path = dir.join("store.duckdb");
        if !(reuse && store_path.exists()) {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            let t = Instant::now();
            let (files, rows) = write_compacted_bundle(&dir.join("bundle"), n);
            let store = Store::open(&store_path).expect("store");
            let report = store.merge_bundle(&dir.join("bundle")).expect("merge");
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            eprintln!(
                "{n} rows: {files} day files ({rows} rows after folding), store built in {:.1?}",
                t.elapsed()
            );
        }
        let store = Store::open(&store_path).expect("store");
        let t = Instant::now();
        let app = tui::open(
            store,
            ObserveQuery::new(ResourceKind::Pod),
            Options {
                scope: "pods -A".into(),
                no_color: false,
                rows: 42,
                prepare_rows: tui::worker::PREPARE_ROWS,
                preview_rows: tui::worker::PREVIEW_ROWS,
            },
        )
        .expect("open the UI");
        let mut ui = Ui {
            app,
            term: Terminal::new(TestBackend::new(200, 50)).expect("terminal"),
        };
        ui.draw();
        let first = t.elapsed();
        record(&mut lines, n, &ui, "first screen (processes)", "-", first);
        // A store this large shows the first screen while the view is built: wait for it, so
        // that the keys below read the whole view.
        ui.wait_built();
        record(
            &mut lines,
            n,
            &ui,
            "processes view built (aggregation)",
            "-",
            t.elapsed(),
        );

        let down: Vec<Duration> = (0..REPEAT * 4)
            .map(|_| ui.press(&[KeyCode::Down]))
            .collect();
        record(&mut lines, n, &ui, "scroll: ↓", "≤ 100 ms", median(down));
        let page: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::PageDown]))
            .collect();
        record(&mut lines, n, &ui, "scroll: PgDn", "≤ 100 ms", median(page));
        let ends: Vec<Duration> = (0..REPEAT)
            .flat_map(|_| [ui.press(&[KeyCode::End]), ui.press(&[KeyCode::Home])])
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "scroll: End / Home",
            "≤ 100 ms",
            median(ends),
        );

        // Sort by COUNT (largest first), then reverse, alternating.
        let count_col = ui
            .app
            .columns()
            .iter()
            .position(|c| c.title == "COUNT")
            .expect("COUNT column");
        let rights = vec![KeyCode::Right; count_col];
        ui.press(&rights);
        let sorts: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::Char('s')]))
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "sort: s on COUNT",
            "≤ 100 ms",
            median(sorts),
        );

        let filters: Vec<Duration> = (0..REPEAT)
            .map(|_| {
                let t = ui.press(&typed('f', "process=/usr/sbin/nginx"));
                ui.press(&clear_filter());
                t
            })
            .collect();
        let _ = ui.press(&typed('f', "process=/usr/sbin/nginx"));
        record(
            &mut lines,
            n,
            &ui,
            "new filter: process=/usr/sbin/nginx",
            "≤ 0.5 s",
            median(filters),
        );
        ui.press(&clear_filter());

        let searches: Vec<Duration> = (0..REPEAT)
            .map(|_| {
                let t = ui.press(&typed('/', "nginx"));
                ui.press(&clear_input('/'));
                t
            })
            .collect();
        // Record with the search applied (its rows), then clear it.
        ui.press(&typed('/', "nginx"));
        record(
            &mut lines,
            n,
            &ui,
            "quick search: /nginx",
            "-",
            median(searches),
        );
        ui.press(&clear_input('/'));

        let drills: Vec<Duration> = (0..REPEAT)
            .map(|_| {
                let t = ui.press(&[KeyCode::Enter]);
                ui.press(&[KeyCode::Esc]);
                t
            })
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "drill-down: Enter (pod → containers)",
            "-",
            median(drills),
        );
        let backs: Vec<Duration> = (0..REPEAT)
            .map(|_| {
                ui.press(&[KeyCode::Enter]);
                ui.press(&[KeyCode::Esc])
            })
            .collect();
        record(&mut lines, n, &ui, "back: Esc", "≤ 100 ms", median(backs));

        // Filters on fields that vary within the processes view's rows: a selective one and
        // one that keeps most rows.
        for text in ["uid=0", "source=ebpf"] {
            for (what, target, time, view_rows, held) in
                ungrouped_filter(&mut ui, "processes", text, 3)
            {
                lines.push(Line {
                    rows: n,
                    what,
                    target,
                    time,
                    view_rows,
                    held,
                });
            }
        }

        // The files tab: the largest view. Its first screen is read from the first pods'
        // events while the view is built; then the whole view.
        let t = Instant::now();
        ui.press(&[KeyCode::Tab]);
        record(
            &mut lines,
            n,
            &ui,
            "tab: files view, first screen",
            "-",
            t.elapsed(),
        );
        ui.wait_built();
        record(
            &mut lines,
            n,
            &ui,
            "tab: files view built (aggregation)",
            "-",
            t.elapsed(),
        );
        let down: Vec<Duration> = (0..REPEAT * 4)
            .map(|_| ui.press(&[KeyCode::PageDown]))
            .collect();
        record(&mut lines, n, &ui, "files: PgDn", "≤ 100 ms", median(down));
        let ends: Vec<Duration> = (0..REPEAT)
            .flat_map(|_| [ui.press(&[KeyCode::End]), ui.press(&[KeyCode::Home])])
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: End / Home",
            "≤ 100 ms",
            median(ends),
        );
        let count_col = ui
            .app
            .columns()
            .iter()
            .position(|c| c.title == "COUNT")
            .expect("COUNT column");
        ui.press(&[KeyCode::Home]);
        let col_now = ui.app.level().column;
        let moves = if count_col >= col_now {
            vec![KeyCode::Right; count_col - col_now]
        } else {
            vec![KeyCode::Left; col_now - count_col]
        };
        ui.press(&moves);
        let sorts: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::Char('s')]))
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: sort s on COUNT (top-N, before idle preparation)",
            "≤ 100 ms",
            median(sorts),
        );
        // What the worker does while the user reads the screen (the view's sort orders, kept
        // as tables of row numbers), run at once here; then sorts read kept orders.
        let t = Instant::now();
        ui.app.prepare();
        ui.draw();
        record(
            &mut lines,
            n,
            &ui,
            "files: idle preparation (sort orders)",
            "-",
            t.elapsed(),
        );
        let sorts: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::Char('s')]))
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: sort s on COUNT (kept orders)",
            "≤ 100 ms",
            median(sorts),
        );
        let down: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::PageDown]))
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: sorted, PgDn",
            "≤ 100 ms",
            median(down),
        );
        let ends: Vec<Duration> = (0..REPEAT)
            .flat_map(|_| [ui.press(&[KeyCode::End]), ui.press(&[KeyCode::Home])])
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: sorted, End / Home",
            "≤ 100 ms",
            median(ends),
        );
        let path_col = ui
            .app
            .columns()
            .iter()
            .position(|c| c.title == "PATH")
            .expect("PATH column");
        ui.press(&vec![KeyCode::Left; count_col - path_col]);
        let sorts: Vec<Duration> = (0..REPEAT)
            .map(|_| ui.press(&[KeyCode::Char('s')]))
            .collect();
        record(
            &mut lines,
            n,
            &ui,
            "files: sort s on PATH (kept orders)",
            "≤ 100 ms",
            median(sorts),
        );
        // Back to COUNT, largest first, as the filters below were measured before.
        ui.press(&vec![KeyCode::Right; count_col - path_col]);
        ui.press(&[KeyCode::Char('s')]);
        let filters: Vec<Duration> = (0..REPEAT)
            .map(|_| {
                let t = ui.press(&typed('f', "path=/etc/*"));
                ui.press(&clear_filter());
                t
            })
            .collect();
        let _ = ui.press(&typed('f', "path=/etc/*"));
        record(
            &mut lines,
            n,
            &ui,
            "files: new filter path=/etc/*",
            "≤ 0.5 s",
            median(filters),
        );
        ui.press(&clear_filter());
        // A filter on a column the resource determines (the namespace of a pod).
        // (3 presses: before this filter narrowed the view, each one grouped `events` again.)
        let filters: Vec<Duration> = (0..3)
            .map(|_| {
                let t = ui.press(&typed('f', "namespace=storefront"));
                ui.press(&clear_filter());
                t
            })
            .collect();
        let _ = ui.press(&typed('f', "namespace=storefront"));
        record(
            &mut lines,
            n,
            &ui,
            "files: new filter namespace=storefront",
            "≤ 0.5 s",
            median(filters),
        );
        let t = ui.press(&clear_filter());
        record(
            &mut lines,
            n,
            &ui,
            "files: filter cleared (full view again)",
            "-",
            t,
        );
        let graph = ui.press(&[KeyCode::Char('g')]);
        record(
            &mut lines,
            n,
            &ui,
            "files: g graph (histogram + top 10)",
            "-",
            graph,
        );
        ui.press(&[KeyCode::Char('g')]);
        // Filters on fields that vary within the files view's rows: a selective one (denied
        // opens, 0.5 % of file rows) and one that keeps most rows.
        for text in ["result=Permission denied", "result=Passed"] {
            for (what, target, time, view_rows, held) in ungrouped_filter(&mut ui, "files", text, 3)
            {
                lines.push(Line {
                    rows: n,
                    what,
                    target,
                    time,
                    view_rows,
                    held,
                });
            }
        }
    }
    println!();
    println!("| rows | key press → redrawn screen | median | target | view rows | rows held |");
    println!("|---:|---|---:|---|---:|---:|");
    for l in &lines {
        println!(
            "| {} | {} | {:.1} ms | {} | {} | {} |",
            l.rows,
            l.what,
            l.time.as_secs_f64() * 1e3,
            l.target,
            l.view_rows,
            l.held
        );
    }
    if !reuse {
        let _ = std::fs::remove_dir_all(&scratch);
    }
}

/// `n` synthetic rows as the collectors' day compaction leaves them (design §4): per node and
/// day one `day-<sha16>.parquet` under `hour=__HIVE_DEFAULT_PARTITION__`, made by the
/// contract's own [`compact`] (rows folded, sorted by namespace, workload, pod, container, op,
/// 122,880-row groups) from the segments the rows were written in, listed with `replaces`.
/// Returns (day files, rows in them).
fn write_compacted_bundle(dir: &Path, n: usize) -> (usize, u64) {
    let segments = dir.join("segments");
    let mut inputs: BTreeMap<(String, String), Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut rows = karmor_testdata::synthetic::events(n, 42).peekable();
    let mut part = 0usize;
    while rows.peek().is_some() {
        chunk.extend(rows.by_ref().take(CHUNK));
        let mut by_day: BTreeMap<(String, String), Vec<Event>> = BTreeMap::new();
        for e in chunk.drain(..) {
            let hour_dir = partition_dir(&e.node, e.ts_first);
            let day_dir = hour_dir.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            by_day.entry((e.node.clone(), day_dir)).or_default().push(e);
        }
        for ((node, day_dir), mut events) in by_day {
            let path = segments
                .join(&day_dir)
                .join(format!("seg-{part:04}.parquet"));
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("segment dir");
            let meta = SegmentMeta {
                schema_version: karmor_contract::schema::schema_version(),
                producer: "karmor bench collector".into(),
                node: node.clone(),
                events_seen: events.iter().map(|e| e.count).sum(),
                windows: 1,
                ..SegmentMeta::default()
            };
            let w = write_segment(&path, &mut events, &meta).expect("segment");
            inputs
                .entry((node, day_dir))
                .or_default()
                .push((path, w.sha256));
        }
        part += 1;
    }
    let tmp = dir.join("compact-tmp");
    std::fs::create_dir_all(&tmp).expect("scratch");
    let options = CompactOptions {
        run_rows: 262_144,
        ..CompactOptions::new("karmor bench collector", &tmp)
    };
    let mut manifest = new_manifest("karmor bench collector");
    for ((node, day_dir), files) in inputs {
        let partition = format!("{day_dir}/hour=__HIVE_DEFAULT_PARTITION__");
        std::fs::create_dir_all(dir.join(&partition)).expect("day partition");
        let pending = dir.join(&partition).join("day-pending.parquet");
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        let done = compact(&paths, &pending, &options).expect("day compaction");
        let rel = format!("{partition}/day-{}.parquet", &done.written.sha256[..16]);
        std::fs::rename(&pending, dir.join(&rel)).expect("rename the day file");
        manifest.files.push(ManifestFile {
            path: rel,
            node,
            sha256: done.written.sha256.clone(),
            bytes: done.written.bytes,
            rows: done.written.rows,
            first: format_ts(done.written.ts_first),
            last: format_ts(done.written.ts_last),
            events_seen: done.meta.events_seen,
            events_dropped: done.meta.events_dropped,
            replaces: files.into_iter().map(|(_, sha)| sha).collect(),
        });
    }
    let _ = std::fs::remove_dir_all(&segments);
    let _ = std::fs::remove_dir_all(&tmp);
    write_manifest(dir, &mut manifest).expect("manifest");
    (manifest.files.len(), manifest.totals.rows)
}
