//! Leader election through a `coordination.k8s.io/v1` Lease, compatible with client-go's
//! `resourcelock.LeaseLock`: read the Lease, and take or renew it with an update carrying
//! the read `resourceVersion` (a conflict means someone else won the round). Expiry is
//! judged by when this process last saw the record change, as client-go does, so clocks of
//! different machines need not agree.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// client-go's defaults for kube-controller-manager.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The last record seen and when it was first seen (local clock).
    observed: Option<(LeaseSpec, Instant)>,
}

impl LeaseLock {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            observed: None,
        }
    }

    /// One round of acquire-or-renew. `Ok(true)`: this process holds the lease.
    pub async fn try_acquire_or_renew(&mut self) -> anyhow::Result<bool> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let secs = LEASE_DURATION.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(l) => {
                    self.observe(l.spec.unwrap_or_default());
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(spec.clone());
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() {
            let duration = spec
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(1) as u64))
                .unwrap_or(LEASE_DURATION);
            let seen = self.observed.as_ref().map(|(_, t)| *t).unwrap();
            if seen.elapsed() < duration {
                return Ok(false);
            }
        }
        let mut new = spec.clone();
        new.holder_identity = Some(self.identity.clone());
        new.lease_duration_seconds = Some(secs);
        new.renew_time = Some(now.clone());
        if !ours {
            new.acquire_time = Some(now);
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                self.observe(l.spec.unwrap_or_default());
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up if this process holds it (client-go's `ReleaseOnCancel`), so a
    /// successor need not wait for it to expire.
    pub async fn release(&mut self) -> anyhow::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        lease.spec = Some(spec);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    fn observe(&mut self, spec: LeaseSpec) {
        match &self.observed {
            Some((old, _)) if *old == spec => {}
            _ => self.observed = Some((spec, Instant::now())),
        }
    }
}

/// Runs `work` while this process holds the Lease `namespace/name`; when leadership is lost
/// (no successful renewal within [`RENEW_DEADLINE`]), `work` is dropped and the election
/// starts again. When `shutdown` completes, `work` is dropped and the lease released.
pub async fn run_while_leader<F, Fut>(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    work: F,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut lock = LeaseLock::new(client, namespace, name, identity);
    let elect = elect(&mut lock, namespace, name, identity, work);
    tokio::select! {
        r = elect => return r,
        _ = shutdown => {}
    }
    if let Err(e) = lock.release().await {
        tracing::debug!("releasing {namespace}/{name}: {e:#}");
    }
    Ok(())
}

async fn elect<F, Fut>(
    lock: &mut LeaseLock,
    namespace: &str,
    name: &str,
    identity: &str,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    loop {
        loop {
            match lock.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::debug!("leader election {namespace}/{name}: {e:#}"),
            }
            tokio::time::sleep(RETRY_PERIOD).await;
        }
        tracing::info!("became leader of {namespace}/{name} as {identity}");
        let renew = async {
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(RETRY_PERIOD).await;
                match lock.try_acquire_or_renew().await {
                    Ok(true) => last_ok = Instant::now(),
                    Ok(false) => return,
                    Err(e) => tracing::debug!("renewing {namespace}/{name}: {e:#}"),
                }
                if last_ok.elapsed() > RENEW_DEADLINE {
                    return;
                }
            }
        };
        tokio::select! {
            r = work() => return r,
            _ = renew => tracing::warn!("lost the lease {namespace}/{name}; stopping until it is won again"),
        }
    }
}
