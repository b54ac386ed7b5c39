#!/usr/bin/env bash
# End to end on a real cluster (kind, or whatever kubectl's current context points at):
#
#   1. applies the collector's manifests (collector/deploy/, `kubectl apply -k`), with a short
#      rotation interval so that segments appear within seconds;
#   2. runs a test workload (a Deployment and a short-lived Job) in its own namespace;
#   3. waits while the collector records it;
#   4. copies the data directory of the test pod's node (a live bundle: segments and the pods
#      table) out of the cluster;
#   5. runs `kubectl karmor observe pods -n <ns> --bundle <dir>` on it, and checks that the
#      test pod is in the output, attributed by name (which needs the pod watch).
#   6. runs `kubectl karmor pull` (discovery, a port-forward per collector pod, the gRPC
#      service) into a fresh bundle and store, checks that every node landed, that the bundle
#      verifies, that the test pod is in `observe --store`, and that a second pull is
#      incremental; then `observe` without --bundle against an empty cache, which pulls first.
#   7. checks that the pull brought every node's pods table with the Service watch's rows (the
#      cluster DNS Service's cluster IP) and the EndpointSlice watch's (the API servers), drafts a NetworkPolicy for the test Deployment from
#      the pulled store (`recommend --network`), checks that DNS goes to the DNS pods and not
#      to the cluster IP as an ipBlock, validates it offline and with a server-side dry run, applies it,
#      and checks that the workload still works: the Deployment stays available, and inside the
#      pod the cluster DNS still answers and the loop goes on (new file events are recorded
#      after the policy is in place). Needs a CNI that enforces NetworkPolicy (kindnet does
#      since kind 0.24; E2E_NETPOL=0 skips this step on clusters without one).
#
# It builds nothing. Before running it:
#   - build the collector image from collector/Containerfile and make it pullable by the
#     nodes; for kind:
#         docker build -f collector/Containerfile -t karmor-collector:dev .
#         kind load docker-image karmor-collector:dev --name <cluster>
#     (or set KIND_CLUSTER and this script runs the `kind load` line for you);
#   - python3 with pyarrow (step 7 reads the pulled pods tables);
#   - put the plugin on PATH as `kubectl-karmor` (cargo build --release -p kubectl-karmor), or
#     point KARMOR_PLUGIN at the binary.
#
# Settings (environment):
#   KARMOR_IMAGE      collector image to run (default: the manifest's image)
#   KIND_CLUSTER      load KARMOR_IMAGE into this kind cluster first (needs `kind`)
#   E2E_NAMESPACE     namespace of the test workload (default: karmor-e2e)
#   E2E_WAIT_SECONDS  how long the workload runs before the copy (default: 45)
#   E2E_OUT           where to copy the node's bundle (default: a new temporary directory)
#   E2E_CLEANUP       test (default: delete the test namespace), all (also the collector),
#                     none
#   KARMOR_PLUGIN     the kubectl-karmor binary (default: `kubectl karmor`)
#   KUBECTL           kubectl binary (default: kubectl)
#   E2E_NETPOL        1 (default) runs step 7, 0 skips it
#
# Exit codes: 0 passed, 1 a step failed, 2 no cluster or a missing tool.
#
# On kind, the nodes are containers sharing the host's kernel: the host needs BTF
# (/sys/kernel/btf/vmlinux) and tracefs (/sys/kernel/tracing), which the DaemonSet mounts.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPLOY="$ROOT/collector/deploy"
KUBECTL="${KUBECTL:-kubectl}"
NS="${E2E_NAMESPACE:-karmor-e2e}"
WAIT="${E2E_WAIT_SECONDS:-45}"
CLEANUP="${E2E_CLEANUP:-test}"
SYSNS="karmor-system"
DS="karmor-collector"
DATA="/var/lib/karmor"
HELPER="karmor-e2e-copy"

say() { printf '\n== %s\n' "$*" >&2; }
die() {
  local code="$1"
  shift
  printf 'e2e-kind: %s\n' "$*" >&2
  exit "$code"
}
k() { "$KUBECTL" "$@"; }

case "$CLEANUP" in test | all | none) ;; *) die 2 "E2E_CLEANUP must be test, all or none (got '$CLEANUP')" ;; esac
[[ "$WAIT" =~ ^[0-9]+$ ]] || die 2 "E2E_WAIT_SECONDS must be a number of seconds (got '$WAIT')"

