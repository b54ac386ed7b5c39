//! Path matching as KubeArmor's rules define it: exact paths, directories (direct children, or
//! any depth with `recursive`) and AppArmor-style glob patterns.
//!
//! Glob syntax implemented by [`Glob`] (AppArmor's file globbing, which KubeArmor hands
//! `matchPatterns` to):
//! - `*`: any run of characters except `/` (possibly empty);
//! - `**`: any run of characters, `/` included;
//! - `?`: one character except `/`;
//! - `[abc]`, `[a-z]`, `[^a-z]`: one character (not `/`) in / not in the class;
//! - `{a,b,c}`: alternatives (nested braces allowed; at most 256 expansions);
//! - `\x`: the character `x` literally.
//!
//! An unclosed `[` or `{` is taken literally.

/// Maximum number of alternatives a pattern's braces may expand to.
const MAX_EXPANSIONS: usize = 256;

/// True when `path` is exactly `rule` (KubeArmor's `matchPaths`).
pub fn path_matches(rule: &str, path: &str) -> bool {
    rule == path
}

/// True when `path` is covered by the directory rule `dir` (`matchDirectories`).
///
/// `dir` ends with `/` (the CRD requires it; a missing one is added). The directory itself
/// matches (KubeArmor's enforcer also keys the directory path without its slash). Without
/// `recursive`, only direct children match; with it, anything below.
pub fn dir_matches(dir: &str, recursive: bool, path: &str) -> bool {
    let base = dir.trim_end_matches('/');
    if !path.is_empty() && path.trim_end_matches('/') == base {
        return true;
    }
    let Some(rest) = path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    recursive || !rest.trim_end_matches('/').contains('/')
}

/// The base name of an executable path (`/usr/bin/curl` → `curl`).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`
    DoubleStar,
    /// `[...]`
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob pattern (see the module documentation for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    alternatives: Vec<Vec<Tok>>,
}

impl Glob {
    /// Compiles a pattern. Never fails: malformed brackets are taken literally.
    pub fn new(pattern: &str) -> Glob {
        let alternatives = expand_braces(pattern).iter().map(|p| tokenize(p)).collect();
        Glob {
            source: pattern.to_string(),
            alternatives,
        }
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `text` matches the pattern.
    pub fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        self.alternatives
            .iter()
            .any(|toks| match_tokens(toks, &chars))
    }
}

/// Expands `{a,b}` alternatives into plain patterns (at most [`MAX_EXPANSIONS`]).
fn expand_braces(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    // Find the first top-level `{` with its matching `}`.
    let mut i = 0;
    let mut open = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => {
                open = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(start) = open else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0usize;
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut end = None;
    let mut j = start + 1;
    while j < chars.len() {
        let c = chars[j];
        match c {
            '\\' => {
                current.push(c);
                if let Some(n) = chars.get(j + 1) {
                    current.push(*n);
                }
                j += 1;
            }
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                end = Some(j);
                break;
            }
            '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
        j += 1;
    }
    let Some(end) = end else {
        // Unclosed brace: literal.
        let prefix: String = chars[..start].iter().collect();
        let rest: String = chars[start + 1..].iter().collect();
        return expand_braces(&rest)
            .into_iter()
            .map(|r| format!("{prefix}\\{{{r}"))
            .collect();
    };
    let prefix: String = chars[..start].iter().collect();
    let suffix: String = chars[end + 1..].iter().collect();
    let suffixes = expand_braces(&suffix);
    let mut out = Vec::new();
    for part in parts {
        for mid in expand_braces(&part) {
            for s in &suffixes {
                if out.len() >= MAX_EXPANSIONS {
                    return out;
                }
                out.push(format!("{prefix}{mid}{s}"));
            }
        }
    }
    out
}

fn tokenize(pattern: &str) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                toks.push(Tok::Lit(chars[i + 1]));
                i += 2;
                continue;
            }
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    while chars.get(i + 1) == Some(&'*') {
                        i += 1;
                    }
                    toks.push(Tok::DoubleStar);
                } else {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::One),
            '[' => match parse_class(&chars, i) {
                Some((tok, next)) => {
                    toks.push(tok);
                    i = next;
                    continue;
                }
                None => toks.push(Tok::Lit('[')),
            },
            _ => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    toks
}

