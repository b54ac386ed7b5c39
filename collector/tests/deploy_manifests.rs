//! The DaemonSet deployment in `collector/deploy/` and the image recipe in
//! `collector/Containerfile`.
//!
//! Every manifest is validated offline, in strict mode, against the Kubernetes OpenAPI schemas
//! that the PyPI package `kubernetes-validate` bundles (run through `python3`). Then the
//! security facts the deployment promises are asserted on the parsed documents: the
//! ClusterRole grants exactly get/list/watch on pods, replicasets and jobs, and list/watch on services and endpointslices; the DaemonSet
//! tolerates every taint, takes NODE_NAME from spec.nodeName, is not privileged, drops ALL
//! capabilities and adds only the few eBPF needs; every container has requests and limits;
//! its exec probes really reach the collector's loopback-only metrics endpoint.
//!
//! The tests that need `kubernetes-validate` (and the PyYAML it brings) are `#[ignore]`d, so that
//! a plain `cargo test` says they did not run; run them with `cargo test -- --include-ignored`
//! (CI does), where a missing module fails them. CI installs it:
//! `python3 -m pip install --quiet 'kubernetes-validate==1.37.0'`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const NAMESPACE: &str = "karmor-system";
const NAME: &str = "karmor-collector";
const IMAGE_REPO: &str = "ghcr.io/karmor/karmor-collector";

/// The capabilities the collector may add: the two eBPF needs, plus RLIMIT_MEMLOCK raising on
/// 5.8–5.10 kernels and reading /proc/<pid>/exe of other users' processes.
const MAY_ADD: &[&str] = &["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE"];
const MUST_ADD: &[&str] = &["BPF", "PERFMON"];
/// Host paths the DaemonSet may mount; all but the data directory read-only.
const DATA_DIR: &str = "/var/lib/karmor";
const HOST_PATHS: &[&str] = &[
    DATA_DIR,
    "/sys/kernel/btf",
    "/sys/kernel/tracing",
    "/sys/kernel/debug",
];

/// A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one, and so would
/// hide a second, contradicting `privileged:` or `capabilities:`), then `load(path)`.
const LOADER_PY: &str = r#"
import json, sys
import yaml

class StrictLoader(yaml.SafeLoader):
    pass

def _mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

def load(path):
    with open(path) as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]
"#;

/// Prints every document of the files given as arguments as one JSON array of
/// `{"file": ..., "doc": ...}`.
const DUMP_PY: &str = r#"
out = []
for path in sys.argv[1:]:
    for doc in load(path):
        out.append({"file": path, "doc": doc})
json.dump(out, sys.stdout, default=str)
"#;

/// Validates every document of the files given as arguments, strictly (unknown fields are
/// errors), against Kubernetes 1.30 and the oldest and newest versions the package bundles.
/// A kind without a schema is an error too (the CLI only warns). Exits 1 on any error.
const VALIDATE_PY: &str = r#"
from packaging.version import Version
from kubernetes_validate import utils
from kubernetes_validate.version import __version__

bundled = utils.all_versions()
versions = sorted({"1.30.0", bundled[0], bundled[-1]}, key=Version)
print("kubernetes-validate %s, strict, against %s" % (__version__, ", ".join(versions)))
errors = 0
for path in sys.argv[1:]:
    try:
        docs = load(path)
    except Exception as e:
        print("ERROR %s: not valid YAML: %s" % (path, e))
        errors += 1
        continue
    if not docs:
        print("ERROR %s: no document" % path)
        errors += 1
    for doc in docs:
        if not isinstance(doc, dict):
            print("ERROR %s: a document is not a mapping" % path)
            errors += 1
            continue
        name = "%s/%s" % (doc.get("kind"), (doc.get("metadata") or {}).get("name"))
        for v in versions:
            try:
                got = utils.validate(doc, v, strict=True)
                print("OK %s %s against %s" % (path, name, got))
            except utils.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                print("ERROR %s %s against %s: %s: %s" % (path, name, e.version, where, e.message))
                errors += 1
            except (utils.SchemaNotFoundError, utils.InvalidSchemaError,
                    utils.VersionNotSupportedError) as e:
                print("ERROR %s %s against %s: %s" % (path, name, v, e.message))
                errors += 1
            except Exception as e:
                print("ERROR %s %s against %s: %s" % (path, name, v, e))
                errors += 1
