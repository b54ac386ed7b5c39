//! Network policies from observed connections (design §3 pods table, §7): who each workload
//! talked to, drafted as Kubernetes `NetworkPolicy` or `CiliumNetworkPolicy`, and replayed
//! through such policies before anyone applies them.
//!
//! - [`peers`]: the other end of a connection, by address and time (the pods table), node,
//!   Service name or outside world;
//! - [`flows`]: the recorded connections of pods, grouped, peers resolved;
//! - [`draft`]: one policy per workload, every rule explained; YAML for both APIs;
//! - [`model`]: NetworkPolicy and CiliumNetworkPolicy as the simulator reads them;
//! - [`simulate`]: Kubernetes' semantics, per recorded connection, with the deciding policy;
//! - [`validate`]: offline checks of both kinds, as the API server does them;
//! - [`report`]: the Markdown report of network drafts.

pub mod draft;
pub mod flows;
pub mod model;
pub mod peers;
pub mod report;
pub mod simulate;
pub mod validate;

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::recommend::Scope;
use crate::store::Store;

pub use draft::{NetworkDraft, NetworkFormat};
pub use flows::Flow;
pub use model::NetPolicy;
pub use peers::{Peer, PeerIndex};
pub use simulate::{NamespaceLabels, NetDecision, NetVerdict};

/// The answer to `recommend --network`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkRecommendation {
    /// One draft per workload with recorded connections, in (namespace, kind, name) order.
    pub drafts: Vec<NetworkDraft>,
    /// Whether the data held a pods table; without one every peer address is outside.
    pub pods_table: bool,
    /// Connection groups behind the drafts.
    pub flows: usize,
}

/// Drafts network policies for the workloads in `scope`.
pub fn recommend_network(store: &Store, scope: &Scope) -> Result<NetworkRecommendation> {
    let index = PeerIndex::load(store)?;
    let flows = flows::flows(store, scope, &index)?;
    let mut drafts = draft::draft_all(&flows, &index);
    if !index.has_pods_table() {
        for d in &mut drafts {
            d.warnings.push(
                "the data holds no pods table: peers were resolved by node addresses and names only, pods in the cluster appear as addresses"
                    .into(),
            );
        }
    }
    Ok(NetworkRecommendation {
        drafts,
        pods_table: index.has_pods_table(),
        flows: flows.len(),
    })
}

/// Replays the connections recorded in `scope` through `policies`.
pub fn simulate_network(
    store: &Store,
    scope: &Scope,
    policies: &[NetPolicy],
) -> Result<Vec<NetVerdict>> {
    simulate_network_with(store, scope, policies, &simulate::NamespaceLabels::new())
}

/// [`simulate_network`] with namespaces' labels for namespace selectors.
pub fn simulate_network_with(
    store: &Store,
    scope: &Scope,
    policies: &[NetPolicy],
    namespaces: &simulate::NamespaceLabels,
) -> Result<Vec<NetVerdict>> {
    let index = PeerIndex::load(store)?;
    let flows = flows::flows(store, scope, &index)?;
    Ok(simulate::simulate_with(&flows, policies, namespaces))
}

/// Network policies of YAML text (one or more documents); other kinds are skipped. Errors
/// name the file, the document and the field.
pub fn parse_policies(text: &str, file: &Path) -> std::result::Result<Vec<NetPolicy>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format!("{}: document {}: {e}", file.display(), i + 1))?;
        let docs: Vec<serde_yaml::Value> = match value.get("items") {
            Some(serde_yaml::Value::Sequence(items))
                if value
                    .get("kind")
                    .and_then(serde_yaml::Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                items.clone()
            }
            _ => vec![value],
        };
        for d in docs {
            if let Some(p) = model::parse_policy(&d)
                .map_err(|e| format!("{}: document {}: {e}", file.display(), i + 1))?
            {
                out.push(p);
            }
        }
    }
    Ok(out)
}
