//! A sandbox's background processes (wire-protocol §5.3) and the lifecycle calls beyond create,
//! get and delete (§3.4): suspend, resume, status, update (one sandbox's snapshot list is `Api::list_snapshots`).
//!
//! These answers are passed to the caller as the server sent them (camelCased by the host), so
//! this module only builds requests, sends them with the usual retry policy, and waits where the
//! official SDKs wait. Following a process's output is a stream: [`SseDecoder`] splits it as the
//! bytes arrive, so memory stays bounded however much a process prints.

use std::collections::VecDeque;

use crate::api::{Api, SandboxTarget};
use crate::call::{self, Call};
use crate::config::Config;
use crate::error::{Error, NotFound};
use crate::json_out::{self, Object};
use crate::models::SandboxRecord;
use crate::platform::{Body, Json, Method, Platform, RequestBody};
use crate::retry::RetryClass;
use crate::routes::{self, RunSpec};
use crate::url::encode_component;

/// `{base}/api/v1/processes`.
pub fn processes(base: &str) -> String {
    format!("{base}/api/v1/processes")
}

/// `{base}/api/v1/processes/{pid or name}{suffix}`: a PID as digits, a name percent-encoded
/// (an all-digit segment means a PID, wire-protocol §5.3). `suffix` is `""` or starts with `/`.
pub fn process(base: &str, pid_or_name: &str, suffix: &str) -> String {
    format!(
        "{base}/api/v1/processes/{}{suffix}",
        encode_component(pid_or_name)
    )
}

/// `{P}/sandboxes/{id}/{action}` (`suspend`, `resume`, `snapshots`).
pub fn sandbox_action(cfg: &Config, sandbox_id: &str, action: &str) -> String {
    format!("{}/{action}", routes::sandbox(cfg, sandbox_id))
}

/// A background process to start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSpec {
    /// Command, arguments, environment, directory, user.
    pub run: RunSpec,
    /// `stdin_mode: "pipe"` (writable with `writeStdin`); otherwise stdin is closed.
    pub stdin_pipe: bool,
    /// A name the process can be addressed by instead of its PID.
    pub name: Option<String>,
}

/// The body of `POST /api/v1/processes`: the run body, plus `stdin_mode` only when it is not the
/// default, as the SDKs send it.
pub fn start_body(spec: &ProcessSpec) -> String {
    routes::run_fields(&spec.run)
        .str("stdin_mode", spec.stdin_pipe.then_some("pipe"))
        .str("name", spec.name.as_deref())
        .finish()
}

/// The body of `POST …/signal`.
pub fn signal_body(signal: f64) -> String {
    Object::new().num("signal", Some(signal)).finish()
}

/// What `update` changes; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxUpdate {
    /// A new name.
    pub name: Option<String>,
    /// Ports reachable through the sandbox proxy.
    pub exposed_ports: Option<Vec<f64>>,
    /// Whether the proxy lets requests in without a key.
    pub allow_unauthenticated_access: Option<bool>,
}

/// The body of `PATCH {P}/sandboxes/{id}` (wire-protocol §3.4).
pub fn update_body(update: &SandboxUpdate) -> String {
    let ports = update.exposed_ports.as_ref().map(|ports| {
        let mut list = String::from("[");
        for (i, port) in ports.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&json_out::number(*port));
        }
        list.push(']');
        list
    });
    Object::new()
        .str("name", update.name.as_deref())
        .raw(
            "allow_unauthenticated_access",
            update.allow_unauthenticated_access.map(|b| b.to_string()),
        )
        .raw("exposed_ports", ports)
        .finish()
}

/// The network policy of a new sandbox (wire-protocol §3.1): sent only when it restricts
/// something, as the official SDKs send it.
pub fn network_body(
    allow_internet_access: Option<bool>,
    allow_out: &[String],
    deny_out: &[String],
) -> Option<String> {
    if allow_internet_access != Some(false) && allow_out.is_empty() && deny_out.is_empty() {
        return None;
    }
    let object = Object::new()
        .raw(
            "allow_internet_access",
            Some(allow_internet_access.unwrap_or(true).to_string()),
        )
        .raw("allow_out", Some(json_out::string_array(allow_out)))
        .raw("deny_out", Some(json_out::string_array(deny_out)));
    Some(object.finish())
}

/// `snake_case` → `camelCase`, as the official TypeScript SDK renames wire keys (`id` stays).
pub fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The name a wire key gets in the objects the caller sees: camelCase, with IX's
/// `network_policy` under the official SDK's name `network` (wire-protocol §7, item 10).
pub fn js_key(key: &str) -> String {
    if key == "network_policy" {
        return "network".into();
    }
    camel_case(key)
}

/// Whether a wire key holds a time the SDK turns into a `Date` (`*_at`, `timestamp`).
pub fn is_time_key(key: &str) -> bool {
    key.ends_with("_at") || key == "timestamp"
}

/// The longest SSE line kept while waiting for its end. The server cuts output lines into 64 KiB
/// pieces, so a longer one is not a real event; it is dropped rather than held.
pub const MAX_SSE_LINE_BYTES: usize = 1 << 20;

/// Splits a Server-Sent Events stream into the `data` of its events, chunk by chunk, holding only
/// the unfinished line and event (each bounded by [`MAX_SSE_LINE_BYTES`]).
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: String,
    skipping: bool,
    data: Option<String>,
    /// Whether the last event was `event: eof` (the follow routes' end marker).
    named_eof: bool,
    /// Whether an `eof` event was seen.
    pub ended: bool,
}

