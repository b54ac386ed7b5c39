//! Which policies apply to a behaviour: KubeArmor's selectors.
//!
//! - `KubeArmorPolicy`: pods of the policy's namespace whose labels satisfy
//!   `selector.matchLabels` (all of them) and `selector.matchExpressions` (`label` key, `In`:
//!   one of the `key=value` values is a pod label; `NotIn`: none is). An empty selector selects
//!   every pod of the namespace.
//! - `KubeArmorClusterPolicy`: pods of any namespace satisfying `matchExpressions` with the
//!   `namespace` key (`In`/`NotIn` namespace names) and the `label` key (as above).
//! - `KubeArmorPolicy` and a container that no pod holds (Docker, containerd, Podman outside
//!   Kubernetes), as KubeArmor matches them: the container's identities are its labels plus
//!   `kubearmor.io/container.name=NAME` (unless its labels have that key), and the policy's
//!   namespace plays no part. The selector's `matchLabels` must not be empty; a
//!   `kubearmor.io/container.name` value is a POSIX regular expression matched, unanchored,
//!   against `kubearmor.io/container.name=NAME` (so `web` also selects `web-2`; `web-[0-9]+$`
//!   selects `web-1`, `web-2`); beside other labels it makes the policy invalid (KubeArmor
//!   refuses it), and selects nothing. Other labels match exactly.
//! - `KubeArmorHostPolicy`: host behaviour (`host = true`) of nodes whose labels include every
//!   `nodeSelector.matchLabels` pair. A Kubernetes node's labels are
//!   `kubernetes.io/hostname=<node>` plus what the caller supplies; a host without Kubernetes
//!   has `kubearmor.io/hostname=<node>` only (KubeArmor reads `kubernetes.io/` labels only in
//!   Kubernetes). A hostname value may list names (`a,b`) or be `*`, as in KubeArmor.

use std::collections::BTreeMap;

use crate::policy::{ExpressionKey, ExpressionOperator, MatchExpression, Policy, PolicyKind};

/// Where a behaviour happened, as far as selectors are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject {
    /// Namespace of the pod (`None` on the host).
    pub namespace: Option<String>,
    /// Pod labels as `key=value` strings.
    pub labels: Vec<String>,
    /// Host behaviour.
    pub host: bool,
    /// Node name.
    pub node: String,
    /// The name of a container that no pod holds (`None` for pods and the host).
    pub container: Option<String>,
    /// Whether the node runs Kubernetes (pods were seen on it).
    pub kubernetes: bool,
}

/// The label KubeArmor gives every container outside Kubernetes.
pub const CONTAINER_NAME_LABEL: &str = "kubearmor.io/container.name";

/// The hostname label every Kubernetes node carries.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The hostname label KubeArmor gives a host without Kubernetes.
pub const KUBEARMOR_HOSTNAME_LABEL: &str = "kubearmor.io/hostname";

/// Whether `policy` applies to `subject`. `default_namespace` is the namespace of
/// `KubeArmorPolicy` objects without `metadata.namespace`; `node_labels` adds labels to nodes.
pub fn applies(
    policy: &Policy,
    subject: &Subject,
    default_namespace: &str,
    node_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    match policy.kind {
        PolicyKind::KubeArmorPolicy if !subject.host && subject.namespace.is_none() => {
            match (&subject.container, &policy.spec.selector) {
                (Some(name), Some(sel)) => container_selected(&sel.match_labels, name, subject),
                _ => false,
            }
        }
        PolicyKind::KubeArmorPolicy => {
            let ns = policy
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(default_namespace);
            !subject.host
                && subject.namespace.as_deref() == Some(ns)
                && policy.spec.selector.as_ref().is_none_or(|s| {
                    labels_match(&s.match_labels, &subject.labels)
                        && s.match_expressions
                            .iter()
                            .all(|e| expression_holds(e, subject))
                })
        }
        PolicyKind::KubeArmorClusterPolicy => {
            !subject.host
                && subject.namespace.is_some()
                && policy.spec.selector.as_ref().is_none_or(|s| {
                    labels_match(&s.match_labels, &subject.labels)
                        && s.match_expressions
                            .iter()
                            .all(|e| expression_holds(e, subject))
                })
        }
        PolicyKind::KubeArmorHostPolicy => {
            if !subject.host {
                return false;
            }
            let Some(sel) = &policy.spec.node_selector else {
                return true;
            };
            let extra = node_labels.get(&subject.node);
            let own = if subject.kubernetes {
                HOSTNAME_LABEL
            } else {
                KUBEARMOR_HOSTNAME_LABEL
            };
            sel.match_labels.iter().all(|(k, v)| {
                (k == own && v.split(',').any(|n| n == subject.node || n == "*"))
                    || extra.and_then(|m| m.get(k)).is_some_and(|x| x == v)
            })
        }
    }
}

/// KubeArmor's `MatchIdentities` for a container no pod holds.
fn container_selected(want: &BTreeMap<String, String>, name: &str, subject: &Subject) -> bool {
    if want.is_empty() || (want.contains_key(CONTAINER_NAME_LABEL) && want.len() > 1) {
        return false;
    }
    want.iter().all(|(k, v)| {
        if k != CONTAINER_NAME_LABEL {
            return has_label(&subject.labels, k, v);
        }
        let own = subject
            .labels
            .iter()
            .find(|l| l.starts_with(CONTAINER_NAME_LABEL))
            .cloned()
            .unwrap_or_else(|| format!("{CONTAINER_NAME_LABEL}={name}"));
        regex::Regex::new(&format!("{k}={v}")).is_ok_and(|re| re.is_match(&own))
    })
}

