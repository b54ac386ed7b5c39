//! Unit tests of the validator: one per kind of check, each pinning the field path and the
//! message a user sees.

use std::path::Path;

use super::*;

const KSP: &str = "apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: ksp-foo
  namespace: demo
spec:
  selector:
    matchLabels:
      app: web
  action: Block
";

const HSP: &str = "apiVersion: security.kubearmor.com/v1
kind: KubeArmorHostPolicy
metadata:
  name: hsp-foo
spec:
  nodeSelector:
    matchLabels:
      kubernetes.io/hostname: node-1
  action: Audit
";

const CSP: &str = "apiVersion: security.kubearmor.com/v1
kind: KubeArmorClusterPolicy
metadata:
  name: csp-foo
spec:
  selector:
    matchExpressions:
    - key: namespace
      operator: In
      values: [prod]
  action: Block
";

fn reports(text: &str) -> Vec<PolicyReport> {
    validate_documents(text, Path::new("policies/x.yaml"))
}

fn one(text: &str) -> PolicyReport {
    let mut r = reports(text);
    assert_eq!(r.len(), 1, "{r:#?}");
    r.remove(0)
}

/// `base` with `extra` appended under `spec:` (indented by two spaces per line).
fn with_spec(base: &str, extra: &str) -> String {
    let mut s = base.to_string();
    for line in extra.lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn errors(text: &str) -> Vec<String> {
    one(text).error_messages()
}

fn warnings(text: &str) -> Vec<String> {
    let r = one(text);
    assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
    r.warning_messages()
}

const AT_KSP: &str = "policies/x.yaml: document 1 (KubeArmorPolicy ksp-foo): ";
const AT_HSP: &str = "policies/x.yaml: document 1 (KubeArmorHostPolicy hsp-foo): ";
const AT_CSP: &str = "policies/x.yaml: document 1 (KubeArmorClusterPolicy csp-foo): ";

fn at(prefix: &str, rest: &str) -> Vec<String> {
    vec![format!("{prefix}{rest}")]
}

#[test]
fn base_policies_are_valid_without_warnings_except_no_rules() {
    for base in [KSP, HSP, CSP] {
        let r = one(base);
        assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
        let w: Vec<&str> = r.warnings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(w, ["the policy has no rules"]);
        assert!(r.policy.is_some());
    }
}

#[test]
fn directory_without_trailing_slash() {
    let text = with_spec(KSP, "file:\n  matchDirectories:\n  - dir: /etc/nginx");
    assert_eq!(
        errors(&text),
        at(
            AT_KSP,
            "spec.file.matchDirectories[0].dir: must end with \"/\""
        )
    );
}

#[test]
fn document_numbers_in_multi_document_files() {
    let bad = with_spec(KSP, "file:\n  matchDirectories:\n  - dir: /etc/nginx")
        .replace("ksp-foo", "ksp-bar");
    let text = format!("---\n{KSP}---\n{bad}---\n{HSP}");
    let r = reports(&text);
    assert_eq!(r.len(), 3);
    assert_eq!(
        r.iter().map(|r| r.document).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        r[1].error_messages(),
        ["policies/x.yaml: document 2 (KubeArmorPolicy ksp-bar): \
          spec.file.matchDirectories[0].dir: must end with \"/\""]
    );
    assert_eq!(r[0].outcome, Outcome::Valid);
    assert_eq!(r[2].outcome, Outcome::Valid);
}

#[test]
fn syntax_error_in_one_document_does_not_hide_the_next() {
    let text = format!("{KSP}---\nspec: [unclosed\n---\n{HSP}");
    let r = reports(&text);
    assert_eq!(r.len(), 3, "{r:#?}");
    assert_eq!(r[0].outcome, Outcome::Valid);
    assert_eq!(r[1].outcome, Outcome::Invalid);
    assert_eq!(r[1].document, Some(2));
    let msg = &r[1].error_messages()[0];
    // The error's line is counted in the file: the KSP has 10 lines, then `---`, then line 12.
    assert!(
        msg.starts_with("policies/x.yaml: document 2: not valid YAML: "),
        "{msg}"
    );
    assert!(msg.contains("line 13"), "{msg}");
    assert_eq!(r[2].outcome, Outcome::Valid);
    assert_eq!(r[2].kind.as_deref(), Some("KubeArmorHostPolicy"));
}

#[test]
fn empty_documents_keep_their_numbers_but_are_not_reported() {
    let text = format!("# leading comment\n---\n---\n{KSP}---\n");
    let r = reports(&text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].document, Some(2));
    assert_eq!(reports("").len(), 1);
    assert_eq!(reports("# nothing\n")[0].outcome, Outcome::Skipped);
    assert_eq!(
        reports("---\n")[0].note.as_deref(),
        Some("no YAML documents")
    );
}

