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
    stdin_mode: Option<String>,
    /// A name to find the process by instead of its pid (`POST /api/v1/processes` only).
    pub(super) name: Option<String>,
}

/// Longest process name, in bytes.
const MAX_NAME: usize = 128;

/// Checks a process name: 1 to 128 printable characters, not all digits (a path segment of
/// digits is a pid), no `/` (it would not fit one path segment).
pub(super) fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = name else { return Ok(None) };
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name.chars().any(|c| c.is_control() || c == '/');
    if ok {
        Ok(Some(name))
    } else {
        Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            format!(
                "`name` must be 1 to {MAX_NAME} bytes of printable characters without `/`, and not all digits (that reads as a pid); got {}",
                if name.len() <= MAX_NAME { format!("{name:?}") } else { format!("{} bytes", name.len()) }
            ),
        ))
    }
}

/// Highest uid or gid `user` may name: bwrap maps one id, and 65535 is the overflow id.
const MAX_ID: u64 = 65_534;

/// Who a command runs as, before a name is looked up in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum User {
    /// Numeric uid and gid.
    Ids(u32, u32),
    /// A name from the sandbox's `/etc/passwd` (and an optional gid overriding its group).
    Name(String, Option<u32>),
}

fn id_of(v: &str) -> Option<u32> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_ID)
        .map(|n| n as u32)
}

/// Reads `user`: `"root"`, `"1000"`, `"1000:100"`, `"name"`, `"name:100"`, or
/// `{"uid":1000,"gid"?:100}` / `{"name":"app","gid"?:100}`.
pub(super) fn parse_user(v: &Value) -> Result<Option<User>, String> {
    let bad = || {
        format!(
            "`user` must be \"root\", a uid (0..={MAX_ID}), \"uid:gid\", a user name of the sandbox's /etc/passwd, or {{\"uid\",\"gid\"}}/{{\"name\"}}; got {v}"
        )
    };
    let user = match v {
        Value::Null => return Ok(None),
        Value::String(s) => {
            let (who, group) = match s.split_once(':') {
                Some((u, g)) => (u, Some(id_of(g).ok_or_else(bad)?)),
                None => (s.as_str(), None),
            };
            if let Some(uid) = id_of(who) {
                User::Ids(uid, group.unwrap_or(uid))
            } else if who.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            } else if who == "root" {
                User::Ids(0, group.unwrap_or(0))
            } else if valid_name(who) {
                User::Name(who.to_string(), group)
            } else {
                return Err(bad());
            }
        }
        Value::Object(o) => {
            let gid = match o.get("gid") {
                None | Some(Value::Null) => None,
                Some(g) => Some(g.as_u64().filter(|n| *n <= MAX_ID).ok_or_else(bad)? as u32),
            };
            match (o.get("uid"), o.get("name").and_then(Value::as_str)) {
                (Some(u), _) if !u.is_null() => {
                    let uid = u.as_u64().filter(|n| *n <= MAX_ID).ok_or_else(bad)? as u32;
                    User::Ids(uid, gid.unwrap_or(uid))
                }
                (_, Some("root")) => User::Ids(0, gid.unwrap_or(0)),
                (_, Some(name)) if valid_name(name) => User::Name(name.to_string(), gid),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    Ok(match user {
        User::Ids(0, 0) => None,
        u => Some(u),
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Finds `name` in a passwd file's text: its uid and gid.
pub(super) fn lookup_passwd(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        f.next()?;
        Some((id_of(f.next()?)?, id_of(f.next()?)?))
    })
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

/// Validates a run request; returns the spec, the timeout and the user to resolve.
pub(super) fn check_run(
    req: RunRequest,
) -> Result<(RunSpec, Option<Duration>, Option<User>), ApiError> {
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
    let user = match &req.user {
        None => None,
        Some(v) => parse_user(v).map_err(bad)?,
    };
    let stdin_pipe = match req.stdin_mode.as_deref() {
        None | Some("closed") => false,
        Some("pipe") => true,
        Some(other) => {
            return Err(bad(format!(
                "`stdin_mode` must be \"closed\" or \"pipe\", got {other:?}"
            )))
        }
    };
    let env = env_map.into_iter().collect();
    Ok((
        RunSpec {
            command: req.command,
            args,
            env,
            working_dir,
            stdin_pipe,
            user: None,
        },
        timeout,
        user,
    ))
}

/// The uid and gid `user` names in the sandbox rooted at `root` (a name is looked up in its
/// `/etc/passwd`, opened without following links out of the root, at most 1 MiB read).
pub(super) async fn resolve_user(root: PathBuf, user: User) -> Result<(u32, u32), ApiError> {
    let (name, gid) = match user {
        User::Ids(u, g) => return Ok((u, g)),
        User::Name(n, g) => (n, g),
    };
    let n2 = name.clone();
    let found = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let root_fd = fsx::open_dir(&root).ok()?;
        let fd = fsx::open_in_root(&root_fd, "etc/passwd", libc::O_RDONLY, 0).ok()?;
        let mut text = String::new();
        std::fs::File::from(fd)
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        lookup_passwd(&text, &n2)
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((u, g)) => Ok((u, gid.unwrap_or(g))),
        None => Err(jerr(
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
            format!("`user` {name:?} is not in the sandbox's /etc/passwd; give a numeric uid (\"1000\" or {{\"uid\":1000}})"),
        )),
    }
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

#[cfg(test)]
mod user_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_parse_to_ids_or_names() {
        assert_eq!(parse_user(&json!("root")), Ok(None));
        assert_eq!(parse_user(&json!("0:0")), Ok(None));
        assert_eq!(parse_user(&json!("1000")), Ok(Some(User::Ids(1000, 1000))));
        assert_eq!(
            parse_user(&json!("1000:100")),
            Ok(Some(User::Ids(1000, 100)))
        );
        assert_eq!(
            parse_user(&json!({"uid": 5, "gid": 6})),
            Ok(Some(User::Ids(5, 6)))
        );
        assert_eq!(
            parse_user(&json!("app")),
            Ok(Some(User::Name("app".into(), None)))
        );
        assert!(parse_user(&json!("70000")).is_err());
        assert!(parse_user(&json!("a b")).is_err());
        assert!(parse_user(&json!({"uid": -1})).is_err());
        assert!(parse_user(&json!(12)).is_err());
    }

    #[test]
    fn passwd_lookup_reads_uid_and_gid() {
        let text = "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n";
        assert_eq!(lookup_passwd(text, "app"), Some((1001, 1002)));
        assert_eq!(lookup_passwd(text, "nobody"), None);
    }
}
