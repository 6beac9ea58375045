//! The serviceaccount controller: a `default` ServiceAccount in every active namespace
//! (recreated when deleted).

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::informer::{namespace_gone, run_per_namespace};
use crate::queue::Next;

pub const NAME: &str = "default";

pub async fn run(client: Client) -> anyhow::Result<()> {
    let c = client.clone();
    run_per_namespace::<ServiceAccount, _, _>("serviceaccount", client, NAME, move |ns| {
        reconcile(c.clone(), ns)
    })
    .await
}

async fn reconcile(client: Client, ns: String) -> anyhow::Result<Next> {
    let api: Api<ServiceAccount> = Api::namespaced(client, &ns);
    if api.get_opt(NAME).await?.is_some() {
        return Ok(Next::Done);
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => {
            tracing::debug!(namespace = ns, "created the default ServiceAccount");
            Ok(Next::Done)
        }
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Next::Done),
        Err(e) if namespace_gone(&e) => Ok(Next::Done),
        Err(e) => Err(e.into()),
    }
}
