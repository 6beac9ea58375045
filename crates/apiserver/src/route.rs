//! URL → what is being asked for. Pure parsing; no I/O.

use skiff_api::registry::{self, Resource};
use skiff_api::status::{Cause, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health(&'static str),
    Metrics,
    /// `/api`
    CoreVersions,
    /// `/apis`
    GroupList,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub res: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Reached through the deprecated `/watch/` path prefix.
    pub legacy_watch: bool,
}

pub fn parse(path: &str) -> Result<Route, Status> {
    let path_trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    match path_trimmed {
        "/version" => return Ok(Route::Version),
        "/livez" => return Ok(Route::Health("livez")),
        "/readyz" => return Ok(Route::Health("readyz")),
        "/healthz" => return Ok(Route::Health("healthz")),
        "/metrics" => return Ok(Route::Metrics),
        "/api" => return Ok(Route::CoreVersions),
        "/apis" => return Ok(Route::GroupList),
        "/openapi/v2" | "/swagger.json" => return Ok(Route::OpenApiV2),
        "/openapi/v3" => return Ok(Route::OpenApiV3Index),
        _ => {}
    }
    let segs: Vec<&str> = path_trimmed.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(Status::path_not_found());
    }
    match segs.as_slice() {
        ["livez" | "readyz" | "healthz", _check] => {
            return Ok(Route::Health(match segs[0] {
                "livez" => "livez",
                "readyz" => "readyz",
                _ => "healthz",
            }))
        }
        ["openapi", "v3", "api", v] => {
            return Ok(Route::OpenApiV3 {
                group: String::new(),
                version: v.to_string(),
            })
        }
        ["openapi", "v3", "apis", g, v] => {
            return Ok(Route::OpenApiV3 {
                group: g.to_string(),
                version: v.to_string(),
            })
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            if registry::all().iter().any(|r| r.group == *g) {
                return Ok(Route::Group(g.to_string()));
            }
            return Err(Status::path_not_found());
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(Status::path_not_found()),
    };
    if registry::lookup_gv(group, version).is_none() {
        return Err(Status::path_not_found());
    }
    if rest.is_empty() {
        return Ok(Route::ResourceList {
            group: group.into(),
            version: version.into(),
        });
    }
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    let lookup =
        |plural: &str| registry::lookup(group, version, plural).ok_or_else(Status::path_not_found);
    let req = |res, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourceRequest {
            res,
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            subresource: sub.map(String::from),
            legacy_watch,
        })
    };
    let route = match rest {
        // The namespace object itself and its subresources.
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            req(lookup("namespaces")?, None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural, tail @ ..] => {
            let res = lookup(plural)?;
            if !res.namespaced {
                return Err(Status::path_not_found());
            }
            match tail {
                [] => req(res, Some(ns), None, None),
                [name] => req(res, Some(ns), Some(name), None),
                [name, sub] => req(res, Some(ns), Some(name), Some(sub)),
                _ => return Err(Status::path_not_found()),
            }
        }
        [plural] => req(lookup(plural)?, None, None, None),
        [plural, name] => {
            let res = lookup(plural)?;
            if res.namespaced {
                return Err(Status::path_not_found());
            }
            req(res, None, Some(name), None)
        }
        [plural, name, sub] => {
            let res = lookup(plural)?;
            if res.namespaced {
                return Err(Status::path_not_found());
            }
            req(res, None, Some(name), Some(sub))
        }
        _ => return Err(Status::path_not_found()),
    };
    if let Route::Resource(r) = &route {
        if let Some(sub) = &r.subresource {
            if !r.res.has_subresource(sub) {
                return Err(Status::path_not_found());
            }
        }
    }
    Ok(route)
}

/// Every query parameter upstream's request options accept. Others are rejected.
const KNOWN_PARAMS: &[&str] = &[
    "labelSelector",
    "fieldSelector",
    "watch",
    "allowWatchBookmarks",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "limit",
    "continue",
    "sendInitialEvents",
    "dryRun",
    "fieldManager",
    "fieldValidation",
    "force",
    "gracePeriodSeconds",
    "orphanDependents",
    "propagationPolicy",
    "preconditions",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "pretty",
    "timeout",
    "includeObject",
    "exact",
    "export",
    "includeUninitialized",
    // connect subresources (logs, exec, port-forward) — served by the agent later.
    "container",
    "follow",
    "previous",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "tailLines",
    "limitBytes",
    "insecureSkipTLSVerifyBackend",
    "command",
    "stdin",
    "stdout",
    "stderr",
    "tty",
    "ports",
    "path",
    "verbose",
    "exclude",
];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub send_initial_events: Option<bool>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: Option<String>,
    pub force: bool,
    pub grace_period_seconds: Option<i64>,
    pub orphan_dependents: Option<bool>,
    pub propagation_policy: Option<String>,
    pub include_object: Option<String>,
    pub verbose: bool,
    /// Write options upstream's options validation rejects (`dryRun`, `fieldValidation`,
    /// `propagationPolicy`). They are a 422 on the verb's options kind (`CreateOptions`,
    /// `DeleteOptions`, ...), which only the handler knows, so parsing just records them.
    pub invalid_options: Vec<Cause>,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, Status> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Status::bad_request(format!(
            "invalid value for query parameter {name}: {v:?} is not a boolean"
        ))),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, Status> {
    v.parse().map_err(|_| {
        Status::bad_request(format!(
            "invalid value for query parameter {name}: {v:?} is not a valid number"
        ))
    })
}

