//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Field sets are upstream's structured-merge-diff sets: a tree of path elements
//! (`f:<field>`, `k:{<map keys>}` for items of map lists, `v:<value>` for items of sets,
//! `i:<index>`), where a *member* is a leaf, an item or a map entry owned as a whole and
//! serialises as `{}` (or `".": {}` next to its children) in `FieldsV1`.
//!
//! Types come from `skiff-openapi`: structs and their named fields, maps, `atomic`/`set`/
//! `map` lists with their keys, atomic structs. Without a schema (unknown kinds, free-form
//! objects) maps are granular and lists atomic, as upstream's deduced type.
//!
//! The algorithms follow upstream's: an update takes ownership of every field it adds or
//! changes from everybody and removes removed fields from everybody; an apply merges the
//! configuration into the live object, owns exactly the configuration's fields, removes the
//! fields it applied last time and no longer applies unless somebody else owns them, and
//! fails with a conflict when it would change a field somebody else owns, unless forced.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::status::{Cause, Status};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The manager that owns what an object held before its first apply.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

// ---------------------------------------------------------------------------------------
// Path elements and sets

/// One step of a field path. The derived order (fields, keys, values, indexes) is
/// upstream's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pe {
    Field(String),
    /// A map-list item: the canonical JSON object of its keys, sorted by key name.
    Key(String),
    /// A set item: its JSON value.
    Value(String),
    Index(usize),
}

impl Pe {
    /// The `FieldsV1` form: `f:name`, `k:{"name":"x"}`, `v:"x"`, `i:0`.
    pub fn fields_v1(&self) -> String {
        match self {
            Pe::Field(f) => format!("f:{f}"),
            Pe::Key(k) => format!("k:{k}"),
            Pe::Value(v) => format!("v:{v}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    fn parse(s: &str) -> Result<Pe, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid path element {s:?}"))?;
        match kind {
            "f" => Ok(Pe::Field(rest.to_string())),
            "k" => {
                let v: Value =
                    serde_json::from_str(rest).map_err(|e| format!("invalid key {rest:?}: {e}"))?;
                let m = v.as_object().ok_or("a key must be a JSON object")?;
                Ok(Pe::Key(key_string(m.iter())))
            }
            "v" => {
                let v: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid value {rest:?}: {e}"))?;
                Ok(Pe::Value(v.to_string()))
            }
            "i" => rest
                .parse()
                .map(Pe::Index)
                .map_err(|_| format!("invalid index {rest:?}")),
            _ => Err(format!("invalid path element {s:?}")),
        }
    }

    /// The form of upstream's path strings: `.name`, `[name="x"]`, `[="x"]`, `[0]`.
    fn display(&self) -> String {
        match self {
            Pe::Field(f) => format!(".{f}"),
            Pe::Key(k) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .unwrap_or_default()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            Pe::Value(v) => format!("[={v}]"),
            Pe::Index(i) => format!("[{i}]"),
        }
    }
}

fn key_string<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>) -> String {
    let sorted: BTreeMap<&String, &Value> = fields.collect();
    let mut m = Map::new();
    for (k, v) in sorted {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m).to_string()
}

/// A path as upstream prints it in conflicts: `.spec.containers[name="web"].image`.
pub fn path_string(path: &[Pe]) -> String {
    path.iter().map(Pe::display).collect()
}

