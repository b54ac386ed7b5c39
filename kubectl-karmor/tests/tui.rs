//! `observe --tui` driven by key events on ratatui's `TestBackend`, over the committed demo
//! bundle: every assertion reads the rendered screen and compares it with what `observe`
//! (the analyzer's summary, or the binary) says for the same scope.

use std::path::{Path, PathBuf};
use std::process::Command;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use karmor_analyzer::filter;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::Store;
use karmor_contract::Op;
use kubectl_karmor::tui::{self, ui, App, Msg, Options};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const NS: &str = "wordpress-mysql";

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/demo")
}

fn demo_store() -> Store {
    let store = Store::in_memory().expect("store");
    let report = store.merge_bundle(&demo()).expect("merge the demo bundle");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    store
}

/// The demo's time range (the activity buckets' span).
fn data_range(store: &Store) -> karmor_analyzer::browse::TimeRange {
    karmor_analyzer::browse::data_range(store)
        .unwrap()
        .unwrap_or(karmor_analyzer::browse::TimeRange {
            first_ns: 0,
            last_ns: 0,
        })
}

/// A `kind` question over every namespace.
fn all_namespaces(kind: ResourceKind) -> ObserveQuery {
    let mut q = ObserveQuery::new(kind);
    q.namespace = NamespaceScope::All;
    q
}

/// `observe pods -n wordpress-mysql`'s question.
fn pods_query() -> ObserveQuery {
    let mut q = ObserveQuery::new(ResourceKind::Pod);
    q.namespace = NamespaceScope::One(NS.into());
    q
}

/// `observe namespaces -A`'s question.
fn namespaces_query() -> ObserveQuery {
    ObserveQuery::new(ResourceKind::Namespace)
}

struct Ui {
    app: App,
    term: Terminal<TestBackend>,
}

impl Ui {
    fn open(query: ObserveQuery, width: u16, height: u16) -> Ui {
        Ui::open_with(query, width, height, true)
    }

    fn open_with(query: ObserveQuery, width: u16, height: u16, no_color: bool) -> Ui {
        Ui::open_store(demo_store(), query, width, height, no_color)
    }

    fn open_store(
        store: Store,
        query: ObserveQuery,
        width: u16,
        height: u16,
        no_color: bool,
    ) -> Ui {
        Ui::open_options(store, query, width, height, no_color, u64::MAX)
    }

    /// Every view shows a preview of its first screen while it is built.
    fn open_previewing(query: ObserveQuery, width: u16, height: u16) -> Ui {
        Ui::open_options(demo_store(), query, width, height, true, 0)
    }

    fn open_options(
        store: Store,
        query: ObserveQuery,
        width: u16,
        height: u16,
        no_color: bool,
        preview_rows: u64,
    ) -> Ui {
        let app = tui::open(
            store,
            query,
            Options {
                scope: "test".into(),
                no_color,
                rows: height.saturating_sub(8),
                // Every view is prepared when idle (the demo's are small): the tests read
                // kept sort orders and the index as well as top-N pages.
                prepare_rows: 0,
                preview_rows,
            },
        )
        .expect("open the UI");
        let term = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        let mut ui = Ui { app, term };
        ui.draw();
        ui
    }

    /// Waits for the worker's answers and draws until the screen needs nothing more.
    fn draw(&mut self) -> String {
        loop {
            self.app.settle();
            self.term.draw(|f| ui::draw(f, &self.app)).expect("draw");
            self.app.after_draw();
            if !self.app.busy() {
                break;
            }
        }
        self.screen()
    }

    /// Waits until the shown view is built (it showed a preview), then draws.
    /// Checks that `preview` (the screen shown) is a preview while the view is built, then
    /// returns its table lines (headed by `word`) and the screen once the view is built.
    fn preview_then_built(&mut self, preview: &str, word: &str) -> (Vec<String>, String) {
        assert!(self.app.level().building, "{preview}");
        assert!(preview.contains("+ (building the view…)"), "{preview}");
        let first = self.table_lines(word);
        let screen = self.built();
        assert!(!screen.contains("building"), "{screen}");
        (first, screen)
    }

    fn built(&mut self) -> String {
        while self.app.level().building {
            let msg = self.app.next().expect("the worker answers");
            self.app.handle(msg);
        }
        self.draw()
    }

