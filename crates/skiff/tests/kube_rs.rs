//! kube-rs (the Rust client, as operators use it) against a real `skiff server`: typed CRUD,
//! watchers (list+watch with bookmarks, and streaming lists with `sendInitialEvents`),
//! server-side apply, and a CustomResourceDefinition served and used through
//! `DynamicObject`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config};
use serde_json::json;

async fn client(s: &common::Server) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kc = Kubeconfig::read_from(s.kubeconfig()).expect("reading admin.kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"from": "kube-rs"}},
        "data": {"k": "v"},
    }))
    .unwrap()
}

/// Names seen in `Apply`/`InitApply` events and in `Delete` events, until `done` holds.
async fn watch_until(
    stream: impl futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>>,
    done: impl Fn(&[String], &[String]) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut applied = Vec::new();
    let mut deleted = Vec::new();
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&applied, &deleted) {
        let ev = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("watch events did not arrive")
            .expect("watch error")
            .expect("watch ended");
        match ev {
            Event::Apply(o) | Event::InitApply(o) => applied.push(o.metadata.name.unwrap()),
            Event::Delete(o) => deleted.push(o.metadata.name.unwrap()),
            Event::Init | Event::InitDone => {}
        }
    }
    (applied, deleted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_crud_watchers_apply_and_crd() {
    let s = tokio::task::spawn_blocking(common::Server::start)
        .await
        .unwrap();
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let list_watch = watcher::watcher(
        cms.clone(),
        watcher::Config::default().labels("from=kube-rs"),
    );
    let streaming = watcher::watcher(
        cms.clone(),
        watcher::Config::default()
            .labels("from=kube-rs")
            .streaming_lists(),
    );
    let lw = tokio::spawn(watch_until(list_watch, |_, d| {
        d.iter().any(|n| n == "typed")
    }));
    let st = tokio::spawn(watch_until(streaming, |_, d| {
        d.iter().any(|n| n == "typed")
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Typed CRUD.
    let created = cms
        .create(&PostParams::default(), &cm("typed"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let mut got = cms.get("typed").await.unwrap();
    got.data
        .get_or_insert_with(BTreeMap::new)
        .insert("k".into(), "changed".into());
    let replaced = cms
        .replace("typed", &PostParams::default(), &got)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "changed");
    let stale = cms
        .replace("typed", &PostParams::default(), &got)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, kube::Error::Api(ref e) if e.code == 409),
        "{stale:?}"
    );
    cms.patch(
        "typed",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"m": "n"}})),
    )
    .await
    .unwrap();

    // Server-side apply: a new manager owns a new field; a conflicting apply is refused.
    let applied = cms
        .patch(
            "typed",
            &PatchParams::apply("kube-rs-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "typed"}, "data": {"owned": "yes"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["owned"], "yes");
    assert!(applied
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .any(|m| m.manager.as_deref() == Some("kube-rs-test")
            && m.operation.as_deref() == Some("Apply")));
    let conflict = cms
        .patch(
            "typed",
            &PatchParams::apply("other-manager"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "typed"}, "data": {"owned": "no"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref e) if e.code == 409),
        "{conflict:?}"
    );

    let listed = cms
        .list(&ListParams::default().labels("from=kube-rs"))
        .await
        .unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["before", "typed"]);
    cms.delete("typed", &DeleteParams::default()).await.unwrap();

    for (which, task) in [("list+watch", lw), ("streaming list", st)] {
        let (applied, deleted) = task.await.unwrap();
        assert!(
            applied.contains(&"before".to_string()),
            "{which}: initial state {applied:?}"
        );
        assert!(
            applied.contains(&"typed".to_string()),
            "{which}: {applied:?}"
        );
        assert_eq!(deleted, ["typed"], "{which}");
    }

    // A CRD, then its objects through the dynamic API.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}}}}}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let gadgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "gadgets"),
    );
    let mut obj = DynamicObject::new("g1", &ApiResource::from_gvk_with_plural(&gvk, "gadgets"));
    obj.data = json!({"spec": {}});
    let mut created = None;
    for _ in 0..100 {
        match gadgets.create(&PostParams::default(), &obj).await {
            Ok(o) => {
                created = Some(o);
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("creating a Gadget: {e:?}"),
        }
    }
    let created = created.expect("the CRD was never served");
    assert_eq!(created.data["spec"]["size"], 1, "schema default applied");
    assert_eq!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    crds.delete("gadgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
}

/// Metadata-only reads (`as=PartialObjectMetadata[List]`, kube-rs' `*_metadata` calls and
/// client-go's metadata informers): get, list and a metadata watcher see names, labels and
/// resourceVersions but no `data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_metadata_get_list_and_watch() {
    use kube::core::PartialObjectMeta;
    let s = tokio::task::spawn_blocking(common::Server::start)
        .await
        .unwrap();
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("meta-one"))
        .await
        .unwrap();

    let one: PartialObjectMeta<ConfigMap> = cms.get_metadata("meta-one").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("meta-one"));
    assert_eq!(one.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(one.metadata.labels.unwrap()["from"], "kube-rs");

    let list = cms
        .list_metadata(&ListParams::default().labels("from=kube-rs"))
        .await
        .unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    // The raw body carries no data: only metadata travels.
    let req = http::Request::get("/api/v1/namespaces/default/configmaps/meta-one")
        .header(
            "Accept",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = client.request(req).await.unwrap();
    assert_eq!(raw["kind"], "PartialObjectMetadata");
    assert_eq!(raw["apiVersion"], "meta.k8s.io/v1");
    assert!(raw.get("data").is_none(), "{raw}");

    let metas: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client.clone(), "default");
    let stream = watcher::watcher(metas, watcher::Config::default());
    let seen = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut names = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !names.iter().any(|n| n == "meta-two") {
            let ev = tokio::time::timeout_at(deadline, stream.try_next())
                .await
                .expect("metadata watch events did not arrive")
                .expect("metadata watch error")
                .expect("metadata watch ended");
            if let Event::Apply(o) | Event::InitApply(o) = ev {
                names.push(o.metadata.name.unwrap());
            }
        }
        names
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cms.create(&PostParams::default(), &cm("meta-two"))
        .await
        .unwrap();
    let names = seen.await.unwrap();
    assert!(names.contains(&"meta-one".to_string()), "{names:?}");
}
