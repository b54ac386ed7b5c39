//! The UI's state and what each key does. The state holds only what the screen shows (a
//! window of rows around the cursor); every question goes to the worker as a [`Request`]
//! and comes back as a [`Msg::Worker`] answer.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use karmor_analyzer::browse::{self, Arrangement, BrowseRow, Detail, TimeRange};
use karmor_analyzer::filter::{self, FilterError, SqlFilter};
use karmor_analyzer::observe::{NamespaceScope, ObserveQuery, ResourceKind};
use karmor_analyzer::store::DataHealth;
use karmor_contract::Op;

use super::worker::{Coverage, Graph, Request, RequestSender, Response, ViewRequest};
use super::Msg;

/// One drill-down level: a table of behaviours grouped by one resource kind.
#[derive(Debug, Clone)]
pub struct Level {
    /// What rows are grouped by.
    pub kind: ResourceKind,
    /// Namespace scope.
    pub namespace: NamespaceScope,
    /// The resource name of the command line (top level only).
    pub name: Option<String>,
    /// The drill-downs that led here (each keeps one resource's rows).
    pub drills: Vec<SqlFilter>,
    /// Breadcrumb text.
    pub crumb: String,
    /// Tabs: the operations the level's rows hold.
    pub ops: Vec<Op>,
    /// The tab shown.
    pub op: Op,
    /// Cursor (0-based row).
    pub selected: u64,
    /// First row on screen.
    pub top: u64,
    /// Selected column (for `s`).
    pub column: usize,
    /// Sort column and direction (descending when true).
    pub sort: Option<(usize, bool)>,
    /// Quick search.
    pub search: Option<String>,
    /// Rows in the view, once known.
    pub total: Option<u64>,
    /// Index of `window[0]`.
    pub window_offset: u64,
    /// The rows held: the screen's plus one page.
    pub window: Vec<BrowseRow>,
    /// Graph of the view, when shown.
    pub graph: Option<Graph>,
    /// Answers to requests older than this are stale (the view changed since).
    valid_from: u64,
    /// The view request in flight, if any.
    in_flight: Option<u64>,
    /// The last answer's DuckDB time.
    pub query_time: Option<Duration>,
    /// The rows are a preview of the first screen while the view is built (`total` counts
    /// only them); the whole view follows.
    pub building: bool,
    /// New rows arrived since its rows were read (`--live`): read again when shown.
    stale: bool,
    /// Whether `ops` came from the data (asked once per level, and after new rows).
    ops_known: bool,
    /// `coverage`'s start-up check of the level's scope (its namespace and drill-downs),
    /// once answered; asked again after new rows.
    pub coverage: Option<Coverage>,
    /// The coverage request in flight, if any.
    coverage_asked: Option<u64>,
}

impl Level {
    fn new(kind: ResourceKind, namespace: NamespaceScope, crumb: String, op: Op) -> Self {
        Level {
            kind,
            namespace,
            name: None,
            drills: Vec::new(),
            crumb,
            ops: vec![Op::Process, Op::File, Op::Network],
            op,
            selected: 0,
            top: 0,
            column: 0,
            sort: None,
            search: None,
            total: None,
            window_offset: 0,
            window: Vec::new(),
            graph: None,
            valid_from: 0,
            in_flight: None,
            query_time: None,
            building: false,
            stale: false,
            ops_known: false,
            coverage: None,
            coverage_asked: None,
        }
    }

    /// The row at `index`, when it is in the window.
    pub fn row(&self, index: u64) -> Option<&BrowseRow> {
        index
            .checked_sub(self.window_offset)
            .and_then(|i| self.window.get(i as usize))
    }

    /// The row under the cursor, when loaded.
    pub fn current(&self) -> Option<&BrowseRow> {
        self.row(self.selected)
    }

    fn arrangement(&self) -> Arrangement {
        Arrangement {
            sort: self.sort,
            search: self.search.clone(),
        }
    }

    /// Forgets the rows held (the view changed).
    fn invalidate(&mut self) {
        self.total = None;
        self.window.clear();
        self.window_offset = 0;
        self.graph = None;
        self.selected = 0;
        self.top = 0;
    }
}

