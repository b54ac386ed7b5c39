//! `kubectl karmor observe --live`: KubeArmor's relay stream, summarised as events arrive.
//!
//! The feed ([`kubectl_karmor::live`]) finds the relay pod, port-forwards to it (or dials
//! `--relay-endpoint`), watches `WatchLogs("system")` and `WatchAlerts("policy")` and
//! reconnects with backoff (the first connection must succeed: a wrong namespace, selector or
//! endpoint is an error at once). Every `--refresh` seconds the rows received since the last refresh
//! are de-duplicated (as `import` does) and appended to an in-memory store's live rows, never
//! written to disk; then the summary of the whole session is printed with observe's own query and renderers, so every observe flag applies.
//! On a terminal the screen is cleared before each summary; otherwise summaries follow each
//! other separated by a blank line. A final summary is always printed when the watch stops
//! (Ctrl-C, `--duration`, `--max-events`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use karmor_analyzer::observe::ObserveQuery;
use karmor_analyzer::timespec::parse_duration;
use karmor_analyzer::Store;
use karmor_contract::dedup::DedupWindow;
use karmor_proto::KubeArmorFeeds;
use kubectl_karmor::cluster::kubeconfig::{self, KubeTarget};
use kubectl_karmor::live::{follow, open, LiveConfig, LiveItem, Relay};
use tokio::sync::mpsc;

use crate::cli::ObserveArgs;
use crate::commands::observe::{build_query, print_empty_hint, render_store};

/// Unmappable messages described on standard error before the rest are only counted.
const SHOWN_UNMAPPED: u64 = 5;

/// `--duration` as a duration, and `--relay-endpoint` checked.
fn live_limits(args: &ObserveArgs) -> Result<Option<Duration>> {
    if !args.data.bundles.is_empty() {
        bail!("--live watches the relay: it does not read --bundle");
    }
    let stop_after = match &args.live.duration {
        Some(text) => {
            let ns = parse_duration(text).with_context(|| format!("--duration {text}"))?;
            Some(Duration::from_nanos(u64::try_from(ns).unwrap_or(0)))
        }
        None => None,
    };
    if let Some(e) = &args.live.relay_endpoint {
        let ok = e
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            bail!(
                "--relay-endpoint {e}: expected HOST:PORT, e.g. 127.0.0.1:{}",
                karmor_proto::KUBEARMOR_PORT
            );
        }
    }
    Ok(stop_after)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `observe --live`.
pub fn run(args: ObserveArgs) -> Result<ExitCode> {
    let stop_after = live_limits(&args)?;
    let q = build_query(&args)?;
    runtime()?.block_on(watch(&args, &q, stop_after))
}

/// Runs `observe --live --tui`: the terminal UI over an in-memory store that the relay's rows
/// join every `--refresh` seconds (de-duplicated as `import` does), without moving the
/// cursor. The first connection is made before the UI opens, so its errors print as usual.
pub fn run_tui(args: ObserveArgs, scope: String) -> Result<ExitCode> {
    let stop_after = live_limits(&args)?;
    let q = build_query(&args)?;
    let runtime = runtime()?;
    let relay = runtime.block_on(relay(&args))?;
    let cfg = LiveConfig {
        feeds: KubeArmorFeeds {
            logs: true,
            alerts: !args.live.no_alerts,
        },
        ..LiveConfig::default()
    };
    let first = runtime
        .block_on(open(&relay, &cfg))
        .context("cannot watch the KubeArmor relay")?;
    let refresh = Duration::from_secs(args.live.refresh);
    let max_events = args.live.max_events;
    let feed: kubectl_karmor::tui::LiveFeed = Box::new(move |ui| {
        runtime.block_on(feed_ui(
            relay, cfg, first, ui, refresh, stop_after, max_events,
        ))
    });
    kubectl_karmor::tui::run(Store::in_memory()?, q, scope, Some(feed))?;
    Ok(ExitCode::SUCCESS)
}

/// Sends the relay's rows to the UI, one de-duplicated batch per `refresh`, until the UI
/// closes, the feed ends, `--duration` elapses or `--max-events` is reached.
async fn feed_ui(
    relay: Relay,
    cfg: LiveConfig,
    first: kubectl_karmor::live::Opened,
    ui: std::sync::mpsc::Sender<kubectl_karmor::tui::Msg>,
    refresh: Duration,
    stop_after: Option<Duration>,
    max_events: Option<u64>,
) {
    use kubectl_karmor::tui::{LiveEvent, Msg};
    let say = |text: String| ui.send(Msg::Live(LiveEvent::Status(text))).is_ok();
    if !say(format!("watching {}", first.label)) {
        return;
    }
    let (tx, mut rx) = mpsc::channel(4096);
    let feed = tokio::spawn(follow(relay, cfg, first, tx));
    let mut pending = DedupWindow::new();
    let mut received = 0u64;
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = async {
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let why = loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(LiveItem::Row(event)) => {
                    pending.push(*event);
                    received += 1;
                    if max_events.is_some_and(|n| received >= n) {
                        break "--max-events reached";
                    }
                }
                Some(LiveItem::Unmapped(_)) => received += 1,
                Some(LiveItem::Connected(label)) => {
                    if !say(format!("watching {label}")) {
                        break "the UI closed";
                    }
                }
                Some(LiveItem::Disconnected { error, retry_in }) => {
                    if !say(format!("{error}; reconnecting in {:.1} s", retry_in.as_secs_f64())) {
                        break "the UI closed";
                    }
                }
                None => break "the feed ended",
            },
            _ = tick.tick() => {
                if !pending.is_empty()
                    && ui.send(Msg::Live(LiveEvent::Rows(pending.drain()))).is_err()
                {
                    break "the UI closed";
                }
            }
            _ = &mut deadline => break "--duration elapsed",
        }
    };
    feed.abort();
    if !pending.is_empty() {
        let _ = ui.send(Msg::Live(LiveEvent::Rows(pending.drain())));
    }
    let _ = say(format!("stopped: {why} ({received} messages)"));
}

