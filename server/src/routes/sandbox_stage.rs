//! `POST {P}/sandboxes/{id}/suspend` and `/resume`: a suspended sandbox's processes are frozen
//! (see `lifetimes::freeze_processes`) and its files kept; resume thaws them and restarts its
//! `timeout_secs` clock.

use std::sync::Arc;

use axum::extract::RawPathParams;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{namespace, param, St};
use crate::http::{self, ApiError};
use crate::lifetimes::{freeze_processes, set_network_running};
use crate::model::{now_ms, Stage};
use crate::state::AppState;
use crate::store::{committed, Op};

/// `POST {P}/sandboxes/{id}/suspend`: freezes its processes (they go on after `resume`);
/// 202 `suspending` when it was running, 200 when it was already suspended.
pub async fn suspend(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    change_stage(st, params, Stage::Suspended).await
}

/// `POST {P}/sandboxes/{id}/resume`: 202 when it was suspended, 200 when already running.
pub async fn resume(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    change_stage(st, params, Stage::Active).await
}

async fn change_stage(
    st: Arc<AppState>,
    params: RawPathParams,
    to: Stage,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let verb = if to == Stage::Suspended {
        "suspend"
    } else {
        "resume"
    };
    let (sandbox_id, ack, status) = {
        let mut reg = st.reg();
        let now = now_ms();
        let sb = reg
            .find_sandbox(&ns, id)
            .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
        let current = reg.sandbox_status(sb, now);
        let sandbox_id = sb.id.clone();
        match (current, to) {
            ("terminated", _) => {
                return Err(ApiError::bad_request(format!(
                    "Cannot {verb} a terminated sandbox"
                )))
            }
            ("suspended", Stage::Suspended)
            | ("running", Stage::Active)
            | ("snapshotting", Stage::Active) => {
                return Ok(http::json(
                    StatusCode::OK,
                    &json!({ "sandbox_id": sandbox_id, "status": current }),
                ))
            }
            ("pending", _) => {
                return Err(ApiError::bad_request(format!(
                    "Cannot {verb} a sandbox that is not yet running"
                )))
            }
            ("snapshotting", _) => {
                return Err(ApiError::bad_request(format!(
                    "Cannot {verb} a sandbox while it is being snapshotted"
                )))
            }
            _ => {}
        }
        let Some(sb) = reg.sandboxes.get_mut(&sandbox_id) else {
            return Err(ApiError::not_found(format!("Sandbox not found: {id}")));
        };
        sb.stage = to;
        if to == Stage::Active {
            sb.ready_at = sb.ready_at.min(now);
            sb.resumed_at = Some(now);
        }
        let ack = st.store.send_acked(vec![Op::PutSandbox(sb.clone())]);
        let snapshot = sb.clone();
        let status = reg.sandbox_status(&snapshot, now);
        (sandbox_id, ack, status)
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the change: {e}")))?;
    let status = if to == Stage::Suspended {
        set_network_running(&st, &sandbox_id, false).await;
        freeze_processes(&st, &sandbox_id, true).await;
        // The wire's transitional status (the freeze is done by the time a GET is answered).
        "suspending"
    } else {
        freeze_processes(&st, &sandbox_id, false).await;
        set_network_running(&st, &sandbox_id, true).await;
        crate::lifetimes::arm(st.clone(), sandbox_id.clone());
        status
    };
    Ok(http::json(
        StatusCode::ACCEPTED,
        &json!({ "sandbox_id": sandbox_id, "status": status }),
    ))
}
