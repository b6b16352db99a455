//! Dynamic configuration, delivered without a redeploy by the
//! dynamic-configuration pipeline (examples/dynamic-configuration; see
//! [`crate::delivered`]): a new flag value or setting takes effect on the
//! next request, in the same process.
//!
//! `flags.json` and `settings.json` are flat JSON objects (the pipeline's
//! schemas say so): names to booleans, and names to strings, numbers or
//! booleans. The service reads them with the small parser below because it
//! has no dependencies, so that the demo builds offline.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::delivered::{Delivered, Versioned};

/// A setting's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    /// Kept as written.
    Number(String),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(s) => write!(f, "{s:?}"),
            Scalar::Number(n) => f.write_str(n),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One configuration version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Empty when nothing was delivered yet.
    pub version: String,
    pub flags: BTreeMap<String, bool>,
    pub settings: BTreeMap<String, Scalar>,
}

impl Snapshot {
    pub fn flag(&self, name: &str) -> bool {
        self.flags.get(name).copied().unwrap_or(false)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.settings.get(name) {
            Some(Scalar::Text(s)) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.settings.get(name), Some(Scalar::Bool(true)))
    }
}

/// The configuration of one instance, re-read when its version changes.
pub type Dynamic = Delivered<Snapshot>;

impl Versioned for Snapshot {
    const WHAT: &'static str = "configuration";

    fn load(dir: &Path, version: &str) -> Result<Self, String> {
        load(dir, version)
    }

    fn version(&self) -> &str {
        &self.version
    }
}

fn load(dir: &Path, version: &str) -> Result<Snapshot, String> {
    let read = |name: &str| {
        fs::read_to_string(dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
    };
    let mut flags = BTreeMap::new();
    for (name, value) in parse_flat_object(&read("flags.json")?)? {
        match value {
            Scalar::Bool(on) => flags.insert(name, on),
            other => return Err(format!("flag {name:?} is {other}, not a boolean")),
        };
    }
    Ok(Snapshot {
        version: version.to_owned(),
        flags,
        settings: parse_flat_object(&read("settings.json")?)?,
    })
}

/// Parses `{"name": scalar, ...}`: an object of strings, numbers and
/// booleans, nothing nested.
pub fn parse_flat_object(text: &str) -> Result<BTreeMap<String, Scalar>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = BTreeMap::new();
    p.expect(b'{')?;
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            let key = p.string()?;
            p.expect(b':')?;
            let value = p.scalar()?;
            out.insert(key, value);
            match p.next() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(p.error("',' or '}'")),
            }
        }
    }
    if p.peek().is_some() {
        return Err(p.error("the end of the document"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn error(&self, expected: &str) -> String {
        format!("expected {expected} at byte {}", self.i)
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.next() == Some(b) {
            Ok(())
        } else {
            Err(self.error(&format!("'{}'", b as char)))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.error("a closing '\"'"));
            };
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|_| "a string is not UTF-8".into()),
                b'\\' => {
                    let escaped = match self.s.get(self.i) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        _ => return Err(self.error("one of the escapes \\\" \\\\ \\/ \\n \\t \\r")),
                    };
                    self.i += 1;
                    out.push(escaped);
                }
                0..=0x1f => return Err(self.error("no control characters in a string")),
                _ => out.push(b),
            }
        }
    }

    fn scalar(&mut self) -> Result<Scalar, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Text),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Scalar::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Scalar::Bool(false))
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|b| b.is_ascii_digit() || b"-+.eE".contains(b))
                {
                    self.i += 1;
                }
                let number = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                number
                    .parse::<f64>()
                    .map(|_| Scalar::Number(number.to_owned()))
                    .map_err(|_| format!("{number:?} is not a number"))
            }
            _ => Err(self.error("a string, number or boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_objects() {
        let text = r#" { "greeting": "hi \"there\"", "max": 64, "ratio": -0.5e1,
            "on": true, "off": false } "#;
        let parsed = parse_flat_object(text).expect("valid");
        assert_eq!(parsed["greeting"], Scalar::Text("hi \"there\"".into()));
        assert_eq!(parsed["max"], Scalar::Number("64".into()));
        assert_eq!(parsed["ratio"], Scalar::Number("-0.5e1".into()));
        assert_eq!(parsed["on"], Scalar::Bool(true));
        assert_eq!(parsed["off"], Scalar::Bool(false));
        assert!(parse_flat_object("{}").expect("empty").is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_flat_object() {
        for text in [
            "",
            "[]",
            r#"{"a": {"b": 1}}"#,
            r#"{"a": [1]}"#,
            r#"{"a": null}"#,
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1} x"#,
            r#"{"a": "unterminated}"#,
            r#"{"a": 1.2.3}"#,
            "{\"a\": \"tab\there\"}",
        ] {
            assert!(parse_flat_object(text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn a_new_version_is_read_on_the_next_request() {
        let dir = std::env::temp_dir().join(format!("demo-app-dynamic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let write = |version: &str, flags: &str, settings: &str| {
            let v = dir.join("versions").join(version);
            fs::create_dir_all(&v).expect("mkdir");
            fs::write(v.join("flags.json"), flags).expect("flags");
            fs::write(v.join("settings.json"), settings).expect("settings");
            fs::write(v.join("VERSION"), format!("{version}\n")).expect("version");
            let _ = fs::remove_file(dir.join("current"));
            std::os::unix::fs::symlink(format!("versions/{version}"), dir.join("current"))
                .expect("symlink");
        };
        let config = Dynamic::new(Some(dir.clone()));
        assert_eq!(config.current(), Snapshot::default(), "nothing delivered yet");
        write("v1", r#"{"new-checkout": false}"#, r#"{"greeting": "hello"}"#);
        let v1 = config.current();
        assert_eq!((v1.version.as_str(), v1.flag("new-checkout")), ("v1", false));
        assert_eq!(v1.text("greeting"), Some("hello"));
        write("v2", r#"{"new-checkout": true}"#, r#"{"greeting": "hi"}"#);
        let v2 = config.current();
        assert_eq!((v2.version.as_str(), v2.flag("new-checkout")), ("v2", true));
        // A broken version is ignored: the last good one stays.
        write("v3", r#"{"new-checkout": "yes"}"#, "{}");
        assert_eq!(config.current(), v2);
        let _ = fs::remove_dir_all(&dir);
    }
}
