//! `karmor-collector`: records what each container on this node does (processes, files,
//! network) with eBPF and writes it as node-local Parquet segments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use karmor_archive::ArchiveUrl;
use karmor_collector::archiver::{parse_after, ArchiveConfig};
use karmor_collector::attribution::{
    NoPods, PodLookup, RuntimeRoots, RuntimeState, WithRuntimeState,
};
use karmor_collector::datadir::Retention;
use karmor_collector::kube_pods::{self, KubePods};
use karmor_collector::kube_services::KubeServices;
use karmor_collector::kubearmor_source::{run_source, KubeArmorSourceConfig, KubeArmorStats};
use karmor_collector::metrics::Counters;
use karmor_collector::probes::{built_with_probes, Sensor};
use karmor_collector::run::{run_with_feeds, CollectorConfig, SensorSource};
use karmor_collector::service::{serve_listener, CollectorService, ServiceConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// Our own eBPF sensors.
    Ebpf,
    /// The node's KubeArmor daemon (LogService: WatchLogs "system", WatchAlerts "policy").
    Kubearmor,
    /// Both the eBPF sensors and KubeArmor.
    Both,
    /// A synthetic load (benchmarks, crash tests); no kernel access needed.
    Synthetic,
    /// Empty eBPF programs on the hooks the sensors use (benchmarks: the kernel's floor under
    /// the probes' cost); records nothing.
    EmptyProbes,
}