/// A set of field paths. Invariant: no child set is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [pe] => {
                self.members.insert(pe.clone());
            }
            [pe, rest @ ..] => self.children.entry(pe.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[Pe]) -> bool {
        match path {
            [] => false,
            [pe] => self.members.contains(pe),
            [pe, rest @ ..] => self.children.get(pe).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn union(&self, o: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_with(o);
        out
    }

    fn union_with(&mut self, o: &FieldSet) {
        self.members.extend(o.members.iter().cloned());
        for (pe, c) in &o.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(c),
                None => {
                    self.children.insert(pe.clone(), c.clone());
                }
            }
        }
    }

    pub fn difference(&self, o: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&o.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            let d = match o.children.get(pe) {
                Some(oc) => c.difference(oc),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, o: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.intersection(&o.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            if let Some(oc) = o.children.get(pe) {
                let i = c.intersection(oc);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Removes every path of `self` that is, or is below, a member of `o`.
    pub fn recursive_difference(&self, o: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&o.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            if o.members.contains(pe) {
                continue;
            }
            let d = match o.children.get(pe) {
                Some(oc) => c.recursive_difference(oc),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Every member path, members of a node before its children's.
    pub fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON object.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        let keys: BTreeSet<&Pe> = self.members.iter().chain(self.children.keys()).collect();
        for pe in keys {
            let mut inner = match self.children.get(pe) {
                Some(c) => c.to_fields_v1(),
                None => json!({}),
            };
            if self.children.contains_key(pe) && self.members.contains(pe) {
                let mut with_dot = Map::new();
                with_dot.insert(".".into(), json!({}));
                if let Value::Object(rest) = inner {
                    with_dot.extend(rest);
                }
                inner = Value::Object(with_dot);
            }
            m.insert(pe.fields_v1(), inner);
        }
        Value::Object(m)
    }

    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let m = v.as_object().ok_or("fieldsV1 must be a JSON object")?;
        let mut out = FieldSet::default();
        for (k, inner) in m {
            if k == "." {
                continue;
            }
            let pe = Pe::parse(k)?;
            let im = inner
                .as_object()
                .ok_or("fieldsV1 entries must be JSON objects")?;
            if im.is_empty() || im.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let child = FieldSet::from_fields_v1(inner)?;
            if !child.is_empty() {
                out.children.insert(pe, child);
            }
        }
        Ok(out)
    }

    fn child(&self, pe: &Pe) -> Option<&FieldSet> {
        self.children.get(pe)
    }
}

// ---------------------------------------------------------------------------------------
// Types

/// How a list's items are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind<'s> {
    Set,
    Map(&'static [&'static str]),
    /// `x-kubernetes-list-map-keys` of a custom resource's schema.
    MapJson(&'s [Value]),
}

impl ListKind<'_> {
    fn keys(&self) -> Vec<&str> {
        match self {
            ListKind::Set => Vec::new(),
            ListKind::Map(k) => k.to_vec(),
            ListKind::MapJson(k) => k.iter().filter_map(Value::as_str).collect(),
        }
    }
}

/// The items of a `set` or `map` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Items<'s> {
    /// A definition of the built-in schemas (`None`: scalars).
    Def(Option<&'static str>),
    /// A node of a custom resource's structural schema.
    Schema(&'s Value),
}

/// The schema type of a value, as server-side apply sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty<'s> {
    /// A leaf.
    Scalar,
    /// Replaced as a whole (atomic lists, maps and structs).
    Atomic,
    /// No schema: objects are granular maps, lists atomic.
    Deduced,
    /// The top level of an object without a schema: deduced, but `metadata` is ObjectMeta.
    DeducedRoot,
    /// A struct with named fields.
    Struct(&'static str),
    /// A granular map whose values have this definition (or no schema).
    Map(Option<&'static str>),
    /// A `set` or `map` list.
    List {
        items: Items<'s>,
        kind: ListKind<'s>,
    },
    /// The top level of a custom resource with a structural schema (`openAPIV3Schema`).
    SchemaRoot(&'s Value),
    /// An object of a structural schema with `properties`.
    SchemaStruct(&'s Value),
    /// A granular map of a structural schema; the values' schema.
    SchemaMap(&'s Value),
}

impl<'s> Ty<'s> {
    /// The type of an object of `group`/`version`/`kind`.
    pub fn root(group: &str, version: &str, kind: &str) -> Ty<'static> {
        match skiff_openapi::definition_for_kind(group, version, kind) {
            Some(d) => Ty::Struct(d),
            None => Ty::DeducedRoot,
        }
    }

    /// The type a node of a structural schema describes: `x-kubernetes-list-type`,
    /// `-list-map-keys`, `-map-type`, `-int-or-string` and `-preserve-unknown-fields` as
    /// upstream reads them (lists are atomic unless marked).
    pub fn schema(s: &'s Value) -> Ty<'s> {
        let ext = |k: &str| s.get(k).and_then(Value::as_str);
        if s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Ty::Scalar;
        }
        match ext("type").unwrap_or("") {
            "object" => {
                if ext("x-kubernetes-map-type") == Some("atomic") {
                    Ty::Atomic
                } else if s.get("properties").is_some_and(Value::is_object) {
                    Ty::SchemaStruct(s)
                } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    Ty::SchemaMap(ap)
                } else {
                    Ty::Deduced
                }
            }
            "array" => {
                let items = match s.get("items").filter(|i| i.is_object()) {
                    Some(i) => Items::Schema(i),
                    None => Items::Def(None),
                };
                match ext("x-kubernetes-list-type") {
                    Some("set") => Ty::List {
                        items,
                        kind: ListKind::Set,
                    },
                    Some("map") => match s
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                    {
                        Some(keys) if !keys.is_empty() => Ty::List {
                            items,
                            kind: ListKind::MapJson(keys),
                        },
                        _ => Ty::Atomic,
                    },
                    _ => Ty::Atomic,
                }
            }
            "" => Ty::Deduced,
            _ => Ty::Scalar,
        }
    }

    fn of_definition(def: Option<&'static str>) -> Ty<'s> {
        match def {
            Some(d) if skiff_openapi::struct_is_atomic(d) => Ty::Atomic,
            Some(d) => Ty::Struct(d),
            None => Ty::Deduced,
        }
    }

    /// Whether `key` may appear in an object of this type: structs know their fields
    /// (`apiVersion` and `kind` are always allowed at the top).
    fn declares(self, key: &str) -> bool {
        match self {
            Ty::Struct(d) => struct_fields(d).is_none_or(|f| f.contains(key)),
            Ty::SchemaStruct(s) | Ty::SchemaRoot(s) => {
                s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
                    || s.pointer("/properties").and_then(|p| p.get(key)).is_some()
                    || (matches!(self, Ty::SchemaRoot(_))
                        && matches!(key, "apiVersion" | "kind" | "metadata"))
            }
            _ => true,
        }
    }

    fn named(self) -> bool {
        matches!(
            self,
            Ty::Struct(_) | Ty::SchemaStruct(_) | Ty::SchemaRoot(_)
        )
    }

    fn field(self, key: &str) -> Ty<'s> {
        match self {
            Ty::Struct(d) => {
                let Some(fi) = skiff_openapi::field(d, key) else {
                    return Ty::Deduced;
                };
                let atomic = fi.map_type == Some(skiff_openapi::MapType::Atomic);
                match fi.shape {
                    skiff_openapi::Shape::Scalar => Ty::Scalar,
                    _ if atomic => Ty::Atomic,
                    skiff_openapi::Shape::Object => Ty::of_definition(fi.definition),
                    skiff_openapi::Shape::Map => Ty::Map(fi.definition),
                    skiff_openapi::Shape::List => match fi.list {
                        Some(l) => match l.list_type {
                            skiff_openapi::ListType::Set => Ty::List {
                                items: Items::Def(fi.definition),
                                kind: ListKind::Set,
                            },
                            skiff_openapi::ListType::Map if !l.map_keys.is_empty() => Ty::List {
                                items: Items::Def(fi.definition),
                                kind: ListKind::Map(l.map_keys),
                            },
                            _ => Ty::Atomic,
                        },
                        None => Ty::Atomic,
                    },
                }
            }
            Ty::Map(values) => Ty::of_definition(values),
            Ty::DeducedRoot | Ty::SchemaRoot(_) if key == "metadata" => Ty::Struct(OBJECT_META),
            Ty::SchemaRoot(s) | Ty::SchemaStruct(s) => {
                match s.get("properties").and_then(|p| p.get(key)) {
                    Some(p) => Ty::schema(p),
                    None => Ty::Deduced,
                }
            }
            Ty::SchemaMap(values) => Ty::schema(values),
            _ => Ty::Deduced,
        }
    }

    fn item(self) -> Ty<'s> {
        match self {
            Ty::List {
                items: Items::Def(d),
                ..
            } => Ty::of_definition(d),
            Ty::List {
                items: Items::Schema(s),
                ..
            } => Ty::schema(s),
            _ => Ty::Deduced,
        }
    }

    fn child(self, pe: &Pe) -> Ty<'s> {
        match pe {
            Pe::Field(f) => self.field(f),
            _ => self.item(),
        }
    }
}

/// The property names of every definition of the built-in schemas, read once from the
/// embedded OpenAPI documents. `None` for definitions without properties (free-form).
fn struct_fields(def: &str) -> Option<&'static BTreeSet<String>> {
    static FIELDS: std::sync::LazyLock<BTreeMap<String, BTreeSet<String>>> =
        std::sync::LazyLock::new(|| {
            let mut out = BTreeMap::new();
            for (g, v) in skiff_openapi::group_versions() {
                let Ok(doc) = serde_json::from_slice::<Value>(skiff_openapi::components_for(g, v))
                else {
                    continue;
                };
                let Some(schemas) = doc.get("schemas").and_then(Value::as_object) else {
                    continue;
                };
                for (name, schema) in schemas {
                    if out.contains_key(name) {
                        continue;
                    }
                    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                        out.insert(name.clone(), props.keys().cloned().collect());
                    }
                }
            }
            out
        });
    FIELDS.get(def)
}

