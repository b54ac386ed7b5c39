//! Names of containers that no pod holds (Docker, containerd, Podman on edge nodes), read from
//! the container runtimes' on-disk state: read-only files, never a runtime socket.
//!
//! | runtime | file read (under its root) | name | image | labels |
//! |---|---|---|---|---|
//! | Docker | `containers/<id>/config.v2.json` (`--docker-root`, `/var/lib/docker`) | `Name` without its `/` | `Config.Image` | `Config.Labels` |
//! | containerd (nerdctl, CRI) | `io.containerd.runtime.v2.task/<namespace>/<id>/config.json`, the task bundle's OCI spec (`--containerd-state`, `/run/containerd`) | annotation `nerdctl/name`, else `io.kubernetes.cri.container-name` | `io.kubernetes.cri.image-name`, else `io.containerd.image.name`, else `nerdctl/image-name` | the other annotations, runtime-internal ones left out |
//! | Podman, CRI-O | `overlay-containers/containers.json` (`names`, `metadata.image-name`) and `overlay-containers/<id>/userdata/config.json` (`--containers-storage`, `/var/lib/containers/storage`) | `names[0]`, else `io.kubernetes.cri-o.ContainerName` | `metadata.image-name`, else `io.kubernetes.cri-o.ImageName` | `io.kubernetes.cri-o.Labels` |
//!
//! A CRI container (its annotations name the pod's namespace and name) carries them too, so that
//! rows of a pod the watch never delivered still say which pod they came from; with Kubernetes
//! the pod watch wins whenever it knows the container.
//!
//! Lookups are cached per container id: a container found keeps its identity until the cache is
//! full (then it restarts); a container not found (state not written yet, a root that is not
//! readable, a corrupt file) is looked up again after [`RETRY_AFTER`], its reason logged once
//! per attempt. Nothing here panics on what the files hold.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a container that was not found stays unknown before it is looked up again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Containers remembered at most (the cache restarts when full).
const CACHE_CAPACITY: usize = 4096;

/// Files larger than this are not read (a runtime's state file is kilobytes; containers.json
/// grows with the number of containers).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Which runtime's state named a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Docker's `config.v2.json`.
    Docker,
    /// A containerd task bundle.
    Containerd,
    /// Podman's or CRI-O's container storage.
    ContainersStorage,
}

/// A container as its runtime names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeContainer {
    /// The container's name (`docker ps` NAMES).
    pub name: String,
    /// The image as the user named it (`nginx:1.25`).
    pub image: Option<String>,
    /// Labels, sorted `k=v`.
    pub labels: Vec<String>,
    /// The pod's namespace, for a CRI container whose annotations name it.
    pub namespace: Option<String>,
    /// The pod's name, for a CRI container whose annotations name it.
    pub pod: Option<String>,
}

/// Where each runtime keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRoots {
    /// Docker's data root (`/var/lib/docker`).
    pub docker: Option<PathBuf>,
    /// containerd's state directory (`/run/containerd`).
    pub containerd: Option<PathBuf>,
    /// containers/storage's graph root (`/var/lib/containers/storage`).
    pub containers_storage: Option<PathBuf>,
}

impl Default for RuntimeRoots {
    fn default() -> Self {
        RuntimeRoots {
            docker: Some("/var/lib/docker".into()),
            containerd: Some("/run/containerd".into()),
            containers_storage: Some("/var/lib/containers/storage".into()),
        }
    }
}

impl RuntimeRoots {
    /// The roots that exist and can be listed, each with a line for the log saying so or why
    /// not.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, root) in [
            ("Docker", &self.docker),
            ("containerd", &self.containerd),
            ("containers/storage", &self.containers_storage),
        ] {
            match root {
                None => out.push(format!("{what} state: not read")),
                Some(r) => match fs::read_dir(r) {
                    Ok(_) => out.push(format!("{what} state: {}", r.display())),
                    Err(e) => out.push(format!(
                        "{what} state: {} not readable ({e}); its containers are known by id only",
                        r.display()
                    )),
                },
            }
        }
        out
    }
}

/// Why a runtime's state gave no identity for a container.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any state file should be.
    #[error("{path}: {bytes} bytes, more than a runtime state file holds")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The file is not the JSON expected.
    #[error("{path}: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

