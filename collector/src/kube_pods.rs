//! Pod attribution through the Kubernetes API: an event-driven watch of this node's pods
//! (`fieldSelector=spec.nodeName=<node>`, no polling) kept as an index from container id to
//! [`PodInfo`].
//!
//! - Container ids come from `status.containerStatuses[].containerID` (and the init and
//!   ephemeral container statuses), without their runtime prefix (`containerd://`,
//!   `cri-o://`, `docker://`, …), lowercased: the form [`parse_cgroup`] reads from cgroup
//!   names.
//! - The owning workload is the pod's controller, one level up for ReplicaSets (→ Deployment)
//!   and Jobs (→ CronJob). The ReplicaSet or Job is read through the API once and cached; when
//!   it cannot be read (RBAC, deleted, timeout) the parent is guessed from names: the
//!   `pod-template-hash` suffix of a ReplicaSet, the scheduled-minute suffix of a CronJob's Job.
//! - A deleted pod, or a container replaced by a restart, stays resolvable for a grace period
//!   (5 minutes by default), so late events of short-lived containers are still attributed
//!   when the pipeline flushes its window.
//! - After a relist (the watch expired), pods that are no longer listed count as deleted.
//! - One malformed object does not stop the watch: pods are received as untyped objects and
//!   parsed one by one, and a line that is not JSON at all is a watch error the watcher
//!   recovers from (with back-off).
//!
//! [`parse_cgroup`]: crate::attribution::parse_cgroup

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use crate::attribution::{PodInfo, PodLookup};

/// How long a deleted pod's containers (or a restarted container's old id) still resolve.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);
/// Longest wait for one ReplicaSet or Job read; the watch waits meanwhile.
const OWNER_TIMEOUT: Duration = Duration::from_secs(5);
/// A parent guessed from names (the API read failed) is asked again after this long.
const OWNER_RETRY: Duration = Duration::from_secs(300);
/// Owner cache bound (distinct ReplicaSets and Jobs); the cache is emptied when it is reached.
const OWNER_CACHE_MAX: usize = 8192;
/// Expired entries are removed at least this often.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Errors of the Kubernetes side of attribution.
#[derive(Debug, thiserror::Error)]
pub enum KubePodsError {
    /// No client configuration: neither an in-cluster service account nor a usable KUBECONFIG.
    /// (kube's error already tells its causes in its message, so it is not a `source`.)
    #[error("cannot build a Kubernetes client (no in-cluster service account, no usable KUBECONFIG): {0}")]
    Client(kube::Error),
}

/// Errors reading a pod's owner; the parent is then guessed from names.
#[derive(Debug, thiserror::Error)]
enum OwnerError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// A client from the in-cluster configuration or `KUBECONFIG` (`kube::Client::try_default`).
pub async fn default_client() -> Result<Client, KubePodsError> {
    Client::try_default().await.map_err(KubePodsError::Client)
}

/// The container id of a status `containerID` (`containerd://<id>`, `cri-o://<id>`,
/// `docker://<id>`, …): the part after the runtime prefix, lowercased; `None` when empty.
pub fn container_id(raw: &str) -> Option<String> {
    let id = raw.split_once("://").map_or(raw, |(_, id)| id).trim();
    (!id.is_empty()).then(|| id.to_ascii_lowercase())
}

/// A pod's owning workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Kind (`Deployment`, `CronJob`, `StatefulSet`, `DaemonSet`, `Job`, `ReplicaSet`, …).
    pub kind: String,
    /// Name.
    pub name: String,
}

impl Workload {
    fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }
}

/// The controller among owner references (the first owner when none is marked controller).
fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_deref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())
}

/// The characters of a `pod-template-hash` (Kubernetes' `rand.SafeEncodeString` alphabet).
fn looks_like_template_hash(s: &str) -> bool {
    (4..=10).contains(&s.len())
        && s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
}

