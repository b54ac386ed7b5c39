//! Containers outside Kubernetes, end to end on the real probes: processes placed in
//! `docker-<id>.scope` and `cri-containerd-<id>.scope` cgroups (as Docker and containerd with
//! the systemd driver place a container's), whose runtime state this test writes in the
//! runtimes' on-disk formats (Docker's `config.v2.json`, a containerd task bundle's OCI
//! `config.json`) into temporary roots. The collector runs without Kubernetes and names them
//! from that state. Then, as a user runs the plugin on the collector's data directory:
//! `observe containers` lists them by name (ids in `wide`), `-c` selects one, `recommend -A`
//! drafts one `KubeArmorPolicy` per container (the two Docker replicas `edge-web-1` and
//! `edge-web-2` merged) selecting `kubearmor.io/container.name`, never a host policy for a node
//! that does not exist; the drafts `validate` and `simulate` clean on the data they came from.
//!
//! Needs root, a kernel with BTF, tracepoints, a cgroup v2 hierarchy and a collector built with
//! its probes: ignored by default, and fails (never passes) when a precondition is missing.
//! Run: `cargo test -p kubectl-karmor --test edge_containers -- --include-ignored --nocapture`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use karmor_collector::attribution::{NoPods, RuntimeRoots, RuntimeState, WithRuntimeState};
use karmor_contract::bundle::read_manifest;
use karmor_contract::segment::read_segment;
use karmor_contract::Event;

mod common;
use common::probes::{require_probe_preconditions, Cgroup, ProbeCollector};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-karmor");
const NODE: &str = "edge-test";
const WEB_1: &str = "ed9e0000000000000000000000000000000000000000000000000000000000a1";
const WEB_2: &str = "ed9e0000000000000000000000000000000000000000000000000000000000a2";
const CACHE: &str = "ed9e0000000000000000000000000000000000000000000000000000000000c1";

/// Fails, with the reason, when the test cannot run here.
fn require_preconditions() -> PathBuf {
    require_probe_preconditions(&["/bin/sh", "/bin/cat", "/bin/ls"])
}

/// Docker's `config.v2.json` of a container, as dockerd writes it (the fields read here).
fn docker_container(root: &Path, id: &str, name: &str) {
    let dir = root.join("containers").join(id);
    fs::create_dir_all(&dir).expect("mkdir");
    let config = serde_json::json!({
        "ID": id,
        "Created": "2026-01-05T10:00:00.000000000Z",
        "Path": "/docker-entrypoint.sh",
        "Args": ["nginx", "-g", "daemon off;"],
        "Image": "sha256:4f3d2c1b0a99887766554433221100ffeeddccbbaa99887766554433221100ff",
        "Name": format!("/{name}"),
        "Driver": "overlay2",
        "Config": {
            "Hostname": &id[..12],
            "Image": "nginx:1.25-alpine",
            "Labels": {
                "com.docker.compose.project": "edge",
                "com.docker.compose.service": "web",
                "site": "plant-4"
            }
        }
    });
    fs::write(dir.join("config.v2.json"), config.to_string()).expect("write");
}

/// A containerd task bundle's OCI runtime spec, as nerdctl's containers carry it.
fn containerd_bundle(state: &Path, id: &str, name: &str) {
    let dir = state
        .join("io.containerd.runtime.v2.task")
        .join("default")
        .join(id);
    fs::create_dir_all(&dir).expect("mkdir");
    let spec = serde_json::json!({
        "ociVersion": "1.1.0",
        "process": {"args": ["redis-server"], "cwd": "/data"},
        "root": {"path": "rootfs"},
        "annotations": {
            "nerdctl/name": name,
            "nerdctl/namespace": "default",
            "io.containerd.image.name": "docker.io/library/redis:7",
            "site": "plant-4"
        }
    });
    fs::write(dir.join("config.json"), spec.to_string()).expect("write");
}