/// What a walk does with a value of a type.
enum Node<'a, 's> {
    Leaf,
    Obj(&'a Map<String, Value>),
    List(&'a Vec<Value>, ListKind<'s>),
}

fn node<'a, 's>(ty: Ty<'s>, v: &'a Value) -> Node<'a, 's> {
    match (ty, v) {
        (Ty::Scalar | Ty::Atomic, _) => Node::Leaf,
        (
            Ty::Struct(_)
            | Ty::Map(_)
            | Ty::Deduced
            | Ty::DeducedRoot
            | Ty::SchemaRoot(_)
            | Ty::SchemaStruct(_)
            | Ty::SchemaMap(_),
            Value::Object(m),
        ) => Node::Obj(m),
        (Ty::List { kind, .. }, Value::Array(a)) => Node::List(a, kind),
        _ => Node::Leaf,
    }
}

fn is_empty_node(n: &Node<'_, '_>) -> bool {
    match n {
        Node::Leaf => true,
        Node::Obj(m) => m.is_empty(),
        Node::List(a, _) => a.is_empty(),
    }
}

/// Defaults of map-list keys that upstream's schemas declare.
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| json!("TCP"))
}

fn item_pe(kind: ListKind<'_>, item: &Value, index: usize) -> Result<Pe, String> {
    match kind {
        ListKind::Set => Ok(Pe::Value(item.to_string())),
        ListKind::Map(_) | ListKind::MapJson(_) => {
            let mut fields = Vec::new();
            for k in kind.keys() {
                let v = match item.get(k) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => key_default(k).ok_or_else(|| {
                        format!("associative list with keys has an element that omits key field {k:?} (and doesn't have default value)")
                    })?,
                };
                fields.push((k.to_string(), v));
            }
            let _ = index;
            Ok(Pe::Key(key_string(fields.iter().map(|(k, v)| (k, v)))))
        }
    }
}

/// Item path elements of a live list: duplicates and items without keys fall back to their
/// index so nothing is lost.
fn index_items<'v>(kind: ListKind<'_>, items: &'v [Value]) -> Vec<(Pe, &'v Value)> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let pe = item_pe(kind, item, i).unwrap_or(Pe::Index(i));
            let pe = if seen.insert(pe.clone()) {
                pe
            } else {
                Pe::Index(i)
            };
            (pe, item)
        })
        .collect()
}

