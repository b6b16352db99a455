//! Any bytes into the pipeline parser, validator and conformance rules: they
//! may refuse the input, never panic, hang or exhaust memory.
#![no_main]

use conveyor_definitions::conformance;
use conveyor_definitions::spec::{self, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Auto, Format::Yaml, Format::Json] {
        if let Ok(valid) = spec::load(data, format) {
            let report = conformance::check(&valid.document, &valid.locations);
            assert!(report.score >= 0.0 && report.score <= 100.0);
        }
    }
});
