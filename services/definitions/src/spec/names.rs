//! Name rules shared by pipelines, stages, actions, environments and waves.

/// The rule every resource name follows, as shown in error messages.
pub const NAME_RULE: &str = "must match [a-z][a-z0-9-]{0,62}: a lowercase letter, then up to 62 lowercase letters, digits or hyphens";

pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("payments-api-2"));
        assert!(is_valid_name(&format!("a{}", "b".repeat(62))));
        assert!(!is_valid_name(&format!("a{}", "b".repeat(63))));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("1abc"));
        assert!(!is_valid_name("Abc"));
        assert!(!is_valid_name("a_b"));
        assert!(!is_valid_name("a.b"));
        assert!(!is_valid_name("-a"));
    }
}
