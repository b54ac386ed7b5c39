//! Raw items folded as drafts fold them, so that a new pid, session id or temporary file
//! name is not a new item: per group (category, actor, reads or writes), file paths go through
//! [`crate::recommend::generalise`] (segment patterns, then directory collapse with the same
//! thresholds, `/tmp/` and friends at 1), executables through segment patterns only; other
//! categories are exact.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::recommend::generalise::{
    became_text, glob_matches, segment_pattern, too_long_text, Collapse, GeneraliseOptions,
    Patterned, SegmentReason, TargetKind,
};

use super::items::{Category, Group, RawItem};

/// One generalised item: a rule-like target and the raw items it absorbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Folded {
    /// Its group.
    pub group: Group,
    /// The path, directory (trailing `/`), pattern, or exact item text.
    pub target: String,
    /// `path`, `directory` or `pattern` (`exact` outside files and executables).
    pub shape: &'static str,
    /// Why it was generalised (empty when exact).
    pub why: Vec<String>,
    /// The raw items it absorbed.
    pub absorbed: Vec<String>,
    /// Raw events.
    pub count: u64,
    /// First seen (ns).
    pub first_ns: i64,
    /// Last seen (ns).
    pub last_ns: i64,
    /// The process of its earliest raw item (for executables: the parent).
    pub introduced_by: String,
    /// The pod of its earliest raw item.
    pub pod: String,
}

impl Folded {
    /// Whether this target covers a raw item of the same group.
    pub fn covers(&self, raw: &str) -> bool {
        match self.shape {
            "directory" => raw.starts_with(self.target.as_str()),
            "pattern" => glob_matches(&self.target, raw),
            _ => self.target == raw,
        }
    }
}

/// Segment patterns of the paths a drift query folds, each distinct path's computed once:
/// every workload, side and group folds the same few thousand paths again.
#[derive(Debug, Default)]
pub struct Shapes {
    by_path: HashMap<String, (String, BTreeSet<SegmentReason>)>,
}

impl Shapes {
    /// The patterns of every file and executable path among `items`, computed on every core.
    pub fn of<'a>(items: impl IntoIterator<Item = &'a RawItem>) -> Self {
        let distinct: HashSet<&str> = items
            .into_iter()
            .filter(|r| {
                matches!(r.group.category, Category::Files | Category::Executables)
                    && r.item.starts_with('/')
            })
            .map(|r| r.item.as_str())
            .collect();
        let paths: Vec<&str> = distinct.into_iter().collect();
        let patterns = super::par_map(&paths, |p| segment_pattern(p));
        Shapes {
            by_path: paths
                .into_iter()
                .map(str::to_string)
                .zip(patterns)
                .collect(),
        }
    }

    /// The segment pattern of `path`, if it was among the items.
    fn pattern(&self, path: &str) -> Option<&(String, BTreeSet<SegmentReason>)> {
        self.by_path.get(path)
    }
}

/// Folds one workload's raw items (any order) into generalised items, per group.
pub fn fold(items: &[RawItem], opts: &GeneraliseOptions) -> Vec<Folded> {
    fold_with(items, opts, &Shapes::default())
}

/// [`fold`] with the paths' segment patterns known in advance.
pub fn fold_with(items: &[RawItem], opts: &GeneraliseOptions, shapes: &Shapes) -> Vec<Folded> {
    fold_refs(items, opts, shapes)
}

