//! The test-control API under `/_admin/` (loopback only; the API key when the server has one;
//! documented in server/README.md): scripted faults, scripted snapshot failures, timing, the
//! request log, snapshot seeding for benchmarks, and reset.
//!
//! Admin requests never match faults and are not kept in the request log, so controlling a test
//! does not disturb what the test measures.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::St;
use crate::faults::{Fault, FaultSpec};
use crate::http::{self, empty, parse_json, read_body, ApiError, JSON_LIMIT};
use crate::model::{new_id, now_ms, SnapshotStatus};
use crate::state::AppState;
use crate::store::{committed, Op};

/// Most snapshots one seeding call may create.
const MAX_SEED: usize = 20_000;

/// The admin routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/_admin/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route(
            "/_admin/snapshot-failures",
            post(add_snapshot_failure).get(list_snapshot_failures),
        )
        .route("/_admin/timing", put(set_timing).get(get_timing))
        .route("/_admin/requests", get(requests).delete(clear_requests))
        .route("/_admin/seed-snapshots", post(seed_snapshots))
        .route("/_admin/reset", post(reset))
}

async fn body_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, JSON_LIMIT).await?;
    if http::is_blank(&bytes) {
        return Err(ApiError::bad_request("a JSON body is required"));
    }
    parse_json(&bytes)
}

/// `POST /_admin/faults` → 201 `{"id"}`.
async fn add_fault(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: FaultSpec = body_json(&headers, body).await?;
    let fault = Fault::from_spec(spec)?;
    let id = fault.id.clone();
    st.faults.add(fault);
    Ok(http::json(StatusCode::CREATED, &json!({ "id": id })))
}

/// `GET /_admin/faults` → `{"faults":[...]}` (those still armed, with `remaining`).
async fn list_faults(axum::extract::State(st): St) -> Response {
    http::json(StatusCode::OK, &json!({ "faults": st.faults.list() }))
}

/// `DELETE /_admin/faults` → 204.
async fn clear_faults(axum::extract::State(st): St) -> Response {
    st.faults.clear();
    empty(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotFailure {
    sandbox_id: String,
    error: Option<String>,
}

/// `POST /_admin/snapshot-failures` `{"sandbox_id","error"}` → 201: the next snapshot of that
/// sandbox passes through `in_progress` and ends `failed` with `error`.
async fn add_snapshot_failure(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: SnapshotFailure = body_json(&headers, body).await?;
    let known = st.reg().sandboxes.contains_key(&req.sandbox_id);
    if !known {
        return Err(ApiError::not_found(format!(
            "Sandbox not found: {}",
            req.sandbox_id
        )));
    }
    let error = req
        .error
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "injected snapshot failure".into());
    st.snapshot_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(req.sandbox_id.clone(), error.clone());
    Ok(http::json(
        StatusCode::CREATED,
        &json!({ "sandbox_id": req.sandbox_id, "error": error }),
    ))
}

/// `GET /_admin/snapshot-failures` → `{"failures":{sandbox_id: error}}`.
async fn list_snapshot_failures(axum::extract::State(st): St) -> Response {
    let map = st
        .snapshot_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    http::json(StatusCode::OK, &json!({ "failures": map }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingRequest {
    snapshot_local_ready_ms: Option<u64>,
    snapshot_completed_ms: Option<u64>,
    sandbox_startup_ms: Option<u64>,
}

/// `PUT /_admin/timing` → the new values. Applies to snapshots and sandboxes created afterwards.
async fn set_timing(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: TimingRequest = body_json(&headers, body).await?;
    for (name, v) in [
        ("snapshot_local_ready_ms", req.snapshot_local_ready_ms),
        ("snapshot_completed_ms", req.snapshot_completed_ms),
        ("sandbox_startup_ms", req.sandbox_startup_ms),
    ] {
        if v.is_some_and(|v| v > 3_600_000) {
            return Err(ApiError::bad_request(format!(
                "`{name}` must be at most 3600000 (one hour)"
            )));
        }
    }
    st.timing.set(
        req.snapshot_local_ready_ms,
        req.snapshot_completed_ms,
        req.sandbox_startup_ms,
    );
    Ok(http::json(StatusCode::OK, &json!(st.timing.get())))
}

/// `GET /_admin/timing`.
async fn get_timing(axum::extract::State(st): St) -> Response {
    http::json(StatusCode::OK, &json!(st.timing.get()))
}

/// `GET /_admin/requests` → `{"requests":[...]}`, newest last.
async fn requests(axum::extract::State(st): St) -> Response {
    http::json(StatusCode::OK, &json!({ "requests": st.reqlog.snapshot() }))
}

/// `DELETE /_admin/requests` → 204.
async fn clear_requests(axum::extract::State(st): St) -> Response {
    st.reqlog.clear();
    empty(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRequest {
    from_snapshot_id: String,
    count: usize,
}

/// `POST /_admin/seed-snapshots` `{"from_snapshot_id","count"}` → 201 `{"snapshot_ids":[...]}`:
/// `count` completed records sharing the archive of a real, restorable snapshot, written in one
/// SQLite transaction.
async fn seed_snapshots(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: SeedRequest = body_json(&headers, body).await?;
    if req.count == 0 || req.count > MAX_SEED {
        return Err(ApiError::bad_request(format!(
            "`count` must be between 1 and {MAX_SEED}, got {}",
            req.count
        )));
    }
    let now = now_ms();
    let (ids, ack) = {
        let mut reg = st.reg();
        let source = reg.snapshot(&req.from_snapshot_id).ok_or_else(|| {
            ApiError::not_found(format!("Snapshot not found: {}", req.from_snapshot_id))
        })?;
        if !matches!(
            source.status(now),
            SnapshotStatus::LocalReady | SnapshotStatus::Completed
        ) || source.archive.is_none()
        {
            return Err(ApiError::bad_request(format!(
                "Snapshot {} is not restorable yet (status: {}); seed from a local_ready or completed snapshot",
                req.from_snapshot_id,
                source.status(now).as_str()
            )));
        }
        let template = source.clone();
        let mut ids = Vec::with_capacity(req.count);
        let mut rows = Vec::with_capacity(req.count);
        for _ in 0..req.count {
            let mut snap = template.clone();
            snap.id = new_id("snap-");
            snap.created_at = now;
            snap.local_ready_at = Some(now);
            snap.completed_at = Some(now);
            let snap = reg.insert_snapshot(snap).clone();
            ids.push(snap.id.clone());
            rows.push(snap);
        }
        (ids, st.store.send_acked(vec![Op::PutSnapshots(rows)]))
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the snapshots: {e}")))?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({ "snapshot_ids": ids }),
    ))
}

/// `POST /_admin/reset` → 204: no faults, no scripted failures, an empty request log, timings
/// back to the flag values. Sandboxes and snapshots are kept.
async fn reset(axum::extract::State(st): St) -> Response {
    st.faults.clear();
    st.snapshot_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    st.reqlog.clear();
    st.timing.reset();
    empty(StatusCode::NO_CONTENT)
}
