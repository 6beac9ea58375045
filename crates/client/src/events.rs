//! An event recorder with client-go's aggregation: the first occurrence of an event
//! (same involved object, type, reason, message and source) creates a `core/v1` Event named
//! `<object>.<hex nanoseconds>`; repeats patch its `count` and `lastTimestamp`, which is
//! what `kubectl describe` shows as "(x3 over 2m)". Recording never fails the caller:
//! errors are logged, as upstream's recorder does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

/// How many distinct events the aggregation cache remembers (client-go: 4096).
const CACHE_SIZE: usize = 4096;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

#[derive(Clone, Hash, PartialEq, Eq)]
struct Key {
    uid: String,
    kind: String,
    namespace: String,
    name: String,
    field_path: String,
    type_: String,
    reason: String,
    message: String,
}

struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

/// Records events for one component (the `source.component` and `reportingComponent`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        Recorder {
            client,
            component: component.into(),
            host: None,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Events from a node-local component carry the node's name as `source.host`.
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    /// A `Normal` event about `obj`.
    pub async fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, msg: &str) {
        self.record(&reference(obj), NORMAL, reason, msg).await
    }

    /// A `Warning` event about `obj`.
    pub async fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, msg: &str) {
        self.record(&reference(obj), WARNING, reason, msg).await
    }

    /// Records (or aggregates) one event about the object `r` refers to.
    pub async fn record(&self, r: &ObjectReference, type_: &str, reason: &str, message: &str) {
        let key = Key {
            uid: r.uid.clone().unwrap_or_default(),
            kind: r.kind.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            field_path: r.field_path.clone().unwrap_or_default(),
            type_: type_.into(),
            reason: reason.into(),
            message: message.into(),
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let repeat = {
            let mut seen = self.seen.lock().unwrap();
            seen.get_mut(&key).map(|s| {
                s.count += 1;
                (s.namespace.clone(), s.name.clone(), s.count)
            })
        };
        if let Some((ns, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            let patch = serde_json::json!({"count": count, "lastTimestamp": Time(now)});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                // The event expired (events have a TTL) or was deleted: create it again.
                Err(kube::Error::Api(s)) if s.is_not_found() => {
                    self.seen.lock().unwrap().remove(&key);
                }
                Err(e) => {
                    tracing::debug!("updating event {ns}/{name}: {e}");
                    return;
                }
            }
        }
        let namespace = r
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            r.name.as_deref().unwrap_or("unknown"),
            now.as_nanosecond()
        );
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: r.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                let mut seen = self.seen.lock().unwrap();
                if seen.len() >= CACHE_SIZE {
                    seen.clear();
                }
                seen.insert(
                    key,
                    Seen {
                        namespace,
                        name,
                        count: 1,
                    },
                );
            }
            Err(e) => tracing::debug!("recording event {reason} for {:?}: {e}", r.name),
        }
    }
}

/// An `ObjectReference` to `obj`, as events and owner lookups use.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        namespace: obj.namespace(),
        name: Some(obj.name_any()),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        field_path: None,
    }
}
