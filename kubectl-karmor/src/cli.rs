//! Command-line surface (design §6), following kubectl's conventions.

use std::path::PathBuf;

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
    /// Analyse this bundle directory offline (repeatable).
    #[arg(long = "bundle", value_name = "PATH")]
    pub bundles: Vec<PathBuf>,
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
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `observe`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  kubectl karmor observe pods -n wordpress-mysql --bundle testdata/demo
  kubectl karmor observe deployment wordpress -n wordpress-mysql -o file --bundle testdata/demo
  kubectl karmor observe pods -A -f 'user=root||(process=/bin/*&&path=/etc/*)' --bundle testdata/demo
  kubectl karmor observe nodes -D --output wide --bundle testdata/demo")]
pub struct ObserveArgs {
    /// namespace(s) | deployment(s) | workload(s) | pod(s) | container(s) | node(s)
    #[arg(default_value = "pods")]
    pub resource: String,
    /// Only this resource.
    pub name: Option<String>,
    /// Namespace (default: "default" for namespaced resources).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces, and host behaviour.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only this container name.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Operations to show: process, file, network (repeatable or comma-separated).
    #[arg(short = 'o', long = "operation", value_delimiter = ',')]
    pub operations: Vec<String>,
    /// Only behaviour seen within this duration before now: 30s, 15m, 6h, 5d, 2w, 3M, 1Y.
    #[arg(short = 't', long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Filter: key=value;key=value, with &&, ||, parentheses, != and globs (* ?).
    #[arg(short = 'f', long)]
    pub filter: Option<String>,
    /// Describe each resource (header, then its data), as kubectl describe does.
    #[arg(short = 'D', long)]
    pub describe: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Data source.
    #[command(flatten)]
    pub data: DataArgs,
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
        /// The bundle directory.
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Check every segment against the manifest (size, sha256, footer, schema, rows).
    Verify {
        /// The bundle directory.
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