/// Checks an applied configuration: map-list items carry their keys, at most once.
pub fn validate_config(ty: Ty<'_>, v: &Value) -> Result<(), String> {
    validate_at(ty, v, &mut Vec::new())
}

fn validate_at(ty: Ty<'_>, v: &Value, path: &mut Vec<Pe>) -> Result<(), String> {
    match node(ty, v) {
        Node::Leaf => Ok(()),
        Node::Obj(m) => {
            for (k, cv) in m {
                path.push(Pe::Field(k.clone()));
                if !ty.declares(k) {
                    return Err(format!(
                        "{}: field not declared in schema",
                        path_string(path)
                    ));
                }
                validate_at(ty.field(k), cv, path)?;
                path.pop();
            }
            Ok(())
        }
        Node::List(items, kind) => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = item_pe(kind, item, i)
                    .map_err(|e| format!("{}: element {i}: {e}", path_string(path)))?;
                if !seen.insert(pe.clone()) {
                    return Err(format!(
                        "{}: duplicate entries for key {}",
                        path_string(path),
                        pe.display()
                    ));
                }
                path.push(pe);
                validate_at(ty.item(), item, path)?;
                path.pop();
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Walks

/// Every leaf, item and map entry of `v`: what applying `v` owns.
pub fn to_field_set(ty: Ty<'_>, v: &Value) -> FieldSet {
    let mut set = FieldSet::default();
    field_set_at(ty, v, &mut Vec::new(), &mut set);
    set
}

fn field_set_at(ty: Ty<'_>, v: &Value, path: &mut Vec<Pe>, set: &mut FieldSet) {
    let n = node(ty, v);
    if is_empty_node(&n) {
        set.insert(path);
        return;
    }
    match n {
        Node::Leaf => set.insert(path),
        Node::Obj(m) => {
            for (k, cv) in m {
                path.push(Pe::Field(k.clone()));
                field_set_at(ty.field(k), cv, path, set);
                if !ty.named() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Node::List(items, kind) => {
            for (pe, item) in index_items(kind, items) {
                path.push(pe);
                field_set_at(ty.item(), item, path, set);
                set.insert(path);
                path.pop();
            }
        }
    }
}

/// What changed from `lhs` to `rhs`. Containers that appear or disappear are added or
/// removed themselves, as well as their contents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    fn filter(&mut self, keep: &dyn Fn(&mut FieldSet)) {
        keep(&mut self.added);
        keep(&mut self.modified);
        keep(&mut self.removed);
    }
}

pub fn compare(ty: Ty<'_>, lhs: &Value, rhs: &Value) -> Comparison {
    let mut c = Comparison::default();
    compare_at(ty, Some(lhs), Some(rhs), &mut Vec::new(), &mut c);
    c
}

fn compare_at(
    ty: Ty<'_>,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Vec<Pe>,
    c: &mut Comparison,
) {
    let ln = l.map(|v| node(ty, v));
    let rn = r.map(|v| node(ty, v));
    let l_empty = ln.as_ref().is_none_or(is_empty_node);
    let r_empty = rn.as_ref().is_none_or(is_empty_node);
    if matches!(ty, Ty::Scalar | Ty::Atomic) || (l_empty && r_empty) {
        match (l, r) {
            (None, Some(_)) => c.added.insert(path),
            (Some(_), None) => c.removed.insert(path),
            (Some(a), Some(b)) if a != b => c.modified.insert(path),
            _ => {}
        }
        return;
    }
    match (ln.as_ref(), rn.as_ref()) {
        (Some(Node::Obj(_)), _) | (_, Some(Node::Obj(_))) => {
            let lm = match &ln {
                Some(Node::Obj(m)) => Some(*m),
                _ => None,
            };
            let rm = match &rn {
                Some(Node::Obj(m)) => Some(*m),
                _ => None,
            };
            let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
            for k in rm.map(|m| m.keys()).into_iter().flatten() {
                if !lm.is_some_and(|m| m.contains_key(k)) {
                    keys.push(k);
                }
            }
            for k in keys {
                path.push(Pe::Field(k.clone()));
                compare_at(
                    ty.field(k),
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    path,
                    c,
                );
                path.pop();
            }
        }
        (Some(Node::List(_, kind)), _) | (_, Some(Node::List(_, kind))) => {
            let kind = *kind;
            let li = match &ln {
                Some(Node::List(a, _)) => index_items(kind, a),
                _ => Vec::new(),
            };
            let ri = match &rn {
                Some(Node::List(a, _)) => index_items(kind, a),
                _ => Vec::new(),
            };
            let lmap: BTreeMap<&Pe, &Value> = li.iter().map(|(p, v)| (p, *v)).collect();
            let rmap: BTreeMap<&Pe, &Value> = ri.iter().map(|(p, v)| (p, *v)).collect();
            let mut pes: Vec<&Pe> = li.iter().map(|(p, _)| p).collect();
            pes.extend(ri.iter().map(|(p, _)| p).filter(|p| !lmap.contains_key(p)));
            for pe in pes {
                path.push(pe.clone());
                compare_at(
                    ty.item(),
                    lmap.get(pe).copied(),
                    rmap.get(pe).copied(),
                    path,
                    c,
                );
                path.pop();
            }
        }
        _ => {}
    }
    // Containers that appear or disappear.
    if l.is_none() {
        c.added.insert(path);
    } else if r.is_none() {
        c.removed.insert(path);
    }
}

/// Merges an applied configuration into the live object: the configuration's leaves win,
/// granular maps and lists merge item by item, nothing is removed.
pub fn merge(ty: Ty<'_>, live: &Value, config: &Value) -> Value {
    let ln = node(ty, live);
    let rn = node(ty, config);
    match (&ln, &rn) {
        (Node::Obj(lm), Node::Obj(rm)) => {
            let mut out = Map::new();
            for (k, lv) in lm.iter() {
                let merged = match rm.get(k) {
                    Some(rv) => merge(ty.field(k), lv, rv),
                    None => lv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            for (k, rv) in rm.iter() {
                if !lm.contains_key(k) {
                    out.insert(k.clone(), rv.clone());
                }
            }
            Value::Object(out)
        }
        (Node::List(la, kind), Node::List(ra, _)) => Value::Array(merge_list(ty, *kind, la, ra)),
        _ => config.clone(),
    }
}

/// Upstream's list merge order: shared items in the configuration's order, live-only items
/// where they were, new items where the configuration puts them.
fn merge_list(ty: Ty<'_>, kind: ListKind<'_>, lhs: &[Value], rhs: &[Value]) -> Vec<Value> {
    let l = index_items(kind, lhs);
    let r = index_items(kind, rhs);
    let lmap: BTreeMap<&Pe, &Value> = l.iter().map(|(p, v)| (p, *v)).collect();
    let rmap: BTreeMap<&Pe, &Value> = r.iter().map(|(p, v)| (p, *v)).collect();
    let mut shared = r
        .iter()
        .map(|(p, _)| p)
        .filter(|p| lmap.contains_key(p))
        .collect::<std::collections::VecDeque<_>>();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&Pe> = BTreeSet::new();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let item = |pe: &Pe| -> Value {
        match (lmap.get(pe), rmap.get(pe)) {
            (Some(lv), Some(rv)) => merge(ty.item(), lv, rv),
            (Some(lv), None) => (*lv).clone(),
            (None, Some(rv)) => (*rv).clone(),
            (None, None) => Value::Null,
        }
    };
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l[li].0;
            if *pe == r[ri].0 {
                merged_rhs.insert(pe);
                out.push(item(pe));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if rmap.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < l.len() {
            let pe = &l[li].0;
            if !rmap.contains_key(pe) {
                out.push(item(pe));
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < r.len() {
            let pe = &r[ri].0;
            merged_rhs.insert(pe);
            out.push(item(pe));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

/// `v` without the members of `set` (and everything below them).
pub fn remove_items(ty: Ty<'_>, v: &Value, set: &FieldSet) -> Value {
    if set.is_empty() {
        return v.clone();
    }
    match node(ty, v) {
        Node::Leaf => v.clone(),
        Node::Obj(m) => {
            let mut out = Map::new();
            for (k, cv) in m {
                let pe = Pe::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(cs) => {
                        let r = remove_items(ty.field(k), cv, cs);
                        if emptied(cv, &r) {
                            continue;
                        }
                        out.insert(k.clone(), r);
                    }
                    None => {
                        out.insert(k.clone(), cv.clone());
                    }
                }
            }
            Value::Object(out)
        }
        Node::List(items, kind) => {
            let mut out = Vec::new();
            for (pe, item) in index_items(kind, items) {
                if set.members.contains(&pe) {
                    continue;
                }
                match set.child(&pe) {
                    Some(cs) => out.push(remove_items(ty.item(), item, cs)),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
    }
}

fn emptied(before: &Value, after: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    empty(after) && !empty(before)
}

/// `set` plus the named struct fields it has children under: owning `.spec.replicas`
/// means owning the `.spec` field, but owning `.metadata.labels.app` does not mean owning
/// a label map entry above it.
pub fn ensure_named_fields_are_members(ty: Ty<'_>, set: &FieldSet) -> FieldSet {
    let mut out = FieldSet {
        members: set.members.clone(),
        children: BTreeMap::new(),
    };
    for (pe, c) in &set.children {
        if ty.named() && matches!(pe, Pe::Field(_)) {
            out.members.insert(pe.clone());
        }
        out.children
            .insert(pe.clone(), ensure_named_fields_are_members(ty.child(pe), c));
    }
    out
}

// ---------------------------------------------------------------------------------------
// managedFields

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    /// `""`, `status` or `scale`.
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    fn same_manager(&self, manager: &str, operation: &str, api_version: &str, sub: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == sub
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// upstream's printManager: `"kubectl" with subresource "status" using v1`.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Entry, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = s("operation");
        if operation != "Apply" && operation != "Update" {
            return Err(format!("invalid operation {operation:?}"));
        }
        let fields_type = s("fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            return Err(format!("invalid fieldsType {fields_type:?}"));
        }
        Ok(Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: v.get("time").and_then(Value::as_str).map(String::from),
            subresource: s("subresource"),
            fields: match v.get("fieldsV1") {
                Some(f) if !f.is_null() => FieldSet::from_fields_v1(f)?,
                _ => FieldSet::default(),
            },
        })
    }
}

/// Decodes `metadata.managedFields`. `Ok(None)` when absent.
pub fn decode_managed(obj: &Value) -> Result<Option<Vec<Entry>>, String> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(Entry::from_json)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err("metadata.managedFields must be a list".into()),
    }
}

/// Writes entries (non-empty ones, in upstream's order) into `metadata.managedFields`.
pub fn encode_managed(obj: &mut Value, entries: &[Entry]) {
    let mut entries: Vec<&Entry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(Value::Object(root)) = Some(&mut *obj) else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(|e| e.to_json()).collect()),
        );
    }
}

/// Which part of an object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` is ignored when the resource has a status subresource.
    Main { status_subresource: bool },
    /// `/status`: only `status` counts.
    Status,
    /// `/scale`: only the replicas field counts (a JSON pointer: `/spec/replicas`, or a
    /// custom resource's `specReplicasPath`).
    Scale { replicas: &'static str },
    /// Everything counts (`/scale` views, internal writes).
    All,
}

impl Scope {
    fn subresource(self) -> &'static str {
        match self {
            Scope::Status => "status",
            Scope::Scale { .. } => "scale",
            _ => "",
        }
    }

    /// `set` without what no manager may own.
    fn filter(self, set: &FieldSet) -> FieldSet {
        let mut s = set.clone();
        self.filter_in_place(&mut s);
        s
    }

    /// Drops what no manager may own: server-set metadata, and fields this scope resets.
    /// (In place: this runs three times per write, on sets as large as the object.)
    fn filter_in_place(self, s: &mut FieldSet) {
        for f in ["apiVersion", "kind", "metadata"] {
            s.members.remove(&Pe::Field(f.into()));
        }
        let meta = Pe::Field("metadata".into());
        if let Some(m) = s.children.get_mut(&meta) {
            for f in [
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            ] {
                m.members.remove(&Pe::Field(f.into()));
            }
            // managedFields never owns itself or anything below it.
            m.children.remove(&Pe::Field("managedFields".into()));
            if m.is_empty() {
                s.children.remove(&meta);
            }
        }
        let status = Pe::Field("status".into());
        match self {
            Scope::Main {
                status_subresource: true,
            } => {
                s.members.remove(&status);
                s.children.remove(&status);
            }
            Scope::Status => {
                s.members.clear();
                s.children.retain(|pe, _| *pe == status);
            }
            Scope::Scale { replicas } => {
                let path: Vec<Pe> = replicas
                    .split('/')
                    .skip(1)
                    .map(|seg| Pe::Field(seg.replace("~1", "/").replace("~0", "~")))
                    .collect();
                let mut only = FieldSet::default();
                only.insert(&path);
                *s = s.intersection(&only);
            }
            _ => {}
        }
    }
}

/// The object as field ownership compares it: without managedFields and resourceVersion.
fn comparable(obj: &Value) -> std::borrow::Cow<'_, Value> {
    let meta = obj.get("metadata").and_then(Value::as_object);
    if meta.is_none_or(|m| !m.contains_key("managedFields") && !m.contains_key("resourceVersion")) {
        // Nothing to drop (a create, usually): no copy of the whole object.
        return std::borrow::Cow::Borrowed(obj);
    }
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    std::borrow::Cow::Owned(o)
}

/// Non-pointer struct fields of the Go types: present (empty) in a new object of the kind,
/// so a create does not own them as a whole (upstream compares with the Go zero value).
fn zero_object(ty: Ty<'_>) -> Value {
    fn zero_struct(def: &'static str) -> Value {
        const NON_POINTER: &[(&str, &[&str])] = &[
            ("io.k8s.api.core.v1.PodTemplateSpec", &["metadata", "spec"]),
            (
                "io.k8s.api.apps.v1.DeploymentSpec",
                &["template", "strategy"],
            ),
            (
                "io.k8s.api.apps.v1.StatefulSetSpec",
                &["template", "updateStrategy"],
            ),
            (
                "io.k8s.api.apps.v1.DaemonSetSpec",
                &["template", "updateStrategy"],
            ),
            ("io.k8s.api.apps.v1.ReplicaSetSpec", &["template"]),
            ("io.k8s.api.batch.v1.JobSpec", &["template"]),
            ("io.k8s.api.batch.v1.CronJobSpec", &["jobTemplate"]),
            ("io.k8s.api.batch.v1.JobTemplateSpec", &["metadata", "spec"]),
        ];
        let mut out = Map::new();
        let fields = NON_POINTER
            .iter()
            .find(|(d, _)| *d == def)
            .map(|(_, f)| *f)
            .unwrap_or_default();
        for f in fields {
            let child = match Ty::Struct(def).field(f) {
                Ty::Struct(cd) => zero_struct(cd),
                _ => json!({}),
            };
            out.insert((*f).into(), child);
        }
        // Slices without omitempty serialise as null.
        if def == "io.k8s.api.core.v1.PodSpec" {
            out.insert("containers".into(), Value::Null);
        }
        Value::Object(out)
    }
    let mut out = Map::new();
    if let Ty::Struct(def) = ty {
        for f in ["metadata", "spec", "status"] {
            if skiff_openapi::field(def, f).is_some() {
                let child = match ty.field(f) {
                    Ty::Struct(cd) if f == "spec" => zero_struct(cd),
                    _ => json!({}),
                };
                out.insert(f.into(), child);
            }
        }
    } else {
        out.insert("metadata".into(), json!({}));
    }
    Value::Object(out)
}

/// What a write looks like to ownership tracking.
#[derive(Clone, Debug)]
pub struct Write<'a> {
    pub ty: Ty<'a>,
    /// `apiVersion` of the request (`v1`, `apps/v1`).
    pub api_version: &'a str,
    pub manager: &'a str,
    pub scope: Scope,
    /// RFC 3339, seconds.
    pub now: &'a str,
}

/// Records an update (create, PUT, non-apply PATCH) in `new`'s managedFields: the manager
/// takes every field it added or changed from everybody, removed fields leave everybody.
/// `live` is `None` for a create.
pub fn track_update(w: &Write, live: Option<&Value>, new: &mut Value) {
    // As upstream: managedFields sent by the client replace the stored ones (an empty list
    // resets them), except on subresources; if they are absent or invalid, the live ones.
    let requested = if matches!(w.scope, Scope::Status | Scope::Scale { .. }) {
        None
    } else {
        match new.pointer("/metadata/managedFields") {
            Some(Value::Array(a)) if a.is_empty() => Some(Vec::new()),
            Some(Value::Array(a))
                if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) =>
            {
                Some(Vec::new())
            }
            _ => decode_managed(new).ok().flatten().filter(|e| !e.is_empty()),
        }
    };
    let mut entries = match requested {
        Some(e) => e,
        None => live
            .and_then(|l| decode_managed(l).ok().flatten())
            .unwrap_or_default(),
    };
    let rhs = comparable(new);
    let lhs = match live {
        Some(l) => comparable(l),
        None => std::borrow::Cow::Owned(zero_object(w.ty)),
    };
    let mut cmp = compare(w.ty, &lhs, &rhs);
    cmp.filter(&|s| w.scope.filter_in_place(s));
    let taken = cmp.added.union(&cmp.modified);
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&taken).difference(&cmp.removed);
    }
    if !taken.is_empty() {
        let sub = w.scope.subresource();
        match entries
            .iter_mut()
            .find(|e| e.same_manager(w.manager, "Update", w.api_version, sub))
        {
            Some(e) => {
                e.fields = e.fields.union(&taken);
                e.time = Some(w.now.to_string());
            }
            None => entries.push(Entry {
                manager: w.manager.to_string(),
                operation: "Update".into(),
                api_version: w.api_version.to_string(),
                time: Some(w.now.to_string()),
                subresource: sub.to_string(),
                fields: taken,
            }),
        }
    }
    cap_updaters(&mut entries);
    encode_managed(new, &entries);
}

