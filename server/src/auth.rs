//! `--api-key`: every API, process and `/_admin` route requires `Authorization: Bearer <key>`
//! (static files and CORS preflights do not). An empty key is refused at start-up
//! (`Args::check`), so a configured key is never empty here.
//!
//! The key is compared in constant time and never echoed, logged or stored in the request log.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;
use crate::state::AppState;

/// Middleware on the API routes: 401 unless the configured key is presented.
pub async fn require_key(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(key) = st.args.api_key.as_deref() else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or("")
                .trim()
        });
    let message = match presented {
        Some(p) if constant_time_eq(p.as_bytes(), key.as_bytes()) => return next.run(req).await,
        None => "Unauthorized: this server requires `Authorization: Bearer <api key>`",
        Some(_) => "Unauthorized: the API key is not valid for this server",
    };
    let err = if req.uri().path().starts_with("/api/") {
        ApiError::Json(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message.into())
    } else {
        ApiError::Text(StatusCode::UNAUTHORIZED, message.into())
    };
    let mut resp = err.into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0 && a.len() == b.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_is_equality() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(!super::constant_time_eq(b"", b"a"));
        assert!(super::constant_time_eq(b"", b""));
    }
}
