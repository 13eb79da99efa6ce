//! The sandbox daemon's process routes (wire-protocol.md sections 5.2 and 5.3), and the lookup
//! of the sandbox a daemon request is for.
//!
//! The sandbox comes from `X-Tensorlake-Sandbox-Id: {id}` (what a browser can send) or else
//! `Host: {id}.local` (what the official SDK sends on localhost): an id in any namespace, a name
//! only in namespace `default` (see `Registry::find_daemon_sandbox`). Errors are JSON
//! `{"error","code"}`, like the real daemon.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::RawPathParams;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::run_request::{check_name, check_run, check_working_dir, resolve_user, RunRequest, User};
use super::{param, St};
use crate::gateway::{classify_host, HostName};
use crate::http::{self, empty, parse_json, read_body, ApiError, JSON_LIMIT};
use crate::jail::RunSpec;
use crate::model::now_ms;
use crate::procs::{self, KillReason, Stream};
use crate::state::AppState;

/// Header naming the sandbox on daemon routes.
pub const SANDBOX_HEADER: &str = "x-tensorlake-sandbox-id";

/// A resolved daemon target: a running sandbox, and the bwrap binary to jail its commands with.
pub struct Target {
    /// Sandbox id.
    pub id: String,
    /// Its root directory.
    pub root: PathBuf,
    /// bwrap binary.
    pub bwrap: PathBuf,
}

pub(super) fn jerr(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::Json(status, code, msg.into())
}

/// Finds the running sandbox a daemon request addresses, and checks bubblewrap works.
pub async fn target(st: &AppState, headers: &HeaderMap) -> Result<Target, ApiError> {
    let from_header = headers
        .get(SANDBOX_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let from_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| match classify_host(h) {
            HostName::Sandbox(label) => Some(label),
            _ => None,
        });
    let Some(wanted) = from_header.or(from_host) else {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "SANDBOX_ID_REQUIRED",
            "no sandbox selected: send `X-Tensorlake-Sandbox-Id: <id>` (or `Host: <id>.local`)",
        ));
    };
    let id = {
        let reg = st.reg();
        let sb = reg.find_daemon_sandbox(wanted).ok_or_else(|| {
            jerr(
                StatusCode::NOT_FOUND,
                "SANDBOX_NOT_FOUND",
                format!("Sandbox not found: {wanted}"),
            )
        })?;
        match reg.sandbox_status(sb, now_ms()) {
            "running" | "snapshotting" => sb.id.clone(),
            "terminated" => {
                return Err(jerr(
                    StatusCode::NOT_FOUND,
                    "SANDBOX_TERMINATED",
                    format!("Sandbox {} is terminated", sb.id),
                ))
            }
            "suspended" => {
                return Err(jerr(
                    StatusCode::CONFLICT,
                    "SANDBOX_NOT_RUNNING",
                    format!("Sandbox {} is suspended; resume it first", sb.id),
                ))
            }
            other => {
                return Err(jerr(
                    StatusCode::CONFLICT,
                    "SANDBOX_NOT_RUNNING",
                    format!("Sandbox {} is {other}, not running yet", sb.id),
                ))
            }
        }
    };
    let bwrap = st
        .jail
        .ready()
        .await
        .map_err(|msg| jerr(StatusCode::SERVICE_UNAVAILABLE, "BUBBLEWRAP_MISSING", msg))?;
    Ok(Target {
        root: st.paths.sandbox_root(&id),
        id,
        bwrap,
    })
}

