//! `validate` on CiliumNetworkPolicy v2 against the structure of Cilium's CRD (fields, types,
//! enums, oneOf/anyOf): policies written after the kinds of example Cilium's documentation
//! gives (L3 by labels, entities, CIDR sets, L4 ports, L7 HTTP and DNS, toFQDNs, deny rules,
//! ICMP, toServices, mutual authentication, default deny, several rules in `specs`) are valid;
//! damaged ones are refused with the path of each fault.

use karmor_analyzer::network::validate::validate_network_value;
use karmor_analyzer::policy::Outcome;

fn check(yaml: &str) -> (Outcome, Vec<String>) {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML parses");
    let r = validate_network_value(&v);
    (r.outcome, r.errors.iter().map(|f| f.to_string()).collect())
}

fn cnp(spec: &str) -> String {
    format!("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n  namespace: shop\n{spec}")
}

const VALID: &[(&str, &str)] = &[
    (
        "L3 by labels",
        "spec:\n  endpointSelector:\n    matchLabels: {role: backend}\n  ingress:\n  - fromEndpoints:\n    - matchLabels: {role: frontend}\n",
    ),
    (
        "entities and an empty rule",
        "spec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [world, cluster, host, remote-node, kube-apiserver, health, init, ingress, unmanaged, none, all]\n  ingress:\n  - {}\n",
    ),
    (
        "CIDR and CIDR sets with except and a CIDR group",
        "spec:\n  endpointSelector:\n    matchLabels: {app: proxy}\n  egress:\n  - toCIDR: [20.1.1.1/32]\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n      except: [10.96.0.0/12]\n    - cidrGroupRef: partners\n    - cidrGroupSelector:\n        matchLabels: {tier: vendor}\n",
    ),
    (
        "L4 ports with ranges and every protocol",
        "spec:\n  endpointSelector:\n    matchLabels: {app: web}\n  ingress:\n  - fromEndpoints:\n    - matchExpressions:\n      - {key: k8s:io.kubernetes.pod.namespace, operator: In, values: [shop]}\n    toPorts:\n    - ports:\n      - {port: \"80\", protocol: TCP}\n      - {port: \"5000\", endPort: 5100, protocol: UDP}\n      - {port: http-alt, protocol: SCTP}\n      - {port: \"0\", protocol: ANY}\n      - {port: \"112\", protocol: VRRP}\n      - {port: \"0\", protocol: IGMP}\n",
    ),
    (
        "L7 HTTP with headers and TLS",
        "spec:\n  endpointSelector:\n    matchLabels: {app: api}\n  ingress:\n  - toPorts:\n    - ports:\n      - {port: \"443\", protocol: TCP}\n      terminatingTLS:\n        secret: {name: api-tls, namespace: shop}\n      originatingTLS:\n        secret: {name: ca}\n        trustedCA: ca.crt\n      serverNames: [api.example.com, \"*.example.com\"]\n      rules:\n        http:\n        - method: GET\n          path: /public/.*\n          host: api.example.com\n          headers: [X-Trace]\n          headerMatches:\n          - {name: X-Token, mismatch: LOG, secret: {name: tok}}\n",
    ),
    (
        "DNS rules and toFQDNs",
        "spec:\n  endpointSelector:\n    matchLabels: {app: crawler}\n  egress:\n  - toEndpoints:\n    - matchLabels:\n        k8s:io.kubernetes.pod.namespace: kube-system\n        k8s:k8s-app: kube-dns\n    toPorts:\n    - ports:\n      - {port: \"53\", protocol: ANY}\n      rules:\n        dns:\n        - matchPattern: \"*\"\n  - toFQDNs:\n    - matchName: api.github.com\n    - matchPattern: \"*.cilium.io\"\n    toPorts:\n    - ports:\n      - {port: \"443\", protocol: TCP}\n",
    ),
    (
        "deny rules, ICMP, nodes and groups",
        "spec:\n  endpointSelector: {}\n  ingressDeny:\n  - fromEntities: [world]\n    toPorts:\n    - ports:\n      - {port: \"22\", protocol: TCP}\n  - icmps:\n    - fields:\n      - {type: 8, family: IPv4}\n      - {type: EchoRequest, family: IPv6}\n  egressDeny:\n  - toNodes:\n    - matchLabels: {node-role.kubernetes.io/control-plane: \"\"}\n  - toGroups:\n    - aws:\n        securityGroupsIds: [sg-1]\n        labels: {team: a}\n        region: eu-west-1\n",
    ),
    (
        "toServices, authentication, default deny, labels, log, description",
        "spec:\n  description: calls the billing service\n  endpointSelector:\n    matchLabels: {app: shop}\n  enableDefaultDeny: {ingress: false, egress: true}\n  labels:\n  - {key: owner, value: team-a, source: k8s}\n  log: {value: shop-egress}\n  egress:\n  - toServices:\n    - k8sService: {serviceName: billing, namespace: pay}\n    - k8sServiceSelector:\n        selector:\n          matchLabels: {tier: pay}\n        namespace: pay\n    authentication: {mode: required}\n",
    ),
    (
        "several rules in specs",
        "specs:\n- endpointSelector:\n    matchLabels: {app: a}\n  egress:\n  - toEntities: [cluster]\n- nodeSelector:\n    matchLabels: {kubernetes.io/os: linux}\n  ingress:\n  - fromEntities: [remote-node]\n",
    ),
];

#[test]
fn policies_like_ciliums_documented_examples_are_valid() {
    for (what, spec) in VALID {
        let (outcome, errors) = check(&cnp(spec));
        assert_eq!(outcome, Outcome::Valid, "{what}: {errors:?}");
    }
}

