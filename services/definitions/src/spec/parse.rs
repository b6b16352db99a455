//! Turning a YAML or JSON document into a [`Document`], with every error
//! naming its field path and, where known, its line and column.
//!
//! One pass of serde-saphyr, under a strict budget against alias bombs and
//! deep nesting, turns the text into a tree that keeps each node's position
//! (JSON is YAML, so JSON goes the same way after a syntax check that gives
//! JSON-flavoured messages). The tree becomes a JSON value, and the value
//! becomes the typed document through `serde_path_to_error`, which names the
//! failing field. The tree stays behind as [`Locations`], so errors found
//! later can point at a line too.

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::{Budget, Options, Spanned};

use super::model::Document;
use super::{Format, SpecError};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Deepest nesting accepted; the schema itself needs about 8.
pub const MAX_DEPTH: usize = 32;

pub fn parse(content: &[u8], format: Format) -> Result<(Document, Locations), Vec<SpecError>> {
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(vec![SpecError::new(
            "",
            format!(
                "document is {} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes (1 MiB)",
                content.len()
            ),
        )]);
    }
    let text = std::str::from_utf8(content).map_err(|e| {
        vec![SpecError::new(
            "",
            format!(
                "document is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )]
    })?;
    if text.trim().is_empty() {
        return Err(vec![SpecError::new("", "document is empty")]);
    }
    let language = match format.resolve(text) {
        Format::Json => {
            check_json_syntax(text)?;
            "JSON"
        }
        Format::Yaml | Format::Auto => "YAML",
    };
    let tree = parse_tree(text, language)?;
    let value = to_value(&tree.value);
    let locations = Locations { tree };
    let document: Document = serde_path_to_error::deserialize(&value).map_err(|e| {
        let mut field = field_path(e.path());
        let message = e.inner().to_string();
        // serde reports a missing field at its parent; point at the field itself.
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(missing);
        }
        vec![locations.locate(SpecError::new(field, message))]
    })?;
    Ok((document, locations))
}

fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = 64;
    budget.max_anchors = 64;
    budget.max_documents = 1;
    budget.max_nodes = 100_000;
    budget.max_events = 400_000;
    budget.max_total_scalar_bytes = MAX_DOCUMENT_BYTES * 2;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// serde_json's syntax errors read better for JSON than a YAML parser's.
fn check_json_syntax(text: &str) -> Result<(), Vec<SpecError>> {
    serde_json::from_str::<IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| {
            let mut err = SpecError::new("", format!("invalid JSON: {e}"));
            err.line = clamp(e.line() as u64);
            err.column = clamp(e.column() as u64);
            vec![err]
        })
}

fn parse_tree(text: &str, language: &str) -> Result<Spanned<Node>, Vec<SpecError>> {
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options()).map_err(|e| {
        let detail = e.to_string();
        let detail = first_line(&detail);
        let message = if detail.contains("budget breached: Depth") {
            format!("invalid {language}: document nests deeper than {MAX_DEPTH} levels")
        } else if detail.contains("budget breached") {
            format!("invalid {language}: document exceeds a parser limit ({detail})")
        } else {
            format!("invalid {language}: {detail}")
        };
        let mut err = SpecError::new("", message);
        if let Some(loc) = e.location() {
            err.line = clamp(loc.line());
            err.column = clamp(loc.column());
        }
        vec![err]
    })
}

fn to_value(node: &Node) -> Value {
    match node {
        Node::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_value(&v.value)))
                .collect(),
        ),
        Node::Seq(items) => Value::Array(items.iter().map(|v| to_value(&v.value)).collect()),
        Node::Scalar(v) => v.clone(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `spec.stages[2].actions[0].needs[1]` from serde_path_to_error's path.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key }
            | serde_path_to_error::Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// Where each field sits in the source text: the parsed tree, searched by
/// field path only when an error needs a position.
#[derive(Debug, Clone)]
pub struct Locations {
    tree: Spanned<Node>,
}

impl Locations {
    /// Fills in the error's line and column from its field path, falling
    /// back to the nearest enclosing field that has a position.
    pub fn locate(&self, mut err: SpecError) -> SpecError {
        if err.line != 0 {
            return err;
        }
        let mut node = &self.tree;
        let mut found = (node.referenced.line(), node.referenced.column());
        for segment in segments(&err.field) {
            let child = match (&node.value, segment) {
                (Node::Map(entries), Segment::Key(key)) => {
                    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
                }
                (Node::Seq(items), Segment::Index(i)) => items.get(i),
                _ => None,
            };
            let Some(child) = child else { break };
            node = child;
            if node.referenced.line() > 0 {
                found = (node.referenced.line(), node.referenced.column());
            }
        }
        err.line = clamp(found.0);
        err.column = clamp(found.1);
        err
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[2].c` as `Key(a) Key(b) Index(2) Key(c)`.
fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.').flat_map(|part| {
        let (key, indices) = part.split_once('[').unwrap_or((part, ""));
        let key = (!key.is_empty()).then_some(Segment::Key(key));
        let indices = indices
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse().ok())
            .map(Segment::Index);
        key.into_iter().chain(indices)
    })
}

/// A YAML tree that keeps each node's position.
#[derive(Debug, Clone)]
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            entries.push((key.0, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A mapping key as text, whatever scalar it was written as.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
