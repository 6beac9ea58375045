//! The EndpointSlice controller: for every Service with a selector, `discovery.k8s.io/v1`
//! EndpointSlices (at most 100 endpoints each) labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the
//! Service (so the garbage collector removes them with it). Each endpoint carries
//! `ready`/`serving`/`terminating` conditions, the node and the pod reference; pods whose
//! resolved ports differ land in different slices. Existing slices are reused in order and
//! only rewritten when their content changes.

use skiff_client::shared::Shared;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::endpoints::{
    pod_ip, pod_reference, resolve_ports, selected_pods, selector, watch_services_and_pods,
    ResolvedPort, ServiceKey,
};
use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::is_ready;

pub const MAX_ENDPOINTS: usize = 100;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

pub async fn run(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<ServiceKey>::new();
    let (services, pods, watch) = watch_services_and_pods(&shared, queue.clone());
    let work = run_workers("endpointslice", queue, 2, move |(ns, name): ServiceKey| {
        let (client, services, pods) = (client.clone(), services.clone(), pods.clone());
        async move {
            let _ = tokio::join!(services.wait_until_ready(), pods.wait_until_ready());
            let Some(svc) = services.get(&ObjectRef::new(&name).within(&ns)) else {
                // Owned slices go with the service (garbage collector).
                return Ok(Next::Done);
            };
            if selector(&svc).is_none() {
                return Ok(Next::Done);
            }
            sync(&client, &svc, &pods).await
        }
    });
    tokio::join!(watch, work);
    Ok(())
}

/// The content of one slice: its ports and endpoints.
#[derive(Debug, PartialEq)]
pub struct SliceContent {
    pub ports: Vec<ResolvedPort>,
    pub endpoints: Vec<Endpoint>,
}

/// The slices a service should have: endpoints grouped by port set, in chunks of at most
/// [`MAX_ENDPOINTS`].
pub fn desired_slices(svc: &Service, pods: &[Arc<Pod>]) -> Vec<SliceContent> {
    let declared = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods {
        let mut ports = resolve_ports(svc, pod);
        if declared && ports.is_empty() {
            continue;
        }
        ports.sort();
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = is_ready(pod);
        let spec = pod.spec.as_ref();
        let hostname = spec.and_then(|s| {
            let sub = s.subdomain.as_deref()?;
            (sub == svc.name_any())
                .then(|| s.hostname.clone())
                .flatten()
        });
        groups.entry(ports).or_default().push(Endpoint {
            addresses: vec![pod_ip(pod)],
            conditions: Some(EndpointConditions {
                ready: Some(publish_not_ready || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname,
            node_name: spec.and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
            ..Default::default()
        });
    }
    let mut out = Vec::new();
    for (ports, endpoints) in groups {
        for chunk in endpoints.chunks(MAX_ENDPOINTS) {
            out.push(SliceContent {
                ports: ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    out
}

fn slice_ports(ports: &[ResolvedPort]) -> Option<Vec<EndpointPort>> {
    Some(
        ports
            .iter()
            .map(|p| EndpointPort {
                name: p.name.clone().or_else(|| Some(String::new())),
                port: Some(p.port),
                protocol: Some(p.protocol.clone()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect(),
    )
}

async fn sync(client: &Client, svc: &Service, pods: &Store<Pod>) -> anyhow::Result<Next> {
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let mut existing = api
        .list(&ListParams::default().labels(&format!(
            "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
        )))
        .await?
        .items;
    existing.sort_by_key(|s| s.name_any());
    let selected = selected_pods(svc, pods);
    let desired = desired_slices(svc, &selected);
    let mut labels = svc.labels().clone();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: svc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    // A service with no endpoints still has one empty slice, as upstream keeps.
    let desired = if desired.is_empty() {
        let ports = svc
            .spec
            .as_ref()
            .map(|s| {
                s.ports
                    .iter()
                    .flatten()
                    .filter_map(|p| {
                        match &p.target_port {
                            None => Some(p.port),
                            Some(
                                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n),
                            ) => Some(*n),
                            Some(_) => None,
                        }
                        .map(|port| ResolvedPort {
                            name: p.name.clone().filter(|n| !n.is_empty()),
                            port,
                            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                            app_protocol: p.app_protocol.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        vec![SliceContent {
            ports,
            endpoints: vec![],
        }]
    } else {
        desired
    };
    let mut reuse = existing.into_iter();
    for content in desired {
        let ports = slice_ports(&content.ports);
        match reuse.next() {
            Some(mut slice) => {
                let same = slice.endpoints == content.endpoints
                    && slice.ports == ports
                    && slice.labels() == &labels;
                if same {
                    continue;
                }
                slice.endpoints = content.endpoints;
                slice.ports = ports;
                slice.metadata.labels = Some(labels.clone());
                let sname = slice.name_any();
                match api.replace(&sname, &PostParams::default(), &slice).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                        return Ok(Next::Retry)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(ns.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: content.endpoints,
                    ports,
                };
                match api.create(&PostParams::default(), &slice).await {
                    Ok(_) => {}
                    Err(e) if crate::informer::namespace_gone(&e) => return Ok(Next::Done),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for surplus in reuse {
        match api
            .delete(&surplus.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Next::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slices_hold_at_most_100_endpoints_with_conditions() {
        let svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "d"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
            .unwrap();
        let pods: Vec<Arc<Pod>> = (0..250)
            .map(|i| {
                Arc::new(
                    serde_json::from_value(json!({
                        "metadata": {"name": format!("p{i:03}"), "namespace": "d"},
                        "spec": {"containers": [{"name": "c", "image": "i"}]},
                        "status": {"podIP": format!("10.0.{}.{}", i / 200, i % 200), "phase": "Running",
                            "conditions": [{"type": "Ready", "status": if i % 2 == 0 {"True"} else {"False"}}]}
                    }))
                    .unwrap(),
                )
            })
            .collect();
        let slices = desired_slices(&svc, &pods);
        let sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let e0 = &slices[0].endpoints[0];
        assert_eq!(e0.conditions.as_ref().unwrap().ready, Some(true));
        let e1 = &slices[0].endpoints[1];
        assert_eq!(e1.conditions.as_ref().unwrap().ready, Some(false));
        assert_eq!(e1.conditions.as_ref().unwrap().serving, Some(false));
        assert_eq!(slices[0].ports[0].port, 8080);
    }
}
