//! The route table, and the small helpers every handler uses to read path parameters.

pub mod admin;
pub mod file_stream;
pub mod files;
pub mod network;
pub mod pools;
pub mod process_io;
pub mod processes;
mod run_request;
pub mod sandbox_stage;
pub mod sandboxes;
pub mod snapshots;
pub mod static_files;

use std::sync::Arc;

use axum::extract::RawPathParams;
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;

use crate::auth;
use crate::gateway;
use crate::http::{text, ApiError};
use crate::state::AppState;

/// Shared state as handlers receive it.
pub type St = axum::extract::State<Arc<AppState>>;

/// Builds the whole application.
pub fn router(st: Arc<AppState>) -> Router {
    // The lifecycle API, served both under /v1/namespaces/{ns} (what the SDKs send on localhost)
    // and bare (namespace `default`, what a cloud-style client sends).
    let lifecycle = Router::new()
        .route("/sandboxes", post(sandboxes::create).get(sandboxes::list))
        .route(
            "/sandboxes/{id}",
            get(sandboxes::get)
                .delete(sandboxes::delete)
                .patch(sandboxes::update),
        )
        .route("/sandboxes/{id}/suspend", post(sandbox_stage::suspend))
        .route("/sandboxes/{id}/resume", post(sandbox_stage::resume))
        .route("/sandboxes/{id}/snapshot", post(snapshots::create))
        .route(
            "/sandboxes/{id}/snapshots",
            get(snapshots::list_for_sandbox),
        )
        .route("/snapshots", get(snapshots::list))
        .route(
            "/snapshots/{id}",
            get(snapshots::get).delete(snapshots::delete),
        )
        .route("/sandbox-pools", post(pools::create).get(pools::list))
        .route(
            "/sandbox-pools/{id}",
            get(pools::get)
                .put(pools::update)
                .patch(pools::update)
                .delete(pools::delete),
        )
        .route("/sandbox-pools/{id}/sandboxes", post(pools::claim))
        // What the SDKs can ask for but a local server cannot do: 501, never a 404 the SDKs
        // would read as "sandbox not found".
        .route("/sandboxes/{id}/copy", unsupported("sandbox copies"))
        .route("/sandboxes/{id}/logs", unsupported("sandbox logs"))
        .route("/sandboxes/{id}/logs/{*rest}", unsupported("sandbox logs"))
        .route("/sandboxes/{id}/resize", unsupported("resource resizes"))
        .route(
            "/sandboxes/{id}/file_systems",
            unsupported("file system mounts"),
        )
        .route(
            "/sandboxes/{id}/file_systems/{*rest}",
            unsupported("file system mounts"),
        )
        .route("/archived-sandboxes", unsupported("archived sandboxes"))
        .route(
            "/archived-sandboxes/{*rest}",
            unsupported("archived sandboxes"),
        )
        .route("/filesystems", unsupported("file systems"))
        .route("/filesystems/{*rest}", unsupported("file systems"))
        .route("/sandbox-templates", unsupported(IMAGE_BUILDS))
        .route("/sandbox-templates/{*rest}", unsupported(IMAGE_BUILDS))
        .route("/sandbox-template-builds", unsupported(IMAGE_BUILDS))
        .route(
            "/sandbox-template-builds/{*rest}",
            unsupported(IMAGE_BUILDS),
        );

    // The sandbox daemon API (section 5), addressed by Host or X-Tensorlake-Sandbox-Id.
    let daemon = Router::new()
        .route("/api/v1/processes/run", post(processes::run))
        .route(
            "/api/v1/processes",
            get(processes::list).post(processes::start),
        )
        .route(
            "/api/v1/processes/{pid}",
            get(processes::get).delete(processes::kill),
        )
        .route("/api/v1/processes/{pid}/signal", post(processes::signal))
        .route("/api/v1/processes/{pid}/{stream}", get(processes::output))
        .route(
            "/api/v1/processes/{pid}/{stream}/follow",
            get(process_io::follow),
        )
        .route(
            "/api/v1/processes/{pid}/stdin",
            post(process_io::write),
        )
        .route(
            "/api/v1/processes/{pid}/stdin/close",
            post(process_io::close),
        )
        .route(
            "/api/v1/files",
            get(files::read).put(files::write).delete(files::remove),
        )
        .route("/api/v1/files/list", get(files::list))
        .route("/api/v1/health", get(processes::health))
        .route("/api/v1/info", get(processes::info))
        .route("/api/v1/pty", unsupported("PTY sessions"))
        .route("/api/v1/pty/{*rest}", unsupported("PTY sessions"))
        .route("/api/v1/desktop", unsupported("desktop sessions"))
        .route("/api/v1/desktop/{*rest}", unsupported("desktop sessions"))
        .route("/api/v1/tunnels/{*rest}", unsupported("TCP tunnels"))
        .route("/api/v1/{*rest}", any(processes::unknown_route));

    let api = Router::new()
        .nest("/v1/namespaces/{ns}", lifecycle.clone())
        .merge(lifecycle)
        .merge(daemon)
        .route("/platform/v1/{*rest}", unsupported(IMAGE_BUILDS))
        .route("/images", unsupported(IMAGE_BUILDS))
        .route("/images/{*rest}", unsupported(IMAGE_BUILDS))
        .route_layer(from_fn_with_state(st.clone(), auth::require_key));

    let app = Router::new()
        .merge(api)
        // The admin API can fail snapshots and rewrite answers: with a key, it needs the key too.
        .merge(admin::router().route_layer(from_fn_with_state(st.clone(), auth::require_key)))
        .fallback(static_files::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(st.clone());

    // The gateway must see every request before routing (preflights for any path, faults for
    // unknown paths too), so the whole app sits behind it as a single fallback service.
    Router::new()
        .fallback_service(app)
        .layer(from_fn_with_state(st, gateway::gateway))
}

/// Feature name of the image-builder routes (they need Tensorlake's cloud builder).
const IMAGE_BUILDS: &str = "image builds and sandbox templates";

/// A route answering 501 naming `feature` for every method.
fn unsupported(feature: &'static str) -> MethodRouter<Arc<AppState>> {
    any(move || pools::not_implemented(feature))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}

/// Reads one path parameter.
pub fn param<'a>(params: &'a RawPathParams, name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .unwrap_or("")
}

/// The namespace of a lifecycle request: the `{ns}` segment, or `default` on bare paths.
pub fn namespace(params: &RawPathParams) -> Result<String, ApiError> {
    match params.iter().find(|(k, _)| *k == "ns") {
        None => Ok("default".to_string()),
        Some((_, ns)) => {
            let ok = !ns.is_empty()
                && ns.len() <= 128
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if ok {
                Ok(ns.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "invalid namespace {ns:?}: use letters, digits, '-', '_' or '.' (at most 128)"
                )))
            }
        }
    }
}
