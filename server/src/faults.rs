//! Scripted HTTP faults (`POST /_admin/faults`): the next N requests matching a method and a
//! path glob get a chosen failure instead of (or after) their real answer.
//!
//! Semantics, in the order they are applied (documented in server/README.md):
//! 1. `delay_ms`: wait first. Alone, the request is then handled normally.
//! 2. The real handler runs only when `after` or `truncate` is set; otherwise the request has no
//!    effect at all (a scripted 502 on a snapshot POST creates no snapshot unless `after`).
//! 3. The response is `non_json` (a 200 `text/html` page, or `status` if given), else `status`
//!    with `body` (text/plain), else the real response, else (a `drop` with nothing else) a 200
//!    JSON filler.
//! 4. `truncate` cuts the body to its first half with a matching `Content-Length`; `drop` sends the
//!    status line, headers (declaring the full length) and half the body, then closes the
//!    connection.
//! 5. `retry_after` is copied verbatim into a `Retry-After` header.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::http::ApiError;
use crate::model::new_id;

/// A fault as posted to `/_admin/faults`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// HTTP method to match, or `*` (default).
    pub method: Option<String>,
    /// Path glob; `*` matches any run of characters, `/` included.
    pub path: Option<String>,
    /// How many matching requests get the fault (default 1).
    pub count: Option<u64>,
    /// Status to answer.
    pub status: Option<u16>,
    /// Body for `status` (text/plain).
    pub body: Option<String>,
    /// `Retry-After` value, sent verbatim (seconds or an HTTP date).
    pub retry_after: Option<RetryAfter>,
    /// Latency added before anything else.
    pub delay_ms: Option<u64>,
    /// Close the connection halfway through the body.
    #[serde(default)]
    pub drop: bool,
    /// Answer only the first half of the body.
    #[serde(default)]
    pub truncate: bool,
    /// Answer an HTML page instead of JSON.
    #[serde(default)]
    pub non_json: bool,
    /// Handle the request for real first, then spoil its response.
    #[serde(default)]
    pub after: bool,
}

/// `retry_after` may be given as a string or a number of seconds.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RetryAfter {
    /// Verbatim header value.
    Text(String),
    /// Seconds.
    Seconds(u64),
}

/// An armed fault.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Id returned at creation.
    pub id: String,
    /// Upper-case method or `*`.
    pub method: String,
    /// Path glob.
    pub path: String,
    /// Matching requests still to be spoiled.
    pub remaining: u64,
    /// See [`FaultSpec`].
    pub status: Option<u16>,
    /// See [`FaultSpec`].
    pub body: Option<String>,
    /// See [`FaultSpec`].
    pub retry_after: Option<String>,
    /// See [`FaultSpec`].
    pub delay_ms: u64,
    /// See [`FaultSpec`].
    pub drop: bool,
    /// See [`FaultSpec`].
    pub truncate: bool,
    /// See [`FaultSpec`].
    pub non_json: bool,
    /// See [`FaultSpec`].
    pub after: bool,
}

