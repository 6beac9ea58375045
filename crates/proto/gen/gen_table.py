#!/usr/bin/env python3
"""Generates crates/proto/src/table.rs: protobuf field descriptors for every Kubernetes
message, derived from the `k8s-pb` crate (prost types generated from upstream's .proto
files), with JSON field names taken from `k8s-openapi` (serde names from upstream's Go
JSON tags).

Run after `cargo fetch` (both crates are dev-dependencies of skiff-proto, so their sources
are in the cargo registry):  python3 crates/proto/gen/gen_table.py
"""
import glob
import os
import re
import sys

PB_VERSION = "0.9.0"
OPENAPI_VERSION = "0.29.0"
OPENAPI_FEATURE = "v1_33"

home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))


def crate_dir(name, version):
    hits = glob.glob(os.path.join(home, "registry/src/*", f"{name}-{version}"))
    if not hits:
        sys.exit(f"{name} {version} is not in {home}/registry: run `cargo fetch` first")
    return hits[0]


pb_src = os.path.join(crate_dir("k8s-pb", PB_VERSION), "src")
oa_src = os.path.join(crate_dir("k8s-openapi", OPENAPI_VERSION), "src", OPENAPI_FEATURE)


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower().replace("r#", ""))


# JSON names: (module, Struct) -> {normalised name: json name}
json_names = {}
for path in glob.glob(os.path.join(oa_src, "**", "*.rs"), recursive=True):
    module = os.path.relpath(os.path.dirname(path), oa_src)
    text = open(path).read()
    m = re.search(r"pub struct (\w+)", text)
    if not m:
        continue
    names = {}
    for js, rust in re.findall(r'"([^"]+)" => Field::Key_(\w+)', text):
        names[norm(rust)] = js
        names[norm(js)] = js
    json_names[(module, m.group(1))] = names


def lower_camel(snake):
    snake = snake.replace("r#", "")
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


FIELD_RE = re.compile(
    r"#\[prost\((?P<attr>[^\]]*)\)\] (?:#\[[^\]]*\] )*pub (?P<name>[\w#]+): (?P<ty>.*?), (?=#\[prost|$)"
)
STRUCT_RE = re.compile(r"pub struct (\w+) \{\n(.*?)\n\}", re.S)
RESOURCE_RE = re.compile(
    r'impl crate::Resource for (\w+) \{\s*const API_VERSION: &\'static str = "([^"]*)";\s*const GROUP: &\'static str = "([^"]*)";\s*const VERSION: &\'static str = "([^"]*)";\s*const KIND: &\'static str = "([^"]*)";'
)

messages = {}  # full proto name -> list of fields
gvk = []  # (group, version, kind, full name)


def resolve(module_parts, ty):
    """Rust type path of a message field -> full proto name."""
    ty = ty.strip()
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while ty.startswith(wrapper):
            ty = ty[len(wrapper):-1].strip()
    parts = ty.split("::")
    mod = list(module_parts)
    while parts and parts[0] == "super":
        mod.pop()
        parts.pop(0)
    if parts and parts[0] == "crate":
        mod = []
        parts.pop(0)
    return "k8s.io." + ".".join(mod + parts)


for path in sorted(glob.glob(os.path.join(pb_src, "**", "mod.rs"), recursive=True)):
    module = os.path.relpath(os.path.dirname(path), pb_src)
    if module == "." or module.startswith("metrics") or "testapigroup" in module:
        continue
    module_parts = module.split(os.sep)
    text = open(path).read()
    structs = STRUCT_RE.findall(text) + [(n, "") for n in re.findall(r"pub struct (\w+) \{\}", text)]
    for sname, body in structs:
        full = "k8s.io." + ".".join(module_parts + [sname])
        names = json_names.get((module, sname), {})
        fields = []
        flat = " ".join(l.strip() for l in body.splitlines() if not l.strip().startswith("//"))
        flat = re.sub(r"\s+", " ", flat)
        flat = re.sub(r",\s*>", ">", flat).replace("< ", "<").replace(" >", ">").strip()
        if flat and not flat.endswith(","):
            flat += ","
        for m in FIELD_RE.finditer(flat + " "):
            attr, name, ty = m.group("attr"), m.group("name"), m.group("ty")
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            json = names.get(norm(name)) or lower_camel(name)
            if attr.startswith("btree_map"):
                val = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
                card = "Map"
                if val == "message":
                    inner = ty.rsplit(",", 1)[1].strip()
                    inner = inner[:-1].strip() if inner.endswith(">") else inner
                    kind = ("Message", resolve(module_parts, inner))
                else:
                    kind = (val.capitalize(), None)
            else:
                base = attr.split(",")[0].strip()
                card = "Repeated" if "repeated" in attr else "Optional"
                if base == "message":
                    kind = ("Message", resolve(module_parts, ty))
                elif base.startswith("bytes"):
                    kind = ("Bytes", None)
                else:
                    kind = ({"string": "String", "int32": "Int32", "int64": "Int64",
                             "bool": "Bool", "double": "Double"}[base], None)
            fields.append((tag, json, kind, card))
        messages[full] = fields
    for sname, api_version, group, version, kind in RESOURCE_RE.findall(text):
        gvk.append((group, version, kind, "k8s.io." + ".".join(module_parts + [sname])))

names = sorted(messages)
index = {n: i for i, n in enumerate(names)}
missing = sorted({k[1] for fs in messages.values() for (_, _, k, _) in fs if k[0] == "Message" and k[1] not in index})
if missing:
    sys.exit(f"unresolved message types: {missing[:10]}")

out = []
out.append("// @generated by crates/proto/gen/gen_table.py from k8s-pb %s and k8s-openapi %s (%s). Do not edit.\n" % (PB_VERSION, OPENAPI_VERSION, OPENAPI_FEATURE))
out.append("use crate::descriptor::{Card::*, Field, Kind::*, Message};\n\n")
out.append("pub static MESSAGES: &[Message] = &[\n")
for n in names:
    out.append('    Message {\n        name: "%s",\n        fields: &[\n' % n)
    for tag, json, (k, target), card in sorted(messages[n]):
        kind = f"Message({index[target]})" if k == "Message" else k
        out.append('            Field { tag: %d, json: "%s", kind: %s, card: %s },\n' % (tag, json, kind, card))
    out.append("        ],\n    },\n")
out.append("];\n\n")
out.append("/// (group, version, kind) -> index into MESSAGES, for every API resource.\n")
out.append("pub static RESOURCES: &[(&str, &str, &str, usize)] = &[\n")
for g, v, k, full in sorted(set(gvk)):
    out.append('    ("%s", "%s", "%s", %d),\n' % (g, v, k, index[full]))
out.append("];\n")
here = os.path.dirname(os.path.abspath(__file__))
# The reference check (tests/reference_codec.rs) runs every resource type through k8s-pb.
ref = ["// @generated by crates/proto/gen/gen_table.py. Do not edit.\n{\n"]
for g, v, k, full in sorted(set(gvk)):
    rust = "k8s_pb::" + "::".join(full[len("k8s.io."):].split("."))
    ref.append('check!(%s, "%s");\n' % (rust, full))
ref.append("}\n")
open(os.path.join(here, "..", "tests", "generated", "reference_types.rs"), "w").write("".join(ref))
dest = os.path.join(here, "..", "src", "table.rs")
open(dest, "w").write("".join(out))
print(f"{len(names)} messages, {sum(len(f) for f in messages.values())} fields, {len(set(gvk))} resources -> {os.path.normpath(dest)}")
