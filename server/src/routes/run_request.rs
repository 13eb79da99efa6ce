//! The body of `POST /api/v1/processes/run` and `POST /api/v1/processes`, and what it must be
//! before anything is started: every refusal here is a 400 that names the field, never the
//! `execve` failure (E2BIG) or bwrap error line the input would otherwise cause.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::fsx;
use crate::http::ApiError;
use crate::jail::RunSpec;

fn jerr(status: StatusCode, code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::Json(status, code, msg.into())
}

/// Body of `POST /api/v1/processes/run` and `POST /api/v1/processes`.
#[derive(Debug, Deserialize)]
pub(super) struct RunRequest {
    command: String,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    working_dir: Option<String>,
    timeout: Option<f64>,
    user: Option<Value>,
}

/// Longest single argument or `NAME=value`: the kernel's `MAX_ARG_STRLEN` (128 KiB) less the NUL.
const MAX_ARG_BYTES: usize = 128 * 1024 - 1;
/// Most bytes `command`, `args` and `env` may take together, each string counted with
/// [`ARG_OVERHEAD`]: half the usual `ARG_MAX` (2 MiB), leaving room for bubblewrap's own
/// arguments, so that `execve` never fails with E2BIG.
const MAX_ARGS_TOTAL: usize = 1024 * 1024;
/// What each argument or variable costs besides its bytes: its NUL and pointer, and for a
/// variable the `--setenv` bubblewrap is given besides the `NAME=value` the command sees.
const ARG_OVERHEAD: usize = 32;

/// Refuses arguments and environments `execve` would refuse (E2BIG), with the field to blame.
fn check_sizes(
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<(), String> {
    if let Some((i, a)) = args
        .iter()
        .enumerate()
        .find(|(_, a)| a.len() > MAX_ARG_BYTES)
    {
        return Err(format!(
            "`args[{i}]` is {} bytes; one argument may be at most {MAX_ARG_BYTES} bytes (pass large data in a file: PUT /api/v1/files)",
            a.len()
        ));
    }
    if command.len() > MAX_ARG_BYTES {
        return Err(format!(
            "`command` is {} bytes; at most {MAX_ARG_BYTES}",
            command.len()
        ));
    }
    if let Some((k, v)) = env
        .iter()
        .find(|(k, v)| k.len() + 1 + v.len() > MAX_ARG_BYTES)
    {
        return Err(format!(
            "environment variable {k:?} in `env` is {} bytes with its name; at most {MAX_ARG_BYTES}",
            k.len() + 1 + v.len()
        ));
    }
    let total = std::iter::once(command.len())
        .chain(args.iter().map(String::len))
        .map(|n| n + ARG_OVERHEAD)
        .chain(
            env.iter()
                .map(|(k, v)| 2 * (k.len() + v.len()) + 3 * ARG_OVERHEAD),
        )
        .sum::<usize>();
    if total > MAX_ARGS_TOTAL {
        return Err(format!(
            "`command`, `args` and `env` are too large together ({total} bytes counted, at most {MAX_ARGS_TOTAL}); pass large data in a file"
        ));
    }
    Ok(())
}

/// Validates a run request; returns the spec and the timeout.
pub(super) fn check_run(req: RunRequest) -> Result<(RunSpec, Option<Duration>), ApiError> {
    let args = req.args.unwrap_or_default();
    let env_map = req.env.unwrap_or_default();
    let bad = |msg: String| jerr(StatusCode::BAD_REQUEST, "INVALID_REQUEST", msg);
    if req.command.is_empty() {
        return Err(bad("`command` must not be empty".into()));
    }
    if req.command.contains('\0') || args.iter().any(|a| a.contains('\0')) {
        return Err(bad("`command` and `args` must not contain NUL bytes".into()));
    }
    for (k, v) in &env_map {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(bad(format!(
                "invalid environment variable name {k:?} in `env`"
            )));
        }
    }
    check_sizes(&req.command, &args, &env_map)
        .map_err(|m| jerr(StatusCode::BAD_REQUEST, "ARGUMENTS_TOO_LARGE", m))?;
    let working_dir = req.working_dir.unwrap_or_else(|| "/".into());
    if !working_dir.starts_with('/') || working_dir.contains('\0') {
        return Err(bad(format!(
            "`working_dir` must be an absolute path, got {working_dir:?}"
        )));
    }
    let timeout = match req.timeout {
        // 0 is "no limit", as an omitted timeout.
        None => None,
        Some(0.0) => None,
        Some(t) if t.is_finite() && t > 0.0 && t <= 7.0 * 86400.0 => {
            Some(Duration::from_secs_f64(t))
        }
        Some(t) => {
            return Err(bad(format!(
                "`timeout` must be a positive number of seconds (at most a week), got {t}"
            )))
        }
    };
    match &req.user {
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if u == "root" || u == "0" || u == "0:0" => {}
        Some(Value::Object(o))
            if o.get("name").and_then(Value::as_str) == Some("root") || o.get("uid").and_then(Value::as_u64) == Some(0) => {}
        Some(other) => {
            return Err(bad(format!(
                "running as user {other} is not supported by tensorlake-local: commands run as root inside the jail; omit `user`"
            )))
        }
    }
    let env = env_map.into_iter().collect();
    Ok((
        RunSpec {
            command: req.command,
            args,
            env,
            working_dir,
        },
        timeout,
    ))
}

/// Checks that the working directory exists inside the sandbox (resolved inside its root), so a
/// typo is a clear 400 rather than a bwrap error line.
pub(super) async fn check_working_dir(root: PathBuf, dir: String) -> Result<(), ApiError> {
    let ok = tokio::task::spawn_blocking(move || {
        let root_fd = fsx::open_dir(&root).ok()?;
        let fd = fsx::open_in_root(
            &root_fd,
            dir.trim_start_matches('/'),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .ok()?;
        Some(fd)
    })
    .await
    .ok()
    .flatten()
    .is_some();
    if ok {
        Ok(())
    } else {
        Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_WORKING_DIR",
            "`working_dir` is not a directory in the sandbox",
        ))
    }
}
