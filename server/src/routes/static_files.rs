//! `--static DIR`: serves a folder at `/` for every path the API does not use (the demo page and
//! the built `pkg/`), with the MIME types browsers insist on (`application/wasm` for
//! `WebAssembly.instantiateStreaming`, `text/javascript` for modules).
//!
//! Paths are percent-decoded, `..` and backslashes are refused, and the resolved file must stay
//! inside DIR after symlinks are resolved.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

use super::St;
use crate::http::text;

/// Fallback handler: a static file, or 404.
pub async fn serve(axum::extract::State(st): St, method: Method, uri: Uri) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/api/") {
        let body =
            serde_json::json!({ "error": format!("no daemon route {path}"), "code": "NOT_FOUND" });
        let mut resp = crate::http::json(StatusCode::NOT_FOUND, &body);
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    }
    let Some(dir) = st.args.static_dir.clone() else {
        if path == "/" {
            return text(
                StatusCode::OK,
                "tensorlake-local: a Tensorlake-compatible sandbox and snapshot API. See server/README.md.\n",
            );
        }
        return text(StatusCode::NOT_FOUND, format!("Not found: {path}"));
    };
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::NOT_FOUND, format!("Not found: {method} {path}"));
    }
    let Some(rel) = decode(&path) else {
        return text(
            StatusCode::BAD_REQUEST,
            "invalid path: it must be valid UTF-8 without `..`, `\\` or NUL",
        );
    };
    let result = tokio::task::spawn_blocking(move || resolve(&dir, &rel))
        .await
        .unwrap_or(Resolved::NotFound);
    match result {
        Resolved::NotFound => text(StatusCode::NOT_FOUND, format!("Not found: {path}")),
        Resolved::Redirect => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let location = format!("{path}/");
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Resolved::File(file, data) => {
            let len = data.len();
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(data)
            };
            let mut resp = Response::new(body);
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(mime_for(&file)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            resp
        }
    }
}

enum Resolved {
    NotFound,
    Redirect,
    File(PathBuf, Vec<u8>),
}

/// Percent-decodes a URL path into a relative path, refusing anything that could climb out.
fn decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if bytes[i] == b'%' {
            return None;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    if s.contains('\\') || s.contains('\0') || s.split('/').any(|c| c == "..") {
        return None;
    }
    Some(s.trim_start_matches('/').to_string())
}

fn resolve(dir: &Path, rel: &str) -> Resolved {
    let Ok(base) = dir.canonicalize() else {
        return Resolved::NotFound;
    };
    let wants_dir = rel.is_empty() || rel.ends_with('/');
    let Ok(mut full) = base.join(rel).canonicalize() else {
        return Resolved::NotFound;
    };
    // A link inside DIR pointing elsewhere is not served.
    if !full.starts_with(&base) {
        return Resolved::NotFound;
    }
    if full.is_dir() {
        if !wants_dir {
            return Resolved::Redirect;
        }
        full = full.join("index.html");
        match full.canonicalize() {
            Ok(f) if f.starts_with(&base) => full = f,
            _ => return Resolved::NotFound,
        }
    }
    if !full.is_file() {
        return Resolved::NotFound;
    }
    match std::fs::read(&full) {
        Ok(data) => Resolved::File(full, data),
        Err(_) => Resolved::NotFound,
    }
}

/// MIME type by extension.
fn mime_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_traversal() {
        assert_eq!(decode("/pkg/a%20b.js").as_deref(), Some("pkg/a b.js"));
        assert_eq!(decode("/"), Some(String::new()));
        assert!(decode("/../etc/passwd").is_none());
        assert!(decode("/%2e%2e/etc/passwd").is_none());
        assert!(decode("/a%5c..").is_none());
        assert!(decode("/bad%zz").is_none());
        assert!(decode("/trunc%2").is_none());
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_for(Path::new("x.wasm")), "application/wasm");
        assert!(mime_for(Path::new("x.mjs")).starts_with("text/javascript"));
        assert!(mime_for(Path::new("x.css")).starts_with("text/css"));
    }
}