impl Fault {
    /// Validates a spec; the error names the offending field.
    pub fn from_spec(spec: FaultSpec) -> Result<Fault, ApiError> {
        let path = spec.path.ok_or_else(|| {
            ApiError::bad_request(
                "field `path` is required (a glob such as \"/v1/namespaces/*/snapshots/*\")",
            )
        })?;
        if !(path.starts_with('/') || path.starts_with('*')) {
            return Err(ApiError::bad_request(format!(
                "field `path` must start with `/` or `*`, got {path:?}"
            )));
        }
        let method = spec
            .method
            .unwrap_or_else(|| "*".into())
            .to_ascii_uppercase();
        if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::bad_request(format!(
                "field `method` must be an HTTP method or \"*\", got {method:?}"
            )));
        }
        let count = spec.count.unwrap_or(1);
        if count == 0 {
            return Err(ApiError::bad_request("field `count` must be at least 1"));
        }
        if let Some(s) = spec.status {
            if !(100..=599).contains(&s) {
                return Err(ApiError::bad_request(format!(
                    "field `status` must be an HTTP status (100-599), got {s}"
                )));
            }
        }
        let delay_ms = spec.delay_ms.unwrap_or(0);
        if delay_ms > 600_000 {
            return Err(ApiError::bad_request(
                "field `delay_ms` must be at most 600000",
            ));
        }
        if spec.drop && spec.truncate {
            return Err(ApiError::bad_request(
                "`drop` and `truncate` cannot be combined: pick one way to cut the body",
            ));
        }
        if spec.status.is_none() && !spec.drop && !spec.truncate && !spec.non_json && delay_ms == 0
        {
            return Err(ApiError::bad_request(
                "a fault needs at least one of `status`, `delay_ms`, `drop`, `truncate`, `non_json`",
            ));
        }
        let retry_after = match spec.retry_after {
            Some(RetryAfter::Seconds(n)) => Some(n.to_string()),
            Some(RetryAfter::Text(t)) => {
                if HeaderValue::from_str(&t).is_err() {
                    return Err(ApiError::bad_request(
                        "field `retry_after` is not a valid header value",
                    ));
                }
                Some(t)
            }
            None => None,
        };
        Ok(Fault {
            id: new_id("fault-"),
            method,
            path,
            remaining: count,
            status: spec.status,
            body: spec.body,
            retry_after,
            delay_ms,
            drop: spec.drop,
            truncate: spec.truncate,
            non_json: spec.non_json,
            after: spec.after,
        })
    }
}

/// The armed faults, oldest first (the first match wins).
#[derive(Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
    /// Mirror of `list.len()`, so requests skip the lock when nothing is armed (the common case).
    armed: AtomicUsize,
}

impl Faults {
    /// Arms a fault.
    pub fn add(&self, fault: Fault) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.push(fault);
        self.armed.store(list.len(), Ordering::Release);
    }

    /// The faults still armed.
    pub fn list(&self) -> Vec<Fault> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Disarms everything.
    pub fn clear(&self) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.clear();
        self.armed.store(0, Ordering::Release);
    }

    /// Consumes one use of the first fault matching this request, if any.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        if self.armed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let i = list
            .iter()
            .position(|f| (f.method == "*" || f.method == method) && glob_match(&f.path, path))?;
        list[i].remaining -= 1;
        let fault = list[i].clone();
        if list[i].remaining == 0 {
            list.remove(i);
        }
        self.armed.store(list.len(), Ordering::Release);
        Some(fault)
    }
}

