//! Every way a call can fail, as data. The wasm facade turns each variant into the exported JS
//! error class of the same name (`RemoteAPIError`, `SnapshotFailedError`, …); the messages are
//! built here so they are the same, and tested, on every platform.

use crate::args::ArgError;
use crate::decimal::format_decimal;
use crate::models::SnapshotRecord;
use crate::platform::{Json, Method, Platform};

/// What a 404 was about, for the typed not-found errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    /// `SandboxNotFoundError`.
    Sandbox(String),
    /// `SnapshotNotFoundError`.
    Snapshot(String),
}

/// A non-2xx answer from the API (`RemoteAPIError` and its not-found subclasses).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The server's message: the body text, or the `error`/`message` of a JSON body.
    pub response_message: String,
    /// A machine-readable code from a JSON body (`{"code": "NOT_FOUND"}`), if any.
    pub code: Option<String>,
    /// Trace id of the failed request.
    pub trace_id: String,
    /// Whether the request could be retried (429, 502, 503, 504).
    pub retryable: bool,
    /// The server's `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<f64>,
    /// Set for 404s on routes about one sandbox or one snapshot.
    pub not_found: Option<NotFound>,
    /// The request, e.g. `GET /snapshots/snap-1`, for the message.
    pub request: String,
    /// Set when a create request failed in a way that leaves unknown whether it took effect.
    pub outcome_unknown: Option<String>,
}

/// The server could not be reached, or the connection broke (`SandboxConnectionError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionError<C> {
    /// What happened, without secrets.
    pub message: String,
    /// The host's error value (a JS `TypeError: fetch failed`, a `TimeoutError`).
    pub cause: Option<C>,
    /// Trace id of the failed request.
    pub trace_id: String,
    /// True when the request timed out rather than failed.
    pub timed_out: bool,
    /// The request, e.g. `POST /sandboxes/sbx-1/snapshot`.
    pub request: String,
    /// Set when a create request failed in a way that leaves unknown whether it took effect.
    pub outcome_unknown: Option<String>,
    /// No attempt of the call reached the server (each connection was refused, or the host was
    /// not found), so it certainly did not take effect.
    pub nothing_sent: bool,
}

/// A failure of any call.
pub enum Error<P: Platform> {
    /// A bad argument (`TypeError` / `RangeError`).
    Arg(ArgError),
    /// An HTTP error status.
    Api(Box<ApiError>),
    /// No usable response.
    Connection(Box<ConnectionError<P::Cause>>),
    /// A 2xx response that is not what the API promises (HTML, truncated JSON, wrong shape).
    InvalidResponse {
        /// What was wrong.
        message: String,
        /// HTTP status of the response.
        status: u16,
        /// Trace id of the request.
        trace_id: String,
    },
    /// The snapshot ended `failed` (`SnapshotFailedError`).
    SnapshotFailed {
        /// The snapshot as last seen, including its `error`.
        snapshot: Box<SnapshotRecord<P::Json>>,
        /// Its id.
        snapshot_id: String,
        /// The server's error message, if it gave one.
        server_message: Option<String>,
        /// Trace id of the poll that saw the failure.
        trace_id: String,
    },
    /// The wait's deadline passed (`WaitTimeoutError`).
    WaitTimeout {
        /// The snapshot waited for.
        snapshot_id: String,
        /// The status the wait was for.
        wait_until: &'static str,
        /// The last status seen, if any poll succeeded.
        last_status: Option<String>,
        /// The timeout, in seconds.
        timeout_s: f64,
        /// Trace id of the last poll.
        trace_id: String,
        /// Why the last poll failed, when it did.
        last_error: Option<String>,
    },
    /// A callback of the caller's (`onStatus`) threw; the facade rethrows what it threw.
    Callback(P::Cause),
    /// Any other failure (`SandboxError`), e.g. a sandbox that terminated during start-up.
    Sandbox {
        /// What happened.
        message: String,
        /// A stable code, e.g. `SANDBOX_TERMINATED`.
        code: &'static str,
        /// The sandbox concerned, if any.
        sandbox_id: Option<String>,
        /// Trace id of the last request, if one was made.
        trace_id: Option<String>,
    },
    /// The caller's `AbortSignal` fired; the facade rethrows `signal.reason`.
    Aborted,
}