fn labels_match(want: &BTreeMap<String, String>, labels: &[String]) -> bool {
    want.iter().all(|(k, v)| has_label(labels, k, v))
}

fn has_label(labels: &[String], key: &str, value: &str) -> bool {
    labels.iter().any(|l| {
        l.split_once('=')
            .is_some_and(|(k, v)| k == key && v == value)
    })
}

fn expression_holds(e: &MatchExpression, subject: &Subject) -> bool {
    let found = match e.key {
        Some(ExpressionKey::Namespace) => subject
            .namespace
            .as_deref()
            .is_some_and(|ns| e.values.iter().any(|v| v == ns)),
        Some(ExpressionKey::Label) => e.values.iter().any(|v| match v.split_once('=') {
            Some((k, val)) => has_label(&subject.labels, k, val),
            None => subject
                .labels
                .iter()
                .any(|l| l.split_once('=').is_some_and(|(k, _)| k == v)),
        }),
        // The CRD requires a key; a policy without one selects nothing.
        None => return false,
    };
    match e.operator {
        Some(ExpressionOperator::In) => found,
        Some(ExpressionOperator::NotIn) => !found,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        serde_yaml::from_str(yaml).expect("policy")
    }

    fn pod(ns: &str, labels: &[&str]) -> Subject {
        Subject {
            namespace: Some(ns.into()),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            host: false,
            node: "n1".into(),
            container: None,
            kubernetes: true,
        }
    }

    fn container(name: &str, labels: &[&str]) -> Subject {
        Subject {
            namespace: None,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            host: false,
            node: "edge-1".into(),
            container: Some(name.into()),
            kubernetes: false,
        }
    }

    #[test]
    fn containers_outside_kubernetes_are_selected_by_name_as_kubearmor_does() {
        let none = BTreeMap::new();
        let by = |sel: &str| {
            policy(&format!(
                "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {{name: c, namespace: whatever}}\n\
                 spec:\n  selector:\n    matchLabels:\n{sel}\n  process:\n    matchPaths:\n    - path: /bin/sh\n  action: Allow\n"
            ))
        };
        let name = |v: &str| by(&format!("      kubearmor.io/container.name: \"{v}\""));
        let web1 = container("shop-web-1", &["tier=front"]);
        assert!(applies(&name("shop-web-1"), &web1, "default", &none));
        // Unanchored, as KubeArmor's regular expression match is.
        assert!(applies(&name("shop-web"), &web1, "default", &none));
        assert!(!applies(&name("web-1x"), &web1, "default", &none));
        assert!(applies(&name("shop-web-[0-9]+$"), &web1, "default", &none));
        assert!(!applies(
            &name("shop-web-[0-9]+$"),
            &container("shop-web-1-old", &[]),
            "default",
            &none
        ));
        assert!(
            !applies(&name("["), &web1, "default", &none),
            "invalid expression"
        );
        // The name beside another label: KubeArmor refuses the policy.
        let both = by("      kubearmor.io/container.name: shop-web-1\n      tier: front");
        assert!(!applies(&both, &web1, "default", &none));
        // Labels alone select by the container's labels.
        assert!(applies(&by("      tier: front"), &web1, "default", &none));
        assert!(!applies(&by("      tier: back"), &web1, "default", &none));
        // A host without Kubernetes is selected by kubearmor.io/hostname, not kubernetes.io/.
        let host = |key: &str, v: &str| {
            policy(&format!(
                "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata: {{name: h}}\n\
                 spec:\n  nodeSelector:\n    matchLabels:\n      {key}: \"{v}\"\n"
            ))
        };
        let edge = Subject {
            host: true,
            container: None,
            ..container("-", &[])
        };
        assert!(applies(
            &host("kubearmor.io/hostname", "edge-1"),
            &edge,
            "default",
            &none
        ));
        assert!(applies(
            &host("kubearmor.io/hostname", "a,edge-1"),
            &edge,
            "default",
            &none
        ));
        assert!(applies(
            &host("kubearmor.io/hostname", "*"),
            &edge,
            "default",
            &none
        ));
        assert!(!applies(
            &host("kubernetes.io/hostname", "edge-1"),
            &edge,
            "default",
            &none
        ));
        let kube = Subject {
            kubernetes: true,
            ..edge.clone()
        };
        assert!(applies(
            &host("kubernetes.io/hostname", "edge-1"),
            &kube,
            "default",
            &none
        ));
        assert!(!applies(
            &host("kubearmor.io/hostname", "edge-1"),
            &kube,
            "default",
            &none
        ));
        // Never a pod, nor the host.
        assert!(!applies(
            &name("shop-web-1"),
            &pod("whatever", &["tier=front"]),
            "whatever",
            &none
        ));
    }

    #[test]
    fn cluster_policy_namespace_expressions() {
        let p = policy(
            "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorClusterPolicy\nmetadata: {name: c}\n\
             spec:\n  selector:\n    matchExpressions:\n    - {key: namespace, operator: NotIn, values: [kube-system]}\n",
        );
        let none = BTreeMap::new();
        assert!(applies(&p, &pod("shop", &[]), "default", &none));
        assert!(!applies(&p, &pod("kube-system", &[]), "default", &none));
    }
}
