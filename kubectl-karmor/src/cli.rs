//! Command-line surface (design §6), following kubectl's conventions.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Observe what KubeArmor-protected workloads really do, and draft policies from it.
#[derive(Debug, Parser)]
#[command(name = "kubectl-karmor", bin_name = "kubectl karmor", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// Aligned columns with pids, containers and nodes.
    Wide,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// CSV, one row per line with a `section` column.
    Csv,
}

/// Where the data comes from.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Analyse this bundle offline: a directory, a .tar (or .tar.gz) of one, or an archive
    /// on object storage, s3://BUCKET/PREFIX (repeatable). An archive is read by its
    /// manifests first: only the files of the clusters, node and time window asked for are
    /// fetched, into the cache, and reused next time.
    #[arg(long = "bundle", value_name = "PATH|s3://BUCKET/PREFIX")]
    pub bundles: Vec<PathBuf>,
    /// With --bundle s3://…: only these clusters' archives (repeatable or comma-separated).
    #[arg(long = "cluster", value_name = "NAME", value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// DuckDB store to merge bundles into and query. Without it, --bundle data is analysed
    /// in memory; with neither, the local cache store is used.
    #[arg(long, value_name = "FILE", env = "KARMOR_STORE")]
    pub store: Option<PathBuf>,
    /// Path to the kubeconfig file (for commands that reach a cluster).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Without --bundle and --store, analyse the local cache as it is: do not pull from the
    /// cluster's collectors first. `KARMOR_NO_PULL` takes 1/0, true/false, yes/no, on/off.
    #[arg(long, env = "KARMOR_NO_PULL", value_parser = BoolishValueParser::new())]
    pub no_pull: bool,
}

/// Which behaviour `observe`, `recommend`, `simulate`, `coverage` and `diff` look at:
/// namespaces, a time window and a filter. One definition, so that the commands spell and read
/// them alike.
#[derive(Debug, Clone, Default, Args)]
pub struct ScopeArgs {
    /// Only this namespace (simulate: several, repeatable or comma-separated). Default:
    /// "default" for namespaced resources; simulate: every namespace and the hosts.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// All namespaces, and host behaviour.
    #[arg(short = 'A', long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Only behaviour seen at or after this time: an RFC 3339 instant
    /// (2026-11-20T08:00:00Z) or a duration before now (30s, 15m, 6h, 5d, 2w, 3M, 1Y).
    #[arg(short = 't', long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only behaviour first seen before this time (RFC 3339 or a duration before now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Filter: key=value;key=value, with &&, ||, parentheses, != and globs (* ?).
    #[arg(short = 'f', long)]
    pub filter: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise observed behaviour per namespace, deployment, pod, container or node.
    Observe(ObserveArgs),
    /// Convert KubeArmor JSON logs (`karmor logs --json`) into a bundle.
    Import(ImportArgs),
    /// Inspect and verify bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Check KubeArmor policy files the way a cluster would (CRD schemas, metadata).
    Validate(ValidateArgs),
    /// Replay recorded behaviour through KubeArmor policies (and connections through
    /// NetworkPolicy/CiliumNetworkPolicy): what would be allowed, audited, blocked or dropped.
    Simulate(SimulateArgs),
    /// Draft KubeArmor policies from observed behaviour, one per workload (and per node).
    Recommend(RecommendArgs),
    /// Has learning converged? Per workload and category: new items per hour and a verdict.
    Coverage(CoverageArgs),
    /// What changed against a baseline (bundle, time window or policies); exits 1 on new behaviour.
    Diff(DiffArgs),
    /// Pull the collectors' segments (port-forward, or --endpoint) into a bundle and the cache.
    Pull(PullArgs),
    /// Upload a bundle (or the cache's pulled bundle) to S3-compatible object storage, under
    /// cluster=<name>/ in the bundle layout, with a manifest.
    Archive(ArchiveArgs),
    /// Print a shell completion script, or install kubectl's plugin completion.
    Completion(CompletionArgs),
    /// Completion candidates for the words given, the last one being completed: one per line,
    /// then `:<directive>` (cobra's protocol, which kubectl speaks to kubectl_complete-karmor).
    #[command(name = "__complete", hide = true, disable_help_flag = true)]
    Complete {
        /// The words after `kubectl karmor`, the partial word last.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        words: Vec<String>,
    },
}