fn karmor(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KARMOR_STORE")
        .env_remove("KARMOR_POLICIES")
        .output()
        .expect("run kubectl-karmor")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rows(dir: &Path) -> Vec<Event> {
    let m = read_manifest(dir).expect("manifest");
    m.files
        .iter()
        .flat_map(|f| read_segment(&dir.join(&f.path)).expect("segment").1)
        .collect()
}

#[test]
#[ignore = "needs root, BPF, probes built (clang, bpftool, libbpf-dev, BTF) and cgroup v2"]
fn containers_outside_kubernetes_are_named_observed_drafted_and_simulated() {
    let cgroot = require_preconditions();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let docker = tmp.path().join("docker");
    let containerd = tmp.path().join("containerd");
    docker_container(&docker, WEB_1, "edge-web-1");
    docker_container(&docker, WEB_2, "edge-web-2");
    containerd_bundle(&containerd, CACHE, "edge-cache");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).expect("mkdir");

    let state = RuntimeState::new(RuntimeRoots {
        docker: Some(docker.clone()),
        containerd: Some(containerd.clone()),
        containers_storage: Some(tmp.path().join("no-storage")),
    });
    let lookup = Arc::new(WithRuntimeState::new(Arc::new(NoPods), state));
    let collector = ProbeCollector::start(NODE, &data, lookup);

    let slice = cgroot.join("karmor-edge-test.slice");
    {
        let web1 = Cgroup::create(slice.join(format!("docker-{WEB_1}.scope")), None);
        let web2 = Cgroup::create(slice.join(format!("docker-{WEB_2}.scope")), None);
        let cache = Cgroup::create(slice.join(format!("cri-containerd-{CACHE}.scope")), None);
        let w = work.display();
        for _ in 0..3 {
            for web in [&web1, &web2] {
                web.run("exec cat /etc/hostname > /dev/null");
                web.run("exec ls /etc > /dev/null");
            }
            cache.run(&format!(
                "echo data > {w}/dump.rdb && exec cat {w}/dump.rdb > /dev/null"
            ));
            cache.run("exec cat /etc/passwd > /dev/null");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = fs::remove_dir(&slice);
    collector.stop();

    // Rows carry the runtime's name, image and labels; they are container rows, not host rows.
    let all = rows(&data);
    for (id, name, image) in [
        (WEB_1, "edge-web-1", "nginx:1.25-alpine"),
        (WEB_2, "edge-web-2", "nginx:1.25-alpine"),
        (CACHE, "edge-cache", "docker.io/library/redis:7"),
    ] {
        let mine: Vec<&Event> = all
            .iter()
            .filter(|e| e.container_id.as_deref() == Some(id))
            .collect();
        assert!(
            !mine.is_empty(),
            "no row of {name} among {} rows",
            all.len()
        );
        for e in &mine {
            assert!(!e.host, "{e:?}");
            assert_eq!(e.container.as_deref(), Some(name), "{e:?}");
            assert_eq!(e.image.as_deref(), Some(image), "{e:?}");
            assert!(e.labels.contains(&"site=plant-4".to_string()), "{e:?}");
            assert!(e.namespace.is_none() && e.pod.is_none(), "{e:?}");
        }
        assert!(
            mine.iter()
                .any(|e| e.process.as_deref() == Some("/usr/bin/cat")
                    || e.process.as_deref() == Some("/bin/cat")),
            "{name} ran cat"
        );
    }
    // Without Kubernetes, host processes stay host rows (the test runner's own, for one).
    assert!(
        all.iter()
            .any(|e| e.host && e.container.is_none() && e.container_id.is_none()),
        "no host row among {} rows",
        all.len()
    );
    let bundle = data.to_str().expect("utf-8 path");

    // observe: by name, without -A (the data has no namespace), ids in wide; -c narrows.
    let table = ok(
        &karmor(&["observe", "containers", "--bundle", bundle]),
        "observe containers",
    );
    for name in ["edge-web-1", "edge-web-2", "edge-cache"] {
        assert!(table.contains(name), "{name} missing:\n{table}");
    }
    assert!(!table.contains("(none)"), "{table}");
    let wide = ok(
        &karmor(&[
            "observe",
            "containers",
            "--bundle",
            bundle,
            "--output",
            "wide",
        ]),
        "observe wide",
    );
    assert!(
        wide.contains(&format!("edge-cache ({})", &CACHE[..12])),
        "{wide}"
    );
    let one = ok(
        &karmor(&[
            "observe",
            "containers",
            "-c",
            "edge-cache",
            "--bundle",
            bundle,
        ]),
        "observe -c",
    );
    assert!(
        one.contains("edge-cache") && !one.contains("edge-web-1"),
        "{one}"
    );
    let filtered = ok(
        &karmor(&[
            "observe",
            "containers",
            "-o",
            "file",
            "-f",
            "container=edge-web-*",
            "--bundle",
            bundle,
        ]),
        "observe -f",
    );
    assert!(
        filtered.contains("/etc/hostname") && !filtered.contains("dump.rdb"),
        "{filtered}"
    );

    // recommend: one KubeArmorPolicy per container (replicas merged), by container name.
    let drafts = tmp.path().join("drafts");
    let report = tmp.path().join("REPORT.md");
    let summary = ok(
        &karmor(&[
            "recommend",
            "-A",
            "--bundle",
            bundle,
            "--out",
            drafts.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
        ]),
        "recommend",
    );
    assert!(summary.contains("container/edge-web-*"), "{summary}");
    assert!(summary.contains("container/edge-cache"), "{summary}");
    let web = fs::read_to_string(drafts.join("container_edge-web-_.yaml")).expect("web draft");
    let cache = fs::read_to_string(drafts.join("container_edge-cache.yaml")).expect("cache draft");
    for (yaml, selector) in [(&web, "edge-web-[0-9]+$"), (&cache, "edge-cache")] {
        let doc: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
        assert_eq!(doc["kind"], "KubeArmorPolicy", "{yaml}");
        assert!(doc["metadata"]["namespace"].is_null(), "{yaml}");
        let labels = doc["spec"]["selector"]["matchLabels"]
            .as_mapping()
            .expect("matchLabels");
        assert_eq!(labels.len(), 1, "{yaml}");
        assert_eq!(
            doc["spec"]["selector"]["matchLabels"]["kubearmor.io/container.name"], selector,
            "{yaml}"
        );
        assert!(
            yaml.contains("/etc/hostname") || yaml.contains("dump.rdb"),
            "{yaml}"
        );
    }
    // No host policy for a node that does not exist; the real node's host policy is named
    // after it.
    for entry in fs::read_dir(&drafts).expect("drafts") {
        let text = fs::read_to_string(entry.expect("entry").path()).expect("read");
        assert!(
            !text.contains("(none)") && !text.contains("karmor-host--none"),
            "{text}"
        );
        if text.contains("KubeArmorHostPolicy") {
            assert!(
                text.contains(&format!("kubearmor.io/hostname: {NODE}")),
                "{text}"
            );
        }
    }
    let md = fs::read_to_string(&report).expect("report");
    assert!(md.contains("kubearmor.io/container.name"), "{md}");

    // validate, then simulate the container drafts on their own data under a block posture.
    let web_path = drafts.join("container_edge-web-_.yaml");
    let cache_path = drafts.join("container_edge-cache.yaml");
    let (web_p, cache_p) = (
        web_path.to_str().expect("utf-8"),
        cache_path.to_str().expect("utf-8"),
    );
    ok(&karmor(&["validate", web_p, cache_p]), "validate");
    let sim = ok(
        &karmor(&[
            "simulate",
            "-p",
            web_p,
            "-p",
            cache_p,
            "-A",
            "--default-posture",
            "block",
            "--output",
            "json",
            "--bundle",
            bundle,
        ]),
        "simulate",
    );
    let v: serde_json::Value = serde_json::from_str(&sim).expect("simulate json");
    let entries = v["entries"].as_array().expect("entries");
    let ours: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| {
            e["workload"]
                .as_str()
                .is_some_and(|w| w.starts_with("Container/edge-"))
        })
        .collect();
    assert!(!ours.is_empty(), "no container behaviour simulated: {sim}");
    for e in &ours {
        // The collector's system call rows are drafted as `syscalls` rules, which KubeArmor
        // only audits whatever the action: allowed behaviour shows as audited there.
        let audited_syscall = e["op"] == "syscall" && e["decision"] == "audited";
        assert!(
            e["decision"] == "allowed" || e["decision"] == "unaffected" || audited_syscall,
            "{e}"
        );
    }
    assert!(
        ours.iter().any(|e| e["policy"]
            .as_str()
            .is_some_and(|p| p.ends_with("karmor-container-edge-web"))),
        "the web draft selected its replicas: {sim}"
    );
    assert_eq!(
        v["unmatched_policies"].as_array().map(Vec::len),
        Some(0),
        "{sim}"
    );
}