    fn screen(&self) -> String {
        let buf = self.term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn key(&mut self, code: KeyCode) -> String {
        self.app
            .handle(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.draw()
    }

    fn keys(&mut self, codes: &[KeyCode]) -> String {
        for c in codes {
            self.app
                .handle(Msg::Key(KeyEvent::new(*c, KeyModifiers::NONE)));
        }
        self.draw()
    }

    fn type_text(&mut self, text: &str) -> String {
        for c in text.chars() {
            self.app.handle(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        self.draw()
    }

    /// Types a filter after `f` and submits it.
    fn filter(&mut self, text: &str) -> String {
        self.key(KeyCode::Char('f'));
        self.type_text(text);
        self.key(KeyCode::Enter)
    }

    /// Table lines: those after the column header line, up to the input line.
    fn table_lines(&self, header_word: &str) -> Vec<String> {
        let screen = self.screen();
        let lines: Vec<&str> = screen.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.contains(header_word) && l.contains("COUNT"))
            .expect("a table header");
        lines[start + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.to_string())
            .collect()
    }
}

/// The last 16 characters of a path (long paths are drawn as `…` and their end).
fn tail(path: &str) -> &str {
    let n = path.chars().count();
    let skip = n.saturating_sub(16);
    let at = path.char_indices().nth(skip).map_or(0, |(i, _)| i);
    &path[at..]
}

/// `coverage -A` on the demo (the binary's table): container workloads whose start-up is not
/// seen, and container workloads (hosts have no start-up: `-`).
fn coverage_startup() -> (usize, usize) {
    let out = Command::new(BIN)
        .args(["coverage", "-A", "--bundle"])
        .arg(demo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut unseen, mut workloads) = (0, 0);
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || !["partial", "learning", "stable"].contains(&cols[1]) {
            continue;
        }
        match cols[3] {
            "not" => {
                unseen += 1;
                workloads += 1;
            }
            "seen" => workloads += 1,
            _ => {}
        }
    }
    (unseen, workloads)
}

fn header_rows(screen: &str) -> u64 {
    let at = screen.find("rows: ").expect("rows in the header") + 6;
    // `84+ (building the view…)` while a preview is shown: its rows.
    let digits: String = screen[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a row count")
}

#[test]
fn opens_with_header_tabs_table_and_footer() {
    let mut ui = Ui::open(namespaces_query(), 160, 40);
    let screen = ui.draw();
    let store = demo_store();
    let mut q = namespaces_query();
    q.operations = vec![Op::Process];
    let expected = summarize(&store, &q).unwrap().processes.unwrap();
    assert!(screen.contains("karmor observe"), "{screen}");
    assert!(screen.contains("[Processes]"), "{screen}");
    assert!(
        screen.contains(" Files ") && screen.contains(" Network "),
        "{screen}"
    );
    assert!(
        screen.contains("time: 2026-11-20T08:00:01Z .. 2026-11-20T13:59:58Z"),
        "{screen}"
    );
    // The health is coverage's: the demo's container workloads whose start-up it misses.
    let (unseen, workloads) = coverage_startup();
    assert!(unseen > 0 && unseen < workloads, "{unseen} of {workloads}");
    assert!(
        screen.contains(&format!(
            "health: partial (start-up not seen for {unseen} of {workloads} workloads)"
        )),
        "{screen}"
    );
    assert_eq!(header_rows(&screen), expected.len() as u64, "{screen}");
    assert!(
        screen.contains("f filter") && screen.contains("q quit"),
        "{screen}"
    );
    for col in [
        "NAMESPACE",
        "PARENT",
        "PROCESS",
        "RESULT",
        "COUNT",
        "ACTIVITY",
    ] {
        assert!(screen.contains(col), "no column {col}:\n{screen}");
    }
    // The first rows are observe's first rows, in its order.
    let lines = ui.table_lines("PARENT");
    for (line, row) in lines.iter().zip(&expected).take(5) {
        assert!(line.contains(&row.resource), "{line} vs {row:?}");
        assert!(
            line.contains(&row.seen.count.to_string()),
            "{line} vs {row:?}"
        );
        assert!(
            line.contains(&ui::table_time(&row.seen.first_seen)),
            "{line} vs {row:?}"
        );
    }
}

#[test]
fn only_the_visible_window_is_held_and_end_reaches_the_last_row() {
    let mut ui = Ui::open(namespaces_query(), 160, 30);
    let store = demo_store();
    let mut q = namespaces_query();
    q.operations = vec![Op::File];
    let expected = summarize(&store, &q).unwrap().files.unwrap();
    ui.key(KeyCode::Tab);
    let body = u64::from(ui.app.body_rows.get());
    assert!(
        expected.len() as u64 > 3 * body,
        "the demo has more file rows than screens"
    );
    assert!(ui.app.level().window.len() as u64 <= 2 * body);
    let screen = ui.key(KeyCode::End);
    assert!(ui.app.level().window.len() as u64 <= 2 * body);
    // The last row drawn is observe's last row, under the cursor (long paths are cut).
    let last = expected.last().unwrap();
    let lines = ui.table_lines("PATH");
    let line = lines.last().unwrap();
    let path = last.path.as_deref().unwrap();
    assert!(line.contains(tail(path)), "{line} vs {last:?}\n{screen}");
    assert!(
        line.contains(&ui::table_time(&last.seen.first_seen)),
        "{line} vs {last:?}"
    );
    assert_eq!(ui.app.level().selected, expected.len() as u64 - 1);
    assert_eq!(ui.app.level().current().unwrap().keys[2], path);
    // Paging back up reads earlier rows again.
    let screen = ui.keys(&[KeyCode::Home]);
    let first = &expected[0];
    assert!(
        ui.table_lines("PATH")[0].contains(tail(first.path.as_deref().unwrap())),
        "{screen}"
    );
    assert_eq!(
        ui.app.level().current().unwrap().keys[2],
        first.path.clone().unwrap()
    );
}

#[test]
fn filter_narrows_to_exactly_observe_f_rows() {
    let mut ui = Ui::open(pods_query(), 200, 60);
    let text = "process=/usr/sbin/*||parent=/bin/sh";
    let screen = ui.filter(text);
    let store = demo_store();
    let mut q = pods_query();
    q.operations = vec![Op::Process];
    q.filter = Some(filter::compile(text).unwrap());
    let expected = summarize(&store, &q).unwrap().processes.unwrap();
    assert!(
        !expected.is_empty() && expected.len() < 40,
        "{}",
        expected.len()
    );
    assert_eq!(header_rows(&screen), expected.len() as u64, "{screen}");
    assert!(screen.contains(&format!("filter: {text}")), "{screen}");
    let lines = ui.table_lines("PARENT");
    assert_eq!(lines.len(), expected.len(), "{screen}");
    for (line, row) in lines.iter().zip(&expected) {
        for part in [
            row.resource.as_str(),
            row.parent.as_deref().unwrap_or("-"),
            row.process.as_deref().unwrap_or("-"),
        ] {
            assert!(line.contains(part), "{line} lacks {part}");
        }
        let count = format!(" {} ", row.seen.count);
        assert!(line.contains(&count), "{line} lacks {count}");
    }
}

#[test]
fn a_bad_filter_shows_its_error_at_its_position_and_stays_open() {
    let mut ui = Ui::open(pods_query(), 160, 40);
    let before = header_rows(&ui.screen());
    let text = "process=/bin/sh&&(user=root";
    let err = filter::compile(text).unwrap_err();
    let screen = ui.filter(text);
    let lines: Vec<&str> = screen.lines().collect();
    let input = lines
        .iter()
        .position(|l| l.starts_with(&format!("filter> {text}")))
        .unwrap_or_else(|| panic!("the filter is still being edited:\n{screen}"));
    let caret = lines[input + 1];
    let at = caret.find('^').expect("a caret under the error");
    assert_eq!(at, "filter> ".len() + err.column() - 1, "{screen}");
    assert!(caret.contains(&err.message), "{caret}");
    // Nothing was applied; Esc leaves the input, the table is unchanged.
    assert_eq!(header_rows(&screen), before);
    let screen = ui.key(KeyCode::Esc);
    assert!(!screen.contains("filter>"), "{screen}");
    assert!(screen.contains("filter: -"), "{screen}");
}

#[test]
fn the_field_picker_checks_fields_and_adds_them() {
    let mut ui = Ui::open(pods_query(), 160, 40);
    ui.key(KeyCode::Char('f'));
    let screen = ui.keys(&[KeyCode::Down, KeyCode::Down]);
    assert!(screen.contains("›[ ] pod"), "{screen}");
    let screen = ui.key(KeyCode::Char(' '));
    assert!(screen.contains("›[x] pod"), "{screen}");
    // Down to process, check it; Space again unchecks, a third time checks.
    ui.keys(&[KeyCode::Down; 4]);
    let screen = ui.keys(&[KeyCode::Char(' '); 3]);
    assert!(screen.contains("›[x] process"), "{screen}");
    assert!(screen.contains("[x] pod"), "{screen}");
    // Enter adds both, the cursor on the first value; typing goes to the text.
    let screen = ui.key(KeyCode::Enter);
    assert!(screen.contains("filter> pod=&&process="), "{screen}");
    assert!(!screen.contains("[x]"), "{screen}");
    ui.type_text("wordpress-*");
    ui.key(KeyCode::End);
    let screen = ui.type_text("/usr/sbin/*");
    assert!(
        screen.contains("filter> pod=wordpress-*&&process=/usr/sbin/*"),
        "{screen}"
    );
    let screen = ui.key(KeyCode::Enter);
    assert!(
        screen.contains("filter: pod=wordpress-*&&process=/usr/sbin/*"),
        "{screen}"
    );
}

#[test]
fn sort_orders_by_the_selected_column_and_again_reverses() {
    let mut ui = Ui::open(pods_query(), 200, 50);
    let store = demo_store();
    let mut q = pods_query();
    q.operations = vec![Op::Process];
    let rows = summarize(&store, &q).unwrap().processes.unwrap();
    let max = rows.iter().map(|r| r.seen.count).max().unwrap();
    let min = rows.iter().map(|r| r.seen.count).min().unwrap();
    // POD PARENT PROCESS RESULT COUNT: four steps right.
    let cols = ui.app.columns();
    let count_col = cols.iter().position(|c| c.title == "COUNT").unwrap();
    for _ in 0..count_col {
        ui.key(KeyCode::Right);
    }
    let counts = |ui: &Ui| -> Vec<u64> {
        let screen = ui.screen();
        let header = screen
            .lines()
            .find(|l| l.contains("PARENT") && l.contains("COUNT"))
            .unwrap()
            .to_string();
        let at = header.find("COUNT").unwrap();
        ui.table_lines("PARENT")
            .iter()
            .map(|l| {
                let tail: String = l.chars().skip(header[..at].chars().count()).collect();
                tail.split_whitespace().next().unwrap().parse().unwrap()
            })
            .collect()
    };
    let screen = ui.key(KeyCode::Char('s'));
    assert!(screen.contains("COUNT▼"), "{screen}");
    let down = counts(&ui);
    assert_eq!(down[0], max, "{screen}");
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    let screen = ui.key(KeyCode::Char('s'));
    assert!(screen.contains("COUNT▲"), "{screen}");
    let up = counts(&ui);
    assert_eq!(up[0], min, "{screen}");
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
}

#[test]
fn drill_down_and_back_restore_the_view() {
    let mut ui = Ui::open(namespaces_query(), 180, 40);
    for _ in 0..20 {
        if ui.app.level().current().unwrap().resource == NS {
            break;
        }
        ui.key(KeyCode::Down);
    }
    let top = ui.key(KeyCode::Right);
    let row = ui.app.level().current().unwrap().clone();
    let workloads = ui.key(KeyCode::Enter);
    assert!(
        workloads.contains(&format!("› namespaces › namespace {}", row.resource)),
        "{workloads}"
    );
    assert!(workloads.contains("WORKLOAD"), "{workloads}");
    // Every row of the drilled view belongs to that namespace's workloads (observe workloads -n).
    let store = demo_store();
    let mut q = ObserveQuery::new(ResourceKind::Workload);
    q.namespace = NamespaceScope::One(row.resource.clone());
    q.operations = vec![Op::Process];
    let expected = summarize(&store, &q).unwrap().processes.unwrap();
    assert_eq!(
        header_rows(&workloads),
        expected.len() as u64,
        "{workloads}"
    );
    let pods = ui.key(KeyCode::Enter);
    assert!(pods.contains("POD"), "{pods}");
    assert_eq!(ui.key(KeyCode::Esc), workloads);
    assert_eq!(ui.key(KeyCode::Char('b')), top);
}

#[test]
fn enter_on_a_container_row_shows_the_behaviour_with_its_rows() {
    let mut ui = Ui::open(pods_query(), 200, 50);
    let containers = ui.key(KeyCode::Enter);
    assert!(containers.contains("CONTAINER"), "{containers}");
    let row = ui.app.level().current().unwrap().clone();
    let detail = ui.key(KeyCode::Enter);
    for label in [
        "Events:",
        "First seen:",
        "Pids:",
        "Nodes:",
        "Containers:",
        "Results:",
    ] {
        assert!(detail.contains(label), "no {label}:\n{detail}");
    }
    assert!(
        detail.contains(&format!("Events:     {} in", row.count)),
        "{detail}"
    );
    assert!(detail.contains("Rows behind it"), "{detail}");
    assert!(
        detail.contains("PID") && detail.contains("ARGS"),
        "{detail}"
    );
    assert_eq!(ui.key(KeyCode::Esc), containers);
}

#[test]
fn export_writes_what_output_json_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Ui::open(pods_query(), 160, 40);
    let text = "process=/usr/sbin/*";
    ui.filter(text);
    ui.key(KeyCode::Char('e'));
    let path = dir.path().join("view.json");
    let clear = vec![KeyCode::Backspace; 40];
    ui.keys(&clear);
    ui.type_text(path.to_str().unwrap());
    let screen = ui.key(KeyCode::Enter);
    assert!(screen.contains("exported"), "{screen}");
    let exported = std::fs::read_to_string(&path).unwrap();
    let out = Command::new(BIN)
        .args(["observe", "pods", "-n", NS, "-o", "process", "-f", text])
        .args(["--output", "json", "--bundle"])
        .arg(demo())
        .env_remove("KARMOR_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(exported, String::from_utf8(out.stdout).unwrap());
    // CSV goes through observe's CSV renderer too.
    ui.key(KeyCode::Char('e'));
    ui.keys(&clear);
    let csv = dir.path().join("view.csv");
    ui.type_text(csv.to_str().unwrap());
    ui.key(KeyCode::Enter);
    let out = Command::new(BIN)
        .args(["observe", "pods", "-n", NS, "-o", "process", "-f", text])
        .args(["--output", "csv", "--bundle"])
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        String::from_utf8(out.stdout).unwrap()
    );
}

#[test]
fn tab_switches_the_operation() {
    let mut ui = Ui::open(pods_query(), 200, 40);
    let screen = ui.key(KeyCode::Tab);
    assert!(screen.contains("[Files]"), "{screen}");
    assert!(
        screen.contains("PATH") && screen.contains("ACCESS"),
        "{screen}"
    );
    let screen = ui.key(KeyCode::Tab);
    assert!(screen.contains("[Network]"), "{screen}");
    assert!(
        screen.contains("PEER") && screen.contains("PORT"),
        "{screen}"
    );
}

#[test]
fn quick_search_keeps_the_matching_rows() {
    let mut ui = Ui::open(pods_query(), 200, 60);
    let all = header_rows(&ui.screen());
    ui.key(KeyCode::Char('/'));
    ui.type_text("APACHE2");
    let screen = ui.key(KeyCode::Enter);
    let kept = header_rows(&screen);
    assert!(kept > 0 && kept < all, "{kept} of {all}");
    assert!(screen.contains("search: APACHE2"), "{screen}");
    for line in ui.table_lines("PARENT") {
        assert!(line.to_lowercase().contains("apache2"), "{line}");
    }
}

#[test]
fn g_draws_a_time_histogram_and_the_top_items() {
    let mut ui = Ui::open(pods_query(), 200, 50);
    let screen = ui.key(KeyCode::Char('g'));
    assert!(screen.contains("events over time"), "{screen}");
    assert!(screen.contains("top processes by events"), "{screen}");
    // The top process is the one with the most events in observe's rows.
    let store = demo_store();
    let mut q = pods_query();
    q.operations = vec![Op::Process];
    let rows = summarize(&store, &q).unwrap().processes.unwrap();
    let mut per: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &rows {
        *per.entry(r.process.clone().unwrap_or_default())
            .or_default() += r.seen.count;
    }
    let (top, n) = per
        .iter()
        .max_by_key(|(p, n)| (**n, std::cmp::Reverse((*p).clone())))
        .unwrap();
    let line = screen
        .lines()
        .find(|l| l.contains('█') && l.contains(&format!(" {n}")))
        .unwrap_or_else(|| panic!("no bar for {top} ({n}):\n{screen}"));
    let name = top.rsplit('/').next().unwrap();
    assert!(line.contains(name), "{line}");
    // The sparkline column shows activity.
    assert!(
        screen.lines().any(|l| l.contains('▁') || l.contains('█')),
        "{screen}"
    );
}

#[test]
fn p_shows_the_policy_recommend_drafts_for_the_workload() {
    let mut q = ObserveQuery::new(ResourceKind::Workload);
    q.namespace = NamespaceScope::One(NS.into());
    let mut ui = Ui::open(q, 160, 50);
    let row = ui.app.level().current().unwrap().clone();
    let screen = ui.key(KeyCode::Char('p'));
    assert!(
        screen.contains(&format!("recommend {}", row.resource)),
        "{screen}"
    );
    assert!(screen.contains("kind: KubeArmorPolicy"), "{screen}");
    let back = ui.key(KeyCode::Esc);
    assert!(!back.contains("kind: KubeArmorPolicy"), "{back}");
}

#[test]
fn help_lists_every_key() {
    let mut ui = Ui::open(pods_query(), 160, 40);
    let screen = ui.key(KeyCode::Char('?'));
    for (key, what) in ui::KEYS {
        assert!(screen.contains(key), "no {key}:\n{screen}");
        assert!(screen.contains(what), "no {what}:\n{screen}");
    }
    let screen = ui.key(KeyCode::Char('x'));
    assert!(!screen.contains("Any key closes"), "{screen}");
}

#[test]
fn a_terminal_too_small_gets_a_message() {
    let mut ui = Ui::open(pods_query(), 40, 10);
    let screen = ui.draw();
    assert!(screen.contains("Terminal too small (40x10)"), "{screen}");
    assert!(!screen.contains("COUNT"), "{screen}");
}

#[test]
fn no_color_draws_without_colours() {
    let colours = |no_color: bool| {
        let ui = Ui::open_with(pods_query(), 160, 40, no_color);
        let buf = ui.term.backend().buffer().clone();
        buf.content()
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .count()
    };
    assert!(colours(false) > 0);
    assert_eq!(colours(true), 0);
}

#[test]
fn tui_on_a_non_terminal_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["observe", "pods", "-n", NS, "--tui", "--bundle"])
        .arg(demo())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tui needs a terminal, and standard output is not one"),
        "{err}"
    );
}