/// Starts `spec` in the target's jail and registers it.
async fn launch(
    st: &AppState,
    t: &Target,
    spec: &mut RunSpec,
    user: Option<User>,
    name: Option<String>,
) -> Result<(std::sync::Arc<procs::ProcEntry>, tokio::process::Child), ApiError> {
    if let Some(n) = &name {
        if st.procs.by_name(&t.id, n).is_some_and(|e| e.running()) {
            return Err(jerr(
                StatusCode::CONFLICT,
                "PROCESS_NAME_IN_USE",
                format!("a running process of this sandbox is already named {n:?}"),
            ));
        }
    }
    check_working_dir(t.root.clone(), spec.working_dir.clone()).await?;
    if let Some(u) = user {
        spec.user = Some(resolve_user(t.root.clone(), u).await?);
    }
    // Registered only once started, with no await before its supervisor is spawned: a client
    // that goes away meanwhile drops the child (killed on drop), never a forever-running entry.
    match st.jail.spawn(&t.bwrap, &t.root, spec, &t.id).await {
        Ok(mut child) => {
            let host_pid = child.id().map_or(0, |p| p as i32);
            let stdin = child.stdin.take();
            let entry = st
                .procs
                .register(&t.id, &spec.command, &spec.args, host_pid, stdin, name);
            Ok((entry, child))
        }
        Err(e) => {
            // E2BIG is the request's fault (a stack limit below the usual 8 MiB makes the
            // check above too generous); anything else is the machine's.
            Err(if e.raw_os_error() == Some(libc::E2BIG) {
                jerr(
                    StatusCode::BAD_REQUEST,
                    "ARGUMENTS_TOO_LARGE",
                    "`command`, `args` and `env` are too large for this machine's exec limit; pass large data in a file",
                )
            } else {
                jerr(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SPAWN_FAILED",
                    format!("could not start bubblewrap: {e}"),
                )
            })
        }
    }
}

/// What `run` and `start` share: find the sandbox, read and check the body, start the command.
async fn launch_from_request(
    st: &std::sync::Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<
    (
        std::sync::Arc<procs::ProcEntry>,
        tokio::process::Child,
        Option<Duration>,
    ),
    ApiError,
> {
    let t = target(st, headers).await?;
    let body = read_body(headers, body, JSON_LIMIT)
        .await
        .map_err(|e| e.into_json("INVALID_REQUEST"))?;
    let mut req: RunRequest = parse_json(&body).map_err(|e| e.into_json("INVALID_REQUEST"))?;
    let name = check_name(req.name.take())?;
    let (mut spec, timeout, user) = check_run(req)?;
    let (entry, child) = launch(st, &t, &mut spec, user, name).await?;
    Ok((entry, child, timeout))
}

/// `POST /api/v1/processes/run`: runs a command to completion, streaming SSE frames: started
/// (`pid`, `started_at`), one per output line (`line`, `timestamp`, `stream`), then the exit
/// (`exit_code`, or `signal` when killed; `reason` as WHL reads it).
pub async fn run(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (entry, child, timeout) = launch_from_request(&st, &headers, body).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let _ = tx.try_send(procs::sse_frame(
        &json!({ "pid": entry.pid, "started_at": entry.started_at }),
    ));
    tokio::spawn(procs::supervise(entry, child, timeout, Some(tx)));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `POST /api/v1/processes`: starts a command in the background → 201 ProcessInfo. Its output is
/// kept for the output endpoints and the follow streams; with `stdin_mode: "pipe"` its stdin
/// stays open for `POST .../stdin`.
pub async fn start(
    axum::extract::State(st): St,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (entry, child, timeout) = launch_from_request(&st, &headers, body).await?;
    let info = entry.info();
    tokio::spawn(procs::supervise(entry, child, timeout, None));
    Ok(http::json(StatusCode::CREATED, &info))
}

/// `GET /api/v1/processes` → `{"processes":[ProcessInfo]}`.
pub async fn list(axum::extract::State(st): St, headers: HeaderMap) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let items: Vec<Value> = st.procs.list(&t.id).iter().map(|e| e.info()).collect();
    Ok(http::json(StatusCode::OK, &json!({ "processes": items })))
}

/// The process a daemon route names.
pub(super) fn find_proc(
    st: &AppState,
    t: &Target,
    params: &RawPathParams,
) -> Result<std::sync::Arc<procs::ProcEntry>, ApiError> {
    let raw = param(params, "pid");
    // All digits is a pid; anything else a name, percent-encoded as one path segment.
    let found = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u32>().ok().and_then(|pid| st.procs.get(&t.id, pid))
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()
            .and_then(|name| st.procs.by_name(&t.id, &name))
    };
    found.ok_or_else(|| {
            jerr(
                StatusCode::NOT_FOUND,
                "PROCESS_NOT_FOUND",
                format!("Process not found: {raw}"),
            )
        })
}

/// `GET /api/v1/processes/{pid}` → ProcessInfo.
pub async fn get(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let entry = find_proc(&st, &t, &params)?;
    Ok(http::json(StatusCode::OK, &entry.info()))
}