/// At most this many Update entries; older ones merge into `ancient-changes` (upstream's
/// DefaultMaxUpdateManagers).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// Merges the oldest Update entries into one `ancient-changes` entry per apiVersion until
/// at most [`MAX_UPDATE_MANAGERS`] remain, as upstream's capManagersManager.
fn cap_updaters(entries: &mut Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    loop {
        let mut updaters: Vec<usize> = (0..entries.len())
            .filter(|i| entries[*i].operation == "Update")
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updaters.sort_by(|a, b| entries[*a].time.cmp(&entries[*b].time));
        // The oldest updater joins the oldest other updater of its apiVersion (or the
        // bucket of that version) as `ancient-changes`.
        let oldest = updaters[0];
        let version = entries[oldest].api_version.clone();
        let Some(&partner) = updaters[1..]
            .iter()
            .filter(|i| entries[**i].api_version == version)
            .min_by_key(|i| {
                (
                    entries[**i].manager != "ancient-changes",
                    entries[**i].time.clone(),
                )
            })
        else {
            // Alone in its version: nothing to merge with; rename it into the bucket.
            if entries[oldest].manager == "ancient-changes" {
                return;
            }
            entries[oldest].manager = "ancient-changes".into();
            continue;
        };
        let moved = entries.remove(oldest);
        let partner = if partner > oldest {
            partner - 1
        } else {
            partner
        };
        let p = &mut entries[partner];
        p.fields = p.fields.union(&moved.fields);
        p.manager = "ancient-changes".into();
        p.subresource.clear();
        if p.time < moved.time {
            p.time = moved.time;
        }
    }
}

