//! Discovery: `/api`, `/apis`, `/apis/G`, `/api/v1`, `/apis/G/V`, aggregated discovery
//! (`apidiscovery.k8s.io` v2 and v2beta1), and the OpenAPI v3 index. All of it is derived
//! from the registry table.

use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};
use skiff_api::registry::{self, Resource, Subresource};

use crate::negotiate::parse_accept;
use crate::route::Route;
use crate::{full, ApiServer, Resp};

/// Groups in serving order, each with its versions (preferred first). Core is `""`.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in registry::all() {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    for (_, versions) in &mut out {
        // Preferred (storage) version first: v2 before v1, v1 before v1beta1.
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    }
    out
}

/// Kubernetes' version ordering: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.trim_start_matches('v');
    let (major, tail) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let major: u32 = major.parse().unwrap_or(0);
    let (stability, minor) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n.parse().unwrap_or(0))
    } else {
        (2, 0)
    };
    (stability, major, minor)
}

fn resources_of<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    registry::all()
        .into_iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// (group, version, kind, verbs) of a subresource.
fn subresource_info(
    res: &Resource,
    sub: &Subresource,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
) {
    const GPU: &[&str] = &["get", "patch", "update"];
    match sub {
        Subresource::Status | Subresource::Approval => (res.group, res.version, res.kind, GPU),
        Subresource::Scale => ("autoscaling", "v1", "Scale", GPU),
        Subresource::Binding => ("", "v1", "Binding", &["create"]),
        Subresource::Eviction => ("policy", "v1", "Eviction", &["create"]),
        Subresource::Connect("log") => ("", "v1", "Pod", &["get"]),
        Subresource::Connect("exec") => ("", "v1", "PodExecOptions", &["create", "get"]),
        Subresource::Connect("attach") => ("", "v1", "PodAttachOptions", &["create", "get"]),
        Subresource::Connect("portforward") => {
            ("", "v1", "PodPortForwardOptions", &["create", "get"])
        }
        Subresource::Connect("proxy") => (
            "",
            "v1",
            match res.kind {
                "Node" => "NodeProxyOptions",
                "Service" => "ServiceProxyOptions",
                _ => "PodProxyOptions",
            },
            &["create", "delete", "get", "patch", "update"],
        ),
        Subresource::Finalize => (res.group, res.version, res.kind, &["update"]),
        Subresource::Connect("token") => {
            ("authentication.k8s.io", "v1", "TokenRequest", &["create"])
        }
        Subresource::Connect(_) => (res.group, res.version, res.kind, &["get"]),
    }
}

fn aggregated_resource(res: &Resource) -> Value {
    let subs: Vec<Value> = res
        .subresources
        .iter()
        .map(|s| {
            let (g, v, k, verbs) = subresource_info(res, s);
            json!({"subresource": s.name(), "responseKind": {"group": g, "version": v, "kind": k}, "verbs": verbs})
        })
        .collect();
    let mut r = json!({
        "resource": res.plural,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": if res.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": res.singular,
        "verbs": res.verbs.names(),
    });
    if !res.short_names.is_empty() {
        r["shortNames"] = json!(res.short_names);
    }
    if !res.categories.is_empty() {
        r["categories"] = json!(res.categories);
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

fn aggregated(core: bool, beta: bool) -> Value {
    let items: Vec<Value> = groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v,
                        "resources": resources_of(g, v).map(aggregated_resource).collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": if beta { "apidiscovery.k8s.io/v2beta1" } else { "apidiscovery.k8s.io/v2" },
        "metadata": {},
        "items": items,
    })
}

fn group_json(g: &str, versions: &[&str]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": gvs, "preferredVersion": gvs[0]})
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut out = Vec::new();
    for res in resources_of(group, version) {
        let mut r = json!({
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": res.verbs.names(),
        });
        if !res.short_names.is_empty() {
            r["shortNames"] = json!(res.short_names);
        }
        if !res.categories.is_empty() {
            r["categories"] = json!(res.categories);
        }
        out.push(r);
        for sub in res.subresources {
            let (g, v, k, verbs) = subresource_info(res, sub);
            let mut s = json!({
                "name": format!("{}/{}", res.plural, sub.name()),
                "singularName": "",
                "namespaced": res.namespaced,
                "kind": k,
                "verbs": verbs,
            });
            if (g, v) != (res.group, res.version) {
                s["group"] = json!(g);
                s["version"] = json!(v);
            }
            out.push(s);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out})
}

