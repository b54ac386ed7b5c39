//! Drawing: header, tabs, the table (only its visible rows), the graph pane, a behaviour's
//! detail, the input line, the footer and the help. Colours only where `NO_COLOR` is unset;
//! every distinction (selection, sort, Block/Audit) also shows without them.

use karmor_analyzer::browse::{Outcome, ACTIVITY_BUCKETS};
use karmor_contract::bundle::format_ts;
use karmor_contract::Op;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::Frame;

use super::app::{App, Mode, Picker};
use crate::render::short_time;

/// Smallest terminal the UI draws in.
pub const MIN_WIDTH: u16 = 60;
/// Smallest terminal height the UI draws in.
pub const MIN_HEIGHT: u16 = 14;

/// The keys, as the footer and the help list them.
pub const KEYS: &[(&str, &str)] = &[
    (
        "f",
        "filter (-f language; ↑/↓ field picker: Space checks, Enter adds)",
    ),
    ("/", "quick search over the rows"),
    ("s", "sort by the selected column (again: reverse)"),
    ("←/→", "select a column"),
    ("↑/↓ PgUp/PgDn Home/End", "move"),
    ("g", "graph: activity over time, top items"),
    (
        "Enter",
        "drill down (namespace → workload → pod → container → behaviour)",
    ),
    ("Esc/b", "back"),
    ("Tab", "next tab"),
    ("e", "export the view (.json/.yaml/.csv)"),
    ("p", "policy recommend drafts for the workload"),
    ("?", "help"),
    ("q", "quit"),
];

const FOOTER: &str = "f filter  / search  s sort  g graph  ⏎ drill  esc back  tab next  e export  p policy  ? help  q quit";

fn tab_title(op: Op) -> &'static str {
    match op {
        Op::Process => "Processes",
        Op::File => "Files",
        Op::Network => "Network",
        Op::Syscall => "Syscalls",
        Op::Capability => "Capabilities",
    }
}

struct Styles {
    colour: bool,
}

