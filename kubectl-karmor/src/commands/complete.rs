//! Completion for kubectl's plugin protocol: `kubectl karmor <TAB>` runs
//! `kubectl_complete-karmor WORDS... PARTIAL` (kubectl 1.26+), which runs
//! `kubectl-karmor __complete WORDS... PARTIAL`; this prints one candidate per line and a last
//! `:<directive>` line, as cobra's `__complete` does. Candidates come from the command line's
//! definition (subcommands, flags, value enums), the resource words, and the namespaces and
//! nodes of the local cache store.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Arg, CommandFactory};
use karmor_analyzer::Store;
use kubectl_karmor::resource::{Resource, ALL};

use crate::cli::Cli;

/// The executable kubectl looks for on PATH to complete `kubectl karmor`.
pub const SCRIPT_NAME: &str = "kubectl_complete-karmor";

/// Its text: it runs `kubectl-karmor __complete "$@"` (the binary beside it, else on PATH).
pub const SCRIPT: &str = include_str!("../../kubectl_complete-karmor");

/// Cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
const FILES: u32 = 0;
/// `ShellCompDirectiveNoFileComp`: only the candidates given.
const NO_FILES: u32 = 4;
/// `ShellCompDirectiveFilterDirs`: directory names.
const DIRS: u32 = 16;

/// Candidates and the directive for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// One per line.
    pub words: Vec<String>,
    /// Cobra's directive.
    pub directive: u32,
}

impl Candidates {
    fn new(words: impl IntoIterator<Item = String>, partial: &str, directive: u32) -> Self {
        let mut words: Vec<String> = words
            .into_iter()
            .filter(|w| w.starts_with(partial))
            .collect();
        words.dedup();
        Candidates { words, directive }
    }

    fn files() -> Self {
        Candidates {
            words: Vec::new(),
            directive: FILES,
        }
    }
}

/// Names the cache knows, looked up only when a candidate list needs them.
pub trait Known {
    /// Namespaces.
    fn namespaces(&self) -> Vec<String>;
    /// Nodes.
    fn nodes(&self) -> Vec<String>;
}

/// The local store (`--store`, `$KARMOR_STORE`, or the cache store), when it exists.
struct CacheStore(Option<PathBuf>);

impl CacheStore {
    fn open(&self) -> Option<Store> {
        let path = self.0.as_deref().filter(|p| p.is_file())?;
        Store::open(path).ok()
    }
}

impl Known for CacheStore {
    fn namespaces(&self) -> Vec<String> {
        self.open()
            .and_then(|s| karmor_analyzer::observe::namespaces(&s).ok())
            .unwrap_or_default()
    }
    fn nodes(&self) -> Vec<String> {
        self.open()
            .and_then(|s| karmor_analyzer::observe::nodes(&s).ok())
            .unwrap_or_default()
    }
}

/// `__complete WORDS... PARTIAL`: prints the candidates and the directive.
pub fn run(words: &[String]) -> Result<ExitCode> {
    let store = words
        .iter()
        .position(|w| w == "--store")
        .and_then(|i| words.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| {
            words
                .iter()
                .find_map(|w| w.strip_prefix("--store=").map(PathBuf::from))
        })
        .or_else(|| std::env::var_os("KARMOR_STORE").map(PathBuf::from))
        .unwrap_or_else(kubectl_karmor::cache::default_store_path);
    let c = complete(words, &CacheStore(Some(store)));
    let mut out = std::io::stdout().lock();
    for w in &c.words {
        writeln!(out, "{w}")?;
    }
    writeln!(out, ":{}", c.directive)?;
    Ok(ExitCode::SUCCESS)
}

/// Whether an option takes a value in the next word (`--output json`).
fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
        && arg
            .get_num_args()
            .is_none_or(|n| n.min_values() > 0 || n.max_values() > 0)
}

/// Whether the value of an option may be left out (`--hardening`).
fn value_optional(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() == 0)
}

