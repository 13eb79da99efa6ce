//! Sandbox pool routes (`{P}/sandbox-pools[/{id}]`, claim `POST {P}/sandbox-pools/{id}/sandboxes`)
//! as both official SDKs send them, and the 501 answers for routes the SDKs call that have no
//! local meaning.

use axum::body::Body;
use axum::extract::RawPathParams;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{namespace, param, St};
use crate::http::{
    self, empty, parse_json, parse_json_or_default, read_body, ApiError, JSON_LIMIT,
};
use crate::model::{
    new_id, now_ms, DEFAULT_CPUS, DEFAULT_DISK_MB, DEFAULT_IMAGE, DEFAULT_MEMORY_MB,
};
use crate::pools::{self, Pool, MAX_POOLS, MAX_WARM};
use crate::lifetimes::terminate;
use crate::state::AppState;
use crate::store::{committed, Op};

/// Body of create and update (the SDKs' `SandboxPoolRequest`). Unknown fields are ignored.
#[derive(Debug, Deserialize, Default)]
struct PoolRequest {
    image: Option<String>,
    resources: Option<PoolResources>,
    timeout_secs: Option<i64>,
    entrypoint: Option<Vec<String>>,
    max_containers: Option<i64>,
    warm_containers: Option<i64>,
    network: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
struct PoolResources {
    cpus: Option<f64>,
    memory_mb: Option<i64>,
    disk_mb: Option<i64>,
    ephemeral_disk_mb: Option<i64>,
    gpus: Option<Vec<Value>>,
}

/// Body of a claim.
#[derive(Debug, Deserialize, Default)]
struct ClaimRequest {
    file_systems: Option<Vec<Value>>,
}

fn unprocessable(field: &str, msg: String) -> ApiError {
    ApiError::Text(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("invalid field `{field}`: {msg}"),
    )
}

/// Validates a request and turns it into a pool record with id `id`.
fn to_pool(
    st: &AppState,
    req: PoolRequest,
    id: String,
    ns: String,
    created_at: i64,
) -> Result<Pool, ApiError> {
    let network = match &req.network {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::routes::network::check(st, v)?),
    };
    let res = req.resources.unwrap_or_default();
    let cpus = res.cpus.unwrap_or(DEFAULT_CPUS);
    if !cpus.is_finite() || !(0.0..=1024.0).contains(&cpus) {
        return Err(unprocessable(
            "resources.cpus",
            format!("must be a number of CPUs between 0 and 1024, got {cpus}"),
        ));
    }
    let disk = res.disk_mb.or(res.ephemeral_disk_mb);
    for (field, v) in [
        ("resources.memory_mb", res.memory_mb),
        ("resources.disk_mb", disk),
    ] {
        if let Some(v) = v {
            if !(0..=16 * 1024 * 1024).contains(&v) {
                return Err(unprocessable(
                    field,
                    format!("must be between 0 and 16777216 MiB, got {v}"),
                ));
            }
        }
    }
    if res.gpus.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(ApiError::bad_request(
            "GPUs are not available on tensorlake-local: omit resources.gpus",
        ));
    }
    let timeout = req.timeout_secs.unwrap_or(0);
    if timeout < 0 {
        return Err(unprocessable(
            "timeout_secs",
            format!("must not be negative, got {timeout}"),
        ));
    }
    if let Some(m) = req.max_containers {
        if m < 1 {
            return Err(unprocessable(
                "max_containers",
                format!("must be at least 1, got {m}"),
            ));
        }
    }
    if let Some(w) = req.warm_containers {
        if !(0..=MAX_WARM).contains(&w) {
            return Err(unprocessable(
                "warm_containers",
                format!("must be between 0 and {MAX_WARM} on tensorlake-local, got {w}"),
            ));
        }
        if let Some(m) = req.max_containers.filter(|m| w > *m) {
            return Err(unprocessable(
                "warm_containers",
                format!("must not exceed max_containers ({m}), got {w}"),
            ));
        }
    }
    let image = req.image.unwrap_or_else(|| DEFAULT_IMAGE.to_string());
    if image.is_empty() || image.len() > 512 {
        return Err(unprocessable(
            "image",
            "must be a non-empty image name of at most 512 characters".into(),
        ));
    }
    crate::image::check(&image).map_err(ApiError::bad_request)?;
    Ok(Pool {
        id,
        namespace: ns,
        image,
        cpus: if cpus > 0.0 { cpus } else { DEFAULT_CPUS },
        memory_mb: res
            .memory_mb
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MEMORY_MB),
        disk_mb: disk.filter(|d| *d > 0).unwrap_or(DEFAULT_DISK_MB),
        timeout_secs: timeout,
        entrypoint: req.entrypoint,
        max_containers: req.max_containers,
        warm_containers: req.warm_containers,
        network,
        created_at,
        updated_at: now_ms(),
    })
}

/// Whether a body names `network` at all (`null` included).
fn network_given(body: &[u8]) -> bool {
    matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(o)) if o.contains_key("network"))
}

fn pool_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Sandbox pool not found: {id}"))
}

