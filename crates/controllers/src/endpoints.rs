//! The endpoints controller: for every Service with a selector, an `Endpoints` object of
//! the same name listing the selected pods' IPs (ready ones in `addresses`, the others in
//! `notReadyAddresses`, or all ready with `publishNotReadyAddresses`), ports resolved per
//! pod (a named `targetPort` is looked up in the pod's containers), subsets grouped by
//! identical port sets as upstream's `RepackSubsets` does, at most 1000 addresses.
//!
//! What a Service selects is shared with the EndpointSlice controller
//! ([`crate::endpointslice`]): [`selected_pods`] and [`resolve_ports`].

use skiff_client::shared::Shared;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::{Api, ResourceExt};

use skiff_client::queue::{run_workers, Next, WorkQueue};
use skiff_client::workload::is_ready;

/// Upstream's cap on addresses in one Endpoints object.
pub const MAX_ADDRESSES: usize = 1000;
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

pub type ServiceKey = (String, String);

/// Watches of services and pods that queue the services a change concerns; shared by the
/// endpoints and EndpointSlice controllers. Returns the stores and the watch future.
pub fn watch_services_and_pods(
    shared: &Shared,
    queue: Arc<WorkQueue<ServiceKey>>,
) -> (
    Store<Service>,
    Store<Pod>,
    impl std::future::Future<Output = ()> + Send,
) {
    let (services, svc_watch) = {
        let queue = queue.clone();
        shared.cached::<Service>(move |ev| match ev {
            Event::Apply(s) | Event::InitApply(s) | Event::Delete(s) => {
                queue.add((s.namespace().unwrap_or_default(), s.name_any()))
            }
            _ => {}
        })
    };
    let (pods, pod_watch) = {
        let services = services.clone();
        shared.cached::<Pod>(move |ev| {
            let pod = match ev {
                Event::Apply(p) | Event::Delete(p) => p,
                _ => return,
            };
            // Labels may have changed, so every selector service in the namespace is
            // looked at again; a reconcile with nothing to change writes nothing.
            let ns = pod.namespace();
            for s in services.state() {
                if s.namespace() == ns && selector(&s).is_some() {
                    queue.add((s.namespace().unwrap_or_default(), s.name_any()));
                }
            }
        })
    };
    let fut = async move {
        tokio::join!(svc_watch, pod_watch);
    };
    (services, pods, fut)
}

/// A Service's selector, if it has a non-empty one (services without one are managed by
/// hand and left alone).
pub fn selector(s: &Service) -> Option<&BTreeMap<String, String>> {
    s.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|sel| !sel.is_empty())
}

/// The pods a Service's endpoints are made from: selected, with an IP, not finished.
/// Terminating pods are included: the caller decides what they count as.
pub fn selected_pods(svc: &Service, pods: &Store<Pod>) -> Vec<Arc<Pod>> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    let ns = svc.namespace();
    let mut out: Vec<Arc<Pod>> = pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ns)
        .filter(|p| {
            let labels = p.labels();
            sel.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .filter(|p| {
            let st = p.status.as_ref();
            let has_ip = st
                .and_then(|s| s.pod_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty());
            let done = matches!(
                st.and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            );
            has_ip && !done
        })
        .collect();
    out.sort_by_key(|p| p.name_any());
    out
}

pub fn pod_ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

pub fn pod_reference(p: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: p.namespace(),
        name: Some(p.name_any()),
        uid: p.uid(),
        ..Default::default()
    }
}

/// A service port resolved against one pod: (name, port, protocol, appProtocol).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedPort {
    pub name: Option<String>,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// The service's ports as this pod serves them; a port whose named `targetPort` the pod
/// does not have is left out, as upstream does.
pub fn resolve_ports(svc: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for sp in ports {
        let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
        let target = match &sp.target_port {
            None => Some(sp.port),
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(name)) => match name.parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => container_port(pod, name, &protocol),
            },
        };
        if let Some(port) = target {
            out.push(ResolvedPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol,
                app_protocol: sp.app_protocol.clone(),
            });
        }
    }
    out
}

fn container_port(pod: &Pod, name: &str, protocol: &str) -> Option<i32> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol
        })
        .map(|p| p.container_port)
}

pub async fn run(shared: Shared) -> anyhow::Result<()> {
    let client = shared.client().clone();
    let queue = WorkQueue::<ServiceKey>::new();
    let (services, pods, watch) = watch_services_and_pods(&shared, queue.clone());
    let work = run_workers("endpoints", queue, 2, move |(ns, name): ServiceKey| {
        let (client, services, pods) = (client.clone(), services.clone(), pods.clone());
        async move {
            let _ = tokio::join!(services.wait_until_ready(), pods.wait_until_ready());
            let api: Api<Endpoints> = Api::namespaced(client, &ns);
            let Some(svc) = services.get(&ObjectRef::new(&name).within(&ns)) else {
                // The service is gone: so are its endpoints.
                return match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => Ok(Next::Done),
                    Err(kube::Error::Api(s)) if s.is_not_found() => Ok(Next::Done),
                    Err(e) => Err(e.into()),
                };
            };
            if selector(&svc).is_none() {
                return Ok(Next::Done);
            }
            sync(&api, &svc, &pods).await
        }
    });
    tokio::join!(watch, work);
    Ok(())
}

