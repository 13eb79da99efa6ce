//! The sandbox daemon's file routes (wire-protocol.md section 5.3): read, write, delete, list.
//!
//! Paths are absolute paths as the sandbox sees them. They are resolved inside the sandbox root
//! with `openat2(RESOLVE_IN_ROOT)` (see `fsx`), so neither `..` nor a symlink can reach another
//! sandbox or the host; `..` components are refused outright, as the real daemon does. The
//! directories the jail mounts from the host (`/usr`, `/bin`, `/lib*`, `/proc`, `/dev`) are
//! read-only here too.
//!
//! Bodies are streamed (see `file_stream`): a read sends the file in chunks, a write stores the
//! body as it arrives (at most [`FILE_LIMIT`] bytes); both count against a server-wide limit of
//! concurrent transfers. Only regular files are read or written (a FIFO, socket or device is a
//! 409 `NOT_A_FILE`, never a hang); a written file loses any setuid or setgid bit and, like the
//! directories made for it, belongs to the owner of the sandbox root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::file_stream::{self, ReceiveError};
use super::processes::{target, Target};
use super::St;
use crate::fsx;
use crate::http::{self, empty, ApiError, FILE_LIMIT};
use crate::jail::SYSTEM_DIRS;

/// Query string of the file routes.
#[derive(Debug, Deserialize)]
pub struct PathQuery {
    path: Option<String>,
}

fn jerr(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::Json(status, code, msg.into())
}

/// Checks a sandbox path; returns it relative to the root (no leading `/`).
fn relative(
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(String, String), ApiError> {
    let Ok(Query(q)) = query else {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            "the query string could not be parsed; send ?path=/absolute/path",
        ));
    };
    let path = q.path.unwrap_or_default();
    if path.is_empty() {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            "missing `path` query parameter",
        ));
    }
    if !path.starts_with('/') {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            format!("`path` must be absolute, got {path:?}"),
        ));
    }
    if path.contains('\0') || path.len() > 4096 {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            "`path` contains a NUL byte or is too long",
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "PATH_TRAVERSAL",
            format!("`path` must not contain `..`: {path:?}"),
        ));
    }
    let rel = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/");
    Ok((path, rel))
}

/// Refuses writes under the host directories mounted read-only in the jail.
fn writable(path: &str, rel: &str) -> Result<(), ApiError> {
    let first = rel.split('/').next().unwrap_or("");
    if rel.is_empty() {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "IS_DIRECTORY",
            "`/` is a directory",
        ));
    }
    if SYSTEM_DIRS.contains(&first) {
        return Err(jerr(
            StatusCode::FORBIDDEN,
            "READ_ONLY",
            format!("{path} is read-only: /{first} is mounted from the host (read-only) in every sandbox"),
        ));
    }
    Ok(())
}

