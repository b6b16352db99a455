//! Turning a gRPC error into a message a person can act on.

use tonic::Status;
use tonic_types::StatusExt;

/// The status message followed by its field violations and failed preconditions.
pub fn describe(status: &Status) -> String {
    let mut out = match status.code() {
        tonic::Code::Unavailable => format!("cannot reach the control plane: {}", status.message()),
        code => format!("{} ({code:?})", status.message()),
    };
    let details = status.get_error_details();
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            out.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for v in &failure.violations {
            out.push_str(&format!("\n  {}: {}", v.subject, v.description));
        }
    }
    out
}

/// An error to print: a gRPC status, or anything else.
pub fn to_anyhow(status: Status) -> anyhow::Error {
    anyhow::anyhow!(describe(&status))
}