/// Non-resource endpoints: only `verbose` matters; anything else is ignored.
pub fn parse_health_query(raw: Option<&str>) -> Query {
    let verbose =
        raw.is_some_and(|r| form_urlencoded::parse(r.as_bytes()).any(|(k, _)| k == "verbose"));
    Query {
        verbose,
        ..Default::default()
    }
}

pub fn parse_query(raw: Option<&str>) -> Result<Query, Status> {
    let mut q = Query::default();
    let Some(raw) = raw else { return Ok(q) };
    let mut dry_run = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let v = v.as_ref();
        match k.as_ref() {
            "labelSelector" => q.label_selector = Some(v.into()),
            "fieldSelector" => q.field_selector = Some(v.into()),
            "watch" => q.watch = parse_bool("watch", v)?,
            "allowWatchBookmarks" => q.allow_bookmarks = parse_bool("allowWatchBookmarks", v)?,
            "resourceVersion" => {
                q.resource_version = Some(v.into()).filter(|s: &String| !s.is_empty())
            }
            "resourceVersionMatch" => {
                q.resource_version_match = Some(v.into()).filter(|s: &String| !s.is_empty())
            }
            "timeoutSeconds" => q.timeout_seconds = Some(parse_num("timeoutSeconds", v)?),
            "limit" => {
                let n: i64 = parse_num("limit", v)?;
                q.limit = (n > 0).then_some(n as usize);
            }
            "continue" => q.continue_token = Some(v.into()).filter(|s: &String| !s.is_empty()),
            "sendInitialEvents" => {
                q.send_initial_events = Some(parse_bool("sendInitialEvents", v)?)
            }
            "dryRun" => dry_run.push(v.to_string()),
            "fieldManager" => q.field_manager = Some(v.into()),
            "fieldValidation" => {
                if !matches!(v, "Ignore" | "Warn" | "Strict" | "") {
                    q.invalid_options.push(Cause::not_supported(
                        "fieldValidation",
                        &format!("{v:?}"),
                        &["Ignore", "Strict", "Warn"],
                    ));
                }
                q.field_validation = Some(v.into())
            }
            "force" => q.force = parse_bool("force", v)?,
            "gracePeriodSeconds" => {
                q.grace_period_seconds = Some(parse_num("gracePeriodSeconds", v)?)
            }
            "orphanDependents" => q.orphan_dependents = Some(parse_bool("orphanDependents", v)?),
            "propagationPolicy" => {
                if !matches!(v, "Orphan" | "Background" | "Foreground") {
                    q.invalid_options
                        .push(unsupported_propagation_policy(&format!("{v:?}")));
                    continue;
                }
                q.propagation_policy = Some(v.into())
            }
            "includeObject" => {
                if !matches!(v, "None" | "Metadata" | "Object") {
                    return Err(Status::bad_request(format!(
                        "invalid includeObject {v:?}: valid values are \"None\", \"Metadata\", \"Object\""
                    )));
                }
                q.include_object = Some(v.into())
            }
            "verbose" => q.verbose = true,
            other if KNOWN_PARAMS.contains(&other) => {}
            other => {
                return Err(Status::bad_request(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    // upstream's ValidateDryRun: every value must be "All".
    if !dry_run.is_empty() {
        if dry_run.iter().all(|v| v == "All") {
            q.dry_run = true;
        } else {
            let values: Vec<String> = dry_run.iter().map(|v| format!("{v:?}")).collect();
            q.invalid_options.push(Cause::not_supported(
                "dryRun",
                &format!("[]string{{{}}}", values.join(", ")),
                &["All"],
            ));
        }
    }
    Ok(q)
}

/// upstream's DeleteOptions validation of `propagationPolicy` (`value` in Go's `%q` form).
pub fn unsupported_propagation_policy(value: &str) -> Cause {
    Cause::not_supported(
        "propagationPolicy",
        value,
        &["Foreground", "Background", "Orphan", "nil"],
    )
}