/// [`fold_with`] of borrowed raw items.
pub(crate) fn fold_refs<'i>(
    items: impl IntoIterator<Item = &'i RawItem>,
    opts: &GeneraliseOptions,
    shapes: &'i Shapes,
) -> Vec<Folded> {
    let mut out = Vec::new();
    placed_groups(items, opts, shapes, |group, placed| {
        // Targets in order of first appearance, then sorted by (text, shape).
        let mut index: HashMap<(&str, &'static str), usize> = HashMap::new();
        let mut folded: Vec<Folded> = Vec::new();
        for p in placed {
            let r = p.raw;
            let at = *index.entry((p.text.as_ref(), p.shape)).or_insert_with(|| {
                folded.push(Folded {
                    group: group.clone(),
                    target: p.text.to_string(),
                    shape: p.shape,
                    why: Vec::new(),
                    absorbed: Vec::new(),
                    count: 0,
                    first_ns: i64::MAX,
                    last_ns: i64::MIN,
                    introduced_by: String::new(),
                    pod: String::new(),
                });
                folded.len() - 1
            });
            let f = &mut folded[at];
            // Why, in the order `place_patterned` gives a path's reasons.
            if let Some(reasons) = p.reasons {
                let text = became_text(reasons);
                if !f.why.contains(&text) {
                    f.why.push(text);
                }
            }
            if let Some(reason) = p.collapsed_by {
                if !f.why.iter().any(|w| w == reason) {
                    f.why.push(reason.to_string());
                }
            }
            if p.too_long {
                let text = too_long_text();
                if !f.why.contains(&text) {
                    f.why.push(text);
                }
            }
            f.absorbed.push(r.item.clone());
            f.count += r.count;
            if r.first_ns < f.first_ns {
                f.first_ns = r.first_ns;
                f.introduced_by.clone_from(&r.introduced_by);
                f.pod.clone_from(&r.pod);
            }
            f.last_ns = f.last_ns.max(r.last_ns);
        }
        folded.sort_by(|a, b| (a.target.as_str(), a.shape).cmp(&(b.target.as_str(), b.shape)));
        out.extend(folded);
    });
    out
}

/// The category and first-seen time of each generalised item [`fold_with`] makes of
/// `items` (in no particular order): what stability counts, without collecting what each
/// absorbed.
pub fn first_seen(
    items: &[RawItem],
    opts: &GeneraliseOptions,
    shapes: &Shapes,
) -> Vec<(Category, i64)> {
    let mut out = Vec::new();
    placed_groups(items, opts, shapes, |group, placed| {
        let mut firsts: HashMap<(&str, &'static str), i64> = HashMap::new();
        for p in placed {
            let t = firsts.entry((p.text.as_ref(), p.shape)).or_insert(i64::MAX);
            *t = (*t).min(p.raw.first_ns);
        }
        out.extend(firsts.into_values().map(|t| (group.category, t)));
    });
    out
}

/// A raw item and where its group's fold puts it.
struct PlacedRaw<'s> {
    raw: &'s RawItem,
    /// The target's text.
    text: Cow<'s, str>,
    /// `path`, `directory`, `pattern` or `exact`.
    shape: &'static str,
    /// Why its segments became `*` (none: they did not).
    reasons: Option<&'s BTreeSet<SegmentReason>>,
    /// Why its directory collapsed, when it did.
    collapsed_by: Option<&'s str>,
    /// Whether it was too long for the CRD.
    too_long: bool,
}

/// Groups `items` by [`Group`] and places each group's raw items as drafts place paths (file
/// paths patterned and collapsed, executables patterned, other categories exact), calling
/// `each` once per group, in group order, with its raw items in input order.
fn placed_groups<'i>(
    items: impl IntoIterator<Item = &'i RawItem>,
    opts: &GeneraliseOptions,
    shapes: &'i Shapes,
    mut each: impl FnMut(&'i Group, &[PlacedRaw<'_>]),
) {
    // Items usually come sorted by group (as `items` reads them): then each group is a run
    // of them, found without comparing every item's group with a map's keys.
    let items: Vec<&RawItem> = items.into_iter().collect();
    let groups: Vec<(&Group, Vec<&RawItem>)> = if items.is_sorted_by(|a, b| a.group <= b.group) {
        items
            .chunk_by(|a, b| a.group == b.group)
            .map(|run| (&run[0].group, run.to_vec()))
            .collect()
    } else {
        let mut groups: BTreeMap<&Group, Vec<&RawItem>> = BTreeMap::new();
        for i in items {
            groups.entry(&i.group).or_default().push(i);
        }
        groups.into_iter().collect()
    };
    for (group, raws) in groups {
        let exact = |r: &'i RawItem, shape| PlacedRaw {
            raw: r,
            text: Cow::Borrowed(r.item.as_str()),
            shape,
            reasons: None,
            collapsed_by: None,
            too_long: false,
        };
        let paths_fold = matches!(group.category, Category::Files | Category::Executables);
        if !paths_fold {
            let placed: Vec<PlacedRaw> = raws.iter().map(|r| exact(r, "exact")).collect();
            each(group, &placed);
            continue;
        }
        // Paths the shapes do not know are patterned now.
        let misses: HashMap<&str, (String, BTreeSet<SegmentReason>)> = raws
            .iter()
            .filter(|r| r.item.starts_with('/') && shapes.pattern(&r.item).is_none())
            .map(|r| (r.item.as_str(), segment_pattern(&r.item)))
            .collect();
        let pattern_of = |item: &str| {
            if !item.starts_with('/') {
                return None;
            }
            shapes.pattern(item).or_else(|| misses.get(item))
        };
        let patterned: Patterned = raws
            .iter()
            .filter_map(|r| {
                let (shape, why) = pattern_of(&r.item)?;
                Some((r.item.as_str(), (shape.as_str(), why)))
            })
            .collect();
        let collapse = group.category == Category::Files;
        let plan = Collapse::plan(&patterned, opts, collapse, None, &|_| false);
        let placed: Vec<PlacedRaw> = raws
            .iter()
            .map(|r| match pattern_of(&r.item) {
                Some((shape, reasons)) => {
                    let p = plan.place(&r.item, shape);
                    PlacedRaw {
                        raw: r,
                        text: p.text,
                        shape: match p.kind {
                            TargetKind::Path => "path",
                            TargetKind::Directory => "directory",
                            TargetKind::Pattern => "pattern",
                        },
                        reasons: (!reasons.is_empty()).then_some(reasons),
                        collapsed_by: p.collapsed_by,
                        too_long: p.too_long,
                    }
                }
                None => exact(r, "path"),
            })
            .collect();
        each(group, &placed);
    }
}

