//! OpenAPI v3 documents are cacheable the way upstream serves them (client-go caches them
//! on disk by the hash in the index's URLs): a current hash gets an immutable, year-long
//! response, a stale one a 301 to the current URL, and `If-None-Match` a 304.

mod common;

use common::Server;

async fn get(
    client: &kube::Client,
    uri: &str,
    if_none_match: Option<&str>,
) -> http::Response<Vec<u8>> {
    use http_body_util::BodyExt;
    let mut req = http::Request::get(uri);
    if let Some(etag) = if_none_match {
        req = req.header("If-None-Match", etag);
    }
    let resp = client
        .send(req.body(kube::client::Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    http::Response::from_parts(parts, bytes)
}

#[test]
fn hashed_openapi_urls_are_immutable_and_stale_hashes_redirect() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(get(&client, "/openapi/v3", None).await.body()).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .to_string();
        let hash = url.split("hash=").nth(1).unwrap().to_string();

        let resp = get(&client, &url, None).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["cache-control"], "public, immutable");
        assert_eq!(h["etag"], format!("\"{hash}\""));
        assert_eq!(h["vary"], "Accept");
        let expires = h["expires"].to_str().unwrap();
        assert!(expires.ends_with(" GMT"), "{expires}");
        let doc: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert!(doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|p| p.contains("deployments")));

        // Without a hash: served, but not marked immutable.
        let plain = get(&client, "/openapi/v3/apis/apps/v1", None).await;
        assert_eq!(plain.status(), 200);
        assert!(plain
            .headers()
            .get("cache-control")
            .is_none_or(|c| c != "public, immutable"));

        // A stale hash: a permanent redirect to the current document.
        let stale = get(
            &client,
            "/openapi/v3/apis/apps/v1?hash=0123456789ABCDEF",
            None,
        )
        .await;
        assert_eq!(stale.status(), 301);
        assert_eq!(stale.headers()["location"], url.as_str());

        // A client that has it already.
        let cached = get(&client, &url, Some(&format!("\"{hash}\""))).await;
        assert_eq!(cached.status(), 304);
        assert!(cached.body().is_empty());
    });
}