#[test]
fn live_rows_arrive_without_moving_the_cursor_or_the_scroll() {
    use karmor_testdata::demo;
    use kubectl_karmor::tui::LiveEvent;
    let events = demo::events();
    let noon = demo::at(11, 0, 0, 0);
    let (early, late): (Vec<_>, Vec<_>) = events.iter().cloned().partition(|e| e.ts_first < noon);
    let mut ui = Ui::open_store(Store::in_memory().unwrap(), pods_query(), 200, 30, true);
    let screen = ui.draw();
    assert_eq!(header_rows(&screen), 0, "{screen}");
    ui.app.handle(Msg::Live(LiveEvent::Rows(early.clone())));
    let screen = ui.draw();
    let first = header_rows(&screen);
    assert!(first > 0, "{screen}");
    assert!(
        screen.contains(&format!("live: {} rows received", early.len())),
        "{screen}"
    );
    // Scroll down a page and a bit; the next batch keeps cursor, scroll and sort.
    ui.key(KeyCode::PageDown);
    ui.keys(&[KeyCode::Down, KeyCode::Down]);
    let (selected, top) = (ui.app.level().selected, ui.app.level().top);
    assert!(top > 0 && selected > top, "{selected} {top}");
    ui.app.handle(Msg::Live(LiveEvent::Rows(late.clone())));
    let screen = ui.draw();
    assert_eq!(
        (ui.app.level().selected, ui.app.level().top),
        (selected, top)
    );
    assert!(
        screen.contains(&format!("live: {} rows received", events.len())),
        "{screen}"
    );
    // The view now holds exactly what observe says of all the rows.
    let all = Store::in_memory().unwrap();
    all.append_live(&events).unwrap();
    let mut q = pods_query();
    q.operations = vec![Op::Process];
    let expected = summarize(&all, &q).unwrap().processes.unwrap();
    assert!(expected.len() as u64 > first);
    assert_eq!(header_rows(&screen), expected.len() as u64, "{screen}");
}