/// The relay the arguments name.
async fn relay(args: &ObserveArgs) -> Result<Relay> {
    if let Some(addr) = &args.live.relay_endpoint {
        return Ok(Relay::Endpoint(addr.clone()));
    }
    let target = KubeTarget {
        kubeconfig: args.data.kubeconfig.clone(),
        context: args.data.context.clone(),
        connect_timeout: Some(Duration::from_secs(10)),
    };
    let (client, _context) = kubeconfig::client(&target).await?;
    Ok(Relay::Cluster {
        client,
        namespace: args.live.relay_namespace.clone(),
        selector: args.live.relay_selector.clone(),
        port: args.live.relay_port,
    })
}

/// The session: an in-memory store fed one batch per refresh.
struct Session {
    store: Store,
    pending: DedupWindow,
    received: u64,
    unmapped: u64,
    source: String,
    printed: bool,
    tty: bool,
}

impl Session {
    /// Appends the pending rows, de-duplicated, to the store's live rows.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = self.pending.drain();
        self.store
            .append_live(&rows)
            .context("cannot add the received rows to the in-memory store")
    }

    /// Prints the summary of everything received so far.
    fn render(&mut self, q: &ObserveQuery, args: &ObserveArgs) -> Result<bool> {
        let mut out = std::io::stdout();
        if self.tty {
            // Clear the screen and go home.
            print!("\x1b[2J\x1b[H");
        } else if self.printed {
            println!();
        }
        let empty = render_store(&self.store, q, args)?;
        out.flush()?;
        self.printed = true;
        eprintln!(
            "{} messages from {} ({} not mappable), {}",
            self.received,
            self.source,
            self.unmapped,
            chrono::Utc::now().format("%H:%M:%S UTC")
        );
        Ok(empty)
    }
}

/// Why the watch stopped.
enum Stop {
    MaxEvents,
    Duration,
    Interrupted,
    FeedEnded,
}

async fn watch(
    args: &ObserveArgs,
    q: &ObserveQuery,
    stop_after: Option<Duration>,
) -> Result<ExitCode> {
    let relay = relay(args).await?;
    let cfg = LiveConfig {
        feeds: KubeArmorFeeds {
            logs: true,
            alerts: !args.live.no_alerts,
        },
        ..LiveConfig::default()
    };
    let first = open(&relay, &cfg)
        .await
        .context("cannot watch the KubeArmor relay")?;
    let source = first.label.clone();
    let (tx, mut rx) = mpsc::channel(4096);
    let feed = tokio::spawn(follow(relay, cfg, first, tx));
    let mut session = Session {
        store: Store::in_memory()?,
        pending: DedupWindow::new(),
        received: 0,
        unmapped: 0,
        source,
        printed: false,
        tty: std::io::stdout().is_terminal(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(args.live.refresh));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let deadline = async {
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut changed = false;
    let stop = loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(LiveItem::Row(event)) => {
                    session.pending.push(*event);
                    session.received += 1;
                    changed = true;
                }
                Some(LiveItem::Unmapped(why)) => {
                    session.received += 1;
                    session.unmapped += 1;
                    if session.unmapped <= SHOWN_UNMAPPED {
                        eprintln!("warning: a KubeArmor message was not mapped onto a row: {why}");
                    }
                }
                Some(LiveItem::Connected(label)) => {
                    eprintln!("watching {label}: logs (system){}; Ctrl-C to stop",
                        if args.live.no_alerts { "" } else { " and alerts (policy)" });
                    session.source = label;
                }
                Some(LiveItem::Disconnected { error, retry_in }) => {
                    eprintln!("warning: {error}; reconnecting in {:.1} s", retry_in.as_secs_f64());
                }
                None => break Stop::FeedEnded,
            },
            _ = tick.tick() => {
                if changed {
                    session.flush()?;
                    session.render(q, args)?;
                    changed = false;
                }
            }
            _ = &mut deadline => break Stop::Duration,
            _ = &mut interrupted => break Stop::Interrupted,
        }
        if args.live.max_events.is_some_and(|n| session.received >= n) {
            break Stop::MaxEvents;
        }
    };
    feed.abort();
    session.flush()?;
    let empty = session.render(q, args)?;
    let why = match stop {
        Stop::MaxEvents => "--max-events reached",
        Stop::Duration => "--duration elapsed",
        Stop::Interrupted => "interrupted",
        Stop::FeedEnded => "the feed ended",
    };
    eprintln!("stopped: {why}");
    if empty {
        print_empty_hint(&session.store, q, args)?;
    }
    Ok(ExitCode::SUCCESS)
}
