//! The namespace controller: a namespace being deleted (with `kubernetes` in
//! `spec.finalizers`) is emptied — every namespaced resource found through discovery is
//! deleted — and then finalized (`PUT /api/v1/namespaces/{name}/finalize` without
//! `kubernetes`), after which the API server removes it. While content remains, the
//! namespace carries upstream's deletion conditions (`NamespaceDeletionContentFailure`,
//! `NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, ...).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::informer::watch_to_queue;
use crate::queue::{run_workers, Next, WorkQueue};

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

pub async fn run(client: Client) -> anyhow::Result<()> {
    // Content that is slow to go (finalizers, graceful deletion) is looked at again with a
    // growing delay, but at least every few seconds so `kubectl delete` does not wait long.
    let queue = WorkQueue::<String>::with_max_backoff(std::time::Duration::from_secs(5));
    let (namespaces, watch) = watch_to_queue(
        "namespaces",
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        queue.clone(),
        |ns: &Namespace| {
            ns.metadata.deletion_timestamp.as_ref()?;
            ns.metadata.name.clone()
        },
    );
    let work = run_workers("namespace", queue, 2, move |name: String| {
        let client = client.clone();
        let ns = namespaces.get(&ObjectRef::new(&name));
        async move {
            match ns {
                Some(ns) => reconcile(client, (*ns).clone()).await,
                None => Ok(Next::Done),
            }
        }
    });
    tokio::join!(watch, work);
    Ok(())
}

async fn reconcile(client: Client, ns: Namespace) -> anyhow::Result<Next> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let has_finalizer = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if ns.metadata.deletion_timestamp.is_none() || !has_finalizer {
        return Ok(Next::Done);
    }
    let outcome = delete_content(&client, &name).await;
    let conditions = outcome.conditions();
    let nsapi: Api<Namespace> = Api::all(client.clone());
    let current = set_conditions(&nsapi, ns, conditions).await?;
    if !outcome.is_empty() {
        tracing::debug!(namespace = name, "content remains: {:?}", outcome.remaining);
        return Ok(Next::Retry);
    }
    // Everything is gone: remove our finalizer; the API server deletes the namespace.
    let mut fin = current;
    if let Some(spec) = fin.spec.as_mut() {
        if let Some(f) = spec.finalizers.as_mut() {
            f.retain(|f| f != FINALIZER);
        }
    }
    match nsapi
        .replace_subresource("finalize", &name, &PostParams::default(), &fin)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = name, "namespace emptied and finalized");
            Ok(Next::Done)
        }
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(Next::Done),
        Err(e) => Err(e.into()),
    }
}

#[derive(Default, Debug)]
struct Outcome {
    discovery_error: Option<String>,
    /// Errors listing or deleting, per resource.
    failures: Vec<String>,
    /// "configmaps" → count of objects still present.
    remaining: BTreeMap<String, usize>,
    /// finalizer → count of objects still carrying it.
    finalizers: BTreeMap<String, usize>,
}

impl Outcome {
    fn is_empty(&self) -> bool {
        self.discovery_error.is_none() && self.failures.is_empty() && self.remaining.is_empty()
    }