impl SseDecoder {
    /// Adds a chunk of text; complete events' data are appended to `out`.
    pub fn push(&mut self, chunk: &str, out: &mut VecDeque<String>) {
        let mut rest = chunk;
        while let Some(at) = rest.find('\n') {
            // `get`, not slicing: `find` gives a boundary, and no panic path is linked.
            self.extend(rest.get(..at).unwrap_or(""));
            let line = std::mem::take(&mut self.line);
            if !std::mem::take(&mut self.skipping) {
                self.line_done(line.strip_suffix('\r').unwrap_or(&line), out);
            }
            rest = rest.get(at + 1..).unwrap_or("");
        }
        self.extend(rest);
    }

    fn extend(&mut self, text: &str) {
        if self.skipping {
            return;
        }
        if self.line.len() + text.len() > MAX_SSE_LINE_BYTES {
            self.line.clear();
            self.skipping = true;
        } else {
            self.line.push_str(text);
        }
    }

    fn line_done(&mut self, line: &str, out: &mut VecDeque<String>) {
        if line.is_empty() {
            if std::mem::take(&mut self.named_eof) {
                self.ended = true;
            }
            if let Some(data) = self.data.take() {
                out.push_back(data);
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match self.data.as_mut() {
                // An event this long is not a real one either (see `MAX_SSE_LINE_BYTES`): what it
                // held so far is dropped, so an event that never ends cannot grow without bound.
                Some(data) if data.len() + value.len() >= MAX_SSE_LINE_BYTES => data.clear(),
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        } else if let Some(name) = line.strip_prefix("event:") {
            self.named_eof = name.trim() == "eof";
        }
    }
}

impl<P: Platform> Api<'_, P> {
    /// Sends `call` with the usual retries; its JSON answer, or `None` for an empty one (204).
    /// The one path of the process calls and of suspend, resume, status and update, whose
    /// answers the host passes on as they are.
    pub async fn request_json(&self, call: &Call) -> Result<Option<P::Json>, Error<P>> {
        let reply = call::send(self.p, self.cfg, call, Budget::of(self)).await?;
        if reply.response.status == 204 || reply.response.body.text_prefix(64).trim().is_empty() {
            return Ok(None);
        }
        call::json(&reply).map(Some)
    }

    /// Polls the sandbox until its status is `wanted`, like the SDKs' suspend and resume waits:
    /// `terminated` (or `failed`) ends the wait with an error, and so does the deadline.
    pub async fn wait_for_sandbox(
        &self,
        sandbox_id: &str,
        wanted: &str,
        timeout_ms: f64,
        poll_ms: f64,
    ) -> Result<SandboxRecord<P::Json>, Error<P>> {
        let deadline = self.p.now_ms() + timeout_ms;
        loop {
            let record = self.get_sandbox(sandbox_id).await?;
            let status = record.status.as_string().unwrap_or_default();
            if status == wanted {
                return Ok(record);
            }
            let failure = match status.as_str() {
                "terminated" | "failed" => Some(("SANDBOX_TERMINATED", format!("Sandbox {sandbox_id} became {status} while waiting for {wanted}"))),
                _ if self.p.now_ms() >= deadline => Some((
                    "SANDBOX_WAIT_TIMEOUT",
                    format!(
                        "Sandbox {sandbox_id} did not become {wanted} within {}s (last status {status})",
                        crate::decimal::format_decimal(timeout_ms / 1000.0)
                    ),
                )),
                _ => None,
            };
            if let Some((code, message)) = failure {
                return Err(Error::Sandbox {
                    message,
                    code,
                    sandbox_id: Some(sandbox_id.to_string()),
                    trace_id: None,
                });
            }
            let left = deadline - self.p.now_ms();
            if self.p.sleep(poll_ms.min(left.max(0.0))).await.is_err() {
                return Err(Error::Aborted);
            }
        }
    }
}

/// A call to a sandbox's own API (`X-Tensorlake-Sandbox-Id` set). A POST is sent once (stdin,
/// signals and starts are not harmless to repeat); reads and kills are retried.
pub fn process_call(
    target: &SandboxTarget,
    method: Method,
    url: String,
    body: RequestBody,
) -> Call {
    let class = if method == Method::Post {
        RetryClass::Create
    } else {
        RetryClass::Idempotent
    };
    let mut call = Call::new(method, url, class);
    call.sandbox_id = Some(target.sandbox_id.clone());
    call.body = body;
    call
}

/// A lifecycle call about one sandbox (a 404 is `SandboxNotFoundError`); all of them (suspend,
/// resume, status, update) are harmless to repeat.
pub fn sandbox_call(sandbox_id: &str, method: Method, url: String, body: RequestBody) -> Call {
    let mut call = Call::new(method, url, RetryClass::Idempotent);
    call.not_found = Some(NotFound::Sandbox(sandbox_id.to_string()));
    call.body = body;
    call
}

/// The budget of one request of `api`, its deadline included.
struct Budget;

impl Budget {
    fn of<P: Platform>(api: &Api<'_, P>) -> call::Budget {
        let mut budget = call::Budget::standard(api.p, api.cfg);
        if let Some(deadline) = api.deadline_ms {
            budget.deadline_ms = budget.deadline_ms.min(deadline);
        }
        budget
    }
}

#[cfg(test)]
#[path = "processes_tests.rs"]
mod tests;
