//! `skiff server`: the control plane process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use skiff_apiserver::{ApiServer, ShutdownTimings};
use skiff_store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Datastore {
    Sqlite,
    Etcd,
    /// In memory, nothing persisted: for tests and experiments.
    Memory,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Directory for the database, certificates and admin.kubeconfig.
    #[arg(long, default_value = "/var/lib/skiff")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port for the API.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Where objects are stored.
    #[arg(long, value_enum, default_value_t = Datastore::Sqlite)]
    pub datastore: Datastore,
    /// etcd endpoints (with --datastore etcd), comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// CA bundle to verify etcd's serving certificate.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key for etcd.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Extra names or IPs for the serving certificate.
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_sans: Vec<String>,
    /// After SIGTERM, keep serving (while /readyz fails) this long, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub shutdown_delay: f64,
    /// Then wait at most this long, in seconds, for in-flight requests.
    #[arg(long, default_value_t = 60.0)]
    pub shutdown_timeout: f64,
    /// The IPv4 range pod IPs come from; every node gets a subnet of it as `spec.podCIDR`.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The prefix length of each node's pod subnet.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Do not assign pod CIDRs to nodes (when something else does).
    #[arg(long)]
    pub no_allocate_node_cidrs: bool,
    /// Which controllers run, as kube-controller-manager's flag: `*` for all, `-name` to
    /// turn one off (for example `--controllers '*,-nodelifecycle'`).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// How long a node may miss heartbeats before it is marked unreachable, in seconds.
    #[arg(long, default_value_t = 40.0)]
    pub node_monitor_grace_period: f64,
    /// Finished pods kept before the oldest are deleted (0: keep all).
    #[arg(long, default_value_t = skiff_controllers::podgc::DEFAULT_THRESHOLD)]
    pub terminated_pod_gc_threshold: usize,
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(args))
}

