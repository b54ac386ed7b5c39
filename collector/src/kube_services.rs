//! The cluster's Services through the Kubernetes API (design §3): an event-driven watch of every
//! Service (`list`/`watch` on services, cluster-wide, as kube-proxy does on every node) that
//! keeps, per Service with a cluster IP, each address with the span the Service held it, its
//! ports and its selector, as rows of kind `Service` of this node's pods table
//! ([`karmor_contract::pods::KIND_SERVICE`]). Analysis then turns a connection to a cluster IP
//! (DNS to 10.96.0.10) into that Service and, through its selector, the pods behind it.
//!
//! - A row's `pod` is the Service's name, `pod_uid` its uid, `labels` its selector
//!   (`key=value`), `ports` its ports (`PROTO/PORT->TARGET`, the target a number or a port
//!   name), `workload_kind`/`workload` `Service` and its name; `valid_from` is its
//!   `creationTimestamp` (so every node's collector tells the same span), else when first seen.
//! - Headless Services (`clusterIP: None`) and `ExternalName` Services have no cluster IP: no
//!   row.
//! - A Service deleted, or missing from a relist, closes its spans; a changed selector or port
//!   list keeps the span and takes the new values (as a pod's labels do).
//! - One malformed object does not stop the watch: Services are parsed one by one.
//!
//! EndpointSlices are watched too (`list`/`watch` on `discovery.k8s.io` endpointslices,
//! cluster-wide), for the endpoints no pod holds: a Service without a selector (the
//! `kubernetes` Service, whose endpoints are the API servers; Services with hand-made
//! endpoints) has no pods to select. Each address of such an endpoint (no `targetRef` of kind
//! `Pod`, not `ready: false`) is a row of kind `Endpoint`
//! ([`karmor_contract::pods::KIND_ENDPOINT`], pods schema 1.2): `pod`/`workload` the Service's
//! name (the slice's `kubernetes.io/service-name` label), `pod_uid` the slice's uid, `ports`
//! the slice's ports (`PROTO/PORT` or `PROTO/PORT/NAME`), `valid_from` the slice's
//! `creationTimestamp`. Pods' endpoints are not written: the pods table has them already.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use karmor_contract::pods::{PodAddress, KIND_ENDPOINT, KIND_SERVICE};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use crate::pod_addresses::{now_ns, AddressBook};