#[test]
fn file_paths() {
    let rel = with_spec(KSP, "process:\n  matchPaths:\n  - path: bin/sh");
    assert_eq!(
        errors(&rel),
        at(
            AT_KSP,
            "spec.process.matchPaths[0].path: must be an absolute path (start with \"/\"), got \
             \"bin/sh\""
        )
    );
    let slash = with_spec(KSP, "file:\n  matchPaths:\n  - path: /etc/");
    assert_eq!(
        errors(&slash),
        at(
            AT_KSP,
            "spec.file.matchPaths[0].path: must not end with \"/\" (a directory belongs in \
             matchDirectories)"
        )
    );
    let long = format!("/{}", "a".repeat(200));
    let text = with_spec(KSP, &format!("file:\n  matchPaths:\n  - path: {long}"));
    assert_eq!(
        errors(&text),
        at(
            AT_KSP,
            "spec.file.matchPaths[0].path: must be at most 200 characters, got 201"
        )
    );
    let src = with_spec(
        KSP,
        "file:\n  matchPaths:\n  - path: /etc/passwd\n    fromSource:\n    - path: /bin/",
    );
    assert_eq!(
        errors(&src),
        at(
            AT_KSP,
            "spec.file.matchPaths[0].fromSource[0].path: must not end with \"/\" (a directory \
             belongs in matchDirectories)"
        )
    );
}

#[test]
fn required_fields_missing_or_null() {
    let missing = with_spec(KSP, "file:\n  matchPaths:\n  - readOnly: true");
    assert_eq!(
        errors(&missing),
        at(
            AT_KSP,
            "spec.file.matchPaths[0].path: required field is missing"
        )
    );
    let null = with_spec(
        KSP,
        "process:\n  matchDirectories:\n  - dir:\n    recursive: true",
    );
    assert_eq!(
        errors(&null),
        at(
            AT_KSP,
            "spec.process.matchDirectories[0].dir: required field is null"
        )
    );
    let pattern = with_spec(KSP, "file:\n  matchPatterns:\n  - readOnly: true");
    assert_eq!(
        errors(&pattern),
        at(
            AT_KSP,
            "spec.file.matchPatterns[0].pattern: required field is missing"
        )
    );
}

#[test]
fn host_policy_requirements() {
    let proto = with_spec(HSP, "network:\n  matchProtocols:\n  - protocol: udp");
    assert_eq!(
        errors(&proto),
        at(
            AT_HSP,
            "spec.network.matchProtocols[0].fromSource: required field is missing"
        )
    );
    let cap = with_spec(
        HSP,
        "capabilities:\n  matchCapabilities:\n  - capability: net_raw",
    );
    assert_eq!(
        errors(&cap),
        at(
            AT_HSP,
            "spec.capabilities.matchCapabilities[0].fromSource: required field is missing"
        )
    );
    let no_selector = HSP.replace(
        "  nodeSelector:\n    matchLabels:\n      kubernetes.io/hostname: node-1\n",
        "",
    );
    assert_eq!(
        errors(&no_selector),
        at(AT_HSP, "spec.nodeSelector: required field is missing")
    );
    // The same rules are fine in a KubeArmorPolicy.
    let ksp = with_spec(KSP, "network:\n  matchProtocols:\n  - protocol: udp");
    assert_eq!(one(&ksp).outcome, Outcome::Valid);
}