# --- preflight ---------------------------------------------------------------------------
command -v "$KUBECTL" >/dev/null 2>&1 || die 2 "kubectl not found (set KUBECTL to its path)"
command -v tar >/dev/null 2>&1 || die 2 "tar not found"
[[ -f "$DEPLOY/kustomization.yaml" ]] || die 2 "no manifests at $DEPLOY (collector/deploy/kustomization.yaml)"
if [[ -n "${KARMOR_PLUGIN:-}" ]]; then
  [[ -x "$KARMOR_PLUGIN" ]] || die 2 "KARMOR_PLUGIN=$KARMOR_PLUGIN is not an executable"
  karmor() { "$KARMOR_PLUGIN" "$@"; }
else
  command -v kubectl-karmor >/dev/null 2>&1 ||
    die 2 "the kubectl-karmor plugin is not on PATH (cargo build --release -p kubectl-karmor; or set KARMOR_PLUGIN)"
  karmor() { "$KUBECTL" karmor "$@"; }
fi
context="$(k config current-context 2>/dev/null || true)"
if ! k cluster-info --request-timeout=10s >/dev/null 2>&1 ||
  ! k get --raw=/readyz --request-timeout=10s >/dev/null 2>&1; then
  die 2 "no Kubernetes cluster reachable through kubectl (context: '${context:-none}'). Start one, e.g. 'kind create cluster', or select a context with 'kubectl config use-context'."
fi
say "cluster: context '$context'"

if [[ -n "${KIND_CLUSTER:-}" ]]; then
  [[ -n "${KARMOR_IMAGE:-}" ]] || die 2 "KIND_CLUSTER is set but KARMOR_IMAGE is not: which image should be loaded?"
  command -v kind >/dev/null 2>&1 || die 2 "KIND_CLUSTER is set but kind is not installed"
  say "loading $KARMOR_IMAGE into kind cluster $KIND_CLUSTER"
  kind load docker-image "$KARMOR_IMAGE" --name "$KIND_CLUSTER"
fi

OUT="${E2E_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/karmor-e2e.XXXXXX")}"
mkdir -p "$OUT"

cleanup() {
  local status=$?
  set +e
  k -n "$SYSNS" delete pod "$HELPER" --ignore-not-found --wait=false >/dev/null 2>&1
  if [[ "$CLEANUP" != none ]]; then
    k delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  if [[ "$CLEANUP" == all ]]; then
    k delete -k "$DEPLOY" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  if [[ $status -ne 0 ]]; then
    printf '\ne2e-kind: FAILED (exit %d). Collector logs:\n' "$status" >&2
    k -n "$SYSNS" logs "ds/$DS" --tail=50 >&2 2>/dev/null
  fi
  exit "$status"
}
trap cleanup EXIT

# --- 1. the collector ----------------------------------------------------------------------
say "applying $DEPLOY"
k apply -k "$DEPLOY"
if [[ -n "${KARMOR_IMAGE:-}" ]]; then
  k -n "$SYSNS" set image "ds/$DS" "$DS=$KARMOR_IMAGE"
fi
# Segments every 5 s instead of every minute, so that the copy below finds them.
k -n "$SYSNS" set env "ds/$DS" KARMOR_ROTATE_SECONDS=5 RUST_LOG=info
k -n "$SYSNS" rollout status "ds/$DS" --timeout=180s ||
  die 1 "the collector DaemonSet did not become ready"

# --- 2. the test workload ------------------------------------------------------------------
say "running the test workload in namespace $NS"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k -n "$NS" apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: e2e-app
  labels: {app: e2e-app}
spec:
  replicas: 1
  selector:
    matchLabels: {app: e2e-app}
  template:
    metadata:
      labels: {app: e2e-app, purpose: karmor-e2e}
    spec:
      containers:
        - name: app
          image: busybox:1.36
          command: ["/bin/sh", "-c"]
          args:
            - |
              while true; do
                cat /etc/hostname /etc/passwd >/dev/null
                ls /tmp >/dev/null
                echo hello >/tmp/e2e.txt
                wget -q -T 2 -O /dev/null http://kubernetes.default.svc:443/ 2>/dev/null || true
                sleep 2
              done
---
apiVersion: batch/v1
kind: Job
metadata:
  name: e2e-once
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app: e2e-once, purpose: karmor-e2e}
    spec:
      restartPolicy: Never
      containers:
        - name: once
          image: busybox:1.36
          command: ["/bin/sh", "-c", "id; uname -a; cat /etc/os-release >/dev/null"]
