//! Raw items folded as drafts fold them, so that a new pid, session id or temporary file
//! name is not a new item: per group (category, actor, reads or writes), file paths go through
//! [`crate::recommend::generalise`] (segment patterns, then directory collapse with the same
//! thresholds, `/tmp/` and friends at 1), executables through segment patterns only; other
//! categories are exact.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::recommend::generalise::{
    glob_matches, place_patterned, segment_pattern, GeneraliseOptions, Patterned, Placement,
    SegmentReason, Target,
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
    let mut groups: BTreeMap<&Group, Vec<&RawItem>> = BTreeMap::new();
    for i in items {
        groups.entry(&i.group).or_default().push(i);
    }
    let mut out = Vec::new();
    for (group, raws) in groups {
        let paths_fold = matches!(group.category, Category::Files | Category::Executables);
        let placed: BTreeMap<String, Placement> = if paths_fold {
            let paths = || raws.iter().filter(|r| r.item.starts_with('/'));
            // Paths the shapes do not know are patterned now.
            let misses: HashMap<&str, (String, BTreeSet<SegmentReason>)> = paths()
                .filter(|r| shapes.pattern(&r.item).is_none())
                .map(|r| (r.item.as_str(), segment_pattern(&r.item)))
                .collect();
            let patterned: Patterned = paths()
                .filter_map(|r| {
                    let (shape, why) = shapes
                        .pattern(&r.item)
                        .or_else(|| misses.get(r.item.as_str()))?;
                    Some((r.item.as_str(), (shape.as_str(), why)))
                })
                .collect();
            let collapse = group.category == Category::Files;
            place_patterned(&patterned, opts, collapse, None, &|_| false)
        } else {
            BTreeMap::new()
        };
        // Targets in order of first appearance, then sorted by (text, shape).
        let mut index: HashMap<(&str, &'static str), usize> = HashMap::new();
        let mut folded: Vec<Folded> = Vec::new();
        for r in raws {
            let (text, shape, why): (&str, &'static str, &[String]) = match placed.get(&r.item) {
                Some(p) => match &p.target {
                    Target::Path(t) => (t, "path", &p.why),
                    Target::Directory(d) => (d, "directory", &p.why),
                    Target::Pattern(g) => (g, "pattern", &p.why),
                },
                None if paths_fold => (&r.item, "path", &[]),
                None => (&r.item, "exact", &[]),
            };
            let at = *index.entry((text, shape)).or_insert_with(|| {
                folded.push(Folded {
                    group: group.clone(),
                    target: text.to_string(),
                    shape,
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
            for w in why {
                if !f.why.contains(w) {
                    f.why.push(w.clone());
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
    }
    out
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
        let find = |g: &Group| {
            let idx = self.by_group.get(g)?;
            idx.exact
                .get(raw.item.as_str())
                .copied()
                .or_else(|| idx.wide.iter().copied().find(|f| f.covers(&raw.item)))
        };
        find(&raw.group).or_else(|| {
            (raw.group.category == Category::Files && !raw.group.writes)
                .then(|| Group {
                    writes: true,
                    ..raw.group.clone()
                })
                .and_then(|g| find(&g))
        })
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