/// Generalised items indexed by group, to ask whether a raw item is covered: exact targets
/// by text (one hash look-up), directories and patterns scanned.
#[derive(Debug, Default)]
pub struct Coverage<'a> {
    by_group: HashMap<&'a Group, GroupIndex<'a>>,
}

#[derive(Debug, Default)]
struct GroupIndex<'a> {
    exact: HashMap<&'a str, &'a Folded>,
    wide: Vec<&'a Folded>,
}

impl<'a> Coverage<'a> {
    /// Indexes `folded`.
    pub fn new(folded: &'a [Folded]) -> Self {
        let mut by_group: HashMap<&Group, GroupIndex> = HashMap::new();
        for f in folded {
            let g = by_group.entry(&f.group).or_default();
            match f.shape {
                "directory" | "pattern" => g.wide.push(f),
                _ => {
                    g.exact.insert(f.target.as_str(), f);
                }
            }
        }
        Coverage { by_group }
    }

    /// The generalised item that covers a raw item, if any. A read is also covered by what
    /// the same process may write (a rule without `readOnly` allows reads).
    pub fn covering(&self, raw: &RawItem) -> Option<&'a Folded> {
        self.of_group(&raw.group).covering(&raw.item)
    }

    /// What covers the raw items of `group` ([`Coverage::covering`] for many items of one
    /// group, looking the group up once).
    pub(crate) fn of_group(&self, group: &Group) -> GroupCoverage<'_, 'a> {
        let writes = (group.category == Category::Files && !group.writes)
            .then(|| {
                self.by_group.get(&Group {
                    writes: true,
                    ..group.clone()
                })
            })
            .flatten();
        GroupCoverage {
            own: self.by_group.get(group),
            writes,
        }
    }
}

/// The generalised items that may cover raw items of one group: the group's own and, for
/// reads, those of the same process's writes.
pub(crate) struct GroupCoverage<'c, 'a> {
    own: Option<&'c GroupIndex<'a>>,
    writes: Option<&'c GroupIndex<'a>>,
}