/// Parses `[...]` starting at `start`; returns the token and the index after `]`.
fn parse_class(chars: &[char], start: usize) -> Option<(Tok, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('^') | Some('!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        if c == ']' && !first {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' && i + 1 < chars.len() {
            i += 1;
            chars[i]
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            let hi = chars[i + 2];
            ranges.push((lo, hi));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
    None
}

/// Set-of-positions matcher: linear in pattern length × text length.
fn match_tokens(toks: &[Tok], text: &[char]) -> bool {
    let n = text.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for tok in toks {
        let mut next = vec![false; n + 1];
        match tok {
            Tok::Star | Tok::DoubleStar => {
                let cross = matches!(tok, Tok::DoubleStar);
                let mut on = false;
                for i in 0..=n {
                    if reach[i] {
                        on = true;
                    }
                    next[i] = on;
                    if i < n && text[i] == '/' && !cross {
                        on = false;
                    }
                }
            }
            single => {
                for i in 0..n {
                    if reach[i] && single_matches(single, text[i]) {
                        next[i + 1] = true;
                    }
                }
            }
        }
        if !next.iter().any(|b| *b) {
            return false;
        }
        reach = next;
    }
    reach[n]
}

fn single_matches(tok: &Tok, c: char) -> bool {
    match tok {
        Tok::Lit(l) => *l == c,
        Tok::One => c != '/',
        Tok::Class { negated, ranges } => {
            c != '/' && (ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated)
        }
        Tok::Star | Tok::DoubleStar => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_cover_children_or_subtrees() {
        assert!(dir_matches("/usr/bin/", false, "/usr/bin/curl"));
        assert!(dir_matches("/usr/bin/", false, "/usr/bin"));
        assert!(!dir_matches("/usr/bin/", false, "/usr/bin/x/y"));
        assert!(dir_matches("/usr/bin/", true, "/usr/bin/x/y"));
        assert!(!dir_matches("/usr/bin/", true, "/usr/binx/y"));
        assert!(!dir_matches("/usr/bin/", true, "/usr"));
        assert!(dir_matches("/", false, "/etc"));
        assert!(!dir_matches("/", false, "/etc/passwd"));
        assert!(dir_matches("/", true, "/etc/passwd"));
    }

    #[test]
    fn globs_follow_apparmor_semantics() {
        let g = Glob::new("/home/user1/secret_data*");
        assert!(g.matches("/home/user1/secret_data1.txt"));
        assert!(!g.matches("/home/user1/secret_data/x"));
        assert!(Glob::new("/var/**").matches("/var/lib/mysql/ibdata1"));
        assert!(Glob::new("/var/**/ibdata?").matches("/var/lib/mysql/ibdata1"));
        assert!(!Glob::new("/var/*/ibdata1").matches("/var/lib/mysql/ibdata1"));
        assert!(Glob::new("/etc/{passwd,shadow}").matches("/etc/shadow"));
        assert!(!Glob::new("/etc/{passwd,shadow}").matches("/etc/group"));
        assert!(Glob::new("/tmp/sess_[a-f0-9]*").matches("/tmp/sess_ab12"));
        assert!(!Glob::new("/tmp/sess_[^a-f]*").matches("/tmp/sess_ab12"));
        assert!(Glob::new("/a/\\*").matches("/a/*"));
        assert!(!Glob::new("/a/\\*").matches("/a/b"));
        assert!(Glob::new("/a/{b").matches("/a/{b"));
        assert!(Glob::new("/a/[b").matches("/a/[b"));
        assert!(Glob::new("/{usr/,}bin/{,ba,da}sh").matches("/usr/bin/dash"));
        assert!(Glob::new("/{usr/,}bin/{,ba,da}sh").matches("/bin/sh"));
    }

    /// An independent glob implementation: the pattern translated to a regular expression.
    fn reference_glob(pattern: &str, text: &str) -> bool {
        let mut re = String::from("^");
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    while chars.get(i + 1) == Some(&'*') {
                        i += 1;
                    }
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push('$');
        regex::Regex::new(&re)
            .expect("reference regex")
            .is_match(text)
    }

    /// An independent directory rule: compare path components.
    fn reference_dir(dir: &[String], recursive: bool, path: &[String]) -> bool {
        if path.len() < dir.len() || path[..dir.len()] != *dir {
            return false;
        }
        let depth = path.len() - dir.len();
        // The directory itself (depth 0) is covered, as KubeArmor keys it too.
        recursive || depth <= 1
    }

    fn join(parts: &[String]) -> String {
        format!("/{}", parts.join("/"))
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_a_regex_translation(
            pattern in "[ab/*?.]{0,10}",
            text in "[ab/.]{0,12}",
        ) {
            proptest::prop_assert_eq!(
                Glob::new(&pattern).matches(&text),
                reference_glob(&pattern, &text),
                "pattern {:?} text {:?}", pattern, text
            );
        }

        #[test]
        fn directories_agree_with_component_comparison(
            dir in proptest::collection::vec("[ab]{1,2}", 0..3),
            path in proptest::collection::vec("[ab]{1,2}", 1..5),
            recursive in proptest::bool::ANY,
        ) {
            let dir_text = if dir.is_empty() { "/".to_string() } else { format!("{}/", join(&dir)) };
            proptest::prop_assert_eq!(
                dir_matches(&dir_text, recursive, &join(&path)),
                reference_dir(&dir, recursive, &path),
                "dir {:?} path {:?} recursive {}", dir_text, join(&path), recursive
            );
        }
    }
}