fn read_json(path: &Path) -> Result<Value, StateError> {
    let meta = fs::metadata(path).map_err(|source| StateError::Read {
        path: path.into(),
        source,
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(StateError::TooLarge {
            path: path.into(),
            bytes: meta.len(),
        });
    }
    let bytes = fs::read(path).map_err(|source| StateError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| StateError::Malformed {
        path: path.into(),
        why: format!("not JSON: {e}"),
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `k=v` strings, sorted, from a JSON object of strings (other values are skipped).
fn label_list<'a>(pairs: impl Iterator<Item = (&'a String, &'a Value)>) -> Vec<String> {
    let mut out: Vec<String> = pairs
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    out.sort();
    out
}

/// Parses Docker's `config.v2.json`.
pub fn parse_docker_config(path: &Path) -> Result<RuntimeContainer, StateError> {
    let v = read_json(path)?;
    let malformed = |why: &str| StateError::Malformed {
        path: path.into(),
        why: why.into(),
    };
    let name = text(&v, "Name")
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed("no Name"))?;
    let config = v.get("Config");
    let image = config.and_then(|c| text(c, "Image"));
    let labels = config
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
        .map(|m| label_list(m.iter()))
        .unwrap_or_default();
    let namespace = labels_value(&labels, "io.kubernetes.pod.namespace");
    let pod = labels_value(&labels, "io.kubernetes.pod.name");
    Ok(RuntimeContainer {
        name,
        image,
        labels,
        namespace,
        pod,
    })
}

fn labels_value(labels: &[String], key: &str) -> Option<String> {
    labels.iter().find_map(|l| {
        l.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    })
}

/// Annotation prefixes that are a runtime's bookkeeping, not labels a user gave.
const INTERNAL_ANNOTATIONS: &[&str] = &[
    "io.kubernetes.cri.",
    "io.kubernetes.cri-o.",
    "io.containerd.",
    "nerdctl/",
    "org.systemd.",
];

/// Parses an OCI runtime spec (`config.json` of a containerd task bundle or of a CRI-O /
/// Podman container): its annotations name the container. `Ok(None)` for a pod sandbox (the
/// pause container) and for a spec whose annotations name nothing.
pub fn parse_oci_spec(path: &Path) -> Result<Option<RuntimeContainer>, StateError> {
    let v = read_json(path)?;
    if !v.is_object() {
        return Err(StateError::Malformed {
            path: path.into(),
            why: "not a JSON object".into(),
        });
    }
    let empty = serde_json::Map::new();
    let ann = match v.get("annotations") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(StateError::Malformed {
                path: path.into(),
                why: "annotations is not an object".into(),
            })
        }
    };
    let get = |k: &str| {
        ann.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let kind = get("io.kubernetes.cri.container-type")
        .or_else(|| get("io.kubernetes.cri-o.ContainerType"));
    if kind.as_deref() == Some("sandbox") {
        return Ok(None);
    }
    let Some(name) = get("nerdctl/name")
        .or_else(|| get("io.kubernetes.cri.container-name"))
        .or_else(|| get("io.kubernetes.cri-o.ContainerName"))
    else {
        return Ok(None);
    };
    let image = get("io.kubernetes.cri.image-name")
        .or_else(|| get("io.kubernetes.cri-o.ImageName"))
        .or_else(|| get("io.containerd.image.name"))
        .or_else(|| get("nerdctl/image-name"));
    let mut labels = label_list(
        ann.iter()
            .filter(|(k, _)| !INTERNAL_ANNOTATIONS.iter().any(|p| k.starts_with(p))),
    );
    // CRI-O keeps the container's labels as one JSON object in an annotation.
    if let Some(json) = get("io.kubernetes.cri-o.Labels") {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&json) {
            labels.extend(label_list(m.iter()));
            labels.sort();
            labels.dedup();
        }
    }
    let namespace = get("io.kubernetes.cri.sandbox-namespace")
        .or_else(|| labels_value(&labels, "io.kubernetes.pod.namespace"));
    let pod = get("io.kubernetes.cri.sandbox-name")
        .or_else(|| labels_value(&labels, "io.kubernetes.pod.name"));
    Ok(Some(RuntimeContainer {
        name,
        image,
        labels,
        namespace,
        pod,
    }))
}

