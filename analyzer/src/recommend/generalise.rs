//! Explainable generalisation of file and process paths.
//!
//! Two steps, each of which records what it absorbed and why:
//!
//! 1. **Segment patterns.** Path segments that name an instance rather than a place become `*`:
//!    pids and tids under `/proc`, UUIDs, long hexadecimal runs (container ids, session ids),
//!    purely numeric segments and timestamp-like segments (mostly digits). `/tmp/sess_3f…9a`
//!    becomes `/tmp/sess_*`; paths that map to the same pattern merge into one rule.
//! 2. **Directory collapse.** A directory whose distinct children seen (files and
//!    subdirectories, after step 1) are more than a threshold becomes one directory rule
//!    (`matchDirectories`, or a `/*` / `/**` pattern when the directory itself holds a `*`).
//!    The threshold has a default and per-prefix overrides; by default directories at depth 1
//!    (`/etc/`, `/usr/`) never collapse, except under an override (`/tmp/` has one: temporary
//!    files have random names by design). `--max-rules` collapses further, widest directory
//!    first, until the draft fits.
//!
//! Globs follow KubeArmor's `matchPatterns`: `*` is any run of characters within one path
//! segment, `**` any run of characters including `/`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

/// Longest path or `fromSource` path the CRDs accept.
pub const MAX_PATH_LEN: usize = 200;

/// How directories collapse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneraliseOptions {
    /// A directory collapses when more than this many distinct children were seen.
    pub dir_threshold: usize,
    /// Directories shallower than this never collapse (depth of `/etc/` is 1) unless an
    /// override covers them.
    pub min_depth: usize,
    /// Per-prefix thresholds (`/tmp/` → 1): the longest prefix that contains a directory
    /// decides its threshold, and lifts the depth limit.
    pub overrides: Vec<(String, usize)>,
}

/// The per-prefix overrides that apply unless replaced: temporary directories, whose file
/// names are random by design.
pub const DEFAULT_OVERRIDES: &[(&str, usize)] = &[("/tmp/", 1), ("/var/tmp/", 1), ("/dev/shm/", 1)];

/// Default `--dir-threshold`.
pub const DEFAULT_DIR_THRESHOLD: usize = 5;

impl Default for GeneraliseOptions {
    fn default() -> Self {
        GeneraliseOptions {
            dir_threshold: DEFAULT_DIR_THRESHOLD,
            min_depth: 2,
            overrides: DEFAULT_OVERRIDES
                .iter()
                .map(|(p, n)| (p.to_string(), *n))
                .collect(),
        }
    }
}

impl GeneraliseOptions {
    /// Parses one `--dir-threshold` value: `N` (the default) or `PREFIX=N` (an override;
    /// the prefix is a directory and gets a trailing `/`).
    pub fn apply_arg(&mut self, arg: &str) -> Result<(), String> {
        let bad = |why: &str| {
            format!("invalid --dir-threshold {arg:?}: {why} (expected N or /dir/=N, e.g. 5 or /var/cache/=2)")
        };
        match arg.split_once('=') {
            None => {
                self.dir_threshold = arg.trim().parse().map_err(|_| bad("not a number"))?;
            }
            Some((prefix, n)) => {
                let n: usize = n.trim().parse().map_err(|_| bad("not a number"))?;
                let mut prefix = prefix.trim().to_string();
                if !prefix.starts_with('/') {
                    return Err(bad("the prefix must be an absolute directory"));
                }
                if !prefix.ends_with('/') {
                    prefix.push('/');
                }
                self.overrides.retain(|(p, _)| *p != prefix);
                self.overrides.push((prefix, n));
            }
        }
        Ok(())
    }

    /// The threshold of a directory (with trailing `/`) and whether it may collapse at all
    /// at its depth.
    fn threshold(&self, dir: &str) -> Option<usize> {
        let best = self
            .overrides
            .iter()
            .filter(|(p, _)| dir.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len());
        match best {
            Some((_, n)) => Some(*n),
            None if depth(dir) >= self.min_depth => Some(self.dir_threshold),
            None => None,
        }
    }
}

/// Number of segments of a directory with trailing `/` (`/` is 0, `/etc/` is 1).
fn depth(dir: &str) -> usize {
    dir.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .count()
}

// ---------------------------------------------------------------------------------------------
// Step 1: segment patterns

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}")
        .expect("constant regex")
});
static LONG_HEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[0-9a-f]{16,}").expect("constant regex"));