/// A behaviour's detail on screen.
#[derive(Debug, Clone)]
pub struct DetailView {
    /// Breadcrumb text.
    pub crumb: String,
    /// The data, once answered.
    pub detail: Option<Detail>,
    /// First raw row on screen.
    pub scroll: usize,
    seq: u64,
}

/// A text field being edited.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The text.
    pub text: String,
    /// Cursor (byte offset, on a char boundary).
    pub cursor: usize,
}

impl Input {
    fn with(text: &str) -> Self {
        Input {
            text: text.to_string(),
            cursor: text.len(),
        }
    }

    /// Applies an editing key; false when the key is not an editing key.
    fn edit(&mut self, key: &KeyEvent) -> bool {
        match key.code {
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                self.text.insert(self.cursor, c);
                self.cursor += c.len_utf8();
            }
            KeyCode::Backspace => {
                if let Some(c) = self.text[..self.cursor].chars().next_back() {
                    self.cursor -= c.len_utf8();
                    self.text.remove(self.cursor);
                }
            }
            KeyCode::Delete => {
                if self.cursor < self.text.len() {
                    self.text.remove(self.cursor);
                }
            }
            KeyCode::Left => {
                if let Some(c) = self.text[..self.cursor].chars().next_back() {
                    self.cursor -= c.len_utf8();
                }
            }
            KeyCode::Right => {
                if let Some(c) = self.text[self.cursor..].chars().next() {
                    self.cursor += c.len_utf8();
                }
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            _ => return false,
        }
        true
    }

    fn insert(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }
}

/// The filter's field picker: check-boxes of the filter's fields (the proposal's filter
/// panel). ↑/↓ (or Tab) move into it, Space checks or unchecks a field, Enter adds `FIELD=`
/// for each checked field to the filter text (joined by `&&`, the cursor after the first
/// `=`), Esc or Tab goes back to the text.
#[derive(Debug, Clone, Default)]
pub struct Picker {
    /// The field under the cursor (index in [`filter::Field::ALL`]).
    pub cursor: usize,
    /// Checked fields, in the order they were checked.
    pub checked: Vec<filter::Field>,
    /// Keys go to the picker rather than the text.
    pub focused: bool,
}

impl Picker {
    fn step(&mut self, down: bool) {
        let n = filter::Field::ALL.len();
        self.cursor = if down {
            (self.cursor + 1) % n
        } else {
            self.cursor.checked_sub(1).unwrap_or(n - 1)
        };
        self.focused = true;
    }

    fn toggle(&mut self) {
        let f = filter::Field::ALL[self.cursor];
        if let Some(i) = self.checked.iter().position(|c| *c == f) {
            self.checked.remove(i);
        } else {
            self.checked.push(f);
        }
    }

    /// Adds the checked fields to `input` (`a=&&b=`, after `&&` when the text before the
    /// cursor ends a comparison), the cursor after the first `=`; unchecks them.
    fn apply(&mut self, input: &mut Input) {
        self.focused = false;
        if self.checked.is_empty() {
            return;
        }
        let before = input.text[..input.cursor].trim_end();
        if !before.is_empty() && !before.ends_with(['(', ';', '&', '|']) {
            input.insert("&&");
        }
        let first_value = input.cursor + self.checked[0].key().len() + 1;
        let keys: Vec<String> = self
            .checked
            .drain(..)
            .map(|f| format!("{}=", f.key()))
            .collect();
        input.insert(&keys.join("&&"));
        input.cursor = first_value;
    }
}

/// What the keys do right now.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Browsing the table.
    Table,
    /// Typing a filter: the text, the field picker's selection, the last error.
    Filter {
        /// The filter text.
        input: Input,
        /// The field picker.
        picker: Picker,
        /// Why the last Enter was refused.
        error: Option<FilterError>,
    },
    /// Typing a quick search.
    Search(Input),
    /// Typing the export file name.
    Export(Input),
    /// The key help.
    Help,
    /// A text pane (a drafted policy, a message): title, lines, scroll.
    Text {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
        /// First line on screen.
        scroll: usize,
    },
}

