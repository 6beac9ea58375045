//! The disruption controller: keeps every PodDisruptionBudget's status (`expectedPods`,
//! `currentHealthy`, `desiredHealthy`, `disruptionsAllowed`, `disruptedPods`,
//! `observedGeneration` and the `DisruptionAllowed` condition) in step with the pods it
//! selects, which is what the eviction subresource checks and spends.
//!
//! As upstream: with an integer `minAvailable` the expected count is the number of selected
//! pods; with a percentage or `maxUnavailable` it is the sum of the scales of the pods'
//! controllers (a ReplicaSet owned by a Deployment counts the Deployment's replicas).
//! Pods the eviction subresource recorded in `disruptedPods` count as unhealthy until they
//! are gone or two minutes have passed.

use skiff_client::shared::Shared;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

use skiff_client::events::Recorder;
use skiff_client::informer::cached;
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::is_ready;

/// How long an eviction recorded in `disruptedPods` is waited for (upstream: 2 minutes).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

type Key = (String, String);

pub async fn run(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<Key>::new();
    let (pdbs, pdb_watch) = {
        let queue = queue.clone();
        cached(
            "poddisruptionbudgets",
            Api::<PodDisruptionBudget>::all(client.clone()),
            watcher::Config::default(),
            move |ev| {
                if let Event::Apply(p) | Event::InitApply(p) = ev {
                    queue.add((p.namespace().unwrap_or_default(), p.name_any()))
                }
            },
        )
    };
    let (pods, pod_watch) = {
        let (queue, pdbs) = (queue.clone(), pdbs.clone());
        shared.cached::<Pod>(move |ev| {
            let pod = match ev {
                Event::Apply(p) | Event::Delete(p) => p,
                _ => return,
            };
            let ns = pod.namespace();
            for b in pdbs.state() {
                if b.namespace() == ns {
                    queue.add((b.namespace().unwrap_or_default(), b.name_any()));
                }
            }
        })
    };
    let recorder = Recorder::new(client.clone(), "controllermanager");
    let work = run_workers("disruption", queue, 2, move |(ns, name): Key| {
        let (client, pdbs, pods, recorder) =
            (client.clone(), pdbs.clone(), pods.clone(), recorder.clone());
        async move {
            let _ = tokio::join!(pdbs.wait_until_ready(), pods.wait_until_ready());
            let Some(pdb) = pdbs.get(&ObjectRef::new(&name).within(&ns)) else {
                return Ok(Next::Done);
            };
            sync(&client, &pods, &recorder, &pdb).await
        }
    });
    tokio::join!(pdb_watch, pod_watch, work);
    Ok(())
}

/// `value` of `total`: an integer, or a percentage rounded up (as upstream's
/// `GetScaledValueFromIntOrPercent(..., true)`).
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok(((pct * total as i64 + 99) / 100) as i32)
        }
    }
}

/// The replicas of the controller behind `owner` (its uid and scale), the way upstream's
/// disruption controller finds scales.
async fn controller_scale(
    client: &Client,
    ns: &str,
    owner: &OwnerReference,
) -> anyhow::Result<Option<(String, i32)>> {
    let group = owner.api_version.split('/').next().unwrap_or_default();
    match (owner.kind.as_str(), group) {
        ("ReplicaSet", "apps") => {
            let rs = Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get_opt(&owner.name)
                .await?;
            let Some(rs) = rs.filter(|r| r.uid().as_deref() == Some(&owner.uid)) else {
                return Ok(None);
            };
            let deploy_ref = rs
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true) && o.kind == "Deployment")
                .cloned();
            if let Some(d) = deploy_ref {
                let dep = Api::<Deployment>::namespaced(client.clone(), ns)
                    .get_opt(&d.name)
                    .await?;
                if let Some(dep) = dep.filter(|x| x.uid().as_deref() == Some(&d.uid)) {
                    let n = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    return Ok(Some((d.uid, n)));
                }
            }
            let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            Ok(Some((owner.uid.clone(), n)))
        }
        ("StatefulSet", "apps") => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get_opt(&owner.name)
                .await?;
            Ok(s.filter(|x| x.uid().as_deref() == Some(&owner.uid))
                .map(|x| {
                    (
                        owner.uid.clone(),
                        x.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )
                }))
        }
        ("ReplicationController", _) => {
            let s = Api::<ReplicationController>::namespaced(client.clone(), ns)
                .get_opt(&owner.name)
                .await?;
            Ok(s.filter(|x| x.uid().as_deref() == Some(&owner.uid))
                .map(|x| {
                    (
                        owner.uid.clone(),
                        x.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )
                }))
        }
        _ => Ok(None),
    }
}