print("%d error(s)" % errors)
sys.exit(1 if errors else 0)
"#;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every manifest of `collector/deploy/` (the `*.yaml` files but kustomization.yaml), sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(deploy_dir())
        .expect("collector/deploy exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in collector/deploy");
    files
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the test, saying what to install, when python3 cannot import `module`.
fn require_python(module: &str) {
    assert!(
        python_has(module),
        "python3 cannot import {module}: python3 -m pip install 'kubernetes-validate==1.37.0'"
    );
}

/// Runs `LOADER_PY` + `body` with `files` as arguments: (success, stdout + stderr).
fn run_python(body: &str, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{LOADER_PY}\n{body}"))
        .args(files)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn validate(files: &[PathBuf]) -> (bool, String) {
    run_python(VALIDATE_PY, files)
}

/// Every document of `files`, as (file name, document).
fn load_docs(files: &[PathBuf]) -> Vec<(String, Value)> {
    let (ok, text) = run_python(DUMP_PY, files);
    assert!(ok, "the manifests do not parse as YAML:\n{text}");
    let all: Vec<Value> = serde_json::from_str(&text).expect("the loader prints JSON");
    all.into_iter()
        .map(|v| {
            let file = Path::new(v["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, v["doc"].clone())
        })
        .collect()
}

/// The deployment's documents (fails when PyYAML is missing).
fn deploy_docs() -> Vec<(String, Value)> {
    require_python("yaml");
    load_docs(&manifest_files())
}

fn the<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn pod_spec(docs: &[(String, Value)]) -> &Value {
    &the(docs, "DaemonSet")["spec"]["template"]["spec"]
}

/// Containers and init containers of the DaemonSet's pod.
fn all_containers(docs: &[(String, Value)]) -> Vec<&Value> {
    let spec = pod_spec(docs);
    let mut out = Vec::new();
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec[key].as_array() {
            out.extend(list.iter());
        }
    }
    assert!(!out.is_empty(), "the DaemonSet has no container");
    out
}

fn collector_container(docs: &[(String, Value)]) -> &Value {
    pod_spec(docs)["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == NAME)
        .expect("a container named karmor-collector")
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

/// Millicores of a CPU quantity ("50m", "0.5", "2").
fn cpu_millis(q: &str) -> f64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().expect("a CPU quantity"),
        None => q.parse::<f64>().expect("a CPU quantity") * 1000.0,
    }
}

/// Bytes of a memory quantity ("96Mi", "1Gi", "500M", "1048576").
fn mem_bytes(q: &str) -> f64 {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    for (suffix, scale) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().expect("a memory quantity") * scale;
        }
    }
    q.parse().expect("a memory quantity")
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn every_manifest_passes_offline_schema_validation() {
    require_python("kubernetes_validate");
    let files = manifest_files();
    let (ok, out) = validate(&files);
    println!("{out}");
    assert!(ok, "schema validation failed:\n{out}");
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("OK ") && l.contains(&format!(" {kind}/"))),
            "no {kind} was validated:\n{out}"
        );
    }

    // What `kubectl apply -k` would send, when kubectl is here to render it.
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir())
        .output();
    match rendered {
        Ok(r) if r.status.success() => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("rendered.yaml");
            fs::write(&path, r.stdout).unwrap();
            let (ok, out) = validate(&[path]);
            assert!(ok, "the kustomize output fails validation:\n{out}");
            println!("kubectl kustomize output validates too");
        }
        Ok(r) => panic!(
            "kubectl kustomize collector/deploy failed:\n{}",
            String::from_utf8_lossy(&r.stderr)
        ),
        Err(_) => println!("note: no kubectl here; kustomize rendering not checked"),
    }
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn validator_rejects_broken_manifests() {
    require_python("kubernetes_validate");
    // Guards against a validator that passes anything: a misspelt field, a wrong type and a
    // duplicated key must each fail.
    let good = fs::read_to_string(deploy_dir().join("daemonset.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "misspelt.yaml",
            good.replacen(
                "readOnlyRootFilesystem: true",
                "readOnlyRootFileSystem: true",
                1,
            ),
            "readOnlyRootFileSystem",
        ),
        (
            "wrong-type.yaml",
            good.replacen("hostPID: true", "hostPID: [true]", 1),
            "hostPID",
        ),
        (
            "duplicate.yaml",
            good.replacen(
                "privileged: false",
                "privileged: false\n            privileged: true",
                1,
            ),
            "duplicate key",
        ),
    ];
    for (name, text, expect) in cases {
        assert_ne!(text, good, "{name}: the mutation did not apply");
        let path = dir.path().join(name);
        fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let (ok, out) = validate(&[path]);
        assert!(!ok, "{name} passed validation:\n{out}");
        assert!(
            out.contains(expect),
            "{name}: no mention of {expect}:\n{out}"
        );
    }
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn kustomization_lists_every_manifest() {
    require_python("yaml");
    let docs = load_docs(&[deploy_dir().join("kustomization.yaml")]);
    assert_eq!(docs.len(), 1);
    let k = &docs[0].1;
    assert_eq!(k["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k["kind"], "Kustomization");
    let listed: BTreeSet<String> = strings(&k["resources"]).into_iter().collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, present, "kustomization.yaml resources vs files");
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn every_resource_is_labelled_and_namespaced() {
    let docs = deploy_docs();
    let kinds: BTreeSet<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
    ]
    .into();
    assert_eq!(kinds, expected);
    assert_eq!(the(&docs, "Namespace")["metadata"]["name"], NAMESPACE);
    for (file, doc) in &docs {
        let meta = &doc["metadata"];
        assert_eq!(
            meta["labels"]["app.kubernetes.io/name"], NAME,
            "{file}: label app.kubernetes.io/name"
        );
        match doc["kind"].as_str().unwrap() {
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" => {
                assert!(meta.get("namespace").is_none(), "{file}: cluster-scoped")
            }
            _ => assert_eq!(meta["namespace"], NAMESPACE, "{file}: namespace"),
        }
    }
    let ds = the(&docs, "DaemonSet");
    let template_labels = ds["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    assert_eq!(template_labels["app.kubernetes.io/name"], NAME);
    for (k, v) in ds["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            template_labels.get(k),
            Some(v),
            "selector {k} not on the pods"
        );
    }
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn cluster_role_is_get_list_watch_on_pods_replicasets_jobs_and_list_watch_on_services_and_endpointslices_only(
) {
    let docs = deploy_docs();
    let role = the(&docs, "ClusterRole");
    assert!(role.get("aggregationRule").is_none(), "no aggregation");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for key in rule.as_object().unwrap().keys() {
            assert!(
                ["apiGroups", "resources", "verbs"].contains(&key.as_str()),
                "unexpected rule field {key} (resourceNames, nonResourceURLs, ...)"
            );
        }
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    let mut expected = BTreeSet::new();
    for (group, resource) in [("", "pods"), ("apps", "replicasets"), ("batch", "jobs")] {
        for verb in ["get", "list", "watch"] {
            expected.insert((group.to_string(), resource.to_string(), verb.to_string()));
        }
    }
    for verb in ["list", "watch"] {
        expected.insert((String::new(), "services".to_string(), verb.to_string()));
        expected.insert((
            "discovery.k8s.io".to_string(),
            "endpointslices".to_string(),
            verb.to_string(),
        ));
    }
    assert_eq!(
        granted, expected,
        "exactly get/list/watch on pods, replicasets, jobs and list/watch on services and endpointslices"
    );

    let binding = the(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subjects = binding["subjects"].as_array().unwrap();
    assert_eq!(
        subjects.len(),
        1,
        "one subject: the collector's service account"
    );
    let sa = the(&docs, "ServiceAccount");
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], sa["metadata"]["name"]);
    assert_eq!(subjects[0]["namespace"], NAMESPACE);
    assert_eq!(
        pod_spec(&docs)["serviceAccountName"],
        sa["metadata"]["name"]
    );
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn daemonset_runs_everywhere_with_the_fewest_privileges() {
    let docs = deploy_docs();
    let spec = pod_spec(&docs);

    // Every node, whatever its taints: a key-less `operator: Exists` without effect.
    let tolerations = spec["tolerations"].as_array().expect("tolerations");
    assert!(
        tolerations.iter().any(|t| t["operator"] == "Exists"
            && t.get("key").is_none()
            && t.get("effect").is_none()),
        "no toleration of every taint: {tolerations:?}"
    );

    // Host namespaces: the pid namespace only.
    assert_eq!(
        spec["hostPID"], true,
        "hostPID (host pids in events, /proc)"
    );
    for ns in ["hostNetwork", "hostIPC"] {
        assert!(
            spec.get(ns).is_none() || spec[ns] == false,
            "{ns} must not be shared"
        );
    }
    // No pod-level widening of the container's context.
    if let Some(psc) = spec.get("securityContext") {
        assert!(psc.get("sysctls").is_none(), "no sysctls");
        assert!(psc.get("windowsOptions").is_none());
    }

    for c in all_containers(&docs) {
        let name = c["name"].as_str().unwrap();
        let sc = &c["securityContext"];
        assert_eq!(sc["privileged"], false, "{name}: privileged must be false");
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{name}: allowPrivilegeEscalation"
        );
        assert_eq!(
            sc["readOnlyRootFilesystem"], true,
            "{name}: readOnlyRootFilesystem"
        );
        assert!(sc.get("procMount").is_none(), "{name}: default procMount");
        assert_eq!(
            strings(&sc["capabilities"]["drop"]),
            ["ALL"],
            "{name}: drop ALL"
        );
        let add = strings(&sc["capabilities"]["add"]);
        for cap in MUST_ADD {
            assert!(add.iter().any(|a| a == cap), "{name}: must add {cap}");
        }
        for cap in &add {
            assert!(
                MAY_ADD.contains(&cap.as_str()),
                "{name}: capability {cap} is not one eBPF needs"
            );
        }

        // Requests and limits for CPU and memory, requests within limits.
        let res = &c["resources"];
        for kind in ["cpu", "memory"] {
            let req = res["requests"][kind]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no {kind} request"));
            let lim = res["limits"][kind]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no {kind} limit"));
            let (r, l) = if kind == "cpu" {
                (cpu_millis(req), cpu_millis(lim))
            } else {
                (mem_bytes(req), mem_bytes(lim))
            };
            assert!(
                r > 0.0 && r <= l,
                "{name}: {kind} request {req} vs limit {lim}"
            );
        }

        // The kubelet cannot reach 127.0.0.1 inside the pod: probes must be exec probes.
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(p) = c.get(probe) {
                assert!(
                    p.get("exec").is_some(),
                    "{name}: {probe} must be an exec probe"
                );
                for kind in ["httpGet", "tcpSocket", "grpc"] {
                    assert!(p.get(kind).is_none(), "{name}: {probe} uses {kind}");
                }
            }
        }
    }

    // NODE_NAME from the downward API.
    let collector = collector_container(&docs);
    let node = env_value(collector, "NODE_NAME").expect("NODE_NAME in env");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");

    // Host paths: the data directory (read-write, created if missing) and read-only kernel
    // interfaces, nothing else (no /, no /proc, no runtime sockets).
    let mut host_volumes = BTreeMap::new();
    for v in spec["volumes"].as_array().expect("volumes") {
        if let Some(hp) = v.get("hostPath") {
            let path = hp["path"].as_str().unwrap().to_string();
            assert!(
                HOST_PATHS.contains(&path.as_str()),
                "hostPath {path} is not needed"
            );
            if path == DATA_DIR {
                assert_eq!(hp["type"], "DirectoryOrCreate", "data dir hostPath type");
            }
            host_volumes.insert(v["name"].as_str().unwrap().to_string(), path);
        }
    }
    assert!(
        host_volumes.values().any(|p| p == DATA_DIR),
        "no data hostPath"
    );
    for c in all_containers(&docs) {
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vol = m["name"].as_str().unwrap();
            if let Some(path) = host_volumes.get(vol) {
                if path == DATA_DIR {
                    assert_eq!(m["mountPath"], DATA_DIR);
                } else {
                    assert_eq!(m["readOnly"], true, "{path} must be mounted read-only");
                }
            }
        }
    }
    assert_eq!(
        env_value(collector, "KARMOR_DATA_DIR").map(|e| &e["value"]),
        Some(&Value::from(DATA_DIR))
    );
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn daemonset_env_and_image_match_the_collector() {
    let docs = deploy_docs();
    let collector = collector_container(&docs);
    let image = collector["image"].as_str().unwrap();
    assert_eq!(
        image,
        format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION")),
        "image tag follows the crate version"
    );
    let bin = env!("CARGO_BIN_EXE_karmor-collector");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for e in collector["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name == "RUST_LOG" {
            continue;
        }
        assert!(
            help.contains(&format!("[env: {name}=")),
            "env {name} is not one karmor-collector reads (see --help)"
        );
    }
    assert!(
        collector.get("command").is_none(),
        "the image's ENTRYPOINT runs the collector"
    );
}

