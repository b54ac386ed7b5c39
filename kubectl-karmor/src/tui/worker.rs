//! The thread that owns the store: every DuckDB query of the UI (aggregation, filter, sort,
//! pages, graphs, details, exports, drafts) runs here, never on the UI thread. Requests that a
//! newer view request makes useless (a key held down) are answered `Superseded` unrun.
//!
//! A view whose scope (without the user's filter) groups at least [`Worker::preview_rows`]
//! rows of `events` of more than one resource is not built before its first screen is shown
//! (under any filter, and any sort): that screen is
//! read first, from the events of its first resources alone ([`browse::preview`]; the
//! resources of the level's scope without the user's filter, listed once, so that a filter
//! on any field costs no more scans), and answered as `building`; the view is built
//! right after, as soon as no request waits (a request that comes meanwhile interrupts the
//! build, which starts again once it is answered, unless a newer view replaced it), and the
//! same request is answered again with the whole view.
//!
//! A view of at least [`Worker::prepare_rows`] rows is indexed by row number as it is built
//! ([`browse::index_view`]). When no request has come for [`IDLE_AFTER`], the worker prepares
//! the last view shown: its sort orders ([`browse::rank_view`]: the current sort and its
//! reverse, COUNT both ways, each column's first sort), one statement at a time. A request
//! that arrives meanwhile interrupts that statement ([`RequestSender`]), which runs again at
//! the next idle moment; a sort pressed before its order is kept reads a top-N.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SendError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use karmor_analyzer::browse::{
    self, Arranged, Arrangement, BrowseRow, Detail, ResourceRows, TimeRange,
};
use karmor_analyzer::drift::stability::startup_seen;
use karmor_analyzer::filter::SqlFilter;
use karmor_analyzer::observe::{summarize, NamespaceScope, ObserveQuery};
use karmor_analyzer::recommend::report::workload_yaml;
use karmor_analyzer::recommend::{recommend, RecommendOptions, Scope, WorkloadSelect};
use karmor_analyzer::store::{DataHealth, Interrupter};
use karmor_analyzer::Store;
use karmor_contract::Op;

use super::Msg;
use crate::render;
use crate::summary_csv::{csv_rows, CSV_HEADERS};

/// Buckets of the graph's time histogram.
pub const HISTOGRAM_BUCKETS: usize = 48;
/// Items of the graph's top-N bar chart.
pub const TOP_ITEMS: usize = 10;

/// What one view of the UI needs from the store.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    /// Drill-down level (each level keeps its own materialised view).
    pub slot: usize,
    /// The level's question (scope, drill-down and filter applied).
    pub query: ObserveQuery,
    /// The same without the user's filter: the level's own view, kept while a filter is on
    /// (a filter on other fields than [`browse::grouping_fields`] gets a view of its own),
    /// and the scope whose resources a preview takes ([`browse::resource_rows`]).
    pub plain: ObserveQuery,
    /// The tab.
    pub op: Op,
    /// Sort and quick search.
    pub arrangement: Arrangement,
    /// First row wanted (0-based) and how many.
    pub offset: u64,
    /// Rows wanted.
    pub limit: u64,
    /// Also the graph (histogram and top items).
    pub graph: bool,
    /// Also the operations the level's rows hold (its tabs).
    pub operations: bool,
    /// When the user's filter compares only the view's grouping columns
    /// ([`browse::grouping_fields`]): `query` without it, and the filter. The worker then
    /// filters that query's view (materialised once, kept while the filter changes) instead
    /// of reading `events` again.
    pub refine: Option<(ObserveQuery, SqlFilter)>,
}

/// Slots of refined views ([`ViewRequest::refine`]): the level's slot plus this.
const REFINED: usize = 1 << 16;

/// Slots of the views of a level's question with a filter on other fields than its grouping
/// columns (grouped from `events`): the level's slot plus this.
const FILTERED: usize = 2 << 16;

/// Views of at least this many rows are prepared when the worker is idle (smaller ones
/// sort fast enough by a top-N query).
pub const PREPARE_ROWS: u64 = 100_000;

/// Views whose scope (without the user's filter) groups at least this many rows of `events`,
/// of more than one resource, show a preview of their first screen before they are built (a
/// view of fewer builds in about as long as its preview takes: one scan of the store).
pub const PREVIEW_ROWS: u64 = 500_000;

