//! Finding and reading k8s-openapi's generated source.
//!
//! k8s-openapi encodes each field's list and map semantics (from upstream's
//! `x-kubernetes-list-type`, `-list-map-keys`, `-map-type`, `-patch-merge-key` and
//! `-patch-strategy`) only in the bodies of its `DeepMerge` impls, e.g.
//!
//! ```text
//! crate::merge_strategies::list::map(
//!     &mut self.containers,
//!     other.containers,
//!     &[|lhs, rhs| lhs.name == rhs.name],
//!     ...
//! ```
//!
//! so the build script reads those files. The crate is located without running cargo (a
//! nested `cargo metadata` can dead-lock on the package-cache lock while other builds share
//! the cargo home): `SKIFF_K8S_OPENAPI_SRC`, then the registry under `CARGO_HOME`, and only
//! then `cargo metadata --offline` with a time limit. Every candidate is checked against the
//! compiled crate (the JSON field names of every generated schema must match the parsed
//! source), so a stale or different version is never used silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Overrides the location of the k8s-openapi crate (the directory holding its Cargo.toml).
pub const SRC_ENV: &str = "SKIFF_K8S_OPENAPI_SRC";
/// The k8s-openapi release series the build-dependency is pinned to.
const SERIES: &str = "0.29.";
/// The module of the enabled Kubernetes version (feature `v1_33`).
const VERSION_MODULE: &str = "v1_33";

/// One `crate::merge_strategies::*` call in a `DeepMerge` impl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    ListAtomic,
    ListSet,
    /// Key paths as Rust field paths (`name`, `container_port`, `metadata.name`).
    ListMap(Vec<String>),
    MapAtomic,
    MapGranular,
}

/// What one generated type's source says.
#[derive(Debug, Default)]
pub struct ParsedType {
    /// Rust field name → JSON property name (from the `Deserialize` impl's field matcher).
    pub json_of_rust: BTreeMap<String, String>,
    /// (Rust field name, strategy), in source order.
    pub strategies: Vec<(String, Strategy)>,
}

/// The parsed source, keyed by definition name (`io.k8s.api.core.v1.PodSpec`).
pub struct Source {
    pub dir: PathBuf,
    pub types: BTreeMap<String, ParsedType>,
}

/// Locates, parses and checks the k8s-openapi source against the generated definitions.
pub fn load(defs: &BTreeMap<String, Value>) -> Source {
    let mut tried = Vec::new();
    let mut candidates = quick_candidates();
    let mut ran_metadata = false;
    loop {
        if candidates.is_empty() {
            if ran_metadata {
                break;
            }
            ran_metadata = true;
            match cargo_metadata_candidate() {
                Ok(dir) => candidates.push(dir),
                Err(e) => {
                    tried.push(format!("cargo metadata: {e}"));
                    break;
                }
            }
        }
        let root = candidates.remove(0);
        match parse_and_check(&root, defs) {
            Ok(types) => return Source { dir: root, types },
            Err(e) => tried.push(format!("{}: {e}", root.display())),
        }
    }
    panic!(
        "skiff-openapi: cannot find the source of k8s-openapi {SERIES}x matching the compiled \
         crate (needed to read its DeepMerge merge strategies). Set {SRC_ENV} to the directory \
         holding k8s-openapi's Cargo.toml. Tried:\n  {}",
        tried.join("\n  ")
    );
}

/// `SKIFF_K8S_OPENAPI_SRC`, then `CARGO_HOME/registry/src/*/k8s-openapi-0.29.*`, newest first.
fn quick_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os(SRC_ENV) {
        out.push(PathBuf::from(dir));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        let mut found: Vec<(Vec<u64>, PathBuf)> = Vec::new();
        if let Ok(registries) = std::fs::read_dir(home.join("registry").join("src")) {
            for registry in registries.flatten() {
                let Ok(crates) = std::fs::read_dir(registry.path()) else {
                    continue;
                };
                for krate in crates.flatten() {
                    let name = krate.file_name().to_string_lossy().into_owned();
                    if let Some(version) = name.strip_prefix("k8s-openapi-") {
                        if version.starts_with(SERIES) {
                            let key = version
                                .split(['.', '-', '+'])
                                .map(|p| p.parse().unwrap_or(0))
                                .collect();
                            found.push((key, krate.path()));
                        }
                    }
                }
            }
        }
        found.sort();
        out.extend(found.into_iter().rev().map(|(_, p)| p));
    }
    out
}

/// Asks cargo where the resolved k8s-openapi lives (vendored sources, custom registries).
/// Offline and with a time limit, so a held package-cache lock cannot hang the build.
fn cargo_metadata_candidate() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(&std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?)
        .join("Cargo.toml");
    let tmp = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR unset")?)
        .join("cargo-metadata.json");
    let file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    let mut child = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => break,
            Some(status) => return Err(format!("exited with {status}")),
            None if start.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out (package cache locked?)".into());
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let text = std::fs::read_to_string(&tmp).map_err(|e| e.to_string())?;
    let meta: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let packages = meta["packages"].as_array().ok_or("no packages")?;
    packages
        .iter()
        .filter(|p| {
            p["name"] == "k8s-openapi"
                && p["version"].as_str().is_some_and(|v| v.starts_with(SERIES))
        })
        .filter_map(|p| p["manifest_path"].as_str())
        .map(|m| {
            Path::new(m)
                .parent()
                .unwrap_or(Path::new("/"))
                .to_path_buf()
        })
        .next()
        .ok_or_else(|| format!("no k8s-openapi {SERIES}x package in the metadata"))
}

