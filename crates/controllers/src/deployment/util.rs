//! Pure Deployment logic (upstream's `pkg/controller/deployment/util`): template hashes,
//! surge/unavailability fenceposts, the replica arithmetic of rolling updates and
//! proportional scaling, revision and replica annotations, and conditions.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The label that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Upstream's `maxRevHistoryLengthInChars`.
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

// ---- the Deployment's numbers ----

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn is_recreate(d: &Deployment) -> bool {
    strategy_type(d) == "Recreate"
}

pub fn is_rolling(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// `progressDeadlineSeconds`, unless unset or MaxInt32 (no deadline).
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.revision_history_limit)
}

pub fn status(d: &Deployment) -> DeploymentStatus {
    d.status.clone().unwrap_or_default()
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

// ---- int-or-percent and fenceposts ----

/// `intstr.GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        None => Ok(0),
        Some(IntOrString::Int(i)) => Ok(*i),
        Some(IntOrString::String(s)) => {
            let pct = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = pct * i64::from(total);
            let v = if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable rounded down); both zero
/// would deadlock a rollout, so unavailability becomes 1.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let surge = scaled_value(max_surge, desired, true)?;
    let mut unavailable = scaled_value(max_unavailable, desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn rolling_params(d: &Deployment) -> (Option<&IntOrString>, Option<&IntOrString>) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    (
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
    )
}

/// `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(s, u, replicas(d))
        .map(|(s, _)| s)
        .unwrap_or(0)
}

/// `MaxUnavailable`: 0 unless rolling with replicas, never above `replicas`.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    let (s, u) = rolling_params(d);
    let (_, u) = resolve_fenceposts(s, u, replicas(d)).unwrap_or((0, 0));
    u.min(replicas(d))
}

// ---- rolling-update arithmetic ----

/// `NewRSNewReplicas` for a rolling update: how far the new ReplicaSet may grow, given
/// the sum of all ReplicaSets' `spec.replicas`.
pub fn new_rs_new_replicas(desired: i32, surge: i32, total: i32, new_rs: i32) -> i32 {
    let max_total = desired + surge;
    if total >= max_total {
        return new_rs;
    }
    let up = (max_total - total).min(desired - new_rs);
    new_rs + up.max(0)
}

/// How many old replicas may be scaled down now (`reconcileOldReplicaSets`' budget):
/// everything above `desired - maxUnavailable` that is not an unavailable new pod.
pub fn max_scaled_down(
    desired: i32,
    unavailable: i32,
    total: i32,
    new_rs_replicas: i32,
    new_rs_available: i32,
) -> i32 {
    let min_available = desired - unavailable;
    let new_unavailable = new_rs_replicas - new_rs_available;
    total - min_available - new_unavailable
}

/// An old ReplicaSet's numbers for the scale-down steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldRs {
    pub replicas: i32,
    pub available: i32,
}

/// `cleanupUnhealthyReplicas` on old ReplicaSets sorted oldest first: scale away
/// unavailable replicas first, at most `budget`. Returns the new sizes.
pub fn cleanup_unhealthy(old: &[OldRs], budget: i32) -> Vec<i32> {
    let mut done = 0;
    old.iter()
        .map(|rs| {
            // A status that still counts pods above the size (a scale-down in flight) has
            // nothing unhealthy to remove; upstream refuses to "clean up" upwards.
            if done >= budget || rs.replicas == 0 || rs.replicas <= rs.available {
                return rs.replicas;
            }
            let n = (budget - done).min(rs.replicas - rs.available);
            done += n;
            rs.replicas - n
        })
        .collect()
}

/// `scaleDownOldReplicaSetsForRollingUpdate` on old ReplicaSets sorted oldest first:
/// scale down while more than `desired - maxUnavailable` pods are available overall.
pub fn scale_down_old(old: &[OldRs], available_total: i32, min_available: i32) -> Vec<i32> {
    if available_total <= min_available {
        return old.iter().map(|r| r.replicas).collect();
    }
    let budget = available_total - min_available;
    let mut done = 0;
    old.iter()
        .map(|rs| {
            if done >= budget || rs.replicas == 0 {
                return rs.replicas;
            }
            let n = rs.replicas.min(budget - done);
            done += n;
            rs.replicas - n
        })
        .collect()
}

// ---- proportional scaling ----

/// An active ReplicaSet for proportional scaling.
#[derive(Clone, Debug)]
pub struct Sized {
    pub name: String,
    pub replicas: i32,
    /// The `max-replicas` annotation (the deployment size it was last scaled for).
    pub max_replicas_annotation: Option<i32>,
    pub created: Option<Timestamp>,
}