/// A conflict: a field the apply would change that another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

/// upstream's apply conflict error: 409 with one `FieldManagerConflict` cause per field.
pub fn conflict_status(conflicts: &[Conflict]) -> Status {
    let message = if let [c] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.path
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.path);
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut s = Status::new(409, "Conflict", message);
    s.details.causes = conflicts
        .iter()
        .map(|c| {
            Cause::new(
                "FieldManagerConflict",
                format!("conflict with {}", c.manager),
                c.path.clone(),
            )
        })
        .collect();
    s
}

/// Applies `config` (already checked for kind and version) to `live` (`None`: the object
/// does not exist yet). Returns the new object with its managedFields.
pub fn apply(
    w: &Write,
    live: Option<&Value>,
    config: &Value,
    force: bool,
) -> Result<Value, Status> {
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(Status::bad_request("metadata.managedFields must be nil"));
    }
    validate_config(w.ty, config).map_err(|e| {
        let av = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        let gv = if av.contains('/') {
            av.to_string()
        } else {
            format!("/{av}")
        };
        Status::bad_request(format!(
            "failed to create typed patch object ({gv}, Kind={kind}): {e}"
        ))
    })?;
    let mut live_obj = match live {
        Some(l) => l.clone(),
        None => json!({}),
    };
    // An object nobody owns anything of (created before tracking): what it holds belongs to
    // "before-first-apply", so an apply conflicts with it instead of silently taking over.
    if live.is_some()
        && decode_managed(&live_obj)
            .ok()
            .flatten()
            .is_none_or(|e| e.is_empty())
    {
        let before = Write {
            manager: BEFORE_FIRST_APPLY,
            ..w.clone()
        };
        let mut tracked = live_obj.clone();
        if let Some(m) = tracked.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        track_update(&before, None, &mut tracked);
        live_obj = tracked;
    }
    let mut entries = decode_managed(&live_obj).ok().flatten().unwrap_or_default();
    let live_c = comparable(&live_obj);
    let result = apply_entries(w, &live_c, config, force, &mut entries);
    let mut merged = match result {
        Ok(m) => m,
        Err(conflicts) if w.manager == "kubectl" => {
            // kubectl's upgrade from client-side apply: conflicts on fields the last
            // client-side apply set, and which still hold what it set, are no conflicts.
            let allowed = last_applied_fields(w.ty, &live_c);
            if conflicts.iter().all(|(_, p)| allowed.has(p)) {
                entries = decode_managed(&live_obj).ok().flatten().unwrap_or_default();
                apply_entries(w, &live_c, config, true, &mut entries)
                    .map_err(|c| conflict_status(&describe(&c)))?
            } else {
                let left: Vec<_> = conflicts
                    .into_iter()
                    .filter(|(_, p)| !allowed.has(p))
                    .collect();
                return Err(conflict_status(&describe(&left)));
            }
        }
        Err(conflicts) => return Err(conflict_status(&describe(&conflicts))),
    };
    let changed = merged != *live_c;
    if let Some(e) = entries
        .iter_mut()
        .find(|e| e.same_manager(w.manager, "Apply", w.api_version, w.scope.subresource()))
    {
        if changed || e.time.is_none() {
            e.time = Some(w.now.to_string());
        }
    }
    // Keep client-side apply's annotation in step when kubectl applies server-side.
    if w.manager == "kubectl"
        && live_c
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .is_some()
    {
        let mut la = config.clone();
        if let Some(a) = la
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
        }
        if let Some(a) = merged
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.insert(LAST_APPLIED.into(), json!(la.to_string()));
        }
    }
    cap_updaters(&mut entries);
    encode_managed(&mut merged, &entries);
    Ok(merged)
}