#[test]
fn severity_and_integers() {
    for (value, msg) in [
        ("0", "must be between 1 and 10, got 0"),
        ("11", "must be between 1 and 10, got 11"),
        (
            "\"5\"",
            "must be an integer, got the string \"5\" (remove the quotes)",
        ),
        ("5.5", "must be an integer, got the number 5.5"),
    ] {
        let text = with_spec(KSP, &format!("severity: {value}"));
        assert_eq!(errors(&text), at(AT_KSP, &format!("spec.severity: {msg}")));
    }
    // An integral float is an integer to the API server.
    let r = one(&with_spec(KSP, "severity: 5.0"));
    assert_eq!(r.outcome, Outcome::Valid);
    assert_eq!(r.policy.and_then(|p| p.spec.severity), Some(5));

    let dev = with_spec(HSP, "device:\n  matchDevice:\n  - class: HID\n    level: 0");
    assert_eq!(
        errors(&dev),
        at(
            AT_HSP,
            "spec.device.matchDevice[0].level: must be at least 1, got 0"
        )
    );
    let big = with_spec(
        HSP,
        "device:\n  matchDevice:\n  - class: HID\n    protocol: 4294967296",
    );
    let w = warnings(&big);
    assert!(
        w.iter()
            .any(|w| w.contains("spec.device.matchDevice[0].protocol: 4294967296 does not fit")),
        "{w:?}"
    );
}

#[test]
fn actions() {
    let text = with_spec(
        KSP,
        "process:\n  matchPaths:\n  - path: /bin/sh\n    action: block",
    );
    assert_eq!(
        errors(&text),
        at(
            AT_KSP,
            "spec.process.matchPaths[0].action: must be Allow, Audit or Block, got \"block\" \
             (case matters)"
        )
    );
    let top = KSP.replace("action: Block", "action: Deny");
    assert_eq!(
        errors(&top),
        at(
            AT_KSP,
            "spec.action: must be Allow, Audit or Block, got \"Deny\""
        )
    );
}

#[test]
fn protocols_follow_the_crd_pattern() {
    let bad = with_spec(KSP, "network:\n  matchProtocols:\n  - protocol: Tcp");
    assert_eq!(
        errors(&bad),
        at(
            AT_KSP,
            "spec.network.matchProtocols[0].protocol: must be one of tcp, udp, raw, icmp, \
             icmpv6, sctp, stream, dgram, rdm, seqpacket, dccp, packet, all (lower or upper \
             case), got \"Tcp\""
        )
    );
    // The CRD's pattern is not anchored at the start: a cluster accepts this; we warn.
    let odd = with_spec(KSP, "network:\n  matchProtocols:\n  - protocol: xtcp");
    let w = warnings(&odd);
    assert!(
        w.iter().any(|w| w.ends_with(
            "spec.network.matchProtocols[0].protocol: \"xtcp\" passes the CRD's pattern (it \
             ends in a protocol name) but is not a protocol KubeArmor knows"
        )),
        "{w:?}"
    );
    let upper = with_spec(KSP, "network:\n  matchProtocols:\n  - protocol: ICMPV6");
    assert!(!warnings(&upper).iter().any(|w| w.contains("protocol")));
}

#[test]
fn capabilities_follow_the_crd_pattern() {
    let bad = with_spec(
        KSP,
        "capabilities:\n  matchCapabilities:\n  - capability: NET_RAW",
    );
    assert_eq!(
        errors(&bad),
        at(
            AT_KSP,
            "spec.capabilities.matchCapabilities[0].capability: must be a capability name in \
             lower case without CAP_, such as net_raw or sys_admin, got \"NET_RAW\""
        )
    );
    let prefixed = with_spec(
        KSP,
        "capabilities:\n  matchCapabilities:\n  - capability: cap_net_raw",
    );
    let w = warnings(&prefixed);
    assert!(
        w.iter().any(|w| w.contains(
            "spec.capabilities.matchCapabilities[0].capability: \"cap_net_raw\" passes the CRD's \
             pattern"
        )),
        "{w:?}"
    );
}

#[test]
fn syscalls() {
    let text = with_spec(
        KSP,
        "syscalls:\n  matchSyscalls:\n  - syscall: [unlink, SYS_OPENAT, Rmdir]\n  matchPaths:\n  \
         - path: tmp/\n    syscall: [unlink]",
    );
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{AT_KSP}spec.syscalls.matchSyscalls[0].syscall[1]: \"SYS_OPENAT\" is not a \
                 system call the CRD accepts (without the SYS_ prefix)"
            ),
            format!(
                "{AT_KSP}spec.syscalls.matchSyscalls[0].syscall[2]: \"Rmdir\" is not a system \
                 call the CRD accepts (names are lower case)"
            ),
            format!(
                "{AT_KSP}spec.syscalls.matchPaths[0].path: must be an absolute path (start with \
                 \"/\"), got \"tmp/\""
            ),
        ]
    );
    // Directories are fine in syscall paths; fromSource may name a directory there.
    let ok = with_spec(
        KSP,
        "syscalls:\n  matchPaths:\n  - path: /tmp/\n    recursive: true\n    syscall: [unlink]\n    \
         fromSource:\n    - dir: /usr/bin/\n      recursive: true",
    );
    assert_eq!(one(&ok).outcome, Outcome::Valid);
    let action = with_spec(
        KSP,
        "syscalls:\n  action: Block\n  matchSyscalls:\n  - syscall: [bpf]",
    );
    let w = warnings(&action);
    assert!(
        w.iter().any(|w| w.contains(
            "spec.syscalls.action: unknown field (syscalls rules only monitor: they have no \
             action)"
        )),
        "{w:?}"
    );
}

