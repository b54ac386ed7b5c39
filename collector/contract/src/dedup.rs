//! The de-duplication window: identical behaviours become one row with a count.
//!
//! Two events are the same behaviour when every column but `ts_first`, `ts_last` and `count`
//! is equal. The collector flushes a window every few seconds; `import` uses one window per
//! hour partition.

use std::collections::HashMap;

use crate::schema::Event;

/// Accumulates events and merges identical behaviours.
#[derive(Debug, Default)]
pub struct DedupWindow {
    rows: HashMap<Event, (i64, i64, u64)>,
    raw: u64,
}

impl DedupWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one row (which may already stand for `count` raw events).
    pub fn push(&mut self, mut event: Event) {
        let (first, last, count) = (event.ts_first, event.ts_last, event.count.max(1));
        event.ts_first = 0;
        event.ts_last = 0;
        event.count = 0;
        self.raw += count;
        self.rows
            .entry(event)
            .and_modify(|(f, l, c)| {
                *f = (*f).min(first);
                *l = (*l).max(last);
                *c += count;
            })
            .or_insert((first, last, count));
    }

    /// Raw events pushed since the last drain.
    pub fn raw_events(&self) -> u64 {
        self.raw
    }

    /// Distinct rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when nothing was pushed since the last drain.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Takes the merged rows out, leaving the window empty.
    pub fn drain(&mut self) -> Vec<Event> {
        self.raw = 0;
        self.rows
            .drain()
            .map(|(mut e, (first, last, count))| {
                e.ts_first = first;
                e.ts_last = last;
                e.count = count;
                e
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Op;

    fn ev(ts: i64, path: &str) -> Event {
        Event {
            ts_first: ts,
            ts_last: ts,
            count: 1,
            node: "n1".into(),
            op: Op::File,
            path: Some(path.into()),
            ..Event::default()
        }
    }

    #[test]
    fn identical_behaviours_merge_with_count_and_time_range() {
        let mut w = DedupWindow::new();
        w.push(ev(30, "/etc/passwd"));
        w.push(ev(10, "/etc/passwd"));
        w.push(ev(20, "/etc/hosts"));
        w.push(ev(50, "/etc/passwd"));
        assert_eq!(w.raw_events(), 4);
        let mut rows = w.drain();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].ts_first, rows[0].ts_last, rows[0].count),
            (20, 20, 1)
        );
        assert_eq!(
            (rows[1].ts_first, rows[1].ts_last, rows[1].count),
            (10, 50, 3)
        );
        assert!(w.is_empty());
        assert_eq!(w.raw_events(), 0);
    }

    #[test]
    fn pre_counted_rows_add_their_counts() {
        let mut w = DedupWindow::new();
        let mut a = ev(5, "/x");
        a.count = 7;
        w.push(a);
        w.push(ev(9, "/x"));
        let rows = w.drain();
        assert_eq!(rows[0].count, 8);
    }
}