/// Which aggregated-discovery form the client asked for, if any: Some(beta?).
fn wants_aggregated(headers: &HeaderMap) -> Option<bool> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for r in parse_accept(accept) {
        if r.param("g") == Some("apidiscovery.k8s.io")
            && r.param("as") == Some("APIGroupDiscoveryList")
        {
            match r.param("v") {
                Some("v2") => return Some(false),
                Some("v2beta1") => return Some(true),
                _ => {}
            }
        }
        if r.param("as").is_none() && (r.mime == "application/json" || r.mime == "*/*") {
            return None;
        }
    }
    None
}

fn respond(body: &Value, content_type: &str) -> Resp {
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::VARY, "Accept")
        .body(full(bytes))
        .unwrap()
}

pub fn serve(srv: &ApiServer, route: &Route, headers: &HeaderMap, query: Option<&str>) -> Resp {
    match route {
        Route::CoreVersions | Route::GroupList => {
            let core = matches!(route, Route::CoreVersions);
            if let Some(beta) = wants_aggregated(headers) {
                let v = if beta { "v2beta1" } else { "v2" };
                return respond(
                    &aggregated(core, beta),
                    &format!(
                        "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                    ),
                );
            }
            if core {
                respond(
                    &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": srv.advertise}]}),
                    "application/json",
                )
            } else {
                let groups: Vec<Value> = groups()
                    .into_iter()
                    .filter(|(g, _)| !g.is_empty())
                    .map(|(g, v)| group_json(g, &v))
                    .collect();
                respond(
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                    "application/json",
                )
            }
        }
        Route::Group(g) => {
            let versions = groups()
                .into_iter()
                .find(|(name, _)| name == g)
                .map(|(_, v)| v)
                .unwrap_or_default();
            let mut body = group_json(g, &versions);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            respond(&body, "application/json")
        }
        Route::ResourceList { group, version } => {
            respond(&resource_list(group, version), "application/json")
        }
        Route::OpenApiV3Index => respond(&crate::openapi::index(), "application/json"),
        Route::OpenApiV3 { group, version } => {
            match crate::openapi::document_bytes(group, version) {
                Some((bytes, hash)) => {
                    openapi_document(group, version, bytes, &hash, headers, query)
                }
                None => crate::status_response(&skiff_api::status::Status::new(
                    404,
                    "NotFound",
                    format!("no OpenAPI document for {group}/{version}"),
                )),
            }
        }
        _ => crate::status_response(&skiff_api::status::Status::new(
            404,
            "NotFound",
            "not found",
        )),
    }
}

/// One OpenAPI v3 document, cached as upstream's handler does: the hash in the index's
/// URLs makes a response immutable (`Cache-Control: public, immutable`, a year's
/// `Expires`); a stale hash is redirected (301) to the current URL; `If-None-Match` with
/// the current ETag is a 304.
fn openapi_document(
    group: &str,
    version: &str,
    bytes: bytes::Bytes,
    hash: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Resp {
    let etag = format!("\"{hash}\"");
    let asked = query.and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "hash")
            .map(|(_, v)| v.to_string())
    });
    let mut b = http::Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ETAG, &etag);
    match asked.as_deref() {
        Some(h) if !h.is_empty() && h != hash => {
            let url = format!(
                "/openapi/v3/{}?hash={hash}",
                crate::openapi::gv_path(group, version)
            );
            return b
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(header::LOCATION, url)
                .body(full(Vec::new()))
                .unwrap();
        }
        Some(h) if !h.is_empty() => {
            let expires = time::OffsetDateTime::now_utc() + time::Duration::days(365);
            let format = time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            );
            b = b
                .header(header::VARY, "Accept")
                .header(header::CACHE_CONTROL, "public, immutable")
                .header(header::EXPIRES, expires.format(&format).unwrap_or_default());
        }
        _ => b = b.header(header::VARY, "Accept"),
    }
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Vec::new()))
            .unwrap();
    }
    b.status(StatusCode::OK).body(full(bytes)).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering_prefers_ga_then_beta() {
        let mut v = vec!["v1beta1", "v1", "v2", "v1alpha1", "v2beta2"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }
}