impl<P: Platform> Error<P> {
    /// True when a later attempt might succeed: connection failures and 429/502/503/504.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => api.retryable,
            Error::Connection(_) => true,
            _ => false,
        }
    }

    /// The `Retry-After` delay the server asked for, if any.
    pub fn retry_after_ms(&self) -> Option<f64> {
        match self {
            Error::Api(api) => api.retry_after_ms,
            _ => None,
        }
    }

    /// The trace id of the request that failed, when a request was made.
    pub fn trace_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.trace_id),
            Error::Connection(e) => Some(&e.trace_id),
            Error::InvalidResponse { trace_id, .. }
            | Error::SnapshotFailed { trace_id, .. }
            | Error::WaitTimeout { trace_id, .. } => Some(trace_id),
            Error::Sandbox { trace_id, .. } => trace_id.as_deref(),
            Error::Arg(_) | Error::Aborted | Error::Callback(_) => None,
        }
    }

    /// The JS class name this error becomes.
    pub fn class_name(&self) -> &'static str {
        match self {
            Error::Arg(arg) if arg.is_range => "RangeError",
            Error::Arg(_) => "TypeError",
            Error::Api(api) => match api.not_found {
                Some(NotFound::Sandbox(_)) => "SandboxNotFoundError",
                Some(NotFound::Snapshot(_)) => "SnapshotNotFoundError",
                None => "RemoteAPIError",
            },
            Error::Connection(_) => "SandboxConnectionError",
            Error::SnapshotFailed { .. } => "SnapshotFailedError",
            Error::WaitTimeout { .. } => "WaitTimeoutError",
            Error::InvalidResponse { .. } | Error::Sandbox { .. } => "SandboxError",
            Error::Aborted => "AbortError",
            Error::Callback(_) => "Error",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            Error::Arg(arg) => arg.message.clone(),
            Error::Api(api) => {
                let mut msg = match &api.not_found {
                    Some(NotFound::Sandbox(id)) => format!("Sandbox not found: {id}"),
                    Some(NotFound::Snapshot(id)) => format!("Snapshot not found: {id}"),
                    None => format!(
                        "API error (status {}) on {}: {}",
                        api.status, api.request, api.response_message
                    ),
                };
                if let Some(note) = &api.outcome_unknown {
                    msg.push_str("; ");
                    msg.push_str(note);
                }
                msg
            }
            Error::Connection(conn) => {
                let mut msg = format!("Connection error on {}: {}", conn.request, conn.message);
                if let Some(note) = &conn.outcome_unknown {
                    msg.push_str("; ");
                    msg.push_str(note);
                }
                msg
            }
            Error::InvalidResponse { message, .. } => message.clone(),
            Error::SnapshotFailed {
                snapshot_id,
                server_message,
                ..
            } => match server_message {
                Some(why) => format!("Snapshot {snapshot_id} failed: {why}"),
                None => format!("Snapshot {snapshot_id} failed (the server gave no reason)"),
            },
            Error::WaitTimeout {
                snapshot_id,
                wait_until,
                last_status,
                timeout_s,
                last_error,
                ..
            } => {
                let mut seen = match last_status {
                    Some(status) => format!("last status {status}"),
                    None => "no status was seen".to_string(),
                };
                if let Some(why) = last_error {
                    seen.push_str("; the last poll failed: ");
                    seen.push_str(why);
                }
                format!(
                    "Snapshot {snapshot_id} did not reach {wait_until} within {}s ({seen})",
                    format_decimal(*timeout_s)
                )
            }
            Error::Sandbox { message, .. } => message.clone(),
            Error::Aborted => "The operation was aborted".to_string(),
            Error::Callback(_) => "A callback threw".to_string(),
        }
    }
}