/// The parent of a ReplicaSet or Job guessed from names, for when it cannot be read.
///
/// A Deployment names its ReplicaSets `<deployment>-<pod-template-hash>` (the hash is also a
/// pod label); a CronJob names its Jobs `<cronjob>-<scheduled time in minutes>`.
pub fn guess_parent(kind: &str, name: &str, pod_meta: &ObjectMeta) -> Workload {
    match kind {
        "ReplicaSet" => {
            let label = pod_meta
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .filter(|h| !h.is_empty());
            let stripped = match label {
                Some(hash) => name
                    .strip_suffix(hash.as_str())
                    .and_then(|n| n.strip_suffix('-')),
                None => name
                    .rsplit_once('-')
                    .filter(|(_, h)| looks_like_template_hash(h))
                    .map(|(n, _)| n),
            };
            match stripped {
                Some(d) if !d.is_empty() => Workload::new("Deployment", d),
                _ => Workload::new(kind, name),
            }
        }
        "Job" => match name.rsplit_once('-') {
            Some((c, t))
                if !c.is_empty() && t.len() >= 8 && t.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Workload::new("CronJob", c)
            }
            _ => Workload::new(kind, name),
        },
        _ => Workload::new(kind, name),
    }
}

/// The index entries of one pod: container id → what is known of its container.
pub fn pod_entries(pod: &Pod, workload: Option<&Workload>) -> Vec<(String, PodInfo)> {
    let meta = &pod.metadata;
    let labels: Vec<String> = meta
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect(); // a BTreeMap: already sorted by key
    let spec_image = |name: &str| -> Option<String> {
        let spec = pod.spec.as_ref()?;
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
            .or_else(|| {
                spec.ephemeral_containers
                    .iter()
                    .flatten()
                    .find(|c| c.name == name)
                    .and_then(|c| c.image.clone())
            })
    };
    let statuses = pod.status.iter().flat_map(|s| {
        let all: [&Option<Vec<ContainerStatus>>; 3] = [
            &s.container_statuses,
            &s.init_container_statuses,
            &s.ephemeral_container_statuses,
        ];
        all.into_iter().flatten().flatten()
    });
    let mut out = Vec::new();
    for cs in statuses {
        let Some(id) = cs.container_id.as_deref().and_then(container_id) else {
            continue; // not started yet
        };
        let image =
            spec_image(&cs.name).or_else(|| (!cs.image.is_empty()).then(|| cs.image.clone()));
        out.push((
            id,
            PodInfo {
                namespace: meta.namespace.clone().unwrap_or_default(),
                pod: meta.name.clone().unwrap_or_default(),
                pod_uid: meta.uid.clone().unwrap_or_default(),
                container: cs.name.clone(),
                image,
                workload_kind: workload.map(|w| w.kind.clone()),
                workload: workload.map(|w| w.name.clone()),
                labels: labels.clone(),
            },
        ));
    }
    out
}

/// The key of a pod in the index: its uid, else `namespace/name`.
fn pod_key(meta: &ObjectMeta) -> Option<String> {
    match (&meta.uid, &meta.namespace, &meta.name) {
        (Some(uid), _, _) if !uid.is_empty() => Some(uid.clone()),
        (_, Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => None,
    }
}

struct Slot {
    info: PodInfo,
    /// When the container's pod was deleted or the container replaced.
    gone: Option<Instant>,
}

#[derive(Default)]
struct Index {
    containers: HashMap<String, Slot>,
    /// Live pods: key → their container ids.
    pods: HashMap<String, HashSet<String>>,
}

impl Index {
    fn apply(&mut self, key: String, entries: Vec<(String, PodInfo)>, now: Instant) {
        let ids: HashSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        if let Some(old) = self.pods.get(&key) {
            for id in old.difference(&ids) {
                if let Some(s) = self.containers.get_mut(id) {
                    s.gone.get_or_insert(now);
                }
            }
        }
        for (id, info) in entries {
            self.containers.insert(id, Slot { info, gone: None });
        }
        self.pods.insert(key, ids);
    }

    fn delete(&mut self, key: &str, now: Instant) {
        for id in self.pods.remove(key).into_iter().flatten() {
            if let Some(s) = self.containers.get_mut(&id) {
                s.gone.get_or_insert(now);
            }
        }
    }

    fn sweep(&mut self, now: Instant, grace: Duration) {
        self.containers.retain(|_, s| {
            s.gone
                .is_none_or(|g| now.saturating_duration_since(g) <= grace)
        });
    }
}

/// This node's pods by container id, kept current by [`KubePods::watch`]. Shared between the
/// watch task (writer) and the pipeline (reader).
pub struct KubePods {
    index: RwLock<Index>,
    /// The pods table: which address each pod held when.
    addresses: std::sync::Mutex<crate::pod_addresses::AddressBook>,
    grace: Duration,
    synced: AtomicBool,
    /// The cluster's Services, whose cluster IPs join this node's pods table.
    services: Option<Arc<crate::kube_services::KubeServices>>,
}

impl std::fmt::Debug for KubePods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubePods")
            .field("containers", &self.len())
            .field("grace", &self.grace)
            .field("synced", &self.is_synced())
            .finish()
    }
}

