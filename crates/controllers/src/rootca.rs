//! The root-CA publisher: a `kube-root-ca.crt` ConfigMap whose `ca.crt` is the cluster CA
//! bundle, in every active namespace (recreated when deleted, restored when edited).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::informer::{namespace_gone, run_per_namespace};
use crate::queue::Next;

pub const NAME: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub async fn run(client: Client, ca_pem: String) -> anyhow::Result<()> {
    let c = client.clone();
    run_per_namespace::<ConfigMap, _, _>("root-ca-cert-publisher", client, NAME, move |ns| {
        reconcile(c.clone(), ca_pem.clone(), ns)
    })
    .await
}

async fn reconcile(client: Client, ca_pem: String, ns: String) -> anyhow::Result<Next> {
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let want = BTreeMap::from([(KEY.to_string(), ca_pem)]);
    let result = match api.get_opt(NAME).await? {
        Some(cm) if cm.data.as_ref() == Some(&want) => return Ok(Next::Done),
        Some(mut cm) => {
            cm.data = Some(want);
            cm.binary_data = None;
            api.replace(NAME, &PostParams::default(), &cm).await
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(want),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await
        }
    };
    match result {
        Ok(_) => Ok(Next::Done),
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Next::Done),
        Err(e) if namespace_gone(&e) => Ok(Next::Done),
        Err(e) => Err(e.into()),
    }
}