/// How long no request must arrive before idle work starts.
pub const IDLE_AFTER: Duration = Duration::from_millis(250);

/// Whether the worker runs idle work now, and how to interrupt it.
struct Preemption {
    idle_work: Mutex<bool>,
    /// Requests sent so far, counted once in the channel: a build of several statements
    /// checks between them whether one came (an interruption between two statements is
    /// lost: DuckDB clears it when the next one starts).
    sent: AtomicU64,
    interrupter: Interrupter,
}

impl Preemption {
    /// Interrupts the idle work running now, if any (never a request's query: the flag is
    /// set only around idle work, under the same lock).
    fn preempt(&self) {
        let running = self.idle_work.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            self.interrupter.interrupt();
        }
    }

    fn set(&self, running: bool) {
        *self.idle_work.lock().unwrap_or_else(|e| e.into_inner()) = running;
    }
}

/// The UI's end of the request channel: sending a request interrupts the worker's idle work
/// so that the request runs at once.
#[derive(Clone)]
pub struct RequestSender {
    tx: Sender<Request>,
    preemption: Arc<Preemption>,
}

impl RequestSender {
    /// Sends `req` to the worker, interrupting its idle work.
    pub fn send(&self, req: Request) -> Result<(), Box<SendError<Request>>> {
        self.tx.send(req).map_err(Box::new)?;
        self.preemption.sent.fetch_add(1, Ordering::SeqCst);
        self.preemption.preempt();
        Ok(())
    }
}

/// A request to the worker; `seq` ties it to its response.
#[derive(Debug, Clone)]
pub enum Request {
    /// Rows of a view (built and arranged first when needed).
    View(u64, Box<ViewRequest>),
    /// One behaviour's detail: row `rn` of the view in `slot`.
    Detail {
        /// Sequence number.
        seq: u64,
        /// The view's level.
        slot: usize,
        /// The view's question.
        query: ObserveQuery,
        /// The view's tab.
        op: Op,
        /// The row.
        rn: u64,
    },
    /// Writes what `observe --output FORMAT` prints for `query`'s `op` section to `path`.
    Export {
        /// Sequence number.
        seq: u64,
        /// The view's question.
        query: ObserveQuery,
        /// The view's tab.
        op: Op,
        /// Where (`.json`, `.yaml`/`.yml` or `.csv`).
        path: PathBuf,
    },
    /// The policy `recommend` drafts for the one workload `query`'s rows belong to.
    Policy {
        /// Sequence number.
        seq: u64,
        /// The rows under the cursor.
        query: ObserveQuery,
    },
    /// `coverage`'s start-up check over `query`'s scope (namespace, time and filter, a
    /// drill-down's; its container workloads): how many are partial because their start-up is
    /// not in the data.
    Coverage {
        /// Sequence number.
        seq: u64,
        /// The command line's question.
        query: ObserveQuery,
    },
    /// Prepares the last view shown now (its index and sort orders, as idle work would),
    /// uninterrupted; answered when done (benches and tests: the state a user reaches after
    /// a moment's reading).
    Prepare {
        /// Sequence number.
        seq: u64,
    },
    /// `--live`: appends rows to the in-memory store (every view is stale afterwards).
    Append {
        /// Sequence number.
        seq: u64,
        /// The rows.
        rows: Vec<karmor_contract::Event>,
    },
}

impl Request {
    fn seq(&self) -> u64 {
        match self {
            Request::View(seq, _) => *seq,
            Request::Detail { seq, .. }
            | Request::Export { seq, .. }
            | Request::Policy { seq, .. }
            | Request::Coverage { seq, .. }
            | Request::Prepare { seq }
            | Request::Append { seq, .. } => *seq,
        }
    }
}

/// The graph of a view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Events per time bucket of the data's range.
    pub histogram: Vec<u64>,
    /// The largest items by events.
    pub top: Vec<(String, u64)>,
}