impl Default for KubePods {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE)
    }
}

impl PodLookup for KubePods {
    fn by_container(&self, container_id: &str) -> Option<PodInfo> {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        let slot = index.containers.get(container_id)?;
        match slot.gone {
            Some(g) if g.elapsed() > self.grace => None,
            _ => Some(slot.info.clone()),
        }
    }

    /// Pods reach the index through a watch: a new container's first behaviour can come
    /// before its pod does.
    fn learns_later(&self) -> bool {
        true
    }

    fn pod_addresses(&self) -> Vec<karmor_contract::pods::PodAddress> {
        let mut rows = self.book().snapshot(crate::pod_addresses::now_ns());
        if let Some(s) = &self.services {
            rows.extend(s.snapshot());
        }
        rows
    }
}

impl KubePods {
    /// An empty index; deleted pods stay resolvable for `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            addresses: std::sync::Mutex::new(Default::default()),
            grace,
            synced: AtomicBool::new(false),
            services: None,
        }
    }

    /// Adds the Services' rows (their cluster IPs, [`crate::kube_services`]) to the pods
    /// table this index gives the writer.
    pub fn with_services(mut self, services: Arc<crate::kube_services::KubeServices>) -> Self {
        self.services = Some(services);
        self
    }

    /// The grace period of deleted pods.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// True once the first list of this node's pods is in the index.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Number of container ids held (live, and gone within the grace period or not swept yet).
    pub fn len(&self) -> usize {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .containers
            .len()
    }

    /// True when no container is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or updates a pod, owned by `workload`. Containers it no longer lists (replaced by a
    /// restart) start their grace period.
    pub fn apply(&self, pod: &Pod, workload: Option<&Workload>) {
        let Some(key) = pod_key(&pod.metadata) else {
            return;
        };
        let entries = pod_entries(pod, workload);
        let now = crate::pod_addresses::now_ns();
        let rows = crate::pod_addresses::pod_addresses(pod, workload, now);
        self.book().apply(&key, rows, now);
        self.write().apply(key, entries, Instant::now());
    }

    fn book(&self) -> std::sync::MutexGuard<'_, crate::pod_addresses::AddressBook> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a pod deleted: its containers resolve for the grace period, then are forgotten.
    pub fn delete(&self, pod_meta: &ObjectMeta) {
        if let Some(key) = pod_key(pod_meta) {
            self.book().delete(&key, crate::pod_addresses::now_ns());
            self.write().delete(&key, Instant::now());
        }
    }

    /// Forgets containers whose grace period is over.
    pub fn sweep(&self) {
        self.write().sweep(Instant::now(), self.grace);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a (re)list: pods not in `listed` were deleted while the watch was away.
    fn retain_listed(&self, listed: &HashSet<String>) {
        self.book()
            .retain_listed(listed, crate::pod_addresses::now_ns());
        let now = Instant::now();
        let mut index = self.write();
        let gone: Vec<String> = index
            .pods
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            index.delete(&key, now);
        }
    }

    /// Starts [`KubePods::watch`] on the current tokio runtime.
    pub fn spawn(self: &Arc<Self>, client: Client, node: &str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().watch(client, node.to_string()))
    }

    /// Watches the pods of `node` and keeps the index current; runs until the task is dropped.
    /// Errors are logged and the watch resumes with back-off.
    pub async fn watch(self: Arc<Self>, client: Client, node: String) {
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &ApiResource::erase::<Pod>(&()));
        let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let mut owners = Owners::new(client);
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        let mut sweep =
            tokio::time::interval(SWEEP_EVERY.min(self.grace.max(Duration::from_millis(50))));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listed: Option<HashSet<String>> = None;
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => {
                        log::error!("the watch of pods on node {node} ended: pod attribution stops here");
                        return;
                    }
                    Some(Err(e)) => log::warn!("watching pods on node {node}: {e} (retrying)"),
                    Some(Ok(Event::Init)) => listed = Some(HashSet::new()),
                    Some(Ok(Event::InitApply(obj))) => {
                        if let Some(key) = self.on_apply(obj, &mut owners).await {
                            listed.get_or_insert_with(HashSet::new).insert(key);
                        }
                    }
                    Some(Ok(Event::InitDone)) => {
                        self.retain_listed(&listed.take().unwrap_or_default());
                        if !self.synced.swap(true, Ordering::AcqRel) {
                            log::info!("pod watch on node {node} synced: {} containers", self.len());
                        }
                    }
                    Some(Ok(Event::Apply(obj))) => {
                        self.on_apply(obj, &mut owners).await;
                    }
                    Some(Ok(Event::Delete(obj))) => self.delete(&obj.metadata),
                },
                _ = sweep.tick() => self.sweep(),
            }
        }
    }

    /// Indexes one pod from the watch; returns its key (also when it does not parse, so that a
    /// relist does not count it as deleted).
    async fn on_apply(&self, obj: DynamicObject, owners: &mut Owners) -> Option<String> {
        let key = pod_key(&obj.metadata);
        let what = format!(
            "{}/{}",
            obj.metadata.namespace.as_deref().unwrap_or("?"),
            obj.metadata.name.as_deref().unwrap_or("?")
        );
        match obj.try_parse::<Pod>() {
            Ok(pod) => {
                let workload = owners.workload(&pod.metadata).await;
                self.apply(&pod, workload.as_ref());
            }
            Err(e) => log::warn!("skipping pod {what}: it does not parse: {e}"),
        }
        key
    }
}