#[test]
fn process_match_paths_extras() {
    let args: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
    let text = with_spec(
        KSP,
        &format!(
            "process:\n  matchPaths:\n  - path: /bin/ls\n    allowedArgs: [{}]\n  - execname: \
             /bin/ls",
            args.join(", ")
        ),
    );
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{AT_KSP}spec.process.matchPaths[0].allowedArgs: must have at most 20 items, got \
                 21"
            ),
            format!(
                "{AT_KSP}spec.process.matchPaths[1].execname: must be a file name without \"/\" \
                 (use path for a full path), got \"/bin/ls\""
            ),
        ]
    );
    let by_name = with_spec(KSP, "process:\n  matchPaths:\n  - execname: ls");
    assert_eq!(one(&by_name).outcome, Outcome::Valid);
}

#[test]
fn selectors() {
    let ns_in_ksp = KSP.replace(
        "    matchLabels:\n      app: web\n",
        "    matchExpressions:\n    - key: namespace\n      operator: In\n      values: [a]\n",
    );
    assert_eq!(
        errors(&ns_in_ksp),
        at(
            AT_KSP,
            "spec.selector.matchExpressions[0].key: must be label, got \"namespace\" (namespace \
             expressions are for KubeArmorClusterPolicy)"
        )
    );
    let op = CSP.replace("operator: In", "operator: Exists");
    assert_eq!(
        errors(&op),
        at(
            AT_CSP,
            "spec.selector.matchExpressions[0].operator: must be In or NotIn, got \"Exists\""
        )
    );
    let label_value = KSP.replace("app: web", "app: 1");
    assert_eq!(
        errors(&label_value),
        at(
            AT_KSP,
            "spec.selector.matchLabels[app]: must be a string, got the number 1 (quote it)"
        )
    );
    let csp_labels = CSP.replace(
        "  selector:\n",
        "  selector:\n    matchLabels:\n      app: web\n",
    );
    let w = warnings(&csp_labels);
    assert!(
        w.iter().any(|w| w.contains(
            "spec.selector.matchLabels: unknown field (KubeArmorClusterPolicy selects pods with \
             matchExpressions"
        )),
        "{w:?}"
    );
    let no_eq = CSP.replace("key: namespace", "key: label");
    let w = warnings(&no_eq);
    assert!(
        w.iter().any(|w| w.ends_with(
            "spec.selector.matchExpressions[0].values[0]: label expressions take key=value"
        )),
        "{w:?}"
    );
    let null_label = KSP.replace("app: web", "app:");
    let w = warnings(&null_label);
    assert!(
        w.iter()
            .any(|w| w
                .contains("spec.selector.matchLabels[app]: null: the API server drops this label")),
        "{w:?}"
    );
}

#[test]
fn types() {
    let cases = [
        (
            "file:\n  matchPaths:\n  - path: /etc/passwd\n    readOnly: yes",
            "spec.file.matchPaths[0].readOnly: must be true or false, got the string \"yes\" \
             (write true or false, unquoted)",
        ),
        (
            "file:\n  matchPaths: {path: /etc/passwd}",
            "spec.file.matchPaths: must be a list, got a mapping",
        ),
        (
            "file:\n  matchPaths: [null]",
            "spec.file.matchPaths[0]: must be a mapping, got null",
        ),
        (
            "tags: [1]",
            "spec.tags[0]: must be a string, got the number 1 (quote it)",
        ),
        (
            "process: [a]",
            "spec.process: must be a mapping, got a list",
        ),
        ("message: [a]", "spec.message: must be a string, got a list"),
    ];
    for (extra, msg) in cases {
        assert_eq!(errors(&with_spec(KSP, extra)), at(AT_KSP, msg), "{extra}");
    }
}

