//! The served model, delivered by the machine-learning pipeline
//! (examples/machine-learning) like dynamic configuration (see
//! [`crate::delivered`]): each version holds `VERSION`, `model.txt` and
//! `metrics.json`.
//!
//! `model.txt` is a linear model, one term per line:
//! `intercept 4.95` and `weight x1 3.01`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::delivered::{Delivered, Versioned};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// Empty when no model was delivered yet.
    pub version: String,
    pub intercept: f64,
    pub weights: BTreeMap<String, f64>,
    /// The evaluation it was registered with, as written.
    pub metrics: String,
}

impl Model {
    /// The prediction for `inputs` (`name=value` pairs of a query string).
    pub fn predict(&self, query: &str) -> Result<f64, String> {
        let mut inputs = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or(format!("{pair:?} is not name=value"))?;
            let value: f64 =
                value.parse().map_err(|_| format!("{name}={value:?} is not a number"))?;
            inputs.insert(name, value);
        }
        let mut y = self.intercept;
        for (name, weight) in &self.weights {
            let x = inputs.get(name.as_str()).ok_or(format!("missing input {name}"))?;
            y += weight * x;
        }
        Ok(y)
    }
}

/// Parses `model.txt`.
pub fn parse(text: &str) -> Result<(f64, BTreeMap<String, f64>), String> {
    let mut intercept = None;
    let mut weights = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let number = |s: &str| s.parse::<f64>().map_err(|_| format!("bad number in {line:?}"));
        match parts.as_slice() {
            ["intercept", value] => intercept = Some(number(value)?),
            ["weight", name, value] => {
                weights.insert((*name).to_owned(), number(value)?);
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    Ok((intercept.ok_or("no intercept")?, weights))
}

/// The model of one instance, re-read when its version changes.
pub type Served = Delivered<Model>;

impl Versioned for Model {
    const WHAT: &'static str = "model";

    fn load(dir: &Path, version: &str) -> Result<Self, String> {
        let text = fs::read_to_string(dir.join("model.txt"))
            .map_err(|e| format!("cannot read model.txt: {e}"))?;
        let (intercept, weights) = parse(&text)?;
        Ok(Model {
            version: version.to_owned(),
            intercept,
            weights,
            metrics: fs::read_to_string(dir.join("metrics.json"))
                .unwrap_or_default()
                .trim()
                .to_owned(),
        })
    }

    fn version(&self) -> &str {
        &self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_predicts() {
        let (intercept, weights) =
            parse("intercept 5.0\nweight x1 3.0\nweight x2 -2.0\n").expect("valid");
        let model = Model {
            version: "1".into(),
            intercept,
            weights,
            metrics: String::new(),
        };
        assert_eq!(model.predict("x1=2&x2=3"), Ok(5.0));
        assert!(model.predict("x1=2").is_err(), "x2 is missing");
        assert!(model.predict("x1=a&x2=1").is_err());
        assert!(parse("intercept\n").is_err());
        assert!(parse("weight x1 1\n").is_err(), "no intercept");
    }
}
