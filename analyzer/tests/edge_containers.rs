//! Containers outside Kubernetes and rows nothing can select, through `recommend` and
//! `simulate` on a real DuckDB store: a named container's replicas give one `KubeArmorPolicy`
//! selecting `kubearmor.io/container.name` (no namespace) that validates and simulates clean
//! on its data; a real node's host behaviour gives a host policy named after it; host rows
//! without a node and container rows without a name give no policy at all, and are reported as
//! unattributed.

use karmor_analyzer::policy::{validate_policy, PolicyKind};
use karmor_analyzer::recommend::{recommend, HostSelect, RecommendOptions, Scope, WorkloadSelect};
use karmor_analyzer::simulate::{simulate, Decision, Posture, Postures, SimOptions};
use karmor_analyzer::Store;
use karmor_contract::{Event, Op, Source};

const T0: i64 = 1_795_161_600 * 1_000_000_000;

fn row(node: &str, container: Option<&str>, id: Option<&str>, process: &str, path: &str) -> Event {
    Event {
        ts_first: T0,
        ts_last: T0 + 1_000,
        count: 3,
        node: node.into(),
        container: container.map(String::from),
        container_id: id.map(String::from),
        image: container.map(|_| "nginx:1.25".into()),
        labels: container
            .map(|_| vec!["com.docker.compose.service=web".to_string()])
            .unwrap_or_default(),
        host: container.is_none() && id.is_none(),
        pid: Some(40),
        ppid: Some(1),
        process: Some(process.into()),
        parent_process: Some("/usr/bin/containerd-shim-runc-v2".into()),
        op: Op::File,
        source: Source::Ebpf,
        path: Some(path.into()),
        access: Some("read".into()),
        result: Some("Passed".into()),
        ..Event::default()
    }
}

fn exec(mut e: Event) -> Event {
    e.op = Op::Process;
    e.path = None;
    e.access = None;
    e
}

fn everything() -> Scope {
    Scope {
        workloads: Some(WorkloadSelect::default()),
        hosts: Some(HostSelect::default()),
        ..Scope::default()
    }
}

#[test]
fn named_containers_are_drafted_by_name_and_unattributed_rows_never_are() {
    let web1 = "a".repeat(64);
    let web2 = "b".repeat(64);
    let nameless = "c".repeat(64);
    let rows = vec![
        exec(row(
            "edge-1",
            Some("shop-web-1"),
            Some(&web1),
            "/usr/sbin/nginx",
            "",
        )),
        row(
            "edge-1",
            Some("shop-web-1"),
            Some(&web1),
            "/usr/sbin/nginx",
            "/etc/nginx/nginx.conf",
        ),
        exec(row(
            "edge-1",
            Some("shop-web-2"),
            Some(&web2),
            "/usr/sbin/nginx",
            "",
        )),
        row(
            "edge-1",
            Some("shop-web-2"),
            Some(&web2),
            "/usr/sbin/nginx",
            "/etc/nginx/nginx.conf",
        ),
        // A container whose runtime's state the collector could not read: id only.
        row(
            "edge-1",
            None,
            Some(&nameless),
            "/bin/busybox",
            "/etc/passwd",
        ),
        // Host behaviour of a real node, and host rows that name no node.
        row(
            "edge-1",
            None,
            None,
            "/usr/sbin/sshd",
            "/etc/ssh/sshd_config",
        ),
        row("", None, None, "/usr/bin/cron", "/etc/crontab"),
    ];
    let store = Store::in_memory().expect("store");
    store.append_live(&rows).expect("rows");

    let rec = recommend(&store, &RecommendOptions::new(everything())).expect("recommend");
    let ids: Vec<String> = rec
        .workloads
        .iter()
        .map(|w| w.draft.workload.to_string())
        .collect();
    assert_eq!(ids, vec!["container/shop-web-*", "node/edge-1"], "{ids:?}");

    // The container: one KubeArmorPolicy for both replicas, by name, without a namespace.
    let web = rec.workloads[0]
        .draft
        .policy
        .clone()
        .expect("container draft");
    assert_eq!(web.kind, PolicyKind::KubeArmorPolicy);
    assert_eq!(web.metadata.name, "karmor-container-shop-web");
    assert_eq!(web.metadata.namespace, None);
    let sel = web.spec.selector.clone().expect("selector");
    assert_eq!(
        sel.match_labels.into_iter().collect::<Vec<_>>(),
        vec![(
            "kubearmor.io/container.name".to_string(),
            "shop-web-[0-9]+$".to_string()
        )]
    );
    assert!(validate_policy(&web).errors.is_empty());

    // The host: named after the real node only, selected as KubeArmor knows a host without
    // Kubernetes.
    let host = rec.workloads[1].draft.policy.clone().expect("host draft");
    assert_eq!(host.kind, PolicyKind::KubeArmorHostPolicy);
    assert_eq!(host.metadata.name, "karmor-host-edge-1");
    let yaml = serde_yaml::to_string(&host).expect("yaml");
    assert!(yaml.contains("kubearmor.io/hostname: edge-1"), "{yaml}");
    assert!(
        !yaml.contains("cron") && !yaml.contains("busybox"),
        "{yaml}"
    );

    // Nothing else: the nameless container and the node-less host rows are unattributed.
    let mut un: Vec<(String, u64)> = rec
        .unattributed
        .iter()
        .map(|u| (u.name.clone(), u.events))
        .collect();
    un.sort();
    assert_eq!(
        un,
        vec![("(no node)".to_string(), 3), (nameless.clone(), 3)]
    );
    assert!(rec.unattributed.iter().all(|u| !u.reason.is_empty()));
    let md = karmor_analyzer::recommend::report::markdown(&rec);
    assert!(
        md.contains("Unattributed behaviour (no policy drafted)"),
        "{md}"
    );
    assert!(
        !md.contains("karmor-host--none") && !md.contains("hostname: (none)"),
        "{md}"
    );

    // The draft simulates clean on its own data, under a block posture, and selects nothing
    // else (the nameless container is not a `shop-web-N`).
    let sim = simulate(
        &store,
        std::slice::from_ref(&web),
        &SimOptions {
            include_host: true,
            posture: Postures::all(Posture::Block),
            ..SimOptions::default()
        },
    )
    .expect("simulate");
    let web_entries: Vec<_> = sim
        .entries
        .iter()
        .filter(|e| e.workload.starts_with("Container/shop-web-"))
        .collect();
    assert_eq!(web_entries.len(), 4, "{:?}", sim.entries);
    for e in &web_entries {
        assert_eq!(e.decision, Decision::Allowed, "{e:?}");
        assert!(e
            .policy
            .as_deref()
            .is_some_and(|p| p.ends_with("karmor-container-shop-web")));
    }
    for e in sim
        .entries
        .iter()
        .filter(|e| !e.workload.starts_with("Container/shop-web-"))
    {
        assert!(e.policy.is_none(), "{e:?}");
    }
}