#[test]
fn pruned_fields_are_warnings() {
    let text = with_spec(
        KSP,
        "file:\n  matchpaths:\n  - path: /etc/passwd\n  matchDirectories:\n  - dir: /etc/\n    \
         fromSource:\n    - dir: /bin/\nprocess:\ncolour: blue",
    );
    let r = one(&text);
    assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
    let w: Vec<String> = r.warnings.iter().map(|f| f.to_string()).collect();
    let expected = [
        "spec.file.matchpaths: unknown field (did you mean matchPaths?): the API server drops it \
         (kubectl apply --validate=strict rejects it)",
        "spec.file.matchDirectories[0].fromSource[0].dir: unknown field (fromSource takes only \
         path here (dir is for syscalls rules)): the API server drops it (kubectl apply \
         --validate=strict rejects it)",
        "spec.process: null: the API server drops this field (Kubernetes 1.20 and later; older \
         servers reject it)",
        "spec.colour: unknown field: the API server drops it (kubectl apply --validate=strict \
         rejects it)",
        "spec.file.matchDirectories[0].fromSource[0]: no path: KubeArmor ignores this source",
    ];
    for e in expected {
        assert!(w.contains(&e.to_string()), "missing {e:?} in {w:#?}");
    }
    // The stored policy lost what the cluster drops.
    let p = r.policy.expect("policy");
    let f = p.spec.file.expect("file");
    assert!(f.match_paths.is_empty());
    assert_eq!(f.match_directories[0].from_source[0].path, None);
    assert!(p.spec.process.is_none());

    let top = format!("{KSP}specs: {{}}\nstatus:\n  status: Active\n");
    let w = warnings(&top);
    assert!(
        w.iter().any(|w| w.contains("specs: unknown field")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w.contains("status: written by KubeArmor")),
        "{w:?}"
    );
}

#[test]
fn metadata_rules() {
    let upper = KSP.replace("name: ksp-foo", "name: KSP_Foo");
    let msgs = one(&upper).error_messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with(
            "policies/x.yaml: document 1 (KubeArmorPolicy KSP_Foo): metadata.name: must be a \
             lower case RFC 1123 subdomain"
        ),
        "{msgs:?}"
    );
    let nameless = KSP.replace("  name: ksp-foo\n", "");
    assert_eq!(
        one(&nameless).error_messages(),
        ["policies/x.yaml: document 1 (KubeArmorPolicy): metadata.name: required field is missing"]
    );
    let ns = KSP.replace("namespace: demo", "namespace: Demo_NS");
    assert!(errors(&ns)[0].contains("metadata.namespace: must be a namespace name"));
    let host_ns = HSP.replace(
        "  name: hsp-foo\n",
        "  name: hsp-foo\n  namespace: default\n",
    );
    let w = warnings(&host_ns);
    assert!(
        w.iter().any(|w| w.contains(
            "metadata.namespace: KubeArmorHostPolicy is cluster-scoped: the namespace is ignored"
        )),
        "{w:?}"
    );
    let labels = KSP.replace(
        "  namespace: demo\n",
        "  namespace: demo\n  labels:\n    \"bad key!\": x\n    ok: \"-bad-\"\n",
    );
    assert_eq!(
        errors(&labels),
        vec![
            format!(
                "{AT_KSP}metadata.labels[bad key!]: key \"bad key!\" is not a qualified name (an \
                 optional DNS subdomain prefix and '/', then at most 63 letters, digits, '-', \
                 '_' or '.', starting and ending with a letter or digit)"
            ),
            format!(
                "{AT_KSP}metadata.labels[ok]: label value \"-bad-\" must be at most 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit"
            ),
        ]
    );
}