/// The candidates for the last word of `words` (the words after `kubectl karmor`).
pub fn complete(words: &[String], known: &dyn Known) -> Candidates {
    let mut root = Cli::command();
    root.build();
    let (partial, before) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut cmd = &root;
    let mut positionals: Vec<&str> = Vec::new();
    let mut pending: Option<&Arg> = None;
    let mut only_positionals = false;
    for word in before {
        if let Some(arg) = pending.take() {
            if !(value_optional(arg) && word.starts_with('-')) {
                continue;
            }
        }
        if !only_positionals && word == "--" {
            only_positionals = true;
        } else if !only_positionals && word.starts_with("--") {
            let name = word.trim_start_matches("--");
            if !name.contains('=') {
                pending = cmd
                    .get_arguments()
                    .find(|a| a.get_long() == Some(name))
                    .filter(|a| takes_value(a));
            }
        } else if !only_positionals && word.starts_with('-') && word.len() > 1 {
            // -n ns, -nns, -Df: a short option that takes a value and ends the word.
            let shorts: Vec<char> = word.chars().skip(1).collect();
            for (i, ch) in shorts.iter().enumerate() {
                let arg = cmd
                    .get_arguments()
                    .find(|a| a.get_short() == Some(*ch))
                    .filter(|a| takes_value(a));
                if arg.is_some() {
                    if i + 1 == shorts.len() {
                        pending = arg;
                    }
                    break;
                }
            }
        } else if positionals.is_empty() && cmd.has_subcommands() {
            match cmd.find_subcommand(word) {
                Some(sub) => cmd = sub,
                None => return Candidates::new(Vec::new(), partial, NO_FILES),
            }
        } else {
            positionals.push(word);
        }
    }
    if let Some(arg) = pending {
        if !(value_optional(arg) && partial.starts_with('-')) {
            return values(arg, partial, "", known);
        }
    }
    if !only_positionals && partial.starts_with("--") {
        if let Some((flag, value)) = partial.split_once('=') {
            let name = flag.trim_start_matches("--");
            return match cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
                Some(arg) => values(arg, value, &format!("{flag}="), known),
                None => Candidates::new(Vec::new(), partial, NO_FILES),
            };
        }
    }
    if !only_positionals && partial.starts_with('-') {
        let mut flags: Vec<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        if partial.len() <= 2 && !partial.starts_with("--") {
            flags.extend(
                cmd.get_arguments()
                    .filter(|a| !a.is_positional() && !a.is_hide_set())
                    .filter_map(|a| a.get_short().map(|s| format!("-{s}"))),
            );
        }
        flags.sort();
        return Candidates::new(flags, partial, NO_FILES);
    }
    if positionals.is_empty() && cmd.has_subcommands() {
        let subs = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string());
        return Candidates::new(subs, partial, NO_FILES);
    }
    let Some(arg) = cmd.get_positionals().nth(positionals.len()) else {
        return Candidates::new(Vec::new(), partial, NO_FILES);
    };
    match arg.get_id().as_str() {
        "resource" => resource_words(partial, known),
        "name" => {
            let resource = positionals.first().and_then(|r| r.parse::<Resource>().ok());
            Candidates::new(names(resource, known), partial, NO_FILES)
        }
        _ => values(arg, partial, "", known),
    }
}

/// Resource words, or `TYPE/NAME` once the word has a slash.
fn resource_words(partial: &str, known: &dyn Known) -> Candidates {
    if let Some((kind, _)) = partial.split_once('/') {
        let resource = kind.parse::<Resource>().ok();
        let names = names(resource, known)
            .into_iter()
            .map(|n| format!("{kind}/{n}"));
        return Candidates::new(names, partial, NO_FILES);
    }
    let words = ALL.iter().flat_map(|r| {
        let (one, many, short) = r.names();
        [Some(many), Some(one), short]
            .into_iter()
            .flatten()
            .map(String::from)
    });
    Candidates::new(words, partial, NO_FILES)
}

/// Names of resources of a kind the cache can list.
fn names(resource: Option<Resource>, known: &dyn Known) -> Vec<String> {
    match resource {
        Some(Resource::Namespace) => known.namespaces(),
        Some(Resource::Node) => known.nodes(),
        _ => Vec::new(),
    }
}

/// Values of an option or positional: its possible values, namespaces, or file names.
fn values(arg: &Arg, partial: &str, prefix: &str, known: &dyn Known) -> Candidates {
    let with_prefix = |v: Vec<String>| v.into_iter().map(|w| format!("{prefix}{w}"));
    let full = format!("{prefix}{partial}");
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if !possible.is_empty() {
        return Candidates::new(with_prefix(possible), &full, NO_FILES);
    }
    let id = arg.get_id().as_str();
    if id == "namespaces" || id == "namespace" {
        return Candidates::new(with_prefix(known.namespaces()), &full, NO_FILES);
    }
    let value_name = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.as_str())
        .unwrap_or("");
    match value_name {
        "DIR" => Candidates {
            words: Vec::new(),
            directive: DIRS,
        },
        "FILE" | "PATH" | "BUNDLE" | "FILE|DIR" => Candidates::files(),
        _ if arg.get_value_hint() == clap::ValueHint::AnyPath => Candidates::files(),
        _ if id == "files" || id == "paths" || id == "path" => Candidates::files(),
        _ => Candidates::new(Vec::new(), partial, NO_FILES),
    }
}

