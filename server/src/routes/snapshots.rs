//! Snapshot routes (wire-protocol.md section 2) and the job that writes a snapshot's archive.
//!
//! A snapshot is `in_progress` while its archive is written (real work, off the async threads),
//! then stays `in_progress` for `snapshot_local_ready_ms` more, is `local_ready` for
//! `snapshot_completed_ms`, then `completed`. Those instants are stored when the archive is
//! done, and the status is computed from them when read.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::RawPathParams;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{namespace, param, St};
use crate::archive;
use crate::http::{self, empty, parse_json_or_default, read_body, ApiError, JSON_LIMIT};
use crate::model::{new_id, now_ms, Snapshot, SnapshotType};
use crate::state::AppState;
use crate::store::{committed, Op};

/// Body of `POST /sandboxes/{id}/snapshot`; usually empty.
#[derive(Debug, Deserialize, Default)]
struct CreateRequest {
    snapshot_type: Option<String>,
}

/// `POST {P}/sandboxes/{id}/snapshot` → 202 `{"snapshot_id","status":"in_progress"}`.
pub async fn create(
    axum::extract::State(st): St,
    params: RawPathParams,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let body = read_body(&headers, body, JSON_LIMIT).await?;
    let req: CreateRequest = parse_json_or_default(&body)?;
    let snapshot_type = match req.snapshot_type.as_deref() {
        None | Some("filesystem") => SnapshotType::Filesystem,
        Some("memory") => SnapshotType::Memory,
        Some(other) => {
            return Err(ApiError::Text(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid field `snapshot_type`: expected \"memory\" or \"filesystem\", got {other:?}"),
            ))
        }
    };

    let now = now_ms();
    let timing = st.timing.get();
    let (snap_id, sandbox_id, scripted_failure, ack) = {
        let mut reg = st.reg();
        let sb = reg
            .find_sandbox(&ns, id)
            .ok_or_else(|| ApiError::not_found(format!("Sandbox not found: {id}")))?;
        match reg.sandbox_status(sb, now) {
            "running" => {}
            "terminated" => {
                return Err(ApiError::bad_request(
                    "Cannot snapshot a terminated sandbox",
                ))
            }
            "pending" => {
                return Err(ApiError::bad_request(
                    "Cannot snapshot a sandbox that is not yet running",
                ))
            }
            "suspended" => {
                return Err(ApiError::bad_request(
                    "Cannot snapshot a suspended sandbox; resume it first",
                ))
            }
            "snapshotting" => {
                return Err(ApiError::bad_request(
                    "Sandbox is already being snapshotted",
                ))
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Cannot snapshot a sandbox in status {other}"
                )))
            }
        }
        let scripted_failure = st
            .snapshot_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&sb.id);
        let snap = Snapshot {
            id: new_id("snap-"),
            seq: 0,
            namespace: ns.clone(),
            sandbox_id: sb.id.clone(),
            base_image: sb.image.clone(),
            snapshot_type,
            cpus: sb.cpus,
            memory_mb: sb.memory_mb,
            disk_mb: sb.disk_mb,
            entrypoint: sb.entrypoint.clone(),
            network: sb.network.clone(),
            created_at: now,
            archive: None,
            size_bytes: None,
            rootfs_disk_bytes: None,
            local_ready_at: None,
            completed_at: None,
            // A scripted failure still shows `in_progress` first, for as long as a real snapshot
            // would before `local_ready`.
            failed_at: scripted_failure
                .as_ref()
                .map(|_| now + timing.snapshot_local_ready_ms as i64),
            error: scripted_failure.clone(),
        };
        let sandbox_id = sb.id.clone();
        let snap = reg.insert_snapshot(snap).clone();
        if let Some(sb) = reg.sandboxes.get_mut(&sandbox_id) {
            sb.snapshotting = Some(snap.id.clone());
        }
        let ack = st.store.send_acked(vec![Op::PutSnapshot(snap.clone())]);
        (snap.id, sandbox_id, scripted_failure, ack)
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the snapshot: {e}")))?;
    if scripted_failure.is_none() {
        let job = st.archive_job();
        tokio::spawn(write_archive(st.clone(), snap_id.clone(), sandbox_id, job));
    }
    Ok(http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "snapshot_id": snap_id, "status": "in_progress" }),
    ))
}