/// Maps a filesystem error to the daemon's JSON error.
fn io_error(path: &str, e: std::io::Error) -> ApiError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => jerr(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No such file or directory: {path}"),
        ),
        Some(libc::ENOTDIR) => jerr(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Not a directory on the way to {path}"),
        ),
        Some(libc::EISDIR) => jerr(
            StatusCode::BAD_REQUEST,
            "IS_DIRECTORY",
            format!("{path} is a directory"),
        ),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => jerr(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("Permission denied: {path}"),
        ),
        Some(libc::ELOOP) => jerr(
            StatusCode::BAD_REQUEST,
            "SYMLINK_LOOP",
            format!("Too many levels of symbolic links: {path}"),
        ),
        Some(libc::ENAMETOOLONG) => jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            format!("Path too long: {path}"),
        ),
        Some(libc::ENOTEMPTY) => jerr(
            StatusCode::CONFLICT,
            "NOT_EMPTY",
            format!("Directory not empty: {path}"),
        ),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => jerr(
            StatusCode::INSUFFICIENT_STORAGE,
            "NO_SPACE",
            format!("No space left for {path}"),
        ),
        Some(libc::EFBIG) | Some(libc::EOVERFLOW) => jerr(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FILE_TOO_LARGE",
            format!("File too large: {path}"),
        ),
        Some(libc::ENXIO) | Some(libc::ENODEV) | Some(libc::EAGAIN) => jerr(
            StatusCode::CONFLICT,
            "NOT_A_FILE",
            format!("{path} is a FIFO, socket or device, not a regular file"),
        ),
        Some(libc::EEXIST) => jerr(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("Something else already exists at {path} or on the way to it"),
        ),
        Some(libc::ETXTBSY) | Some(libc::EBUSY) => jerr(
            StatusCode::CONFLICT,
            "BUSY",
            format!("{path} is in use (a running program or a mount point)"),
        ),
        Some(libc::EMLINK) => jerr(
            StatusCode::CONFLICT,
            "TOO_MANY_LINKS",
            format!("Too many links on the way to {path}"),
        ),
        Some(libc::EXDEV) => jerr(
            StatusCode::CONFLICT,
            "PATH_CHANGED",
            format!("{path} changed while it was being resolved; retry"),
        ),
        Some(libc::EINVAL) => jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            format!("Invalid path: {path}"),
        ),
        _ => jerr(
            StatusCode::INTERNAL_SERVER_ERROR,
            "IO_ERROR",
            format!("{path}: {e}"),
        ),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(jerr(
            StatusCode::INTERNAL_SERVER_ERROR,
            "IO_ERROR",
            format!("file task failed: {e}"),
        ))
    })
}

fn open_root(t: &Target) -> Result<std::os::fd::OwnedFd, ApiError> {
    fsx::open_dir(&t.root).map_err(|e| {
        jerr(
            StatusCode::INTERNAL_SERVER_ERROR,
            "IO_ERROR",
            format!("sandbox root: {e}"),
        )
    })
}

/// `GET /api/v1/files?path=` → the file's bytes (`application/octet-stream`), streamed.
pub async fn read(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    let permit = match file_stream::slot().await {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let (file, size) = blocking(move || {
        let root = open_root(&t)?;
        let fd = fsx::open_in_root(&root, &rel, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(|e| io_error(&path, e))?;
        let meta = fsx::fstat(&fd).map_err(|e| io_error(&path, e))?;
        if meta.is_dir() {
            return Err(jerr(
                StatusCode::BAD_REQUEST,
                "IS_DIRECTORY",
                format!("{path} is a directory; use /api/v1/files/list"),
            ));
        }
        if !meta.is_file() {
            return Err(jerr(
                StatusCode::BAD_REQUEST,
                "NOT_A_FILE",
                format!("{path} is not a regular file"),
            ));
        }
        Ok((fsx::into_file(fd), meta.len()))
    })
    .await?;
    Ok(file_stream::serve(file, size, permit))
}

/// `PUT /api/v1/files?path=` with the raw bytes → 204; parent directories are created. The body
/// is streamed into the file; one over [`FILE_LIMIT`] is a 413 (refused before anything is
/// touched when `Content-Length` says so, otherwise the file is left empty).
pub async fn write(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    writable(&path, &rel)?;
    let too_large = || {
        jerr(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("request body is larger than this route's limit of {FILE_LIMIT} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > FILE_LIMIT as u64) {
        return Err(too_large());
    }
    let _permit = match file_stream::slot().await {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let shown = path.clone();
    let file = blocking(move || {
        let root = open_root(&t)?;
        let owner = fsx::Owner::of(&root).map_err(|e| io_error(&path, e))?;
        if let Some((parent, _)) = fsx::split_parent(&rel) {
            fsx::mkdir_all_in_root(&root, parent, &owner).map_err(|e| io_error(&path, e))?;
        }
        // No O_TRUNC yet: what is there must first prove to be a regular file (O_NONBLOCK and
        // O_NOCTTY so that a FIFO or a terminal can neither block nor be taken over).
        let fd = fsx::open_in_root(
            &root,
            &rel,
            libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY,
            0o644,
        )
        .map_err(|e| io_error(&path, e))?;
        let meta = fsx::fstat(&fd).map_err(|e| io_error(&path, e))?;
        if !meta.is_file() {
            return Err(jerr(
                StatusCode::CONFLICT,
                "NOT_A_FILE",
                format!("{path} is not a regular file (a FIFO, socket or device)"),
            ));
        }
        let _ = owner.give_fd(&fd);
        let file = fsx::into_file(fd);
        // After the chown (which may itself clear them): no setuid or setgid file via the API.
        if meta.mode() & 0o6000 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o1777))
                .map_err(|e| io_error(&path, e))?;
        }
        file.set_len(0).map_err(|e| io_error(&path, e))?;
        Ok(file)
    })
    .await?;
    match file_stream::receive(file, body, FILE_LIMIT).await {
        Ok(_) => Ok(empty(StatusCode::NO_CONTENT)),
        Err(ReceiveError::TooLarge) => Err(too_large()),
        Err(ReceiveError::Body(e)) => Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            format!("could not read the request body: {e}"),
        )),
        Err(ReceiveError::Stalled) => Err(jerr(
            StatusCode::REQUEST_TIMEOUT,
            "BODY_TIMEOUT",
            format!(
                "the request body stopped for {} s; {shown} was left empty",
                file_stream::STALL_LIMIT.as_secs()
            ),
        )),
        Err(ReceiveError::Io(e)) => Err(io_error(&shown, e)),
    }
}

