//! OpenAPI v3 schemas and merge metadata for the kinds Skiff serves.
//!
//! # What this crate owns
//!
//! * The `components` part of every `/openapi/v3/<group-version>` document: the schemas of
//!   the group-version's kinds and their `*List` kinds, of the kinds its subresources answer
//!   with (`autoscaling/v1` `Scale`, `policy/v1` `Eviction`, `authentication.k8s.io/v1`
//!   `TokenRequest`), of the generic `meta/v1` kinds (`Status`, `DeleteOptions`, `Patch`,
//!   `WatchEvent`, `APIResourceList`), and of everything those refer to — with upstream's
//!   definition names, `$ref: #/components/schemas/<name>` (wrapped in `allOf` when the
//!   reference has siblings), descriptions, and the extensions clients read:
//!   `x-kubernetes-group-version-kind`, `x-kubernetes-list-type`,
//!   `x-kubernetes-list-map-keys`, `x-kubernetes-patch-merge-key`,
//!   `x-kubernetes-patch-strategy` and `x-kubernetes-map-type`. The API server adds the
//!   `paths`; see [`components_for`].
//! * The same merge metadata as lookup tables, so strategic merge patch and server-side
//!   apply can walk an object alongside its schema: [`definition_for_kind`], [`field`],
//!   [`field_definition`], [`list_field_meta`], [`struct_is_atomic`].
//!
//! Everything is derived at build time from `k8s-openapi` (Kubernetes 1.33, its `schemars`
//! schemas and the merge strategies of its `DeepMerge` impls); see `build/`. k8s-openapi is
//! only a build-dependency: this crate has no runtime dependencies.
//!
//! # What it must not do
//!
//! No HTTP, no I/O and no parsing at run time: documents are embedded bytes and lookups
//! are binary searches over static tables. Paths, ETags and hashes belong to the API
//! server.
//!
//! # Known approximations
//!
//! k8s-openapi folds upstream's extensions into one merge strategy per field. The build
//! script reads them back with a few documented override tables (`build/merge.rs`), and:
//! lists upstream leaves without `x-kubernetes-list-type` are reported as `atomic` (what
//! server-side apply assumes for them anyway); explicit `x-kubernetes-map-type: granular`
//! is not reproduced (it is the default); `default` values upstream publishes for
//! required fields are absent.

#![forbid(unsafe_code)]

/// What a property holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A string, number, boolean, or a value of a scalar-like definition (`Time`,
    /// `Quantity`, `IntOrString`). Only listed when it carries a patch strategy.
    Scalar,
    /// An object; [`FieldInfo::definition`] names its schema unless it is free-form.
    Object,
    /// An array; [`FieldInfo::definition`] names the items' schema, if they are objects.
    List,
    /// An object with arbitrary keys (`additionalProperties`); [`FieldInfo::definition`]
    /// names the values' schema, if they are objects.
    Map,
}

/// `x-kubernetes-list-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Scalar items, unique.
    Set,
    /// Items keyed by [`ListMeta::map_keys`].
    Map,
}

/// `x-kubernetes-map-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    Atomic,
    Granular,
}

/// The list extensions of one array property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListMeta {
    /// `x-kubernetes-list-type`.
    pub list_type: ListType,
    /// `x-kubernetes-list-map-keys` (server-side apply's item identity); empty unless
    /// `list_type` is [`ListType::Map`].
    pub map_keys: &'static [&'static str],
    /// `x-kubernetes-patch-merge-key` (strategic merge patch's item identity); may be
    /// fewer keys than `map_keys` (`ports`: merge key `containerPort`, map keys
    /// `containerPort`, `protocol`).
    pub patch_merge_key: Option<&'static str>,
    /// `x-kubernetes-patch-strategy`: `merge`, `merge,retainKeys`, … — `None` means strategic
    /// merge patch replaces the list.
    pub patch_strategy: Option<&'static str>,
}