/// `DELETE /api/v1/processes/{pid}`: kills it (and everything it started) → 204, at once: the
/// jail is stopped before it is killed, so one that is still starting is not lost, and the
/// answer waits at most 90 ms for the end to be recorded (it follows within a moment).
pub async fn kill(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let entry = find_proc(&st, &t, &params)?;
    entry.kill(KillReason::Requested(libc::SIGKILL));
    let _ = tokio::time::timeout(Duration::from_millis(90), entry.wait()).await;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct SignalRequest {
    signal: i32,
}

/// `POST /api/v1/processes/{pid}/signal` `{"signal":n}` → `{"success":true}`.
///
/// Any standard signal (1..=31) goes to the command itself, as on a normal process: a shell that
/// traps it sees it, SIGSTOP/SIGCONT pause and continue it. SIGKILL kills the whole jail. A
/// command still starting is waited for up to 80 ms; if it is not there yet, a signal whose
/// default action ends a process ends the jail (recorded as that signal), any other is
/// delivered in the background once the command exists (for up to 2 s).
pub async fn signal(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
    body: Body,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let entry = find_proc(&st, &t, &params)?;
    let body = read_body(&headers, body, JSON_LIMIT)
        .await
        .map_err(|e| e.into_json("INVALID_REQUEST"))?;
    let req: SignalRequest = parse_json(&body).map_err(|e| e.into_json("INVALID_REQUEST"))?;
    let sig = req.signal;
    if !(1..=31).contains(&sig) {
        return Err(jerr(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_SIGNAL",
            format!("`signal` must be a standard signal number (1..=31), got {sig}"),
        ));
    }
    if !entry.running() {
        return Err(jerr(
            StatusCode::CONFLICT,
            "PROCESS_EXITED",
            format!("process {} has already ended", entry.pid),
        ));
    }
    if sig == libc::SIGKILL {
        entry.kill(KillReason::Requested(sig));
        let _ = tokio::time::timeout(Duration::from_millis(90), entry.wait()).await;
        return Ok(http::json(StatusCode::OK, &json!({ "success": true })));
    }
    let e2 = entry.clone();
    let delivered = tokio::task::spawn_blocking(move || e2.deliver(sig, Duration::from_millis(80)))
        .await
        .unwrap_or(false);
    if !delivered && entry.running() {
        if ends_by_default(sig) {
            entry.kill(KillReason::Requested(sig));
        } else {
            tokio::task::spawn_blocking(move || entry.deliver(sig, Duration::from_secs(2)));
        }
    }
    Ok(http::json(StatusCode::OK, &json!({ "success": true })))
}

/// Whether a signal's default action ends the process (so an unhandled one is as good as a kill).
fn ends_by_default(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
            | libc::SIGURG
            | libc::SIGWINCH
    )
}

/// The `{stream}` of a route: `stdout`, `stderr`, or `output` (both, as `None`).
pub(super) fn stream_param(params: &RawPathParams) -> Result<Option<Stream>, ApiError> {
    match param(params, "stream") {
        "stdout" => Ok(Some(Stream::Stdout)),
        "stderr" => Ok(Some(Stream::Stderr)),
        "output" => Ok(None),
        other => Err(jerr(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("unknown process stream {other:?}: stdout, stderr or output"),
        )),
    }
}

/// `GET /api/v1/processes/{pid}/stdout|stderr|output` → `{"pid","lines","line_count"}`.
pub async fn output(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let only = stream_param(&params)?;
    let entry = find_proc(&st, &t, &params)?;
    let lines = entry.lines(only);
    Ok(http::json(
        StatusCode::OK,
        &json!({ "pid": entry.pid, "line_count": lines.len(), "lines": lines }),
    ))
}

/// `GET /api/v1/health` → `{"healthy":true}`.
pub async fn health(
    axum::extract::State(st): St,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    target(&st, &headers).await?;
    Ok(http::json(StatusCode::OK, &json!({ "healthy": true })))
}

/// `GET /api/v1/info` → `{"version","uptime_secs","running_processes","total_processes"}`.
pub async fn info(axum::extract::State(st): St, headers: HeaderMap) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let list = st.procs.list(&t.id);
    let created = st
        .reg()
        .sandboxes
        .get(&t.id)
        .map(|s| s.created_at)
        .unwrap_or_else(now_ms);
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": ((now_ms() - created).max(0) / 1000),
            "running_processes": list.iter().filter(|e| e.running()).count(),
            "total_processes": list.len(),
        }),
    ))
}

/// Any other `/api/v1/...` path.
pub async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    jerr(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no daemon route {}", uri.path()),
    )
}