/// Rows of a view.
#[derive(Debug, Clone)]
pub struct ViewAnswer {
    /// The level.
    pub slot: usize,
    /// Rows in the arranged view.
    pub total: u64,
    /// Index (0-based) of `rows[0]`.
    pub offset: u64,
    /// The window of rows.
    pub rows: Vec<BrowseRow>,
    /// The graph, when asked for.
    pub graph: Option<Graph>,
    /// The level's operations, when asked for.
    pub operations: Option<Vec<Op>>,
    /// The rows are a preview of the first screen ([`browse::preview`]): the view is being
    /// built, `total` counts only the rows shown, and the same request is answered again
    /// with the whole view.
    pub building: bool,
    /// Time spent in DuckDB.
    pub elapsed: Duration,
}

/// What `coverage` says of the start-up of a scope's container workloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Container workloads in scope.
    pub workloads: usize,
    /// Those whose start-up the data does not show (`coverage` calls them partial).
    pub startup_unseen: usize,
}

/// A worker's answer.
#[derive(Debug, Clone)]
pub enum Response {
    /// Rows of a view.
    View(u64, Box<ViewAnswer>),
    /// A behaviour's detail.
    Detail(u64, Box<Detail>),
    /// A file written (path, rows).
    Exported(u64, PathBuf, usize),
    /// A drafted policy (title, YAML).
    Policy(u64, String, String),
    /// The scope's start-up coverage.
    Coverage(u64, Coverage),
    /// Rows appended (how many, the data's new time range, its new counters).
    Appended(u64, usize, Option<TimeRange>, DataHealth),
    /// The last view shown is prepared (statements run).
    Prepared(u64, usize),
    /// The request failed.
    Error(u64, String),
    /// A newer view request replaced this one before it ran.
    Superseded(u64),
}

impl Response {
    /// The request's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Response::View(s, _)
            | Response::Detail(s, _)
            | Response::Exported(s, _, _)
            | Response::Policy(s, _, _)
            | Response::Appended(s, _, _, _)
            | Response::Prepared(s, _)
            | Response::Coverage(s, _)
            | Response::Error(s, _)
            | Response::Superseded(s) => *s,
        }
    }
}

/// What a slot holds, so that an unchanged view is not rebuilt.
#[derive(Default)]
struct SlotState {
    view: Option<String>,
    /// Rows of the view and of the refined view.
    view_rows: u64,
    refined_rows: u64,
    refined: Option<String>,
    /// The view of the question with a filter on other fields ([`FILTERED`]), and its rows.
    filtered: Option<String>,
    filtered_rows: u64,
    /// Whether a table of such a view exists (built for this filter or an earlier one).
    filtered_table: bool,
    arranged: Option<(String, Arranged)>,
    /// The view gained an index or a sort order since `arranged` was made (it still reads
    /// the right rows, the slow way; the next view request arranges again).
    arranged_stale: bool,
    graph: Option<(String, Graph)>,
    operations: Option<(String, Vec<Op>)>,
}

/// The view idle work prepares: the last one shown.
#[derive(Clone)]
struct Target {
    /// The level's slot (whose cached arrangement a new sort order makes stale).
    slot: usize,
    /// The view's table slot (the level's, or its refined view's).
    table: usize,
    query: ObserveQuery,
    op: Op,
    sort: Option<(usize, bool)>,
}

/// One statement of idle work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Index(usize),
    Rank(usize, (usize, bool)),
}

/// The worker's state: the store and what each slot holds.
pub struct Worker {
    store: Store,
    range: TimeRange,
    slots: HashMap<usize, SlotState>,
    preemption: Arc<Preemption>,
    /// Views of fewer rows are not prepared.
    prepare_rows: u64,
    target: Option<Target>,
    /// Idle work that failed other than by an interruption (not tried again for the view).
    failed: HashSet<Job>,
    /// Views whose scope groups fewer rows of `events` are built before their first screen
    /// is shown.
    preview_rows: u64,
    /// The view request answered by a preview, whose view is to be built next.
    pending: Option<(u64, ViewRequest)>,
    /// While a preview's view is built: the requests sent before it started (a newer one
    /// stops it between statements).
    building_since: Option<u64>,
    /// The resources of each scope and tab asked for so far, with their rows of `events`
    /// ([`browse::resource_rows`]; scopes without the user's filter): whether a view is
    /// previewed, and the resources its preview takes, under any filter.
    resources: HashMap<String, Arc<Vec<ResourceRows>>>,
}