EOF
k -n "$NS" rollout status deploy/e2e-app --timeout=180s || die 1 "the test Deployment did not become ready"
pod="$(k -n "$NS" get pods -l app=e2e-app -o jsonpath='{.items[0].metadata.name}')"
node="$(k -n "$NS" get pod "$pod" -o jsonpath='{.spec.nodeName}')"
[[ -n "$pod" && -n "$node" ]] || die 1 "cannot find the test pod or its node"
say "test pod $pod on node $node; recording for ${WAIT}s"
sleep "$WAIT"

# --- 3. copy the node's data directory -----------------------------------------------------
cpod="$(k -n "$SYSNS" get pods -l app.kubernetes.io/name=karmor-collector \
  --field-selector "spec.nodeName=$node" -o jsonpath='{.items[0].metadata.name}')"
[[ -n "$cpod" ]] || die 1 "no collector pod on node $node"
# The manifest first, then exactly the segments it lists: the copy is a consistent bundle
# even though the collector keeps writing (segments are renamed into place complete; newer
# ones, not in this manifest yet, are left out).
copy_from() {
  local p="$1"
  k -n "$SYSNS" exec "$p" -- cat "$DATA/manifest.json" >"$OUT/manifest.json" ||
    die 1 "no $DATA/manifest.json on node $node yet: the collector wrote no segment (see its logs)"
  grep -o '"path": *"[^"]*"' "$OUT/manifest.json" | sed 's/.*"\([^"]*\)"$/\1/' |
    grep -E '^(node=[^/]+/date=[0-9-]+/hour=[0-9]+/seg-[0-9a-f]+|pods/node=[^/]+/pods-[0-9a-f]+)\.parquet$' >"$OUT/.segments" || true
  [[ -s "$OUT/.segments" ]] || die 1 "the manifest on node $node lists no segment yet"
  k -n "$SYSNS" exec -i "$p" -- sh -c "cd $DATA && tar cf - -T -" <"$OUT/.segments" | tar xf - -C "$OUT"
  rm -f "$OUT/.segments"
}
say "copying $DATA of node $node to $OUT"
if k -n "$SYSNS" exec "$cpod" -- sh -c 'command -v tar && command -v cat' >/dev/null 2>&1; then
  copy_from "$cpod"
else
  # The collector image has no tar: a throw-away pod on the same node reads the hostPath.
  k -n "$SYSNS" apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $HELPER
  labels: {purpose: karmor-e2e}
spec:
  nodeName: $node
  restartPolicy: Never
  tolerations: [{operator: Exists}]
  containers:
    - name: copy
      image: busybox:1.36
      command: ["sleep", "600"]
      volumeMounts: [{name: data, mountPath: $DATA, readOnly: true}]
  volumes:
    - name: data
      hostPath: {path: $DATA, type: Directory}
EOF
  k -n "$SYSNS" wait --for=condition=Ready "pod/$HELPER" --timeout=120s ||
    die 1 "the copy helper pod did not start on node $node"
  copy_from "$HELPER"
fi
ls -R "$OUT" | head -20 >&2

# --- 4. analyse it -------------------------------------------------------------------------
say "kubectl karmor bundle verify $OUT"
karmor bundle verify "$OUT"
say "kubectl karmor observe pods -n $NS --bundle $OUT"
report="$(karmor observe pods -n "$NS" --bundle "$OUT")"
printf '%s\n' "$report"
grep -q "$pod" <<<"$report" ||
  die 1 "pod $pod is not in the report: its events were not attributed to it (is the pod watch working? see the collector's logs)"

# --- 5. pull through port-forwards -----------------------------------------------------------
PULLED="$OUT/pulled"
say "kubectl karmor pull -o $PULLED (port-forward to every collector pod)"
karmor pull -o "$PULLED/bundle" --store "$PULLED/store.duckdb" ||
  die 1 "pull failed for some node (see the ERROR column above)"
karmor bundle verify "$PULLED/bundle"
report="$(karmor observe pods -n "$NS" --store "$PULLED/store.duckdb")"
grep -q "$pod" <<<"$report" || die 1 "pod $pod is not in the pulled data"
second="$(karmor pull -o "$PULLED/bundle" --store "$PULLED/store.duckdb" --output json)"
printf '%s\n' "$second"
grep -q '"skipped": [1-9]' <<<"$second" ||
  die 1 "the second pull skipped nothing: it should fetch only segments written since the first"
say "kubectl karmor observe pods -n $NS (no --bundle: pulls into an empty cache first)"
report="$(XDG_CACHE_HOME="$PULLED/cache" karmor observe pods -n "$NS")"
grep -q "$pod" <<<"$report" || die 1 "observe without --bundle did not pull pod $pod's data"

