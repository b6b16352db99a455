//! What every service's error mapping shares: the google.rpc.ErrorInfo
//! domain and how an ErrorInfo is filled in.

use std::collections::HashMap;

use tonic_types::ErrorDetails;

/// The `domain` of every google.rpc.ErrorInfo Conveyor returns.
pub const ERROR_DOMAIN: &str = "conveyor.dev";

/// Sets `details`' ErrorInfo: `reason` in Conveyor's domain, with `metadata`.
pub fn error_info(details: &mut ErrorDetails, reason: &str, metadata: &[(&str, &str)]) {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
}