/// A free loopback port (racy in theory, fine for a test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
#[ignore = "needs python3 with kubernetes-validate (pip install kubernetes-validate==1.37.0)"]
fn exec_probes_reach_the_loopback_metrics_endpoint() {
    let docs = deploy_docs();
    let bin = env!("CARGO_BIN_EXE_karmor-collector");
    let collector = collector_container(&docs);
    let probes: Vec<Vec<String>> = ["livenessProbe", "readinessProbe"]
        .iter()
        .filter_map(|p| collector.get(*p))
        .map(|p| strings(&p["exec"]["command"]))
        .collect();
    assert!(!probes.is_empty(), "no exec probe");
    for cmd in &probes {
        assert!(
            Path::new(&cmd[0]).exists(),
            "the exec probe runs {}, which this machine does not have",
            cmd[0]
        );
    }

    // The collector with the synthetic source and no Kubernetes needs no privileges.
    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("collector.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin)
        .args([
            "--source",
            "synthetic",
            "--synthetic-rate",
            "1000",
            "--no-kube",
            "--no-listen",
        ])
        .args(["--node-name", "probe-test", "--rotate-seconds", "60"])
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .env("KARMOR_METRICS_ADDR", &addr)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let run = |cmd: &[String], addr: &str| {
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("KARMOR_METRICS_ADDR", addr)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < deadline {
        if run(&probes[0], &addr) {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_pass = up && probes.iter().all(|cmd| run(cmd, &addr));
    let closed = format!("127.0.0.1:{}", free_port());
    let fails_when_down = probes.iter().all(|cmd| !run(cmd, &closed));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        all_pass,
        "the exec probes never reached /healthz on {addr}; collector log:\n{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(fails_when_down, "a probe passed with nothing listening");
}

#[test]
fn containerfile_builds_the_collector_with_its_probes() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile"))
        .expect("collector/Containerfile");
    // Instructions, without comments and with continuation lines joined.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let froms: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(froms[0].contains("rust:") && froms[0].contains(" AS build"));
    assert!(froms[1].contains("debian:") && froms[1].contains("-slim"));
    for tool in ["clang", "llvm", "libbpf-dev", "bpftool"] {
        assert!(
            instructions.iter().any(|l| l.starts_with("RUN ")
                && l.contains("apt-get install")
                && l.contains(tool)),
            "the build stage installs {tool}"
        );
    }
    assert!(
        joined
            .contains("KARMOR_REQUIRE_PROBES=1 cargo build --release --locked -p karmor-collector"),
        "the build fails rather than produce a collector without probes"
    );
    assert_eq!(
        instructions.last().copied(),
        Some(r#"ENTRYPOINT ["/usr/local/bin/karmor-collector"]"#)
    );

    // Cargo reads every workspace member's manifest: each must be copied into the build stage,
    // by itself or with the directory that holds it.
    let workspace =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")).unwrap();
    let members = workspace
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("[workspace] members");
    for member in members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        let copied = instructions.iter().any(|l| {
            l.strip_prefix("COPY ")
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(src, dst)| {
                    src == dst && (member == src || member.starts_with(&format!("{src}/")))
                })
        });
        assert!(
            copied,
            "the Containerfile does not copy workspace member {member}"
        );
    }
}