/// `completion`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor completion bash > /etc/bash_completion.d/kubectl-karmor
  kubectl karmor completion --install-kubectl-plugin
  kubectl karmor completion --install-kubectl-plugin ~/.local/bin

kubectl (1.26+) completes `kubectl karmor <TAB>` by running kubectl_complete-karmor from PATH;
--install-kubectl-plugin writes it (default: the directory kubectl-karmor was run from, krew's
bin directory when installed by krew). It completes commands, flags, resource words, and
namespaces and nodes from the local cache store.")]
pub struct CompletionArgs {
    /// The shell to print a completion script for (`kubectl-karmor` run on its own).
    #[arg(required_unless_present = "install_kubectl_plugin")]
    pub shell: Option<clap_complete::Shell>,
    /// Write the kubectl_complete-karmor executable kubectl runs to complete `kubectl karmor`
    /// into DIR (default: beside the running kubectl-karmor), instead of printing a script.
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    pub install_kubectl_plugin: Option<Option<PathBuf>>,
}

/// `observe`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor observe pods -n wordpress-mysql --bundle testdata/demo
  kubectl karmor observe deployment wordpress -n wordpress-mysql -o file --bundle testdata/demo
  kubectl karmor observe pods -A -f 'user=root||(process=/bin/*&&path=/etc/*)' --bundle testdata/demo
  kubectl karmor observe nodes -D --output wide --bundle testdata/demo
  kubectl karmor observe pods -A -o syscall,capability -f 'syscall=openat||capability=net_raw' --bundle ./bundle
  kubectl karmor observe pods -n wordpress-mysql --live
  kubectl karmor observe -A --live --relay-endpoint 127.0.0.1:32767 --duration 5m")]
pub struct ObserveArgs {
    /// namespaces (ns) | nodes (no) | pods (po) | deployments (deploy) | statefulsets (sts) |
    /// daemonsets (ds) | jobs | cronjobs (cj) | replicasets (rs) | containers | workloads,
    /// singular or plural; also TYPE/NAME (deploy/wordpress).
    #[arg(default_value = "pods", value_name = "RESOURCE")]
    pub resource: String,
    /// Only this resource.
    pub name: Option<String>,
    /// Namespaces, time window, filter.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only this container name.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Operations to show: process, file, network (the default), syscall, capability
    /// (repeatable or comma-separated).
    #[arg(short = 'o', long = "operation", value_delimiter = ',')]
    pub operations: Vec<String>,
    /// Describe each resource (header, then its data), as kubectl describe does.
    #[arg(short = 'D', long)]
    pub describe: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Open a full-screen terminal UI instead of printing: tabs per operation, filter (f),
    /// quick search (/), sort (s), drill-down (Enter/Esc), graphs (g), export (e), policy
    /// drafts (p); ? lists the keys. Needs a terminal.
    #[arg(long, conflicts_with = "describe")]
    pub tui: bool,
    /// Data source.
    #[command(flatten)]
    pub data: DataArgs,
    /// Live mode (`--live`).
    #[command(flatten)]
    pub live: LiveArgs,
}