/// `completion --install-kubectl-plugin [DIR]`: writes the completion executable.
pub fn install(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d,
        None => running_dir()?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(SCRIPT_NAME);
    std::fs::write(&path, SCRIPT).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))?;
    println!("{}", path.display());
    if !on_path(&dir) {
        eprintln!(
            "note: {} is not on PATH: kubectl finds {SCRIPT_NAME} only there",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The directory kubectl-karmor was run from: the one in `argv[0]` as kubectl runs plugins
/// (krew's bin directory, where the binary is a symlink), else found on PATH, else the
/// executable's own.
fn running_dir() -> Result<PathBuf> {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    if let Some(argv0) = &argv0 {
        if argv0.components().count() > 1 {
            if let Some(parent) = argv0.parent() {
                return std::path::absolute(parent)
                    .with_context(|| format!("cannot resolve {}", parent.display()));
            }
        }
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                if dir.join(argv0).is_file() {
                    return Ok(dir);
                }
            }
        }
    }
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the running executable has no directory")
}

fn on_path(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.canonicalize().unwrap_or(p) == dir)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Known for Fixed {
        fn namespaces(&self) -> Vec<String> {
            vec!["kube-system".into(), "wordpress-mysql".into()]
        }
        fn nodes(&self) -> Vec<String> {
            vec!["node-a".into(), "node-b".into()]
        }
    }

    fn words(line: &[&str]) -> Candidates {
        let w: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        complete(&w, &Fixed)
    }

    #[test]
    fn subcommands_flags_and_values() {
        let c = words(&[""]);
        assert!(c.words.contains(&"observe".to_string()), "{c:?}");
        assert!(!c.words.iter().any(|w| w.starts_with("__")), "{c:?}");
        assert_eq!(words(&["rec"]).words, ["recommend"]);
        let c = words(&["observe", "--out"]);
        assert_eq!(c.words, ["--output"]);
        assert_eq!(c.directive, NO_FILES);
        assert_eq!(
            words(&["observe", "--output", ""]).words,
            ["table", "wide", "json", "yaml", "csv"]
        );
        assert_eq!(words(&["observe", "--output=j"]).words, ["--output=json"]);
        assert_eq!(words(&["observe", "-n", "w"]).words, ["wordpress-mysql"]);
        assert_eq!(
            words(&["simulate", "--namespace=k"]).words,
            ["--namespace=kube-system"]
        );
        assert_eq!(words(&["recommend", "--out", ""]).directive, DIRS);
        assert_eq!(words(&["observe", "--bundle", ""]).directive, FILES);
        assert_eq!(words(&["validate", ""]).directive, FILES);
        assert_eq!(words(&["completion", "f"]).words, ["fish"]);
        assert_eq!(words(&["cov"]).words, ["coverage"]);
        assert_eq!(words(&["diff", "--baseline", ""]).directive, FILES);
        assert_eq!(words(&["diff", "--baseline-policy", ""]).directive, FILES);
        assert_eq!(words(&["diff", "--as-policy-delta", ""]).directive, DIRS);
        assert_eq!(
            words(&["diff", "--only", ""]).words,
            ["new", "gone", "volume"]
        );
        assert_eq!(words(&["coverage", "-n", "w"]).words, ["wordpress-mysql"]);
    }

    #[test]
    fn resources_and_their_names() {
        let c = words(&["observe", "st"]);
        assert_eq!(c.words, ["statefulsets", "statefulset", "sts"]);
        assert_eq!(
            words(&["observe", "-n", "x", "no"]).words,
            ["nodes", "node", "no"]
        );
        assert_eq!(
            words(&["recommend", "nodes", ""]).words,
            ["node-a", "node-b"]
        );
        assert_eq!(words(&["observe", "ns/w"]).words, ["ns/wordpress-mysql"]);
        // --hardening takes no value here: the next word is the resource.
        assert_eq!(
            words(&["recommend", "--hardening", "--out", "d", "sts"]).words,
            ["sts"]
        );
        assert_eq!(
            words(&["observe", "pods", "x", ""]).words,
            Vec::<String>::new()
        );
    }
}