    /// Upstream's five deletion conditions (pkg/controller/namespace/deletion).
    fn conditions(&self) -> Vec<NamespaceCondition> {
        let cond = |ty: &str, failed: Option<String>, bad: &str, ok: &str, ok_msg: &str| {
            NamespaceCondition {
                type_: ty.into(),
                status: if failed.is_some() { "True" } else { "False" }.into(),
                reason: Some(if failed.is_some() { bad } else { ok }.into()),
                message: Some(failed.unwrap_or_else(|| ok_msg.into())),
                last_transition_time: None,
            }
        };
        let remaining = (!self.remaining.is_empty()).then(|| {
            let parts: Vec<String> = self
                .remaining
                .iter()
                .map(|(gr, n)| format!("{gr} has {n} resource instances"))
                .collect();
            format!("Some resources are remaining: {}", parts.join(", "))
        });
        let finalizers = (!self.finalizers.is_empty()).then(|| {
            let parts: Vec<String> = self
                .finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            )
        });
        let failures = (!self.failures.is_empty()).then(|| {
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                self.failures.len(),
                self.failures.join(", ")
            )
        });
        vec![
            cond(
                "NamespaceDeletionDiscoveryFailure",
                self.discovery_error.clone(),
                "DiscoveryFailed",
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
            cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                None,
                "GroupVersionParsingFailed",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
            cond(
                "NamespaceDeletionContentFailure",
                failures,
                "ContentDeletionFailed",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
            cond(
                "NamespaceContentRemaining",
                remaining,
                "SomeResourcesRemain",
                "ContentRemoved",
                "All content successfully removed",
            ),
            cond(
                "NamespaceFinalizersRemaining",
                finalizers,
                "SomeFinalizersRemain",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            ),
        ]
    }
}

/// Deletes every namespaced object in `ns` and reports what is left.
async fn delete_content(client: &Client, ns: &str) -> Outcome {
    let mut out = Outcome::default();
    let discovery = match Discovery::new(client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            out.discovery_error = Some(format!("Discovery failed: {e}"));
            return out;
        }
    };
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced
                || !caps.supports_operation(verbs::LIST)
                || !caps.supports_operation(verbs::DELETE)
            {
                continue;
            }
            let gr = if ar.group.is_empty() {
                ar.plural.clone()
            } else {
                format!("{}.{}", ar.plural, ar.group)
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let dp = DeleteParams::background();
            let lp = ListParams::default();
            let deleted = if caps.supports_operation(verbs::DELETE_COLLECTION) {
                api.delete_collection(&dp, &lp).await.map(|_| ())
            } else {
                delete_each(&api, &dp).await
            };
            if let Err(e) = deleted {
                if !is_not_found(&e) {
                    out.failures.push(format!("{gr}: {e}"));
                    continue;
                }
            }
            match api.list(&lp).await {
                Ok(list) if list.items.is_empty() => {}
                Ok(list) => {
                    out.remaining.insert(gr, list.items.len());
                    for o in &list.items {
                        for f in o.metadata.finalizers.iter().flatten() {
                            *out.finalizers.entry(f.clone()).or_default() += 1;
                        }
                    }
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => out.failures.push(format!("{gr}: {e}")),
            }
        }
    }
    out
}

async fn delete_each(api: &Api<DynamicObject>, dp: &DeleteParams) -> Result<(), kube::Error> {
    for o in api.list(&ListParams::default()).await? {
        let Some(name) = o.metadata.name.as_deref() else {
            continue;
        };
        match api.delete(name, dp).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// Writes `conditions` into the namespace's status when they differ from what it has
/// (ignoring transition times), so that waiting does not churn the object.
async fn set_conditions(
    api: &Api<Namespace>,
    mut ns: Namespace,
    conditions: Vec<NamespaceCondition>,
) -> anyhow::Result<Namespace> {
    let status = ns.status.get_or_insert_with(Default::default);
    let old = status.conditions.clone().unwrap_or_default();
    let mut changed = false;
    let mut merged: Vec<NamespaceCondition> = old
        .iter()
        .filter(|c| !conditions.iter().any(|n| n.type_ == c.type_))
        .cloned()
        .collect();
    for mut c in conditions {
        match old.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status && o.reason == c.reason && o.message == c.message => {
                c.last_transition_time = o.last_transition_time.clone();
            }
            Some(o) if o.status == c.status => {
                changed = true;
                c.last_transition_time = o.last_transition_time.clone();
            }
            _ => {
                changed = true;
                c.last_transition_time = Some(Time(k8s_openapi::jiff::Timestamp::now()));
            }
        }
        merged.push(c);
    }
    if !changed {
        return Ok(ns);
    }
    status.conditions = Some(merged);
    let name = ns.metadata.name.clone().unwrap_or_default();
    Ok(api
        .replace_status(&name, &PostParams::default(), &ns)
        .await?)
}
