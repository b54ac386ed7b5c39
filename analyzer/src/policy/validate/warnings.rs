//! Warnings about valid policies: what a cluster accepts but is probably a mistake.

use super::*;

pub(super) fn dup_warning<T: PartialEq>(w: &mut Walker, items: &[T], path: &str) {
    for (i, item) in items.iter().enumerate() {
        if let Some(j) = items[..i].iter().position(|x| x == item) {
            w.warn(format!("{path}[{i}]"), format!("identical to {path}[{j}]"));
        }
    }
}

pub(super) fn no_action(
    w: &mut Walker,
    policy: &Policy,
    rule: Option<Action>,
    section: Option<Action>,
    path: &str,
    section_path: &str,
) {
    if policy.effective_action(rule, section).is_none() {
        w.warn(
            path,
            format!("no action: set action on the rule, on {section_path} or on spec"),
        );
    }
}

pub(super) fn empty_sources(w: &mut Walker, sources: &[Source], path: &str) {
    for (i, s) in sources.iter().enumerate() {
        if s.path.as_deref().unwrap_or("").is_empty() {
            w.warn(
                format!("{path}.fromSource[{i}]"),
                "no path: KubeArmor ignores this source",
            );
        }
    }
}

/// What a cluster accepts but KubeArmor will not do as written.
pub(super) fn lint(policy: &Policy, w: &mut Walker) {
    let spec = &policy.spec;
    if !spec.has_rules() {
        w.warn("spec", "the policy has no rules");
    }
    if let Some(sel) = &spec.selector {
        for (i, e) in sel.match_expressions.iter().enumerate() {
            if e.key == Some(ExpressionKey::Label) {
                for (j, v) in e.values.iter().enumerate() {
                    if !v.contains('=') {
                        w.warn(
                            format!("spec.selector.matchExpressions[{i}].values[{j}]"),
                            "label expressions take key=value",
                        );
                    }
                }
            }
        }
    }
    if let Some(p) = &spec.process {
        let base = "spec.process";
        for (i, r) in p.match_paths.iter().enumerate() {
            let at = format!("{base}.matchPaths[{i}]");
            if r.path.is_none() && r.execname.is_none() {
                w.warn(&at, "neither path nor execname: the rule matches nothing");
            }
            no_action(w, policy, r.action, p.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in p.match_directories.iter().enumerate() {
            let at = format!("{base}.matchDirectories[{i}]");
            no_action(w, policy, r.action, p.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in p.match_patterns.iter().enumerate() {
            let at = format!("{base}.matchPatterns[{i}]");
            no_action(w, policy, r.action, p.action, &at, base);
        }
        dup_warning(w, &p.match_paths, "spec.process.matchPaths");
        dup_warning(w, &p.match_directories, "spec.process.matchDirectories");
        dup_warning(w, &p.match_patterns, "spec.process.matchPatterns");
    }
    if let Some(f) = &spec.file {
        let base = "spec.file";
        for (i, r) in f.match_paths.iter().enumerate() {
            let at = format!("{base}.matchPaths[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in f.match_directories.iter().enumerate() {
            let at = format!("{base}.matchDirectories[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in f.match_patterns.iter().enumerate() {
            let at = format!("{base}.matchPatterns[{i}]");
            no_action(w, policy, r.action, f.action, &at, base);
        }
        dup_warning(w, &f.match_paths, "spec.file.matchPaths");
        dup_warning(w, &f.match_directories, "spec.file.matchDirectories");
        dup_warning(w, &f.match_patterns, "spec.file.matchPatterns");
    }
    if let Some(n) = &spec.network {
        let base = "spec.network";
        for (i, r) in n.match_protocols.iter().enumerate() {
            let at = format!("{base}.matchProtocols[{i}]");
            no_action(w, policy, r.action, n.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        for (i, r) in n.match_dns_queries.iter().enumerate() {
            let at = format!("{base}.matchDNSQueries[{i}]");
            no_action(w, policy, r.action, n.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        dup_warning(w, &n.match_protocols, "spec.network.matchProtocols");
    }
    if let Some(c) = &spec.capabilities {
        let base = "spec.capabilities";
        for (i, r) in c.match_capabilities.iter().enumerate() {
            let at = format!("{base}.matchCapabilities[{i}]");
            no_action(w, policy, r.action, c.action, &at, base);
            empty_sources(w, &r.from_source, &at);
        }
        dup_warning(
            w,
            &c.match_capabilities,
            "spec.capabilities.matchCapabilities",
        );
    }
    if let Some(d) = &spec.device {
        let base = "spec.device";
        for (i, r) in d.match_device.iter().enumerate() {
            let at = format!("{base}.matchDevice[{i}]");
            no_action(w, policy, r.action, d.action, &at, base);
        }
    }
    if let Some(s) = &spec.syscalls {
        for (i, r) in s.match_syscalls.iter().enumerate() {
            if r.syscalls.is_empty() {
                w.warn(
                    format!("spec.syscalls.matchSyscalls[{i}]"),
                    "no syscall listed: the rule matches nothing",
                );
            }
        }
    }
}