impl<P: Platform> From<ArgError> for Error<P> {
    fn from(arg: ArgError) -> Self {
        Error::Arg(arg)
    }
}

impl<P: Platform> std::fmt::Debug for Error<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class_name(), self.message())
    }
}

/// What the server said in an error body. JSON bodies (`{"error": "...", "code": "..."}`, as the
/// sandbox daemon sends) give their message and code; HTML error pages (from a proxy or load
/// balancer) give their `<title>`; anything else is the trimmed text, capped so a multi-megabyte
/// page cannot flood a log.
pub fn server_message<J: Json>(text: &str, parsed: Option<J>) -> (String, Option<String>) {
    const LIMIT: usize = 2000;
    if let Some(json) = parsed {
        use crate::platform::Key;
        let code = json.get(Key::Code).and_then(|c| c.as_string());
        for key in [Key::Error, Key::Message, Key::Detail] {
            if let Some(msg) = json.get(key).and_then(|m| m.as_string()) {
                return (msg, code);
            }
        }
        if code.is_some() {
            return (cap(text.trim(), LIMIT), code);
        }
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return (default_reason().to_string(), None);
    }
    if trimmed.starts_with('<') {
        let lower = trimmed.to_ascii_lowercase();
        if let (Some(start), Some(end)) = (crate::text::find(&lower, "<title>"), crate::text::find(&lower, "</title>")) {
            if let Some(title) = trimmed.get(start + 7..end) {
                if !title.trim().is_empty() {
                    return (format!("{} (HTML error page)", title.trim()), None);
                }
            }
        }
        return (
            format!("{} (HTML error page)", default_reason()),
            None,
        );
    }
    (cap(trimmed, LIMIT), None)
}

fn cap(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes in all)",
        text.get(..end).unwrap_or(""),
        text.len()
    )
}

/// What to say when the server said nothing: the status is already in every message, so a
/// table of reason phrases would only repeat it.
fn default_reason() -> &'static str {
    "the server sent no message"
}

/// `GET /snapshots/snap-1`: method and path of a URL, for messages (never the query string,
/// which may hold a file path the caller considers private, and never credentials).
pub fn describe_request(method: Method, url: &str) -> String {
    let after_scheme = crate::text::find(url, "://").and_then(|i| url.get(i + 3..)).unwrap_or(url);
    let path = after_scheme
        .find('/')
        .and_then(|i| after_scheme.get(i..))
        .unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    format!("{} {}", method.as_str(), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse;

    #[test]
    fn server_messages_from_each_body_shape() {
        let (msg, code) = server_message("Snapshot not found: s", None::<serde_json::Value>);
        assert_eq!((msg.as_str(), code), ("Snapshot not found: s", None));

        let body = r#"{"error":"no such file","code":"NOT_FOUND"}"#;
        let (msg, code) = server_message(body, Some(parse(body)));
        assert_eq!(msg, "no such file");
        assert_eq!(code.as_deref(), Some("NOT_FOUND"));

        let html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        let (msg, _) = server_message(html, None::<serde_json::Value>);
        assert_eq!(msg, "502 Bad Gateway (HTML error page)");

        let (msg, _) = server_message("", None::<serde_json::Value>);
        assert_eq!(msg, "the server sent no message");

        let huge = "x".repeat(10_000);
        let (msg, _) = server_message(&huge, None::<serde_json::Value>);
        assert!(msg.len() < 2100 && msg.ends_with("(10000 bytes in all)"));
    }

    #[test]
    fn request_descriptions_drop_origin_and_query() {
        assert_eq!(
            describe_request(
                Method::Get,
                "http://127.0.0.1:8900/v1/namespaces/default/snapshots/s1"
            ),
            "GET /v1/namespaces/default/snapshots/s1"
        );
        assert_eq!(
            describe_request(Method::Get, "https://h/api/v1/files?path=%2Fsecret"),
            "GET /api/v1/files"
        );
        assert_eq!(describe_request(Method::Post, "https://h"), "POST /");
    }
}