#[test]
fn kinds_and_api_versions() {
    let r = one("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n");
    assert_eq!(r.outcome, Outcome::Skipped);
    assert_eq!(
        r.note.as_deref(),
        Some("not a KubeArmor policy (apps/v1 Deployment)")
    );
    assert!(r.errors.is_empty());

    let lower = KSP.replace("kind: KubeArmorPolicy", "kind: kubearmorpolicy");
    assert_eq!(
        one(&lower).error_messages(),
        ["policies/x.yaml: document 1 (kubearmorpolicy ksp-foo): kind: must be KubeArmorPolicy, \
          got \"kubearmorpolicy\" (kinds are case-sensitive)"]
    );
    let v2 = KSP.replace("security.kubearmor.com/v1", "security.kubearmor.com/v2");
    assert_eq!(
        errors(&v2),
        at(
            AT_KSP,
            "apiVersion: must be security.kubearmor.com/v1, got \"security.kubearmor.com/v2\""
        )
    );
    let no_kind = KSP.replace("kind: KubeArmorPolicy\n", "");
    assert_eq!(
        one(&no_kind).error_messages(),
        ["policies/x.yaml: document 1 (ksp-foo): kind: required field is missing"]
    );
    let text = one("just some words");
    assert_eq!(
        text.error_messages(),
        [
            "policies/x.yaml: document 1: a Kubernetes object must be a mapping, got the string \
          \"just some words\" (is this a YAML file?)"
        ]
    );
}

#[test]
fn lists_are_checked_item_by_item() {
    let item_ok = KSP.replace('\n', "\n    ");
    let item_bad = KSP
        .replace("action: Block", "action: Nope")
        .replace('\n', "\n    ");
    let text = format!("apiVersion: v1\nkind: List\nitems:\n  - {item_ok}\n  - {item_bad}\n");
    let r = reports(&text);
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[0].outcome, Outcome::Valid);
    assert_eq!(
        r[1].error_messages(),
        ["policies/x.yaml: document 1, items[1] (KubeArmorPolicy ksp-foo): spec.action: must be \
          Allow, Audit or Block, got \"Nope\""]
    );
}

#[test]
fn yaml_features() {
    // Merge keys are resolved as kubectl resolves them.
    let merged = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: \
                  {name: m}\nspec:\n  selector: {matchLabels: {a: b}}\n  file:\n    matchPaths:\n    \
                  - &rule {path: /etc/shadow, action: Block}\n    - <<: *rule\n      path: /etc/gshadow\n";
    let r = one(merged);
    assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
    let f = r.policy.and_then(|p| p.spec.file).expect("file");
    assert_eq!(f.match_paths[1].path, "/etc/gshadow");
    assert_eq!(f.match_paths[1].action, Some(Action::Block));
    // A byte-order mark is not content.
    assert_eq!(one(&format!("\u{feff}{KSP}")).outcome, Outcome::Valid);
    // Duplicate keys are an error of the YAML itself.
    let dup = format!("{KSP}kind: KubeArmorPolicy\n");
    assert!(
        errors(&dup)[0].contains("duplicate entry"),
        "{:?}",
        errors(&dup)
    );
    // Tags are ignored, with a warning.
    let tagged = KSP.replace("action: Block", "action: !custom Block");
    assert!(warnings(&tagged)
        .iter()
        .any(|w| w.contains("spec.action: the YAML tag !custom is ignored")));
}

#[test]
fn lint_warnings() {
    let text = with_spec(
        &KSP.replace("  action: Block\n", ""),
        "file:\n  matchPaths:\n  - path: /etc//passwd\n    action: Block\n  - path: /etc//passwd\n    \
         action: Block\n  - path: /etc/hosts",
    );
    let w: Vec<String> = one(&text).warnings.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        w,
        [
            "spec.file.matchPaths[0].path: not a normalised path (\"//\", \"/./\" or \"/../\"): \
             KubeArmor sees resolved paths, so this may never match",
            "spec.file.matchPaths[1].path: not a normalised path (\"//\", \"/./\" or \"/../\"): \
             KubeArmor sees resolved paths, so this may never match",
            "spec.file.matchPaths[2]: no action: set action on the rule, on spec.file or on spec",
            "spec.file.matchPaths[1]: identical to spec.file.matchPaths[0]",
        ]
    );
}

#[test]
fn valid_policies_round_trip_through_the_model() {
    let text = with_spec(
        KSP,
        "process:\n  matchDirectories:\n  - dir: /bin/\n    recursive: true\n    fromSource:\n    \
         - path: /usr/sbin/nginx\nnetwork:\n  matchProtocols:\n  - protocol: tcp\n    fromSource:\n    \
         - path: /usr/sbin/nginx\n",
    );
    let p = one(&text).policy.expect("policy");
    let again = p.to_yaml().expect("yaml");
    let r = one(&again);
    assert_eq!(r.outcome, Outcome::Valid, "{:?}", r.errors);
    assert_eq!(r.policy.as_ref(), Some(&p));
    assert_eq!(validate_policy(&p).outcome, Outcome::Valid);
}

