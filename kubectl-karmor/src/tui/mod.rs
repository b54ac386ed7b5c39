//! `kubectl karmor observe --tui`: a full-screen terminal UI over the same data and queries as
//! `observe` (ratatui draws, crossterm drives the terminal).
//!
//! Three threads: the UI thread ([`app::App`] state, [`ui::draw`]), a key reader, and the
//! [`worker::Worker`] that owns the store and runs every DuckDB query. Keys and answers meet in
//! one channel of [`Msg`], so the screen is redrawn as soon as either arrives. The table
//! holds and draws only the rows on screen plus one page; sorting, filtering and searching
//! happen in DuckDB ([`karmor_analyzer::browse`]). The terminal is restored on every way out:
//! `q`, an error, a panic (hook), Ctrl-C (a key in raw mode), SIGTERM/SIGINT/SIGHUP.

pub mod app;
pub mod ui;
pub mod worker;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use anyhow::{bail, Context, Result};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use karmor_analyzer::browse;
use karmor_analyzer::observe::ObserveQuery;
use karmor_analyzer::Store;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub use app::App;
use worker::{Response, Worker};

/// What reaches the UI thread.
#[derive(Debug)]
pub enum Msg {
    /// A key.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
    /// A worker's answer.
    Worker(Response),
    /// A signal asked us to stop.
    Stop,
    /// `--live`: rows received since the last batch, or a word about the feed.
    Live(LiveEvent),
}

/// What a live feed (`observe --tui --live`) sends the UI.
#[derive(Debug)]
pub enum LiveEvent {
    /// New rows (de-duplicated), to append to the in-memory store.
    Rows(Vec<karmor_contract::Event>),
    /// The feed's state, for the status line (`watching …`, `reconnecting …`, `stopped …`).
    Status(String),
}

/// A live feed: started on a thread of its own once the UI is up, it sends [`Msg::Live`]
/// messages until the channel closes.
pub type LiveFeed = Box<dyn FnOnce(mpsc::Sender<Msg>) + Send>;

/// How the UI starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The command line's scope as the header shows it (`pods -n shop`).
    pub scope: String,
    /// No colours (`NO_COLOR`).
    pub no_color: bool,
    /// Table rows the first screen shows.
    pub rows: u16,
    /// Views of at least this many rows are indexed and their sort orders kept while the UI
    /// waits for keys ([`worker::PREPARE_ROWS`] in the command).
    pub prepare_rows: u64,
    /// Views whose scope groups at least this many rows of `events` show a preview of their
    /// first screen while they are built ([`worker::PREVIEW_ROWS`] in the command).
    pub preview_rows: u64,
}

/// Whether `NO_COLOR` asks for no colours (set and not empty, as no-color.org says).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The error and its causes, joined by `: `.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Starts the worker over `store` and a UI on `query` (no terminal involved: tests and
/// benches draw it on ratatui's `TestBackend`).
pub fn open(store: Store, query: ObserveQuery, opts: Options) -> Result<App> {
    let range = browse::data_range(&store)?;
    let health = store.health()?;
    let (req_tx, req_rx) = mpsc::channel();
    let (msg_tx, msg_rx) = mpsc::channel();
    let worker = Worker::new(store, range, opts.prepare_rows).with_preview_rows(opts.preview_rows);
    let req_tx = worker.sender(req_tx);
    let to_ui = msg_tx.clone();
    std::thread::Builder::new()
        .name("karmor-tui-queries".into())
        .spawn(move || worker.serve(req_rx, to_ui))
        .context("cannot start the query thread")?;
    Ok(App::new(
        app::Start {
            query,
            scope: opts.scope,
            range,
            health,
            no_color: opts.no_color,
            rows: opts.rows,
        },
        req_tx,
        msg_rx,
        msg_tx,
    ))
}

/// Whether the terminal is in the UI's state (raw mode, alternate screen).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back: raw mode off, main screen, cursor shown. Only the first call after
/// the terminal was taken does anything: leaving the alternate screen again would move the
/// cursor back over what was printed since (a panic's message, printed by the hook after the
/// first call, and then restored over by the guard's call during unwinding).
fn restore_terminal() {
    if !TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (normal return, error or unwinding panic).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Fails unless standard output and input are a terminal (checked before any data is read).
pub fn check_terminal() -> Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "--tui needs a terminal, and standard output is not one: run it in a terminal, or drop --tui and use --output table|wide|json|yaml|csv"
        );
    }
    if !std::io::stdin().is_terminal() {
        bail!("--tui reads keys from a terminal, and standard input is not one");
    }
    Ok(())
}

/// Runs the UI on the terminal until `q`, Ctrl-C or a signal; `live` feeds it new rows.
pub fn run(store: Store, query: ObserveQuery, scope: String, live: Option<LiveFeed>) -> Result<()> {
    check_terminal()?;
    let (_, height) = crossterm::terminal::size().context("cannot read the terminal's size")?;
    let mut app = open(
        store,
        query,
        Options {
            scope,
            no_color: no_color_env(),
            rows: height.saturating_sub(8).max(1),
            prepare_rows: worker::PREPARE_ROWS,
            preview_rows: worker::PREVIEW_ROWS,
        },
    )?;

    // A panic restores the terminal before its message is printed.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    let tx = app.sender();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot watch signals")?;
    std::thread::Builder::new()
        .name("karmor-tui-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(Msg::Stop);
            }
        })
        .context("cannot start the signal thread")?;

    TERMINAL_TAKEN.store(true, Ordering::SeqCst);
    enable_raw_mode().context("cannot switch the terminal to raw mode")?;
    let _guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen)
        .context("cannot open the alternate screen")?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;

    let keys = app.sender();
    std::thread::Builder::new()
        .name("karmor-tui-keys".into())
        .spawn(move || loop {
            let msg = match crossterm::event::read() {
                Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                Ok(Event::Resize(_, _)) => Msg::Resize,
                Ok(_) => continue,
                Err(_) => Msg::Stop,
            };
            let stop = matches!(msg, Msg::Stop);
            if keys.send(msg).is_err() || stop {
                return;
            }
        })
        .context("cannot start the key reader")?;

    if let Some(feed) = live {
        let tx = app.sender();
        std::thread::Builder::new()
            .name("karmor-tui-live".into())
            .spawn(move || feed(tx))
            .context("cannot start the live feed")?;
    }

    // A test hook: with KARMOR_TUI_TEST_PANIC set, `!` panics here, so that a test can see
    // the terminal restored after a panic.
    let test_panic = std::env::var_os("KARMOR_TUI_TEST_PANIC").is_some();
    loop {
        terminal.draw(|f| ui::draw(f, &app))?;
        app.after_draw();
        if app.quit {
            break;
        }
        let Some(msg) = app.next() else {
            break;
        };
        if test_panic && matches!(&msg, Msg::Key(k) if k.code == KeyCode::Char('!')) {
            panic!("KARMOR_TUI_TEST_PANIC: the test hook's panic");
        }
        app.handle(msg);
        app.drain();
        if app.quit {
            break;
        }
    }
    drop(terminal);
    Ok(())
}
