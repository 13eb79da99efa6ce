//! The `network` field of create, restore, pool and PATCH bodies: checked (and refused with a
//! message that names what cannot be enforced), and, on PATCH, put in force on the live
//! sandbox before it is recorded. The rules themselves are in `netpolicy` and
//! `isolation::netns`.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;

use crate::http::ApiError;
use crate::model::Stage;
use crate::netpolicy::NetPolicy;
use crate::state::AppState;

/// Checks a `network` object and returns its stored form. Refused: what cannot be enforced
/// (400, naming it), wrong types (422), and, on a server without networking, any policy that
/// asks for a way out (400 saying what is missing), rather than a sandbox silently offline.
pub(crate) fn check(st: &AppState, value: &Value) -> Result<Value, ApiError> {
    let policy = NetPolicy::parse(value).map_err(|e| {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::Text(status, e.message)
    })?;
    if let Some(why) = st.jail.iso.net.missing() {
        if policy.wants_outside() {
            return Err(ApiError::bad_request(format!(
                "this server cannot give sandboxes network access: {why}. Sandboxes here have loopback only: \
                 send network {{\"allow_internet_access\": false}} (and no allow_out), or omit network"
            )));
        }
    }
    Ok(policy.to_json())
}

/// The `network` of a PATCH body: `None` when absent, `Some(None)` for `null` (back to the
/// default policy), `Some(Some(stored form))` otherwise.
pub(crate) fn from_patch(st: &AppState, body: &[u8]) -> Result<Option<Option<Value>>, ApiError> {
    Ok(match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => match o.remove("network") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => Some(Some(check(st, &v)?)),
        },
        _ => None,
    })
}

/// Puts `stored` in force on sandbox `id` of namespace `ns` (its rules at once; its slirp4netns
/// started or stopped if it runs). Blocking work is done off the async threads.
pub(crate) async fn apply(
    st: &Arc<AppState>,
    ns: &str,
    id: &str,
    stored: &Option<Value>,
) -> Result<(), ApiError> {
    let (sandbox_id, running) = {
        let reg = st.reg();
        let sb = reg
            .find_sandbox(ns, id)
            .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
        if sb.stage == Stage::Terminated {
            return Err(ApiError::bad_request("Cannot update a terminated sandbox"));
        }
        (sb.id.clone(), sb.stage == Stage::Active)
    };
    let policy = NetPolicy::from_stored(stored.as_ref());
    let st2 = st.clone();
    let failed = |e: String| ApiError::internal(format!("applying the network policy failed: {e}"));
    tokio::task::spawn_blocking(move || st2.jail.iso.net.update(&sandbox_id, &policy, running))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))
}