impl<'a> GroupCoverage<'_, 'a> {
    /// The generalised item that covers the raw item `item` of this group, if any.
    pub(crate) fn covering(&self, item: &str) -> Option<&'a Folded> {
        let find = |idx: &GroupIndex<'a>| {
            idx.exact
                .get(item)
                .copied()
                .or_else(|| idx.wide.iter().copied().find(|f| f.covers(item)))
        };
        self.own
            .and_then(find)
            .or_else(|| self.writes.and_then(find))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(actor: &str, path: &str, t: i64) -> RawItem {
        RawItem {
            group: Group {
                category: Category::Files,
                actor: actor.into(),
                writes: true,
            },
            item: path.into(),
            count: 1,
            first_ns: t,
            last_ns: t,
            introduced_by: actor.into(),
            pod: "p".into(),
        }
    }

    /// Items of two processes, exact, patterned, collapsed and too long, reads and writes.
    fn mixed() -> Vec<RawItem> {
        let long = format!("/srv/{}/x", "d".repeat(210));
        let mut items = vec![
            file("/bin/sh", "/tmp/a1", 7),
            file("/bin/sh", "/tmp/b2", 2),
            file("/bin/sh", "/proc/4242/status", 9),
            file("/bin/sh", "/proc/77/status", 4),
            file("/bin/sh", "/srv/uploads/2026/11/f", 5),
            file("/bin/sh", &long, 6),
            file("/usr/bin/php", "/etc/hosts", 3),
            file(
                "/usr/bin/php",
                "/tmp/sess_3f2a9c0d1e4b5a6f7c8d9e0a1b2c3d4e",
                1,
            ),
            file("/usr/bin/php", "relative/path", 8),
        ];
        for (i, name) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
            items.push(file(
                "/usr/bin/php",
                &format!("/var/lib/app/{name}.db"),
                20 + i as i64,
            ));
        }
        let mut read = file("/usr/bin/php", "/etc/hosts", 2);
        read.group.writes = false;
        items.push(read);
        let mut exe = file("/bin/sh", "/usr/bin/curl", 11);
        exe.group.category = Category::Executables;
        items.push(exe);
        items
    }

    #[test]
    fn first_seen_counts_what_fold_makes() {
        let opts = GeneraliseOptions::default();
        let items = mixed();
        let folded = fold(&items, &opts);
        assert!(folded.iter().any(|f| f.shape == "directory"), "{folded:?}");
        assert!(folded.iter().any(|f| f.shape == "pattern"), "{folded:?}");
        let mut from_fold: Vec<(Category, i64)> = folded
            .iter()
            .map(|f| (f.group.category, f.first_ns))
            .collect();
        let mut seen = first_seen(&items, &opts, &Shapes::default());
        from_fold.sort();
        seen.sort();
        assert_eq!(seen, from_fold);
    }

    #[test]
    fn fold_does_not_depend_on_the_order_of_its_items() {
        let opts = GeneraliseOptions::default();
        let mut items = mixed();
        items.sort_by(|a, b| (&a.group, &a.item).cmp(&(&b.group, &b.item)));
        let sorted = fold(&items, &opts);
        // Groups interleaved (not sorted): folded through the map, same answer.
        items.reverse();
        assert_eq!(fold(&items, &opts), {
            let mut reversed_within = sorted.clone();
            // Within a target, raw items are absorbed in input order.
            for f in &mut reversed_within {
                f.absorbed.reverse();
            }
            reversed_within
        });
        // Shapes known in advance change nothing.
        let shapes = Shapes::of(&items);
        assert_eq!(fold_with(&items, &opts, &shapes), fold(&items, &opts));
    }

    #[test]
    fn temporary_names_fold_into_their_directory_and_cover_new_ones() {
        let items = vec![
            file("/usr/bin/php", "/tmp/phpA1b2C3", 5),
            file("/usr/bin/php", "/tmp/phpZz9Yy8", 3),
            file("/usr/bin/php", "/var/log/app.log", 4),
        ];
        let folded = fold(&items, &GeneraliseOptions::default());
        let tmp = folded
            .iter()
            .find(|f| f.target == "/tmp/")
            .unwrap_or_else(|| panic!("{folded:?}"));
        assert_eq!(tmp.shape, "directory");
        assert_eq!(tmp.absorbed.len(), 2);
        assert_eq!(tmp.first_ns, 3);
        let cov = Coverage::new(&folded);
        assert!(cov
            .covering(&file("/usr/bin/php", "/tmp/phpNEW123", 9))
            .is_some());
        // Another process's group is not covered.
        assert!(cov
            .covering(&file("/bin/sh", "/tmp/phpNEW123", 9))
            .is_none());
        // A read by the writer is covered by its writes.
        let mut read = file("/usr/bin/php", "/var/log/app.log", 9);
        read.group.writes = false;
        assert!(cov.covering(&read).is_some());
    }
}
