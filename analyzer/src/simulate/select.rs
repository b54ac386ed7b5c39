//! Which policies apply to a behaviour: KubeArmor's selectors.
//!
//! - `KubeArmorPolicy`: pods of the policy's namespace whose labels satisfy
//!   `selector.matchLabels` (all of them) and `selector.matchExpressions` (`label` key, `In`:
//!   one of the `key=value` values is a pod label; `NotIn`: none is). An empty selector selects
//!   every pod of the namespace.
//! - `KubeArmorClusterPolicy`: pods of any namespace satisfying `matchExpressions` with the
//!   `namespace` key (`In`/`NotIn` namespace names) and the `label` key (as above).
//! - `KubeArmorHostPolicy`: host behaviour (`host = true`) of nodes whose labels include every
//!   `nodeSelector.matchLabels` pair. A node's labels are `kubernetes.io/hostname=<node>` plus
//!   what the caller supplies.

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
}

/// The hostname label every node carries.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Whether `policy` applies to `subject`. `default_namespace` is the namespace of
/// `KubeArmorPolicy` objects without `metadata.namespace`; `node_labels` adds labels to nodes.
pub fn applies(
    policy: &Policy,
    subject: &Subject,
    default_namespace: &str,
    node_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    match policy.kind {
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
            sel.match_labels.iter().all(|(k, v)| {
                (k == HOSTNAME_LABEL && *v == subject.node)
                    || extra.and_then(|m| m.get(k)).is_some_and(|x| x == v)
            })
        }
    }
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
        }
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