/// `scale` for rolling deployments: distribute `new_total - current` over the active
/// ReplicaSets in proportion to their size (largest first; ties: newer first when
/// growing, older first when shrinking); leftovers go to the first. `status_replicas` is
/// the deployment's `status.replicas`, the fallback when an annotation is missing.
pub fn proportional_sizes(
    rss: &[Sized],
    desired: i32,
    surge: i32,
    status_replicas: i32,
) -> Vec<(String, i32)> {
    let current: i32 = rss.iter().map(|r| r.replicas).sum();
    let allowed = if desired > 0 { desired + surge } else { 0 };
    let to_add = allowed - current;
    let mut sorted: Vec<&Sized> = rss.iter().collect();
    sorted.sort_by(|a, b| {
        b.replicas.cmp(&a.replicas).then_with(|| {
            let by_age = a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name));
            if to_add > 0 {
                by_age.reverse()
            } else {
                by_age
            }
        })
    });
    let max_now = desired + surge;
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &sorted {
        if to_add == 0 {
            sizes.push((rs.name.clone(), rs.replicas));
            continue;
        }
        let proportion = if rs.replicas == 0 || to_add == added {
            0
        } else {
            let fraction = if desired == 0 {
                -rs.replicas
            } else {
                let before = rs
                    .max_replicas_annotation
                    .filter(|m| *m != 0)
                    .unwrap_or(status_replicas);
                if before == 0 {
                    0
                } else {
                    let new_size = f64::from(rs.replicas) * f64::from(max_now) / f64::from(before);
                    new_size.round() as i32 - rs.replicas
                }
            };
            let allowed = to_add - added;
            if to_add > 0 {
                fraction.min(allowed)
            } else {
                fraction.max(allowed)
            }
        };
        added += proportion;
        sizes.push((rs.name.clone(), rs.replicas + proportion));
    }
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes
}

// ---- templates and hashes ----

/// Pod template fields that are pointers in Go: their zero value (`false`, `0`) means
/// something and is kept by [`normalized`].
const MEANINGFUL_ZERO: &[&str] = &[
    "automountServiceAccountToken",
    "enableServiceLinks",
    "shareProcessNamespace",
    "setHostnameAsFQDN",
    "hostUsers",
    "allowPrivilegeEscalation",
    "privileged",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "optional",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "priority",
    "defaultMode",
    "mode",
];

/// A template as Go's semantic equality sees it: nulls, empty objects and lists, and the
/// zero values of non-pointer fields (`false`, `0`, `""`) removed. Clients disagree on
/// these: Go's JSON omits them (kubectl's `rollout undo` writes a template marshalled that
/// way) while a protobuf body carries them explicitly.
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let n = normalized(v);
                let zero = match &n {
                    Value::Bool(b) => !b,
                    Value::Number(x) => x.as_f64() == Some(0.0),
                    Value::String(s) => s.is_empty(),
                    _ => false,
                };
                let empty = match &n {
                    Value::Null => true,
                    Value::Object(o) => o.is_empty(),
                    Value::Array(a) => a.is_empty(),
                    _ => zero && !MEANINGFUL_ZERO.contains(&k.as_str()),
                };
                if !empty {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn template_json(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    normalized(&v)
}

/// `EqualIgnoreHash`: templates equal but for the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_json(a) == template_json(b)
}

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `rand.SafeEncodeString`: every character mapped into an alphabet without vowels
/// (no words) and without look-alikes.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// FNV-1a, 32 bits.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `controller.ComputeHash`: FNV-32a of the template (here its normalized JSON: Go hashes
/// its own struct dump) and the collision count (as 8 little-endian bytes of a uint32,
/// as upstream writes it), its decimal form safe-encoded.
pub fn compute_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut data = serde_json::to_vec(&template_json(t)).unwrap_or_default();
    if let Some(c) = collision_count {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(c as u32).to_le_bytes());
        data.extend_from_slice(&b);
    }
    safe_encode(&fnv32a(&data).to_string())
}

// ---- annotations ----

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

/// Annotations a Deployment does not pass on to its ReplicaSets.
fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the
/// revision to `new_revision` (keeping the previous ones in `revision-history` when a
/// ReplicaSet comes back, as on a rollback) and, for a ReplicaSet about to be created, the
/// replica annotations. Returns whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    annotations: &mut BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) {
            continue;
        }
        if annotations.get(k) != Some(v) {
            annotations.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let old = annotations.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return changed,
        },
    };
    if old_int < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    annotations.insert(REVISION_HISTORY.into(), parts.join(","));
                }
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        changed |= set_replicas_annotations(annotations, desired, desired + max_surge(d));
    }
    changed
}