# --- 6. network drafts applied to the real cluster --------------------------------------------
if [[ "${E2E_NETPOL:-1}" == 1 ]]; then
  NETPOL="$OUT/netpol"
  # The pull carried every node's pods table, with the Service watch's rows.
  dns_ip="$(k -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}')"
  python3 - "$PULLED/bundle" "$dns_ip" <<'PY' ||
import json, sys, pyarrow.parquet as pq
root, ip = sys.argv[1:3]
rows = [r for f in json.load(open(f"{root}/manifest.json")).get("pods", [])
        for r in pq.read_table(f"{root}/{f['path']}").to_pylist()]
sys.exit(0 if any(r.get("kind") == "Service" and r["ip"] == ip for r in rows) else 1)
PY
    die 1 "no Service row for kube-dns ($dns_ip) in the pulled pods tables: is the Service watch running (RBAC list/watch services)?"
  # ... and the EndpointSlice watch's rows: the API servers behind default/kubernetes.
  api_ips="$(k -n default get endpointslices -l kubernetes.io/service-name=kubernetes \
    -o jsonpath='{.items[*].endpoints[*].addresses[*]}')"
  python3 - "$PULLED/bundle" $api_ips <<'PY' ||
import json, sys, pyarrow.parquet as pq
root, ips = sys.argv[1], set(sys.argv[2:])
rows = [r for f in json.load(open(f"{root}/manifest.json")).get("pods", [])
        for r in pq.read_table(f"{root}/{f['path']}").to_pylist()]
seen = {r["ip"] for r in rows if r.get("kind") == "Endpoint" and r["pod"] == "kubernetes"}
sys.exit(0 if ips and ips <= seen else 1)
PY
    die 1 "the API server endpoints ($api_ips) are not Endpoint rows of the pulled pods tables: is the EndpointSlice watch running (RBAC list/watch endpointslices)?"
  say "kubectl karmor recommend deploy/e2e-app -n $NS --network --out $NETPOL --store $PULLED/store.duckdb"
  karmor recommend deploy/e2e-app -n "$NS" --network --out "$NETPOL" --report "$NETPOL/REPORT.md" \
    --store "$PULLED/store.duckdb" || die 1 "recommend --network drafted nothing for e2e-app"
  draft="$(ls "$NETPOL"/*.netpol.yaml 2>/dev/null | head -1)"
  [[ -n "$draft" ]] || die 1 "no NetworkPolicy draft written to $NETPOL"
  cat "$draft" >&2
  if grep -q "cidr: $dns_ip/32" "$draft"; then
    die 1 "DNS to the cluster IP $dns_ip is an ipBlock: the Service watch's row did not resolve it"
  fi
  karmor validate "$draft" || die 1 "the draft does not validate offline"
  k -n "$NS" apply --dry-run=server -f "$draft" || die 1 "the API server refuses the draft"
  karmor simulate -p "$draft" -n "$NS" --only dropped --store "$PULLED/store.duckdb"
  applied_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  k -n "$NS" apply -f "$draft"
  say "draft applied at $applied_at; checking that e2e-app still works for ${WAIT}s"
  sleep "$WAIT"
  k -n "$NS" rollout status deploy/e2e-app --timeout=60s || die 1 "e2e-app is not available under its drafted NetworkPolicy"
  pod="$(k -n "$NS" get pods -l app=e2e-app -o jsonpath='{.items[0].metadata.name}')"
  k -n "$NS" exec "$pod" -- nslookup kubernetes.default.svc.cluster.local >/dev/null 2>&1 ||
    die 1 "cluster DNS does not answer e2e-app under its drafted NetworkPolicy (see $NETPOL/REPORT.md)"
  karmor pull -o "$PULLED/bundle" --store "$PULLED/store.duckdb" >/dev/null ||
    die 1 "pull after the policy failed"
  after="$(karmor observe pods -n "$NS" -o file --since "$applied_at" --store "$PULLED/store.duckdb")"
  grep -q "/tmp/e2e.txt" <<<"$after" ||
    die 1 "e2e-app wrote nothing since the policy was applied: its loop stopped"
  k -n "$NS" delete -f "$draft" --ignore-not-found >/dev/null
  say "the drafted NetworkPolicy keeps e2e-app working"
fi

say "PASSED: pod $pod of node $node observed, copied and pulled; the data stays in $OUT"
