//! CORS: which browser origins may call the API, and the headers that say so.
//!
//! The default lets any page on `http://localhost:*` or `http://127.0.0.1:*` call the server
//! (a dev server on another port, the demo served by `--static`). `--cors-origin` replaces that
//! list; the server's own origin stays allowed so the demo served by `--static` keeps working.

use axum::http::{HeaderMap, HeaderValue, Method};

/// Methods a preflight may ask for.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, PATCH, OPTIONS";
/// Response headers a page may read (the client needs `Retry-After` to honour back-off).
pub const EXPOSE_HEADERS: &str = "Retry-After, traceparent, Content-Type";

/// Allowed origins.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Exact origins (from `--cors-origin`), or empty for the loopback default.
    exact: Vec<String>,
    /// `--cors-origin '*'` was given.
    any: bool,
    /// The server's own origins, always allowed.
    own: [String; 2],
}

/// Outcome of checking a preflight.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// Allowed: answer 204 with these `Access-Control-Allow-Headers`.
    Allowed(String),
    /// Refused, with the reason for the 403 body.
    Refused(String),
}

impl Cors {
    /// Builds the policy from the `--cors-origin` values and the listening port.
    pub fn new(origins: &[String], port: u16) -> Self {
        let any = origins.iter().any(|o| o == "*");
        let exact = origins
            .iter()
            .filter(|o| *o != "*")
            .map(|o| o.trim_end_matches('/').to_string())
            .collect();
        Cors {
            exact,
            any,
            own: [
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
            ],
        }
    }

    /// Whether a page at `origin` may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any || self.own.iter().any(|o| o == origin) {
            return true;
        }
        if !self.exact.is_empty() {
            return self.exact.iter().any(|o| o == origin);
        }
        is_loopback_origin(origin)
    }

    /// Checks a preflight's requested method and headers.
    pub fn preflight(&self, origin: &str, headers: &HeaderMap) -> Preflight {
        if !self.allows(origin) {
            return Preflight::Refused(format!(
                "CORS: origin {origin} is not allowed by this server (see --cors-origin)"
            ));
        }
        let method = headers
            .get("access-control-request-method")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let allowed_method = matches!(
            Method::from_bytes(method.as_bytes()),
            Ok(m) if [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS, Method::HEAD].contains(&m)
        );
        if !allowed_method {
            return Preflight::Refused(format!(
                "CORS: method {method:?} is not allowed (allowed: {ALLOW_METHODS})"
            ));
        }
        let requested = headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut granted = Vec::new();
        for name in requested
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
        {
            if !header_allowed(&name) {
                return Preflight::Refused(format!(
                    "CORS: request header {name:?} is not allowed (allowed: Authorization, Content-Type, traceparent, X-Tensorlake-*)"
                ));
            }
            granted.push(name);
        }
        Preflight::Allowed(granted.join(", "))
    }

    /// Adds the headers of an allowed cross-origin response.
    pub fn decorate(&self, origin: &str, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            headers.insert("access-control-allow-origin", v);
            headers.append("vary", HeaderValue::from_static("Origin"));
            headers.insert(
                "access-control-expose-headers",
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

/// `http://localhost[:port]` or `http://127.0.0.1[:port]` (also `[::1]`).
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((h, port))
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() =>
        {
            h
        }
        Some((_, port)) if port.ends_with(']') => rest,
        Some(_) => return false,
        None => rest,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Request headers a cross-origin page may send.
fn header_allowed(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "content-type"
            | "traceparent"
            | "tracestate"
            | "accept"
            | "accept-language"
            | "content-language"
    ) || name.starts_with("x-tensorlake-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_loopback_origins_only() {
        let c = Cors::new(&[], 8900);
        assert!(c.allows("http://localhost:5173"));
        assert!(c.allows("http://127.0.0.1:3000"));
        assert!(c.allows("http://localhost"));
        assert!(!c.allows("https://localhost:5173"));
        assert!(!c.allows("http://evil.com"));
        assert!(!c.allows("http://localhost.evil.com:80"));
        assert!(!c.allows("http://127.0.0.1.evil.com"));
    }

    #[test]
    fn explicit_origins_replace_the_default_but_not_our_own() {
        let c = Cors::new(&["https://app.example".into()], 8900);
        assert!(c.allows("https://app.example"));
        assert!(!c.allows("http://localhost:5173"));
        assert!(c.allows("http://127.0.0.1:8900"));
    }

    #[test]
    fn preflight_checks_headers() {
        let c = Cors::new(&[], 1);
        let mut h = HeaderMap::new();
        h.insert(
            "access-control-request-method",
            HeaderValue::from_static("POST"),
        );
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static(
                "authorization,content-type,traceparent,x-tensorlake-sandbox-id",
            ),
        );
        assert!(matches!(
            c.preflight("http://localhost:1234", &h),
            Preflight::Allowed(_)
        ));
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static("x-evil"),
        );
        assert!(matches!(
            c.preflight("http://localhost:1234", &h),
            Preflight::Refused(_)
        ));
    }
}
