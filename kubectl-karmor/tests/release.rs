//! The release tarball of scripts/release.sh, as a user gets it: unpacked into an empty
//! directory, started with an empty environment (`env -i`), it finds its libduckdb.so beside
//! itself (not in the build machine's cache) and `observe` prints the demo bundle's behaviour;
//! started through a symlink from elsewhere (as krew installs it) too. The krew manifest lists
//! the tarball with its real sha256.
//!
//! A release build takes minutes, so the test is ignored by default and takes the output of
//! scripts/release.sh: `KARMOR_RELEASE_DIR`, or the script's default `dist/`. CI runs the
//! script first. (The test cannot run the script itself: the inner cargo would wait for the
//! build-directory lock that the `cargo test` running it holds.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no release for {other}"),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The release directory: `KARMOR_RELEASE_DIR`, or scripts/release.sh's default `dist/`.
fn release_dir() -> PathBuf {
    std::env::var_os("KARMOR_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("dist"))
}

/// Runs `bin` with `args` in `cwd` with nothing in the environment but `env`.
fn run_clean(bin: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("/usr/bin/env");
    cmd.arg("-i");
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the unpacked binary")
}

#[test]
#[ignore = "needs a release build (minutes): scripts/release.sh [--out $KARMOR_RELEASE_DIR]"]
fn release_tarball_runs_observe_from_an_empty_environment() {
    let scratch = tempfile::tempdir().unwrap();
    let dist = release_dir();
    let name = format!("kubectl-karmor_{VERSION}_linux_{}.tar.gz", arch());
    let tarball = dist.join(&name);
    let bytes = fs::read(&tarball).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/release.sh first (--out $KARMOR_RELEASE_DIR)",
            tarball.display()
        )
    });
    let sum = hex::encode(Sha256::digest(&bytes));

    // The .sha256 file and SHA256SUMS hold the archive's real sum.
    let line = fs::read_to_string(dist.join(format!("{name}.sha256"))).unwrap();
    assert_eq!(line.trim(), format!("{sum}  {name}"));
    let sums = fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert!(
        sums.lines().any(|l| l == format!("{sum}  {name}")),
        "{sums}"
    );

    // Unpacked into an empty directory.
    let home = scratch.path().join("unpacked");
    fs::create_dir(&home).unwrap();
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&home)
        .output()
        .unwrap();
    assert!(o.status.success(), "tar: {}", text(&o));
    let mut files: Vec<String> = fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let bin = home.join("kubectl-karmor");
    let mut expected = vec![
        "LICENSE",
        "README.md",
        "kubectl-karmor",
        "kubectl_complete-karmor",
        "libduckdb.so",
    ];
    expected.sort();
    assert_eq!(files, expected);

    // No path of the build machine: the runtime path is $ORIGIN alone.
    let binary = fs::read(&bin).unwrap();
    let contains = |needle: &[u8]| binary.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"$ORIGIN"), "no $ORIGIN runtime path");
    let build_lib = repo().join(".duckdb").canonicalize().unwrap();
    assert!(
        !contains(build_lib.to_string_lossy().as_bytes()),
        "the binary names the build machine's {}",
        build_lib.display()
    );

    // The dynamic loader takes libduckdb.so from beside the binary.
    let o = run_clean(&bin, &["--version"], &home, &[("LD_DEBUG", "libs")]);
    assert!(o.status.success(), "{}", text(&o));
    let beside = home.join("libduckdb.so");
    assert!(
        text(&o).contains(&format!("calling init: {}", beside.display())),
        "libduckdb.so was not loaded from {}:\n{}",
        home.display(),
        text(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(VERSION));

    // `observe` on the demo bundle with an empty environment, from an empty working directory.
    let demo = repo().join("testdata/demo");
    let cwd = scratch.path().join("cwd");
    fs::create_dir(&cwd).unwrap();
    let args = [
        "observe",
        "pods",
        "-n",
        "wordpress-mysql",
        "--bundle",
        demo.to_str().unwrap(),
    ];
    let o = run_clean(&bin, &args, &cwd, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "PROCESSES",
        "NETWORK",
        "/usr/sbin/apache2",
        "/usr/sbin/mysqld",
    ] {
        assert!(out.contains(want), "no {want} in:\n{out}");
    }

    // Through a symlink in another directory, as krew links ~/.krew/bin/kubectl-karmor.
    let bin_dir = scratch.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    let link = bin_dir.join("kubectl-karmor");
    std::os::unix::fs::symlink(&bin, &link).unwrap();
    let o = run_clean(&link, &args, &cwd, &[]);
    assert!(o.status.success(), "through a symlink: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/usr/sbin/mysqld"));

    // kubectl's completion executable, as unpacked: it finds the plugin beside it.
    let complete = home.join("kubectl_complete-karmor");
    let o = run_clean(&complete, &["observe", "po"], &cwd, &[]);
    assert!(o.status.success(), "completion: {}", text(&o));
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.iter().any(|l| l == "pods"), "{lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with(':')),
        "{lines:?}"
    );

    // The krew manifest: this platform, its uri and the real sum.
    let manifest = fs::read_to_string(dist.join("plugins/karmor.yaml")).unwrap();
    let m: serde_yaml::Value = serde_yaml::from_str(&manifest).expect("the krew manifest is YAML");
    assert_eq!(
        m["apiVersion"].as_str(),
        Some("krew.googlecontainertools.github.com/v1alpha2")
    );
    assert_eq!(m["kind"].as_str(), Some("Plugin"));
    assert_eq!(m["metadata"]["name"].as_str(), Some("karmor"));
    assert_eq!(m["spec"]["version"].as_str(), Some(&*format!("v{VERSION}")));
    let caveats = m["spec"]["caveats"].as_str().unwrap_or_default();
    assert!(caveats.contains("DaemonSet") && caveats.contains("kubectl_complete-karmor"));
    let platforms = m["spec"]["platforms"].as_sequence().expect("platforms");
    let mine = platforms
        .iter()
        .find(|p| p["selector"]["matchLabels"]["arch"].as_str() == Some(arch()))
        .unwrap_or_else(|| panic!("no {} platform in:\n{manifest}", arch()));
    assert_eq!(
        mine["selector"]["matchLabels"]["os"].as_str(),
        Some("linux")
    );
    assert_eq!(mine["sha256"].as_str(), Some(sum.as_str()));
    assert_eq!(mine["bin"].as_str(), Some("kubectl-karmor"));
    assert!(mine["uri"]
        .as_str()
        .is_some_and(|u| u.ends_with(&format!("/{name}"))));
    for p in platforms {
        assert!(
            p["sha256"]
                .as_str()
                .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())),
            "{p:?}"
        );
    }
}
