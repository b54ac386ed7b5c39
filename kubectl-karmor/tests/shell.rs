//! The plugin in a shell (issue 15): output piped into a reader that stops early, boolean
//! environment variables, optional flag values, kubectl's resource words, and kubectl's
//! plugin completion. Every test runs the real binary on the committed demo bundle.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn demo() -> String {
    workspace().join("testdata/demo").display().to_string()
}

/// The binary with none of the user's karmor, kube or cache settings.
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(workspace())
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_POLICIES")
        .env_remove("KARMOR_NO_PULL")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    c
}

fn karmor(args: &[&str]) -> Output {
    command(args).output().expect("run kubectl-karmor")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// --- A reader that stops early -------------------------------------------------------------

/// Runs the binary with its standard output on a pipe whose reader is gone before the first
/// write (what `| head` does once it has its lines), and returns how it ended.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl-karmor");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for kubectl-karmor")
}

#[test]
fn a_closed_pipe_ends_every_command_and_format_quietly_by_sigpipe() {
    let demo = demo();
    let cases: Vec<Vec<&str>> = vec![
        vec!["observe", "pods", "-A", "--bundle", &demo],
        vec![
            "observe", "pods", "-A", "--output", "json", "--bundle", &demo,
        ],
        vec![
            "observe", "pods", "-A", "--output", "yaml", "--bundle", &demo,
        ],
        vec![
            "observe", "pods", "-A", "--output", "csv", "--bundle", &demo,
        ],
        vec![
            "observe", "pods", "-A", "-D", "--output", "wide", "--bundle", &demo,
        ],
        vec!["recommend", "-A", "--bundle", &demo],
        vec![
            "simulate",
            "-p",
            "policies/execution",
            "-A",
            "--bundle",
            &demo,
        ],
        vec!["bundle", "info", &demo, "--output", "json"],
        vec!["validate", "policies"],
        vec!["completion", "bash"],
        vec!["--help"],
    ];
    for args in cases {
        let o = with_closed_stdout(&args);
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?} ended with {:?}:\n{}",
            o.status,
            err(&o)
        );
        assert_eq!(err(&o), "", "{args:?} wrote to stderr");
    }
}

#[test]
fn head_in_a_shell_pipeline_gets_its_lines_and_the_plugin_the_usual_status() {
    // 160 kB of table: far more than the pipe holds once head has its line and leaves.
    let script = format!(
        "set -o pipefail 2>/dev/null; '{BIN}' observe pods -A --bundle '{}' | head -1; echo \"status=$?\"",
        demo()
    );
    let o = Command::new("bash")
        .args(["-c", &script])
        .env_remove("KARMOR_STORE")
        .output()
        .expect("run bash");
    let text = out(&o);
    assert!(text.starts_with("PROCESSES ("), "{text}");
    assert!(text.ends_with("status=141\n"), "{text}");
    assert_eq!(err(&o), "");
}

// --- Boolean environment variables ---------------------------------------------------------

