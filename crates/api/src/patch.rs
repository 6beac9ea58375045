//! Strategic merge patch (the `application/strategic-merge-patch+json` patch type).
//!
//! Maps merge recursively (`null` deletes a key); lists with a merge key merge item by item
//! (`$patch: delete` removes an item, `$setElementOrder/<field>` orders the result);
//! primitive lists with the merge strategy (finalizers) are unions with
//! `$deleteFromPrimitiveList/<field>`; `$patch: replace` and `$retainKeys` behave as upstream;
//! every other list is replaced.
//!
//! Which lists merge, and by which key, comes from the schemas: `x-kubernetes-patch-strategy`
//! and `x-kubernetes-patch-merge-key` of each property, as derived from the Kubernetes types
//! by `skiff-openapi`. Without a schema (custom resources) lists are replaced.

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

/// The strategy of list property `field` of schema `definition`.
fn list_strategy(definition: Option<&str>, field: &str) -> ListStrategy {
    let Some(def) = definition else {
        return ListStrategy::Replace;
    };
    let merges = skiff_openapi::patch_strategy(def, field)
        .is_some_and(|s| s.split(',').any(|p| p == "merge"));
    if !merges {
        return ListStrategy::Replace;
    }
    match skiff_openapi::list_field_meta(def, field).and_then(|m| m.patch_merge_key) {
        Some(key) => ListStrategy::MergeKey(key),
        None => ListStrategy::PrimitiveMerge,
    }
}

/// Applies `patch` to `original`, whose schema is `definition` (e.g.
/// `io.k8s.api.apps.v1.Deployment`, from `skiff_openapi::definition_for_kind`).
pub fn strategic_merge(
    definition: Option<&str>,
    original: &Value,
    patch: &Value,
) -> Result<Value, String> {
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => Ok(Value::Object(merge_map(o, p, definition)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(&Map::new(), p, definition)?)),
        _ => Err("the patch must be a JSON object".into()),
    }
}

fn merge_map(
    orig: &Map<String, Value>,
    patch: &Map<String, Value>,
    def: Option<&str>,
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
        let child = def.and_then(|d| skiff_openapi::field_definition(d, k));
        let merged = match (out.get(k), v) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p, child)?),
            (None, Value::Object(p)) => Value::Object(merge_map(&Map::new(), p, child)?),
            (existing, Value::Array(p)) => {
                let empty = Vec::new();
                let o = match existing {
                    Some(Value::Array(a)) => a,
                    _ => &empty,
                };
                merge_list(o, p, def, k)?
            }
            (_, v) => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    for (field, order) in orders {
        if let (Some(Value::Array(list)), Some(order)) = (out.get_mut(&field), order.as_array()) {
            reorder(list, order, list_strategy(def, &field));
        }
    }
    Ok(out)
}

fn item_key<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.as_object()?.get(key)
}

fn merge_list(
    orig: &[Value],
    patch: &[Value],
    def: Option<&str>,
    field: &str,
) -> Result<Value, String> {
    let items_def = def.and_then(|d| skiff_openapi::field_definition(d, field));
    match list_strategy(def, field) {
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
                        out[i] = Value::Object(merge_map(&base, pmap, items_def)?);
                    }
                    None => out.push(Value::Object(merge_map(&Map::new(), pmap, items_def)?)),
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

    const POD: Option<&str> = Some("io.k8s.api.core.v1.Pod");

    #[test]
    fn strategies_come_from_the_schema() {
        let d = Some("io.k8s.api.core.v1.Container");
        assert_eq!(
            list_strategy(d, "ports"),
            ListStrategy::MergeKey("containerPort")
        );
        assert_eq!(list_strategy(d, "env"), ListStrategy::MergeKey("name"));
        assert_eq!(
            list_strategy(Some("io.k8s.api.core.v1.ServiceSpec"), "ports"),
            ListStrategy::MergeKey("port")
        );
        assert_eq!(
            list_strategy(Some("io.k8s.api.core.v1.PodSpec"), "tolerations"),
            ListStrategy::Replace
        );
        assert_eq!(
            list_strategy(
                Some("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                "finalizers"
            ),
            ListStrategy::PrimitiveMerge
        );
        assert_eq!(
            list_strategy(None, "containers"),
            ListStrategy::Replace,
            "no schema: replace"
        );
        // Tolerations are replaced, not merged.
        let orig = json!({"spec":{"tolerations":[{"key":"a"}],"containers":[]}});
        let out =
            strategic_merge(POD, &orig, &json!({"spec":{"tolerations":[{"key":"b"}]}})).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key":"b"}]));
    }

    #[test]
    fn containers_merge_by_name_and_null_deletes() {
        let orig = json!({"metadata":{"labels":{"a":"1","b":"2"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1"},{"name":"side","image":"busybox"}]}});
        let patch = json!({"metadata":{"labels":{"b":null,"c":"3"}},
            "spec":{"containers":[{"name":"web","image":"nginx:2"}]}});
        let out = strategic_merge(POD, &orig, &patch).unwrap();
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
        let out = strategic_merge(POD, &orig, &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert_eq!(out["spec"]["containers"], json!([{"name":"y","image":"2"}]));
        let r = strategic_merge(
            POD,
            &json!({"spec":{"a":1,"b":2}}),
            &json!({"spec":{"$patch":"replace","c":3}}),
        )
        .unwrap();
        assert_eq!(r, json!({"spec":{"c":3}}));
        assert!(strategic_merge(
            POD,
            &orig,
            &json!({"spec":{"containers":[{"image":"no-key"}]}})
        )
        .is_err());
    }
}