/// Finds `id` in containers/storage's `containers.json`: its first name and the image name
/// its metadata records. `Ok(None)` when the file does not list it.
pub fn parse_containers_json(
    path: &Path,
    id: &str,
) -> Result<Option<(String, Option<String>)>, StateError> {
    let v = read_json(path)?;
    let Some(list) = v.as_array() else {
        return Err(StateError::Malformed {
            path: path.into(),
            why: "not a JSON array".into(),
        });
    };
    let Some(entry) = list
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
    else {
        return Ok(None);
    };
    // `metadata` is a JSON document in a string (Podman's: image-name, image-id, name).
    let meta: Option<Value> = entry
        .get("metadata")
        .and_then(Value::as_str)
        .and_then(|m| serde_json::from_str(m).ok());
    let name = entry
        .get("names")
        .and_then(Value::as_array)
        .and_then(|n| n.iter().find_map(Value::as_str))
        .map(str::to_string)
        .or_else(|| meta.as_ref().and_then(|m| text(m, "name")));
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(StateError::Malformed {
            path: path.into(),
            why: format!("container {id} has no name"),
        });
    };
    let image = meta.as_ref().and_then(|m| text(m, "image-name"));
    Ok(Some((name, image)))
}

enum Cached {
    Found(Arc<RuntimeContainer>),
    Missing(Instant),
}

/// Container ids to names, from the runtimes' state under [`RuntimeRoots`], cached.
pub struct RuntimeState {
    roots: RuntimeRoots,
    cache: Mutex<HashMap<String, Cached>>,
}

impl RuntimeState {
    /// Reads the runtimes' state under `roots`.
    pub fn new(roots: RuntimeRoots) -> Self {
        RuntimeState {
            roots,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The container `id` (64 hex characters) as its runtime names it, if a readable state
    /// file names it.
    pub fn lookup(&self, id: &str) -> Option<Arc<RuntimeContainer>> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(id) {
                Some(Cached::Found(c)) => return Some(c.clone()),
                Some(Cached::Missing(at)) if at.elapsed() < RETRY_AFTER => return None,
                _ => {}
            }
        }
        let found = self.read(id).map(Arc::new);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(id) {
            cache.clear();
        }
        cache.insert(
            id.to_string(),
            match &found {
                Some(c) => Cached::Found(c.clone()),
                None => Cached::Missing(Instant::now()),
            },
        );
        found
    }

    /// Reads every runtime's state for `id`, first that names it wins; why not otherwise is
    /// logged.
    fn read(&self, id: &str) -> Option<RuntimeContainer> {
        match self.resolve(id) {
            Ok(Some((runtime, c))) => {
                log::debug!("container {id}: {runtime:?} names it {}", c.name);
                Some(c)
            }
            Ok(None) => {
                log::debug!("container {id}: no runtime state names it");
                None
            }
            Err(reasons) => {
                log::warn!("container {id}: known by id only: {}", reasons.join("; "));
                None
            }
        }
    }

    /// The runtime that names `id` and what it says; `Ok(None)` when no state file is there,
    /// `Err` with a reason per unreadable or malformed file found.
    pub fn resolve(&self, id: &str) -> Result<Option<(Runtime, RuntimeContainer)>, Vec<String>> {
        let mut reasons = Vec::new();
        for (runtime, result) in [
            (Runtime::Docker, self.docker(id)),
            (Runtime::Containerd, self.containerd(id)),
            (Runtime::ContainersStorage, self.containers_storage(id)),
        ] {
            match result {
                Ok(Some(c)) => return Ok(Some((runtime, c))),
                Ok(None) => {}
                Err(e) => reasons.push(e.to_string()),
            }
        }
        if reasons.is_empty() {
            Ok(None)
        } else {
            Err(reasons)
        }
    }

    fn docker(&self, id: &str) -> Result<Option<RuntimeContainer>, StateError> {
        let Some(root) = &self.roots.docker else {
            return Ok(None);
        };
        let path = root.join("containers").join(id).join("config.v2.json");
        if !path.exists() {
            return Ok(None);
        }
        parse_docker_config(&path).map(Some)
    }

    fn containerd(&self, id: &str) -> Result<Option<RuntimeContainer>, StateError> {
        let Some(root) = &self.roots.containerd else {
            return Ok(None);
        };
        // One directory per containerd namespace (default, moby, k8s.io, …).
        let tasks = root.join("io.containerd.runtime.v2.task");
        let Ok(namespaces) = fs::read_dir(&tasks) else {
            return Ok(None);
        };
        for ns in namespaces.flatten() {
            let path = ns.path().join(id).join("config.json");
            if path.exists() {
                return parse_oci_spec(&path);
            }
        }
        Ok(None)
    }

