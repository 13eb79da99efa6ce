//! The sandbox daemon's file routes (wire-protocol.md section 5.3): read, write, delete, list.
//!
//! Paths are absolute paths as the sandbox sees them. They are resolved inside the sandbox root
//! with `openat2(RESOLVE_IN_ROOT)` (see `fsx`), so neither `..` nor a symlink can reach another
//! sandbox or the host; `..` components are refused outright, as the real daemon does. The
//! directories the jail mounts from the host (`/usr`, `/bin`, `/lib*`, `/proc`, `/dev`) are
//! read-only here too.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::processes::{target, Target};
use super::St;
use crate::fsx;
use crate::http::{self, empty, read_body, ApiError, FILE_LIMIT};
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

/// `GET /api/v1/files?path=` → the file's bytes (`application/octet-stream`).
pub async fn read(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    let data = blocking(move || {
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
        if meta.len() > FILE_LIMIT as u64 {
            return Err(jerr(
                StatusCode::PAYLOAD_TOO_LARGE,
                "FILE_TOO_LARGE",
                format!(
                    "{path} is {} bytes; this server reads files of at most {FILE_LIMIT} bytes",
                    meta.len()
                ),
            ));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        fsx::into_file(fd)
            .take(FILE_LIMIT as u64)
            .read_to_end(&mut buf)
            .map_err(|e| io_error(&path, e))?;
        Ok(buf)
    })
    .await?;
    let mut resp = Response::new(Body::from(data));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

/// `PUT /api/v1/files?path=` with the raw bytes → 204; parent directories are created.
pub async fn write(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
    writable(&path, &rel)?;
    let data = read_body(&headers, body, FILE_LIMIT)
        .await
        .map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => e.into_json("PAYLOAD_TOO_LARGE"),
            _ => e.into_json("INVALID_REQUEST"),
        })?;
    blocking(move || {
        let root = open_root(&t)?;
        if let Some((parent, _)) = fsx::split_parent(&rel) {
            fsx::mkdir_all_in_root(&root, parent).map_err(|e| io_error(&path, e))?;
        }
        let fd = fsx::open_in_root(
            &root,
            &rel,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NONBLOCK,
            0o644,
        )
        .map_err(|e| io_error(&path, e))?;
        let mut file = fsx::into_file(fd);
        file.write_all(&data).map_err(|e| io_error(&path, e))?;
        Ok(())
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
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

/// `GET /api/v1/files/list?path=` → `{"path","entries":[{"name","is_dir","size","modified_at"}]}`,
/// sorted by name. Links are listed as themselves (`is_dir: false`), never followed.
pub async fn list(
    axum::extract::State(st): St,
    headers: HeaderMap,
    query: Result<Query<PathQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let (path, rel) = relative(query)?;
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
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = std::fs::symlink_metadata(base.join(entry.file_name())) else {
                    continue;
                };
                let modified = meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000;
                out.push(json!({
                    "name": name,
                    "is_dir": meta.is_dir(),
                    "size": if meta.is_file() { json!(meta.len()) } else { json!(null) },
                    "modified_at": modified,
                }));
            }
            out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(out)
        })
        .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "path": shown, "entries": entries }),
    ))
}