#[test]
fn pages_of_a_sorted_view_are_slices_of_one_total_order_from_either_end() {
    use karmor_analyzer::browse::{self, Arrangement};
    let store = demo_store();
    let q = pods_query();
    let range = data_range(&store);
    let total = browse::build_view(&store, 3, &q, Op::File, range).unwrap();
    assert!(total > 40, "the demo's files view has {total} rows");
    let count_col = browse::columns(&q, Op::File)
        .iter()
        .position(|c| c.title == "COUNT")
        .unwrap();
    // observe's order (pages are ranges of the stored numbering), then COUNT down and up.
    for sort in [None, Some((count_col, true)), Some((count_col, false))] {
        let how = Arrangement { sort, search: None };
        let a = browse::arrange(&store, 3, &q, Op::File, &how).unwrap();
        assert_eq!(a.total, total);
        let all = browse::page(&store, &a, Op::File, 0, total).unwrap();
        assert_eq!(all.len() as u64, total);
        let rns: Vec<u64> = all.iter().map(|r| r.rn).collect();
        assert_eq!(rns, (1..=total).collect::<Vec<_>>());
        let counts: Vec<u64> = all.iter().map(|r| r.count).collect();
        match sort {
            Some((_, true)) => assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}"),
            Some((_, false)) => assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}"),
            // observe's own order of the same rows.
            None => {
                let mut q1 = q.clone();
                q1.operations = vec![Op::File];
                let files = summarize(&store, &q1).unwrap().files.unwrap();
                let theirs: Vec<(Option<String>, u64)> = files
                    .iter()
                    .map(|f| (f.path.clone(), f.seen.count))
                    .collect();
                let ours: Vec<(Option<String>, u64)> = all
                    .iter()
                    .map(|r| (Some(r.keys[2].clone()).filter(|p| p != "-"), r.count))
                    .collect();
                assert_eq!(ours, theirs);
            }
        }
        // Every row once: a total order never repeats or skips a row across pages.
        let mut keys: Vec<String> = all
            .iter()
            .map(|r| format!("{:?}|{}|{:?}", r.namespace, r.resource, r.keys))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len() as u64, total);
        // Windows near the start read forward, near the end backward: the same rows.
        for offset in [0, 1, total / 2 - 1, total / 2, total - 7, total - 1] {
            for limit in [1, 3, 7] {
                let got = browse::page(&store, &a, Op::File, offset, limit).unwrap();
                let end = (offset + limit).min(total) as usize;
                assert_eq!(
                    got,
                    all[offset as usize..end],
                    "offset {offset} limit {limit}"
                );
            }
        }
        // A behaviour's detail is the row at its number, from either end.
        for rn in [1, total] {
            let d = browse::detail(&store, &a, &q, Op::File, rn).unwrap();
            assert_eq!(d.count, all[rn as usize - 1].count, "row {rn}");
        }
    }
}