fn parse_and_check(
    root: &Path,
    defs: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, ParsedType>, String> {
    let dir = root.join("src").join(VERSION_MODULE);
    if !dir.is_dir() {
        return Err(format!("no {}", dir.display()));
    }
    let mut files = Vec::new();
    collect_rs(&dir, &mut files).map_err(|e| e.to_string())?;
    let mut types = BTreeMap::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Some((name, parsed)) =
            parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?
        {
            types.insert(name, parsed);
        }
    }
    check(&types, defs)?;
    Ok(types)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The source must describe exactly the properties the compiled schemas have.
fn check(
    types: &BTreeMap<String, ParsedType>,
    defs: &BTreeMap<String, Value>,
) -> Result<(), String> {
    for (name, schema) in defs {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        // WatchEvent's Deserialize is hand-written (it also reads bookmark metadata).
        if name == "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent" {
            continue;
        }
        let Some(parsed) = types.get(name) else {
            return Err(format!("no source for {name}"));
        };
        let from_source: BTreeSet<&str> = parsed
            .json_of_rust
            .values()
            .map(String::as_str)
            .filter(|k| *k != "apiVersion" && *k != "kind")
            .collect();
        let from_schema: BTreeSet<&str> = props
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "apiVersion" && *k != "kind")
            .collect();
        if from_source != from_schema {
            return Err(format!(
                "{name}: source fields {from_source:?} differ from the compiled schema's {from_schema:?}"
            ));
        }
        for (field, _) in &parsed.strategies {
            if !parsed.json_of_rust.contains_key(field) {
                return Err(format!("{name}: DeepMerge names unknown field {field}"));
            }
        }
    }
    Ok(())
}

/// Parses one generated file: its schema name, its JSON field names and its DeepMerge body.
fn parse_file(text: &str) -> Result<Option<(String, ParsedType)>, String> {
    let Some(at) = text.find("fn schema_name()") else {
        return Ok(None);
    };
    let rest = &text[at..];
    let name = quoted(rest).ok_or("schema_name without a string")?;
    if !name.starts_with("io.k8s.") {
        return Ok(None);
    }

    let mut parsed = ParsedType::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some((json, rust)) = line.split_once(" => Field::Key_") {
            if let Some(json) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
                let rust = rust.trim_end_matches(',');
                parsed.json_of_rust.insert(rust.to_string(), unescape(json));
            }
        }
    }

    if let Some(at) = text.find("impl crate::DeepMerge for ") {
        let body = &text[at..];
        let end = body.find("\n}\n").unwrap_or(body.len());
        parsed.strategies = parse_merge_body(&body[..end])?;
    }
    Ok(Some((name, parsed)))
}

fn parse_merge_body(body: &str) -> Result<Vec<(String, Strategy)>, String> {
    const CALL: &str = "crate::merge_strategies::";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(CALL) {
        rest = &rest[at + CALL.len()..];
        let open = rest
            .find('(')
            .ok_or("merge_strategies call without arguments")?;
        let which = &rest[..open];
        let args = rest[open + 1..].trim_start();
        // Calls on `current_item` inside a closure describe map values or list items
        // (e.g. the lists in `UserInfo.extra`); only fields are described upstream.
        let Some(field) = args.strip_prefix("&mut self.") else {
            continue;
        };
        let field: String = field
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let strategy = match which {
            "list::atomic" => Strategy::ListAtomic,
            "list::set" => Strategy::ListSet,
            "map::atomic" => Strategy::MapAtomic,
            "map::granular" => Strategy::MapGranular,
            "list::map" => {
                let keys_at = args.find("&[").ok_or("list::map without keys")?;
                let keys = &args[keys_at + 2..];
                let keys = &keys[..keys.find("],").ok_or("unterminated list::map keys")?];
                let paths = keys
                    .split("|lhs, rhs|")
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        let k = k.trim_end_matches(',').trim();
                        let (lhs, _) = k.split_once("==").ok_or("key closure without ==")?;
                        lhs.trim()
                            .strip_prefix("lhs.")
                            .map(str::to_string)
                            .ok_or("key closure not on lhs")
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Strategy::ListMap(paths)
            }
            other => return Err(format!("unknown merge strategy {other}")),
        };
        out.push((field, strategy));
    }
    Ok(out)
}

/// The first double-quoted string literal in `s`.
fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let len = s[start..].find('"')?;
    Some(unescape(&s[start..start + len]))
}

/// Rust string literal escapes used in field names (none in practice, kept for safety).
fn unescape(s: &str) -> String {
    s.replace("\\\"", "\"").replace("\\\\", "\\")
}