/// `DELETE /api/v1/files?path=` → 204; a directory is removed with its content.
pub async fn remove(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    writable(&path, &rel)?;
    blocking(move || {
        let root = open_root(&t)?;
        let (parent, name) = fsx::split_parent(&rel)
            .ok_or_else(|| io_error(&path, std::io::Error::from_raw_os_error(libc::EISDIR)))?;
        let dir = fsx::open_in_root(&root, parent, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| io_error(&path, e))?;
        fsx::remove_at(&dir, name).map_err(|e| io_error(&path, e))
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Most entries a listing answers. A directory is the sandbox's to fill: 300,000 long names
/// took the server 680 MB to list, so a few million would take it down. Past this the listing
/// is a 400 `TOO_MANY_ENTRIES` (a command, `ls` or `find`, lists any directory).
pub const LIST_LIMIT: usize = 100_000;

/// One entry of a listing (a struct, not a JSON map: a tenth of the memory per entry).
#[derive(serde::Serialize)]
struct ListEntry {
    name: String,
    is_dir: bool,
    size: Option<u64>,
    modified_at: i64,
}

/// `GET /api/v1/files/list?path=` → `{"path","entries":[{"name","is_dir","size","modified_at"}]}`,
/// sorted by name. Links are listed as themselves (`is_dir: false`), never followed. At most
/// [`LIST_LIMIT`] entries; it takes a transfer slot, so listings in flight are bounded too.
pub async fn list(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    let _permit = match file_stream::slot().await {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let shown = path.clone();
    let entries =
        blocking(move || {
            let root = open_root(&t)?;
            let dir = fsx::open_in_root(&root, &rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOTDIR) => jerr(
                        StatusCode::BAD_REQUEST,
                        "NOT_A_DIRECTORY",
                        format!("{path} is not a directory"),
                    ),
                    _ => io_error(&path, e),
                })?;
            let base = fsx::fd_path(&dir);
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&base)
                .map_err(|e| io_error(&path, e))?
                .flatten()
            {
                if out.len() == LIST_LIMIT {
                    return Err(jerr(
                        StatusCode::BAD_REQUEST,
                        "TOO_MANY_ENTRIES",
                        format!(
                            "{path} has more than {LIST_LIMIT} entries; list it with a command (ls, find) instead"
                        ),
                    ));
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = std::fs::symlink_metadata(base.join(entry.file_name())) else {
                    continue;
                };
                out.push(ListEntry {
                    name,
                    is_dir: meta.is_dir(),
                    size: meta.is_file().then(|| meta.len()),
                    modified_at: meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await?;
    #[derive(serde::Serialize)]
    struct Listing {
        path: String,
        entries: Vec<ListEntry>,
    }
    let body = serde_json::to_vec(&Listing { path: shown, entries }).unwrap_or_default();
    Ok(http::json_bytes(StatusCode::OK, body))
}