/// The `ports` entries of a Service: `PROTO/PORT->TARGET` (the target port, a number or a
/// container port's name; the port itself when unset).
pub fn service_ports(svc: &Service) -> Vec<String> {
    let mut out: Vec<String> = svc
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase();
            let target = match &p.target_port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(name)) if !name.is_empty() => name.clone(),
                _ => p.port.to_string(),
            };
            format!("{proto}/{}->{target}", p.port)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the pods table says of a Service, one row per cluster IP (none for headless and
/// `ExternalName` Services). `node` is the writer's node.
pub fn service_addresses(svc: &Service, node: &str, now: i64) -> Vec<PodAddress> {
    let meta = &svc.metadata;
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
    if ips.is_empty() {
        ips.extend(spec.cluster_ip.clone());
    }
    ips.retain(|ip| !ip.is_empty() && !ip.eq_ignore_ascii_case("none"));
    ips.sort();
    ips.dedup();
    let from = meta
        .creation_timestamp
        .as_ref()
        .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
        .unwrap_or(now);
    let selector: Vec<String> = spec
        .selector
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect(); // a BTreeMap: sorted by key
    let name = meta.name.clone().unwrap_or_default();
    let ports = service_ports(svc);
    ips.into_iter()
        .map(|ip| PodAddress {
            cluster: None,
            node: node.to_string(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            pod: name.clone(),
            pod_uid: meta.uid.clone(),
            workload_kind: Some(KIND_SERVICE.to_string()),
            workload: Some(name.clone()),
            labels: selector.clone(),
            host_network: false,
            ip,
            valid_from: from,
            valid_to: None,
            kind: Some(KIND_SERVICE.to_string()),
            ports: ports.clone(),
        })
        .collect()
}

/// The label of an EndpointSlice that names its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What the pods table says of an EndpointSlice: one row of kind [`KIND_ENDPOINT`] per
/// address of an endpoint that is not a pod and not unready (none for a slice without a
/// Service). `node` is the writer's node.
pub fn endpoint_addresses(slice: &EndpointSlice, node: &str, now: i64) -> Vec<PodAddress> {
    let meta = &slice.metadata;
    let Some(service) = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let from = meta
        .creation_timestamp
        .as_ref()
        .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
        .unwrap_or(now);
    let mut ports: Vec<String> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let port = p.port?;
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase();
            Some(match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{proto}/{port}/{name}"),
                None => format!("{proto}/{port}"),
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    let mut ips: Vec<String> = slice
        .endpoints
        .iter()
        .filter(|e| e.target_ref.as_ref().and_then(|r| r.kind.as_deref()) != Some("Pod"))
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| e.addresses.iter().cloned())
        .filter(|ip| !ip.is_empty())
        .collect();
    ips.sort();
    ips.dedup();
    ips.into_iter()
        .map(|ip| PodAddress {
            cluster: None,
            node: node.to_string(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            pod: service.clone(),
            pod_uid: meta.uid.clone(),
            workload_kind: Some(KIND_SERVICE.to_string()),
            workload: Some(service.clone()),
            labels: Vec::new(),
            host_network: false,
            ip,
            valid_from: from,
            valid_to: None,
            kind: Some(KIND_ENDPOINT.to_string()),
            ports: ports.clone(),
        })
        .collect()
}

/// The key of an EndpointSlice in the address book.
fn slice_key(meta: &ObjectMeta) -> Option<String> {
    service_key(meta).map(|k| format!("endpointslice/{k}"))
}

/// The key of a Service in the address book: its uid, else `namespace/name`.
fn service_key(meta: &ObjectMeta) -> Option<String> {
    match (&meta.uid, &meta.namespace, &meta.name) {
        (Some(uid), _, _) if !uid.is_empty() => Some(format!("service/{uid}")),
        (_, Some(ns), Some(name)) => Some(format!("service/{ns}/{name}")),
        _ => None,
    }
}

/// One kind the book is kept from: how its objects are named in logs, keyed in the book,
/// written into it, and which flag says its first list is in.
struct Watched<K> {
    plural: &'static str,
    /// The prefix of its keys: a relist closes only this kind's spans.
    prefix: &'static str,
    key: fn(&ObjectMeta) -> Option<String>,
    apply: fn(&KubeServices, &K, &str),
    synced: fn(&KubeServices) -> &AtomicBool,
    /// What the book no longer records if the watch ends.
    lost: &'static str,
}

/// The cluster's Services and the spans of their cluster IPs, kept current by
/// [`KubeServices::watch`].
#[derive(Debug, Default)]
pub struct KubeServices {
    book: Mutex<AddressBook>,
    synced: AtomicBool,
    slices_synced: AtomicBool,
}

impl KubeServices {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, AddressBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once the first list of Services is in the book.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// True once the first list of EndpointSlices is in the book.
    pub fn slices_synced(&self) -> bool {
        self.slices_synced.load(Ordering::Acquire)
    }

    /// Adds or updates an EndpointSlice; `node` is the writer's node.
    pub fn apply_slice(&self, slice: &EndpointSlice, node: &str) {
        if let Some(key) = slice_key(&slice.metadata) {
            let now = now_ns();
            self.book()
                .apply(&key, endpoint_addresses(slice, node, now), now);
        }
    }

    /// Adds or updates a Service; `node` is the writer's node.
    pub fn apply(&self, svc: &Service, node: &str) {
        if let Some(key) = service_key(&svc.metadata) {
            let now = now_ns();
            self.book()
                .apply(&key, service_addresses(svc, node, now), now);
        }
    }

    /// A Service is gone: its spans close now.
    pub fn delete(&self, meta: &ObjectMeta) {
        if let Some(key) = service_key(meta) {
            self.book().delete(&key, now_ns());
        }
    }

    /// Every span, open and recently closed (as [`AddressBook::snapshot`]).
    pub fn snapshot(&self) -> Vec<PodAddress> {
        self.book().snapshot(now_ns())
    }

    /// Starts [`KubeServices::watch`] and [`KubeServices::watch_slices`] on the current tokio
    /// runtime; aborting the handle stops both.
    pub fn spawn(
        self: &std::sync::Arc<Self>,
        client: Client,
        node: &str,
    ) -> tokio::task::JoinHandle<()> {
        let services = self.clone().watch(client.clone(), node.to_string());
        let slices = self.clone().watch_slices(client, node.to_string());
        tokio::spawn(async move {
            futures::join!(services, slices);
        })
    }

    /// Watches every EndpointSlice and keeps the book's endpoint rows current; runs until the
    /// task is dropped. Errors are logged and the watch resumes with back-off.
    pub async fn watch_slices(self: std::sync::Arc<Self>, client: Client, node: String) {
        const SLICES: Watched<EndpointSlice> = Watched {
            plural: "endpointslices",
            prefix: "endpointslice/",
            key: slice_key,
            apply: KubeServices::apply_slice,
            synced: |s| &s.slices_synced,
            lost: "endpoints",
        };
        self.watch_kind(client, node, SLICES).await
    }

    /// Watches every Service and keeps the book current; runs until the task is dropped.
    /// Errors are logged and the watch resumes with back-off.
    pub async fn watch(self: std::sync::Arc<Self>, client: Client, node: String) {
        const SERVICES: Watched<Service> = Watched {
            plural: "services",
            prefix: "service/",
            key: service_key,
            apply: KubeServices::apply,
            synced: |s| &s.synced,
            lost: "cluster IPs",
        };
        self.watch_kind(client, node, SERVICES).await
    }

    /// The watch of one kind: its first list (and every relist) closes the spans of the
    /// objects of that kind it no longer holds; objects are parsed one by one, so one that
    /// does not parse is logged and skipped (its key still counts as listed).
    async fn watch_kind<K>(
        self: std::sync::Arc<Self>,
        client: Client,
        node: String,
        kind: Watched<K>,
    ) where
        K: kube::Resource<DynamicType = ()> + k8s_openapi::serde::de::DeserializeOwned,
    {
        let api: Api<DynamicObject> = Api::all_with(client, &ApiResource::erase::<K>(&()));
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        let mut listed: Option<HashSet<String>> = None;
        let on_apply = |obj: DynamicObject| -> Option<String> {
            let key = (kind.key)(&obj.metadata);
            let what = format!(
                "{}/{}",
                obj.metadata.namespace.as_deref().unwrap_or("?"),
                obj.metadata.name.as_deref().unwrap_or("?")
            );
            match obj.try_parse::<K>() {
                Ok(parsed) => (kind.apply)(&self, &parsed, &node),
                Err(e) => log::warn!("skipping {} {what}: it does not parse: {e}", kind.plural),
            }
            key
        };
        while let Some(event) = events.next().await {
            match event {
                Err(e) => log::warn!("watching {}: {e} (retrying)", kind.plural),
                Ok(Event::Init) => listed = Some(HashSet::new()),
                Ok(Event::InitApply(obj)) => {
                    if let Some(key) = on_apply(obj) {
                        listed.get_or_insert_with(HashSet::new).insert(key);
                    }
                }
                Ok(Event::InitDone) => {
                    let listed = listed.take().unwrap_or_default();
                    let mut book = self.book();
                    let gone: Vec<String> = book
                        .open_keys()
                        .filter(|k| k.starts_with(kind.prefix) && !listed.contains(*k))
                        .map(str::to_string)
                        .collect();
                    let now = now_ns();
                    for k in gone {
                        book.delete(&k, now);
                    }
                    drop(book);
                    if !(kind.synced)(&self).swap(true, Ordering::AcqRel) {
                        log::info!("{} watch synced", kind.plural);
                    }
                }
                Ok(Event::Apply(obj)) => {
                    on_apply(obj);
                }
                Ok(Event::Delete(obj)) => {
                    if let Some(key) = (kind.key)(&obj.metadata) {
                        self.book().delete(&key, now_ns());
                    }
                }
            }
        }
        log::error!(
            "the watch of {} ended: {} are no longer recorded",
            kind.plural,
            kind.lost
        );
    }
}