/// Writes the archive of snapshot `snap_id` from sandbox `sandbox_id`, then records the outcome.
async fn write_archive(
    st: Arc<AppState>,
    snap_id: String,
    sandbox_id: String,
    _job: crate::state::ArchiveJob,
) {
    let _slot = st.archive_slots.acquire().await;
    let lock = st.fs_lock(&sandbox_id);
    let _reading = lock.read().await;
    let root = st.paths.sandbox_root(&sandbox_id);
    let tmp = archive::tmp_path(&st.paths.tmp, &snap_id);
    let name = archive::file_name(&snap_id);
    let dst = st.paths.snapshots.join(&name);
    let (own, layered) = if archive::legacy() {
        (root, false)
    } else {
        st.jail.iso.own_files(&root)
    };
    let result = tokio::task::spawn_blocking(move || archive::create(&own, &tmp, &dst, layered))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));

    let now = now_ms();
    let timing = st.timing.get();
    // A finished archive is committed to SQLite before memory shows it: a client that saw
    // `local_ready` must find the snapshot again after a crash (a failure may show at once; a
    // crash before its commit only marks the snapshot failed again at the next start).
    let pending = {
        let mut reg = st.reg();
        match reg.snapshot_mut(&snap_id) {
            None => None,
            Some(snap) => match result {
                Ok(stats) => {
                    let mut row = snap.clone();
                    row.archive = Some(name.clone());
                    row.size_bytes = Some(stats.size_bytes);
                    row.rootfs_disk_bytes = Some(stats.content_bytes);
                    let ready = now + timing.snapshot_local_ready_ms as i64;
                    row.local_ready_at = Some(ready);
                    row.completed_at = Some(ready + timing.snapshot_completed_ms as i64);
                    Some((st.store.send_acked(vec![Op::PutSnapshot(row.clone())]), row))
                }
                Err(e) => {
                    snap.error = Some(format!("archiving the sandbox failed: {e}"));
                    snap.failed_at = Some(now);
                    let row = snap.clone();
                    st.store.send(vec![Op::PutSnapshot(row)]);
                    return;
                }
            },
        }
    };
    let deleted_meanwhile = match pending {
        None => true,
        Some((ack, row)) => {
            let stored = committed(ack).await;
            let mut reg = st.reg();
            match reg.snapshot_mut(&snap_id) {
                None => true,
                Some(snap) => {
                    let mut drop_archive = false;
                    match stored {
                        Ok(()) => {
                            snap.archive = row.archive;
                            snap.size_bytes = row.size_bytes;
                            snap.rootfs_disk_bytes = row.rootfs_disk_bytes;
                            snap.local_ready_at = row.local_ready_at;
                            snap.completed_at = row.completed_at;
                            *reg.archive_refs.entry(name.clone()).or_default() += 1;
                        }
                        Err(e) => {
                            // Nothing records the archive: it goes, like a deleted snapshot's.
                            snap.error = Some(format!("could not record the finished snapshot: {e}"));
                            snap.failed_at = Some(now_ms());
                            drop_archive = true;
                        }
                    }
                    drop_archive
                }
            }
        }
    };
    if deleted_meanwhile {
        // Nothing refers to the archive any more.
        let path = st.paths.snapshots.join(&name);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }
}

/// `GET {P}/snapshots/{id}`.
pub async fn get(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let reg = st.reg();
    let snap = reg
        .snapshot(id)
        .filter(|s| s.namespace == ns)
        .ok_or_else(|| ApiError::not_found(format!("Snapshot not found: {id}")))?;
    let body = serde_json::to_vec(&snap.view(now_ms(), &st.archive_url)).unwrap_or_default();
    Ok(http::json_bytes(StatusCode::OK, body))
}

/// `GET {P}/snapshots` → `{"snapshots":[...]}`, oldest first.
pub async fn list(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    Ok(render_list(&st, |s| s.namespace == ns))
}

/// `GET {P}/sandboxes/{id}/snapshots`: the snapshots taken of one sandbox.
pub async fn list_for_sandbox(
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
        sb.id.clone()
    };
    Ok(render_list(&st, |s| {
        s.namespace == ns && s.sandbox_id == sandbox_id
    }))
}

/// Serialises the matching snapshots straight into the response buffer.
fn render_list(st: &AppState, keep: impl Fn(&Snapshot) -> bool) -> Response {
    let now = now_ms();
    let reg = st.reg();
    let mut out = Vec::with_capacity(64 + reg.snapshots.len() * 360);
    out.extend_from_slice(b"{\"snapshots\":[");
    let mut first = true;
    for snap in reg.snapshots.values().filter(|s| keep(s)) {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, &snap.view(now, &st.archive_url));
    }
    out.extend_from_slice(b"]}");
    drop(reg);
    http::json_bytes(StatusCode::OK, out)
}

/// `DELETE {P}/snapshots/{id}` → 200, empty. The archive goes when no record uses it any more.
pub async fn delete(
    axum::extract::State(st): St,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let ns = namespace(&params)?;
    let id = param(&params, "id");
    let (orphan, ack) = {
        let mut reg = st.reg();
        let found = reg.snapshot(id).map(|s| s.namespace == ns).unwrap_or(false);
        if !found {
            return Err(ApiError::not_found(format!("Snapshot not found: {id}")));
        }
        let Some((snap, orphan)) = reg.remove_snapshot(id) else {
            return Err(ApiError::not_found(format!("Snapshot not found: {id}")));
        };
        if let Some(sb) = reg.sandboxes.get_mut(&snap.sandbox_id) {
            if sb.snapshotting.as_deref() == Some(id) {
                sb.snapshotting = None;
            }
        }
        (
            orphan,
            st.store.send_acked(vec![Op::DeleteSnapshot(snap.id)]),
        )
    };
    committed(ack)
        .await
        .map_err(|e| ApiError::internal(format!("could not record the deletion: {e}")))?;
    if let Some(name) = orphan {
        let path = st.paths.snapshots.join(name);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
    }
    Ok(empty(StatusCode::OK))
}