impl Worker {
    /// A worker over `store`; `range` (the data's) buckets every activity column; views of
    /// at least `prepare_rows` rows are prepared when idle.
    pub fn new(store: Store, range: Option<TimeRange>, prepare_rows: u64) -> Self {
        let preemption = Arc::new(Preemption {
            idle_work: Mutex::new(false),
            sent: AtomicU64::new(0),
            interrupter: store.interrupter(),
        });
        Worker {
            store,
            range: range.unwrap_or(TimeRange {
                first_ns: 0,
                last_ns: 0,
            }),
            slots: HashMap::new(),
            preemption,
            prepare_rows,
            target: None,
            failed: HashSet::new(),
            preview_rows: PREVIEW_ROWS,
            pending: None,
            building_since: None,
            resources: HashMap::new(),
        }
    }

    /// Views whose scope groups at least `rows` rows of `events` (of more than one resource)
    /// show a preview of their first screen before they are built ([`PREVIEW_ROWS`] unless
    /// set).
    pub fn with_preview_rows(mut self, rows: u64) -> Self {
        self.preview_rows = rows;
        self
    }

    /// The sending end of a request channel whose receiver `serve` reads: sending interrupts
    /// idle work.
    pub fn sender(&self, tx: Sender<Request>) -> RequestSender {
        RequestSender {
            tx,
            preemption: self.preemption.clone(),
        }
    }

    /// Views of at least this many rows are prepared when idle.
    pub fn prepare_rows(&self) -> u64 {
        self.prepare_rows
    }