#[test]
fn a_filter_on_the_views_own_columns_narrows_to_exactly_observe_f_rows() {
    let mut ui = Ui::open(pods_query(), 220, 70);
    ui.key(KeyCode::Tab);
    let all = header_rows(&ui.screen());
    // Both fields are columns of the files view: the UI filters the view it has.
    let text = "path=/etc/*&&process!=/bin/sh";
    let screen = ui.filter(text);
    let store = demo_store();
    let mut q = pods_query();
    q.operations = vec![Op::File];
    q.filter = Some(filter::compile(text).unwrap());
    let expected = summarize(&store, &q).unwrap().files.unwrap();
    assert!(
        !expected.is_empty() && (expected.len() as u64) < all,
        "{} of {all}",
        expected.len()
    );
    assert_eq!(header_rows(&screen), expected.len() as u64, "{screen}");
    let lines = ui.table_lines("PATH");
    for (line, row) in lines.iter().zip(&expected) {
        let path = row.path.as_deref().unwrap_or("-");
        assert!(line.contains(tail(path)), "{line} lacks {path}");
        let count = format!(" {} ", row.seen.count);
        assert!(line.contains(&count), "{line} lacks {count}");
    }
    // The filter cleared: the whole view again.
    ui.key(KeyCode::Char('f'));
    ui.keys(&vec![KeyCode::Backspace; text.len()]);
    let screen = ui.key(KeyCode::Enter);
    assert_eq!(header_rows(&screen), all, "{screen}");
}

#[test]
fn kept_sort_orders_and_the_index_read_the_same_pages_as_top_n_queries() {
    use karmor_analyzer::browse::{self, Arrangement};
    let store = demo_store();
    let q = pods_query();
    let range = data_range(&store);
    let total = browse::build_view(&store, 4, &q, Op::File, range).unwrap();
    let columns = browse::columns(&q, Op::File);
    let sortable: Vec<usize> = (0..columns.len())
        .filter(|i| columns[*i].order.is_some())
        .collect();
    assert!(sortable.len() >= 8, "{columns:?}");
    let sorts: Vec<Option<(usize, bool)>> = std::iter::once(None)
        .chain(
            sortable
                .iter()
                .flat_map(|i| [Some((*i, false)), Some((*i, true))]),
        )
        .collect();
    // Every order read by top-N queries, the view as built (no index, no kept orders).
    let mut expected = Vec::new();
    for sort in &sorts {
        let how = Arrangement {
            sort: *sort,
            search: None,
        };
        let a = browse::arrange(&store, 4, &q, Op::File, &how).unwrap();
        assert!(!a.ranked() && !a.indexed());
        expected.push(browse::page(&store, &a, Op::File, 0, total).unwrap());
    }
    // With the heads of every sort: the same rows, whole (the demo's view is shorter than a
    // head) and by windows.
    browse::head_view(&store, 4, &q, Op::File).unwrap();
    for (sort, all) in sorts.iter().zip(&expected) {
        let how = Arrangement {
            sort: *sort,
            search: None,
        };
        let a = browse::arrange(&store, 4, &q, Op::File, &how).unwrap();
        assert_eq!(a.headed(), sort.is_some(), "{sort:?}");
        assert_eq!(&browse::page(&store, &a, Op::File, 0, total).unwrap(), all);
        for offset in [0, 1, total / 2, total - 7, total - 1] {
            let got = browse::page(&store, &a, Op::File, offset, 5).unwrap();
            let end = (offset + 5).min(total) as usize;
            assert_eq!(got, all[offset as usize..end], "{sort:?} offset {offset}");
        }
    }
    // Then with the index and every kept order: the same rows in the same order, whole and
    // by windows from anywhere; a detail is the row at its number.
    browse::index_view(&store, 4).unwrap();
    for (sort, all) in sorts.iter().zip(&expected) {
        if let Some(sort) = sort {
            browse::rank_view(&store, 4, &q, Op::File, *sort).unwrap();
        }
        let how = Arrangement {
            sort: *sort,
            search: None,
        };
        let a = browse::arrange(&store, 4, &q, Op::File, &how).unwrap();
        assert!(a.indexed());
        assert_eq!(a.ranked(), sort.is_some(), "{sort:?}");
        assert!(!a.headed(), "a kept order is read whole");
        assert_eq!(&browse::page(&store, &a, Op::File, 0, total).unwrap(), all);
        for offset in [0, 1, total / 2, total - 7, total - 1] {
            let got = browse::page(&store, &a, Op::File, offset, 5).unwrap();
            let end = (offset + 5).min(total) as usize;
            assert_eq!(got, all[offset as usize..end], "{sort:?} offset {offset}");
        }
        let d = browse::detail(&store, &a, &q, Op::File, total).unwrap();
        assert_eq!(d.count, all[total as usize - 1].count, "{sort:?}");
        // A quick search is not a kept order: top-N over the rows it keeps.
        let searched = Arrangement {
            sort: *sort,
            search: Some("etc".into()),
        };
        let s = browse::arrange(&store, 4, &q, Op::File, &searched).unwrap();
        assert!(!s.ranked());
        let rows = browse::page(&store, &s, Op::File, 0, s.total).unwrap();
        let kept: Vec<_> = all
            .iter()
            .filter(|r| {
                rows.iter()
                    .any(|k| k.keys == r.keys && k.resource == r.resource)
            })
            .map(|r| (&r.resource, &r.keys))
            .collect();
        let got: Vec<_> = rows.iter().map(|r| (&r.resource, &r.keys)).collect();
        assert_eq!(got, kept, "{sort:?}");
    }
    // A view built again drops its kept orders (they would number other rows).
    browse::build_view(&store, 4, &q, Op::File, range).unwrap();
    let sort = Some((sortable[0], false));
    let a = browse::arrange(&store, 4, &q, Op::File, &Arrangement { sort, search: None }).unwrap();
    assert!(!a.ranked() && !a.indexed() && !a.headed());
}

