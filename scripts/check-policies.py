#!/usr/bin/env python3
"""Structural checks for the hardening policy library in policies/.

Usage:
    scripts/check-policies.py [--policies DIR] [--crds DIR] [--upstream DIR] [-v]

What is checked, for every policies/<category>/<name>.yaml:

1. The CRD schema. The document is walked against the openAPIV3Schema of the matching CRD in
   ../shared/kubearmor/crds/ by a generic walker that knows type, properties,
   additionalProperties, required, enum, pattern, minLength/maxLength, minimum/maximum,
   minItems/maxItems, uniqueItems, format int32/int64, nullable, allOf/anyOf/oneOf/not and
   x-kubernetes-preserve-unknown-fields. It is stricter than an API server in two ways that
   only make it safer: unknown fields are errors (the server would drop them silently, or
   reject them with `kubectl apply --validate=strict`), and nulls are errors unless the schema
   says `nullable: true`. Like the API server, `pattern` is an unanchored regular-expression
   search. metadata is checked the way the API server checks ObjectMeta (name, namespace,
   labels, annotations).
2. The library's conventions (policies/README.md): apiVersion and kind, `karmor-harden-`
   name equal to the file name, no namespace, the placeholder selector, severity, message,
   action and tags at spec level, at least one rule, a `path` in every matchPaths entry, the
   tag convention, and the leading comment block with its four sections.
3. policies/index.yaml: its format (documented at its top), exactly the policy files present,
   the same name/category/severity/action/tags as each file, the rule actions, valid triggers
   and globs, placeholders that occur in the policy, and coverage: every Block or Audit rule of
   a policy is matched by at least one of its conflicts_when triggers, so that behaviour the
   policy would block or alert on is always flagged.

With --upstream DIR, the CRD walker is also run over every document in DIR (for instance
../shared/kubearmor/policies) and the verdicts are listed; this is informational (those files
are not ours) and does not change the exit status.

Exit status: 0 when every check passes, 1 otherwise. Needs python3 and PyYAML.
"""

import argparse
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check-policies: PyYAML is missing (pip install pyyaml)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_POLICIES = os.path.join(REPO, "policies")
DEFAULT_CRDS = os.path.normpath(os.path.join(REPO, "..", "shared", "kubearmor", "crds"))

NAME_PREFIX = "karmor-harden-"
PLACEHOLDER_SELECTOR = {"matchLabels": {"kubearmor.io/harden": "true"}}
HEADER_SECTIONS = [
    "# Protects against",
    "# Relevant when:",
    "# Flagged instead of applied when:",
    "# May break:",
]

# ---------------------------------------------------------------------------------------------
# CRD schema walker
# ---------------------------------------------------------------------------------------------


def load_crds(crd_dir):
    """Return {kind: (group/version, openAPIV3Schema)} for every CRD file in crd_dir."""
    crds = {}
    for fname in sorted(os.listdir(crd_dir)):
        if not fname.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(crd_dir, fname), encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                kind = spec["names"]["kind"]
                versions = spec.get("versions", [])
                chosen = [v for v in versions if v.get("storage")] or versions
                for v in chosen:
                    crds[kind] = (f'{spec["group"]}/{v["name"]}', v["schema"]["openAPIV3Schema"])
    return crds


