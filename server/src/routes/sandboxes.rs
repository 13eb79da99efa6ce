//! Sandbox lifecycle routes (wire-protocol.md section 3): create (and restore), get, list,
//! delete, update. Suspend and resume are in `sandbox_stage`.
//!
//! Creating a sandbox makes a directory and a row (and, as root, its filesystem image, uid and
//! cgroups: see `isolation`), nothing more: no process is spawned until a command runs.

use std::sync::Arc;

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
use crate::lifetimes::terminate;
use crate::model::{
    new_id, now_ms, Sandbox, SnapshotStatus, SnapshotType, Stage, DEFAULT_CPUS, DEFAULT_DISK_MB,
    DEFAULT_IMAGE, DEFAULT_MEMORY_MB,
};
use crate::state::AppState;
use crate::store::{committed, Op};
use crate::sandbox_tree::{make_tree, release_and_remove};

/// Body of `POST /sandboxes` (section 3.1). Unknown fields are ignored, as by the real server.
#[derive(Debug, Deserialize, Default)]
struct CreateRequest {
    image: Option<String>,
    resources: Option<ResourcesRequest>,
    timeout_secs: Option<i64>,
    entrypoint: Option<Vec<String>>,
    network: Option<Value>,
    snapshot_id: Option<String>,
    name: Option<String>,
    allow_unauthenticated_access: Option<bool>,
    exposed_ports: Option<Vec<u16>>,
    file_systems: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize, Default)]
struct ResourcesRequest {
    cpus: Option<f64>,
    memory_mb: Option<i64>,
    disk_mb: Option<i64>,
    ephemeral_disk_mb: Option<i64>,
    gpus: Option<Vec<Value>>,
}

/// Body of `PATCH /sandboxes/{id}`. `network` is read apart: `null` (clear) differs from absent.
#[derive(Debug, Deserialize, Default)]
struct UpdateRequest {
    name: Option<String>,
    allow_unauthenticated_access: Option<bool>,
    exposed_ports: Option<Vec<u16>>,
}

fn unprocessable(field: &str, msg: &str) -> ApiError {
    ApiError::Text(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("invalid field `{field}`: {msg}"),
    )
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(unprocessable(
            "name",
            "must be 1-63 letters, digits, '-' or '_', starting with a letter or digit",
        ))
    }
}