/// Everything known about one property of a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub shape: Shape,
    /// The definition of the value (objects), of the items (lists) or of the values (maps).
    pub definition: Option<&'static str>,
    /// Present for arrays of the served kinds' schemas.
    pub list: Option<ListMeta>,
    /// `x-kubernetes-map-type` of a map property, when upstream sets it.
    pub map_type: Option<MapType>,
    /// `x-kubernetes-patch-strategy` of the property, lists included (`retainKeys` on
    /// `DeploymentSpec.strategy`, `replace` on `PodDisruptionBudgetSpec.selector`).
    pub patch_strategy: Option<&'static str>,
}

mod tables {
    use super::{FieldInfo, ListMeta, ListType, MapType, Shape};
    include!(concat!(env!("OUT_DIR"), "/tables.rs"));
}

/// Returned for group-versions without schemas (custom resources, unknown groups).
const EMPTY_COMPONENTS: &[u8] = br#"{"schemas":{}}"#;

/// The `components` object (`{"schemas": {...}}`, compact JSON, sorted keys) of the OpenAPI
/// v3 document for `group`/`version` (`""` for the core group): the group-version's kinds
/// and `*List` kinds, the kinds its subresources answer with, the generic `meta/v1` kinds,
/// and every schema those refer to. Every `$ref` resolves within the object.
///
/// Unknown group-versions get an empty `{"schemas":{}}`.
pub fn components_for(group: &str, version: &str) -> &'static [u8] {
    tables::COMPONENTS
        .binary_search_by(|(g, v, _)| (*g, *v).cmp(&(group, version)))
        .map(|i| tables::COMPONENTS[i].2)
        .unwrap_or(EMPTY_COMPONENTS)
}

/// The group-versions [`components_for`] has documents for, sorted.
pub fn group_versions() -> impl Iterator<Item = (&'static str, &'static str)> {
    tables::COMPONENTS.iter().map(|(g, v, _)| (*g, *v))
}

/// The definition whose `x-kubernetes-group-version-kind` names `group`/`version`/`kind`
/// (`("apps", "v1", "Deployment")` → `io.k8s.api.apps.v1.Deployment`). `*List` kinds, the
/// subresource kinds and `Status`, `DeleteOptions`, `WatchEvent` are included.
pub fn definition_for_kind(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    tables::KINDS
        .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
        .ok()
        .map(|i| tables::KINDS[i].3)
}

/// What the schema says about `definition`'s property `field` (its JSON name). `None` for
/// scalar properties without patch metadata, unknown properties and unknown definitions.
pub fn field(definition: &str, field: &str) -> Option<&'static FieldInfo> {
    tables::FIELDS
        .binary_search_by(|(d, f, _)| (*d, *f).cmp(&(definition, field)))
        .ok()
        .map(|i| &tables::FIELDS[i].2)
}

/// The definition a property refers to: its own (objects), its items' (lists) or its
/// values' (maps). `field_definition("io.k8s.api.core.v1.PodSpec", "containers")` →
/// `io.k8s.api.core.v1.Container`.
pub fn field_definition(definition: &str, name: &str) -> Option<&'static str> {
    field(definition, name).and_then(|f| f.definition)
}

/// The list extensions of an array property.
pub fn list_field_meta(definition: &str, name: &str) -> Option<ListMeta> {
    field(definition, name).and_then(|f| f.list)
}

/// `x-kubernetes-patch-strategy` of any property (lists and objects).
pub fn patch_strategy(definition: &str, name: &str) -> Option<&'static str> {
    field(definition, name).and_then(|f| f.patch_strategy)
}

/// Whether the definition carries `x-kubernetes-map-type: atomic` (server-side apply
/// treats its values as a unit: `LabelSelector`, `ObjectReference`, ...).
pub fn struct_is_atomic(definition: &str) -> bool {
    tables::ATOMIC_STRUCTS.binary_search(&definition).is_ok()
}

/// Every definition any document contains, sorted.
pub fn definitions() -> &'static [&'static str] {
    tables::DEFINITIONS
}

#[cfg(test)]
mod tests;