/// `coverage -n NAMESPACE` on the demo: (start-up not seen, container workloads).
fn coverage_startup_in(namespace: &str) -> (usize, usize) {
    let out = Command::new(BIN)
        .args(["coverage", "-n", namespace, "--bundle"])
        .arg(demo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| c.len() > 4 && ["partial", "learning", "stable"].contains(&c[1]))
        .collect();
    let unseen = rows.iter().filter(|c| c[3] == "not").count();
    let workloads = rows
        .iter()
        .filter(|c| matches!(c[3], "not" | "seen"))
        .count();
    (unseen, workloads)
}

/// The header's start-up verdict: `Some((unseen, workloads))` when partial for start-up.
fn header_startup(screen: &str) -> Option<(usize, usize)> {
    let at = screen.find("start-up not seen for ")? + "start-up not seen for ".len();
    let words: Vec<&str> = screen[at..].split_whitespace().take(3).collect();
    Some((words[0].parse().ok()?, words[2].parse().ok()?))
}

#[test]
fn the_health_verdict_follows_the_drill_down_scope() {
    let mut ui = Ui::open(namespaces_query(), 200, 40);
    let screen = ui.draw();
    let (unseen, workloads) = coverage_startup();
    assert_eq!(
        header_startup(&screen),
        Some((unseen, workloads)),
        "{screen}"
    );
    // Into each namespace: that namespace's verdict, as `coverage -n` gives it; back: the
    // whole scope's again.
    for ns in ["wordpress-mysql", "kube-system"] {
        let expected = coverage_startup_in(ns);
        assert!(expected.1 > 0, "{ns}: {expected:?}");
        assert_ne!(expected, (unseen, workloads), "{ns} tells nothing apart");
        ui.key(KeyCode::Home);
        let mut screen = ui.screen();
        for _ in 0..header_rows(&screen) {
            if ui.app.level().current().is_some_and(|r| r.resource == ns) {
                break;
            }
            screen = ui.key(KeyCode::Down);
        }
        assert_eq!(
            ui.app.level().current().map(|r| r.resource.as_str()),
            Some(ns)
        );
        let screen = ui.key(KeyCode::Enter);
        assert!(screen.contains(&format!("namespace {ns}")), "{screen}");
        match expected {
            (0, _) => {
                assert_eq!(header_startup(&screen), None, "{screen}");
                assert!(screen.contains("health: complete"), "{screen}");
            }
            _ => assert_eq!(header_startup(&screen), Some(expected), "{screen}"),
        }
        let screen = ui.key(KeyCode::Esc);
        assert_eq!(
            header_startup(&screen),
            Some((unseen, workloads)),
            "{screen}"
        );
    }
}

#[test]
fn live_the_health_verdict_is_of_the_rows_received_so_far() {
    use karmor_analyzer::drift::stability::startup_seen;
    use karmor_analyzer::recommend::{Scope, WorkloadSelect};
    use karmor_testdata::demo;
    use kubectl_karmor::tui::LiveEvent;
    let events = demo::events();
    let noon = demo::at(11, 0, 0, 0);
    let (early, late): (Vec<_>, Vec<_>) = events.iter().cloned().partition(|e| e.ts_first < noon);
    // What coverage says of the rows received after each batch.
    let verdict = |rows: &[karmor_contract::Event]| {
        let store = Store::in_memory().unwrap();
        store.append_live(rows).unwrap();
        let scope = Scope {
            workloads: Some(WorkloadSelect::default()),
            ..Scope::default()
        };
        let seen = startup_seen(&store, &scope).unwrap();
        (seen.values().filter(|s| !**s).count(), seen.len())
    };
    let mut ui = Ui::open_store(
        Store::in_memory().unwrap(),
        namespaces_query(),
        200,
        30,
        true,
    );
    for (batch, received) in [(early.clone(), early.len()), (late, events.len())] {
        ui.app.handle(Msg::Live(LiveEvent::Rows(batch)));
        let screen = ui.draw();
        assert!(
            screen.contains(&format!("live: {received} rows received")),
            "{screen}"
        );
        let expected = verdict(if received == events.len() {
            &events
        } else {
            &early
        });
        assert!(expected.1 > 0, "{expected:?}");
        match expected {
            (0, _) => assert!(screen.contains("health: live, complete"), "{screen}"),
            _ => {
                assert!(screen.contains("health: live, partial"), "{screen}");
                assert_eq!(header_startup(&screen), Some(expected), "{screen}");
            }
        }
    }
}

