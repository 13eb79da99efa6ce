//! The outermost layer every request passes: host and origin checks, CORS preflights and headers,
//! scripted faults, `traceparent` echo, and the request log.
//!
//! Browser safety without an API key: the server runs commands, so a random web page must not be
//! able to drive it. Requests are refused with 421 unless their `Host` is `localhost`,
//! `127.0.0.1` or `[::1]` (any port), or `{sandbox}.local` for a sandbox this server has
//! (DNS rebinding: a page on `evil.example` that re-points its name at 127.0.0.1 still sends
//! `Host: evil.example`). State-changing requests carrying a disallowed `Origin` are refused
//! (cross-site forms and `fetch` without preflight); reads from such origins get no CORS
//! headers, so the browser hides the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::cors::{Preflight, ALLOW_METHODS};
use crate::faults;
use crate::http::text;
use crate::reqlog::Entry;
use crate::state::AppState;

/// The middleware.
pub async fn gateway(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let mut path = req.uri().path().to_string();
    if let Some((cut, _)) = path.char_indices().nth(512) {
        path.truncate(cut);
        path.push('…');
    }
    let headers = req.headers();
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorized = headers.contains_key(header::AUTHORIZATION);
    // Two `Origin` headers, or one that is not text, are never a browser's: refused as a
    // disallowed origin rather than read as none (which would let a state change through).
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().unwrap_or("(unreadable)").to_string()),
        (Some(_), Some(_)) => Some("(more than one)".to_string()),
    };
    let is_admin = path == "/_admin" || path.starts_with("/_admin/");
    let origin_ok = origin.as_deref().map(|o| st.cors.allows(o));

    let mut fault_id = None;
    // The target's own authority (absolute form) wins over `Host`, as HTTP/1.1 says, so it is the
    // one checked; two `Host` headers are refused outright. (The sandbox routes still name their
    // sandbox by the `Host` header or `X-Tensorlake-Sandbox-Id`; with an absolute-form target the
    // `Host` they read is unchecked, which only a non-browser client can send and which reaches no
    // more than `X-Tensorlake-Sandbox-Id` already does.)
    let host = match req.uri().authority() {
        Some(a) => Some(Some(a.as_str())),
        None if headers.get_all(header::HOST).iter().nth(1).is_some() => Some(None),
        None => headers.get(header::HOST).map(|v| v.to_str().ok()),
    };
    let mut resp = if let Some(refusal) = host.and_then(|h| host_refusal(&st, h)) {
        text(StatusCode::MISDIRECTED_REQUEST, refusal)
    } else if method == Method::OPTIONS
        && origin.is_some()
        && headers.contains_key("access-control-request-method")
    {
        preflight(&st, origin.as_deref().unwrap_or(""), headers)
    } else if origin_ok == Some(false)
        && (is_admin || !matches!(method, Method::GET | Method::HEAD))
    {
        text(
            StatusCode::FORBIDDEN,
            format!(
                "CORS: origin {} may not call this server (allowed: http://localhost:*, http://127.0.0.1:*, or --cors-origin values)",
                origin.as_deref().unwrap_or("")
            ),
        )
    } else if is_admin && !peer.ip().is_loopback() {
        text(
            StatusCode::FORBIDDEN,
            "the admin API only answers loopback clients",
        )
    } else if is_admin {
        next.run(req).await
    } else if let Some(fault) = st.faults.take(method.as_str(), &path) {
        fault_id = Some(fault.id.clone());
        faults::apply(&fault, req, next).await
    } else {
        next.run(req).await
    };

    let h = resp.headers_mut();
    if let (Some(o), Some(true)) = (origin.as_deref(), origin_ok) {
        if !h.contains_key("access-control-allow-origin") {
            st.cors.decorate(o, h);
        }
    }
    if let Some(tp) = traceparent
        .as_deref()
        .filter(|t| valid_traceparent(t))
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        h.entry("traceparent").or_insert(tp);
    }
    st.reqlog.record(
        Entry {
            method: method.to_string(),
            path,
            status: resp.status().as_u16(),
            ms: (start.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            traceparent,
            authorized,
            fault: fault_id,
        },
        !is_admin,
    );
    resp
}