/// `SetReplicasAnnotations`. Returns whether anything changed.
pub fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    desired: i32,
    max: i32,
) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if annotations.get(k) != Some(&v) {
            annotations.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

// ---- ReplicaSet sets ----

pub fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// `ReplicaSetsByCreationTimestamp`: oldest first, ties by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// `ReplicaSetsByRevision`: lowest revision first, ties by creation.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// `FindNewReplicaSet`: the oldest ReplicaSet whose template is the Deployment's.
pub fn find_new_rs<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, template))
    })
}

/// `DeploymentComplete`.
pub fn deployment_complete(d: &Deployment, st: &DeploymentStatus) -> bool {
    let want = replicas(d);
    st.updated_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
        && st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, fewer old, or more ready/available replicas
/// than the stored status says.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = status(d);
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// `DeploymentTimedOut`.
pub fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(new, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + i64::from(deadline) < now.as_second()),
    }
}

// ---- conditions ----

pub fn condition<'a>(st: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    st.conditions.iter().flatten().find(|c| c.type_ == type_)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> DeploymentCondition {
    let now = Some(Time(Timestamp::now()));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: now.clone(),
        last_transition_time: now,
    }
}

/// `SetDeploymentCondition`: no change when status and reason are the same; the
/// transition time survives when only the reason changes.
pub fn set_condition(st: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = condition(st, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(st, &c.type_.clone());
    st.conditions.get_or_insert_with(Vec::new).push(c);
}

pub fn remove_condition(st: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = st.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            st.conditions = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use kube::api::ObjectMeta;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    fn deploy(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn percentages_round_like_upstream() {
        // 25% of 5: surge rounds up to 2, unavailable rounds down to 1.
        let d = deploy(5, pct("25%"), pct("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (2, 1));
        // 25% of 3: surge 1, unavailable 0.
        let d = deploy(3, pct("25%"), pct("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        // Both zero would never progress: unavailable becomes 1.
        let d = deploy(3, IntOrString::Int(0), pct("10%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        // Unavailability never exceeds the replicas.
        let d = deploy(2, IntOrString::Int(0), IntOrString::Int(5));
        assert_eq!(max_unavailable(&d), 2);
        assert!(scaled_value(Some(&pct("x")), 10, true).is_err());
        assert_eq!(scaled_value(Some(&pct("100%")), 7, false), Ok(7));
        // Recreate has neither.
        let mut d = deploy(5, pct("25%"), pct("25%"));
        d.spec.as_mut().unwrap().strategy.as_mut().unwrap().type_ = Some("Recreate".into());
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
    }

    #[test]
    fn rolling_update_steps() {
        // 5 replicas, surge 2, unavailable 1; a new template.
        assert_eq!(new_rs_new_replicas(5, 2, 5, 0), 2);
        // At the surge limit the new RS does not grow.
        assert_eq!(new_rs_new_replicas(5, 2, 7, 2), 2);
        // Never beyond the desired count.
        assert_eq!(new_rs_new_replicas(5, 2, 5, 4), 5);
        // Old RS: 5 available, new RS 2 not yet available; total 7.
        // 7 in all, keep 4 available, 2 new ones not available: 1 old one may go.
        assert_eq!(max_scaled_down(5, 1, 7, 2, 0), 1);
        // Once the two new pods are available, up to 3 old ones may go...
        assert_eq!(max_scaled_down(5, 1, 7, 2, 2), 3);
        // ...but availability caps it: 7 available, keep at least 4.
        let old = [OldRs {
            replicas: 5,
            available: 5,
        }];
        assert_eq!(cleanup_unhealthy(&old, 3), vec![5]);
        assert_eq!(scale_down_old(&old, 7, 4), vec![2]);
        // Unhealthy old replicas go first, oldest RS first.
        let old = [
            OldRs {
                replicas: 2,
                available: 1,
            },
            OldRs {
                replicas: 3,
                available: 0,
            },
        ];
        assert_eq!(cleanup_unhealthy(&old, 2), vec![1, 2]);
        // Stale status with more available than the size: never scaled up.
        let stale = [OldRs {
            replicas: 3,
            available: 4,
        }];
        assert_eq!(cleanup_unhealthy(&stale, 2), vec![3]);
        assert_eq!(scale_down_old(&old, 1, 1), vec![2, 3]);
    }

    fn sized(name: &str, replicas: i32, max: i32, age: i64) -> Sized {
        Sized {
            name: name.into(),
            replicas,
            max_replicas_annotation: Some(max),
            created: Some(Timestamp::from_second(1_000_000 + age).unwrap()),
        }
    }

    #[test]
    fn proportional_scaling() {
        // Mid-rollout 10 → 20 (surge 3 before and after... annotation says 13): old 8, new 5.
        let sizes = proportional_sizes(
            &[sized("old", 8, 13, 0), sized("new", 5, 13, 10)],
            20,
            5,
            13,
        );
        let total: i32 = sizes.iter().map(|s| s.1).sum();
        assert_eq!(total, 25);
        let get = |n: &str| sizes.iter().find(|s| s.0 == n).unwrap().1;
        assert_eq!(get("old"), 15); // 8 * 25/13 = 15.38 → 15
        assert_eq!(get("new"), 10); // 5 * 25/13 = 9.6 → 10
                                    // Scale down to zero empties everything.
        let sizes = proportional_sizes(&[sized("a", 3, 4, 0), sized("b", 1, 4, 1)], 0, 0, 4);
        assert!(sizes.iter().all(|s| s.1 == 0));
        // Leftovers go to the largest.
        let sizes = proportional_sizes(
            &[
                sized("a", 1, 3, 0),
                sized("b", 1, 3, 1),
                sized("c", 1, 3, 2),
            ],
            4,
            0,
            3,
        );
        let total: i32 = sizes.iter().map(|s| s.1).sum();
        assert_eq!(total, 4);
    }

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hashes_and_template_equality() {
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        // '0' is byte 48 and 48 % 27 = 21, the alphabet's "4".
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        let a = template("nginx:1");
        let h = compute_hash(&a, None);
        assert!(h.len() <= 10 && h.chars().all(|c| SAFE_ALPHABET.contains(&(c as u8))));
        assert_eq!(h, compute_hash(&a, None), "stable");
        assert_ne!(h, compute_hash(&template("nginx:2"), None));
        assert_ne!(
            h,
            compute_hash(&a, Some(1)),
            "a collision count changes the hash"
        );
        // The hash label and Go's empty structs do not make templates differ.
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), h.clone());
        b.spec.as_mut().unwrap().containers[0].resources = Some(Default::default());
        b.spec.as_mut().unwrap().containers[0].stdin = Some(false);
        b.spec.as_mut().unwrap().host_network = Some(false);
        assert!(equal_ignore_hash(&a, &b));
        // Pointer fields keep their zero value.
        let mut c = a.clone();
        c.spec.as_mut().unwrap().automount_service_account_token = Some(false);
        assert!(!equal_ignore_hash(&a, &c));
        assert_eq!(compute_hash(&b, None), h);
        assert!(!equal_ignore_hash(&a, &template("nginx:2")));
    }

    #[test]
    fn revision_annotations() {
        let mut d = deploy(3, pct("25%"), pct("25%"));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                (REVISION.to_string(), "9".to_string()),
            ]
            .into(),
        );
        let mut a = BTreeMap::new();
        assert!(set_new_rs_annotations(&d, &mut a, 1, false));
        assert_eq!(a.get(REVISION).unwrap(), "1");
        assert_eq!(a.get("kubernetes.io/change-cause").unwrap(), "v2");
        assert_eq!(a.get(DESIRED_REPLICAS).unwrap(), "3");
        assert_eq!(a.get(MAX_REPLICAS).unwrap(), "4");
        assert!(!a.contains_key(REVISION_HISTORY));
        // A rollback to this ReplicaSet: revision 3, history keeps 1.
        assert!(set_new_rs_annotations(&d, &mut a, 3, true));
        assert_eq!(a.get(REVISION).unwrap(), "3");
        assert_eq!(a.get(REVISION_HISTORY).unwrap(), "1");
        assert!(set_new_rs_annotations(&d, &mut a, 5, true));
        assert_eq!(a.get(REVISION_HISTORY).unwrap(), "1,3");
        assert!(!set_new_rs_annotations(&d, &mut a, 5, true), "idempotent");
    }

    #[test]
    fn conditions_keep_transition_times() {
        let mut st = DeploymentStatus::default();
        let mut c = new_condition(PROGRESSING, "True", NEW_RS_CREATED, "m");
        c.last_transition_time = Some(Time(Timestamp::from_second(1000).unwrap()));
        set_condition(&mut st, c);
        set_condition(
            &mut st,
            new_condition(PROGRESSING, "True", RS_UPDATED, "m2"),
        );
        let cur = condition(&st, PROGRESSING).unwrap();
        assert_eq!(cur.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(
            cur.last_transition_time.as_ref().unwrap().0.as_second(),
            1000
        );
        set_condition(
            &mut st,
            new_condition(PROGRESSING, "False", TIMED_OUT, "m3"),
        );
        assert_ne!(
            condition(&st, PROGRESSING)
                .unwrap()
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .as_second(),
            1000
        );
        remove_condition(&mut st, PROGRESSING);
        assert!(st.conditions.is_none());
    }
}