/// `observe --live`: KubeArmor's relay stream, summarised as events arrive.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Watch KubeArmor's relay (port-forward to its pod) and refresh the summary as events
    /// arrive, until Ctrl-C, --duration or --max-events.
    #[arg(long, conflicts_with = "bundles", help_heading = "Live")]
    pub live: bool,
    /// Namespace of the KubeArmor relay pod.
    #[arg(long, value_name = "NS", default_value = kubectl_karmor::live::DEFAULT_RELAY_NAMESPACE, help_heading = "Live")]
    pub relay_namespace: String,
    /// Label selector of the KubeArmor relay pod.
    #[arg(long, value_name = "SELECTOR", default_value = kubectl_karmor::live::DEFAULT_RELAY_SELECTOR, help_heading = "Live")]
    pub relay_selector: String,
    /// The relay's gRPC port in the pod.
    #[arg(long, value_name = "PORT", default_value_t = karmor_proto::KUBEARMOR_PORT, help_heading = "Live")]
    pub relay_port: u16,
    /// Connect straight to a relay (or KubeArmor daemon) at HOST:PORT, without Kubernetes.
    #[arg(
        long,
        value_name = "HOST:PORT",
        requires = "live",
        help_heading = "Live"
    )]
    pub relay_endpoint: Option<String>,
    /// Seconds between two refreshes of the summary.
    #[arg(long, value_name = "SECONDS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Live")]
    pub refresh: u64,
    /// Stop after this long: 30s, 15m, 1h.
    #[arg(
        long,
        value_name = "DURATION",
        requires = "live",
        help_heading = "Live"
    )]
    pub duration: Option<String>,
    /// Stop after this many messages (after dropping redeliveries).
    #[arg(long, value_name = "N", requires = "live", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Live")]
    pub max_events: Option<u64>,
    /// Watch only the telemetry stream (WatchLogs), not the alerts (WatchAlerts).
    #[arg(long, requires = "live", help_heading = "Live")]
    pub no_alerts: bool,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// KubeArmor JSON log files (JSON lines or a JSON array); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The bundle directory to write (created, or added to).
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Cluster name to record when the logs carry none.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Fail (exit 1) when any line cannot be imported, after importing the rest.
    #[arg(long)]
    pub strict: bool,
    /// Output format of the import report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `bundle` subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Show what a bundle holds: producer, clusters, nodes, time range, files, counters.
    Info {
        /// The bundle: a directory, or a .tar (or .tar.gz) of one.
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Check every segment against the manifest (size, sha256, footer, schema, rows).
    Verify {
        /// The bundle: a directory, or a .tar (or .tar.gz) of one.
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
}

/// `validate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor validate policies/
  kubectl karmor validate ksp-web.yaml hsp-nodes.yaml --output json

Prints one line per document: OK, or the errors a cluster would report (file, document,
field path). Warnings (fields a cluster silently drops, rules without an action, ...) go to
standard error, or into the table with --output wide. Exits 1 when any document is invalid.")]
pub struct ValidateArgs {
    /// Policy files, or directories searched recursively for *.yaml and *.yml.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `simulate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor simulate -p ksp-wordpress.yaml -n wordpress-mysql --bundle testdata/demo
  kubectl karmor simulate -p policies/ -A --only blocked --bundle testdata/demo
  kubectl karmor simulate -p drafts/ --default-posture block --output json --bundle testdata/demo

KubeArmor semantics: Block beats Audit beats Allow; an Allow rule makes its kind (process, file,
network, capabilities) an allow-list where everything else gets the default posture (audit
unless --default-posture or --namespace-posture say block; processes follow the file posture);
fromSource is the acting process (the parent for process rules); readOnly denies writes;
ownerOnly is decided as if the process were not the file's owner (owners are not recorded).
A file or exec that failed on a path that did not resolve (No such file or directory, Not a
directory) is 'unaffected': it fails before any KubeArmor hook runs, whatever the policies.
System calls are decided against syscalls rules, which KubeArmor only ever audits (a
matching rule audits, anything else is allowed). Invalid policy documents are reported and left out.

NetworkPolicy and CiliumNetworkPolicy documents replay recorded connections with Kubernetes'
semantics: a pod is isolated for a direction once a policy selects it for it; then a
connection passes when any rule of any such policy allows its peer and port (ipBlock with
except, namespace and pod selectors, Cilium entities and toFQDNs). Loopback, a pod's own node
and host-network pods are never filtered. Peers resolve through the bundles' pods table.
  kubectl karmor simulate -p netpol/ -n wordpress-mysql --only dropped --bundle testdata/demo")]
pub struct SimulateArgs {
    /// Only this resource's behaviour: namespaces, nodes (host behaviour), pods, deployments,
    /// statefulsets, daemonsets, jobs, cronjobs, replicasets, containers, workloads (kubectl's
    /// names and short names); also TYPE/NAME. Default: everything in scope.
    #[arg(value_name = "RESOURCE")]
    pub resource: Option<String>,
    /// Only this resource.
    pub name: Option<String>,
    /// Policy files, or directories searched recursively for *.yaml and *.yml (repeatable).
    #[arg(short = 'p', long = "policy", required = true, value_name = "FILE|DIR")]
    pub policies: Vec<PathBuf>,
    /// Namespaces (namespace-less KubeArmorPolicies go to the first, as with kubectl apply
    /// -n), time window, filter.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Only show behaviour with these outcomes: allowed, audited, blocked, unaffected
    /// (comma-separated; unaffected: failed anyway, whatever the policies). For network
    /// policies: allowed, dropped, not-isolated, unaffected.
    #[arg(long, value_name = "DECISION", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Default posture outside allow-lists: audit, block, or per kind
    /// (file=block,network=audit,capabilities=block).
    #[arg(long, default_value = "audit", value_name = "POSTURE")]
    pub default_posture: String,
    /// A namespace's posture, as its kubearmor-*-posture annotations (repeatable):
    /// NAMESPACE:block or NAMESPACE:file=block,network=audit.
    #[arg(long = "namespace-posture", value_name = "NS:POSTURE")]
    pub namespace_postures: Vec<String>,
    /// A node label for host policies' nodeSelector (repeatable): NODE:KEY=VALUE. Every node
    /// already has kubernetes.io/hostname=NODE.
    #[arg(long = "node-label", value_name = "NODE:KEY=VALUE")]
    pub node_labels: Vec<String>,
    /// A namespace label for network policies' namespaceSelector (repeatable):
    /// NAMESPACE:KEY=VALUE. Every namespace already has kubernetes.io/metadata.name=NAMESPACE.
    #[arg(long = "namespace-label", value_name = "NS:KEY=VALUE")]
    pub namespace_labels: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Data source.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--action` of `recommend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum RecommendAction {
    /// A least-permissive allow-list of what was seen (the default).
    Allow,
    /// The same rules, only raising alerts (and hardening Block rules turned into Audit).
    Audit,
    /// Only the hardening library's Block rules (needs --hardening).
    Block,
}

/// `recommend`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor recommend -A --bundle testdata/demo --out drafts/ --report drafts/REPORT.md
  kubectl karmor recommend deployment/wordpress -n wordpress-mysql --bundle testdata/demo
  kubectl karmor recommend -A --until 2026-11-20T12:00:00Z --out drafts/ --bundle testdata/demo
  kubectl karmor recommend deployments -n wordpress-mysql --hardening policies/ --out drafts/ --bundle testdata/demo
  kubectl karmor recommend nodes node-a --max-rules 40 --bundle testdata/demo
  kubectl karmor recommend -n wordpress-mysql --network --until 2026-11-20T12:00:00Z --out netpol/ --bundle testdata/demo
  kubectl karmor recommend -n wordpress-mysql --network-format cilium --bundle testdata/demo
  kubectl karmor recommend deployment/web -n shop --seccomp --out seccomp/ --bundle ./bundle

Drafts one KubeArmorPolicy per workload (replicas merged, selector from stable labels) and, for
nodes (or with -A), one KubeArmorHostPolicy per node. Exec probes and start-up helpers are kept
(commented as such; --exclude probes,startup leaves them out); kubectl exec sessions are left out,
and behaviour that looks like an intrusion (per the hardening library's data, or seen once late)
is held out as a commented-out rule and counted in WARNINGS (--include exec,suspicious keeps
them). Generalised rules carry a comment saying what they absorbed and why. With --out, one YAML file per workload and the summary on standard
output; without it, the YAML stream on standard output and the summary on standard error.")]
pub struct RecommendArgs {
    /// workloads | deployments (deploy) | statefulsets (sts) | daemonsets (ds) | jobs |
    /// cronjobs (cj) | replicasets (rs) | pods (po; pods without an owner) | nodes (no) |
    /// namespaces (ns; a namespace's workloads), singular or plural; also TYPE/NAME.
    #[arg(default_value = "workloads", value_name = "RESOURCE")]
    pub resource: String,
    /// Only this workload (or node, or namespace).
    pub name: Option<String>,
    /// Namespace, time window and filter to learn from (-A: every namespace, and every
    /// node's host behaviour).
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Allow (least-permissive allow-list), Audit, or Block (hardening rules only).
    #[arg(long, value_enum, ignore_case = true, default_value_t = RecommendAction::Allow)]
    pub action: RecommendAction,
    /// Also keep in drafts: exec (kubectl exec sessions), suspicious (behaviour held out as
    /// an intrusion), startup, probes, all (comma-separated). Probes and start-up helpers are
    /// kept by default.
    #[arg(long, value_name = "KINDS")]
    pub include: Option<String>,
    /// Leave out of drafts: probes, startup (comma-separated), e.g. --exclude probes,startup.
    #[arg(long, value_name = "KINDS")]
    pub exclude: Option<String>,
    /// At most this many rules per policy: directories collapse further, widest first.
    #[arg(long, value_name = "N")]
    pub max_rules: Option<usize>,
    /// Directory collapse threshold: N (default 5) or a per-prefix override /dir/=N
    /// (repeatable or comma-separated; /tmp/, /var/tmp/ and /dev/shm/ default to 1).
    #[arg(long, value_name = "N|/DIR/=N", value_delimiter = ',')]
    pub dir_threshold: Vec<String>,
    /// Write one YAML file per workload into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write a Markdown report: what each policy allows, generalisations, noise, warnings.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also pick hardening policies from a library (default: ./policies, or $KARMOR_POLICIES).
    /// The directory is optional anywhere: `--hardening --out drafts/` uses the default.
    #[arg(long, value_name = "DIR")]
    pub hardening: Option<Option<PathBuf>>,
    /// With --action Block: also for workloads whose learning has not converged (verdict
    /// learning or partial, see `kubectl karmor coverage`).
    #[arg(long)]
    pub force: bool,
    /// Quiet period after which a category counts as stable: DURATION (every category) or
    /// CATEGORY=DURATION (repeatable or comma-separated; defaults: 6h, network=24h).
    #[arg(long, value_name = "DUR|CAT=DUR", value_delimiter = ',')]
    pub quiet: Vec<String>,
    /// Draft network policies from recorded connections instead of KubeArmor policies: one
    /// Kubernetes NetworkPolicy per workload (peers resolved through the bundles' pods table).
    #[arg(long)]
    pub network: bool,
    /// With --network: kubernetes (NetworkPolicy, the default) or cilium
    /// (CiliumNetworkPolicy, with toFQDNs for names and toEntities for nodes). Implies
    /// --network.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub network_format: Option<NetworkFormatArg>,
    /// System-call rules in the drafts: audit (the default; KubeArmor only audits system
    /// calls, whatever the action: every matching call raises an alert) or none.
    #[arg(long, value_enum, ignore_case = true, default_value_t = SyscallRulesArg::Audit)]
    pub syscall_rules: SyscallRulesArg,
    /// Draft seccomp profiles instead of KubeArmor policies: per workload with recorded
    /// system calls (op=syscall rows), an allow-list of exactly those calls (and the few the
    /// container runtime makes under the profile), as OCI/Docker JSON (`NAME.seccomp.json`)
    /// and a Security Profiles Operator SeccompProfile (`NAME.seccompprofile.yaml`).
    #[arg(long, conflicts_with_all = ["network", "network_format", "hardening"])]
    pub seccomp: bool,
    /// With --seccomp: allow only the recorded calls, without the container runtime's own
    /// (for runtimes that load the profile just before the exec, with no_new_privs).
    #[arg(long, requires = "seccomp")]
    pub seccomp_exact: bool,
    /// With --seccomp: the architectures the profile lists (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64,
    /// …; repeatable or comma-separated; default SCMP_ARCH_X86_64).
    #[arg(long, value_name = "ARCH", value_delimiter = ',', requires = "seccomp")]
    pub seccomp_arch: Vec<String>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Data source.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--syscall-rules` of `recommend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyscallRulesArg {
    /// `syscalls.matchSyscalls` rules of the calls seen, per executable (audited).
    Audit,
    /// No system-call rules.
    None,
}

/// `--network-format` of `recommend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkFormatArg {
    /// networking.k8s.io/v1 NetworkPolicy.
    Kubernetes,
    /// cilium.io/v2 CiliumNetworkPolicy.
    Cilium,
}

/// `coverage`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor coverage -A --bundle testdata/demo
  kubectl karmor coverage deployments -n wordpress-mysql --quiet 2h,network=6h --bundle testdata/demo
  kubectl karmor coverage -A --output json

Per workload (and node, with -A or nodes) and category (executables, files, network,
capabilities, syscalls): generalised items (as drafts generalise them: a new pid or temporary
file is not a new item), new items per hour as a chart (one column per hour), whether start-up
was seen and whether producers dropped events. Verdicts: stable (every category quiet for its
quiet period before the workload's last behaviour), learning, or partial (start-up not seen, or
events dropped). recommend --action Block needs stable workloads (or --force).")]
pub struct CoverageArgs {
    /// workloads | deployments (deploy) | statefulsets (sts) | daemonsets (ds) | jobs |
    /// cronjobs (cj) | replicasets (rs) | pods (po) | nodes (no) | namespaces (ns), singular or
    /// plural; also TYPE/NAME.
    #[arg(default_value = "workloads", value_name = "RESOURCE")]
    pub resource: String,
    /// Only this workload (or node, or namespace).
    pub name: Option<String>,
    /// Namespace, time window, filter (-A: every namespace and every node's host behaviour).
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Quiet period after which a category counts as stable: DURATION (every category) or
    /// CATEGORY=DURATION (repeatable or comma-separated; defaults: 6h, network=24h).
    #[arg(long, value_name = "DUR|CAT=DUR", value_delimiter = ',')]
    pub quiet: Vec<String>,
    /// Directory collapse threshold, as recommend's.
    #[arg(long, value_name = "N|/DIR/=N", value_delimiter = ',')]
    pub dir_threshold: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Data source.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--only` of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangeKindArg {
    /// Seen now, not covered by the baseline.
    New,
    /// In the baseline, not seen now.
    Gone,
    /// Seen on both sides at a markedly different rate.
    Volume,
}

/// `diff`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor diff -A --baseline-until 2026-11-20T12:00:00Z --since 2026-11-20T12:00:00Z --bundle testdata/demo
  kubectl karmor diff -A --baseline last-week.tar.gz --bundle today/
  kubectl karmor diff deploy/wordpress -n wordpress-mysql --baseline-policy drafts/ --since 2h
  kubectl karmor diff -A --baseline old/ --bundle new/ --as-policy-delta delta/

Per workload and category: what is new (first seen, the process that introduced it, counts),
what is gone, and what changed markedly in volume (events per hour, x10 by default),
generalised as drafts are, so a new pid or temporary file is not new. The baseline is a bundle
(--baseline), a time window of the same data (--baseline-since/--baseline-until), or policies
(--baseline-policy: what the simulator would not allow is new). Exit status: 0 when nothing
is new, 1 when something is, 2 on errors: gate a rollout on it in CI.")]
pub struct DiffArgs {
    /// workloads | deployments (deploy) | statefulsets (sts) | daemonsets (ds) | jobs |
    /// cronjobs (cj) | replicasets (rs) | pods (po) | nodes (no) | namespaces (ns), singular or
    /// plural; also TYPE/NAME.
    #[arg(default_value = "workloads", value_name = "RESOURCE")]
    pub resource: String,
    /// Only this workload (or node, or namespace).
    pub name: Option<String>,
    /// Namespace, filter, and the time window of the data to check.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Baseline bundle: a directory, or a .tar (or .tar.gz) of one (repeatable).
    #[arg(
        long = "baseline",
        value_name = "BUNDLE",
        conflicts_with = "baseline_policy"
    )]
    pub baseline: Vec<PathBuf>,
    /// Baseline window start (RFC 3339 or a duration before now); without --baseline, over
    /// the same data.
    #[arg(long, value_name = "TIME", conflicts_with = "baseline_policy")]
    pub baseline_since: Option<String>,
    /// Baseline window end (RFC 3339 or a duration before now).
    #[arg(long, value_name = "TIME", conflicts_with = "baseline_policy")]
    pub baseline_until: Option<String>,
    /// Policy files or directories as the baseline (repeatable): behaviour they would not
    /// allow (audited or blocked under a block default posture) is new.
    #[arg(long = "baseline-policy", value_name = "FILE|DIR")]
    pub baseline_policy: Vec<PathBuf>,
    /// Only these kinds of change (comma-separated).
    #[arg(long, value_enum, value_name = "KINDS", value_delimiter = ',')]
    pub only: Vec<ChangeKindArg>,
    /// Mark a volume change from this factor of events per hour on.
    #[arg(long, value_name = "X", default_value_t = 10.0)]
    pub volume_factor: f64,
    /// Directory collapse threshold, as recommend's.
    #[arg(long, value_name = "N|/DIR/=N", value_delimiter = ',')]
    pub dir_threshold: Vec<String>,
    /// Write, per workload with new behaviour, the rules to add to its draft (one
    /// KubeArmorPolicy YAML per workload) into this directory.
    #[arg(long, value_name = "DIR")]
    pub as_policy_delta: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Data source (the data checked against the baseline).
    #[command(flatten)]
    pub data: DataArgs,
}

/// `pull`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor pull
  kubectl karmor pull --since 24h -n shop -n payments
  kubectl karmor pull --context prod -o ./prod-bundle --output json
  kubectl karmor pull --endpoint 10.0.0.5:7946 --endpoint edge-2.lan:7946

Finds the collector pods (--collector-namespace, --selector), port-forwards to each through the
API server (RBAC: list pods, create pods/portforward), fetches only the segments the bundle does
not have yet (resuming cut transfers, checking every chunk's CRC-32 and each file's sha256),
and merges the bundle into the local store that observe, recommend and simulate read. A node
that cannot be reached is reported and the others still land. Exits 1 when any node or
segment failed.")]
pub struct PullArgs {
    /// Only segments with behaviour seen within this duration before now: 30s, 15m, 6h, 5d.
    #[arg(short = 't', long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only segments holding rows of these namespaces (repeatable or comma-separated; whole
    /// segments are fetched). Default: every namespace and the hosts.
    #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Every namespace and the hosts (the default).
    #[arg(short = 'A', long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Namespace of the collector pods.
    #[arg(long, value_name = "NS", default_value = kubectl_karmor::cluster::discover::DEFAULT_NAMESPACE)]
    pub collector_namespace: String,
    /// Label selector of the collector pods.
    #[arg(short = 'l', long, default_value = kubectl_karmor::cluster::discover::DEFAULT_SELECTOR)]
    pub selector: String,
    /// The collectors' gRPC port (default: the container port named grpc, else 7946).
    #[arg(long)]
    pub port: Option<u16>,
    /// The bundle directory to pull into (default: the cache bundle next to the cache store).
    #[arg(short = 'o', long = "output-bundle", value_name = "BUNDLE")]
    pub output_bundle: Option<PathBuf>,
    /// Pull straight from a collector at HOST:PORT, without Kubernetes (repeatable).
    #[arg(long = "endpoint", value_name = "HOST:PORT")]
    pub endpoints: Vec<String>,
    /// The DuckDB store to merge the bundle into (default: the cache store).
    #[arg(long, value_name = "FILE", env = "KARMOR_STORE")]
    pub store: Option<PathBuf>,
    /// Only write the bundle; do not merge it into a store.
    #[arg(long)]
    pub no_merge: bool,
    /// Collectors pulled at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Path to the kubeconfig file.
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Output format of the per-node report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `archive`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor archive --to s3://audit-archive/karmor
  kubectl karmor archive --to s3://audit-archive/karmor --older-than 24h
  kubectl karmor archive --to s3://audit-archive/karmor ./prod-bundle --cluster prod
  AWS_ENDPOINT_URL=http://minio.lan:9000 kubectl karmor archive --to s3://karmor/fleet

Uploads the bundle's listed files to PREFIX/cluster=<name>/ at their bundle paths (the Hive
layout node=/date=/hour=, named by content), then merges them into that cluster's
manifest.json. Files the archive already holds are not sent again, so a second run sends
nothing; large files go in parts, and a cut upload continues where it stopped. Each file's
sha256 is checked before it is sent and recorded in the manifest; readers
(--bundle s3://...) check it again. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
(/AWS_SESSION_TOKEN), else the AWS_PROFILE (or default) profile of ~/.aws/credentials; the
region from AWS_REGION or the profile; AWS_ENDPOINT_URL for S3-compatible stores. Exits 1
when any file could not be archived (the others are).")]
pub struct ArchiveArgs {
    /// The archive: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub to: String,
    /// The bundle to archive: a directory or a .tar (or .tar.gz) of one, or `cache` (the
    /// bundle `pull` fills).
    #[arg(default_value = "cache", value_name = "BUNDLE|cache")]
    pub source: String,
    /// The cluster to archive the bundle under (default: the one its manifest names).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Only files whose behaviour all ended at least this long ago: 24h, 7d.
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Files sent at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Files of at least this many bytes go in parts of this size (S3 wants 5 MiB or more).
    #[arg(long, value_name = "BYTES", default_value_t = karmor_archive::multipart::DEFAULT_PART_SIZE, hide = true)]
    pub part_size: u64,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}