/// A cache (`$XDG_CACHE_HOME/kubectl-karmor/store.duckdb`) holding the demo bundle, and a home
/// without a kubeconfig.
fn cache_with_demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("cache/kubectl-karmor/store.duckdb");
    fs::create_dir_all(store.parent().expect("a parent")).expect("create the cache");
    fs::create_dir_all(dir.path().join("home")).expect("create the home");
    let o = karmor(&[
        "observe",
        "namespaces",
        "--store",
        store.to_str().expect("UTF-8"),
        "--bundle",
        &demo(),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    dir
}

/// `observe pods -n wordpress-mysql` on the cache, with `KARMOR_NO_PULL=value`.
fn observe_cache(dir: &Path, no_pull: &str) -> Output {
    command(&["observe", "pods", "-n", "wordpress-mysql"])
        .env("HOME", dir.join("home"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("KARMOR_NO_PULL", no_pull)
        .output()
        .expect("run kubectl-karmor")
}

#[test]
fn karmor_no_pull_takes_1_yes_and_true_and_0_means_pull() {
    let dir = cache_with_demo();
    for yes in ["1", "yes", "YES", "true", "True"] {
        let o = observe_cache(dir.path(), yes);
        assert!(o.status.success(), "KARMOR_NO_PULL={yes}: {}", err(&o));
        assert!(out(&o).contains("/usr/sbin/mysqld"), "{}", out(&o));
        // No pull was tried, so nothing to say about the cluster.
        assert_eq!(err(&o), "", "KARMOR_NO_PULL={yes}");
    }
    for no in ["0", "no", "false"] {
        let o = observe_cache(dir.path(), no);
        assert!(o.status.success(), "KARMOR_NO_PULL={no}: {}", err(&o));
        assert!(
            err(&o).contains("no Kubernetes context configured"),
            "KARMOR_NO_PULL={no} must try to pull: {}",
            err(&o)
        );
    }
    let o = observe_cache(dir.path(), "maybe");
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("'maybe'"), "{}", err(&o));
}

// --- Optional flag values ------------------------------------------------------------------

#[test]
fn hardening_without_a_directory_works_before_another_flag() {
    let demo = demo();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let drafts = dir.path().join("drafts");
    let drafts = drafts.to_str().expect("UTF-8");
    let lib = workspace().join("policies");
    let lib = lib.to_str().expect("UTF-8");
    let with_equals = format!("--hardening={lib}");
    let ns = ["-n", "wordpress-mysql", "--bundle", &demo];
    let forms: Vec<Vec<&str>> = vec![
        // The default library (./policies), the flag before another flag, first or last.
        vec!["recommend", "deployments", "--hardening", "--out", drafts],
        // (Six hours of demo are not a stable baseline: Block needs --force.)
        vec![
            "recommend",
            "--hardening",
            "--action",
            "Block",
            "--force",
            "deployments",
        ],
        vec!["recommend", "deployments", "--out", drafts, "--hardening"],
        // A directory, spaced or with `=`.
        vec![
            "recommend",
            "deployments",
            "--hardening",
            lib,
            "--out",
            drafts,
        ],
        vec!["recommend", "deployments", &with_equals, "--out", drafts],
    ];
    for mut args in forms {
        args.extend_from_slice(&ns);
        let o = karmor(&args);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        let summary = if args.contains(&"--out") {
            out(&o)
        } else {
            err(&o)
        };
        assert!(
            summary.contains("wordpress-mysql/Deployment/wordpress"),
            "{args:?}: {summary}"
        );
        assert!(
            !summary.contains("0 proposed, 0 flagged"),
            "{args:?}: the library was not used: {summary}"
        );
    }
}

/// The lines of a table, sorted: rows of equal counts may come in any order.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().collect();
    v.sort_unstable();
    v
}

// --- kubectl's resource words --------------------------------------------------------------

/// `observe WORD -A` on the demo bundle.
fn observe_all(word: &str) -> Output {
    karmor(&["observe", word, "-A", "--bundle", &demo()])
}

#[test]
fn observe_takes_every_kubectl_name_and_short_name() {
    // (singular, plural, short, what the plural's table must show, what it must not)
    let table: &[(&str, &str, Option<&str>, &str, &str)] = &[
        ("namespace", "namespaces", Some("ns"), "(host)", "POD "),
        ("node", "nodes", Some("no"), "NODE ", "POD "),
        ("pod", "pods", Some("po"), "POD ", "WORKLOAD"),
        (
            "deployment",
            "deployments",
            Some("deploy"),
            "Deployment/wordpress",
            "DaemonSet/",
        ),
        (
            "daemonset",
            "daemonsets",
            Some("ds"),
            "DaemonSet/kube-proxy",
            "Deployment/",
        ),
        (
            "container",
            "containers",
            None,
            "kube-proxy-7xq9d/kube-proxy",
            "WORKLOAD",
        ),
        (
            "workload",
            "workloads",
            None,
            "DaemonSet/kube-proxy",
            "(host)",
        ),
    ];
    for (one, many, short, shows, hides) in table {
        let plural = observe_all(many);
        assert!(plural.status.success(), "{many}: {}", err(&plural));
        let text = out(&plural);
        assert!(text.contains(shows), "{many} must show {shows}");
        assert!(!text.contains(hides), "{many} must not show {hides}");
        for word in [Some(*one), *short, Some(&many.to_uppercase())]
            .into_iter()
            .flatten()
        {
            let o = observe_all(word);
            assert!(o.status.success(), "{word}: {}", err(&o));
            assert!(lines(&out(&o)) == lines(&text), "{word} and {many} differ");
        }
    }
    // The demo has no statefulset, job, cronjob or bare replicaset: each word is understood
    // and selects nothing (workloads of every kind would otherwise be listed).
    for words in [
        ["statefulset", "statefulsets", "sts"],
        ["job", "jobs", "jobs.batch"],
        ["cronjob", "cronjobs", "cj"],
        ["replicaset", "replicasets", "rs"],
    ] {
        for word in words {
            let o = observe_all(word);
            assert!(o.status.success(), "{word}: {}", err(&o));
            assert_eq!(out(&o), "", "{word}");
            // ... and the hint names what was asked for.
            let asked = format!("No behaviour recorded for {}", words[1]);
            assert!(err(&o).starts_with(&asked), "{word}: {}", err(&o));
        }
    }
}

#[test]
fn type_slash_name_selects_one_resource_as_type_and_name_do() {
    let demo = demo();
    let slash = karmor(&[
        "observe",
        "deploy/wordpress",
        "-n",
        "wordpress-mysql",
        "--bundle",
        &demo,
    ]);
    let spaced = karmor(&[
        "observe",
        "deployment",
        "wordpress",
        "-n",
        "wordpress-mysql",
        "--bundle",
        &demo,
    ]);
    assert!(slash.status.success(), "{}", err(&slash));
    assert!(
        lines(&out(&slash)) == lines(&out(&spaced)),
        "TYPE/NAME differs"
    );
    assert!(out(&slash).contains("Deployment/wordpress"));
    assert!(!out(&slash).contains("Deployment/mysql"));

    let ds = karmor(&[
        "observe",
        "ds/kube-proxy",
        "-n",
        "kube-system",
        "--bundle",
        &demo,
    ]);
    assert!(out(&ds).contains("DaemonSet/kube-proxy"), "{}", err(&ds));

    let twice = karmor(&["observe", "deploy/wordpress", "mysql", "--bundle", &demo]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(err(&twice).contains("TYPE/NAME"), "{}", err(&twice));
}

#[test]
fn recommend_and_simulate_take_the_same_words() {
    let demo = demo();
    // recommend: statefulsets (none in the demo) and daemonsets (kube-proxy).
    let sts = karmor(&["recommend", "sts", "-A", "--bundle", &demo]);
    assert_eq!(sts.status.code(), Some(1));
    assert!(err(&sts).contains("No behaviour recorded"), "{}", err(&sts));
    let ds = karmor(&["recommend", "ds", "-A", "--bundle", &demo]);
    assert!(ds.status.success(), "{}", err(&ds));
    assert!(err(&ds).contains("DaemonSet/kube-proxy"), "{}", err(&ds));
    assert!(!err(&ds).contains("Deployment/"), "{}", err(&ds));
    let one = karmor(&[
        "recommend",
        "deploy/mysql",
        "-n",
        "wordpress-mysql",
        "--bundle",
        &demo,
    ]);
    assert!(one.status.success(), "{}", err(&one));
    assert!(err(&one).contains("Deployment/mysql"), "{}", err(&one));
    assert!(!err(&one).contains("Deployment/wordpress"), "{}", err(&one));

    // simulate: only the selected resource's behaviour is replayed.
    let workloads_of = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["simulate", "-p", "policies/execution", "--output", "json"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--bundle", &demo]);
        let o = karmor(&all);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        let mut w: Vec<String> = v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["workload"].as_str().unwrap_or("?").to_string())
            .collect();
        w.dedup();
        w.sort();
        w.dedup();
        w
    };
    assert_eq!(workloads_of(&["ds", "-A"]), ["DaemonSet/kube-proxy"]);
    assert_eq!(
        workloads_of(&["deploy/wordpress", "-n", "wordpress-mysql"]),
        ["Deployment/wordpress"]
    );
    assert!(workloads_of(&["-A"]).len() > 2);

    for command in [
        vec!["observe", "deploymnt", "--bundle", &demo],
        vec!["recommend", "deploymnt", "--bundle", &demo],
        vec![
            "simulate",
            "-p",
            "policies/execution",
            "deploymnt",
            "--bundle",
            &demo,
        ],
    ] {
        let o = karmor(&command);
        assert_eq!(o.status.code(), Some(1), "{command:?}");
        let e = err(&o);
        assert!(e.contains("unknown resource type \"deploymnt\""), "{e}");
        assert!(
            e.contains("statefulsets (sts)") && e.contains("cronjobs (cj)"),
            "{e}"
        );
    }
}

// --- kubectl's plugin completion -----------------------------------------------------------

/// `completion --install-kubectl-plugin DIR`, checked: one executable file, its path printed.
fn install_completion(dir: &Path) -> PathBuf {
    let o = karmor(&[
        "completion",
        "--install-kubectl-plugin",
        dir.to_str().expect("UTF-8"),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let script = dir.join("kubectl_complete-karmor");
    assert_eq!(out(&o).trim(), script.display().to_string());
    let mode = fs::metadata(&script).expect("the script").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111,
        0o111
    );
    script
}

/// Runs `kubectl_complete-karmor WORDS...` as kubectl does: looked up on `path`, with the
/// cache of `cache` (if any); returns the candidate lines and the directive line.
fn kubectl_completes(path: &str, cache: Option<&Path>, words: &[&str]) -> (Vec<String>, String) {
    let mut c = Command::new("kubectl_complete-karmor");
    c.args(words)
        .env_clear()
        .env("PATH", path)
        .env("HOME", "/nonexistent");
    if let Some(dir) = cache {
        c.env("XDG_CACHE_HOME", dir.join("cache"));
    }
    let o = c.output().expect("run kubectl_complete-karmor from PATH");
    assert!(o.status.success(), "{words:?}: {}", err(&o));
    let mut lines: Vec<String> = out(&o).lines().map(String::from).collect();
    let directive = lines.pop().unwrap_or_default();
    (lines, directive)
}

#[test]
fn the_installed_completion_executable_answers_kubectl() {
    // Laid out as a release or krew's bin directory: the plugin and the script side by side.
    let bin = tempfile::tempdir().expect("a temporary directory");
    std::os::unix::fs::symlink(BIN, bin.path().join("kubectl-karmor")).expect("symlink");
    install_completion(bin.path());
    let path = bin.path().to_str().expect("UTF-8");

    let (words, directive) = kubectl_completes(path, None, &["observe", "po"]);
    assert_eq!(words, ["pods", "pod", "po"]);
    assert_eq!(directive, ":4");

    let (words, _) = kubectl_completes(path, None, &[""]);
    for sub in [
        "observe",
        "recommend",
        "simulate",
        "validate",
        "pull",
        "completion",
    ] {
        assert!(words.iter().any(|w| w == sub), "{sub} missing: {words:?}");
    }
    assert!(!words.iter().any(|w| w.starts_with("__")), "{words:?}");

    let (words, _) = kubectl_completes(path, None, &["recommend", "--hard"]);
    assert_eq!(words, ["--hardening"]);
    let (words, _) = kubectl_completes(path, None, &["observe", "-A", "--output", ""]);
    assert_eq!(words, ["table", "wide", "json", "yaml", "csv"]);
    let (words, _) = kubectl_completes(path, None, &["simulate", "-p", "x.yaml", "dep"]);
    assert_eq!(words, ["deployments", "deployment", "deploy"]);

    // Namespaces and nodes come from the cache store.
    let cache = cache_with_demo();
    let (words, directive) = kubectl_completes(path, Some(cache.path()), &["observe", "-n", ""]);
    assert_eq!(words, ["kube-system", "wordpress-mysql"]);
    assert_eq!(directive, ":4");
    let (words, _) = kubectl_completes(path, Some(cache.path()), &["recommend", "no/"]);
    assert_eq!(words, ["no/node-a", "no/node-b"]);
    let (words, _) = kubectl_completes(path, Some(cache.path()), &["observe", "nodes", "node-"]);
    assert_eq!(words, ["node-a", "node-b"]);
    // No cache: no names, and no error.
    let (words, _) = kubectl_completes(path, None, &["observe", "-n", ""]);
    assert!(words.is_empty(), "{words:?}");
}

#[test]
fn the_completion_executable_finds_the_plugin_on_path_when_not_beside_it() {
    let scripts = tempfile::tempdir().expect("a temporary directory");
    let bin = tempfile::tempdir().expect("a temporary directory");
    std::os::unix::fs::symlink(BIN, bin.path().join("kubectl-karmor")).expect("symlink");
    install_completion(scripts.path());
    let path = format!("{}:{}", scripts.path().display(), bin.path().display());
    let (words, directive) = kubectl_completes(&path, None, &["observe", "po"]);
    assert_eq!(words, ["pods", "pod", "po"]);
    assert_eq!(directive, ":4");
}

#[test]
fn the_completion_executable_is_written_beside_the_plugin_by_default() {
    // kubectl runs a plugin by its path on PATH (krew: a symlink in ~/.krew/bin).
    let bin = tempfile::tempdir().expect("a temporary directory");
    let plugin = bin.path().join("kubectl-karmor");
    std::os::unix::fs::symlink(BIN, &plugin).expect("symlink");
    let o = Command::new(&plugin)
        .args(["completion", "--install-kubectl-plugin"])
        .env("PATH", bin.path())
        .output()
        .expect("run the plugin");
    assert!(o.status.success(), "{}", err(&o));
    assert!(bin.path().join("kubectl_complete-karmor").is_file());
    assert_eq!(err(&o), "", "the directory is on PATH: no note");
}