/// Answers a CORS preflight: 204 with the grant, or 403 without any CORS header.
fn preflight(st: &AppState, origin: &str, headers: &axum::http::HeaderMap) -> Response {
    match st.cors.preflight(origin, headers) {
        Preflight::Allowed(granted) => {
            let mut resp = Response::new(axum::body::Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            let h = resp.headers_mut();
            st.cors.decorate(origin, h);
            h.insert(
                "access-control-allow-methods",
                HeaderValue::from_static(ALLOW_METHODS),
            );
            if !granted.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&granted) {
                    h.insert("access-control-allow-headers", v);
                }
            }
            h.insert("access-control-max-age", HeaderValue::from_static("600"));
            h.append(
                "vary",
                HeaderValue::from_static(
                    "Access-Control-Request-Method, Access-Control-Request-Headers",
                ),
            );
            resp
        }
        Preflight::Refused(reason) => text(StatusCode::FORBIDDEN, reason),
    }
}

/// What a `Host` header names.
#[derive(Debug, PartialEq, Eq)]
pub enum HostName<'a> {
    /// `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
    Loopback,
    /// `{label}.local`, with or without a port: a sandbox id or name, as the SDKs address one.
    Sandbox(&'a str),
    /// Anything else.
    Other,
}

/// Splits `host[:port]` / `[v6]:port` and says what it names. Loopback names compare without
/// case; a sandbox label is kept as sent (ids and names are matched exactly).
pub fn classify_host(host: &str) -> HostName<'_> {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return HostName::Other;
        };
        let port_fine = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
        return if port_fine && inside == "::1" {
            HostName::Loopback
        } else {
            HostName::Other
        };
    }
    let name = match host.split_once(':') {
        Some((name, port)) if port_ok(port) => name,
        Some(_) => return HostName::Other,
        None => host,
    };
    if name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" {
        return HostName::Loopback;
    }
    let cut = name.len().saturating_sub(".local".len());
    match (name.get(..cut), name.get(cut..)) {
        (Some(label), Some(suffix))
            if !label.is_empty()
                && !label.contains('.')
                && suffix.eq_ignore_ascii_case(".local") =>
        {
            HostName::Sandbox(label)
        }
        _ => HostName::Other,
    }
}

/// Why a request with this `Host` header (`None`: not text) is refused, if it is. A request
/// without `Host` (HTTP/1.0) is not: browsers, the only DNS-rebinding vector, always send one.
fn host_refusal(st: &AppState, host: Option<&str>) -> Option<&'static str> {
    const OTHER: &str = "Misdirected request: tensorlake-local only answers `Host: localhost`, `127.0.0.1` or `[::1]` (any port), or `<sandbox-id>.local` for one of its sandboxes; other host names are refused so that a web page cannot reach it through DNS rebinding";
    match host.map(classify_host) {
        Some(HostName::Loopback) => None,
        Some(HostName::Sandbox(label)) => {
            if st.reg().find_daemon_sandbox(label).is_some() {
                None
            } else {
                Some("Misdirected request: `Host: <sandbox>.local` names no sandbox of this server (use an existing sandbox id, or `Host: 127.0.0.1`)")
            }
        }
        _ => Some(OTHER),
    }
}

/// `00-<32 hex>-<16 hex>-<2 hex>`.
fn valid_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        use HostName::*;
        assert_eq!(classify_host("127.0.0.1:8900"), Loopback);
        assert_eq!(classify_host("LocalHost:1"), Loopback);
        assert_eq!(classify_host("localhost"), Loopback);
        assert_eq!(classify_host("[::1]:8900"), Loopback);
        assert_eq!(classify_host("[::1]"), Loopback);
        assert_eq!(classify_host("sbx-abc.local"), Sandbox("sbx-abc"));
        assert_eq!(classify_host("sbx-abc.LOCAL:8900"), Sandbox("sbx-abc"));
        for other in [
            "evil.example:8900",
            "127.0.0.1.evil.example",
            "x.localhost",
            "localhost.",
            "a.b.local",
            ".local",
            "local",
            "[::2]:1",
            "[::1]x",
            "localhost:abc",
            "localhost:1:2",
            "127.0.0.2",
            "",
        ] {
            assert_eq!(classify_host(other), Other, "{other}");
        }
    }

    #[test]
    fn traceparents() {
        assert!(valid_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!valid_traceparent("00-xyz-b7ad6b7169203331-01"));
    }
}