def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_FORMAT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def validate_schema(value, schema, path, errors):
    """Walk value against an OpenAPI v3 (structural) schema; append 'path: message' errors."""
    where = path or "<root>"
    if value is None:
        if not schema.get("nullable"):
            errors.append(f"{where}: null is not allowed (expected {schema.get('type', 'a value')})")
        return
    for sub in schema.get("allOf", []):
        validate_schema(value, sub, path, errors)
    if "anyOf" in schema:
        if not any(not _collect(value, sub, path) for sub in schema["anyOf"]):
            errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema:
        n = sum(1 for sub in schema["oneOf"] if not _collect(value, sub, path))
        if n != 1:
            errors.append(f"{where}: matches {n} of oneOf, expected exactly 1")
    if "not" in schema and not _collect(value, schema["not"], path):
        errors.append(f"{where}: must not match the 'not' schema")

    t = schema.get("type")
    if t and not _type_ok(value, t):
        errors.append(f"{where}: expected {t}, got {_type_name(value)} ({value!r})")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")

    if isinstance(value, str):
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: {value!r} does not match pattern {schema['pattern']!r}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']} characters")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']} characters")

    if _type_ok(value, "number"):
        if "minimum" in schema:
            if value < schema["minimum"] or (schema.get("exclusiveMinimum") and value == schema["minimum"]):
                errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema:
            if value > schema["maximum"] or (schema.get("exclusiveMaximum") and value == schema["maximum"]):
                errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
        bounds = _FORMAT_BOUNDS.get(schema.get("format"))
        if bounds and not bounds[0] <= value <= bounds[1]:
            errors.append(f"{where}: {value} does not fit {schema['format']}")

    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            seen = []
            for item in value:
                if item in seen:
                    errors.append(f"{where}: duplicate item {item!r}")
                seen.append(item)
        if "items" in schema:
            for i, item in enumerate(value):
                validate_schema(item, schema["items"], f"{path}[{i}]", errors)

    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{_join(path, req)}: required field is missing")
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        for key, sub in value.items():
            if not isinstance(key, str):
                errors.append(f"{where}: key {key!r} is not a string")
                continue
            if key in props:
                validate_schema(sub, props[key], _join(path, key), errors)
            elif isinstance(addl, dict):
                validate_schema(sub, addl, _join(path, key), errors)
            elif addl is True or preserve:
                continue
            elif props or addl is False:
                errors.append(f"{_join(path, key)}: unknown field")
            # an object schema with neither properties nor additionalProperties accepts anything


def _collect(value, schema, path):
    errs = []
    validate_schema(value, schema, path, errs)
    return errs