async fn open_store(args: &ServerArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match args.datastore {
        Datastore::Memory => Arc::new(skiff_store::memory::MemoryStore::new()),
        Datastore::Sqlite => {
            let dir = args.data_dir.join("db");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("state.db");
            let store = skiff_store::sqlite::SqliteStore::open(&path)
                .with_context(|| format!("opening the SQLite store {}", path.display()))?;
            Arc::new(store)
        }
        Datastore::Etcd => {
            if args.etcd_servers.is_empty() {
                bail!("--datastore etcd needs --etcd-servers (for example --etcd-servers https://127.0.0.1:2379)");
            }
            let mut opts = skiff_store::etcd::EtcdOptions::new(args.etcd_servers.clone());
            let tls_given = args.etcd_cafile.is_some() || args.etcd_certfile.is_some();
            if tls_given || args.etcd_servers.iter().any(|s| s.starts_with("https://")) {
                opts = opts.with_tls(skiff_store::etcd::EtcdTls {
                    ca_file: args.etcd_cafile.clone(),
                    cert_file: args.etcd_certfile.clone(),
                    key_file: args.etcd_keyfile.clone(),
                    server_name: None,
                });
            }
            let store = skiff_store::etcd::EtcdStore::connect(opts)
                .await
                .with_context(|| {
                    format!("connecting to etcd at {}", args.etcd_servers.join(","))
                })?;
            Arc::new(store)
        }
    })
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cluster_cidr = if args.no_allocate_node_cidrs {
        None
    } else {
        let range = skiff_controllers::nodeipam::ClusterCidr::parse(
            &args.cluster_cidr,
            args.node_cidr_mask_size,
        )
        .map_err(|e| anyhow::anyhow!("--cluster-cidr/--node-cidr-mask-size: {e}"))?;
        Some(range)
    };
    let selection = skiff_controllers::Selection::parse(&args.controllers)
        .map_err(|e| anyhow::anyhow!("--controllers: {e}"))?;
    let controller_opts = ControllerOpts {
        cluster_cidr,
        selection,
        node_monitor_grace: Duration::from_secs_f64(args.node_monitor_grace_period.max(1.0)),
        terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let pki_opts = skiff_pki::PkiOptions {
        bind_address: Some(args.bind_address).filter(|a| !a.is_unspecified()),
        extra_sans: args.tls_sans.clone(),
        ..Default::default()
    };
    let pki = skiff_pki::Pki::load_or_init(&args.data_dir, &pki_opts)
        .context("loading or creating the cluster certificates")?;
    let tls = Arc::new(pki.server_tls().context("building the TLS configuration")?);

    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    let client_host = if args.bind_address.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        args.bind_address
    };
    let client_addr = SocketAddr::new(client_host, local.port());
    let url = format!("https://{client_addr}");
    let kubeconfig = pki
        .write_admin_kubeconfig(&args.data_dir, &url)
        .context("writing admin.kubeconfig")?;

    let store = open_store(&args).await?;
    let srv = ApiServer::new(store, client_addr.to_string());
    let timings = ShutdownTimings {
        delay: Duration::from_secs_f64(args.shutdown_delay.max(0.0)),
        timeout: Duration::from_secs_f64(args.shutdown_timeout.max(0.0)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let serving = tokio::spawn(skiff_apiserver::serve::run(
        srv.clone(),
        listener,
        tls.clone(),
        timings,
        stopping(),
    ));
    srv.bootstrap()
        .await
        .map_err(|s| anyhow::anyhow!("bootstrapping the cluster objects: {s}"))?;
    let controllers = start_controllers(&pki, &url, controller_opts, stopping()).await?;
    let scheduler = start_scheduler(&pki, &url, stopping()).await?;
    tracing::info!(
        "ready in {:.0?}: serving the Kubernetes API on {url}; kubectl --kubeconfig {}",
        started.elapsed(),
        kubeconfig.display()
    );
    serving.await.context("the server task failed")?;
    controllers.abort();
    scheduler.abort();
    tracing::info!("shut down cleanly");
    Ok(())
}

/// The controller manager's settings that come from flags.
struct ControllerOpts {
    cluster_cidr: Option<skiff_controllers::nodeipam::ClusterCidr>,
    selection: skiff_controllers::Selection,
    node_monitor_grace: Duration,
    terminated_pod_gc_threshold: usize,
}

/// Starts the controller manager in this process, as an API client over HTTPS with its own
/// client certificate (DESIGN §1.2).
async fn start_controllers(
    pki: &skiff_pki::Pki,
    url: &str,
    wanted: ControllerOpts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let user = skiff_controllers::USER_NAME;
    // There is no RBAC yet: system:masters is the only group the API server authorizes, so
    // the controller manager is in it for now. With RBAC it gets its own ClusterRoles.
    let (cert, key) = pki
        .issue_client_cert(user, &["system:masters"], skiff_pki::LEAF_VALIDITY)
        .context("issuing the controller manager's client certificate")?;
    let kubeconfig =
        skiff_pki::kubeconfig::render(url, pki.ca_cert_pem(), &cert, &key, user, "skiff");
    let config = skiff_controllers::config_from_kubeconfig(&kubeconfig).await?;
    let opts = skiff_controllers::Options {
        root_ca_pem: pki.ca_cert_pem().to_string(),
        identity: leader_identity(),
        cluster_cidr: wanted.cluster_cidr,
        node_monitor_grace: wanted.node_monitor_grace,
        terminated_pod_gc_threshold: wanted.terminated_pod_gc_threshold,
        selection: wanted.selection,
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = skiff_controllers::run(config, opts, shutdown).await {
            tracing::error!("controller manager stopped: {e:#}");
        }
    }))
}

/// Starts the scheduler in this process, as an API client over HTTPS with its own client
/// certificate (DESIGN §1.2), electing a leader through the `kube-system/kube-scheduler`
/// Lease.
async fn start_scheduler(
    pki: &skiff_pki::Pki,
    url: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let user = skiff_scheduler::USER_NAME;
    // No RBAC yet: system:masters, as for the controller manager.
    let (cert, key) = pki
        .issue_client_cert(user, &["system:masters"], skiff_pki::LEAF_VALIDITY)
        .context("issuing the scheduler's client certificate")?;
    let kubeconfig =
        skiff_pki::kubeconfig::render(url, pki.ca_cert_pem(), &cert, &key, user, "skiff");
    let config = skiff_scheduler::config_from_kubeconfig(&kubeconfig).await?;
    let opts = skiff_scheduler::Options::new(&leader_identity());
    Ok(tokio::spawn(async move {
        if let Err(e) = skiff_scheduler::run(config, opts, shutdown).await {
            tracing::error!("scheduler stopped: {e:#}");
        }
    }))
}

/// `<hostname>_<random>`, like client-go's leader-election identities.
fn leader_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "skiff".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{:08x}{:08x}", std::process::id(), nanos)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