fn check_ports(ports: &[u16]) -> Result<Vec<u16>, ApiError> {
    let mut out = ports.to_vec();
    if out.iter().any(|&p| p == 0 || p == 9501) {
        return Err(unprocessable(
            "exposed_ports",
            "ports must be 1-65535 and not 9501 (the management port)",
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `POST {P}/sandboxes`: a new sandbox, or a restore when `snapshot_id` is given (section 3.2).
pub async fn create(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let (sb, status) = create_record(&st, ns, &body, None, false).await?;
    Ok(http::json(
        StatusCode::OK,
        &sb.to_create_json(status, &st.base_url),
    ))
}

/// Creates a sandbox from a create body (section 3.1): the one path every sandbox takes, pool
/// sandboxes included (`pool_id`, `warm`), so each gets the same isolation. Returns the record
/// and its status.
pub(crate) async fn create_record(
    st: &Arc<AppState>,
    ns: String,
    body: &[u8],
    pool_id: Option<String>,
    warm: bool,
) -> Result<(Sandbox, &'static str), ApiError> {
    let req: CreateRequest = parse_json_or_default(body)?;
    let res = req.resources.unwrap_or_default();

    // Validation first: nothing is created for a request that will be refused.
    if let Some(c) = res.cpus {
        if !c.is_finite() || !(0.0..=1024.0).contains(&c) {
            return Err(unprocessable(
                "resources.cpus",
                &format!("must be a number of CPUs between 0 and 1024, got {c}"),
            ));
        }
    }
    let disk_req = res.disk_mb.or(res.ephemeral_disk_mb);
    for (field, v) in [
        ("resources.memory_mb", res.memory_mb),
        ("resources.disk_mb", disk_req),
    ] {
        if let Some(v) = v {
            if !(0..=16 * 1024 * 1024).contains(&v) {
                return Err(unprocessable(
                    field,
                    &format!("must be between 0 and 16777216 MiB, got {v}"),
                ));
            }
        }
    }
    if res.gpus.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(ApiError::bad_request(
            "GPUs are not available on tensorlake-local: omit resources.gpus",
        ));
    }
    if req.file_systems.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(ApiError::bad_request(
            "file system mounts are not supported by tensorlake-local: omit file_systems",
        ));
    }
    if let Some(t) = req.timeout_secs {
        if t < 0 {
            return Err(unprocessable(
                "timeout_secs",
                &format!("must not be negative, got {t}"),
            ));
        }
    }
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    let exposed_ports = check_ports(req.exposed_ports.as_deref().unwrap_or(&[]))?;
    let network = match &req.network {
        None | Some(Value::Null) => None,
        Some(v) => Some(super::network::check(st, v)?),
    };
    if let Some(image) = &req.image {
        if image.is_empty() || image.len() > 512 {
            return Err(unprocessable(
                "image",
                "must be a non-empty image name of at most 512 characters",
            ));
        }
        crate::image::check(image).map_err(ApiError::bad_request)?;
    }

    let now = now_ms();
    let timing = st.timing.get();
    let id = new_id("sbx-");
    let mut sb = Sandbox {
        id: id.clone(),
        namespace: ns.clone(),
        name: req.name.clone(),
        image: req
            .image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        cpus: res.cpus.filter(|c| *c > 0.0).unwrap_or(DEFAULT_CPUS),
        memory_mb: res
            .memory_mb
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MEMORY_MB),
        disk_mb: disk_req.filter(|d| *d > 0).unwrap_or(DEFAULT_DISK_MB),
        timeout_secs: req.timeout_secs.filter(|t| *t > 0),
        entrypoint: req.entrypoint.clone(),
        network,
        allow_unauthenticated_access: req.allow_unauthenticated_access.unwrap_or(false),
        exposed_ports,
        created_at: now,
        ready_at: now + timing.sandbox_startup_ms as i64,
        stage: Stage::Active,
        terminated_at: None,
        termination_reason: None,
        restored_from: None,
        snapshotting: None,
        pool_id,
        pool_warm: warm,
        resumed_at: None,
        outcome: None,
    };

    // A cheap early refusal of a duplicate name, before any unpacking (checked again below).
    if let Some(name) = &req.name {
        if name_taken(&st.reg(), &ns, name, None) {
            return Err(ApiError::Text(
                StatusCode::CONFLICT,
                format!("A sandbox named {name:?} already exists in namespace {ns}"),
            ));
        }
    }

    // A restore: inherit what the request leaves out, refuse what a memory snapshot forbids, and
    // pin the archive (in the same critical section as the lookup) so a concurrent delete
    // cannot remove it mid-unpack.
    let mut pinned_archive = None;
    if let Some(snap_id) = &req.snapshot_id {
        let mut reg = st.reg();
        let snap = reg
            .snapshot(snap_id)
            .filter(|s| s.namespace == ns)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Snapshot not found: {snap_id}")))?;
        match snap.status(now) {
            SnapshotStatus::LocalReady | SnapshotStatus::Completed => {}
            SnapshotStatus::InProgress => {
                return Err(ApiError::bad_request(format!(
                    "Snapshot {snap_id} is not ready to restore (status: in_progress); wait until it is local_ready or completed"
                )))
            }
            SnapshotStatus::Failed => {
                return Err(ApiError::bad_request(format!(
                    "Snapshot {snap_id} failed and cannot be restored: {}",
                    snap.error.as_deref().unwrap_or("unknown error")
                )))
            }
        }
        let asked_cpus = res.cpus.filter(|c| *c > 0.0);
        let asked_mem = res.memory_mb.filter(|m| *m > 0);
        let asked_disk = disk_req.filter(|d| *d > 0);
        if snap.snapshot_type == SnapshotType::Memory {
            let cpus_differ = asked_cpus.is_some_and(|c| (c - snap.cpus).abs() > 1e-9);
            let mem_differ = asked_mem.is_some_and(|m| m != snap.memory_mb);
            if cpus_differ || mem_differ {
                return Err(ApiError::bad_request(format!(
                    "Snapshot {snap_id} is a memory snapshot: it can only be restored with its original resources \
                     (cpus {}, memory_mb {}), but the request asks for cpus {}, memory_mb {}. Omit cpus and memory_mb \
                     to inherit them, or restore from a filesystem snapshot to change them.",
                    snap.cpus,
                    snap.memory_mb,
                    asked_cpus.unwrap_or(snap.cpus),
                    asked_mem.unwrap_or(snap.memory_mb)
                )));
            }
            if req.image.as_ref().is_some_and(|i| *i != snap.base_image) {
                return Err(ApiError::bad_request(format!(
                    "Snapshot {snap_id} is a memory snapshot: it can only be restored with its original image {:?}; omit image",
                    snap.base_image
                )));
            }
        }
        if let Some(d) = asked_disk {
            if d < snap.disk_mb {
                return Err(ApiError::bad_request(format!(
                    "disk_mb may only grow on restore: snapshot {snap_id} has {} MiB, the request asks for {d} MiB",
                    snap.disk_mb
                )));
            }
        }
        let archive = snap
            .archive
            .clone()
            .ok_or_else(|| ApiError::internal(format!("snapshot {snap_id} has no archive")))?;
        sb.image = req.image.clone().unwrap_or_else(|| snap.base_image.clone());
        sb.entrypoint = req.entrypoint.clone().or_else(|| snap.entrypoint.clone());
        if req.network.is_none() {
            sb.network = snap.network.clone();
        }
        sb.cpus = asked_cpus.unwrap_or(snap.cpus);
        sb.memory_mb = asked_mem.unwrap_or(snap.memory_mb);
        sb.disk_mb = asked_disk.unwrap_or(snap.disk_mb);
        sb.restored_from = Some(snap_id.clone());
        *reg.archive_refs.entry(archive.clone()).or_default() += 1;
        pinned_archive = Some(archive);
    }

    let result = make_tree(st, &sb, pinned_archive.as_deref()).await;
    if let Some(archive) = &pinned_archive {
        let orphan = st.reg().release_archive(archive);
        if let Some(orphan) = orphan {
            let path = st.paths.snapshots.join(orphan);
            tokio::task::spawn_blocking(move || std::fs::remove_file(path));
        }
    }
    if let Err(e) = result {
        let (st2, id) = (st.clone(), sb.id.clone());
        tokio::task::spawn_blocking(move || release_and_remove(&st2, &id));
        return Err(e);
    }

    let status;
    let ack = {
        let mut reg = st.reg();
        if let Some(name) = &sb.name {
            if name_taken(&reg, &ns, name, None) {
                drop(reg);
                let (st2, id) = (st.clone(), sb.id.clone());
                tokio::task::spawn_blocking(move || release_and_remove(&st2, &id));
                return Err(ApiError::Text(
                    StatusCode::CONFLICT,
                    format!("A sandbox named {name:?} already exists in namespace {ns}"),
                ));
            }
        }
        status = reg.sandbox_status(&sb, now_ms());
        let ack = st.store.send_acked(vec![Op::PutSandbox(sb.clone())]);
        reg.sandboxes.insert(sb.id.clone(), sb.clone());
        ack
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the sandbox: {e}")))?;
    crate::lifetimes::arm(st.clone(), sb.id.clone());
    Ok((sb, status))
}

/// Whether a live sandbox of `ns` other than `except` is called `name`.
fn name_taken(reg: &crate::state::Registry, ns: &str, name: &str, except: Option<&str>) -> bool {
    reg.sandboxes.values().any(|o| {
        Some(o.id.as_str()) != except
            && o.namespace == ns
            && o.stage != Stage::Terminated
            && o.name.as_deref() == Some(name)
    })
}

/// `GET {P}/sandboxes/{id}` (id or name).
pub async fn get(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let reg = st.reg();
    let sb = reg
        .find_sandbox(&ns, id)
        .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
    let status = reg.sandbox_status(sb, now_ms());
    Ok(http::json(
        StatusCode::OK,
        &sb.to_json(status, &st.base_url, st.jail.iso.net.available()),
    ))
}

/// `GET {P}/sandboxes`: the namespace's sandboxes that are not terminated, oldest first.
pub async fn list(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let now = now_ms();
    let reg = st.reg();
    let mut live: Vec<&Sandbox> = reg
        .sandboxes
        .values()
        .filter(|s| s.namespace == ns && s.stage != Stage::Terminated && !s.pool_warm)
        .collect();
    live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let items: Vec<Value> = live
        .iter()
        .map(|s| s.to_json(reg.sandbox_status(s, now), &st.base_url, st.jail.iso.net.available()))
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "sandboxes": items })))
}