    fn containers_storage(&self, id: &str) -> Result<Option<RuntimeContainer>, StateError> {
        let Some(root) = &self.roots.containers_storage else {
            return Ok(None);
        };
        let dir = root.join("overlay-containers");
        let spec_path = dir.join(id).join("userdata").join("config.json");
        let spec = if spec_path.exists() {
            parse_oci_spec(&spec_path)?
        } else {
            None
        };
        let listed = dir.join("containers.json");
        let listed = if listed.exists() {
            parse_containers_json(&listed, id)?
        } else {
            None
        };
        Ok(match (spec, listed) {
            (Some(mut c), Some((name, image))) => {
                // CRI-O names its storage entries k8s_…; the annotation's name is the one
                // users know, so the storage name only fills in for Podman.
                if c.namespace.is_none() {
                    c.name = name;
                }
                c.image = c.image.or(image);
                Some(c)
            }
            (Some(c), None) => Some(c),
            (None, Some((name, image))) => Some(RuntimeContainer {
                name,
                image,
                ..RuntimeContainer::default()
            }),
            (None, None) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000";

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn state(dir: &Path) -> RuntimeState {
        RuntimeState::new(RuntimeRoots {
            docker: Some(dir.join("docker")),
            containerd: Some(dir.join("containerd")),
            containers_storage: Some(dir.join("storage")),
        })
    }

    #[test]
    fn docker_config_v2() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            &dir.path()
                .join("docker/containers")
                .join(ID)
                .join("config.v2.json"),
            r#"{"ID":"x","Name":"/shop-web-1","Image":"sha256:abc",
                "Config":{"Image":"nginx:1.25","Labels":{"com.docker.compose.service":"web","tier":"front"}}}"#,
        );
        let c = state(dir.path()).lookup(ID).expect("named");
        assert_eq!(c.name, "shop-web-1");
        assert_eq!(c.image.as_deref(), Some("nginx:1.25"));
        assert_eq!(
            c.labels,
            vec!["com.docker.compose.service=web", "tier=front"]
        );
        assert_eq!((c.namespace.clone(), c.pod.clone()), (None, None));
    }