fn describe(conflicts: &[(Entry, Vec<Pe>)]) -> Vec<Conflict> {
    let mut out: Vec<Conflict> = conflicts
        .iter()
        .map(|(e, p)| Conflict {
            manager: e.describe(),
            path: path_string(p),
        })
        .collect();
    out.sort_by(|a, b| a.manager.cmp(&b.manager));
    out
}

/// Fields of the last client-side-applied configuration that the live object still has as
/// applied.
fn last_applied_fields(ty: Ty<'_>, live: &Value) -> FieldSet {
    let Some(la) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return FieldSet::default();
    };
    let set = to_field_set(ty, &la);
    let cmp = compare(ty, &la, live);
    set.difference(&cmp.modified.union(&cmp.removed))
}

/// The apply proper, on decoded entries. Errs with the conflicts.
fn apply_entries(
    w: &Write,
    live: &Value,
    config: &Value,
    force: bool,
    entries: &mut Vec<Entry>,
) -> Result<Value, Vec<(Entry, Vec<Pe>)>> {
    let sub = w.scope.subresource();
    let mut merged = merge(w.ty, live, config);
    let me = entries
        .iter()
        .position(|e| e.same_manager(w.manager, "Apply", w.api_version, sub));
    let last = me.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let applied = w.scope.filter(&to_field_set(w.ty, config));
    let last = w.scope.filter(&last);
    let me = match me {
        Some(i) => {
            entries[i].fields = applied.clone();
            entries[i].api_version = w.api_version.to_string();
            i
        }
        None => {
            entries.push(Entry {
                manager: w.manager.to_string(),
                operation: "Apply".into(),
                api_version: w.api_version.to_string(),
                time: None,
                subresource: sub.to_string(),
                fields: applied.clone(),
            });
            entries.len() - 1
        }
    };
    // Remove what this manager applied last time and nobody (itself included) owns now.
    if !last.is_empty() {
        let mut owned = FieldSet::default();
        for e in entries.iter() {
            owned.union_with(&e.fields);
        }
        let owned = ensure_named_fields_are_members(w.ty, &owned);
        let last = ensure_named_fields_are_members(w.ty, &last);
        let present = ensure_named_fields_are_members(w.ty, &to_field_set(w.ty, &merged));
        let remove = present.intersection(&last).difference(&owned);
        merged = remove_items(w.ty, &merged, &remove);
    }
    let mut cmp = compare(w.ty, live, &merged);
    cmp.filter(&|s| w.scope.filter_in_place(s));
    let changed = cmp.added.union(&cmp.modified);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        let c = e.fields.intersection(&changed);
        for p in c.paths() {
            conflicts.push((e.clone(), p));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != me {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(merged)
}

#[cfg(test)]
mod tests;