#[test]
fn what_simulate_does_not_model_is_a_warning_not_an_error() {
    let v: serde_yaml::Value = serde_yaml::from_str(&cnp(
        "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDRSet:\n    - cidrGroupRef: partners\n",
    ))
    .unwrap();
    let r = validate_network_value(&v);
    assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("simulate cannot replay it")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn faults_are_refused_with_their_paths() {
    let cases: &[(&str, &[&str])] = &[
        // Unknown fields, at every depth, by path.
        (
            "spec:\n  endpointSelector: {}\n  egress:\n  - toFQDN:\n    - matchName: a.example.com\n",
            &["spec.egress[0].toFQDN: unknown field"],
        ),
        (
            "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - {port: \"80\", portocol: TCP}\n",
            &["spec.ingress[0].toPorts[0].ports[0].portocol: unknown field"],
        ),
        (
            "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports: [{port: \"80\"}]\n      rules:\n        kafka:\n        - topic: orders\n",
            &[
                "spec.ingress[0].toPorts[0].rules.kafka: unknown field",
                "spec.ingress[0].toPorts[0].rules: needs exactly one of http, dns",
            ],
        ),
        // Deny rules have no L7, no toFQDNs, no authentication.
        (
            "spec:\n  endpointSelector: {}\n  egressDeny:\n  - toFQDNs:\n    - matchName: a.example.com\n    authentication: {mode: required}\n    toPorts:\n    - ports: [{port: \"80\"}]\n      rules:\n        http: [{}]\n",
            &[
                "spec.egressDeny[0].toFQDNs: unknown field",
                "spec.egressDeny[0].authentication: unknown field",
                "spec.egressDeny[0].toPorts[0].rules: unknown field",
            ],
        ),
        // Ingress has no toServices; fromX in egress is unknown.
        (
            "spec:\n  endpointSelector: {}\n  ingress:\n  - toServices: []\n  egress:\n  - fromEndpoints: [{}]\n",
            &[
                "spec.ingress[0].toServices: unknown field",
                "spec.egress[0].fromEndpoints: unknown field",
            ],
        ),
        // Enums.
        (
            "spec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [internet, world-ipv4]\n    toPorts:\n    - ports: [{port: \"0\", protocol: ICMP}]\n    authentication: {mode: mutual}\n",
            &[
                "spec.egress[0].toEntities[0]: Unsupported value \"internet\"",
                "spec.egress[0].toEntities[1]: Unsupported value \"world-ipv4\"",
                "spec.egress[0].toPorts[0].ports[0].protocol: Unsupported value \"ICMP\"",
                "spec.egress[0].authentication.mode: Unsupported value \"mutual\"",
            ],
        ),
        // Types and bounds.
        (
            "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - {port: 80, endPort: 70000}\n    icmps:\n    - fields:\n      - {type: Ping}\n      - {family: IPv4}\n  enableDefaultDeny: {ingress: \"yes\"}\n",
            &[
                "spec.ingress[0].toPorts[0].ports[0].port: must be a string (quote the number)",
                "spec.ingress[0].toPorts[0].ports[0].endPort: 70000 is not between 0 and 65535",
                "spec.ingress[0].icmps[0].fields[0].type: \"Ping\" is not an ICMP type",
                "spec.ingress[0].icmps[0].fields[1].type: required field is missing",
                "spec.enableDefaultDeny.ingress: must be a boolean",
            ],
        ),
        // oneOf/anyOf of the spec, CIDR rules and FQDNs; required fields; deprecated lists.
        (
            "spec:\n  endpointSelector: {}\n  nodeSelector: {}\n  labels:\n  - {value: x}\n",
            &[
                "spec: needs exactly one of endpointSelector, nodeSelector",
                "spec: needs at least one of ingress, ingressDeny, egress, egressDeny",
                "spec.labels[0].key: required field is missing",
            ],
        ),
        (
            "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDRSet:\n    - {cidr: 10.0.0.0/8, cidrGroupRef: g}\n    - except: [10.1.0.0/16]\n    toFQDNs:\n    - {matchName: a.example.com, matchPattern: \"*.example.com\"}\n    toRequires: [x]\n    toServices:\n    - k8sServiceSelector: {namespace: pay}\n",
            &[
                "spec.egress[0].toCIDRSet[0]: needs exactly one of cidr, cidrGroupRef, cidrGroupSelector",
                "spec.egress[0].toCIDRSet[1]: needs exactly one of cidr, cidrGroupRef, cidrGroupSelector",
                "spec.egress[0].toFQDNs[0]: needs exactly one of matchName, matchPattern",
                "spec.egress[0].toRequires: deprecated: must be empty",
                "spec.egress[0].toServices[0].k8sServiceSelector.selector: required field is missing",
            ],
        ),
        (
            "specs:\n- endpointSelector: {}\n  ingress: [{fromCIDR: [10.0.0.300/8]}]\n- egress: []\n",
            &[
                "specs[0].ingress[0].fromCIDR[0]:",
                "specs[1]: needs exactly one of endpointSelector, nodeSelector",
            ],
        ),
    ];
    for (spec, want) in cases {
        let (outcome, errors) = check(&cnp(spec));
        assert_eq!(outcome, Outcome::Invalid, "{spec}");
        for w in *want {
            assert!(
                errors.iter().any(|e| e.starts_with(w)),
                "{w:?} not among {errors:#?}\nfor\n{spec}"
            );
        }
        assert_eq!(
            errors.len(),
            want.len(),
            "exactly the faults expected: {errors:#?}\nfor\n{spec}"
        );
    }
}
