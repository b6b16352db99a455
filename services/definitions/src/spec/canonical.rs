//! The canonical form of a spec: compact JSON of the typed document with
//! every default spelled out. Struct fields serialize in declaration order
//! and maps are ordered, so equal specs have equal bytes and equal digests
//! whatever their source format, key order, comments or whitespace.

use sha2::{Digest, Sha256};

use super::model::Document;

pub fn canonical_json(document: &Document) -> String {
    // Serializing plain data with string keys into a String cannot fail.
    serde_json::to_string(document).unwrap_or_default()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