struct CachedOwner {
    workload: Workload,
    /// Read from the API (else guessed from names, and asked again later).
    read: bool,
    at: Instant,
}

/// Resolves a pod's workload, reading ReplicaSets and Jobs through the API once each.
struct Owners {
    client: Client,
    cache: HashMap<(String, String, String), CachedOwner>,
}

impl Owners {
    fn new(client: Client) -> Self {
        Self {
            client,
            cache: HashMap::new(),
        }
    }

    async fn workload(&mut self, pod_meta: &ObjectMeta) -> Option<Workload> {
        let owner = controller(pod_meta)?;
        if owner.kind != "ReplicaSet" && owner.kind != "Job" {
            return Some(Workload::new(&owner.kind, &owner.name));
        }
        let ns = pod_meta.namespace.clone().unwrap_or_default();
        let key = (ns, owner.kind.clone(), owner.name.clone());
        if let Some(c) = self.cache.get(&key) {
            if c.read || c.at.elapsed() < OWNER_RETRY {
                return Some(c.workload.clone());
            }
        }
        let (workload, read) = match self.parent(&key.0, &key.1, &key.2).await {
            Ok(w) => (w, true),
            Err(e) => {
                let w = guess_parent(&key.1, &key.2, pod_meta);
                log::debug!(
                    "reading {} {}/{} failed ({e}): taking {} {}",
                    key.1,
                    key.0,
                    key.2,
                    w.kind,
                    w.name
                );
                (w, false)
            }
        };
        if self.cache.len() >= OWNER_CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(
            key,
            CachedOwner {
                workload: workload.clone(),
                read,
                at: Instant::now(),
            },
        );
        Some(workload)
    }