#[test]
fn a_preview_is_the_first_rows_of_the_view_it_stands_for() {
    use karmor_analyzer::browse::{self, Arrangement};
    let store = demo_store();
    let range = data_range(&store);
    let mut all_pods = ObserveQuery::new(ResourceKind::Pod);
    all_pods.namespace = NamespaceScope::All;
    let mut nginx = pods_query();
    nginx.filter = Some(filter::compile("process=/usr/sbin/nginx||path=/etc/*").unwrap());
    let mut several = 0;
    for q in [
        all_pods,
        pods_query(),
        nginx,
        namespaces_query(),
        ObserveQuery::new(ResourceKind::Node),
        ObserveQuery::new(ResourceKind::Container),
    ] {
        for op in [Op::Process, Op::File, Op::Network] {
            let total = browse::build_view(&store, 5, &q, op, range).unwrap();
            let a = browse::arrange(&store, 5, &q, op, &Arrangement::default()).unwrap();
            let all = browse::page(&store, &a, op, 0, total).unwrap();
            let resources = |n: usize| {
                let mut r: Vec<_> = all[..n]
                    .iter()
                    .map(|r| (&r.namespace, &r.resource))
                    .collect();
                r.dedup();
                r.len()
            };
            let listed = browse::resource_rows(&store, &q, op).unwrap();
            // Rounds of one resource, then of more (the demo's rows are fewer than one
            // round's by default: then one round takes them all).
            for (limit, round) in [1, 5, 40, total + 3]
                .into_iter()
                .flat_map(|l| [(l, 1), (l, browse::PREVIEW_ROUND_ROWS)])
            {
                let got = browse::preview(&store, &q, op, range, limit, &listed, round).unwrap();
                let n = limit.min(total) as usize;
                assert_eq!(got, all[..n], "{q:?} {op:?} limit {limit} round {round}");
                if resources(n) > 2 {
                    several += 1;
                }
            }
        }
    }
    // Some previews gather rows of several resources (rounds of one, two, four…).
    assert!(several > 5, "{several}");
    assert!(browse::event_rows(&store, &pods_query(), Op::File).unwrap() > 0);
}

#[test]
fn a_preview_under_a_filter_on_any_field_is_the_first_rows_of_the_filtered_view() {
    use karmor_analyzer::browse::{self, Arrangement};
    let store = demo_store();
    let range = data_range(&store);
    // Fields that vary within a view's rows (none is a grouping column), and one filter on
    // grouping columns (previewed so while the view it narrows is built): the preview takes
    // the resources of the question without its filter, a superset in the same order.
    let filters = [
        "process=/usr/sbin/*||namespace=kube-system",
        "uid=33",
        "uid=1000",
        "result!=Passed",
        "access=write",
        "source=ebpf",
        "uid=0&&path=/etc/*",
        "uid=12345",
    ];
    let (mut narrowed, mut skipped, mut empty) = (0, 0, 0);
    for plain in [
        all_namespaces(ResourceKind::Pod),
        pods_query(),
        namespaces_query(),
        ObserveQuery::new(ResourceKind::Node),
        all_namespaces(ResourceKind::Container),
    ] {
        for op in [Op::Process, Op::File, Op::Network] {
            let resources = browse::resource_rows(&store, &plain, op).unwrap();
            let unfiltered = browse::build_view(&store, 9, &plain, op, range).unwrap();
            for text in filters {
                let mut q = plain.clone();
                q.filter = Some(filter::compile(text).unwrap());
                let total = browse::build_view(&store, 5, &q, op, range).unwrap();
                let a = browse::arrange(&store, 5, &q, op, &Arrangement::default()).unwrap();
                let rows = browse::page(&store, &a, op, 0, total).unwrap();
                for limit in [1, 5, 40, total + 3] {
                    for round in [1, browse::PREVIEW_ROUND_ROWS] {
                        let got = browse::preview(&store, &q, op, range, limit, &resources, round)
                            .unwrap();
                        let n = limit.min(total) as usize;
                        assert_eq!(got, rows[..n], "{q:?} {op:?} {text} limit {limit} {round}");
                    }
                }
                // The first resource of the scope keeps none of its rows: the preview's
                // rows come from later ones.
                let first = (&resources[0].namespace, &resources[0].resource);
                if rows
                    .first()
                    .is_some_and(|r| (&r.namespace, &Some(r.resource.clone())) != first)
                {
                    skipped += 1;
                }
                if total == 0 {
                    empty += 1;
                } else if total < unfiltered {
                    narrowed += 1;
                }
            }
        }
    }
    assert!(narrowed > 20, "{narrowed}");
    assert!(skipped > 5, "{skipped}");
    assert!(empty > 5, "{empty}");
}

#[test]
fn a_filter_on_any_field_shows_a_preview_then_exactly_observe_f_rows() {
    let mut q = pods_query();
    q.namespace = NamespaceScope::All;
    let store = demo_store();
    let mut ui = Ui::open_previewing(q.clone(), 220, 18);
    let all = header_rows(&ui.built());
    for (op, word, text) in [
        (Op::Process, "PARENT", "uid=33"),
        (Op::File, "PATH", "uid=0&&access=write"),
    ] {
        if op == Op::File {
            ui.key(KeyCode::Tab);
            ui.built();
        }
        let plain_screen = ui.screen();
        let plain_rows = header_rows(&plain_screen);
        let plain_lines = ui.table_lines(word);
        let preview = ui.filter(text);
        // A field that is no column of the view: grouped again from `events`, its first
        // screen shown while the filtered view is built.
        let (first, screen) = ui.preview_then_built(&preview, word);
        let mut fq = q.clone();
        fq.operations = vec![op];
        fq.filter = Some(filter::compile(text).unwrap());
        let s = summarize(&store, &fq).unwrap();
        let expected: Vec<(String, String, u64)> = match op {
            Op::Process => s
                .processes
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.resource,
                        r.process.unwrap_or_else(|| "-".into()),
                        r.seen.count,
                    )
                })
                .collect(),
            _ => s
                .files
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.resource,
                        tail(r.path.as_deref().unwrap_or("-")).to_string(),
                        r.seen.count,
                    )
                })
                .collect(),
        };
        assert!(
            !expected.is_empty() && (expected.len() as u64) < plain_rows,
            "{} of {plain_rows}",
            expected.len()
        );
        assert_eq!(header_rows(&screen), expected.len() as u64, "{screen}");
        // The preview's rows are the built view's first rows, and those are observe -f's.
        let lines = ui.table_lines(word);
        assert_eq!(lines[..first.len().min(lines.len())], first[..]);
        assert!(lines.len() <= expected.len(), "{screen}");
        for (line, (resource, item, count)) in lines.iter().zip(&expected) {
            for part in [resource.as_str(), item.as_str()] {
                assert!(line.contains(part), "{line} lacks {part}");
            }
            let count = format!(" {count} ");
            assert!(line.contains(&count), "{line} lacks {count}");
        }
        // Cleared: the level's own view again, at once (it was kept), not a preview.
        ui.key(KeyCode::Char('f'));
        ui.keys(&vec![KeyCode::Backspace; text.len()]);
        let screen = ui.key(KeyCode::Enter);
        assert!(!ui.app.level().building, "{screen}");
        assert_eq!(header_rows(&screen), plain_rows, "{screen}");
        assert_eq!(ui.table_lines(word), plain_lines);
    }
    assert!(all > 0);
}

