//! Label and field selectors with upstream's syntax, validation and error messages
//! (`k8s.io/apimachinery/pkg/labels`, `.../fields`, and the per-type field label
//! conversions and selectable field sets of kube-apiserver).

#![allow(clippy::result_large_err)]

use std::fmt;

use serde_json::{Map, Value};

use crate::names::{go_quote, validate_label_key, validate_label_value};
use crate::registry::Resource;
use crate::status::Status;

// ---------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------

/// A label selector operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v`
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>1` (integer comparison)
    GreaterThan,
    /// `k<1` (integer comparison)
    LessThan,
}

/// One `key op values` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    /// upstream's `NewRequirement`: validates key, arity and values.
    pub fn new(key: &str, op: Op, values: Vec<String>) -> Result<Requirement, String> {
        let mut errs: Vec<String> = Vec::new();
        let key_errs = validate_label_key(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                go_quote(key),
                key_errs.join("; ")
            ));
        }
        let go_slice = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        };
        match op {
            Op::In | Op::NotIn => {
                if values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                        go_slice(&values)
                    ));
                }
            }
            Op::Equals | Op::DoubleEquals | Op::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_slice(&values)
                    ));
                }
            }
            Op::Exists | Op::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_slice(&values)
                    ));
                }
            }
            Op::GreaterThan | Op::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            go_quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = validate_label_value(v);
            if !v_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    go_quote(v),
                    v_errs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// Whether a label set satisfies this requirement (upstream's `Requirement.Matches`).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let val = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => val.is_some_and(has),
            Op::NotIn | Op::NotEquals => !val.is_some_and(has),
            Op::Exists => val.is_some(),
            Op::DoesNotExist => val.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(Ok(l)) = val.map(str::parse::<i64>) else {
                    return false;
                };
                let Some(Ok(r)) = self.values.first().map(|v| v.parse::<i64>()) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    l > r
                } else {
                    l < r
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Op::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            Op::Equals => "=",
            Op::DoubleEquals => "==",
            Op::NotEquals => "!=",
            Op::In => " in ",
            Op::NotIn => " notin ",
            Op::GreaterThan => ">",
            Op::LessThan => "<",
            Op::Exists | Op::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let mut values = self.values.clone();
        values.sort();
        let joined = values.join(",");
        if matches!(self.op, Op::In | Op::NotIn) {
            write!(f, "({joined})")
        } else {
            f.write_str(&joined)
        }
    }
}

/// A parsed label selector: the AND of its requirements, sorted by key as upstream keeps
/// them. `nothing` is upstream's `labels.Nothing()` (a null `LabelSelector` object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    pub nothing: bool,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches nothing.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parse the `labelSelector` query parameter. Errors are 400 BadRequest with upstream's
    /// parser message (e.g. `unable to parse requirement: found '' expected: '('`).
    pub fn parse(s: &str) -> Result<LabelSelector, Status> {
        parse_label_selector(s).map_err(Status::bad_request)
    }

    /// upstream's `metav1.LabelSelectorAsSelector` for the API form
    /// (`{"matchLabels": {...}, "matchExpressions": [...]}`). JSON null matches nothing;
    /// an empty object matches everything.
    pub fn from_label_selector_object(v: &Value) -> Result<LabelSelector, Status> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            _ => return Err(Status::bad_request("label selector must be an object")),
        };
        let mut reqs = Vec::new();
        if let Some(ml) = obj.get("matchLabels") {
            match ml {
                Value::Object(m) => {
                    for (k, v) in m {
                        let value = v.as_str().unwrap_or("").to_string();
                        reqs.push(
                            Requirement::new(k, Op::Equals, vec![value])
                                .map_err(Status::bad_request)?,
                        );
                    }
                }
                Value::Null => {}
                _ => return Err(Status::bad_request("matchLabels must be an object")),
            }
        }
        if let Some(me) = obj.get("matchExpressions") {
            let exprs: &[Value] = match me {
                Value::Array(a) => a,
                Value::Null => &[],
                _ => return Err(Status::bad_request("matchExpressions must be a list")),
            };
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let op_name = e.get("operator").and_then(Value::as_str).unwrap_or("");
                let op = match op_name {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => {
                        return Err(Status::bad_request(format!(
                            "{} is not a valid label selector operator",
                            go_quote(other)
                        )))
                    }
                };
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(Requirement::new(key, op, values).map_err(Status::bad_request)?);
            }
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// True when the selector does not restrict anything (and is not `nothing`).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether a label map matches.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Match an object's `metadata.labels` (absent labels are the empty set).
    pub fn matches_object(&self, obj: &Value) -> bool {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        self.matches(labels)
    }

    /// If the selector pins `key` to one value (`k=v`, `k==v`, `k in (v)`), that value.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match r.op {
            Op::Equals | Op::DoubleEquals | Op::In if r.values.len() == 1 => {
                Some(r.values[0].as_str())
            }
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// upstream's `Selector.String()`: requirements joined by ','; "" for everything/nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing {
            return Ok(());
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Ident,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
    Error,
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn special_token(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::DoesNotExist,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::GreaterThan,
        b"<" => Tok::LessThan,
        b"!=" => Tok::NotEquals,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_ws(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(b[pos]) {
            // Longest run of special symbols that still forms a token.
            let start = pos;
            let mut last: Option<(Tok, usize)> = None;
            while pos < b.len() && is_special(b[pos]) {
                if let Some(t) = special_token(&b[start..=pos]) {
                    last = Some((t, pos + 1));
                    pos += 1;
                } else if last.is_some() {
                    break;
                } else {
                    pos += 1;
                }
            }
            match last {
                Some((t, end)) => {
                    pos = end;
                    out.push((t, s[start..end].to_string()));
                }
                None => {
                    out.push((
                        Tok::Error,
                        format!("error expected: keyword found '{}'", &s[start..pos]),
                    ));
                }
            }
        } else {
            let start = pos;
            while pos < b.len() && !is_special(b[pos]) && !is_ws(b[pos]) {
                pos += 1;
            }
            let word = &s[start..pos];
            let tok = match word {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident,
            };
            out.push((tok, word.to_string()));
        }
    }
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    /// In a values context `in`/`notin` are plain identifiers.
    fn lookahead(&self, values: bool) -> (Tok, &str) {
        let (t, l) = &self.items[self.pos.min(self.items.len() - 1)];
        (ctx(t.clone(), values), l.as_str())
    }
    fn consume(&mut self, values: bool) -> (Tok, String) {
        let i = self.pos.min(self.items.len() - 1);
        self.pos += 1;
        let (t, l) = &self.items[i];
        (ctx(t.clone(), values), l.clone())
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(true);
            match tok {
                Tok::Ident | Tok::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(true);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(true);
                            if t2 != Tok::Ident && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, unary) = self.key_and_infer_operator()?;
        if let Some(op) = unary {
            return Requirement::new(&key, op, Vec::new());
        }
        let (tok, lit) = self.consume(false);
        let op = match tok {
            Tok::In => Op::In,
            Tok::Equals => Op::Equals,
            Tok::DoubleEquals => Op::DoubleEquals,
            Tok::GreaterThan => Op::GreaterThan,
            Tok::LessThan => Op::LessThan,
            Tok::NotIn => Op::NotIn,
            Tok::NotEquals => Op::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        };
        let values = match op {
            Op::In | Op::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn key_and_infer_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(true);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, lit) = self.consume(true);
        }
        if tok != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = validate_label_key(&lit);
        if !errs.is_empty() {
            return Err(format!(
                ": Invalid value: {}: {}",
                go_quote(&lit),
                errs.join("; ")
            ));
        }
        let (t, _) = self.lookahead(true);
        if (t == Tok::End || t == Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((lit, op))
    }

    /// `( a, b )` — values are a set: sorted and deduplicated, "" allowed.
    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(true);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(true);
        let lit = lit.to_string();
        let mut set: Vec<String> = match tok {
            Tok::Ident | Tok::Comma => {
                let s = self.identifiers_list()?;
                let (t, _) = self.consume(true);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                s
            }
            Tok::ClosedPar => {
                self.consume(true);
                vec![String::new()]
            }
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        };
        set.sort();
        set.dedup();
        Ok(set)
    }

    fn identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(true);
            match tok {
                Tok::Ident => {
                    s.push(lit);
                    let (t2, l2) = self.lookahead(true);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.lookahead(true);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        s.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(true);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(true);
        if tok == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

fn ctx(t: Tok, values: bool) -> Tok {
    if values && matches!(t, Tok::In | Tok::NotIn) {
        Tok::Ident
    } else {
        t
    }
}

fn parse_label_selector(s: &str) -> Result<LabelSelector, String> {
    let mut p = Parser {
        items: lex(s),
        pos: 0,
    };
    let mut reqs = p.parse()?;
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector {
        requirements: reqs,
        nothing: false,
    })
}

// ---------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------

/// One `field=value` / `field==value` / `field!=value` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    /// true for `!=`.
    pub negated: bool,
    pub value: String,
}

/// A parsed field selector: the AND of its terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parse the `fieldSelector` query parameter (syntax only; see [`Self::parse_for`]).
    pub fn parse(s: &str) -> Result<FieldSelector, Status> {
        parse_field_selector(s).map_err(Status::bad_request)
    }

    /// Parse and check every field against what the resource supports, converting legacy
    /// labels (`spec.host` on pods) as upstream's field label conversion does. An unknown
    /// field is 400 `field label not supported: X`.
    pub fn parse_for(res: &Resource, s: &str) -> Result<FieldSelector, Status> {
        let mut sel = FieldSelector::parse(s)?;
        for t in &mut sel.terms {
            t.field = convert_field_label(res, &t.field)
                .ok_or_else(|| {
                    Status::bad_request(format!("field label not supported: {}", t.field))
                })?
                .to_string();
        }
        Ok(sel)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the object's selectable fields satisfy every term. Fields the object does
    /// not carry read as "" (upstream's `fields.Set.Get`).
    pub fn matches(&self, res: &Resource, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let v = field_value(res, obj, &t.field).unwrap_or_default();
            (v == t.value) != t.negated
        })
    }

    /// If the selector pins `field` with `=`, that value (e.g. `metadata.name`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", t.field, escape_field_value(&t.value))?;
        }
        Ok(())
    }
}

fn escape_field_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Split on commas not escaped by a backslash.
fn split_terms(s: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                Some(n) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{n}"
                    ))
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".to_string())
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn parse_field_selector(s: &str) -> Result<FieldSelector, String> {
    let mut parts = split_terms(s);
    parts.sort();
    let mut terms = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(&part) else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            ));
        };
        terms.push(FieldTerm {
            field: lhs.to_string(),
            negated: op == "!=",
            value: unescape_value(rhs)?,
        });
    }
    Ok(FieldSelector { terms })
}

/// upstream's per-kind field label conversion: the canonical field name for a label a
/// client may use, or None when unsupported.
fn convert_field_label(res: &Resource, label: &str) -> Option<&'static str> {
    let fields = selectable_fields(res);
    if let Some(f) = fields.iter().find(|f| **f == label) {
        return Some(f);
    }
    match (res.group, res.plural, label) {
        ("", "pods", "spec.host") => Some("spec.nodeName"),
        // Accepted for pods although not part of the selectable set (matches only "").
        ("", "pods", "status.podIPs") => Some("status.podIPs"),
        _ => None,
    }
}

/// The field labels a resource's list and watch accept.
pub fn selectable_fields(res: &Resource) -> &'static [&'static str] {
    const META_NS: &[&str] = &["metadata.name", "metadata.namespace"];
    match (res.group, res.plural) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "secrets") => &["metadata.name", "metadata.namespace", "type"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "namespaces") => &["metadata.name", "status.phase"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        ("certificates.k8s.io", "certificatesigningrequests") => {
            &["metadata.name", "metadata.namespace", "spec.signerName"]
        }
        ("", "services") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.clusterIP",
            "spec.type",
        ],
        _ => META_NS,
    }
}

/// The value of a selectable field on an object, as upstream's `ToSelectableFields` renders
/// it (booleans and counts as strings, absent fields as ""). None when the resource does
/// not support the field.
pub fn field_value(res: &Resource, obj: &Value, field: &str) -> Option<String> {
    let field = convert_field_label(res, field)?;
    let s = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let int = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    };
    let boolean = |ptr: &str| {
        obj.pointer(ptr)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    let v = match field {
        "metadata.name" => s("/metadata/name"),
        // Cluster-scoped objects have no namespace field (upstream leaves it out: "").
        "metadata.namespace" => {
            if res.namespaced {
                s("/metadata/namespace")
            } else {
                String::new()
            }
        }
        "spec.hostNetwork" | "spec.unschedulable" => {
            boolean(&format!("/{}", field.replace('.', "/")))
        }
        "status.podIP" => obj
            .pointer("/status/podIPs/0/ip")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| s("/status/podIP")),
        "status.podIPs" => String::new(),
        "status.replicas" => int("/status/replicas"),
        "status.successful" => int("/status/succeeded"),
        "source" => {
            let c = s("/source/component");
            if c.is_empty() {
                s("/reportingComponent")
            } else {
                c
            }
        }
        f => {
            let ptr = format!("/{}", f.replace('.', "/"));
            s(&ptr)
        }
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse(
            "env in (prod, staging),tier notin (cache),app=web,!legacy,gpu,x==1,y!=2,n>3,m<10",
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,env in (prod,staging),gpu,!legacy,m<10,n>3,tier notin (cache),x==1,y!=2"
        );
        let ok = labels(
            json!({"env": "prod", "tier": "web", "app": "web", "gpu": "", "x": "1", "n": "4", "m": "9"}),
        );
        assert!(s.matches(&ok));
        let mut bad = ok.clone();
        bad.insert("legacy".into(), json!("true"));
        assert!(!s.matches(&bad));
        let mut bad = ok.clone();
        bad.insert("n".into(), json!("3"));
        assert!(!s.matches(&bad));
        let mut bad = ok.clone();
        bad.insert("n".into(), json!("abc"));
        assert!(!s.matches(&bad));
        let mut bad = ok;
        bad.insert("y".into(), json!("2"));
        assert!(!s.matches(&bad));
    }

    #[test]
    fn empty_and_edge_syntax() {
        assert!(LabelSelector::parse("").unwrap().is_empty());
        assert!(LabelSelector::parse("   ").unwrap().matches(&Map::new()));
        // `in` is a valid value and key; empty values are allowed.
        let s = LabelSelector::parse("in in (in, notin),a=").unwrap();
        assert_eq!(s.to_string(), "a=,in in (in,notin)");
        assert!(s.matches(&labels(json!({"in": "notin", "a": ""}))));
        let s = LabelSelector::parse("x in (,a)").unwrap();
        assert_eq!(s.requirements[0].values, vec!["", "a"]);
        assert_eq!(
            LabelSelector::parse("x in ()").unwrap().requirements[0].values,
            vec![""]
        );
        // notin / != match when the key is absent.
        assert!(LabelSelector::parse("a!=b").unwrap().matches(&Map::new()));
        assert!(LabelSelector::parse("a notin (b)")
            .unwrap()
            .matches(&Map::new()));
        assert!(!LabelSelector::parse("a in (b)")
            .unwrap()
            .matches(&Map::new()));
        assert_eq!(
            LabelSelector::parse("app=web")
                .unwrap()
                .requires_exact_match("app"),
            Some("web")
        );
    }

    #[test]
    fn parse_errors_are_bad_requests_with_upstream_messages() {
        let cases = [
            ("a in", "unable to parse requirement: found '' expected: '('"),
            ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
            ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            (",a", "found ',', expected: !, identifier, or 'end of string'"),
            ("a=b=c", "found '=', expected: ',' or 'end of string'"),
            ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"),
            ("!", "unable to parse requirement: found '', expected: identifier"),
            ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
            ("a <> b", "unable to parse requirement: found '>', expected: identifier"),
            ("a=~b", "unable to parse requirement: found 'error expected: keyword found '~'', expected: identifier"),
        ];
        for (input, want) in cases {
            let err = LabelSelector::parse(input).expect_err(input);
            assert_eq!(err.code, 400, "{input}");
            assert_eq!(err.reason, "BadRequest");
            if !input.contains('~') {
                assert_eq!(err.message, want, "{input}");
            }
        }
        let err = LabelSelector::parse("-a=b").unwrap_err();
        assert!(err.message.starts_with(
            "unable to parse requirement: : Invalid value: \"-a\": name part must consist of"
        ));
        let err = LabelSelector::parse("a=b/c").unwrap_err();
        assert!(err
            .message
            .starts_with("unable to parse requirement: values[0][a]: Invalid value: \"b/c\": a valid label must be"));
    }

    #[test]
    fn from_api_object() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]}
            ]
        });
        let s = LabelSelector::from_label_selector_object(&sel).unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env notin (dev),tier in (be,fe),zone"
        );
        assert!(s.matches(&labels(json!({"app": "web", "tier": "fe", "zone": "a"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "fe"}))));
        assert!(LabelSelector::from_label_selector_object(&json!({}))
            .unwrap()
            .matches(&Map::new()));
        let nothing = LabelSelector::from_label_selector_object(&Value::Null).unwrap();
        assert!(!nothing.matches(&Map::new()));
        assert_eq!(nothing.to_string(), "");
        let err = LabelSelector::from_label_selector_object(
            &json!({"matchExpressions": [{"key": "a", "operator": "Like"}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "\"Like\" is not a valid label selector operator"
        );
        let err = LabelSelector::from_label_selector_object(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "be", "zone": "b"}}});
        assert!(s.matches_object(&pod));
        assert!(!s.matches_object(&json!({"metadata": {}})));
    }

    #[test]
    fn field_selectors_on_pods() {
        let pods = lookup("", "v1", "pods").unwrap();
        let pod = json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
        });
        let sel =
            FieldSelector::parse_for(pods, "spec.nodeName=node-1,status.phase!=Pending").unwrap();
        assert!(sel.matches(pods, &pod));
        let sel = FieldSelector::parse_for(pods, "spec.host==node-2").unwrap();
        assert_eq!(sel.terms[0].field, "spec.nodeName");
        assert!(!sel.matches(pods, &pod));
        assert_eq!(
            field_value(pods, &pod, "spec.hostNetwork").unwrap(),
            "false"
        );
        assert_eq!(field_value(pods, &pod, "status.podIP").unwrap(), "10.0.0.5");
        assert_eq!(
            field_value(pods, &pod, "metadata.namespace").unwrap(),
            "default"
        );
        assert!(FieldSelector::parse_for(pods, "status.nominatedNodeName=")
            .unwrap()
            .matches(pods, &pod));
        let err = FieldSelector::parse_for(pods, "spec.containers=x").unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.containers");
        assert_eq!(
            FieldSelector::parse_for(pods, "metadata.name=web-0")
                .unwrap()
                .requires_exact_match("metadata.name"),
            Some("web-0")
        );
    }

    #[test]
    fn field_selectors_per_type() {
        let ev = lookup("", "v1", "events").unwrap();
        let event = json!({
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
            "reason": "Scheduled", "type": "Normal", "reportingComponent": "default-scheduler",
            "source": {}
        });
        let sel = FieldSelector::parse_for(
            ev,
            "involvedObject.kind=Pod,involvedObject.name=web,type=Normal",
        )
        .unwrap();
        assert!(sel.matches(ev, &event));
        assert_eq!(
            field_value(ev, &event, "source").unwrap(),
            "default-scheduler"
        );
        let ev2 = lookup("events.k8s.io", "v1", "events").unwrap();
        let e2 = json!({"metadata": {"name": "x"}, "regarding": {"kind": "Node"}, "reportingController": "kubelet"});
        assert!(
            FieldSelector::parse_for(ev2, "regarding.kind=Node,reportingController=kubelet")
                .unwrap()
                .matches(ev2, &e2)
        );

        let nodes = lookup("", "v1", "nodes").unwrap();
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        assert!(FieldSelector::parse_for(nodes, "spec.unschedulable=true")
            .unwrap()
            .matches(nodes, &node));
        assert_eq!(
            FieldSelector::parse_for(nodes, "metadata.namespace=x")
                .unwrap_err()
                .message,
            "field label not supported: metadata.namespace"
        );
        let secrets = lookup("", "v1", "secrets").unwrap();
        assert!(FieldSelector::parse_for(secrets, "type=kubernetes.io/tls")
            .unwrap()
            .matches(secrets, &json!({"type": "kubernetes.io/tls"})));
        let rs = lookup("apps", "v1", "replicasets").unwrap();
        assert!(FieldSelector::parse_for(rs, "status.replicas=0")
            .unwrap()
            .matches(rs, &json!({})));
        let jobs = lookup("batch", "v1", "jobs").unwrap();
        assert_eq!(
            field_value(
                jobs,
                &json!({"status": {"succeeded": 2}}),
                "status.successful"
            )
            .unwrap(),
            "2"
        );
        let ns = lookup("", "v1", "namespaces").unwrap();
        assert!(FieldSelector::parse_for(ns, "status.phase=Active")
            .unwrap()
            .matches(ns, &json!({"status": {"phase": "Active"}})));
        let svc = lookup("", "v1", "services").unwrap();
        assert_eq!(
            field_value(svc, &json!({"spec": {"type": "NodePort"}}), "spec.type").unwrap(),
            "NodePort"
        );
        let csr = lookup("certificates.k8s.io", "v1", "certificatesigningrequests").unwrap();
        assert!(field_value(csr, &json!({}), "spec.signerName").is_some());
        let cm = lookup("", "v1", "configmaps").unwrap();
        assert!(field_value(cm, &json!({}), "data.x").is_none());
        assert!(FieldSelector::parse_for(cm, "metadata.name!=a")
            .unwrap()
            .matches(cm, &json!({"metadata": {"name": "b"}})));
        // Cluster-scoped objects read metadata.namespace as "".
        let pv = lookup("", "v1", "persistentvolumes").unwrap();
        assert!(FieldSelector::parse_for(pv, "metadata.namespace=")
            .unwrap()
            .matches(pv, &json!({"metadata": {"name": "pv1"}})));
    }

    #[test]
    fn field_selector_syntax() {
        let s = FieldSelector::parse(r"b=x\,y,a!=1").unwrap();
        assert_eq!(s.terms[0].field, "a");
        assert_eq!(s.terms[1].value, "x,y");
        assert_eq!(s.to_string(), r"a!=1,b=x\,y");
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("abc").unwrap_err().message,
            "invalid selector: 'abc'; can't understand 'abc'"
        );
        assert!(FieldSelector::parse(r"a=\q").is_err());
        assert_eq!(FieldSelector::parse("a==b").unwrap().terms[0].value, "b");
    }
}
