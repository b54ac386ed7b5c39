//! Raw items folded as drafts fold them, so that a new pid, session id or temporary file
//! name is not a new item: per group (category, actor, reads or writes), file paths go through
//! [`crate::recommend::generalise`] (segment patterns, then directory collapse with the same
//! thresholds, `/tmp/` and friends at 1), executables through segment patterns only; other
//! categories are exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::recommend::generalise::{glob_matches, place_paths, GeneraliseOptions, Target};

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

/// Folds one workload's raw items (any order) into generalised items, per group.
pub fn fold(items: &[RawItem], opts: &GeneraliseOptions) -> Vec<Folded> {
    let mut groups: BTreeMap<&Group, Vec<&RawItem>> = BTreeMap::new();
    for i in items {
        groups.entry(&i.group).or_default().push(i);
    }
    let mut out = Vec::new();
    for (group, raws) in groups {
        let placed: BTreeMap<String, (Target, Vec<String>)> = match group.category {
            Category::Files | Category::Executables => {
                let paths: BTreeSet<String> = raws
                    .iter()
                    .filter(|r| r.item.starts_with('/'))
                    .map(|r| r.item.clone())
                    .collect();
                let collapse = group.category == Category::Files;
                place_paths(&paths, opts, collapse, None)
                    .into_iter()
                    .map(|(p, place)| (p, (place.target, place.why)))
                    .collect()
            }
            _ => BTreeMap::new(),
        };
        let mut by_target: BTreeMap<(String, &'static str), Folded> = BTreeMap::new();
        for r in raws {
            let (text, shape, why) = match placed.get(&r.item) {
                Some((Target::Path(p), why)) => (p.clone(), "path", why.clone()),
                Some((Target::Directory(d), why)) => (d.clone(), "directory", why.clone()),
                Some((Target::Pattern(g), why)) => (g.clone(), "pattern", why.clone()),
                None if matches!(group.category, Category::Files | Category::Executables) => {
                    (r.item.clone(), "path", Vec::new())
                }
                None => (r.item.clone(), "exact", Vec::new()),
            };
            let f = by_target
                .entry((text.clone(), shape))
                .or_insert_with(|| Folded {
                    group: group.clone(),
                    target: text,
                    shape,
                    why: Vec::new(),
                    absorbed: Vec::new(),
                    count: 0,
                    first_ns: i64::MAX,
                    last_ns: i64::MIN,
                    introduced_by: String::new(),
                    pod: String::new(),
                });
            for w in why {
                if !f.why.contains(&w) {
                    f.why.push(w);
                }
            }
            f.absorbed.push(r.item.clone());
            f.count += r.count;
            if r.first_ns < f.first_ns {
                f.first_ns = r.first_ns;
                f.introduced_by = r.introduced_by.clone();
                f.pod = r.pod.clone();
            }
            f.last_ns = f.last_ns.max(r.last_ns);
        }
        out.extend(by_target.into_values());
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
