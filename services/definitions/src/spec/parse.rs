//! Turning a YAML or JSON document into a [`Document`], with every error
//! naming its field path and, where known, its line and column.
//!
//! Parsing is two passes over bounded input: the text becomes a JSON value
//! (YAML through serde-saphyr with a strict budget against alias bombs and
//! deep nesting), then the value becomes the typed document through
//! `serde_path_to_error`, which names the failing field. A third, cheap pass
//! records where each field sits in the text, so errors found after parsing
//! can point at a line too.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::{Budget, Options, Spanned};

use super::model::Document;
use super::{Format, SpecError};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Deepest nesting accepted; the schema itself needs about 8.
pub const MAX_DEPTH: usize = 32;

/// Parses a document; on failure returns the errors, each with a field path.
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
    let format = format.resolve(text);
    let value = match format {
        Format::Json => parse_json(text)?,
        Format::Yaml | Format::Auto => parse_yaml(text)?,
    };
    let locations = Locations::index(text);
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

fn parse_yaml(text: &str) -> Result<Value, Vec<SpecError>> {
    serde_saphyr::from_str_with_options::<Value>(text, options()).map_err(|e| {
        let mut err = SpecError::new("", format!("invalid YAML: {}", first_line(&e.to_string())));
        if let Some(loc) = e.location() {
            err.line = clamp(loc.line());
            err.column = clamp(loc.column());
        }
        vec![err]
    })
}

fn parse_json(text: &str) -> Result<Value, Vec<SpecError>> {
    let mut de = serde_json::Deserializer::from_str(text);
    // serde_json refuses nesting deeper than 128 on its own; check ours after.
    let value = Value::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    let value = value.map_err(|e| {
        let mut err = SpecError::new("", format!("invalid JSON: {e}"));
        err.line = clamp(e.line() as u64);
        err.column = clamp(e.column() as u64);
        vec![err]
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(vec![SpecError::new(
            "",
            format!("document nests deeper than {MAX_DEPTH} levels"),
        )]);
    }
    // serde_json keeps the last of duplicate keys; JSON is YAML, and the YAML
    // parser refuses them, so both formats treat duplicates alike.
    parse_yaml(text).map_err(|mut errors| {
        for e in &mut errors {
            e.message = e.message.replacen("invalid YAML", "invalid JSON", 1);
        }
        errors
    })?;
    Ok(value)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
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

/// Where each field path sits in the source text.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    by_path: HashMap<String, (u32, u32)>,
}

impl Locations {
    /// Indexes a document that already parsed; indexing never fails, it
    /// just knows fewer positions.
    pub fn index(text: &str) -> Self {
        let mut by_path = HashMap::new();
        if let Ok(root) = serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options()) {
            walk(&root, String::new(), &mut by_path);
        }
        Locations { by_path }
    }

    /// Fills in the error's line and column from its field path, falling
    /// back to the nearest enclosing field that has a position.
    pub fn locate(&self, mut err: SpecError) -> SpecError {
        if err.line != 0 {
            return err;
        }
        let mut path = err.field.as_str();
        loop {
            if let Some(&(line, column)) = self.by_path.get(path) {
                err.line = line;
                err.column = column;
                return err;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return err,
            }
        }
    }
}

fn walk(node: &Spanned<Node>, path: String, out: &mut HashMap<String, (u32, u32)>) {
    let loc = &node.referenced;
    out.insert(path.clone(), (clamp(loc.line()), clamp(loc.column())));
    match &node.value {
        Node::Map(entries) => {
            for (key, child) in entries {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, out);
            }
        }
        Node::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}[{i}]"), out);
            }
        }
        Node::Leaf => {}
    }
}

/// A YAML tree that keeps only structure, for [`Locations`].
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
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

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
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
