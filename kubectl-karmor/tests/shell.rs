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
        vec![
            "recommend",
            "--hardening",
            "--action",
            "Block",
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
