//! The Markdown report of network drafts (`recommend --network --report FILE`): per workload,
//! each rule with the peers and ports behind it, its evidence and every generalisation, what
//! needed no rule, warnings, and the workloads left without a draft and why.

use std::fmt::Write;

use super::draft::{DraftPeer, DraftRule, NetworkDraft, NAMESPACE_NAME_LABEL};
use super::model::Direction;
use super::NetworkRecommendation;

fn when(ns: i64) -> String {
    karmor_contract::bundle::format_ts(ns)
}

/// The peer of a rule in words.
pub fn peer_text(p: &DraftPeer, own_namespace: &str) -> String {
    match p {
        DraftPeer::Pods { namespace, labels } => {
            let ns = namespace.as_deref().unwrap_or(own_namespace);
            let sel = if labels.is_empty() {
                "every pod".to_string()
            } else {
                format!(
                    "pods with {}",
                    labels
                        .iter()
                        .map(|(k, v)| format!("`{k}={v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            match namespace {
                Some(_) => format!("{sel} in namespace `{ns}` (`{NAMESPACE_NAME_LABEL}={ns}`)"),
                None => format!("{sel} in its own namespace"),
            }
        }
        DraftPeer::Address { addr, names, node } => match node {
            Some(n) => format!("`{addr}` (node {n}; {})", names.join(", ")),
            None if names.is_empty() => format!("`{addr}` (in no pods table, no name seen)"),
            None => format!("`{addr}` ({})", names.join(", ")),
        },
        DraftPeer::Endpoints {
            service,
            addrs,
            api_server,
        } => format!(
            "the endpoints of service `{service}` ({}{})",
            addrs
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if *api_server {
                "; the API servers, Cilium's `kube-apiserver` entity"
            } else {
                ""
            }
        ),
    }
}

fn ports_text(r: &DraftRule) -> String {
    r.ports
        .iter()
        .map(|(p, n)| match n {
            Some(n) => format!("{p}/{n}"),
            None => format!("{p}/any"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rules(out: &mut String, d: &NetworkDraft, dir: Direction) {
    let rules = d.rules(dir);
    let _ = writeln!(out, "\n**{}**", dir.as_str());
    if rules.is_empty() {
        let _ = writeln!(out, "\nnone observed: none allowed.");
        return;
    }
    let _ = writeln!(
        out,
        "\n| peer | ports | seen | events | first .. last |\n|---|---|---|---|---|"
    );
    for r in rules {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} .. {} |",
            peer_text(&r.peer, &d.workload.namespace),
            ports_text(r),
            r.seen.iter().cloned().collect::<Vec<_>>().join("; "),
            r.events,
            when(r.first_ns),
            when(r.last_ns)
        );
    }
    for r in rules {
        for y in &r.why {
            let _ = writeln!(
                out,
                "\n- why {}: {y}",
                peer_text(&r.peer, &d.workload.namespace)
            );
        }
    }
}

/// The report.
pub fn markdown(rec: &NetworkRecommendation) -> String {
    let mut out = String::from("# Network policy drafts\n");
    let _ = writeln!(
        out,
        "\n{} workload(s), {} connection group(s); pods table: {}.",
        rec.drafts.len(),
        rec.flows,
        if rec.pods_table {
            "yes"
        } else {
            "no (peers in the cluster appear as addresses)"
        }
    );
    for d in &rec.drafts {
        let _ = writeln!(out, "\n## {}\n", d.workload);
        if let Some(why) = &d.skipped {
            let _ = writeln!(out, "No policy: {why}.");
            continue;
        }
        let _ = writeln!(
            out,
            "Policy `{}` selects {} ({} events, {} .. {}).",
            d.policy_name(),
            if d.selector.is_empty() {
                "every pod of the namespace".to_string()
            } else {
                d.selector
                    .iter()
                    .map(|(k, v)| format!("`{k}={v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            d.events,
            when(d.first_ns),
            when(d.last_ns)
        );
        rules(&mut out, d, Direction::Ingress);
        rules(&mut out, d, Direction::Egress);
        for n in &d.not_needed {
            let _ = writeln!(out, "\n- no rule needed: {n}");
        }
        for w in &d.warnings {
            let _ = writeln!(out, "\n- **warning**: {w}");
        }
    }
    out
}