/// `POST {P}/sandbox-pools` → `{"pool_id", "namespace"}`; warm sandboxes follow in the background.
pub async fn create(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let req: PoolRequest = parse_json(&body)?;
    let pool = to_pool(&st, req, new_id("pool-"), ns.clone(), now_ms())?;
    let ack = {
        let mut reg = st.reg();
        if reg.pools.len() >= MAX_POOLS {
            return Err(ApiError::Text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "tensorlake-local keeps at most {MAX_POOLS} sandbox pools; delete one first"
                ),
            ));
        }
        reg.pools.insert(pool.id.clone(), pool.clone());
        st.store.send_acked(vec![Op::PutPool(pool.clone())])
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the pool: {e}")))?;
    pools::refill_soon(&st, pool.id.clone());
    Ok(http::json(
        StatusCode::OK,
        &json!({ "pool_id": pool.id, "namespace": ns }),
    ))
}

/// `GET {P}/sandbox-pools` → `{"pools": [...]}`, oldest first, without `containers`.
pub async fn list(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let reg = st.reg();
    let mut list: Vec<&Pool> = reg.pools.values().filter(|p| p.namespace == ns).collect();
    list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let items: Vec<Value> = list.iter().map(|p| p.to_json(None)).collect();
    Ok(http::json(StatusCode::OK, &json!({ "pools": items })))
}

/// `GET {P}/sandbox-pools/{id}`: the pool with its `containers`.
pub async fn get(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let reg = st.reg();
    let pool = reg
        .pools
        .get(id)
        .filter(|p| p.namespace == ns)
        .ok_or_else(|| pool_not_found(id))?;
    let containers = pools::containers(&reg, id);
    Ok(http::json(StatusCode::OK, &pool.to_json(Some(containers))))
}

/// `PUT|PATCH {P}/sandbox-pools/{id}`: replaces the configuration. Unclaimed warm sandboxes that
/// no longer match (or exceed the new targets) are replaced; claimed ones are left alone.
pub async fn update(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id").to_string();
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let req: PoolRequest = parse_json(&body)?;
    let (pool, retire, ack) = {
        let mut reg = st.reg();
        let old = reg
            .pools
            .get(&id)
            .filter(|p| p.namespace == ns)
            .cloned()
            .ok_or_else(|| pool_not_found(&id))?;
        let mut pool = to_pool(&st, req, id.clone(), ns.clone(), old.created_at)?;
        // The SDKs' tri-state: an omitted `network` keeps the pool's policy, `null` clears it.
        if !network_given(&body) {
            pool.network = old.network.clone();
        }
        let members = pools::members(&reg, &id);
        let warm: Vec<String> = members
            .iter()
            .filter(|s| s.pool_warm)
            .map(|s| s.id.clone())
            .collect();
        let claimed = members.len() - warm.len();
        let retire: Vec<String> = if pool.same_sandboxes(&old) {
            // Keep the oldest warm ones up to the new targets.
            let mut keep = pool.warm_containers.unwrap_or(0).max(0) as usize;
            if let Some(max) = pool.max_containers {
                keep = keep.min((max.max(0) as usize).saturating_sub(claimed));
            }
            warm.into_iter().skip(keep).collect()
        } else {
            warm
        };
        reg.pools.insert(id.clone(), pool.clone());
        let ack = st.store.send_acked(vec![Op::PutPool(pool.clone())]);
        (pool, retire, ack)
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the pool: {e}")))?;
    for sb in retire {
        terminate(st.clone(), sb, "its sandbox pool was reconfigured", None)
            .await
            .map_err(|e| ApiError::internal(format!("could not record the deletion: {e}")))?;
    }
    pools::refill_soon(&st, id);
    Ok(http::json(StatusCode::OK, &pool.to_json(None)))
}

/// `DELETE {P}/sandbox-pools/{id}`: 409 naming the claimed sandboxes while any is live; otherwise
/// the pool goes, with its warm sandboxes.
pub async fn delete(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id").to_string();
    let (warm, ack) = {
        let mut reg = st.reg();
        if reg.pools.get(&id).filter(|p| p.namespace == ns).is_none() {
            return Err(pool_not_found(&id));
        }
        let members = pools::members(&reg, &id);
        let active: Vec<&str> = members
            .iter()
            .filter(|s| !s.pool_warm)
            .map(|s| s.id.as_str())
            .collect();
        if !active.is_empty() {
            return Err(ApiError::Text(
                StatusCode::CONFLICT,
                format!(
                    "Sandbox pool {id} has {} active sandbox(es) ({}); delete them before deleting the pool",
                    active.len(),
                    active.join(", ")
                ),
            ));
        }
        let warm: Vec<String> = members.iter().map(|s| s.id.clone()).collect();
        reg.pools.remove(&id);
        (warm, st.store.send_acked(vec![Op::DeletePool(id.clone())]))
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the deletion: {e}")))?;
    for sb in warm {
        terminate(st.clone(), sb, "its sandbox pool was deleted", None)
            .await
            .map_err(|e| ApiError::internal(format!("could not record the deletion: {e}")))?;
    }
    Ok(empty(StatusCode::OK))
}

/// `POST {P}/sandbox-pools/{id}/sandboxes`: claims a sandbox (create response shape).
pub async fn claim(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id").to_string();
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let req: ClaimRequest = parse_json_or_default(&body)?;
    if req.file_systems.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(not_implemented("file system mounts").await);
    }
    let (sb, status) = pools::claim(&st, &ns, &id).await?;
    Ok(http::json(
        StatusCode::OK,
        &sb.to_create_json(status, &st.base_url),
    ))
}

/// The 501 of a route the SDKs call that has no local meaning, as JSON naming `feature`.
pub async fn not_implemented(feature: &'static str) -> ApiError {
    ApiError::Json(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        format!("{feature} are not supported by tensorlake-local"),
    )
}