/// Why a segment became a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentReason {
    /// A pid or tid under `/proc`.
    Pid,
    /// A UUID (pod uids, volume ids).
    Uuid,
    /// 16 or more hexadecimal characters (container ids, session ids, hashes).
    LongHex,
    /// A segment of digits only.
    Numeric,
    /// Mostly digits: timestamps, generated names.
    TimestampLike,
}

impl SegmentReason {
    /// Human text.
    pub fn text(self) -> &'static str {
        match self {
            SegmentReason::Pid => "pid/tid under /proc",
            SegmentReason::Uuid => "UUID",
            SegmentReason::LongHex => "long hexadecimal id",
            SegmentReason::Numeric => "numeric segment",
            SegmentReason::TimestampLike => "timestamp-like segment",
        }
    }
}

/// A path with instance-specific segments replaced by `*`, and the reasons (empty when the
/// path is unchanged).
pub fn segment_pattern(path: &str) -> (String, BTreeSet<SegmentReason>) {
    let mut reasons = BTreeSet::new();
    let segs: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        if seg.is_empty() || seg.contains('*') {
            out.push(seg.to_string());
            continue;
        }
        let all_digits = seg.bytes().all(|b| b.is_ascii_digit());
        let under_proc = i >= 1
            && all_digits
            && (segs.get(1) == Some(&"proc")
                && (i == 2 || (i == 4 && segs.get(3) == Some(&"task"))));
        if under_proc {
            reasons.insert(SegmentReason::Pid);
            out.push("*".into());
            continue;
        }
        if all_digits {
            reasons.insert(SegmentReason::Numeric);
            out.push("*".into());
            continue;
        }
        if UUID.is_match(seg) {
            reasons.insert(SegmentReason::Uuid);
            out.push(UUID.replace_all(seg, "*").into_owned());
            continue;
        }
        if LONG_HEX
            .find_iter(seg)
            .any(|m| m.as_str().bytes().any(|b| b.is_ascii_digit()))
        {
            reasons.insert(SegmentReason::LongHex);
            let replaced = LONG_HEX.replace_all(seg, |c: &regex::Captures| {
                let m = &c[0];
                if m.bytes().any(|b| b.is_ascii_digit()) {
                    "*".to_string()
                } else {
                    m.to_string()
                }
            });
            out.push(replaced.into_owned());
            continue;
        }
        let digits = seg.bytes().filter(u8::is_ascii_digit).count();
        let alnum = seg.bytes().filter(u8::is_ascii_alphanumeric).count();
        if digits >= 8 && digits * 2 >= alnum {
            reasons.insert(SegmentReason::TimestampLike);
            out.push("*".into());
            continue;
        }
        out.push(seg.to_string());
    }
    (out.join("/"), reasons)
}

// ---------------------------------------------------------------------------------------------
// Step 2: directories

/// What a generalised path became.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// An exact path.
    Path(String),
    /// A directory with trailing `/` (`recursive` is decided per rule from what it absorbed).
    Directory(String),
    /// A glob.
    Pattern(String),
}

impl Target {
    /// The path, directory or pattern text.
    pub fn text(&self) -> &str {
        match self {
            Target::Path(p) | Target::Directory(p) | Target::Pattern(p) => p,
        }
    }
}

/// Where one input path went and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The rule target.
    pub target: Target,
    /// Why (empty for exact paths).
    pub why: Vec<String>,
}

/// A bound on the number of targets, from `--max-rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Most distinct targets wanted.
    pub targets: usize,
    /// The `--max-rules` value it comes from (for the explanation).
    pub max_rules: usize,
}

/// Places every path: exact, pattern, or collapsed into a directory. `paths` are absolute;
/// `bound` limits the number of distinct targets when possible.
pub fn place_paths(
    paths: &BTreeSet<String>,
    opts: &GeneraliseOptions,
    collapse_dirs: bool,
    bound: Option<Bound>,
) -> BTreeMap<String, Placement> {
    place_paths_except(paths, opts, collapse_dirs, bound, &|_| false)
}