def _join(path, key):
    return f"{path}.{key}" if path else key


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _qualified_name_errors(key):
    prefix, _, name = key.rpartition("/")
    errs = []
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errs.append("prefix must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        errs.append("name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric")
    return errs


def validate_metadata(meta, errors):
    """The checks the API server applies to ObjectMeta for a namespaced custom resource."""
    if not isinstance(meta, dict):
        errors.append(f"metadata: expected object, got {_type_name(meta)}")
        return
    name = meta.get("name")
    if name is None and "generateName" not in meta:
        errors.append("metadata.name: required field is missing")
    elif name is not None and (not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    ns = meta.get("namespace")
    if ns is not None and (not isinstance(ns, str) or len(ns) > 63 or not DNS1123_LABEL.match(ns)):
        errors.append(f"metadata.namespace: {ns!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        m = meta.get(field)
        if m is None:
            continue
        if not isinstance(m, dict):
            errors.append(f"metadata.{field}: expected object")
            continue
        for k, v in m.items():
            if not isinstance(v, str):
                errors.append(f"metadata.{field}.{k}: value must be a string")
            if not isinstance(k, str) or _qualified_name_errors(k):
                errors.append(f"metadata.{field}: invalid key {k!r}")
            if field == "labels" and isinstance(v, str) and (len(v) > 63 or not LABEL_VALUE.match(v)):
                errors.append(f"metadata.labels.{k}: invalid label value {v!r}")


def validate_resource(doc, crds):
    """Errors of one document against the CRD of its kind (apiVersion, metadata, schema)."""
    errors = []
    if not isinstance(doc, dict):
        return [f"<root>: expected an object, got {_type_name(doc)}"]
    kind = doc.get("kind")
    if kind not in crds:
        return [f"kind: {kind!r} is not one of {sorted(crds)}"]
    api_version, schema = crds[kind]
    if doc.get("apiVersion") != api_version:
        errors.append(f"apiVersion: {doc.get('apiVersion')!r}, expected {api_version!r}")
    validate_metadata(doc.get("metadata"), errors)
    body = {k: v for k, v in doc.items() if k != "metadata"}
    meta_schema = dict(schema)
    meta_schema["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}
    meta_schema["required"] = [r for r in schema.get("required", []) if r != "metadata"]
    validate_schema(body, meta_schema, "", errors)
    return errors


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------

TAG_FAMILIES = [
    # (family marker, regex of the ids of that family)
    ("MITRE", re.compile(r"^MITRE_T\d{4}(\.\d{3})?_[a-z0-9]+(_[a-z0-9]+)*$")),
    ("NIST", re.compile(r"^NIST_800-53_[A-Z]{2}-\d{1,2}(\(\d{1,2}\))?$")),
    ("CIS", re.compile(r"^CIS_(Docker_v1\.2\.0_\d+\.\d+|Kubernetes_v1\.23_\d+\.\d+\.\d+)$")),
]


def _natural_key(s):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def check_tags(tags, errors):
    if not isinstance(tags, list) or not tags:
        errors.append("spec.tags: a non-empty list is required")
        return
    if len(set(tags)) != len(tags):
        errors.append("spec.tags: duplicate tags")
    expected = []
    for marker, rx in TAG_FAMILIES:
        ids = [t for t in tags if isinstance(t, str) and rx.match(t)]
        if marker in ("MITRE", "NIST") and not ids:
            errors.append(f"spec.tags: at least one {marker} id is required")
        if ids:
            expected.append(marker)
            expected.extend(sorted(ids, key=_natural_key))
    for t in tags:
        if not isinstance(t, str) or not (t in [m for m, _ in TAG_FAMILIES] or any(rx.match(t) for _, rx in TAG_FAMILIES)):
            errors.append(f"spec.tags: {t!r} does not follow the tag convention")
    if not errors and tags != expected:
        errors.append(
            "spec.tags: expected the order MITRE, MITRE_…, NIST, NIST_…, CIS, CIS_… (ids sorted, "
            f"each family marker present exactly when the family has ids): {expected}"
        )


# ---------------------------------------------------------------------------------------------
# Globs and triggers (the index mini-format)
# ---------------------------------------------------------------------------------------------


class GlobError(ValueError):
    pass


def glob_to_regex(glob):
    """Translate an index glob into a Python regex (full match).

    `*` any run of characters except `/`; `?` one character except `/`; `**` as a whole path
    component any number of components (`/a/**/b`, `**/b`, `/a/**`); `[...]`/`[!...]` character
    classes; `{a,b}` alternatives (not nested, no `**` inside); `\\` escapes the next character.
    """
    if not isinstance(glob, str) or not glob:
        raise GlobError("a glob must be a non-empty string")
    if not (glob.startswith("/") or glob.startswith("**")):
        raise GlobError(f"{glob!r}: must be absolute (start with '/' or '**')")
    return "^" + _translate(glob, in_braces=False) + "$"


def _translate(g, in_braces):
    out = []
    i = 0
    n = len(g)
    while i < n:
        c = g[i]
        if c == "\\":
            if i + 1 >= n:
                raise GlobError(f"{g!r}: dangling escape")
            out.append(re.escape(g[i + 1]))
            i += 2
        elif c == "*" and i + 1 < n and g[i + 1] == "*":
            if in_braces:
                raise GlobError(f"{g!r}: '**' inside '{{…}}'")
            if (i > 0 and g[i - 1] != "/") or (i + 2 < n and g[i + 2] != "/"):
                raise GlobError(f"{g!r}: '**' must be a whole path component")
            if i + 2 >= n:
                out.append(".*")
                i += 2
            else:
                out.append("(?:.*/)?")
                i += 3
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = g.find("]", i + 2)
            if j < 0:
                raise GlobError(f"{g!r}: unclosed '['")
            body = g[i + 1:j]
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            if "/" in body:
                raise GlobError(f"{g!r}: '/' inside a character class")
            body = body.replace("\\", "\\\\")
            out.append(f"[^/{body}]" if neg else f"[{body}]")
            i = j + 1
        elif c == "{":
            if in_braces:
                raise GlobError(f"{g!r}: nested '{{'")
            j = g.find("}", i)
            if j < 0:
                raise GlobError(f"{g!r}: unclosed '{{'")
            inner = g[i + 1:j]
            if "{" in inner:
                raise GlobError(f"{g!r}: nested '{{'")
            alts = inner.split(",")
            if len(alts) < 2 or any(a == "" for a in alts):
                raise GlobError(f"{g!r}: '{{…}}' needs at least two non-empty alternatives")
            out.append("(?:" + "|".join(_translate(a, in_braces=True) for a in alts) + ")")
            i = j + 1
        elif c in "}]":
            raise GlobError(f"{g!r}: unbalanced {c!r}")
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def glob_match(glob, value):
    return re.match(glob_to_regex(glob), value) is not None


OPS = ("process", "file", "network", "capability")
ACCESS_VALUES = ("read", "write", "create", "delete", "rename", "chmod", "chown", "exec")
ACCESS_ALIASES = {
    "any": set(ACCESS_VALUES),
    "modify": {"write", "create", "delete", "rename", "chmod", "chown"},
}
PROTOCOLS = ("tcp", "udp", "icmp", "raw", "unix")
TRIGGER_KEYS = {
    "process": {"op", "path_glob", "source_glob"},
    "file": {"op", "path_glob", "source_glob", "access"},
    "network": {"op", "proto", "remote_glob", "source_glob"},
    "capability": {"op", "capability", "source_glob"},
}


def trigger_access(trigger):
    """The set of contract access values a file trigger accepts."""
    a = trigger.get("access", "any")
    items = a if isinstance(a, list) else [a]
    out = set()
    for item in items:
        out |= ACCESS_ALIASES.get(item, {item})
    return out


def check_trigger(t, where, errors, capabilities):
    if not isinstance(t, dict):
        errors.append(f"{where}: a trigger must be a mapping")
        return
    if "always" in t:
        if t != {"always": True}:
            errors.append(f"{where}: 'always' must be alone and true")
        return
    op = t.get("op")
    if op not in OPS:
        errors.append(f"{where}: op must be one of {list(OPS)} (or the trigger {{always: true}})")
        return
    unknown = set(t) - TRIGGER_KEYS[op]
    if unknown:
        errors.append(f"{where}: keys {sorted(unknown)} are not allowed with op {op}")
    for key in ("path_glob", "source_glob", "remote_glob"):
        if key in t:
            try:
                glob_to_regex(t[key])
            except GlobError as e:
                errors.append(f"{where}.{key}: {e}")
    if op in ("process", "file") and "path_glob" not in t:
        errors.append(f"{where}: op {op} needs path_glob")
    if op == "file" and "access" in t:
        items = t["access"] if isinstance(t["access"], list) else [t["access"]]
        for item in items:
            if item not in ACCESS_VALUES and item not in ACCESS_ALIASES:
                errors.append(f"{where}.access: {item!r} is not one of {list(ACCESS_VALUES) + list(ACCESS_ALIASES)}")
    if op == "network":
        if "proto" not in t and "remote_glob" not in t:
            errors.append(f"{where}: op network needs proto or remote_glob")
        if "proto" in t and t["proto"] not in PROTOCOLS:
            errors.append(f"{where}.proto: {t['proto']!r} is not one of {list(PROTOCOLS)}")
    if op == "capability":
        cap = t.get("capability")
        if not isinstance(cap, str) or cap not in capabilities:
            errors.append(f"{where}.capability: {cap!r} is not a KubeArmor capability name")


# ---------------------------------------------------------------------------------------------
# Policy rules as targets (for the coverage check)
# ---------------------------------------------------------------------------------------------


def _sample_paths(kind, value, recursive=False):
    """Concrete paths a rule target applies to, to test index globs against."""
    if kind == "path":
        return [value]
    if kind == "dir":
        samples = [value + "karmor-probe"]
        if recursive:
            samples.append(value + "a/karmor-probe")
        return samples
    # pattern
    return [value.replace("*", "karmorprobe").replace("?", "k")]


def policy_targets(spec):
    """Yield dicts describing every rule with its effective action."""
    top = spec.get("action")
    for section in ("process", "file"):
        sec = spec.get(section) or {}
        for key, kind in (("matchPaths", "path"), ("matchDirectories", "dir"), ("matchPatterns", "pattern")):
            for i, rule in enumerate(sec.get(key) or []):
                value = rule.get(kind)
                yield {
                    "where": f"spec.{section}.{key}[{i}]",
                    "op": section,
                    "samples": _sample_paths(kind, value, rule.get("recursive", False)) if value else [],
                    "sources": [s.get("path") for s in rule.get("fromSource") or [] if s.get("path")],
                    "readonly": bool(rule.get("readOnly")),
                    "action": rule.get("action") or sec.get("action") or top,
                    "target": value,
                }
    net = spec.get("network") or {}
    for i, rule in enumerate(net.get("matchProtocols") or []):
        yield {
            "where": f"spec.network.matchProtocols[{i}]",
            "op": "network",
            "proto": str(rule.get("protocol", "")).lower(),
            "sources": [s.get("path") for s in rule.get("fromSource") or [] if s.get("path")],
            "action": rule.get("action") or net.get("action") or top,
            "target": rule.get("protocol"),
        }
    caps = spec.get("capabilities") or {}
    for i, rule in enumerate(caps.get("matchCapabilities") or []):
        yield {
            "where": f"spec.capabilities.matchCapabilities[{i}]",
            "op": "capability",
            "capability": str(rule.get("capability", "")).lower(),
            "sources": [s.get("path") for s in rule.get("fromSource") or [] if s.get("path")],
            "action": rule.get("action") or caps.get("action") or top,
            "target": rule.get("capability"),
        }


def _covers(trigger, target, sample, source, lenient_sources):
    if trigger.get("op") != target["op"]:
        return False
    src = trigger.get("source_glob")
    if src is not None:
        if source is None:
            if not lenient_sources:
                return False
        elif not glob_match(src, source):
            return False
    op = target["op"]
    if op in ("process", "file"):
        if not glob_match(trigger["path_glob"], sample):
            return False
        if op == "file":
            acc = trigger_access(trigger)
            if target["readonly"]:
                return bool(acc & ACCESS_ALIASES["modify"])
            return "read" in acc
        return True
    if op == "network":
        return "proto" in trigger and trigger["proto"] == target["proto"]
    if op == "capability":
        return trigger.get("capability") == target["capability"]
    return False


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


def header_comment(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif line.strip() == "" and lines:
            lines.append(line)
        else:
            break
    return lines


def check_library_conventions(rel, text, doc, errors):
    parts = rel.split(os.sep)
    stem = os.path.splitext(parts[-1])[0]
    if len(parts) != 2:
        errors.append("file: must be policies/<category>/<name>.yaml")
    header = header_comment(text)
    if not text.startswith("#"):
        errors.append("file: must start with a YAML comment block")
    elif not header or header[0].strip() != f"# {NAME_PREFIX}{stem}":
        errors.append(f"header: first line must be '# {NAME_PREFIX}{stem}'")
    for section in HEADER_SECTIONS:
        if not any(line.startswith(section) for line in header):
            errors.append(f"header: missing a line starting with {section!r}")
    if doc.get("apiVersion") != "security.kubearmor.com/v1":
        errors.append("apiVersion: must be security.kubearmor.com/v1")
    if doc.get("kind") != "KubeArmorPolicy":
        errors.append("kind: must be KubeArmorPolicy")
    meta = doc.get("metadata") or {}
    if set(meta) != {"name"}:
        errors.append(f"metadata: must contain only 'name' (no namespace), has {sorted(meta)}")
    if meta.get("name") != NAME_PREFIX + stem:
        errors.append(f"metadata.name: must be {NAME_PREFIX + stem!r} (prefix + file name)")
    spec = doc.get("spec") or {}
    if spec.get("selector") != PLACEHOLDER_SELECTOR:
        errors.append(f"spec.selector: must be the placeholder {PLACEHOLDER_SELECTOR}")
    for key in ("severity", "message", "action", "tags"):
        if key not in spec:
            errors.append(f"spec.{key}: required by the library")
    if not isinstance(spec.get("message"), str) or not spec.get("message", "").strip():
        errors.append("spec.message: must be a non-empty string")
    check_tags(spec.get("tags"), errors)
    sections = [s for s in ("process", "file", "network", "capabilities") if spec.get(s)]
    if not sections:
        errors.append("spec: needs at least one of process, file, network, capabilities")
    for s in sections:
        if not any(spec[s].get(k) for k in spec[s] if k.startswith("match")):
            errors.append(f"spec.{s}: has no rules")
    for section in ("process", "file"):
        for i, rule in enumerate((spec.get(section) or {}).get("matchPaths") or []):
            if "path" not in rule:
                errors.append(f"spec.{section}.matchPaths[{i}]: needs a path")
    if "syscalls" in spec or "presets" in spec:
        errors.append("spec: syscalls and presets are not used by the library")
    return stem


INDEX_TOP_KEYS = {"format", "selector_placeholder", "policies"}
ENTRY_REQUIRED = {"name", "file", "category", "severity", "action", "rule_actions", "tags", "summary",
                  "relevant_when", "conflicts_when"}
ENTRY_OPTIONAL = {"placeholders", "extend_from_source", "notes"}
PLACEHOLDER_KEYS = {"token", "fill_from", "when_empty"}


def check_index(index, policies, capabilities, errors):
    """policies: {relative file: (doc, text)}."""
    if not isinstance(index, dict):
        errors.append("index: must be a mapping")
        return
    unknown = set(index) - INDEX_TOP_KEYS
    if unknown:
        errors.append(f"index: unknown top-level keys {sorted(unknown)}")
    if index.get("format") != "karmor-harden-index/v1":
        errors.append("index.format: must be 'karmor-harden-index/v1'")
    if index.get("selector_placeholder") != PLACEHOLDER_SELECTOR["matchLabels"]:
        errors.append(f"index.selector_placeholder: must be {PLACEHOLDER_SELECTOR['matchLabels']}")
    entries = index.get("policies")
    if not isinstance(entries, list) or not entries:
        errors.append("index.policies: must be a non-empty list")
        return
    listed = []
    names = set()
    for n, e in enumerate(entries):
        where = f"index.policies[{n}]"
        if not isinstance(e, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        where = f"index.policies[{n}] ({e.get('name')})"
        missing = ENTRY_REQUIRED - set(e)
        if missing:
            errors.append(f"{where}: missing keys {sorted(missing)}")
        unknown = set(e) - ENTRY_REQUIRED - ENTRY_OPTIONAL
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        f = e.get("file")
        listed.append(f)
        if e.get("name") in names:
            errors.append(f"{where}: duplicate name")
        names.add(e.get("name"))
        if f not in policies:
            errors.append(f"{where}: file {f!r} is not a policy file of the library")
            continue
        doc, text = policies[f]
        spec = doc.get("spec") or {}
        category = f.split("/")[0]
        if e.get("category") != category:
            errors.append(f"{where}: category {e.get('category')!r} but the file is in {category!r}")
        if e.get("name") != (doc.get("metadata") or {}).get("name"):
            errors.append(f"{where}: name differs from the policy's metadata.name")
        for key in ("severity", "action", "tags"):
            if e.get(key) != spec.get(key):
                errors.append(f"{where}.{key}: {e.get(key)!r} differs from the policy's {spec.get(key)!r}")
        targets = list(policy_targets(spec))
        actions = sorted({t["action"] for t in targets})
        if e.get("rule_actions") != actions:
            errors.append(f"{where}.rule_actions: {e.get('rule_actions')!r}, the rules use {actions!r}")
        if not isinstance(e.get("summary"), str) or not e.get("summary"):
            errors.append(f"{where}.summary: must be a non-empty string")
        for key in ("relevant_when", "conflicts_when"):
            triggers = e.get(key)
            if not isinstance(triggers, list) or not triggers:
                errors.append(f"{where}.{key}: must be a non-empty list")
                continue
            for i, t in enumerate(triggers):
                check_trigger(t, f"{where}.{key}[{i}]", errors, capabilities)
        if any(isinstance(t, dict) and "always" in t for t in e.get("conflicts_when") or []):
            errors.append(f"{where}.conflicts_when: 'always' makes no sense here")
        if "extend_from_source" in e:
            if not isinstance(e["extend_from_source"], bool):
                errors.append(f"{where}.extend_from_source: must be true or false")
            elif e["extend_from_source"] and not any(
                isinstance(t, dict) and t.get("op") == "process" for t in e.get("relevant_when") or []
            ):
                errors.append(f"{where}.extend_from_source: needs process triggers in relevant_when")
        if "notes" in e and not (isinstance(e["notes"], list) and all(isinstance(x, str) for x in e["notes"])):
            errors.append(f"{where}.notes: must be a list of strings")
        tokens = []
        for i, ph in enumerate(e.get("placeholders") or []):
            pw = f"{where}.placeholders[{i}]"
            if not isinstance(ph, dict) or set(ph) - PLACEHOLDER_KEYS or "token" not in ph or "fill_from" not in ph:
                errors.append(f"{pw}: needs token and fill_from (and optionally when_empty), nothing else")
                continue
            tokens.append(ph["token"])
            if ph["token"] not in text:
                errors.append(f"{pw}.token: {ph['token']!r} does not occur in {f}")
            if ph.get("when_empty", "drop_rule") not in ("drop_rule", "keep"):
                errors.append(f"{pw}.when_empty: must be drop_rule or keep")
            for j, t in enumerate(ph.get("fill_from") or []):
                check_trigger(t, f"{pw}.fill_from[{j}]", errors, capabilities)
        if "__KARMOR_" in text and not tokens:
            errors.append(f"{where}: the policy contains a placeholder but the index declares none")
        # Coverage: every Block/Audit rule must be matched by a conflicts_when trigger.
        triggers = [t for t in e.get("conflicts_when") or [] if isinstance(t, dict) and "op" in t]
        if not all(_trigger_ok(t, capabilities) for t in triggers):
            continue  # errors already reported
        for target in targets:
            if target["action"] == "Allow":
                continue
            samples = target.get("samples") or [None]
            sources = target["sources"] or [None]
            for sample in samples:
                for source in sources:
                    if not any(_covers(t, target, sample, source, bool(tokens)) for t in triggers):
                        what = f"{target['target']}" + (f" from {source}" if source else "")
                        errors.append(
                            f"{where}.conflicts_when: no trigger covers {target['where']} "
                            f"({target['action']} {what}; sample {sample or target['target']!r})"
                        )
    files = set(policies)
    for f in sorted(files - set(listed)):
        errors.append(f"index: policy file {f} is not listed")
    for f in sorted(x for x in set(listed) if listed.count(x) > 1):
        errors.append(f"index: {f} is listed more than once")


def _trigger_ok(t, capabilities):
    errs = []
    check_trigger(t, "", errs, capabilities)
    return not errs


def glob_self_test():
    cases = [
        ("/bin/*sh", "/bin/bash", True),
        ("/bin/*sh", "/bin/x/bash", False),
        ("/etc/**", "/etc/a/b", True),
        ("/tmp/**", "/tmp/x", True),
        ("**/kubectl", "/tmp/x/kubectl", True),
        ("**/kubectl", "/tmp/x/kubectl2", False),
        ("/a/**/b", "/a/b", True),
        ("/a/**/b", "/a/x/y/b", True),
        ("/{bin,usr/bin}/{nc,nc.*}", "/usr/bin/nc.openbsd", True),
        ("/{bin,usr/bin}/{nc,nc.*}", "/usr/bin/ncat", False),
        ("/root/.{bash,zsh}_history", "/root/.zsh_history", True),
        ("/home/*/.ssh/authorized_keys", "/home/u/.ssh/authorized_keys", True),
        ("/proc/[0-9]*/mem", "/proc/12/mem", True),
        ("/x/?", "/x/ab", False),
    ]
    bad = [(g, v, want) for g, v, want in cases if glob_match(g, v) != want]
    for g in ("/a**", "/a/{b,{c,d}}", "/a/{b}", "relative", "/a/[bc", "/{a,**}"):
        try:
            glob_to_regex(g)
            bad.append((g, "(should be rejected)", False))
        except GlobError:
            pass
    return bad


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def capability_names(crds):
    schema = crds["KubeArmorPolicy"][1]
    pat = schema["properties"]["spec"]["properties"]["capabilities"]["properties"]["matchCapabilities"]["items"][
        "properties"]["capability"]["pattern"]
    m = re.search(r"\(([^)]*)\)", pat)
    return set(m.group(1).split("|")) if m else set()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default=DEFAULT_POLICIES, help="library directory (default: policies/)")
    ap.add_argument("--crds", default=DEFAULT_CRDS, help="CRD directory (default: ../shared/kubearmor/crds)")
    ap.add_argument("--upstream", help="also walk every policy document in this directory (informational)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every file, not only failures")
    args = ap.parse_args()

    crds = load_crds(args.crds)
    for kind in ("KubeArmorPolicy",):
        if kind not in crds:
            sys.exit(f"check-policies: no CRD for {kind} in {args.crds}")
    caps = capability_names(crds)
    failed = False

    bad_globs = glob_self_test()
    if bad_globs:
        failed = True
        for g, v, want in bad_globs:
            print(f"FAIL glob self-test: {g!r} vs {v!r}, expected {want}")

    policies = {}
    results = []
    for dirpath, dirnames, filenames in os.walk(args.policies):
        dirnames.sort()
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            rel = os.path.relpath(path, args.policies)
            if rel == "index.yaml" or not fname.endswith((".yaml", ".yml")):
                continue
            errors = []
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            try:
                docs = [d for d in yaml.safe_load_all(text)]
            except yaml.YAMLError as e:
                results.append((rel, [f"YAML: {e}"], None))
                continue
            if len(docs) != 1:
                results.append((rel, [f"file: expected exactly one YAML document, found {len(docs)}"], None))
                continue
            doc = docs[0]
            schema_errors = validate_resource(doc, crds)
            errors += [f"CRD {e}" for e in schema_errors]
            if isinstance(doc, dict):
                check_library_conventions(rel, text, doc, errors)
                policies[rel.replace(os.sep, "/")] = (doc, text)
            results.append((rel, errors, doc))

    n_rules = 0
    for rel, errors, doc in results:
        if doc and isinstance(doc, dict):
            n_rules += sum(1 for _ in policy_targets(doc.get("spec") or {}))
        if errors:
            failed = True
            print(f"FAIL {rel}")
            for e in errors:
                print(f"     {e}")
        elif args.verbose:
            spec = doc["spec"]
            print(f"ok   {rel:55} {spec['action']:5} severity {spec['severity']}")

    index_path = os.path.join(args.policies, "index.yaml")
    index_errors = []
    if not os.path.exists(index_path):
        index_errors.append("index.yaml is missing")
    else:
        with open(index_path, encoding="utf-8") as fh:
            try:
                index = yaml.safe_load(fh)
            except yaml.YAMLError as e:
                index = None
                index_errors.append(f"YAML: {e}")
        if index is not None or not index_errors:
            check_index(index, policies, caps, index_errors)
    if index_errors:
        failed = True
        print("FAIL index.yaml")
        for e in index_errors:
            print(f"     {e}")
    elif args.verbose:
        print("ok   index.yaml (format, listing, fields, triggers, coverage)")

    n_ok = sum(1 for _, errors, _ in results if not errors)
    print(
        f"{n_ok}/{len(results)} policy files pass (CRD schema + library conventions; {n_rules} rules); "
        f"index.yaml: {'ok' if not index_errors else f'{len(index_errors)} error(s)'}; "
        f"glob self-test: {'ok' if not bad_globs else 'FAILED'}"
    )

    if args.upstream:
        print(f"\nupstream (informational): CRD walker over {args.upstream}")
        valid = invalid = 0
        for fname in sorted(os.listdir(args.upstream)):
            if not fname.endswith((".yaml", ".yml")):
                continue
            with open(os.path.join(args.upstream, fname), encoding="utf-8") as fh:
                try:
                    docs = [d for d in yaml.safe_load_all(fh) if d is not None]
                except yaml.YAMLError as e:
                    print(f"  YAML-ERROR {fname}: {str(e).splitlines()[0]}")
                    invalid += 1
                    continue
            for k, d in enumerate(docs):
                errs = validate_resource(d, crds)
                if errs:
                    invalid += 1
                    print(f"  invalid {fname}#{k}: {errs[0]}" + (f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""))
                else:
                    valid += 1
        print(f"  {valid} valid, {invalid} invalid document(s)")

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