/// Glob match where `*` matches any run of characters, including `/`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Runs `req` through `fault` (see the module documentation for the order of effects).
pub async fn apply(fault: &Fault, req: Request, next: Next) -> Response {
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    let spoils = fault.status.is_some() || fault.drop || fault.truncate || fault.non_json;
    if !spoils {
        let mut resp = next.run(req).await;
        set_retry_after(&mut resp, fault);
        return resp;
    }
    let real = if fault.after || fault.truncate {
        let resp = next.run(req).await;
        let (parts, body) = resp.into_parts();
        // A body that cannot be read in full (a failed stream) is spoiled as what was read: none.
        let bytes = axum::body::to_bytes(body, 256 * 1024 * 1024)
            .await
            .unwrap_or_default();
        Some((parts, bytes))
    } else {
        drop(req);
        None
    };

    let (status, content_type, body, mut extra) = if fault.non_json {
        let html = format!(
            "<!DOCTYPE html>\n<html><head><title>Bad gateway</title></head><body><h1>Upstream error</h1>\
             <p>tensorlake-local fault {}: an HTML page instead of JSON.</p></body></html>\n",
            fault.id
        );
        (
            StatusCode::from_u16(fault.status.unwrap_or(200)).unwrap_or(StatusCode::OK),
            "text/html; charset=utf-8",
            Bytes::from(html),
            None,
        )
    } else if let Some(code) = fault.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = fault.body.clone().unwrap_or_else(|| {
            format!(
                "injected fault: HTTP {code} (tensorlake-local fault {})",
                fault.id
            )
        });
        (status, "text/plain; charset=utf-8", Bytes::from(body), None)
    } else if let Some((parts, bytes)) = real {
        let ct = parts.headers.get(header::CONTENT_TYPE).cloned();
        (parts.status, "", bytes, Some((parts.headers, ct)))
    } else {
        let filler = format!(
            "{{\"note\":\"tensorlake-local fault {}: this response is cut short on purpose\",\"padding\":\"{}\"}}",
            fault.id,
            "x".repeat(64)
        );
        (
            StatusCode::OK,
            "application/json",
            Bytes::from(filler),
            None,
        )
    };

    let mut builder = Response::builder().status(status);
    match extra.take() {
        Some((headers, ct)) => {
            for (name, value) in headers.iter() {
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    builder = builder.header(name, value);
                }
            }
            if ct.is_none() && !body.is_empty() {
                builder = builder.header(header::CONTENT_TYPE, "application/octet-stream");
            }
        }
        None => builder = builder.header(header::CONTENT_TYPE, content_type),
    }

    let mut resp = if fault.truncate {
        let cut = body.slice(..body.len() / 2);
        builder
            .header(header::CONTENT_LENGTH, cut.len())
            .body(Body::from(cut))
    } else if fault.drop {
        // Declare more than will ever arrive, even for an empty body, so the client is certain to
        // see the connection close mid-body.
        let declared = body.len().max(16);
        let sent = body.slice(..body.len() / 2);
        builder
            .header(header::CONTENT_LENGTH, declared)
            .body(dropping_body(sent))
    } else {
        builder.body(Body::from(body))
    }
    .unwrap_or_else(|_| Response::new(Body::empty()));
    set_retry_after(&mut resp, fault);
    resp
}

/// A body that yields `first`, lets hyper flush it, then fails, which makes hyper close the
/// connection without completing the response.
fn dropping_body(first: Bytes) -> Body {
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let first = first.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(first), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "injected drop",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(stream)
}

fn set_retry_after(resp: &mut Response, fault: &Fault) {
    if let Some(v) = fault
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_star_spans_slashes() {
        assert!(glob_match(
            "/v1/namespaces/*/snapshots/*",
            "/v1/namespaces/default/snapshots/snap-1"
        ));
        assert!(glob_match("*", "/anything/at/all"));
        assert!(glob_match(
            "*/snapshot",
            "/v1/namespaces/a/sandboxes/b/snapshot"
        ));
        assert!(!glob_match(
            "*/snapshot",
            "/v1/namespaces/a/sandboxes/b/snapshots"
        ));
        assert!(glob_match("/snapshots/*", "/snapshots/a/b"));
        assert!(!glob_match("/snapshots", "/snapshots/a"));
        assert!(glob_match("/a*b*c", "/axxbyyc"));
    }

    #[test]
    fn take_counts_down_and_disarms() {
        let faults = Faults::default();
        let spec = FaultSpec {
            path: Some("/x*".into()),
            status: Some(503),
            count: Some(2),
            ..Default::default()
        };
        faults.add(Fault::from_spec(spec).unwrap());
        assert!(faults.take("GET", "/y").is_none());
        assert!(faults.take("GET", "/x1").is_some());
        assert!(faults.take("POST", "/x2").is_some());
        assert!(faults.take("GET", "/x3").is_none());
        assert!(faults.list().is_empty());
    }

    #[test]
    fn specs_are_validated() {
        assert!(Fault::from_spec(FaultSpec {
            path: Some("/x".into()),
            ..Default::default()
        })
        .is_err());
        assert!(Fault::from_spec(FaultSpec {
            status: Some(503),
            ..Default::default()
        })
        .is_err());
        assert!(Fault::from_spec(FaultSpec {
            path: Some("/x".into()),
            drop: true,
            truncate: true,
            ..Default::default()
        })
        .is_err());
        assert!(Fault::from_spec(FaultSpec {
            path: Some("/x".into()),
            status: Some(999),
            ..Default::default()
        })
        .is_err());
    }
}