    /// The controller of ReplicaSet or Job `ns/name`, or the object itself when it has none.
    async fn parent(&self, ns: &str, kind: &str, name: &str) -> Result<Workload, OwnerError> {
        let read = async {
            Ok::<_, kube::Error>(match kind {
                "ReplicaSet" => {
                    Api::<ReplicaSet>::namespaced(self.client.clone(), ns)
                        .get(name)
                        .await?
                        .metadata
                }
                _ => {
                    Api::<Job>::namespaced(self.client.clone(), ns)
                        .get(name)
                        .await?
                        .metadata
                }
            })
        };
        let meta = tokio::time::timeout(OWNER_TIMEOUT, read)
            .await
            .map_err(|_| OwnerError::Timeout(OWNER_TIMEOUT))??;
        Ok(controller(&meta)
            .map(|o| Workload::new(&o.kind, &o.name))
            .unwrap_or_else(|| Workload::new(kind, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    use std::collections::BTreeMap;

    const A: &str = "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000";
    const B: &str = "1111eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355111";

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn pod(ids: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: meta(&[("b", "2"), ("a", "1")]),
            spec: Some(PodSpec {
                containers: ids
                    .iter()
                    .map(|(name, _)| Container {
                        name: name.to_string(),
                        image: Some(format!("{name}:1")),
                        ..Container::default()
                    })
                    .collect(),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                container_statuses: Some(
                    ids.iter()
                        .map(|(name, id)| ContainerStatus {
                            name: name.to_string(),
                            container_id: (!id.is_empty()).then(|| id.to_string()),
                            image: format!("docker.io/library/{name}:1"),
                            ..ContainerStatus::default()
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn container_ids_lose_their_runtime_prefix() {
        for raw in [
            format!("containerd://{A}"),
            format!("cri-o://{A}"),
            format!("docker://{A}"),
            A.to_ascii_uppercase(),
        ] {
            assert_eq!(container_id(&raw).as_deref(), Some(A), "{raw}");
        }
        assert_eq!(container_id(""), None);
        assert_eq!(container_id("containerd://"), None);
    }

    #[test]
    fn entries_carry_the_pod_and_skip_unstarted_containers() {
        let p = pod(&[("app", &format!("containerd://{A}")), ("waiting", "")]);
        let w = Workload::new("Deployment", "web");
        let e = pod_entries(&p, Some(&w));
        assert_eq!(e.len(), 1);
        let (id, info) = &e[0];
        assert_eq!(id, A);
        assert_eq!(info.container, "app");
        assert_eq!(
            info.image.as_deref(),
            Some("app:1"),
            "the spec's image wins"
        );
        assert_eq!(info.labels, ["a=1", "b=2"]);
        assert_eq!(info.workload_kind.as_deref(), Some("Deployment"));
        assert_eq!(
            (
                info.namespace.as_str(),
                info.pod.as_str(),
                info.pod_uid.as_str()
            ),
            ("ns", "p", "uid-1")
        );
    }

    #[test]
    fn a_restarted_container_keeps_its_old_id_for_the_grace_period() {
        let pods = KubePods::new(Duration::from_millis(500));
        pods.apply(&pod(&[("app", &format!("containerd://{A}"))]), None);
        pods.apply(&pod(&[("app", &format!("containerd://{B}"))]), None);
        assert!(pods.by_container(A).is_some());
        assert!(pods.by_container(B).is_some());
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            pods.by_container(A).is_none(),
            "old id past the grace period"
        );
        assert!(pods.by_container(B).is_some(), "live id stays");
        pods.sweep();
        assert_eq!(pods.len(), 1);
    }

    #[test]
    fn parents_are_guessed_from_names() {
        let hashed = meta(&[("pod-template-hash", "7d4b9c8f5")]);
        let plain = meta(&[]);
        let cases = [
            ("ReplicaSet", "web-7d4b9c8f5", &hashed, "Deployment", "web"),
            (
                "ReplicaSet",
                "my-web-7d4b9c8f5",
                &plain,
                "Deployment",
                "my-web",
            ),
            ("ReplicaSet", "web-v1", &plain, "ReplicaSet", "web-v1"),
            ("ReplicaSet", "web", &plain, "ReplicaSet", "web"),
            ("Job", "backup-29123456", &plain, "CronJob", "backup"),
            ("Job", "migrate-2", &plain, "Job", "migrate-2"),
            ("Job", "migrate", &plain, "Job", "migrate"),
        ];
        for (kind, name, m, want_kind, want_name) in cases {
            assert_eq!(
                guess_parent(kind, name, m),
                Workload::new(want_kind, want_name),
                "{kind} {name}"
            );
        }
    }
}