/// Records, per container, the processes executed, files accessed and network connections
/// made, and keeps them as Parquet segments that `kubectl karmor` reads.
#[derive(Debug, Parser)]
#[command(name = "karmor-collector", version, about)]
struct Args {
    /// Node name stamped on every row (set it from the downward API: spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Cluster name stamped on every row.
    #[arg(long, env = "KARMOR_CLUSTER")]
    cluster: Option<String>,
    /// Data directory: a live bundle (manifest.json + node=/date=/hour= Parquet tree).
    #[arg(long, env = "KARMOR_DATA_DIR", default_value = "/var/lib/karmor")]
    data_dir: PathBuf,
    /// Keep at most this many bytes of segments (oldest removed first); 0 for no limit.
    #[arg(long, env = "KARMOR_MAX_BYTES", default_value_t = 1 << 30)]
    max_bytes: u64,
    /// Remove segments older than this many hours; 0 to keep them.
    #[arg(long, env = "KARMOR_MAX_AGE_HOURS", default_value_t = 168)]
    max_age_hours: u64,
    /// Archive aged files to S3-compatible object storage: s3://BUCKET/PREFIX (the bundle
    /// layout under cluster=<--cluster>/). Retention then deletes a file only once the archive
    /// holds it, unless --max-bytes forces it (counted as a loss in Health and /metrics).
    /// Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL.
    #[arg(long, env = "KARMOR_ARCHIVE_TO", value_name = "s3://BUCKET/PREFIX")]
    archive_to: Option<String>,
    /// Archive files whose behaviour ended this long ago (s, m, h, d): day files, with the
    /// default, once their day is compacted.
    #[arg(long, env = "KARMOR_ARCHIVE_AFTER", default_value = "24h")]
    archive_after: String,
    /// Seconds between two archive passes.
    #[arg(long, env = "KARMOR_ARCHIVE_INTERVAL_SECONDS", default_value_t = 300)]
    archive_interval_seconds: u64,
    /// Flush the de-duplication window into a segment every this many seconds.
    #[arg(long, env = "KARMOR_ROTATE_SECONDS", default_value_t = 60.0)]
    rotate_seconds: f64,
    /// … or as soon as it holds this many distinct rows …
    #[arg(long, env = "KARMOR_ROTATE_ROWS", default_value_t = 200_000)]
    rotate_rows: usize,
    /// … or as soon as its rows would take more than this many MiB of memory. This bounds the
    /// collector's memory (with 12, a peak of 43 MiB at 200k events/s over 500 containers).
    #[arg(long, env = "KARMOR_WINDOW_MIB", default_value_t = 12)]
    window_mib: usize,
    /// Compact each closed hour's segments into one hour file (once the hour has closed plus
    /// one rotation window); `--compact=false` keeps every segment as written.
    #[arg(long, env = "KARMOR_COMPACT", value_parser = BoolishValueParser::new(),
          action = ArgAction::Set, num_args = 0..=1, default_value = "true",
          default_missing_value = "true")]
    compact: bool,
    /// … and each closed day's hour files into one day file (`--compact-days=false`: hour
    /// files stay).
    #[arg(long, env = "KARMOR_COMPACT_DAYS", value_parser = BoolishValueParser::new(),
          action = ArgAction::Set, num_args = 0..=1, default_value = "true",
          default_missing_value = "true")]
    compact_days: bool,
    /// Do not record exec arguments (they may hold secrets).
    #[arg(long, env = "KARMOR_NO_ARGS")]
    no_args: bool,
    /// Do not count system calls per container and executable (`op = syscall` rows; the
    /// `raw_syscalls:sys_enter` probe, which runs on every system call).
    #[arg(long, env = "KARMOR_NO_SYSCALLS")]
    no_syscalls: bool,
    /// Do not count capability checks per container and executable (`op = capability` rows;
    /// the `capability:cap_capable` probe).
    #[arg(long, env = "KARMOR_NO_CAPABILITIES")]
    no_capabilities: bool,
    /// Attach only these sensors' probes (comma-separated: files, exec, network, syscalls,
    /// capabilities); every sensor's by default. With `--source empty-probes`, it measures
    /// the floor of one sensor's hooks alone.
    #[arg(long, env = "KARMOR_SENSORS", value_delimiter = ',')]
    sensors: Vec<String>,
    /// Run without Kubernetes: host processes as host, containers named from their runtime's
    /// state (see --docker-root). Otherwise pods are attributed through a watch of this node's
    /// pods (in-cluster service account, or KUBECONFIG), which needs get/list/watch on pods,
    /// replicasets and jobs, and a watch of Services (list/watch on services) whose cluster
    /// IPs join the pods table; containers no pod holds are still named from their runtime's
    /// state.
    #[arg(long, env = "KARMOR_NO_KUBE")]
    no_kube: bool,
    /// Docker's data root: containers no pod holds are named from
    /// `<root>/containers/<id>/config.v2.json` (read-only; never Docker's socket). Empty: not read.
    #[arg(long, env = "KARMOR_DOCKER_ROOT", default_value = "/var/lib/docker")]
    docker_root: String,
    /// containerd's state directory: containers are named from their task bundle's OCI spec,
    /// `<dir>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`. Empty: not read.
    #[arg(
        long,
        env = "KARMOR_CONTAINERD_STATE",
        default_value = "/run/containerd"
    )]
    containerd_state: String,
    /// Podman's / CRI-O's container storage: `<dir>/overlay-containers/containers.json` and
    /// `<dir>/overlay-containers/<id>/userdata/config.json`. Empty: not read.
    #[arg(
        long,
        env = "KARMOR_CONTAINERS_STORAGE",
        default_value = "/var/lib/containers/storage"
    )]
    containers_storage: String,
    /// Where events come from.
    #[arg(long, value_enum, env = "KARMOR_SOURCE", default_value_t = Source::Ebpf)]
    source: Source,
    /// Synthetic source: events per second (0: as fast as possible).
    #[arg(long, default_value_t = 100_000)]
    synthetic_rate: u64,
    /// Synthetic source: number of containers.
    #[arg(long, default_value_t = 50)]
    synthetic_containers: u32,
    /// Serve Prometheus metrics on this address.
    #[arg(long, env = "KARMOR_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Do not serve metrics.
    #[arg(long)]
    no_metrics: bool,
    /// Serve the collector's gRPC service (list, fetch, follow, health) here. Keep it on
    /// loopback in Kubernetes: `kubectl karmor pull` reaches it through a port-forward, so
    /// RBAC on pods/portforward is the access control. Another address only on plain hosts.
    #[arg(long, env = "KARMOR_LISTEN", default_value = "127.0.0.1:7946")]
    listen: SocketAddr,
    /// Do not serve the gRPC service.
    #[arg(long)]
    no_listen: bool,
    /// KubeArmor's gRPC address (sources kubearmor and both).
    #[arg(long, env = "KARMOR_KUBEARMOR_ADDR", default_value = "localhost:32767")]
    kubearmor_addr: String,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let node = match &args.node_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .context("no --node-name/NODE_NAME and the hostname is unreadable")?,
    };
    if matches!(
        args.source,
        Source::Ebpf | Source::Both | Source::EmptyProbes
    ) && !built_with_probes()
    {
        bail!("this karmor-collector was built without eBPF probes (clang, bpftool and kernel BTF are needed at build time); use --source synthetic or rebuild");
    }
    let only_sensors = args
        .sensors
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            Sensor::from_name(s).with_context(|| {
                let names: Vec<&str> = Sensor::ALL.iter().map(|s| s.name()).collect();
                format!("--sensors: no sensor {s:?} (sensors: {})", names.join(", "))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !args.rotate_seconds.is_finite() || args.rotate_seconds <= 0.0 {
        bail!("--rotate-seconds must be positive");
    }
    let archive = match args.archive_to.as_deref().filter(|t| !t.is_empty()) {
        Some(to) => Some(ArchiveConfig {
            url: ArchiveUrl::parse(to).context("--archive-to")?,
            after: parse_after(&args.archive_after)
                .map_err(|e| anyhow::anyhow!("--archive-after {e}"))?,
            tick: Duration::from_secs(args.archive_interval_seconds.max(1)),
            cluster: args.cluster.clone().unwrap_or_else(|| "default".into()),
        }),
        None => None,
    };
    let cfg = CollectorConfig {
        node,
        cluster: args.cluster.clone(),
        data_dir: args.data_dir.clone(),
        retention: Retention {
            max_bytes: args.max_bytes,
            max_age: (args.max_age_hours > 0)
                .then(|| Duration::from_secs(args.max_age_hours * 3600)),
        },
        rotate_interval: Duration::from_secs_f64(args.rotate_seconds),
        rotate_rows: args.rotate_rows.max(1),
        window_bytes: args.window_mib.max(1) << 20,
        record_args: !args.no_args,
        syscalls: !args.no_syscalls,
        capabilities: !args.no_capabilities,
        only_sensors,
        source: match args.source {
            Source::Ebpf | Source::Both => SensorSource::Ebpf,
            Source::EmptyProbes => SensorSource::EmptyProbes,
            Source::Kubearmor => SensorSource::Feeds,
            Source::Synthetic => SensorSource::Synthetic {
                rate: args.synthetic_rate,
                containers: args.synthetic_containers,
            },
        },
        metrics_addr: (!args.no_metrics).then_some(args.metrics_addr),
        compaction: args.compact.then(|| {
            CollectorConfig::compaction_policy(
                Duration::from_secs_f64(args.rotate_seconds),
                args.compact_days,
            )
        }),
        archive,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // KubeArmor attributes its events itself: no pod watch for the kubearmor source alone.
    let pods: Arc<dyn PodLookup> = if args.no_kube || args.source == Source::Kubearmor {
        Arc::new(NoPods)
    } else {
        let client = rt.block_on(kube_pods::default_client()).context(
            "pod attribution through the Kubernetes API (use --no-kube to run without it)",
        )?;
        // Every Service's cluster IP, selector and ports join this node's pods table, and
        // the endpoints no pod holds (the API servers).
        let services = Arc::new(KubeServices::new());
        rt.spawn(services.clone().watch(client.clone(), cfg.node.clone()));
        rt.spawn(
            services
                .clone()
                .watch_slices(client.clone(), cfg.node.clone()),
        );
        let pods = Arc::new(KubePods::new(kube_pods::DEFAULT_GRACE).with_services(services));
        rt.spawn(pods.clone().watch(client, cfg.node.clone()));
        pods
    };
    let pods: Arc<dyn PodLookup> = if args.source == Source::Kubearmor {
        pods
    } else {
        let nonempty = |p: &String| (!p.is_empty()).then(|| PathBuf::from(p));
        let roots = RuntimeRoots {
            docker: nonempty(&args.docker_root),
            containerd: nonempty(&args.containerd_state),
            containers_storage: nonempty(&args.containers_storage),
        };
        for line in roots.describe() {
            log::info!("{line}");
        }
        Arc::new(WithRuntimeState::new(pods, RuntimeState::new(roots)))
    };
    let counters = Arc::new(Counters::default());
    let (feeds, kubearmor, stop_feeds) = start_kubearmor(&rt, &args);
    if let Some(stats) = &kubearmor {
        // Once, before anything reads the counters: `set` cannot fail here.
        let _ = counters.kubearmor.set(stats.clone());
    }
    if !args.no_listen {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(args.listen))
            .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
        let service = CollectorService::new(
            ServiceConfig {
                cluster: cfg.cluster.clone(),
                sources: source_names(args.source),
                ..ServiceConfig::new(&cfg.data_dir, &cfg.node)
            },
            counters.clone(),
            kubearmor,
        );
        log::info!("collector service on {}", args.listen);
        rt.spawn(async move {
            if let Err(e) = serve_listener(listener, service, std::future::pending()).await {
                log::error!("{e}");
            }
        });
    }
    log::info!(
        "karmor-collector {} on node {}: writing {}",
        env!("CARGO_PKG_VERSION"),
        cfg.node,
        cfg.data_dir.display()
    );
    let summary = rt.block_on(run_with_feeds(
        cfg,
        pods,
        counters,
        shutdown_signal(),
        feeds,
    ))?;
    let _ = stop_feeds.send(true);
    for (name, why) in &summary.failed {
        log::warn!("probe {name} not attached: {why}");
    }
    log::info!(
        "stopped: {} events seen, {} dropped, {} rows in {} segments",
        summary.events_seen,
        summary.events_dropped,
        summary.rows_written,
        summary.segments_written
    );
    Ok(())
}

fn source_names(source: Source) -> Vec<String> {
    let names: &[&str] = match source {
        Source::Ebpf => &["ebpf"],
        Source::Kubearmor => &["kubearmor"],
        Source::Both => &["ebpf", "kubearmor"],
        Source::Synthetic => &["synthetic"],
        Source::EmptyProbes => &["empty-probes"],
    };
    names.iter().map(|s| s.to_string()).collect()
}

type Feeds = Vec<tokio::sync::mpsc::Receiver<karmor_collector::kubearmor_source::FeedItem>>;

/// Starts the KubeArmor source when asked for: its feed, its counters, and its stop switch.
fn start_kubearmor(
    rt: &tokio::runtime::Runtime,
    args: &Args,
) -> (
    Feeds,
    Option<Arc<KubeArmorStats>>,
    tokio::sync::watch::Sender<bool>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if !matches!(args.source, Source::Kubearmor | Source::Both) {
        return (Vec::new(), None, stop);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let stats = Arc::new(KubeArmorStats::default());
    log::info!("KubeArmor source: {}", args.kubearmor_addr);
    rt.spawn(run_source(
        KubeArmorSourceConfig::new(&args.kubearmor_addr),
        stats.clone(),
        tx,
        stopped,
    ));
    (vec![rx], Some(stats), stop)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