/// The header's facts about the data.
#[derive(Debug, Clone)]
pub struct Info {
    /// The command line's scope, as text.
    pub scope: String,
    /// The data's time range.
    pub range: Option<TimeRange>,
    /// Counters of the data's completeness.
    pub health: DataHealth,
    /// `--live`: rows received so far, when live.
    pub live_rows: Option<u64>,
}

/// The UI.
pub struct App {
    tx: RequestSender,
    rx: Receiver<Msg>,
    back: Sender<Msg>,
    seq: u64,
    outstanding: BTreeSet<u64>,
    base: ObserveQuery,
    /// Drill-down levels, the shown one last.
    pub levels: Vec<Level>,
    /// A behaviour's detail, over the last level.
    pub detail: Option<DetailView>,
    /// Key mode.
    pub mode: Mode,
    /// The `f` filter (text and compiled), applied at every level.
    pub filter: Option<(String, SqlFilter)>,
    /// Header facts.
    pub info: Info,
    /// Whether the graph pane is shown.
    pub graph_on: bool,
    /// The last message (text, is an error).
    pub status: Option<(String, bool)>,
    /// Draw without colours (`NO_COLOR`).
    pub no_color: bool,
    /// Table rows on screen (set by each draw).
    pub body_rows: Cell<u16>,
    /// True once `q` was pressed.
    pub quit: bool,
    /// When the last key was handled (for the key-to-screen latency in the header).
    pub last_key: Option<Instant>,
    pending_policy: Option<u64>,
    pending_export: Option<u64>,
}

/// Where the UI starts.
#[derive(Debug, Clone)]
pub struct Start {
    /// The command line's question (its kind is the first level's).
    pub query: ObserveQuery,
    /// The command line's scope, as the header shows it.
    pub scope: String,
    /// The data's time range.
    pub range: Option<TimeRange>,
    /// Counters of the data's completeness.
    pub health: DataHealth,
    /// Draw without colours.
    pub no_color: bool,
    /// Table rows the first screen shows (the terminal's height is enough).
    pub rows: u16,
}

impl App {
    /// A UI over a worker reached by `tx`, whose answers (and keys) arrive on `rx`; `back`
    /// is a sender of `rx` (kept so the channel stays open).
    pub fn new(start: Start, tx: RequestSender, rx: Receiver<Msg>, back: Sender<Msg>) -> Self {
        let op = start
            .query
            .operations
            .first()
            .copied()
            .unwrap_or(Op::Process);
        let mut top = Level::new(
            start.query.kind,
            start.query.namespace.clone(),
            crumb_of(&start.query),
            op,
        );
        top.name = start.query.name.clone();
        let mut app = App {
            tx,
            rx,
            back,
            seq: 0,
            outstanding: BTreeSet::new(),
            base: start.query,
            levels: vec![top],
            detail: None,
            mode: Mode::Table,
            filter: None,
            info: Info {
                scope: start.scope,
                range: start.range,
                health: start.health,
                live_rows: None,
            },
            graph_on: false,
            status: None,
            no_color: start.no_color,
            body_rows: Cell::new(start.rows.max(1)),
            quit: false,
            last_key: None,
            pending_policy: None,
            pending_export: None,
        };
        app.refresh(true);
        app.ask_coverage();
        app
    }

    /// Asks for `coverage`'s start-up check of the shown level's scope (the command line's
    /// namespace and times, the level's namespace and drill-downs; not the `f` filter, which
    /// would make a container's first process whatever it keeps), unless it is known or
    /// asked.
    fn ask_coverage(&mut self) {
        let level = self.level();
        if level.coverage.is_some() || level.coverage_asked.is_some() {
            return;
        }
        let mut query = self.base.clone();
        query.namespace = level.namespace.clone();
        query.filter = SqlFilter::all(level.drills.iter().cloned());
        let seq = self.send(|seq| Request::Coverage { seq, query });
        self.level_mut().coverage_asked = Some(seq);
    }

    /// A sender of the UI's message channel (for the key reader).
    pub fn sender(&self) -> Sender<Msg> {
        self.back.clone()
    }

