//! A sandbox's tree on the host: made (its uid, disk and cgroups first, then the restored
//! archive into its own layer, then the image base under it, then `/root` and `/tmp`) and removed (isolation undone, then the directory).

use std::sync::Arc;

use axum::http::StatusCode;

use crate::http::ApiError;
use crate::model::Sandbox;
use crate::state::AppState;
use crate::{dirwalk, unpack};

/// Creates the sandbox's root (with `/root` and a world-writable, sticky `/tmp`), unpacking the
/// archive into it for a restore.
pub async fn make_tree(
    st: &Arc<AppState>,
    sb: &Sandbox,
    archive: Option<&str>,
) -> Result<(), ApiError> {
    let root = st.paths.sandbox_root(&sb.id);
    let archive_path = archive.map(|a| st.paths.snapshots.join(a));
    let (st2, sb2) = (st.clone(), sb.clone());
    tokio::task::spawn_blocking(move || fill_root(&st2, &sb2, &root, archive_path.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("creating the sandbox files failed: {e}")))?
}

/// Creates `root`, gives it its uid, filesystem and cgroups (see `isolation`: the root's owner is
/// whom everything below belongs to), and fills it (see `unpack`). A damaged archive is a 422, a
/// full disk a 507.
fn fill_root(
    st: &AppState,
    sb: &Sandbox,
    root: &std::path::Path,
    archive: Option<&std::path::Path>,
) -> Result<(), ApiError> {
    let failed = |e: std::io::Error| match (e.kind(), e.raw_os_error()) {
        (std::io::ErrorKind::InvalidData, _) => ApiError::Text(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the snapshot cannot be restored: {e}"),
        ),
        (_, Some(libc::ENOSPC)) | (_, Some(libc::EDQUOT)) => ApiError::Text(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("no space left to restore the snapshot (raise disk_mb): {e}"),
        ),
        // Not EDQUOT (matched above): the sandbox uids of this machine are all in use.
        (std::io::ErrorKind::QuotaExceeded, _) => ApiError::Text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this server cannot hold another sandbox now: {e}"),
        ),
        _ => ApiError::internal(format!("creating the sandbox files failed: {e}")),
    };
    std::fs::create_dir_all(root).map_err(failed)?;
    st.jail.iso.prepare(sb, root).map_err(failed)?;
    let (own, layered) = st.jail.iso.own_files(root);
    if let Some(a) = archive {
        let own_fd = crate::fsx::open_dir(&own).map_err(failed)?;
        let report = unpack::extract(a, &own_fd, layered).map_err(failed)?;
        if report.skipped > 0 {
            eprintln!(
                "tensorlake-local: restore of {} left out {} archive entries, e.g. {:?}",
                sb.id, report.skipped, report.examples
            );
        }
    }
    st.jail.iso.finish(root).map_err(failed)?;
    let root_fd = crate::fsx::open_dir(root).map_err(failed)?;
    crate::fsx::standard_dirs(&root_fd).map_err(failed)
}

/// Undoes a sandbox's isolation set-up (cgroups, filesystem, uid), then removes its directory.
/// Blocking.
pub(crate) fn release_and_remove(st: &AppState, id: &str) -> std::io::Result<()> {
    st.jail.iso.release(id, &st.paths.sandbox_root(id));
    dirwalk::remove_path(&st.paths.sandbox_dir(id))
}