#[test]
fn validate_path_reports_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("a.yaml"), KSP).expect("write");
    std::fs::write(root.join("sub/b.yml"), HSP.replace("Audit", "Bad")).expect("write");
    std::fs::write(root.join("sub/deeper/c.YAML"), [0xff, 0xfe, 0x00]).expect("write");
    std::fs::write(root.join("notes.txt"), "not looked at").expect("write");
    let r = validate_path(root);
    let files: Vec<String> = r
        .iter()
        .map(|r| {
            r.file
                .strip_prefix(root)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(files, ["a.yaml", "sub/b.yml", "sub/deeper/c.YAML"]);
    assert_eq!(
        r.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Valid, Outcome::Invalid, Outcome::Invalid]
    );
    assert!(
        r[2].errors[0].message.starts_with("not UTF-8 text"),
        "{:?}",
        r[2].errors
    );
    assert_eq!(r[2].document, None);

    let missing = validate_path(&root.join("nope.yaml"));
    assert_eq!(missing.len(), 1);
    assert!(missing[0].errors[0].message.starts_with("cannot read"));
    let empty = tempfile::tempdir().expect("tempdir");
    assert_eq!(validate_path(empty.path())[0].outcome, Outcome::Invalid);
}

#[test]
fn load_policies_lists_problems_or_returns_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.yaml"), format!("{KSP}---\n{CSP}")).expect("write");
    let ps = crate::policy::load_policies(dir.path()).expect("load");
    assert_eq!(ps.len(), 2);
    std::fs::write(dir.path().join("b.yaml"), KSP.replace("Block", "Nope")).expect("write");
    let err = crate::policy::load_policies(dir.path()).expect_err("invalid");
    assert!(err.to_string().contains("b.yaml: document 1"), "{err}");
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "{{ .Values.policy }}",
        "- a\n- b",
        "kind: [KubeArmorPolicy]",
        "kind: KubeArmorPolicy\nmetadata: 5\nspec: 5",
        "kind: KubeArmorPolicy\nspec:\n  process:\n    matchPaths:\n    - path: {a: b}",
        "kind: KubeArmorPolicy\n? [a, b]\n: c",
        "a: &a [*a]",
        "...\n...\n---\n---\n%YAML 1.2\n---\nx: 1",
        "kind: List\nitems: [1, null, {kind: KubeArmorPolicy}]",
        "kind: KubeArmorPolicy\nspec:\n  severity: 99999999999999999999999",
        "\t\u{0}",
    ];
    for text in inputs {
        let r = validate_documents(text, Path::new("g.yaml"));
        assert!(!r.is_empty(), "{text}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Any text gets at least one report, and an invalid verdict always says why.
    #[test]
    fn any_text_gets_a_reasoned_verdict(text in "[-:{}\\[\\], a-zA-Z0-9/\\n\\t#&*!|>'\"%.~<?@`]{0,300}") {
        let r = validate_documents(&text, Path::new("f.yaml"));
        proptest::prop_assert!(!r.is_empty());
        for x in &r {
            proptest::prop_assert_eq!(x.outcome == Outcome::Invalid, !x.errors.is_empty());
        }
    }

    /// Real policies with a few bytes of YAML syntax spliced in anywhere never panic the
    /// validator, and the documents around the damage are still checked.
    #[test]
    fn damaged_policies_are_reported_not_fatal(
        at in 0usize..1000,
        junk in "[-:{}\\[\\] a/\\n#&*!|>\"']{1,6}",
    ) {
        let base = with_spec(KSP, "file:\n  matchDirectories:\n  - dir: /etc/\n    readOnly: true");
        let mut cut = at % base.len();
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        let damaged = format!("{}{junk}{}", &base[..cut], &base[cut..]);
        let text = format!("{CSP}---\n{damaged}---\n{HSP}");
        let r = validate_documents(&text, Path::new("f.yaml"));
        let first = r.first().expect("reports");
        let last = r.last().expect("reports");
        proptest::prop_assert_eq!(first.outcome, Outcome::Valid);
        proptest::prop_assert_eq!(first.kind.as_deref(), Some("KubeArmorClusterPolicy"));
        proptest::prop_assert_eq!(last.outcome, Outcome::Valid);
        proptest::prop_assert_eq!(last.kind.as_deref(), Some("KubeArmorHostPolicy"));
    }
}