    /// Asks the worker to prepare the shown view now (its index and sort orders), as it does
    /// when idle; [`App::settle`] then waits for it (benches and tests).
    pub fn prepare(&mut self) {
        self.send(|seq| Request::Prepare { seq });
    }

    /// True while a request has no answer yet.
    pub fn busy(&self) -> bool {
        !self.outstanding.is_empty()
    }

    /// The shown level.
    pub fn level(&self) -> &Level {
        self.levels.last().expect("there is always a level")
    }

    fn level_mut(&mut self) -> &mut Level {
        self.levels.last_mut().expect("there is always a level")
    }

    /// The shown level's question (scope, drill-downs, filter; its tab's operation).
    pub fn query(&self) -> ObserveQuery {
        self.query_of(self.level())
    }

    fn query_of(&self, level: &Level) -> ObserveQuery {
        self.query_with(level, true)
    }

    /// The shown level's question without the user's filter, and that filter, when the filter
    /// compares only grouping columns of the tab's view: the worker then filters the view of
    /// the question without it instead of reading the events again.
    fn refinement(&self) -> Option<(ObserveQuery, SqlFilter)> {
        let (text, compiled) = self.filter.as_ref()?;
        let level = self.level();
        let fields = filter::parse(text).ok()?.fields();
        let grouping = browse::grouping_fields(level.kind, level.op);
        if fields.iter().all(|f| grouping.contains(f)) {
            Some((self.query_with(level, false), compiled.clone()))
        } else {
            None
        }
    }

    fn query_with(&self, level: &Level, user_filter: bool) -> ObserveQuery {
        let mut q = self.base.clone();
        q.kind = level.kind;
        q.namespace = level.namespace.clone();
        q.name = level.name.clone();
        q.wide = false;
        q.operations = vec![level.op];
        q.filter = SqlFilter::all(
            self.base
                .filter
                .iter()
                .cloned()
                .chain(level.drills.iter().cloned())
                .chain(
                    self.filter
                        .iter()
                        .filter(|_| user_filter)
                        .map(|(_, f)| f.clone()),
                ),
        );
        q
    }

    /// The columns of the shown view.
    pub fn columns(&self) -> Vec<browse::Column> {
        browse::columns(&self.query(), self.level().op)
    }