impl Styles {
    fn fg(&self, c: Color) -> Style {
        if self.colour {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn outcome(&self, o: Outcome) -> Style {
        match o {
            Outcome::Allow => self.fg(Color::Green),
            Outcome::Audit => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Outcome::Denied => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            Outcome::Block => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }

    fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn dim(&self) -> Style {
        if self.colour {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
}

/// Columns whose text is short and always shown whole.
fn is_fixed(title: &str) -> bool {
    matches!(
        title,
        "RESULT" | "COUNT" | "FIRST SEEN" | "LAST SEEN" | "ACTIVITY" | "MODE" | "PROTO" | "PORT"
    )
}

/// Shrinks the widest shrinkable columns until the table fits `avail` cells (columns
/// `spacing` apart); fixed columns and columns of 8 cells or fewer keep their width.
pub fn fit_widths(widths: &mut [usize], fixed: &[bool], avail: usize, spacing: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + spacing * w.len().saturating_sub(1);
    while total(widths) > avail {
        let widest = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| !fixed.get(*i).copied().unwrap_or(false) && **w > 8)
            .max_by_key(|(i, w)| (**w, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
}

/// `text` cut to `width` cells: paths keep their end (`…/uploads/x.jpg`), other text its
/// start.
pub fn fit(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    if text.contains('/') {
        let tail: String = text.chars().skip(n - (width - 1)).collect();
        format!("…{tail}")
    } else {
        let head: String = text.chars().take(width - 1).collect();
        format!("{head}…")
    }
}

/// A row's activity as a text sparkline, scaled to its own peak.
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v as f64 / max as f64) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

fn short(ts_ns: i64) -> String {
    short_time(&format_ts(ts_ns))
}

/// A time as the table shows it, `MM-DD HH:MM:SS` (UTC; the header gives the year), from
/// RFC 3339 text; other text unchanged.
pub fn table_time(rfc3339: &str) -> String {
    match (rfc3339.get(5..10), rfc3339.get(11..19)) {
        (Some(day), Some(time)) if rfc3339.len() >= 20 => format!("{day} {time}"),
        _ => rfc3339.to_string(),
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let st = Styles {
        colour: !app.no_color,
    };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Terminal too small ({}x{}): karmor observe --tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it, or press q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let input_lines = match &app.mode {
        Mode::Filter { error: Some(_), .. } => 2,
        _ => 1,
    };
    let [header, tabs, body, input, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(input_lines),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, &st, header);
    draw_tabs(f, app, &st, tabs);
    if app.detail.is_some() {
        draw_detail(f, app, &st, body);
    } else if app.graph_on {
        let [table, graph] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        draw_table(f, app, &st, table);
        draw_graph(f, app, &st, graph);
    } else {
        draw_table(f, app, &st, body);
    }
    draw_input(f, app, &st, input);
    let keys: String = FOOTER.chars().take(usize::from(footer.width)).collect();
    f.render_widget(Paragraph::new(Line::styled(keys, st.dim())), footer);
    match &app.mode {
        Mode::Help => draw_help(f, &st, body),
        Mode::Text {
            title,
            lines,
            scroll,
        } => draw_text(f, &st, body, title, lines, *scroll),
        Mode::Filter { picker, .. } => draw_picker(f, &st, body, picker),
        _ => {}
    }
}

fn draw_header(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let level = app.level();
    let filter = app.filter.as_ref().map_or("-", |(t, _)| t.as_str());
    let mut first = vec![
        Span::styled("karmor observe ", st.title()),
        Span::raw(format!(" scope: {}", app.info.scope)),
        Span::raw(format!("  filter: {filter}")),
    ];
    if let Some(s) = &level.search {
        first.push(Span::raw(format!("  search: {s}")));
    }
    let range = match app.info.range {
        Some(r) => format!("{} .. {}", short(r.first_ns), short(r.last_ns)),
        None => "no data".into(),
    };
    let rows = match level.total {
        // A sorted view's preview is in `observe`'s order: sorted once built.
        Some(t) if level.building && level.sort.is_some() => {
            format!("{t}+ (building the view… sorted once built)")
        }
        Some(t) if level.building => format!("{t}+ (building the view…)"),
        Some(t) => t.to_string(),
        None => "…".into(),
    };
    let h = &app.info.health;
    // `coverage`'s partial verdict: drops, or workloads whose start-up the data misses.
    let mut partial = Vec::new();
    if h.events_dropped > 0 {
        partial.push(format!(
            "{} of {} events dropped",
            h.events_dropped,
            h.events_seen + h.events_dropped
        ));
    }
    if let Some(c) = level.coverage.filter(|c| c.startup_unseen > 0) {
        partial.push(format!(
            "start-up not seen for {} of {} workloads",
            c.startup_unseen, c.workloads
        ));
    }
    // The verdict of the shown level's scope; live, of the rows received so far.
    let live = if app.info.live_rows.is_some() {
        "live, "
    } else {
        ""
    };
    let health = if !partial.is_empty() {
        Span::styled(
            format!("health: {live}partial ({})", partial.join(", ")),
            st.error(),
        )
    } else if app.info.live_rows.is_some() {
        Span::raw(format!(
            "health: live, complete ({} events received)",
            h.events_seen
        ))
    } else {
        Span::raw(format!(
            "health: complete ({} events, {} files)",
            h.events_seen, h.files
        ))
    };
    let mut second = vec![Span::raw(format!("time: {range}  rows: {rows}  ")), health];
    if let Some(n) = app.info.live_rows {
        second.push(Span::styled(
            format!("  live: {n} rows received"),
            st.title(),
        ));
    }
    if let Some(t) = level.query_time {
        second.push(Span::styled(
            format!("  query {} ms", t.as_millis()),
            st.dim(),
        ));
    }
    let crumbs = app.crumbs().join(" › ");
    let lines = vec![
        Line::from(first),
        Line::from(second),
        Line::styled(format!("› {crumbs}"), st.title()),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_tabs(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let level = app.level();
    let mut spans = Vec::new();
    for op in &level.ops {
        let title = format!(" {} ", tab_title(*op));
        if *op == level.op {
            spans.push(Span::styled(
                format!("[{}]", title.trim()),
                st.title().add_modifier(Modifier::REVERSED),
            ));
        } else {
            spans.push(Span::raw(title));
        }
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_table(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let level = app.level();
    let q = app.query();
    let show_ns = karmor_analyzer::browse::shows_namespace(&q);
    let cols = app.columns();
    let body_rows = area.height.saturating_sub(1).max(1);
    app.body_rows.set(body_rows);
    let Some(total) = level.total else {
        f.render_widget(Paragraph::new("loading…"), area);
        return;
    };
    if total == 0 {
        let text = if app.filter.is_some() || level.search.is_some() {
            "No rows match the filter (f to change it, / to change the search)."
        } else {
            "No behaviour recorded for this view."
        };
        f.render_widget(Paragraph::new(text), area);
        return;
    }
    let end = (level.top + u64::from(body_rows)).min(total);
    let mut cells: Vec<(u64, Option<Vec<String>>, Option<Outcome>)> = Vec::new();
    for i in level.top..end {
        match level.row(i) {
            Some(r) => {
                let mut c = r.cells(show_ns);
                let n = c.len();
                c[n - 2] = table_time(&c[n - 2]);
                c[n - 1] = table_time(&c[n - 1]);
                c.push(sparkline(&r.activity));
                cells.push((i, Some(c), Some(r.outcome)));
            }
            None => cells.push((i, None, None)),
        }
    }
    // Widths from the header and the visible rows only.
    let mut widths: Vec<usize> = cols.iter().map(|c| c.title.chars().count() + 1).collect();
    for (_, c, _) in &cells {
        if let Some(c) = c {
            for (w, v) in widths.iter_mut().zip(c) {
                *w = (*w).max(v.chars().count());
            }
        }
    }
    if let Some(w) = widths.last_mut() {
        *w = (*w).max(ACTIVITY_BUCKETS);
    }
    for w in widths.iter_mut() {
        *w = (*w).min(64);
    }
    let fixed: Vec<bool> = cols.iter().map(|c| is_fixed(&c.title)).collect();
    fit_widths(&mut widths, &fixed, usize::from(area.width), 2);
    let cells: Vec<(u64, Option<Vec<String>>, Option<Outcome>)> = cells
        .into_iter()
        .map(|(i, c, o)| {
            let c = c.map(|c| {
                c.into_iter()
                    .zip(&widths)
                    .map(|(v, w)| fit(&v, *w))
                    .collect()
            });
            (i, c, o)
        })
        .collect();
    let header = Row::new(cols.iter().enumerate().map(|(i, c)| {
        let mut title = c.title.clone();
        if let Some((s, desc)) = level.sort {
            if s == i {
                title.push(if desc { '▼' } else { '▲' });
            }
        }
        let mut style = st.title();
        if i == level.column {
            style = style.add_modifier(Modifier::UNDERLINED | Modifier::REVERSED);
        }
        ratatui::widgets::Cell::from(title).style(style)
    }));
    let result_col = cols.iter().position(|c| c.title == "RESULT");
    let rows = cells.into_iter().map(|(i, c, outcome)| {
        let selected = i == level.selected;
        let row = match c {
            Some(c) => Row::new(c.into_iter().enumerate().map(|(j, v)| {
                let cell = ratatui::widgets::Cell::from(v);
                match (Some(j) == result_col, outcome) {
                    (true, Some(o)) => cell.style(st.outcome(o)),
                    _ => cell,
                }
            })),
            None => Row::new(vec!["…".to_string()]),
        };
        if selected {
            row.style(Style::default().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let constraints: Vec<Constraint> = widths
        .iter()
        .map(|w| Constraint::Length(*w as u16))
        .collect();
    let table = Table::new(rows, constraints)
        .header(header)
        .column_spacing(2);
    f.render_widget(table, area);
}

fn draw_graph(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let level = app.level();
    let [hist, top] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let Some(g) = &level.graph else {
        f.render_widget(
            Paragraph::new("graph: loading…").block(Block::default().borders(Borders::TOP)),
            area,
        );
        return;
    };
    let range = match app.info.range {
        Some(r) => format!("{} .. {}", short(r.first_ns), short(r.last_ns)),
        None => String::new(),
    };
    let peak = g.histogram.iter().copied().max().unwrap_or(0);
    let hist_block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" events over time (peak {peak}/bucket) "))
        .title_bottom(format!(" {range} "));
    let spark = Sparkline::default()
        .block(hist_block)
        .data(&g.histogram)
        .style(st.fg(Color::Cyan));
    f.render_widget(spark, hist);
    let what = match level.op {
        Op::Process => "processes",
        Op::File => "files",
        Op::Network => "peers",
        Op::Syscall => "system calls",
        Op::Capability => "capabilities",
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" top {what} by events "));
    let inner = block.inner(top);
    f.render_widget(block, top);
    let max = g.top.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let label_w = g
        .top
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(usize::from(inner.width) / 2);
    let num_w = max.to_string().len();
    let bar_w = usize::from(inner.width).saturating_sub(label_w + num_w + 3);
    let lines: Vec<Line> = g
        .top
        .iter()
        .take(usize::from(inner.height))
        .map(|(label, n)| {
            let label: String = if label.chars().count() > label_w {
                let keep: String = label
                    .chars()
                    .rev()
                    .take(label_w.saturating_sub(1))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("…{keep}")
            } else {
                label.clone()
            };
            let len = ((*n as f64 / max as f64) * bar_w as f64).round() as usize;
            Line::from(vec![
                Span::raw(format!("{label:<label_w$} ")),
                Span::styled("█".repeat(len.max(1)), st.fg(Color::Cyan)),
                Span::raw(format!(" {n:>num_w$}")),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_detail(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let Some(view) = &app.detail else {
        return;
    };
    let Some(d) = &view.detail else {
        f.render_widget(Paragraph::new("loading…"), area);
        return;
    };
    let join = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Events:     ", st.title()),
            Span::raw(format!("{} in {} rows", d.count, d.rows)),
        ]),
        Line::from(vec![
            Span::styled("First seen: ", st.title()),
            Span::raw(short(d.first_ns)),
            Span::styled("   Last seen: ", st.title()),
            Span::raw(short(d.last_ns)),
        ]),
        Line::from(vec![
            Span::styled("Pids:       ", st.title()),
            Span::raw(join(&d.pids)),
        ]),
        Line::from(vec![
            Span::styled("Nodes:      ", st.title()),
            Span::raw(join(&d.nodes)),
        ]),
        Line::from(vec![
            Span::styled("Containers: ", st.title()),
            Span::raw(join(&d.containers)),
        ]),
        Line::from(vec![
            Span::styled("Results:    ", st.title()),
            Span::raw(join(&d.results)),
        ]),
        Line::styled(
            format!("Rows behind it ({} shown of {}):", d.raw.len(), d.rows),
            st.title(),
        ),
    ];
    let head = lines.len() as u16;
    let [top, raw] = Layout::vertical([Constraint::Length(head), Constraint::Min(1)]).areas(area);
    f.render_widget(Paragraph::new(std::mem::take(&mut lines)), top);
    let visible = usize::from(raw.height.saturating_sub(1));
    let shown: Vec<&Vec<String>> = d.raw.iter().skip(view.scroll).take(visible).collect();
    let mut widths: Vec<usize> = d.raw_headers.iter().map(|h| h.len()).collect();
    let cells: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            let mut r = (*r).clone();
            r[0] = table_time(&r[0]);
            r[1] = table_time(&r[1]);
            r
        })
        .collect();
    for r in &cells {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count()).min(60);
        }
    }
    let fixed: Vec<bool> = d
        .raw_headers
        .iter()
        .map(|h| {
            matches!(
                *h,
                "FIRST" | "LAST" | "PID" | "PPID" | "UID" | "RESULT" | "ACTION" | "COUNT"
            )
        })
        .collect();
    fit_widths(&mut widths, &fixed, usize::from(raw.width), 2);
    let cells: Vec<Vec<String>> = cells
        .into_iter()
        .map(|r| {
            r.into_iter()
                .zip(&widths)
                .map(|(v, w)| fit(&v, *w))
                .collect()
        })
        .collect();
    let table = Table::new(
        cells.into_iter().map(Row::new),
        widths.iter().map(|w| Constraint::Length(*w as u16)),
    )
    .header(Row::new(d.raw_headers.iter().copied()).style(st.title()))
    .column_spacing(2);
    f.render_widget(table, raw);
}

fn draw_input(f: &mut Frame, app: &App, st: &Styles, area: Rect) {
    let (prompt, input) = match &app.mode {
        Mode::Filter { input, .. } => ("filter> ", input),
        Mode::Search(input) => ("search/ ", input),
        Mode::Export(input) => ("export to> ", input),
        _ => {
            let line = match &app.status {
                Some((text, true)) => Line::styled(format!("error: {text}"), st.error()),
                Some((text, false)) => Line::raw(text.clone()),
                None => Line::raw(""),
            };
            f.render_widget(Paragraph::new(line), area);
            return;
        }
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(prompt, st.title()),
        Span::raw(input.text.clone()),
    ])];
    if let Mode::Filter { error: Some(e), .. } = &app.mode {
        let pad = " ".repeat(prompt.len() + e.column() - 1);
        lines.push(Line::styled(
            format!("{pad}^ column {}: {}", e.column(), e.message),
            st.error(),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
    let cursor_col = input.text[..input.cursor].chars().count();
    f.set_cursor_position((area.x + (prompt.len() + cursor_col) as u16, area.y));
}

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame, st: &Styles, area: Rect) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>22}  "), st.title()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "RESULT, worst first: Block, Denied (refused, no alert), Audit, Allow. Any key closes.",
    ));
    let r = popup(area, 96, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}

fn draw_text(f: &mut Frame, st: &Styles, area: Rect, title: &str, lines: &[String], scroll: usize) {
    let r = popup(area, area.width.saturating_sub(4), area.height);
    f.render_widget(Clear, r);
    let body: Vec<Line> = lines
        .iter()
        .skip(scroll)
        .map(|l| Line::raw(l.clone()))
        .collect();
    f.render_widget(
        Paragraph::new(body).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {title} "), st.title()))
                .title_bottom(" ↑/↓ scroll  Esc close "),
        ),
        r,
    );
}

fn draw_picker(f: &mut Frame, st: &Styles, area: Rect, picker: &Picker) {
    let fields = karmor_analyzer::filter::Field::ALL;
    let h = area.height.saturating_sub(2).clamp(1, 12) as usize;
    let start = picker
        .cursor
        .saturating_sub(h / 2)
        .min(fields.len().saturating_sub(h));
    let lines: Vec<Line> = fields
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, fl)| {
            let here = i == picker.cursor;
            let pointer = if here && picker.focused { '›' } else { ' ' };
            let mark = if picker.checked.contains(fl) {
                "[x]"
            } else {
                "[ ]"
            };
            let line = format!("{pointer}{mark} {}", fl.key());
            if here {
                Line::styled(line, st.title().add_modifier(Modifier::REVERSED))
            } else {
                Line::raw(line)
            }
        })
        .collect();
    let w = 28;
    let r = Rect {
        x: area.x + area.width.saturating_sub(w),
        y: area.y,
        width: w.min(area.width),
        height: (h as u16 + 2).min(area.height),
    };
    let title = if picker.focused {
        " Space checks, Enter adds "
    } else {
        " fields: ↑↓ or Tab "
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_end_and_other_text_its_start() {
        assert_eq!(fit("/var/www/html/index.php", 12), "…l/index.php");
        assert_eq!(fit("wordpress-mysql", 10), "wordpress…");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn widths_shrink_the_widest_free_columns_only() {
        let mut w = vec![30, 20, 7, 20];
        let fixed = [false, false, true, true];
        fit_widths(&mut w, &fixed, 60, 2);
        assert_eq!(w.iter().sum::<usize>() + 6, 60);
        assert_eq!(&w[2..], &[7, 20]);
        assert!(w[0].abs_diff(w[1]) <= 1, "{w:?}");
        // Nothing left to shrink: the widths stay at their floor.
        let mut w = vec![9, 9, 40];
        fit_widths(&mut w, &[false, false, true], 10, 2);
        assert_eq!(w, vec![8, 8, 40]);
    }

    #[test]
    fn table_times_drop_the_year_and_fraction() {
        assert_eq!(table_time("2026-11-20T08:00:01.120Z"), "11-20 08:00:01");
        assert_eq!(table_time("2026-11-20T08:00:01Z"), "11-20 08:00:01");
        assert_eq!(table_time("-"), "-");
    }

    #[test]
    fn sparklines_scale_to_the_row_peak() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), " ▃▅█");
        assert_eq!(sparkline(&[0, 0]), "  ");
    }
}
