//! Strategic merge patch (the `application/strategic-merge-patch+json` patch type).
//!
//! Maps merge recursively (`null` deletes a key); lists with a merge key merge item by item
//! (`$patch: delete` removes an item, `$setElementOrder/<field>` orders the result);
//! primitive lists with the merge strategy (finalizers) are unions with
//! `$deleteFromPrimitiveList/<field>`; `$patch: replace` and `$retainKeys` behave as upstream;
//! every other list is replaced.
//!
//! Merge keys currently come from [`merge_key`], a table of the list fields of built-in
//! types keyed by field name. Upstream derives them from `x-kubernetes-patch-merge-key`
//! in the schemas; doing the same is tracked with the OpenAPI work.

use serde_json::{Map, Value};

/// How a list field merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Items are objects merged by this key.
    MergeKey(&'static str),
    /// A set of primitives (union).
    PrimitiveMerge,
    /// Replaced as a whole.
    Replace,
}

/// The merge strategy for a list field, by its name and parent field.
pub fn merge_key(parent: &str, field: &str) -> ListStrategy {
    use ListStrategy::*;
    match (parent, field) {
        (_, "containers" | "initContainers" | "ephemeralContainers") => MergeKey("name"),
        (_, "env" | "volumes" | "imagePullSecrets" | "secrets" | "readinessGates") => match field {
            "readinessGates" => MergeKey("conditionType"),
            _ => MergeKey("name"),
        },
        ("spec", "ports") => MergeKey("port"),
        (_, "ports") => MergeKey("containerPort"),
        (_, "volumeMounts") => MergeKey("mountPath"),
        (_, "volumeDevices") => MergeKey("devicePath"),
        (_, "conditions") => MergeKey("type"),
        (_, "ownerReferences") => MergeKey("uid"),
        (_, "hostAliases") => MergeKey("ip"),
        (_, "resourceClaims") => MergeKey("name"),
        (_, "topologySpreadConstraints") => MergeKey("topologyKey"),
        (_, "addresses") if parent == "status" => MergeKey("type"),
        (_, "taints") => Replace,
        ("metadata", "finalizers") => PrimitiveMerge,
        _ => Replace,
    }
}

pub fn strategic_merge(original: &Value, patch: &Value) -> Result<Value, String> {
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => Ok(Value::Object(merge_map(o, p, "")?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(&Map::new(), p, "")?)),
        _ => Err("the patch must be a JSON object".into()),
    }
}

fn merge_map(
    orig: &Map<String, Value>,
    patch: &Map<String, Value>,
    parent: &str,
) -> Result<Map<String, Value>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = patch.clone();
            m.remove("$patch");
            return Ok(m);
        }
        Some("delete") => return Ok(Map::new()),
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type {other:?}")),
    }
    let mut out = orig.clone();
    if let Some(retain) = patch.get("$retainKeys") {
        let keys: Vec<&str> = retain
            .as_array()
            .ok_or("$retainKeys must be a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        out.retain(|k, _| keys.contains(&k.as_str()));
    }
    // Directives that apply to sibling lists.
    let mut orders: Map<String, Value> = Map::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.insert(field.to_string(), v.clone());
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = v
                .as_array()
                .ok_or("$deleteFromPrimitiveList must be a list")?;
            if let Some(Value::Array(list)) = out.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
        }
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), v) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p, k)?),
            (None, Value::Object(p)) => Value::Object(merge_map(&Map::new(), p, k)?),
            (existing, Value::Array(p)) => {
                let empty = Vec::new();
                let o = match existing {
                    Some(Value::Array(a)) => a,
                    _ => &empty,
                };
                merge_list(o, p, parent, k)?
            }
            (_, v) => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Some(order)) = (out.get_mut(&field), order.as_array()) {
            reorder(list, order, merge_key(parent, &field));
        }
    }
    Ok(out)
}

fn item_key<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.as_object()?.get(key)
}

fn merge_list(orig: &[Value], patch: &[Value], parent: &str, field: &str) -> Result<Value, String> {
    match merge_key(parent, field) {
        ListStrategy::Replace => {
            // `[{"$patch": "replace"}]`-style directives are meaningless here; drop them.
            Ok(Value::Array(
                patch
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .cloned()
                    .collect(),
            ))
        }
        ListStrategy::PrimitiveMerge => {
            let mut out = orig.to_vec();
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListStrategy::MergeKey(key) => {
            if patch
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                return Ok(Value::Array(
                    patch
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect(),
                ));
            }
            let mut out = orig.to_vec();
            for item in patch {
                let Some(pmap) = item.as_object() else {
                    return Err(format!("items of {field} must be objects"));
                };
                let k = item_key(item, key).ok_or_else(|| {
                    format!("an item of {field} is missing its merge key {key:?}")
                })?;
                let pos = out.iter().position(|o| item_key(o, key) == Some(k));
                if pmap.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(i) = pos {
                        out.remove(i);
                    }
                    continue;
                }
                match pos {
                    Some(i) => {
                        let base = out[i].as_object().cloned().unwrap_or_default();
                        out[i] = Value::Object(merge_map(&base, pmap, field)?);
                    }
                    None => out.push(Value::Object(merge_map(&Map::new(), pmap, field)?)),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn reorder(list: &mut [Value], order: &[Value], strategy: ListStrategy) {
    let rank = |item: &Value| -> usize {
        let id = match strategy {
            ListStrategy::MergeKey(k) => order
                .iter()
                .position(|o| item_key(o, k).is_some() && item_key(o, k) == item_key(item, k)),
            _ => order.iter().position(|o| o == item),
        };
        id.unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_null_deletes() {
        let orig = json!({"metadata":{"labels":{"a":"1","b":"2"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1"},{"name":"side","image":"busybox"}]}});
        let patch = json!({"metadata":{"labels":{"b":null,"c":"3"}},
            "spec":{"containers":[{"name":"web","image":"nginx:2"}]}});
        let out = strategic_merge(&orig, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a":"1","c":"3"}));
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:2");
        assert_eq!(
            out["spec"]["containers"][1]["name"], "side",
            "unpatched items stay"
        );
    }

    #[test]
    fn directives() {
        let orig = json!({"metadata":{"finalizers":["a","b"]},
            "spec":{"containers":[{"name":"x","image":"1"},{"name":"y","image":"2"}]}});
        let patch = json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]},
            "spec":{"$setElementOrder/containers":[{"name":"y"},{"name":"x"}],
                    "containers":[{"name":"x","$patch":"delete"}]}});
        let out = strategic_merge(&orig, &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(out["spec"]["containers"], json!([{"name":"y","image":"2"}]));
        let r = strategic_merge(
            &json!({"spec":{"a":1,"b":2}}),
            &json!({"spec":{"$patch":"replace","c":3}}),
        )
        .unwrap();
        assert_eq!(r, json!({"spec":{"c":3}}));
        assert!(
            strategic_merge(&orig, &json!({"spec":{"containers":[{"image":"no-key"}]}})).is_err()
        );
    }
}