    fn send(&mut self, make: impl FnOnce(u64) -> Request) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        if self.tx.send(make(seq)).is_ok() {
            self.outstanding.insert(seq);
        } else {
            self.status = Some(("the query thread stopped".into(), true));
        }
        seq
    }

    /// Asks for the shown level's rows: `changed` when the view or its arrangement changed
    /// (older answers are then stale), else only when the screen's rows are not held.
    fn refresh(&mut self, changed: bool) {
        let h = u64::from(self.body_rows.get().max(1));
        let level = self.level();
        if !changed {
            if level.in_flight.is_some() {
                return;
            }
            if let Some(total) = level.total {
                let end = (level.top + h).min(total);
                let held_end = level.window_offset + level.window.len() as u64;
                let covered = level.top >= level.window_offset && end <= held_end;
                // A preview comes without the graph: it comes with the built view (asking
                // again meanwhile would answer a preview again and stop the build).
                let graph_missing = self.graph_on && level.graph.is_none() && !level.building;
                if covered && !graph_missing {
                    return;
                }
            }
        }
        // The screen plus one page of prefetch, on the side the cursor moves to.
        let offset = if level.selected < level.window_offset {
            level.top.saturating_sub(h)
        } else {
            level.top
        };
        let request = ViewRequest {
            slot: self.levels.len() - 1,
            query: self.query(),
            plain: self.query_with(level, false),
            op: level.op,
            arrangement: level.arrangement(),
            offset,
            limit: 2 * h,
            graph: self.graph_on,
            // The tabs: once per level (a filter does not change them; new rows may).
            operations: !level.ops_known,
            refine: self.refinement(),
        };
        let seq = self.send(|seq| Request::View(seq, Box::new(request)));
        let level = self.level_mut();
        level.in_flight = Some(seq);
        if changed {
            level.valid_from = seq;
            level.stale = false;
        }
    }

    /// Handles one message: a key, a resize or a worker's answer.
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Key(key) => {
                self.last_key = Some(Instant::now());
                self.key(key);
            }
            // The next draw measures the table; `after_draw` then fetches what it shows.
            Msg::Resize => {}
            Msg::Worker(r) => self.answer(r),
            Msg::Stop => self.quit = true,
            Msg::Live(super::LiveEvent::Rows(rows)) => {
                self.info.live_rows.get_or_insert(0);
                self.send(|seq| Request::Append { seq, rows });
            }
            Msg::Live(super::LiveEvent::Status(text)) => {
                self.info.live_rows.get_or_insert(0);
                self.status = Some((text, false));
            }
        }
    }

    /// After a draw (which measures the table's rows): keeps the cursor on screen and asks
    /// for rows the screen shows but the window does not hold.
    pub fn after_draw(&mut self) {
        self.scroll_into_view();
        self.refresh(false);
    }

    /// Waits for every outstanding answer (tests and benches; the UI loop never blocks on
    /// the worker).
    pub fn settle(&mut self) {
        while self.busy() {
            match self.rx.recv() {
                Ok(msg) => self.handle(msg),
                Err(_) => break,
            }
        }
    }

    /// Handles messages already queued, without waiting.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        while let Ok(msg) = self.rx.try_recv() {
            self.handle(msg);
            any = true;
        }
        any
    }

    /// Waits for the next message.
    pub fn next(&self) -> Option<Msg> {
        self.rx.recv().ok()
    }

    fn answer(&mut self, r: Response) {
        let seq = r.seq();
        self.outstanding.remove(&seq);
        match r {
            Response::View(seq, a) => {
                let Some(level) = self.levels.get_mut(a.slot) else {
                    return;
                };
                if level.in_flight == Some(seq) {
                    level.in_flight = None;
                }
                if seq < level.valid_from {
                    self.refresh(false);
                    return;
                }
                level.total = Some(a.total);
                level.building = a.building;
                level.window_offset = a.offset;
                level.window = a.rows;
                level.query_time = Some(a.elapsed);
                if let Some(g) = a.graph {
                    level.graph = Some(g);
                }
                if let Some(ops) = a.operations {
                    level.ops_known = true;
                    if !ops.is_empty() {
                        level.ops = ops;
                    }
                }
                if level.selected >= a.total {
                    level.selected = a.total.saturating_sub(1);
                }
                if a.slot + 1 == self.levels.len() {
                    self.scroll_into_view();
                    self.refresh(false);
                }
            }
            Response::Superseded(seq) => {
                for level in &mut self.levels {
                    if level.in_flight == Some(seq) {
                        level.in_flight = None;
                    }
                }
                self.refresh(false);
            }
            Response::Coverage(seq, c) => {
                if let Some(level) = self
                    .levels
                    .iter_mut()
                    .find(|l| l.coverage_asked == Some(seq))
                {
                    level.coverage_asked = None;
                    level.coverage = Some(c);
                }
            }
            Response::Prepared(..) => {}
            Response::Detail(seq, d) => {
                if let Some(view) = self.detail.as_mut().filter(|v| v.seq == seq) {
                    view.detail = Some(*d);
                }
            }
            Response::Exported(seq, path, rows) => {
                if self.pending_export == Some(seq) {
                    self.pending_export = None;
                    self.status =
                        Some((format!("exported {rows} rows to {}", path.display()), false));
                }
            }
            Response::Policy(seq, title, yaml) => {
                if self.pending_policy == Some(seq) {
                    self.pending_policy = None;
                    self.status = None;
                    self.mode = Mode::Text {
                        title,
                        lines: yaml.lines().map(str::to_string).collect(),
                        scroll: 0,
                    };
                }
            }
            Response::Appended(_, n, range, health) => {
                if let Some(r) = range {
                    self.info.range = Some(r);
                }
                self.info.health = health;
                *self.info.live_rows.get_or_insert(0) += n as u64;
                // Every level reads its rows again, keeping cursor, scroll and sort.
                for level in &mut self.levels {
                    level.stale = true;
                    level.ops_known = false;
                    level.graph = None;
                    // The verdict is the new rows' too (an answer in flight is of the old).
                    level.coverage = None;
                    level.coverage_asked = None;
                }
                self.refresh(true);
                self.ask_coverage();
            }
            Response::Error(seq, message) => {
                for level in &mut self.levels {
                    if level.in_flight == Some(seq) {
                        level.in_flight = None;
                        level.total.get_or_insert(0);
                    }
                    if level.coverage_asked == Some(seq) {
                        level.coverage_asked = None;
                    }
                }
                if let Some(view) = self.detail.as_mut().filter(|v| v.seq == seq) {
                    view.detail = Some(Detail::default());
                }
                self.pending_policy = self.pending_policy.filter(|s| *s != seq);
                self.pending_export = self.pending_export.filter(|s| *s != seq);
                self.status = Some((message, true));
            }
        }
    }

    fn scroll_into_view(&mut self) {
        let h = u64::from(self.body_rows.get().max(1));
        let level = self.level_mut();
        if level.selected < level.top {
            level.top = level.selected;
        } else if level.selected >= level.top + h {
            level.top = level.selected + 1 - h;
        }
        if let Some(total) = level.total {
            let max_top = total.saturating_sub(h);
            level.top = level.top.min(max_top);
        }
    }

    fn move_cursor(&mut self, delta: i64) {
        let level = self.level_mut();
        let Some(total) = level.total.filter(|t| *t > 0) else {
            return;
        };
        let target = (level.selected as i64 + delta).clamp(0, total as i64 - 1);
        level.selected = target as u64;
        self.scroll_into_view();
        self.refresh(false);
    }

    fn key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL)
            && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d'))
        {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Table) {
            Mode::Table => self.table_key(key),
            Mode::Help => {}
            Mode::Text {
                title,
                lines,
                scroll,
            } => {
                let page = usize::from(self.body_rows.get());
                let scroll = match key.code {
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown | KeyCode::Char(' ') => scroll + page,
                    KeyCode::PageUp => scroll.saturating_sub(page),
                    KeyCode::Char('q') => {
                        self.quit = true;
                        return;
                    }
                    _ => return,
                };
                let scroll = scroll.min(lines.len().saturating_sub(1));
                self.mode = Mode::Text {
                    title,
                    lines,
                    scroll,
                };
            }
            Mode::Filter {
                mut input,
                mut picker,
                error,
            } => {
                match key.code {
                    KeyCode::Esc if !picker.focused => return,
                    KeyCode::Enter if !picker.focused => return self.submit_filter(input),
                    KeyCode::Up | KeyCode::Down => picker.step(key.code == KeyCode::Down),
                    KeyCode::Tab | KeyCode::Esc => picker.focused = !picker.focused,
                    KeyCode::Char(' ') if picker.focused => picker.toggle(),
                    KeyCode::Enter => picker.apply(&mut input),
                    _ => {
                        picker.focused = false;
                        input.edit(&key);
                    }
                }
                self.mode = Mode::Filter {
                    input,
                    picker,
                    error,
                };
            }
            Mode::Search(mut input) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    let text = input.text.trim().to_string();
                    let level = self.level_mut();
                    level.search = (!text.is_empty()).then_some(text);
                    level.invalidate();
                    self.refresh(true);
                }
                _ => {
                    input.edit(&key);
                    self.mode = Mode::Search(input);
                }
            },
            Mode::Export(mut input) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    let path = PathBuf::from(input.text.trim());
                    let query = self.query();
                    let op = self.level().op;
                    let seq = self.send(|seq| Request::Export {
                        seq,
                        query,
                        op,
                        path,
                    });
                    self.pending_export = Some(seq);
                    self.status = Some(("exporting…".into(), false));
                }
                _ => {
                    input.edit(&key);
                    self.mode = Mode::Export(input);
                }
            },
        }
    }

    fn submit_filter(&mut self, input: Input) {
        let text = input.text.trim().to_string();
        let compiled = if text.is_empty() {
            None
        } else {
            match filter::compile(&text) {
                Ok(f) => Some((text, f)),
                Err(error) => {
                    self.mode = Mode::Filter {
                        input,
                        picker: Picker::default(),
                        error: Some(error),
                    };
                    return;
                }
            }
        };
        self.filter = compiled;
        for level in &mut self.levels {
            level.invalidate();
        }
        self.refresh(true);
    }

    fn table_key(&mut self, key: KeyEvent) {
        let page = i64::from(self.body_rows.get().max(1));
        if let Some(detail) = self.detail.as_mut() {
            match key.code {
                KeyCode::Esc | KeyCode::Char('b') | KeyCode::Backspace => self.detail = None,
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('?') => self.mode = Mode::Help,
                KeyCode::Down | KeyCode::Char('j') => detail.scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => detail.scroll = detail.scroll.saturating_sub(1),
                KeyCode::PageDown => detail.scroll += page as usize,
                KeyCode::PageUp => detail.scroll = detail.scroll.saturating_sub(page as usize),
                _ => {}
            }
            if let Some(d) = &detail_rows(self.detail.as_ref()) {
                if let Some(v) = self.detail.as_mut() {
                    v.scroll = v.scroll.min(d.saturating_sub(1));
                }
            }
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => self.move_cursor(page),
            KeyCode::PageUp => self.move_cursor(-page),
            KeyCode::Home => self.move_cursor(i64::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(i64::MAX / 2),
            KeyCode::Left | KeyCode::Char('h') => {
                let level = self.level_mut();
                level.column = level.column.saturating_sub(1);
            }
            KeyCode::Right | KeyCode::Char('l') => {
                let n = self.columns().len();
                let level = self.level_mut();
                level.column = (level.column + 1).min(n.saturating_sub(1));
            }
            KeyCode::Char('s') => self.sort(),
            KeyCode::Tab => self.switch_tab(1),
            KeyCode::BackTab => self.switch_tab(-1),
            KeyCode::Char('f') => {
                let text = self.filter.as_ref().map(|(t, _)| t.as_str()).unwrap_or("");
                self.mode = Mode::Filter {
                    input: Input::with(text),
                    picker: Picker::default(),
                    error: None,
                };
            }
            KeyCode::Char('/') => {
                let text = self.level().search.clone().unwrap_or_default();
                self.mode = Mode::Search(Input::with(&text));
            }
            KeyCode::Char('e') => {
                let name = format!("observe-{}.json", self.level().op.as_str());
                self.mode = Mode::Export(Input::with(&name));
            }
            KeyCode::Char('g') => {
                self.graph_on = !self.graph_on;
                self.refresh(false);
            }
            KeyCode::Char('p') => self.policy(),
            KeyCode::Enter => self.drill(),
            KeyCode::Esc | KeyCode::Char('b') | KeyCode::Backspace => self.back(),
            _ => {}
        }
    }

    fn sort(&mut self) {
        let cols = self.columns();
        let level = self.level();
        let column = level.column.min(cols.len().saturating_sub(1));
        let Some(col) = cols.get(column) else {
            return;
        };
        if col.order.is_none() {
            self.status = Some((format!("{} cannot be sorted", col.title), true));
            return;
        }
        let sort = match level.sort {
            Some((c, desc)) if c == column => Some((c, !desc)),
            _ => Some((column, col.descending_first)),
        };
        let level = self.level_mut();
        level.sort = sort;
        level.invalidate();
        self.refresh(true);
    }

    fn switch_tab(&mut self, step: i64) {
        let level = self.level_mut();
        let n = level.ops.len() as i64;
        if n == 0 {
            return;
        }
        let at = level.ops.iter().position(|o| *o == level.op).unwrap_or(0) as i64;
        level.op = level.ops[((at + step).rem_euclid(n)) as usize];
        level.sort = None;
        level.column = 0;
        level.invalidate();
        self.refresh(true);
    }

    /// The question narrowed to the row under the cursor.
    fn row_query(&self, row: &BrowseRow) -> ObserveQuery {
        let level = self.level();
        let mut q = self.query();
        let narrow = browse::resource_filter(level.kind, row.namespace.as_deref(), &row.resource);
        q.filter = SqlFilter::all(q.filter.take().into_iter().chain([narrow]));
        q
    }

    fn drill(&mut self) {
        let level = self.level();
        let Some(row) = level.current().cloned() else {
            return;
        };
        let next = match level.kind {
            ResourceKind::Namespace if row.resource == "(host)" => Some(ResourceKind::Node),
            ResourceKind::Namespace => Some(ResourceKind::Workload),
            ResourceKind::Workload | ResourceKind::Deployment
                if row.resource.starts_with("Container/") =>
            {
                Some(ResourceKind::Container)
            }
            ResourceKind::Workload | ResourceKind::Deployment => Some(ResourceKind::Pod),
            ResourceKind::Pod => Some(ResourceKind::Container),
            ResourceKind::Container | ResourceKind::Node => None,
        };
        let Some(kind) = next else {
            self.open_detail(&row);
            return;
        };
        let namespace = match (&row.namespace, level.kind) {
            (Some(ns), _) => NamespaceScope::One(ns.clone()),
            (None, ResourceKind::Namespace)
                if !matches!(row.resource.as_str(), "(host)" | "(none)") =>
            {
                NamespaceScope::One(row.resource.clone())
            }
            _ => level.namespace.clone(),
        };
        let mut drills = level.drills.clone();
        if level.kind == ResourceKind::Namespace && !matches!(namespace, NamespaceScope::All) {
            // The namespace scope itself keeps the rows.
        } else {
            drills.push(browse::resource_filter(
                level.kind,
                row.namespace.as_deref(),
                &row.resource,
            ));
        }
        let crumb = format!("{} {}", level.kind, row.resource);
        let mut next = Level::new(kind, namespace, crumb, level.op);
        next.drills = drills;
        next.ops = level.ops.clone();
        self.levels.push(next);
        self.refresh(true);
        self.ask_coverage();
    }

    fn open_detail(&mut self, row: &BrowseRow) {
        let level = self.level();
        let slot = self.levels.len() - 1;
        let query = self.query();
        let op = level.op;
        let rn = row.rn;
        let mut what: Vec<String> = row
            .keys
            .iter()
            .filter(|k| k.as_str() != "-")
            .cloned()
            .collect();
        what.truncate(3);
        let crumb = format!("{} {}", op.as_str(), what.join(" "));
        let seq = self.send(|seq| Request::Detail {
            seq,
            slot,
            query,
            op,
            rn,
        });
        self.detail = Some(DetailView {
            crumb,
            detail: None,
            scroll: 0,
            seq,
        });
    }

    fn back(&mut self) {
        if self.levels.len() > 1 {
            self.levels.pop();
            // The parent's rows are still held, unless the filter changed or new rows
            // arrived meanwhile.
            let stale = self.level().stale;
            self.refresh(stale);
            self.ask_coverage();
        } else if self.level().search.is_some() {
            let level = self.level_mut();
            level.search = None;
            level.invalidate();
            self.refresh(true);
        }
    }

    fn policy(&mut self) {
        let Some(row) = self.level().current().cloned() else {
            return;
        };
        let query = self.row_query(&row);
        let seq = self.send(|seq| Request::Policy { seq, query });
        self.pending_policy = Some(seq);
        self.status = Some(("drafting…".into(), false));
    }

    /// Breadcrumbs, outermost first.
    pub fn crumbs(&self) -> Vec<String> {
        let mut v: Vec<String> = self.levels.iter().map(|l| l.crumb.clone()).collect();
        if let Some(d) = &self.detail {
            v.push(d.crumb.clone());
        }
        v
    }
}

fn detail_rows(view: Option<&DetailView>) -> Option<usize> {
    view.and_then(|v| v.detail.as_ref()).map(|d| d.raw.len())
}

/// The first level's breadcrumb: the command line's resource kind and scope.
fn crumb_of(q: &ObserveQuery) -> String {
    let mut s = format!("{}s", q.kind);
    if let Some(name) = &q.name {
        s = format!("{} {name}", q.kind);
    }
    match &q.namespace {
        NamespaceScope::One(ns) if q.kind.namespaced() => format!("{s} (-n {ns})"),
        _ => s,
    }
}
