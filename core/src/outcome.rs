//! When a failed request that changes something may have taken effect anyway, and how such a
//! failure says so ("outcome unknown"): the rule every create and run follows.

use crate::error::Error;
use crate::platform::Platform;

/// What a create whose answer could not be read says: the server answered 2xx, so it did.
pub(crate) const SANDBOX_CREATED_NOTE: &str =
    "outcome unknown: the server accepted the request, so the sandbox was probably created; check listSandboxes()";

/// What a run whose outcome is unclear says.
pub(crate) const COMMAND_RAN_NOTE: &str =
    "outcome unknown: the command may or may not have run; check the sandbox before running it again";

/// Whether a failed request that changes something may have been applied anyway: no answer, an
/// unreadable answer, or a server error.
pub(crate) fn is_ambiguous<P: Platform>(failure: &Error<P>) -> bool {
    match failure {
        Error::Connection(conn) => !conn.nothing_sent,
        Error::InvalidResponse { .. } => true,
        Error::Api(api) => api.status >= 500,
        Error::Sandbox { code, .. } => *code == "RESPONSE_TOO_LARGE",
        _ => false,
    }
}

/// `failure`, marked as a request whose effect is unknown, with `note` saying what to check.
pub(crate) fn outcome_unknown<P: Platform>(failure: Error<P>, note: String) -> Error<P> {
    match failure {
        Error::Api(mut api) => {
            api.outcome_unknown = Some(note);
            Error::Api(api)
        }
        Error::Connection(mut conn) => {
            conn.outcome_unknown = Some(note);
            Error::Connection(conn)
        }
        Error::InvalidResponse {
            message, trace_id, ..
        } => Error::Sandbox {
            message: format!("{message}; {note}"),
            code: "OUTCOME_UNKNOWN",
            sandbox_id: None,
            trace_id: Some(trace_id),
        },
        other => other,
    }
}
