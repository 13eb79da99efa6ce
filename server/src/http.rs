//! Request and response plumbing shared by the routes: error bodies in the two shapes the real
//! service uses, size-limited body reading, and JSON parsing whose errors name the field.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Largest JSON body the API accepts.
pub const JSON_LIMIT: usize = 1024 * 1024;
/// Largest file upload (`PUT /api/v1/files`).
pub const FILE_LIMIT: usize = 64 * 1024 * 1024;

/// An error answer. Lifecycle routes answer `text/plain` (like the real server); sandbox
/// process and file routes answer JSON `{"error","code"}` (like the sandbox daemon).
#[derive(Debug)]
pub enum ApiError {
    /// `text/plain` body.
    Text(StatusCode, String),
    /// `application/json` `{"error": message, "code": code}` body.
    Json(StatusCode, &'static str, String),
}

impl ApiError {
    /// 400 with a text body.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Text(StatusCode::BAD_REQUEST, msg.into())
    }

    /// 404 with a text body.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::Text(StatusCode::NOT_FOUND, msg.into())
    }

    /// 500 with a text body; for failures of the machine, never of the input.
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::Text(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
    }

    /// The same error, in the daemon's JSON shape.
    pub fn into_json(self, code: &'static str) -> Self {
        match self {
            ApiError::Text(status, msg) => ApiError::Json(status, code, msg),
            json => json,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Text(status, msg) => text(status, msg),
            ApiError::Json(status, code, msg) => {
                let body = serde_json::json!({ "error": msg, "code": code }).to_string();
                let mut resp = (status, body).into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
        }
    }
}

/// A `text/plain; charset=utf-8` response.
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut resp = (status, msg.into()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A JSON response from already-serialised bytes.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

/// Reads a whole request body, refusing more than `limit` bytes with 413.
///
/// The declared `Content-Length` is checked first so an oversized upload is refused before it
/// is read; chunked bodies are counted as they arrive.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::Text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than this route's limit of {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Whether a body is empty or only whitespace (an "empty POST" in the SDK's sense).
pub fn is_blank(body: &[u8]) -> bool {
    body.iter().all(|b| b.is_ascii_whitespace())
}

/// Parses a JSON body into `T`.
///
/// Syntax errors are 400 `malformed JSON body: ...`; well-formed JSON of the wrong shape is 422
/// `invalid field `resources.cpus`: ...`, naming the field through serde_path_to_error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = strip_position(&inner.to_string());
                if path == "." || path.is_empty() {
                    ApiError::Text(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("invalid request body: {msg}"),
                    )
                } else {
                    ApiError::Text(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("invalid field `{path}`: {msg}"),
                    )
                }
            }
            _ => ApiError::bad_request(format!("malformed JSON body: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
    Ok(value)
}

/// Parses a body that may be empty, in which case `T::default()` is used.
pub fn parse_json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if is_blank(body) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// Drops serde_json's " at line L column C" suffix from data errors: the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    #[allow(dead_code)]
    struct Inner {
        cpus: Option<f64>,
    }
    #[derive(serde::Deserialize, Debug, Default)]
    #[allow(dead_code)]
    struct Outer {
        resources: Option<Inner>,
    }

    #[test]
    fn json_errors_name_the_field() {
        match parse_json::<Outer>(br#"{"resources":{"cpus":"four"}}"#) {
            Err(ApiError::Text(s, m)) => {
                assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
                assert!(m.contains("resources.cpus"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        match parse_json::<Outer>(b"{nope") {
            Err(ApiError::Text(s, m)) => {
                assert_eq!(s, StatusCode::BAD_REQUEST);
                assert!(m.starts_with("malformed JSON body"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_json_or_default::<Outer>(b"  ").is_ok());
        assert!(parse_json::<Outer>(b"{} trailing").is_err());
    }
}
