//! Skiff's scheduler: assigns pending pods to nodes the way kube-scheduler's default
//! profile does — a priority queue with backoff and an unschedulable set, a cache of nodes
//! and pods fed by watches (with assumed pods), upstream's default filter and score plugins
//! and weights, DefaultPreemption, and asynchronous binding through `pods/binding`.
//!
//! This crate owns scheduling decisions and nothing else. It is an ordinary API client
//! (kube-rs over HTTPS with its own client certificate): it must never touch the store or
//! depend on the apiserver crate (DESIGN §1.2), and it never lists pods per decision — all
//! it knows comes from its watches.

pub mod binder;
pub mod cache;
pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod schedule;
pub mod selectors;
mod watch;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::Client;

pub use skiff_client::config_from_kubeconfig;
use skiff_client::leader;

/// The identity the scheduler authenticates as (its client certificate's CN).
pub const USER_NAME: &str = "system:kube-scheduler";
/// Pods whose `spec.schedulerName` is this are ours by default.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Clone, Debug)]
pub struct Options {
    /// Only pods with this `spec.schedulerName` are scheduled.
    pub scheduler_name: String,
    /// This process's identity in the leader-election Lease.
    pub identity: String,
    /// percentageOfNodesToScore; `None` for upstream's adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
}

impl Options {
    pub fn new(identity: &str) -> Options {
        Options {
            scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
            identity: identity.into(),
            percentage_of_nodes_to_score: None,
            bind_concurrency: 256,
        }
    }
}

/// State shared by the watches, the scheduling loop and the binding tasks. Lock order:
/// `cache` before `pdbs`; the queue has its own lock and is never held across others.
pub struct Shared {
    pub cache: Mutex<cache::Cache>,
    pub queue: Arc<queue::SchedulingQueue>,
    pub pdbs: Mutex<Vec<preemption::Pdb>>,
    pub priorities: Mutex<watch::Priorities>,
    /// Namespace labels, for affinity terms' namespaceSelectors.
    pub namespaces: framework::NamespaceLabels,
    pub opts: Options,
    pub stats: Stats,
}

/// Counters for the periodic progress line.
#[derive(Default)]
pub struct Stats {
    pub assumed: AtomicU64,
    pub unschedulable: AtomicU64,
    pub bound: AtomicU64,
    pub bind_errors: AtomicU64,
}

/// Logs what the scheduler did in the last interval, when it did anything.
async fn report_progress(shared: Arc<Shared>) {
    let every = Duration::from_secs(10);
    let mut last = (0, 0, 0, 0);
    loop {
        tokio::time::sleep(every).await;
        let s = &shared.stats;
        let now = (
            s.assumed.load(Ordering::Relaxed),
            s.unschedulable.load(Ordering::Relaxed),
            s.bound.load(Ordering::Relaxed),
            s.bind_errors.load(Ordering::Relaxed),
        );
        if now != last {
            tracing::info!(
                "scheduler: in the last {}s {} pods placed, {} bound ({} binding errors), {} attempts unschedulable; {} pods queued",
                every.as_secs(),
                now.0 - last.0,
                now.2 - last.2,
                now.3 - last.3,
                now.1 - last.1,
                shared.queue.len()
            );
            last = now;
        }
    }
}

/// Runs the scheduler until `shutdown` completes, scheduling only while this process holds
/// the `kube-system/kube-scheduler` Lease.
pub async fn run(
    config: kube::Config,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let config = skiff_client::identify(config, "kube-scheduler");
    let client = Client::try_from(config).context("building the API client")?;
    let identity = opts.identity.clone();
    leader::run_while_leader(
        client.clone(),
        "kube-system",
        "kube-scheduler",
        &identity,
        || run_scheduler(client.clone(), opts.clone()),
        shutdown,
    )
    .await
}

async fn run_scheduler(client: Client, opts: Options) -> anyhow::Result<()> {
    tracing::info!("scheduler: starting as {}", opts.scheduler_name);
    let shared = Arc::new(Shared {
        cache: Mutex::new(cache::Cache::default()),
        queue: queue::SchedulingQueue::new(),
        pdbs: Mutex::new(Vec::new()),
        priorities: Mutex::new(watch::Priorities::default()),
        namespaces: framework::NamespaceLabels::default(),
        opts: opts.clone(),
        stats: Stats::default(),
    });
    let binder = binder::Binder::new(client.clone(), &opts.scheduler_name, opts.bind_concurrency);
    let flush = {
        let queue = shared.queue.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                queue.flush(Instant::now());
            }
        }
    };
    tokio::join!(
        watch::run(client, shared.clone()),
        flush,
        report_progress(shared.clone()),
        scheduling_loop(shared, binder),
    );
    Ok(())
}

/// The scheduling cycle: one pod at a time against the cache; binding and reporting are
/// handed to tasks.
async fn scheduling_loop(shared: Arc<Shared>, binder: Arc<binder::Binder>) {
    let mut rng = schedule::Rng::new();
    let pct = shared.opts.percentage_of_nodes_to_score;
    let mut since_yield = 0u32;
    loop {
        let qp = shared.queue.pop().await;
        let pod = qp.info.clone();
        let outcome = {
            let mut cache = shared.cache.lock().unwrap();
            if cache.has_pod(&pod.key) {
                // Bound (or assumed) meanwhile: nothing to do.
                drop(cache);
                shared.queue.done(&pod.key);
                continue;
            }
            match schedule::schedule(&mut cache, &pod, pct, &mut rng) {
                Ok(node) => {
                    cache.assume(pod.clone(), &node);
                    Ok(node)
                }
                Err(schedule::Error::NoNodes) => Err((schedule::NO_NODES_MSG.to_string(), 0, None)),
                Err(schedule::Error::Unfit(f)) => {
                    let pdbs = shared.pdbs.lock().unwrap().clone();
                    match preemption::preempt(&cache, &pod, &f, &pdbs) {
                        Ok(c) => {
                            cache.set_nominated(pod.clone(), &c.node);
                            Err((f.message(None), f.rejected_by(), Some(c)))
                        }
                        Err(post) => Err((f.message(Some(&post)), f.rejected_by(), None)),
                    }
                }
            }
        };
        match outcome {
            Ok(node) => {
                shared.stats.assumed.fetch_add(1, Ordering::Relaxed);
                shared.queue.done(&pod.key);
                binder.spawn_bind(shared.clone(), pod, node, qp.attempts);
            }
            Err((msg, rejected_by, preemption)) => {
                tracing::debug!("{}: {msg}", pod.key);
                shared.stats.unschedulable.fetch_add(1, Ordering::Relaxed);
                if shared.queue.failed(&qp, rejected_by) {
                    binder.spawn_failure(pod, msg, preemption);
                }
            }
        }
        since_yield += 1;
        if since_yield >= 16 {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}