#[test]
fn a_sorted_view_under_a_new_filter_shows_a_preview_then_its_sorted_rows_and_graph() {
    let mut q = pods_query();
    q.namespace = NamespaceScope::All;
    q.operations = vec![Op::Process];
    let store = demo_store();
    let mut ui = Ui::open_previewing(q.clone(), 220, 40);
    ui.built();
    let count_col = ui
        .app
        .columns()
        .iter()
        .position(|c| c.title == "COUNT")
        .unwrap();
    ui.keys(&vec![KeyCode::Right; count_col]);
    ui.key(KeyCode::Char('s'));
    ui.key(KeyCode::Char('g'));
    let text = "uid=0";
    let preview = ui.filter(text);
    // Its first rows by COUNT need the whole filtered view: the first rows in `observe`'s
    // order are shown meanwhile, and the header says so.
    assert!(ui.app.level().building, "{preview}");
    assert!(preview.contains("sorted once built"), "{preview}");
    let screen = ui.built();
    assert!(!screen.contains("building"), "{screen}");
    assert!(screen.contains("COUNT▼"), "{screen}");
    let mut fq = q.clone();
    fq.filter = Some(filter::compile(text).unwrap());
    let mut rows = summarize(&store, &fq).unwrap().processes.unwrap();
    assert_eq!(header_rows(&screen), rows.len() as u64, "{screen}");
    // The graph came with the built view.
    assert!(ui.app.level().graph.is_some(), "{screen}");
    assert!(screen.contains("events over time"), "{screen}");
    let screen = ui.key(KeyCode::Char('g'));
    // Largest first; ties in observe's order.
    rows.sort_by_key(|r| std::cmp::Reverse(r.seen.count));
    let lines = ui.table_lines("PARENT");
    assert!(lines.len() > 5, "{screen}");
    for (line, row) in lines.iter().zip(&rows) {
        let count = format!(" {} ", row.seen.count);
        assert!(line.contains(&count), "{line} lacks {count}");
        assert!(
            line.contains(&row.resource),
            "{line} lacks {}",
            row.resource
        );
    }
}

#[test]
fn a_large_view_shows_its_first_screen_while_it_is_built() {
    let mut q = pods_query();
    q.namespace = NamespaceScope::All;
    let mut ui = Ui::open_previewing(q.clone(), 220, 18);
    let store = demo_store();
    for (op, word) in [(Op::Process, "PARENT"), (Op::File, "PATH")] {
        if op == Op::File {
            ui.key(KeyCode::Tab);
        }
        // The first screen, read from the first resources' events: the same rows as the
        // built view's, the header saying that more are coming.
        let preview = ui.screen();
        let (first, screen) = ui.preview_then_built(&preview, word);
        let mut q1 = q.clone();
        q1.operations = vec![op];
        let s = summarize(&store, &q1).unwrap();
        let rows = s.processes.map_or(0, |v| v.len()) + s.files.map_or(0, |v| v.len());
        assert!(rows as u64 > header_rows(&preview), "{preview}");
        assert_eq!(header_rows(&screen), rows as u64, "{screen}");
        assert_eq!(ui.table_lines(word), first);
        // Scrolling past the preview reads the built view.
        ui.key(KeyCode::End);
        assert_eq!(ui.app.level().selected + 1, rows as u64);
        ui.key(KeyCode::Home);
    }
}

#[test]
fn a_filter_on_the_resources_columns_narrows_the_view_to_exactly_the_rows_of_events() {
    use karmor_analyzer::browse::{self, Arrangement};
    let store = demo_store();
    let range = data_range(&store);
    let cases = [
        (
            all_namespaces(ResourceKind::Pod),
            "namespace=wordpress-mysql",
        ),
        (
            all_namespaces(ResourceKind::Pod),
            "pod=mysql-*||namespace=kube-system",
        ),
        (
            all_namespaces(ResourceKind::Pod),
            "pod!=mysql-*&&path=/etc/*",
        ),
        (all_namespaces(ResourceKind::Container), "pod=wordpress-*"),
        (
            all_namespaces(ResourceKind::Workload),
            "workload=wordpress||workload=mysql",
        ),
        (namespaces_query(), "namespace!=kube-system"),
        (ObserveQuery::new(ResourceKind::Node), "node=*"),
    ];
    let read = |slot: usize, q: &ObserveQuery, op: Op| {
        let a = browse::arrange(&store, slot, q, op, &Arrangement::default()).unwrap();
        browse::page(&store, &a, op, 0, a.total).unwrap()
    };
    let mut narrowed = 0;
    for (q, text) in cases {
        let f = filter::compile(text).unwrap();
        let fields = filter::parse(text).unwrap().fields();
        for op in [Op::Process, Op::File, Op::Network] {
            let grouping = browse::grouping_fields(q.kind, op);
            if !fields.iter().all(|f| grouping.contains(f)) {
                // path is a column of the files view only.
                assert!(text.contains("path") && op != Op::File, "{text} {op:?}");
                continue;
            }
            // The view of every row, narrowed by the filter…
            let total = browse::build_view(&store, 6, &q, op, range).unwrap();
            let kept = browse::refine_view(&store, 7, 6, &f).unwrap();
            // …holds exactly the rows (counts, outcomes, activity) of the filtered events.
            let mut fq = q.clone();
            fq.filter = Some(f.clone());
            let want = browse::build_view(&store, 8, &fq, op, range).unwrap();
            assert_eq!(kept, want, "{:?} {op:?} {text}", q.kind);
            assert_eq!(
                read(7, &fq, op),
                read(8, &fq, op),
                "{:?} {op:?} {text}",
                q.kind
            );
            if kept > 0 && kept < total {
                narrowed += 1;
            }
        }
    }
    assert!(narrowed >= 8, "{narrowed}");
}

#[test]
fn a_key_while_a_view_is_built_gets_its_own_answer_and_no_error() {
    let mut q = pods_query();
    q.namespace = NamespaceScope::All;
    let store = demo_store();
    let mut ui = Ui::open_previewing(q.clone(), 220, 18);
    // Files, then at once Network (the files view is being built, or not yet): whatever
    // the build was doing, the network view is the one shown, whole, without an error.
    for _ in 0..3 {
        ui.app
            .handle(Msg::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        ui.app
            .handle(Msg::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        ui.draw();
        let screen = ui.built();
        let op = ui.app.level().op;
        let mut q1 = q.clone();
        q1.operations = vec![op];
        let s = summarize(&store, &q1).unwrap();
        let rows = s.processes.map_or(0, |v| v.len())
            + s.files.map_or(0, |v| v.len())
            + s.network.map_or(0, |v| v.len());
        assert_eq!(header_rows(&screen), rows as u64, "{op:?} {screen}");
        assert!(
            !screen.contains("nterrupt") && !screen.contains("DuckDB"),
            "{screen}"
        );
    }
}