/// [`place_paths`], where no directory for which `forbid` is true collapses (a read-only rule
/// must not cover a directory its processes write into).
pub fn place_paths_except(
    paths: &BTreeSet<String>,
    opts: &GeneraliseOptions,
    collapse_dirs: bool,
    bound: Option<Bound>,
    forbid: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, Placement> {
    // Step 1.
    let owned: Vec<(String, BTreeSet<SegmentReason>)> =
        paths.iter().map(|p| segment_pattern(p)).collect();
    let patterned: Patterned = paths
        .iter()
        .zip(&owned)
        .map(|(p, (shape, why))| (p.as_str(), (shape.as_str(), why)))
        .collect();
    place_patterned(&patterned, opts, collapse_dirs, bound, forbid)
}

/// Paths with their segment patterns and the reasons ([`segment_pattern`]), borrowed.
pub type Patterned<'a> = BTreeMap<&'a str, (&'a str, &'a BTreeSet<SegmentReason>)>;

/// [`place_paths_except`] of paths whose segment patterns are already known (drift computes
/// each distinct path's pattern once for every workload and side it folds).
pub fn place_patterned(
    patterned: &Patterned<'_>,
    opts: &GeneraliseOptions,
    collapse_dirs: bool,
    bound: Option<Bound>,
    forbid: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, Placement> {
    let plan = Collapse::plan(patterned, opts, collapse_dirs, bound, forbid);
    let mut out = BTreeMap::new();
    for (&path, &(shape, reasons)) in patterned {
        let placed = plan.place(path, shape);
        let mut why: Vec<String> = Vec::new();
        if !reasons.is_empty() {
            why.push(became_text(reasons));
        }
        if let Some(reason) = placed.collapsed_by {
            why.push(reason.to_string());
        }
        if placed.too_long {
            why.push(too_long_text());
        }
        let text = placed.text.into_owned();
        let target = match placed.kind {
            TargetKind::Path => Target::Path(text),
            TargetKind::Directory => Target::Directory(text),
            TargetKind::Pattern => Target::Pattern(text),
        };
        out.insert(path.to_string(), Placement { target, why });
    }
    out
}

/// Why a patterned path's segments became `*` (its reasons, which must not be empty).
pub fn became_text(reasons: &BTreeSet<SegmentReason>) -> String {
    format!(
        "{} became *",
        reasons
            .iter()
            .map(|r| r.text())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Why a path too long for the CRD became its directory.
pub(crate) fn too_long_text() -> String {
    format!("the path is longer than the CRD's {MAX_PATH_LEN} characters: its directory is used")
}

/// The kind of a [`Target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// An exact path.
    Path,
    /// A directory.
    Directory,
    /// A glob.
    Pattern,
}

/// Where one path goes under a [`Collapse`], its text borrowed where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed<'a> {
    /// Path, directory or pattern.
    pub kind: TargetKind,
    /// The target's text.
    pub text: std::borrow::Cow<'a, str>,
    /// Why its directory collapsed, when it did.
    pub collapsed_by: Option<&'a str>,
    /// Whether the path was too long for the CRD and its directory is used.
    pub too_long: bool,
}

/// The directories that collapse among a set of patterned paths (step 2), decided once, so
/// that each path can then be placed without copying ([`Collapse::place`]);
/// [`place_patterned`] is this plan applied to every path.
#[derive(Debug, Clone, Default)]
pub struct Collapse<'a> {
    collapsed: BTreeMap<&'a str, String>,
    deep: BTreeSet<&'a str>,
}

impl<'a> Collapse<'a> {
    /// Decides which directories of `patterned`'s shapes collapse (as [`place_patterned`]).
    pub fn plan(
        patterned: &Patterned<'a>,
        opts: &GeneraliseOptions,
        collapse_dirs: bool,
        bound: Option<Bound>,
        forbid: &dyn Fn(&str) -> bool,
    ) -> Self {
        let shapes: BTreeSet<&'a str> = patterned.values().map(|&(s, _)| s).collect();

        // Step 2: children per directory prefix, over the shapes. A directory is the shape's
        // text up to and including a `/`, and a child the segment after it: both are borrowed.
        let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for &shape in &shapes {
            // Each `/` ends a directory (the first one `/` itself for an absolute path); the
            // segment after it, up to the next `/` or the end, is that directory's child.
            let mut slashes = shape.match_indices('/').map(|(i, _)| i).peekable();
            while let Some(at) = slashes.next() {
                let end = slashes.peek().copied().unwrap_or(shape.len());
                children
                    .entry(&shape[..=at])
                    .or_default()
                    .insert(&shape[at + 1..end]);
            }
        }
        let mut collapsed: BTreeMap<&str, String> = BTreeMap::new();
        if collapse_dirs {
            // Shallowest first, so that a collapsing directory absorbs its subdirectories.
            let mut dirs: Vec<(&str, &BTreeSet<&str>)> =
                children.iter().map(|(d, k)| (*d, k)).collect();
            dirs.sort_by_key(|&(d, _)| (depth(d), d));
            for (dir, kids) in dirs {
                if dir == "/" || inside_any(dir, &collapsed) || forbid(dir) {
                    continue;
                }
                if let Some(limit) = opts.threshold(dir) {
                    if kids.len() > limit {
                        collapsed.insert(
                        dir,
                        format!(
                            "more than {limit} distinct children seen in {dir} ({}; threshold {limit}{})",
                            kids.len(),
                            if opts.overrides.iter().any(|(p, _)| dir.starts_with(p.as_str())) {
                                " for this prefix"
                            } else {
                                ""
                            }
                        ),
                    );
                    }
                }
            }
            // --max-rules: collapse the widest remaining directory until the targets fit.
            if let Some(Bound { targets, max_rules }) = bound {
                loop {
                    let count = count_targets(patterned, &collapsed);
                    if count <= targets {
                        break;
                    }
                    let candidate = children
                        .iter()
                        .filter(|&(&d, kids)| {
                            d != "/"
                                && !forbid(d)
                                && kids.len() >= 2
                                && !inside_any(d, &collapsed)
                                && !collapsed.contains_key(d)
                        })
                        .max_by_key(|&(&d, kids)| (kids.len(), depth(d)));
                    let Some((&dir, kids)) = candidate else { break };
                    let n = kids.len();
                    collapsed.retain(|d, _| !d.starts_with(dir));
                    collapsed.insert(
                    dir,
                    format!("collapsed to stay within --max-rules {max_rules} ({n} distinct children seen in {dir})"),
                );
                }
            }
        }

        // A collapsed directory that holds a `*` becomes `dir/*`, or `dir/**` when anything
        // deeper than its children was seen.
        let deep: BTreeSet<&str> = collapsed
            .keys()
            .copied()
            .filter(|d| {
                shapes
                    .iter()
                    .any(|s| s.starts_with(d) && s[d.len()..].contains('/'))
            })
            .collect();
        Collapse { collapsed, deep }
    }

    /// Where the path `path`, of segment pattern `shape`, goes: into the shallowest collapsed
    /// directory holding its shape, else its pattern when it has one, else its directory when
    /// it is too long for the CRD, else itself.
    pub fn place<'s>(&'s self, path: &'s str, shape: &'s str) -> Placed<'s> {
        use std::borrow::Cow;
        let placed = |kind, text, collapsed_by, too_long| Placed {
            kind,
            text,
            collapsed_by,
            too_long,
        };
        match self
            .collapsed
            .iter()
            .filter(|(d, _)| shape.starts_with(**d))
            .min_by_key(|(d, _)| d.len())
        {
            Some((&dir, reason)) => {
                if dir.contains('*') {
                    let glob = if self.deep.contains(dir) { "**" } else { "*" };
                    placed(
                        TargetKind::Pattern,
                        Cow::Owned(format!("{dir}{glob}")),
                        Some(reason.as_str()),
                        false,
                    )
                } else {
                    placed(
                        TargetKind::Directory,
                        Cow::Borrowed(dir),
                        Some(reason.as_str()),
                        false,
                    )
                }
            }
            None if shape != path => placed(TargetKind::Pattern, Cow::Borrowed(shape), None, false),
            None if path.len() > MAX_PATH_LEN => placed(
                TargetKind::Directory,
                Cow::Borrowed(parent_dir(path)),
                None,
                true,
            ),
            None => placed(TargetKind::Path, Cow::Borrowed(path), None, false),
        }
    }
}

fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

fn inside_any(dir: &str, collapsed: &BTreeMap<&str, String>) -> bool {
    collapsed
        .keys()
        .any(|c| dir.len() > c.len() && dir.starts_with(c))
}

fn count_targets(patterned: &Patterned<'_>, collapsed: &BTreeMap<&str, String>) -> usize {
    let mut targets: BTreeSet<&str> = BTreeSet::new();
    for &(shape, _) in patterned.values() {
        match collapsed.keys().find(|d| shape.starts_with(**d)) {
            Some(d) => targets.insert(d),
            None => targets.insert(shape),
        };
    }
    targets.len()
}

/// Whether a KubeArmor glob (`*` within a segment, `**` across segments, `?` one character)
/// matches a path.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let mut i = 0;
                loop {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if i == s.len() || s[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => !s.is_empty() && s[0] != b'/' && go(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn instance_segments_become_patterns() {
        let cases = [
            ("/proc/1234/status", "/proc/*/status", SegmentReason::Pid),
            (
                "/proc/12/task/13/stat",
                "/proc/*/task/*/stat",
                SegmentReason::Pid,
            ),
            (
                "/var/lib/kubelet/pods/0f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b/etc-hosts",
                "/var/lib/kubelet/pods/*/etc-hosts",
                SegmentReason::Uuid,
            ),
            (
                "/tmp/sess_3f2a9c0d1e4b5a6f7c8d9e0a1b2c3d4e",
                "/tmp/sess_*",
                SegmentReason::LongHex,
            ),
            (
                "/srv/uploads/2026/x.jpg",
                "/srv/uploads/*/x.jpg",
                SegmentReason::Numeric,
            ),
            (
                "/v/..2026_11_20_12_47_00.123456789/token",
                "/v/*/token",
                SegmentReason::TimestampLike,
            ),
        ];
        for (path, want, reason) in cases {
            let (got, reasons) = segment_pattern(path);
            assert_eq!(got, want, "{path}");
            assert!(reasons.contains(&reason), "{path}: {reasons:?}");
        }
        for unchanged in [
            "/var/lib/mysql/binlog.000012",
            "/usr/lib64/mysql/private/libprotobuf-lite.so.3.19.4",
            "/etc/passwd",
            "/var/lib/mysql/undo_001",
            "/proc/self/status",
            "/deadbeef/facefeed",
        ] {
            assert_eq!(segment_pattern(unchanged).0, unchanged);
        }
    }

    #[test]
    fn directories_collapse_above_the_threshold_and_say_why() {
        let mut paths = set(&["/etc/passwd", "/etc/group", "/etc/hosts"]);
        for i in 0..7 {
            paths.insert(format!("/var/lib/app/file{i}.db"));
        }
        paths.insert("/var/lib/app/sub/x".into());
        let placed = place_paths(&paths, &GeneraliseOptions::default(), true, None);
        assert_eq!(
            placed["/var/lib/app/file3.db"].target,
            Target::Directory("/var/lib/app/".into())
        );
        assert_eq!(
            placed["/var/lib/app/sub/x"].target,
            Target::Directory("/var/lib/app/".into())
        );
        assert!(placed["/var/lib/app/sub/x"].why[0].contains("more than 5"));
        // Depth-1 directories never collapse by default.
        assert_eq!(
            placed["/etc/passwd"].target,
            Target::Path("/etc/passwd".into())
        );
    }

    #[test]
    fn temp_directories_collapse_early_and_overrides_apply() {
        let paths = set(&["/tmp/phpAbc123", "/tmp/phpXyz789", "/data/a/b"]);
        let placed = place_paths(&paths, &GeneraliseOptions::default(), true, None);
        assert_eq!(
            placed["/tmp/phpAbc123"].target,
            Target::Directory("/tmp/".into())
        );
        let mut opts = GeneraliseOptions::default();
        opts.apply_arg("/tmp=5").unwrap();
        let placed = place_paths(&paths, &opts, true, None);
        assert_eq!(
            placed["/tmp/phpAbc123"].target,
            Target::Path("/tmp/phpAbc123".into())
        );
        assert!(opts.apply_arg("x=1").is_err());
        assert!(opts.apply_arg("many").is_err());
        opts.apply_arg("2").unwrap();
        assert_eq!(opts.dir_threshold, 2);
    }

    #[test]
    fn pattern_directories_collapse_into_globs() {
        let mut paths = BTreeSet::new();
        for name in ["a", "b", "c", "d", "e", "f"] {
            paths.insert(format!("/srv/up/2026/11/{name}.jpg"));
        }
        let placed = place_paths(&paths, &GeneraliseOptions::default(), true, None);
        assert_eq!(
            placed["/srv/up/2026/11/a.jpg"].target,
            Target::Pattern("/srv/up/*/*/*".into())
        );
        assert!(glob_matches("/srv/up/*/*/*", "/srv/up/2027/01/z.jpg"));
        assert!(!glob_matches("/srv/up/*/*/*", "/srv/up/2027/01/z/y.jpg"));
        assert!(glob_matches("/srv/**", "/srv/up/2027/01/z/y.jpg"));
    }

    #[test]
    fn max_rules_collapses_the_widest_directory() {
        let mut paths = BTreeSet::new();
        for i in 0..4 {
            paths.insert(format!("/etc/f{i}"));
            paths.insert(format!("/opt/a/g{i}"));
        }
        paths.insert("/opt/a/h".into());
        let bound = Bound {
            targets: 6,
            max_rules: 6,
        };
        let placed = place_paths(&paths, &GeneraliseOptions::default(), true, Some(bound));
        let targets: BTreeSet<&Target> = placed.values().map(|p| &p.target).collect();
        assert!(targets.len() <= 6, "{targets:?}");
        assert!(placed["/opt/a/h"].why[0].contains("--max-rules 6"));
    }
}
