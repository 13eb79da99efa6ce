//! The outermost layer every request passes: host and origin checks, CORS preflights and headers,
//! scripted faults, `traceparent` echo, and the request log.
//!
//! Browser safety without an API key: the server runs commands, so a random web page must not be
//! able to drive it. Requests whose `Host` is not a loopback name are refused (DNS rebinding),
//! and state-changing requests carrying a disallowed `Origin` are refused (cross-site forms and
//! `fetch` without preflight); reads from such origins get no CORS headers, so the browser hides
//! the answer.

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
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_admin = path == "/_admin" || path.starts_with("/_admin/");
    let origin_ok = origin.as_deref().map(|o| st.cors.allows(o));

    let mut fault_id = None;
    let mut resp = if !host_allowed(headers.get(header::HOST).and_then(|v| v.to_str().ok())) {
        text(
            StatusCode::FORBIDDEN,
            "Host not allowed: tensorlake-local only answers requests for 127.0.0.1, localhost or <sandbox>.local",
        )
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

/// Whether a `Host` header names this loopback server (or a sandbox, as the SDK addresses it).
fn host_allowed(host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "127.0.0.1" | "localhost" | "::1")
        || name.ends_with(".local")
        || name.ends_with(".localhost")
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
        assert!(host_allowed(Some("127.0.0.1:8900")));
        assert!(host_allowed(Some("localhost:1")));
        assert!(host_allowed(Some("sbx-abc.local")));
        assert!(host_allowed(Some("[::1]:8900")));
        assert!(host_allowed(None));
        assert!(!host_allowed(Some("evil.example:8900")));
        assert!(!host_allowed(Some("127.0.0.1.evil.example")));
    }

    #[test]
    fn traceparents() {
        assert!(valid_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!valid_traceparent("00-xyz-b7ad6b7169203331-01"));
    }
}