/// The subsets (and whether they were truncated) for a service, from its pods.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, bool) {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    // Port set → (ready addresses, not-ready addresses).
    type Addrs = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Addrs> = BTreeMap::new();
    let mut total = 0;
    let mut truncated = false;
    for pod in pods {
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !publish_not_ready {
            continue;
        }
        let mut ports = resolve_ports(svc, pod);
        let declared = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .is_some_and(|p| !p.is_empty());
        if declared && ports.is_empty() {
            continue;
        }
        ports.sort();
        if total >= MAX_ADDRESSES {
            truncated = true;
            break;
        }
        total += 1;
        let spec = pod.spec.as_ref();
        let hostname = spec.and_then(|s| {
            let sub = s.subdomain.as_deref()?;
            (sub == svc.name_any())
                .then(|| s.hostname.clone())
                .flatten()
        });
        let addr = EndpointAddress {
            ip: pod_ip(pod),
            hostname,
            node_name: spec.and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
        };
        let entry = groups.entry(ports).or_default();
        if publish_not_ready || is_ready(pod) {
            entry.0.push(addr);
        } else {
            entry.1.push(addr);
        }
    }
    let subsets = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            // Upstream sorts addresses by IP within a subset.
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            (ports, (ready, not_ready))
        })
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|p| EndpointPort {
                        name: p.name,
                        port: p.port,
                        protocol: Some(p.protocol),
                        app_protocol: p.app_protocol,
                    })
                    .collect()
            }),
        })
        .collect();
    (subsets, truncated)
}

async fn sync(api: &Api<Endpoints>, svc: &Service, pods: &Store<Pod>) -> anyhow::Result<Next> {
    let name = svc.name_any();
    let selected = selected_pods(svc, pods);
    let (subsets, truncated) = desired_subsets(svc, &selected);
    let mut labels = svc.labels().clone();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let mut annotations = BTreeMap::new();
    if truncated {
        annotations.insert(OVER_CAPACITY.to_string(), "truncated".to_string());
    }
    let subsets = (!subsets.is_empty()).then_some(subsets);
    match api.get_opt(&name).await? {
        Some(mut current) => {
            let current_ann: BTreeMap<String, String> = current
                .annotations()
                .iter()
                .filter(|(k, _)| k.as_str() == OVER_CAPACITY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if current.subsets == subsets
                && *current.labels() == labels
                && current_ann == annotations
            {
                return Ok(Next::Done);
            }
            current.subsets = subsets;
            current.metadata.labels = Some(labels);
            let ann = current
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            ann.remove(OVER_CAPACITY);
            ann.extend(annotations);
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => Ok(Next::Done),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Next::Retry),
                Err(e) => Err(e.into()),
            }
        }
        None => {
            let ep = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..Default::default()
                },
                subsets,
            };
            match api.create(&PostParams::default(), &ep).await {
                Ok(_) => Ok(Next::Done),
                Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Next::Retry),
                Err(e) if crate::informer::namespace_gone(&e) => Ok(Next::Done),
                Err(e) => Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}"), "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                    "ports": [{"name": port_name, "containerPort": port}]}]},
                "status": {"podIP": ip, "phase": "Running",
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn subsets_group_pods_by_resolved_ports_and_readiness() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "d"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
        let pods = [
            pod("a", "10.0.0.1", true, "http", 8080),
            pod("b", "10.0.0.2", false, "http", 8080),
            pod("c", "10.0.0.3", true, "http", 9090),
            pod("d", "10.0.0.4", true, "other", 1),
        ];
        let (subsets, truncated) = desired_subsets(&s, &pods);
        assert!(!truncated);
        let got = serde_json::to_value(&subsets).unwrap();
        assert_eq!(got.as_array().unwrap().len(), 2, "{got:#}");
        assert_eq!(
            got[0]["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        assert_eq!(got[0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(got[0]["addresses"][0]["targetRef"]["name"], "a");
        assert_eq!(got[0]["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert_eq!(got[1]["ports"][0]["port"], 9090);
        // publishNotReadyAddresses: everyone is an address.
        let s2 = svc(json!({"metadata": {"name": "web", "namespace": "d"},
            "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": true,
                "ports": [{"port": 80, "targetPort": 8080}]}}));
        let (subsets, _) = desired_subsets(&s2, &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 4);
        assert!(subsets[0].not_ready_addresses.is_none());
    }
}
