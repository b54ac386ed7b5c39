//! The store's `pods` view merges a node's snapshots as `karmor_contract::pods::merge_snapshots`
//! does, in whatever order the bundles are merged: each snapshot a bundle of its own (as a
//! collector's data directory, whose snapshot replaces the one before), the view's rows are the
//! contract's merge, and an address reused after the first pod was forgotten resolves at both
//! times.

use karmor_analyzer::network::{Peer, PeerIndex};
use karmor_analyzer::Store;
use karmor_contract::bundle::write_pods;
use karmor_contract::pods::{merge_snapshots, PodAddress};

const MIN: i64 = 60_000_000_000;
/// 2026-11-20T08:00:00Z in ns.
const T0: i64 = 1_795_161_600_000_000_000;

fn pod(name: &str, ip: &str, from: i64, to: Option<i64>, labels: &[&str]) -> PodAddress {
    PodAddress {
        cluster: Some("c".into()),
        node: "n1".into(),
        namespace: "shop".into(),
        pod: name.into(),
        pod_uid: Some(format!("uid-{name}")),
        workload_kind: Some("Deployment".into()),
        workload: Some(name.split('-').next().unwrap_or(name).into()),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ip: ip.into(),
        valid_from: T0 + from * MIN,
        valid_to: to.map(|t| T0 + t * MIN),
        ..PodAddress::default()
    }
}

/// Three snapshots of one node: web-1 open; then closed at 20 with db-1 relabelled and cache-1
/// closed and reopened (a relist that missed it); then web-1 forgotten and web-2 on its address.
fn snapshots() -> Vec<Vec<PodAddress>> {
    vec![
        vec![
            pod("web-1", "10.0.0.2", 10, None, &["app=web"]),
            pod("db-1", "10.0.0.3", 5, None, &["app=db"]),
            pod("cache-1", "10.0.0.4", 1, Some(12), &["app=cache"]),
        ],
        vec![
            pod("web-1", "10.0.0.2", 10, Some(20), &["app=web"]),
            pod("db-1", "10.0.0.3", 5, None, &["app=db", "tier=2"]),
            pod("cache-1", "10.0.0.4", 1, Some(12), &["app=cache"]),
            pod("cache-1", "10.0.0.4", 1, None, &["app=cache"]),
            pod("web-9", "10.0.0.9", 30, None, &["app=web"]),
        ],
        vec![
            pod("web-2", "10.0.0.2", 40, None, &["app=web"]),
            pod("db-1", "10.0.0.3", 5, Some(45), &["app=db", "tier=2"]),
        ],
    ]
}

type Span = (String, String, i64, Option<i64>, Vec<String>);

fn spans(rows: &[PodAddress]) -> Vec<Span> {
    let mut out: Vec<Span> = rows
        .iter()
        .map(|r| {
            (
                r.pod.clone(),
                r.ip.clone(),
                r.valid_from,
                r.valid_to,
                r.labels.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_view_merges_snapshots_as_the_contract_does_in_any_order() {
    let snaps = snapshots();
    let want = spans(&merge_snapshots(snaps.clone()));
    // What the merge must say, spelt out.
    assert!(want.contains(&(
        "web-1".into(),
        "10.0.0.2".into(),
        T0 + 10 * MIN,
        Some(T0 + 20 * MIN),
        vec!["app=web".into()]
    )));
    assert!(want.contains(&(
        "db-1".into(),
        "10.0.0.3".into(),
        T0 + 5 * MIN,
        Some(T0 + 45 * MIN),
        vec!["app=db".into(), "tier=2".into()]
    )));
    assert!(want.contains(&(
        "cache-1".into(),
        "10.0.0.4".into(),
        T0 + MIN,
        None,
        vec!["app=cache".into()]
    )));
    let dirs: Vec<tempfile::TempDir> = snaps
        .iter()
        .map(|rows| {
            let d = tempfile::tempdir().unwrap();
            write_pods(d.path(), rows.clone(), "test").unwrap();
            d
        })
        .collect();
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let store = Store::in_memory().unwrap();
        for i in order {
            let r = store.merge_bundle(dirs[i].path()).unwrap();
            assert!(r.problems.is_empty(), "{:?}", r.problems);
        }
        let index = PeerIndex::load(&store).unwrap();
        assert_eq!(spans(index.pods()), want, "order {order:?}");
        let who = |addr: &str, at: i64| match index.resolve(addr, None, T0 + at * MIN) {
            Peer::Pod { pod, .. } => pod,
            other => format!("{other:?}"),
        };
        assert_eq!(who("10.0.0.2", 15), "web-1", "order {order:?}");
        assert_eq!(who("10.0.0.2", 50), "web-2", "order {order:?}");
        assert!(who("10.0.0.2", 30).contains("External"), "order {order:?}");
    }
}