/// `DELETE {P}/sandboxes/{id}`: terminates (idempotent). Processes are killed and the files
/// removed in the background, after any archive being written from them is finished.
pub async fn delete(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let sandbox_id = {
        let reg = st.reg();
        let sb = reg
            .find_sandbox(&ns, id)
            .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
        if sb.stage == Stage::Terminated {
            return Ok(empty(StatusCode::OK));
        }
        sb.id.clone()
    };
    terminate(st.clone(), sandbox_id, "deleted", None)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the deletion: {e}")))?;
    Ok(empty(StatusCode::OK))
}

/// `PATCH {P}/sandboxes/{id}`: name, proxy access flag, exposed ports, network policy (`null`
/// clears it: internet access again).
pub async fn update(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let req: UpdateRequest = parse_json(&body)?;
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    let ports = req.exposed_ports.as_deref().map(check_ports).transpose()?;
    // Some(None): `"network": null`, back to the default policy. Enforced before it is
    // recorded: a policy reported is a policy in force.
    let network = super::network::from_patch(&st, &body)?;
    if let Some(stored) = &network {
        super::network::apply(&st, &ns, id, stored).await?;
    }
    let (value, ack) = {
        let mut reg = st.reg();
        let sb = reg
            .find_sandbox(&ns, id)
            .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
        if sb.stage == Stage::Terminated {
            return Err(ApiError::bad_request("Cannot update a terminated sandbox"));
        }
        let sandbox_id = sb.id.clone();
        if let Some(name) = &req.name {
            if name_taken(&reg, &ns, name, Some(&sandbox_id)) {
                return Err(ApiError::Text(
                    StatusCode::CONFLICT,
                    format!("A sandbox named {name:?} already exists in namespace {ns}"),
                ));
            }
        }
        let Some(sb) = reg.sandboxes.get_mut(&sandbox_id) else {
            return Err(ApiError::not_found(format!("Sandbox not found: {id}")));
        };
        if let Some(name) = req.name {
            sb.name = Some(name);
        }
        if let Some(flag) = req.allow_unauthenticated_access {
            sb.allow_unauthenticated_access = flag;
        }
        if let Some(ports) = ports {
            sb.exposed_ports = ports;
        }
        if let Some(stored) = network {
            sb.network = stored;
        }
        let ack = st.store.send_acked(vec![Op::PutSandbox(sb.clone())]);
        let sb = sb.clone();
        (sb.to_json(reg.sandbox_status(&sb, now_ms()), &st.base_url, st.jail.iso.net.available()), ack)
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the change: {e}")))?;
    Ok(http::json(StatusCode::OK, &value))
}