    #[test]
    fn containerd_task_bundle_nerdctl_and_cri() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = |ns: &str, id: &str| {
            dir.path()
                .join("containerd/io.containerd.runtime.v2.task")
                .join(ns)
                .join(id)
                .join("config.json")
        };
        write(
            &bundle("default", ID),
            r#"{"ociVersion":"1.1.0","annotations":{"nerdctl/name":"edge-cache",
                "nerdctl/namespace":"default","io.containerd.image.config.stop-signal":"SIGTERM",
                "site":"plant-4"}}"#,
        );
        let c = state(dir.path()).lookup(ID).expect("named");
        assert_eq!(c.name, "edge-cache");
        assert_eq!(c.image, None);
        assert_eq!(c.labels, vec!["site=plant-4"]);

        let cri = "1".repeat(64);
        write(
            &bundle("k8s.io", &cri),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"docker.io/library/redis:7",
                "io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-name":"cart-0"}}"#,
        );
        let c = state(dir.path()).lookup(&cri).expect("named");
        assert_eq!(c.name, "app");
        assert_eq!(c.image.as_deref(), Some("docker.io/library/redis:7"));
        assert_eq!(c.namespace.as_deref(), Some("shop"));
        assert_eq!(c.pod.as_deref(), Some("cart-0"));

        let pause = "2".repeat(64);
        write(
            &bundle("k8s.io", &pause),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.container-name":"POD"}}"#,
        );
        assert_eq!(
            state(dir.path()).lookup(&pause),
            None,
            "a sandbox is no container"
        );
    }

    #[test]
    fn podman_and_crio_storage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("storage/overlay-containers");
        let crio = "3".repeat(64);
        write(
            &storage.join("containers.json"),
            &format!(
                r#"[{{"id":"{ID}","names":["sensor-agent"],"image":"e1f2","layer":"l",
                     "metadata":"{{\"image-name\":\"quay.io/acme/agent:2.1\",\"image-id\":\"e1f2\",\"name\":\"sensor-agent\",\"created-at\":1}}"}},
                    {{"id":"{crio}","names":["k8s_api_api-7_prod_uid_0"],"metadata":"{{}}"}}]"#
            ),
        );
        let c = state(dir.path()).lookup(ID).expect("named");
        assert_eq!(c.name, "sensor-agent");
        assert_eq!(c.image.as_deref(), Some("quay.io/acme/agent:2.1"));

        write(
            &storage.join(&crio).join("userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.cri-o.ContainerType":"container",
                "io.kubernetes.cri-o.ContainerName":"api","io.kubernetes.cri-o.ImageName":"quay.io/acme/api:1",
                "io.kubernetes.cri-o.Labels":"{\"io.kubernetes.pod.namespace\":\"prod\",\"io.kubernetes.pod.name\":\"api-7\",\"app\":\"api\"}"}}"#,
        );
        let c = state(dir.path()).lookup(&crio).expect("named");
        assert_eq!(c.name, "api");
        assert_eq!(c.image.as_deref(), Some("quay.io/acme/api:1"));
        assert!(c.labels.contains(&"app=api".to_string()), "{:?}", c.labels);
        assert_eq!(c.namespace.as_deref(), Some("prod"));
        assert_eq!(c.pod.as_deref(), Some("api-7"));
    }

    #[test]
    fn corrupt_or_missing_state_gives_no_identity_and_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Nothing at all: no identity.
        assert_eq!(state(dir.path()).lookup(ID), None);
        // Roots that do not exist and ids that are not ids.
        let none = RuntimeState::new(RuntimeRoots {
            docker: Some("/nonexistent/docker".into()),
            containerd: None,
            containers_storage: None,
        });
        assert_eq!(none.lookup(ID), None);
        assert_eq!(none.lookup("../../etc"), None);

        let docker = dir
            .path()
            .join("docker/containers")
            .join(ID)
            .join("config.v2.json");
        for (text, why) in [
            ("{\"Name\":", "not JSON"),
            ("{\"Config\":{\"Image\":\"x\"}}", "no Name"),
            ("[1,2]", "no Name"),
            ("", "not JSON"),
        ] {
            write(&docker, text);
            let err = parse_docker_config(&docker).expect_err(text);
            assert!(err.to_string().contains(why), "{text}: {err}");
            assert_eq!(state(dir.path()).lookup(ID), None, "{text}");
            // The reason logged names the file and what is wrong with it.
            let reasons = state(dir.path()).resolve(ID).expect_err(text);
            assert!(
                reasons.len() == 1
                    && reasons[0].contains("config.v2.json")
                    && reasons[0].contains(why),
                "{text}: {reasons:?}"
            );
        }
        let spec = dir.path().join("spec.json");
        for (text, why) in [
            ("nope", "not JSON"),
            ("[]", "not a JSON object"),
            ("{\"annotations\":[1]}", "annotations is not an object"),
        ] {
            write(&spec, text);
            let err = parse_oci_spec(&spec).expect_err(text);
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
        // A spec without naming annotations names nothing.
        write(&spec, "{\"annotations\":{\"a\":\"b\"}}");
        assert_eq!(parse_oci_spec(&spec).expect("parsed"), None);
        let list = dir.path().join("containers.json");
        write(&list, "{\"id\":1}");
        assert!(parse_containers_json(&list, ID).is_err());
        write(&list, &format!("[{{\"id\":\"{ID}\",\"names\":[]}}]"));
        assert!(parse_containers_json(&list, ID).is_err());
        write(&list, "[{\"id\":\"other\"}]");
        assert_eq!(parse_containers_json(&list, ID).expect("parsed"), None);
    }

    #[test]
    fn found_containers_are_cached_and_missing_ones_retried_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = state(dir.path());
        assert_eq!(s.lookup(ID), None);
        let docker = dir
            .path()
            .join("docker/containers")
            .join(ID)
            .join("config.v2.json");
        write(&docker, r#"{"Name":"/late"}"#);
        // Still unknown until the retry delay has passed.
        assert_eq!(s.lookup(ID), None);
        s.cache
            .lock()
            .expect("lock")
            .insert(ID.into(), Cached::Missing(Instant::now() - RETRY_AFTER));
        assert_eq!(s.lookup(ID).expect("named").name, "late");
        // Found: kept even when the file goes away.
        fs::remove_file(&docker).expect("rm");
        assert_eq!(s.lookup(ID).expect("cached").name, "late");
    }
}