    /// Answers requests from `rx` on `tx` until either side hangs up; prepares the last view
    /// shown while none waits.
    pub fn serve(mut self, rx: Receiver<Request>, tx: Sender<Msg>) {
        loop {
            // Requests counted here are in the channel already (counted once sent).
            let seen = self.preemption.sent.load(Ordering::SeqCst);
            let first = match rx.try_recv() {
                Ok(req) => req,
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) if self.pending.is_some() => {
                    if let Some(response) = self.build_pending(seen) {
                        if tx.send(Msg::Worker(response)).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Err(TryRecvError::Empty) => {
                    // Idle work starts once keys pause (keys in quick succession never wait
                    // for an interruption).
                    match rx.recv_timeout(IDLE_AFTER) {
                        Ok(req) => req,
                        Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {
                            if self.idle_step() {
                                continue;
                            }
                            match rx.recv() {
                                Ok(req) => req,
                                Err(_) => return,
                            }
                        }
                    }
                }
            };
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            // Only the newest view request is worth running.
            let last_view = batch.iter().rposition(|r| matches!(r, Request::View(..)));
            for (i, req) in batch.into_iter().enumerate() {
                let response = if matches!(req, Request::View(..)) && Some(i) != last_view {
                    Response::Superseded(req.seq())
                } else {
                    self.answer(req)
                };
                if tx.send(Msg::Worker(response)).is_err() {
                    return;
                }
            }
        }
    }

    /// Builds the view a preview stood for and answers its request again, with the whole
    /// view; interruptible by a new request (the build is then kept pending: it starts again
    /// once the requests waiting are answered, unless a newer view request replaces it).
    fn build_pending(&mut self, seen: u64) -> Option<Response> {
        let (seq, v) = self.pending.take()?;
        self.building_since = Some(seen);
        self.preemption.set(true);
        let done = self.view(&v, false);
        self.preemption.set(false);
        self.building_since = None;
        match done {
            Ok(a) => Some(Response::View(seq, Box::new(a))),
            Err(e) if e.to_string().contains("nterrupt") => {
                self.pending = Some((seq, v));
                None
            }
            Err(e) => Some(Response::Error(seq, crate::tui::error_text(&e))),
        }
    }

    /// The next statement that would prepare the target view, if any.
    fn next_job(&self) -> anyhow::Result<Option<Job>> {
        let Some(t) = &self.target else {
            return Ok(None);
        };
        let (indexed, _) = browse::view_aids(&self.store, t.table, None)?;
        if !indexed {
            let job = Job::Index(t.table);
            return Ok((!self.failed.contains(&job)).then_some(job));
        }
        let columns = browse::columns(&t.query, t.op);
        let mut sorts = Vec::new();
        if let Some((c, desc)) = t.sort {
            sorts.push((c, desc));
            sorts.push((c, !desc));
        }
        // COUNT first (the sort most asked for), then every column's first sort.
        let firsts = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.order.is_some())
            .map(|(i, c)| (i, c.descending_first));
        let (count, rest): (Vec<_>, Vec<_>) =
            firsts.partition(|(i, _)| columns[*i].title == "COUNT");
        sorts.extend(count.into_iter().flat_map(|(i, d)| [(i, d), (i, !d)]));
        sorts.extend(rest);
        for sort in sorts {
            let job = Job::Rank(t.table, sort);
            if self.failed.contains(&job) {
                continue;
            }
            if !browse::view_aids(&self.store, t.table, Some(sort))?.1 {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    fn run_job(&self, job: Job) -> karmor_analyzer::Result<()> {
        match (job, &self.target) {
            (Job::Index(table), _) => browse::index_view(&self.store, table),
            (Job::Rank(table, sort), Some(t)) => {
                browse::rank_view(&self.store, table, &t.query, t.op, sort)
            }
            (Job::Rank(..), None) => Ok(()),
        }
    }

    /// Runs one statement of idle work (interruptible); false when there is none.
    fn idle_step(&mut self) -> bool {
        let job = match self.next_job() {
            Ok(Some(job)) => job,
            Ok(None) | Err(_) => return false,
        };
        self.preemption.set(true);
        let done = self.run_job(job);
        self.preemption.set(false);
        self.finish_job(job, done, true);
        true
    }

    /// Records a job's outcome: a done one makes the target's cached arrangement stale (it
    /// may read the new sort order); an interrupted one runs again later.
    fn finish_job(&mut self, job: Job, done: karmor_analyzer::Result<()>, interruptible: bool) {
        match done {
            Ok(()) => {
                if let Some(t) = &self.target {
                    if let Some(state) = self.slots.get_mut(&t.slot) {
                        state.arranged_stale = true;
                    }
                }
            }
            Err(e) if interruptible && e.to_string().contains("nterrupt") => {}
            Err(_) => {
                self.failed.insert(job);
            }
        }
    }

    /// Prepares the target view at once, uninterrupted.
    fn prepare_now(&mut self) -> anyhow::Result<usize> {
        let mut n = 0;
        while let Some(job) = self.next_job()? {
            let done = self.run_job(job);
            self.finish_job(job, done, false);
            n += 1;
        }
        Ok(n)
    }

    /// Answers one request.
    pub fn answer(&mut self, req: Request) -> Response {
        let seq = req.seq();
        let result = match req {
            Request::View(_, v) => {
                // A newer view replaces the one being built.
                self.pending = None;
                let answer = self.view(&v, true);
                if let Ok(a) = &answer {
                    if a.building {
                        self.pending = Some((seq, (*v).clone()));
                    }
                }
                answer.map(|a| Response::View(seq, Box::new(a)))
            }
            Request::Detail {
                slot,
                query,
                op,
                rn,
                ..
            } => {
                self.finish(slot);
                match self.slots.get(&slot).and_then(|s| s.arranged.as_ref()) {
                    Some((_, arranged)) => browse::detail(&self.store, arranged, &query, op, rn)
                        .map(|d| Response::Detail(seq, Box::new(d)))
                        .map_err(anyhow::Error::from),
                    None => Err(anyhow::anyhow!("the view is gone: press Esc and try again")),
                }
            }
            Request::Export {
                query, op, path, ..
            } => self
                .export(&query, op, &path)
                .map(|n| Response::Exported(seq, path, n)),
            Request::Policy { query, .. } => self
                .policy(&query)
                .map(|(title, yaml)| Response::Policy(seq, title, yaml)),
            Request::Coverage { query, .. } => {
                self.coverage(&query).map(|c| Response::Coverage(seq, c))
            }
            Request::Prepare { .. } => self.prepare_now().map(|n| Response::Prepared(seq, n)),
            Request::Append { rows, .. } => self
                .append(&rows)
                .map(|(range, health)| Response::Appended(seq, rows.len(), range, health)),
        };
        result.unwrap_or_else(|e| Response::Error(seq, crate::tui::error_text(&e)))
    }

    /// Builds `slot`'s view now when a preview stands for it (a detail reads the view's
    /// rows).
    fn finish(&mut self, slot: usize) {
        if self.pending.as_ref().is_some_and(|(_, v)| v.slot == slot) {
            if let Some((seq, v)) = self.pending.take() {
                // Built now; still pending, so that its request is answered again, at once.
                let _ = self.view(&v, false);
                self.pending = Some((seq, v));
            }
        }
    }

    /// The first screen of `v`'s view, read before the view is built (or, under a filter on
    /// its grouping columns, before the level's view it narrows is built), when `v` asks for
    /// its first rows without a quick search and its scope (without the user's filter: a
    /// bound of any filtered view's) groups at least `preview_rows` rows of `events` of more
    /// than one resource. The scope's resources, in order, with their rows, are listed once
    /// per scope and tab (one scan) and then serve every filter: a filter costs no count of
    /// its rows, and a filter on a field that varies within the view's rows (which makes a
    /// build decode every row of the store, however few it keeps) shows the rows of the
    /// first resources that hold some. A sorted view is previewed in `observe`'s order (its
    /// first rows by a sort need the whole view), and sorted once built.
    fn preview(&mut self, v: &ViewRequest) -> anyhow::Result<Option<Vec<BrowseRow>>> {
        let first = v.arrangement.search.as_deref().is_none_or(str::is_empty) && v.offset == 0;
        if !first {
            return Ok(None);
        }
        let resources = self.resource_rows(&v.plain, v.op)?;
        let rows: u64 = resources.iter().map(|r| r.rows).sum();
        if resources.len() < 2 || rows < self.preview_rows {
            return Ok(None);
        }
        Ok(Some(browse::preview(
            &self.store,
            &v.query,
            v.op,
            self.range,
            v.limit,
            &resources,
            browse::PREVIEW_ROUND_ROWS,
        )?))
    }

    /// The resources of `scope`'s `op` rows ([`browse::resource_rows`]), listed once.
    fn resource_rows(
        &mut self,
        scope: &ObserveQuery,
        op: Op,
    ) -> anyhow::Result<Arc<Vec<ResourceRows>>> {
        let key = format!("{scope:?}|{op:?}");
        if let Some(r) = self.resources.get(&key) {
            return Ok(r.clone());
        }
        let r = Arc::new(browse::resource_rows(&self.store, scope, op)?);
        self.resources.insert(key, r.clone());
        Ok(r)
    }

    fn operations(&mut self, v: &ViewRequest) -> anyhow::Result<Option<Vec<Op>>> {
        if !v.operations {
            return Ok(None);
        }
        let key = format!("{:?}", v.query);
        let state = self.slots.entry(v.slot).or_default();
        if let Some((k, ops)) = &state.operations {
            if *k == key {
                return Ok(Some(ops.clone()));
            }
        }
        let mut all = v.query.clone();
        all.operations.clear();
        let ops = browse::operations(&self.store, &all)?;
        state.operations = Some((key, ops.clone()));
        Ok(Some(ops))
    }

    /// Answers a view request; `may_preview`: a view not built yet may answer with a
    /// preview of its first screen ([`Worker::preview`]) and be built afterwards.
    fn view(&mut self, v: &ViewRequest, may_preview: bool) -> anyhow::Result<ViewAnswer> {
        let started = Instant::now();
        // A filter on other fields than the view's grouping columns: the filtered question
        // gets a view of its own, and the level's view stays for when the filter goes.
        let filtered = v.refine.is_none() && format!("{:?}", v.query) != format!("{:?}", v.plain);
        let base = v.refine.as_ref().map_or(&v.query, |(q, _)| q);
        let base_key = format!("{base:?}|{:?}", v.op);
        let built = self.slots.get(&v.slot).is_some_and(|s| {
            let held = if filtered { &s.filtered } else { &s.view };
            held.as_deref() == Some(base_key.as_str())
        });
        if !built && may_preview {
            if let Some(rows) = self.preview(v)? {
                let operations = self.operations(v)?;
                // Nothing of the slot's former view answers for this one (but the level's
                // own view, under a filter, still answers once it goes).
                let state = self.slots.entry(v.slot).or_default();
                if filtered {
                    state.filtered = None;
                } else {
                    state.view = None;
                    state.refined = None;
                }
                state.arranged = None;
                self.target = None;
                return Ok(ViewAnswer {
                    slot: v.slot,
                    total: rows.len() as u64,
                    offset: 0,
                    rows,
                    graph: None,
                    operations,
                    building: true,
                    elapsed: started.elapsed(),
                });
            }
        }
        let state = self.slots.entry(v.slot).or_default();
        let (table, view_key) = if filtered {
            if state.filtered.as_deref() != Some(base_key.as_str()) {
                state.filtered = None;
                preempted(&self.preemption, self.building_since)?;
                state.filtered_table = true;
                state.filtered_rows =
                    browse::build_view(&self.store, v.slot + FILTERED, base, v.op, self.range)?;
                if state.filtered_rows >= self.prepare_rows {
                    preempted(&self.preemption, self.building_since)?;
                    browse::index_view(&self.store, v.slot + FILTERED)?;
                    preempted(&self.preemption, self.building_since)?;
                    browse::head_view(&self.store, v.slot + FILTERED, base, v.op)?;
                }
                state.filtered = Some(base_key.clone());
                self.failed.clear();
            }
            (v.slot + FILTERED, base_key)
        } else {
            state.filtered = None;
            if std::mem::take(&mut state.filtered_table) {
                // The filter is gone: its view's memory goes too.
                browse::drop_view(&self.store, v.slot + FILTERED)?;
            }
            if state.view.as_deref() != Some(base_key.as_str()) {
                state.view = None;
                state.refined = None;
                preempted(&self.preemption, self.building_since)?;
                state.view_rows = browse::build_view(&self.store, v.slot, base, v.op, self.range)?;
                if state.view_rows >= self.prepare_rows {
                    preempted(&self.preemption, self.building_since)?;
                    // Part of building a large view (about 4 % of its time): without it a page
                    // of any order but observe's scans the whole view for its rows.
                    browse::index_view(&self.store, v.slot)?;
                    preempted(&self.preemption, self.building_since)?;
                    // The first pages of every sort, read at once by a sort pressed before
                    // idle work keeps its whole order.
                    browse::head_view(&self.store, v.slot, base, v.op)?;
                }
                state.view = Some(base_key.clone());
                self.failed.clear();
            }
            match &v.refine {
                None => (v.slot, base_key),
                Some((_, filter)) => {
                    let key = format!("{base_key}|{filter:?}");
                    if state.refined.as_deref() != Some(key.as_str()) {
                        state.refined = None;
                        state.refined_rows =
                            browse::refine_view(&self.store, v.slot + REFINED, v.slot, filter)?;
                        if state.refined_rows >= self.prepare_rows {
                            browse::index_view(&self.store, v.slot + REFINED)?;
                            browse::head_view(&self.store, v.slot + REFINED, &v.query, v.op)?;
                        }
                        state.refined = Some(key.clone());
                        self.failed.clear();
                    }
                    (v.slot + REFINED, key)
                }
            }
        };
        let arranged_key = format!("{view_key}|{:?}", v.arrangement);
        let arranged = match state.arranged.take() {
            Some((key, a)) if key == arranged_key && !state.arranged_stale => a,
            _ => browse::arrange(&self.store, table, &v.query, v.op, &v.arrangement)?,
        };
        state.arranged_stale = false;
        let arranged = &state.arranged.insert((arranged_key.clone(), arranged)).1;
        let total = arranged.total;
        let table_rows = if table == v.slot {
            state.view_rows
        } else if table == v.slot + FILTERED {
            state.filtered_rows
        } else {
            state.refined_rows
        };
        let offset = v.offset.min(total);
        let rows = browse::page(&self.store, arranged, v.op, offset, v.limit)?;
        let graph = if v.graph {
            match &state.graph {
                Some((key, g)) if *key == arranged_key => Some(g.clone()),
                _ => {
                    let g = Graph {
                        histogram: browse::histogram(
                            &self.store,
                            &v.query,
                            v.op,
                            self.range,
                            HISTOGRAM_BUCKETS,
                        )?,
                        top: browse::top(&self.store, arranged, v.op, TOP_ITEMS)?,
                    };
                    state.graph = Some((arranged_key, g.clone()));
                    Some(g)
                }
            }
        } else {
            None
        };
        let operations = self.operations(v)?;
        self.target = (table_rows >= self.prepare_rows).then(|| Target {
            slot: v.slot,
            table,
            query: v.query.clone(),
            op: v.op,
            sort: v.arrangement.sort,
        });
        Ok(ViewAnswer {
            slot: v.slot,
            total,
            offset,
            rows,
            graph,
            operations,
            building: false,
            elapsed: started.elapsed(),
        })
    }

    fn coverage(&self, query: &ObserveQuery) -> anyhow::Result<Coverage> {
        let namespace = match &query.namespace {
            NamespaceScope::One(ns) => Some(ns.clone()),
            NamespaceScope::All => None,
        };
        let scope = Scope {
            since_ns: query.since_ns,
            workloads: Some(WorkloadSelect {
                namespace,
                ..WorkloadSelect::default()
            }),
            filter: query.filter.clone(),
            ..Scope::default()
        };
        let seen = startup_seen(&self.store, &scope)?;
        Ok(Coverage {
            workloads: seen.len(),
            startup_unseen: seen.values().filter(|s| !**s).count(),
        })
    }

    fn append(
        &mut self,
        rows: &[karmor_contract::Event],
    ) -> anyhow::Result<(Option<TimeRange>, DataHealth)> {
        self.store
            .append_live(rows)
            .map_err(|e| anyhow::anyhow!("cannot add the received rows to the store: {e}"))?;
        // Every view, arrangement and graph is stale; the activity buckets follow the range.
        self.slots.clear();
        self.resources.clear();
        self.target = None;
        self.pending = None;
        let range = browse::data_range(&self.store)?;
        if let Some(r) = range {
            self.range = r;
        }
        Ok((range, self.store.health()?))
    }

    fn export(
        &self,
        query: &ObserveQuery,
        op: Op,
        path: &std::path::Path,
    ) -> anyhow::Result<usize> {
        if !matches!(op, Op::Process | Op::File | Op::Network) {
            anyhow::bail!(
                "export covers what observe prints (processes, files, network), not {}",
                op.as_str()
            );
        }
        let mut q = query.clone();
        q.operations = vec![op];
        let summary = summarize(&self.store, &q)?;
        let rows = summary.processes.as_ref().map_or(0, Vec::len)
            + summary.files.as_ref().map_or(0, Vec::len)
            + summary.network.as_ref().map_or(0, Vec::len);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let file = || {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
        };
        match ext.as_str() {
            "json" => render::json_to(file()?, &summary)?,
            "yaml" | "yml" => render::yaml_to(file()?, &summary)?,
            "csv" => render::csv_to(file()?, CSV_HEADERS, &csv_rows(&summary))?,
            _ => anyhow::bail!(
                "{}: name a .json, .yaml or .csv file (the format follows the extension)",
                path.display()
            ),
        }
        Ok(rows)
    }

    fn policy(&self, query: &ObserveQuery) -> anyhow::Result<(String, String)> {
        let found = browse::workloads(&self.store, query, 2)?;
        let (namespace, kind, name) = match found.as_slice() {
            [one] => one.clone(),
            [] => anyhow::bail!("no workload under the cursor (host or unattributed rows)"),
            _ => anyhow::bail!(
                "more than one workload under the cursor: press Enter to drill down to one"
            ),
        };
        let opts = RecommendOptions::new(Scope {
            since_ns: query.since_ns,
            workloads: Some(WorkloadSelect {
                namespace: namespace.clone(),
                kind: Some(kind.clone()),
                name: Some(name.clone()),
            }),
            ..Scope::default()
        });
        let rec = recommend(&self.store, &opts)?;
        let mut yaml = String::new();
        for w in &rec.workloads {
            yaml.push_str(&workload_yaml(w, &rec)?);
        }
        if yaml.is_empty() {
            anyhow::bail!("recommend drafted nothing for {kind}/{name}");
        }
        let title = match (&namespace, &query.namespace) {
            (Some(ns), _) => format!("recommend {kind}/{name} -n {ns}"),
            (None, NamespaceScope::One(ns)) => format!("recommend {kind}/{name} -n {ns}"),
            _ => format!("recommend {kind}/{name}"),
        };
        Ok((title, yaml))
    }
}

/// Fails (as an interruption) when a preview's view is being built (`building_since`: the
/// requests sent before it started) and a request has come since: checked between the
/// build's statements.
fn preempted(preemption: &Preemption, building_since: Option<u64>) -> anyhow::Result<()> {
    match building_since {
        Some(seen) if preemption.sent.load(Ordering::SeqCst) > seen => {
            anyhow::bail!("interrupted: a request came")
        }
        _ => Ok(()),
    }
}