/// (expected pods, desired healthy) for the budget over `pods`.
async fn expectations(
    client: &Client,
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
) -> Result<(i32, i32), String> {
    let ns = pdb.namespace().unwrap_or_default();
    let spec = pdb.spec.clone().unwrap_or_default();
    if let (Some(IntOrString::Int(min)), None) = (&spec.min_available, &spec.max_unavailable) {
        return Ok((pods.len() as i32, *min));
    }
    // Percentages and maxUnavailable need the controllers' scales.
    let mut scales: HashMap<String, i32> = HashMap::new();
    for p in pods {
        let Some(owner) = p
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
        else {
            return Err(format!(
                "found no controller ref for pod {:?}",
                p.name_any()
            ));
        };
        match controller_scale(client, &ns, owner).await {
            Ok(Some((uid, n))) => {
                scales.insert(uid, n);
            }
            Ok(None) => return Err(format!("found no controllers for pod {:?}", p.name_any())),
            Err(e) => return Err(e.to_string()),
        }
    }
    let expected: i32 = scales.values().sum();
    if let Some(max) = &spec.max_unavailable {
        let max = scaled(max, expected)?;
        return Ok((expected, (expected - max).max(0)));
    }
    if let Some(min) = &spec.min_available {
        return Ok((expected, scaled(min, expected)?));
    }
    Ok((expected, expected))
}

async fn sync(
    client: &Client,
    pods: &Store<Pod>,
    recorder: &Recorder,
    pdb: &PodDisruptionBudget,
) -> anyhow::Result<Next> {
    let ns = pdb.namespace().unwrap_or_default();
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    let selected: Vec<Arc<Pod>> =
        match skiff_client::selector::Selector::from_label_selector(selector) {
            Ok(sel) => pods
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(&ns))
                .filter(|p| sel.matches(Some(p.labels())))
                .collect(),
            Err(e) => {
                recorder.warning(pdb, "InvalidSelector", &e).await;
                Vec::new()
            }
        };
    let now = k8s_openapi::jiff::Timestamp::now();
    let old = pdb.status.clone().unwrap_or_default();
    // Evictions not yet seen through: pods still there, not being deleted, recorded lately.
    let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
    let mut recheck: Option<Duration> = None;
    for (name, when) in old.disrupted_pods.clone().unwrap_or_default() {
        let Some(p) = selected.iter().find(|p| p.name_any() == name) else {
            continue;
        };
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let age = now.duration_since(when.0);
        let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
        if age < DELETION_TIMEOUT {
            let left = DELETION_TIMEOUT - age;
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
            disrupted.insert(name, when);
        }
    }
    let healthy = selected
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .filter(|p| is_ready(p))
        .count() as i32;
    let (expected, desired, failure) = match expectations(client, pdb, &selected).await {
        Ok((e, d)) => (e, d, None),
        Err(why) => (0, 0, Some(why)),
    };
    let allowed = if failure.is_some() {
        0
    } else {
        (healthy - desired).max(0)
    };
    let (cstatus, reason, message) = match &failure {
        Some(why) => ("False", "SyncFailed", why.clone()),
        None if allowed > 0 => ("True", "SufficientPods", String::new()),
        None => ("False", "InsufficientPods", String::new()),
    };
    if let Some(why) = &failure {
        recorder
            .warning(
                pdb,
                "CalculateExpectedPodCountFailed",
                &format!("Failed to calculate the number of expected pods: {why}"),
            )
            .await;
    }
    let old_cond = old
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let transition = match old_cond {
        Some(c) if c.status == cstatus => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let generation = pdb.metadata.generation;
    let status = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: cstatus.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time: transition,
        }]),
    };
    let same = old.current_healthy == status.current_healthy
        && old.desired_healthy == status.desired_healthy
        && old.expected_pods == status.expected_pods
        && old.disruptions_allowed == status.disruptions_allowed
        && old.disrupted_pods.clone().unwrap_or_default()
            == status.disrupted_pods.clone().unwrap_or_default()
        && old.observed_generation == status.observed_generation
        && old
            .conditions
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| (&c.status, &c.reason))
            == status
                .conditions
                .as_ref()
                .and_then(|c| c.first())
                .map(|c| (&c.status, &c.reason));
    if !same {
        let mut updated = pdb.clone();
        updated.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
        match api
            .replace_status(&pdb.name_any(), &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Next::Retry),
            Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(Next::Done),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(match recheck {
        Some(d) => Next::After(d),
        None => Next::Done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::Int(2), 10), Ok(2));
        assert_eq!(scaled(&IntOrString::String("50%".into()), 5), Ok(3));
        assert_eq!(scaled(&IntOrString::String("10%".into()), 5), Ok(1));
        assert_eq!(scaled(&IntOrString::String("0%".into()), 5), Ok(0));
        assert!(scaled(&IntOrString::String("half".into()), 5).is_err());
    }
}
